"""The ``cdp`` command: the operations a person runs by hand (warehouse, migrations, audit, privacy, …).

Each command prints what it did in numbers and exits non-zero on failure, so it can be scripted and used
from runbooks. Development tools add their own sub-commands through the ``cdp.commands`` entry point
group: the sandbox package (``sandbox/``, installed by ``make venv``) adds ``cdp sandbox`` and ``cdp run``;
the production image does not have them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import psycopg

from cdp import audit
from cdp.warehouse import (
    MIGRATIONS_URL_VARIABLE,
    Actor,
    WarehouseNotConfigured,
    configured_url,
    connect,
    migrations,
    migrations_url,
    resolve_url,
)
from cdp.warehouse.embedded import default_server, ensure_login, ensure_process_logins

CLI_ACTOR = Actor("cli")

#: The entry point group through which an installed package adds sub-commands (a register function each).
COMMANDS_GROUP = "cdp.commands"
#: Sub-commands only the development package provides, and what to tell someone who asks for them without it.
DEVELOPMENT_COMMANDS = ("sandbox", "run", "stop", "airflow")
NOT_INSTALLED = (
    "`cdp {command}` is a development tool and is not installed here: the sandbox package (sandbox/) adds it; "
    "install it with `make venv` (or `uv pip install -e sandbox`)"
)


def _warehouse(args: argparse.Namespace) -> int:
    server = default_server()
    if args.action == "up":
        if configured_url():
            print("a warehouse connection is configured; the embedded server is not needed")
            return 0
        server.start()
        server.ensure_database()
        print(f"warehouse running: {_redacted(server.url())}")
    elif args.action == "down":
        server.stop()
        print("warehouse stopped")
    elif args.action == "status":
        url = configured_url()
        if url:
            print(f"configured warehouse: {_redacted(url)}")
            return 0
        running = server.is_running()
        print(f"embedded warehouse in {server.root}: {'running' if running else 'stopped'}")
        return 0 if running else 3
    elif args.action == "url":
        print(resolve_url())
    elif args.action == "logins":
        return _logins()
    return 0


def _redacted(url: str) -> str:
    """A URL safe to print in logs: the password replaced."""
    if "@" not in url or ":" not in url.split("@", 1)[0].split("//", 1)[-1]:
        return url
    scheme, rest = url.split("//", 1)
    credentials, location = rest.split("@", 1)
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{location}"


def _migrate(args: argparse.Namespace) -> int:
    url = migrations_url()
    before = migrations.current_revision(url)
    migrations.upgrade(url)
    after = migrations.current_revision(url)
    print(f"schema at {after}" + (" (no change)" if before == after else f" (was {before or 'empty'})"))
    if configured_url() is None and not os.environ.get(MIGRATIONS_URL_VARIABLE):
        logins = ensure_process_logins(default_server())
        print(f"embedded warehouse logins: {', '.join(_redacted(login) for login in logins.values())}")
    return 0


#: `cdp warehouse logins`: the services' own logins on a configured warehouse, passwords from the deployment.
SERVICE_LOGINS = {"cdp_pipeline": ("cdp_loader", "CDP_PIPELINE_PASSWORD"),
                  "cdp_webhook_intake": ("cdp_webhook", "CDP_WEBHOOK_PASSWORD"),
                  "cdp_reconcile_run": ("cdp_reconcile", "CDP_RECONCILE_PASSWORD"),
                  "cdp_dedupe_run": ("cdp_dedupe", "CDP_DEDUPE_PASSWORD"),
                  "cdp_evidence_run": ("cdp_evidence", "CDP_EVIDENCE_PASSWORD"),
                  "cdp_funder_report_run": ("cdp_funder_report", "CDP_FUNDER_REPORT_PASSWORD")}  # fmt: skip


def _logins() -> int:
    """Create or update the services' logins (pipeline, webhook intake, DAG families; as the migrations' superuser)."""
    missing = [
        variable for _role, variable in SERVICE_LOGINS.values() if len(os.environ.get(variable, "")) < 16
    ]
    if missing:
        print(f"error: set {', '.join(missing)} (16 characters or more) first", file=sys.stderr)
        return EXIT_BAD_INPUT
    # PostgreSQL logs no CREATE ROLE or GRANT: each login made or changed here is an audit event, which the
    # evidence pack lists among the month's access changes (cdp.evidence).
    with connect(migrations_url(), CLI_ACTOR, autocommit=True) as conn:
        for login, (role, variable) in SERVICE_LOGINS.items():
            existed = (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone() is not None
            )
            ensure_login(conn, login, role, os.environ[variable])
            audit.record_event(
                conn,
                "ensure_login",
                "role",
                login,
                {"role": role, "created": not existed, "password_set": True},
            )
            print(f"login {login}: member of {role}" + ("" if existed else " (created)"))
    return 0


def _audit(args: argparse.Namespace) -> int:
    url = resolve_url()
    anchor_file = Path(args.anchor_file) if args.anchor_file else audit.default_anchor_file()
    if args.action == "evidence":
        return _evidence(url, args, anchor_file)
    with connect(url, CLI_ACTOR) as conn:
        if args.action == "verify":
            report = audit.verify(conn, audit.read_anchors(anchor_file))
            print(report.summary())
            return 0 if report.ok else 1
        anchor = audit.export_head(conn, anchor_file) if args.export else audit.head(conn)
        if anchor is None:
            print("audit trail is empty")
        else:
            print(
                f"head seq {anchor.seq} hash {anchor.hash}"
                + (f" (appended to {anchor_file})" if args.export else "")
            )
    return 0


def _evidence(url: str, args: argparse.Namespace, anchor_file: Path) -> int:
    """The month's evidence pack; exit 1 when the audit chain fails verification (the pack says so too)."""
    from cdp.evidence.pack import month_period, write_pack
    from cdp.paths import state_dir

    if not args.month:
        print("error: `cdp audit evidence` needs --month YYYY-MM", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        month_period(args.month)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else state_dir() / "evidence"
    pack = write_pack(url, args.month, out, actor=CLI_ACTOR, anchor_file=anchor_file)
    print(pack.summary())
    if not pack.chain_ok:
        print(f"audit chain: {pack.chain_summary}", file=sys.stderr)
    anchor_after_audited_write(anchor_file)  # a new privilege snapshot is an audit event
    return 0 if pack.chain_ok else 1


def build_parser(installed: Iterable[EntryPoint] | None = None) -> argparse.ArgumentParser:
    """The parser with the product's sub-commands and those of the installed packages (default: this Python's)."""
    parser = argparse.ArgumentParser(prog="cdp", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    warehouse = commands.add_parser("warehouse", help="the embedded PostgreSQL warehouse")
    warehouse.add_argument(
        "action",
        choices=["up", "down", "status", "url", "logins"],
        help="url: the operator's connection; logins: make the pipeline's and webhook intake's logins",
    )
    warehouse.set_defaults(handler=_warehouse)

    migrate = commands.add_parser("migrate", help="apply the schema migrations (a no-op when up to date)")
    migrate.set_defaults(handler=_migrate)

    audit_parser = commands.add_parser("audit", help="the tamper-evident audit trail")
    audit_parser.add_argument(
        "action", choices=["verify", "head", "evidence"], help="evidence: the auditor's monthly evidence pack"
    )
    audit_parser.add_argument("--month", help="with `evidence`: the month, YYYY-MM")
    audit_parser.add_argument(
        "--out", help="with `evidence`: the folder to write evidence-YYYY-MM/ in (default .cdp/evidence)"
    )
    audit_parser.add_argument(
        "--anchor-file", help="JSON-lines file of exported heads (default .cdp/audit-anchors.jsonl)"
    )
    audit_parser.add_argument(
        "--export", action="store_true", help="with `head`: append the head to the anchor file"
    )
    audit_parser.set_defaults(handler=_audit)

    installed = entry_points(group=COMMANDS_GROUP) if installed is None else installed
    for register in [*_extensions(), *installed_commands(installed)]:
        register(commands)
    return parser


def installed_commands(installed: Iterable[EntryPoint]) -> list[Callable[[argparse._SubParsersAction], None]]:
    """The register functions of the ``cdp.commands`` entry points, in name order.

    An entry point is named after the sub-command its function adds (``sandbox = "cdp_sandbox.commands:..."``).
    """
    return [entry_point.load() for entry_point in sorted(installed, key=lambda entry_point: entry_point.name)]


def _register_dedupe(commands: argparse._SubParsersAction) -> None:
    # The engine imports pandas and recordlinkage: parse its options only when `dedupe` is asked for.
    dedupe = commands.add_parser(
        "dedupe",
        add_help=False,
        help="find probable duplicates in any CSV of people (same engine as the nightly dedupe); see --help",
    )
    dedupe.set_defaults(handler=None)


def _register_privacy(commands: argparse._SubParsersAction) -> None:
    from cdp.privacy.cli import register

    register(commands)


def _register_finance(commands: argparse._SubParsersAction) -> None:
    from cdp.finance import corrections, programs

    corrections.register(commands)
    programs.register(commands)


def _register_crm(commands: argparse._SubParsersAction) -> None:
    from cdp.crm.cli import register

    register(commands)


def _sources(args: argparse.Namespace) -> int:
    from cdp.sources.registry import BY_NAME, SOURCES
    from cdp.sources.setup_check import run_checks, settings_from_environment

    unknown = [name for name in args.source or () if name not in BY_NAME]
    if unknown:
        print(f"error: unknown source {', '.join(unknown)} (known: {', '.join(BY_NAME)})", file=sys.stderr)
        return EXIT_BAD_INPUT
    chosen = [BY_NAME[name] for name in args.source] if args.source else list(SOURCES)
    report = run_checks(settings_from_environment(os.environ), chosen)
    print(report.table())
    print(report.summary())
    return 0 if report.ok else 1


def _register_sources(commands: argparse._SubParsersAction) -> None:
    sources = commands.add_parser("sources", help="the source systems: what their vendor side lacks")
    actions = sources.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check",
        help="authenticate to every source (connections from AIRFLOW_CONN_<ID>) and list every object, field or "
        "permission the vendor side lacks, with its setup step; exit 1 when something is missing",
    )
    check.add_argument("--source", action="append", help="check only this source (repeatable)")
    check.set_defaults(handler=_sources)


def _extensions() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Sub-commands that live with their own package in the product (dedupe, privacy, …)."""
    return [_register_dedupe, _register_privacy, _register_finance, _register_crm, _register_sources]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["dedupe"]:
        from cdp.identity.commands import main as dedupe_main

        # The CSV mode checks its column roles and reads a file: ValueError and OSError are the operator's input.
        status = _without_traceback(lambda: dedupe_main(argv[1:]), input_errors=(ValueError, OSError))
        if status == 0 and argv[1:2] in (["run"], ["review"], ["unmerge"]):  # not the CSV mode: no warehouse
            anchor_after_audited_write()
        return status
    installed = entry_points(group=COMMANDS_GROUP)
    if argv[:1] and argv[0] in DEVELOPMENT_COMMANDS and argv[0] not in installed.names:
        print(f"error: {NOT_INSTALLED.format(command=argv[0])}", file=sys.stderr)
        return 2
    args = build_parser(installed).parse_args(argv)
    status = _without_traceback(lambda: int(args.handler(args) or 0))
    if status == 0 and args.command in AUDITED_COMMANDS:
        anchor_after_audited_write()
    return status


#: Commands that write audit events (a correction, a consent statement, an erasure, a merge decision). The
#: pipeline anchors the head after each of its tasks; these anchor it themselves, so a correction made by
#: hand is not left unanchored until the next pipeline task.
AUDITED_COMMANDS = frozenset({"dedupe", "privacy", "finance", "funds", "crm"})


def anchor_after_audited_write(path: Path | None = None) -> audit.Anchor | None:
    """Append the head to the anchor file if it moved and the file is this process's to write; otherwise say
    which rows await an anchor (the file belongs to the pipeline's user, or the warehouse is not reachable)."""
    path = path or audit.default_anchor_file()
    refused: Exception | None = None
    try:
        with connect(resolve_url(), CLI_ACTOR, autocommit=True) as conn:
            try:
                return audit.export_head(conn, path, only_if_moved=True)
            except (audit.AnchorFileRefused, OSError) as error:
                refused = error
            head = audit.head(conn)
    except (WarehouseNotConfigured, psycopg.Error) as error:
        print(f"note: the audit head was not anchored ({error})", file=sys.stderr)
        return None
    previous = _readable_last_anchor(path)
    if head is not None and (previous is None or previous.seq < head.seq):
        first = previous.seq + 1 if previous is not None else 1
        print(
            f"note: audit rows seq {first}..{head.seq} await an anchor: {path} is not this process's to write"
            f" ({refused}); the pipeline's next task anchors them, or the file's owner runs"
            " `cdp audit head --export`",
            file=sys.stderr,
        )
    return None


def _readable_last_anchor(path: Path) -> audit.Anchor | None:
    try:
        return audit.last_anchor(path)
    except OSError:
        return None


#: Exit codes for what an operator got wrong, as opposed to a fault (which keeps its traceback).
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
#: SQLSTATE classes of errors the warehouse raises about the request itself: data exceptions (22, e.g. a
#: login name create_login refuses), integrity (23), access and object errors (42: insufficient privilege,
#: a login that exists), invalid authorisation (28), and the project's own RAISE EXCEPTIONs (P0).
_REQUEST_ERROR_CLASSES = {"22": EXIT_BAD_INPUT, "23": EXIT_BAD_INPUT, "42": EXIT_REFUSED, "28": EXIT_REFUSED,
                          "P0": EXIT_BAD_INPUT}  # fmt: skip


def _without_traceback(command: Callable[[], int], *, input_errors: tuple[type[Exception], ...] = ()) -> int:
    """Run a command; what an operator typed wrong ends in one clear line and an exit code, not a traceback."""
    try:
        return command()
    except WarehouseNotConfigured as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except psycopg.Error as error:
        code = _REQUEST_ERROR_CLASSES.get((error.sqlstate or "")[:2])
        if code is None:
            raise
        diagnostic = error.diag.message_primary or str(error).splitlines()[0]
        print(f"error: the warehouse refused: {diagnostic}", file=sys.stderr)
        return code
    except input_errors as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
