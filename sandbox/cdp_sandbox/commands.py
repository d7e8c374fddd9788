"""The sub-commands the sandbox adds to ``cdp`` where it is installed (entry point group ``cdp.commands``).

``cdp sandbox serve | legacy-exports | legacy-referrals`` and ``cdp run`` (the local stack of ``make run``).
The product's ``cdp`` finds these through the package's metadata (``sandbox/pyproject.toml``) and never
imports this package itself, so an installation without the sandbox (the production image) has neither.
"""

from __future__ import annotations

import argparse

from cdp_sandbox import devserver, legacy, legacy_referrals, server


def register_sandbox(commands: argparse._SubParsersAction) -> None:
    sandbox = commands.add_parser("sandbox", help="the local stand-in for every vendor API")
    actions = sandbox.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="serve the vendor APIs on a local port until stopped")
    server.add_arguments(serve)
    serve.set_defaults(handler=server.run)
    exports = actions.add_parser(
        "legacy-exports", help="write the legacy exports (LMS, CRM, donors, referrals)"
    )
    legacy.add_arguments(exports)
    exports.set_defaults(handler=legacy.run)
    sheet = actions.add_parser("legacy-referrals", help="write the referral program's legacy spreadsheet")
    legacy_referrals.add_arguments(sheet)
    sheet.set_defaults(handler=legacy_referrals.run)


def register_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run", help="start the warehouse and Airflow standalone with every DAG (make run)"
    )
    run.add_argument("--port", type=int, default=8080)
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return devserver.run_local(args.port)
