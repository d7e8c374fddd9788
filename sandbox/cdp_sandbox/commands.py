"""The sub-commands the sandbox adds to ``cdp`` where it is installed (entry point group ``cdp.commands``).

``cdp sandbox serve | legacy-exports | legacy-referrals | slack``, ``cdp run`` (the local stack of ``make run``),
``cdp stop`` (``make stop``) and ``cdp airflow …`` (any Airflow command against the local stack).
The product's ``cdp`` finds these through the package's metadata (``sandbox/pyproject.toml``) and never
imports this package itself, so an installation without the sandbox (the production image) has neither.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
from datetime import UTC, datetime

from cdp_sandbox import devserver, legacy, legacy_referrals, server
from cdp_sandbox.processes import StackFailed


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
    slack = actions.add_parser(
        "slack", help="print the Slack messages the sandbox received (the alerts of make run)"
    )
    slack.add_argument(
        "--port", type=int, default=None, help="the sandbox's port (default: the one make run uses)"
    )
    slack.add_argument("--clear", action="store_true", help="forget them after printing")
    slack.set_defaults(handler=_slack)


def register_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="start the warehouse, the sandbox and Airflow with every DAG, supervised until Ctrl-C (make run)",
    )
    run.add_argument("--port", type=int, default=8080, help="the API server's and UI's port")
    run.add_argument(
        "--host",
        default=None,
        help=f"the address the API server listens on (default $CDP_API_HOST or {devserver.DEFAULT_HOST})",
    )
    run.add_argument("--sandbox-port", type=int, default=devserver.SANDBOX_PORT)
    run.add_argument(
        "--executor",
        choices=sorted(devserver.EXECUTORS),
        default="local",
        help="local: Airflow's LocalExecutor; celery: Redis and two Celery workers (queues default and heavy)",
    )
    run.add_argument(
        "--redis-port", type=int, default=devserver.REDIS_PORT, help="Redis's port (--executor celery)"
    )
    run.set_defaults(handler=_run)


def register_stop(commands: argparse._SubParsersAction) -> None:
    stop = commands.add_parser(
        "stop", help="stop the local stack and the leftovers of a crashed one, then the warehouse (make stop)"
    )
    stop.add_argument("--keep-warehouse", action="store_true", help="leave the embedded PostgreSQL running")
    stop.set_defaults(handler=_stop)


def register_airflow(commands: argparse._SubParsersAction) -> None:
    airflow = commands.add_parser(
        "airflow",
        add_help=False,
        help="run an Airflow command against the local stack (its AIRFLOW_HOME, metadata database, connections)",
    )
    # `cdp airflow --help` is Airflow's help (argparse would take a leading option for one of cdp's own).
    airflow.add_argument("-h", "--help", dest="airflow_help", action="store_true", help=argparse.SUPPRESS)
    airflow.add_argument("arguments", nargs=argparse.REMAINDER)
    airflow.set_defaults(handler=_airflow)


def _run(args: argparse.Namespace) -> int:
    return devserver.run_local(
        args.port, args.host, args.sandbox_port, executor=args.executor, redis_port=args.redis_port
    )


def _stop(args: argparse.Namespace) -> int:
    said = devserver.stop_all(warehouse=not args.keep_warehouse)
    print("\n".join(said) if said else "nothing was running")
    return 0


def _airflow(args: argparse.Namespace) -> int:
    try:
        environment = devserver.airflow_command_environment()
    except (FileNotFoundError, StackFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    airflow = devserver.airflow_executable()
    sys.stdout.flush()
    arguments = ["--help"] * args.airflow_help + args.arguments
    os.execve(airflow, [airflow, *arguments], environment)
    return 0  # not reached


def _slack(args: argparse.Namespace) -> int:
    port = args.port or devserver.sandbox_port_in_use()
    try:
        messages = devserver.slack_messages(port)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        print(
            f"error: no sandbox answers on port {port} ({error}); start it with `make run`", file=sys.stderr
        )
        return 2
    print(f"{len(messages)} Slack message(s) received by the sandbox on port {port}")
    for message in messages:
        received = datetime.fromtimestamp(float(message["received_at"]), UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        )
        print(f"\n--- {received}\n{devserver.message_text(message['payload'])}")
    if args.clear:
        devserver.clear_slack_messages(port)
    return 0
