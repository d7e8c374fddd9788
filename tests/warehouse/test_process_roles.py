"""Each process connects as its own least-privileged login; the superuser only migrates (issue 15, item 9).

The attack: the pipeline and the webhook intake connected as the superuser, and the compose file's warehouse
user was the image's superuser with passwords falling back to `admin`/`cdp`.
"""

from __future__ import annotations

import json
import re
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from psycopg import sql

from cdp.cli import main
from cdp.warehouse import MIGRATIONS, OPERATOR, PIPELINE, WEBHOOK, resolve_url
from cdp.warehouse.embedded import (
    PROCESS_LOGINS,
    EmbeddedServer,
    ensure_login,
    ensure_process_logins,
    process_urls,
)
from cdp.webhooks.app import create_app
from cdp.webhooks.intake import Intake

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "webhooks"))
from webhook_requests import settings, signed, typeform_payload  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-init")  # fmt: skip


def _url_for(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


def _user(url: str) -> str:
    return urlsplit(re.sub(r"\$\{[^}]*\}", "x", url)).username or ""


# --- docker-compose.yaml -------------------------------------------------------------------------------------


def test_compose_passwords_have_no_default_fallback() -> None:
    text = (REPO / "docker-compose.yaml").read_text()
    fallbacks = re.findall(r"\$\{(\w*(?:PASSWORD|SECRET)\w*):?-[^}]*\}", text)
    assert fallbacks == [], f"passwords with a default: {fallbacks}"
    for variable in ("AIRFLOW_DB_PASSWORD", "WAREHOUSE_OWNER_PASSWORD", "CDP_PIPELINE_PASSWORD",
                     "CDP_WEBHOOK_PASSWORD", "CDP_RECONCILE_PASSWORD", "CDP_DEDUPE_PASSWORD", "CDP_EVIDENCE_PASSWORD",
                     "CDP_FUNDER_REPORT_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"):  # fmt: skip
        assert re.search(rf"\$\{{{variable}:\?[^}}]+\}}", text), f"{variable} is not required with a message"


def test_compose_processes_do_not_log_in_as_the_warehouse_superuser() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    superuser = doc["services"]["warehouse-db"]["environment"]["POSTGRES_USER"]
    for name in AIRFLOW_SERVICES:
        env = doc["services"][name]["environment"]
        assert _user(env["AIRFLOW_CONN_WAREHOUSE"]) == "cdp_pipeline", name
        assert _user(env["AIRFLOW_CONN_WAREHOUSE_WEBHOOK"]) == "cdp_webhook_intake", name
        assert superuser not in {
            _user(env["AIRFLOW_CONN_WAREHOUSE"]),
            _user(env["AIRFLOW_CONN_WAREHOUSE_WEBHOOK"]),
        }
        # The superuser's URL is given to the one service that migrates.
        assert ("CDP_MIGRATIONS_URL" in env) == (name == "airflow-init"), name
    init = doc["services"]["airflow-init"]
    assert _user(init["environment"]["CDP_MIGRATIONS_URL"]) == superuser
    script = "\n".join(init["command"])
    assert script.index("cdp migrate") < script.index("cdp warehouse logins")


# --- roles in the warehouse -----------------------------------------------------------------------------------


@pytest.fixture
def login(warehouse_url: str) -> Iterator:
    """Make a login in one application role (as the superuser); dropped afterwards."""
    made: list[str] = []

    def make(role: str) -> str:
        name = f"t_{role.removeprefix('cdp_')}_{uuid.uuid4().hex[:8]}"
        password = uuid.uuid4().hex
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            ensure_login(conn, name, role, password)
        made.append(name)
        return _url_for(warehouse_url, name, password)

    yield make
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_the_webhook_intake_works_as_its_own_login(login, warehouse_url: str) -> None:
    intake = Intake(login("cdp_webhook"), settings())
    try:
        with TestClient(create_app(lambda: intake)) as client:
            body, headers = signed("typeform", typeform_payload())
            assert client.post("/typeform", content=body, headers=headers).json()["status"] == "accepted"
            assert client.post("/typeform", content=body, headers=headers).status_code == 200  # a retry
            assert (
                client.post(
                    "/typeform", content=b"{}", headers={"Content-Type": "application/json"}
                ).status_code
                == 401
            )
            nul, nul_headers = signed(
                "typeform", json.dumps(typeform_payload()).replace("form_response", "form\\u0000").encode()
            )
            assert client.post("/typeform", content=nul, headers=nul_headers).json()["status"] == "kept"
            assert client.post("/typeform", content=nul, headers=nul_headers).json()["status"] == "kept"
    finally:
        intake.close()
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.records WHERE source = 'typeform'").fetchone()[0] == 1
        assert conn.execute("SELECT sum(requests) FROM ops.webhook_rejection_count").fetchone()[0] == 1
        assert conn.execute("SELECT deliveries FROM ops.webhook_undeliverable").fetchone()[0] == 2


WEBHOOK_REFUSED = {
    "read a person": "SELECT email FROM core.person",
    "read raw payloads": "SELECT payload FROM raw.records",
    "read intake events": "SELECT record_id FROM ops.webhook_event",
    "read kept bodies": "SELECT body FROM ops.webhook_undeliverable",
    "read the audit trail": "SELECT * FROM audit.audit_events",
    "write a person": "INSERT INTO core.person (given_name) VALUES ('x')",
    "forge an audit event": "INSERT INTO audit.audit_events (action, entity_type) VALUES ('import', 'x')",
    "rewrite an event claim": "UPDATE ops.webhook_event SET stream = 'x'",
    "resolve an undeliverable": "UPDATE ops.webhook_undeliverable SET resolved_at = now()",
    "delete rejections": "DELETE FROM ops.webhook_rejection",
    "create a table": "CREATE TABLE ops.mine (x int)",
}


@pytest.mark.parametrize("action", list(WEBHOOK_REFUSED))
def test_the_webhook_login_can_do_nothing_else(login, action: str) -> None:
    with psycopg.connect(login("cdp_webhook")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(WEBHOOK_REFUSED[action])


def test_the_webhook_login_is_not_the_pipelines(login, warehouse_url: str) -> None:
    """The intake could land rows in any pipeline table with the pipeline's login; with its own it cannot."""
    with psycopg.connect(login("cdp_loader")) as conn:
        conn.execute("SELECT count(*) FROM ops.quarantine")
    with psycopg.connect(login("cdp_webhook")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT count(*) FROM ops.quarantine")


# --- the embedded server's process logins ---------------------------------------------------------------------


@pytest.fixture
def embedded_logins(pg_server: EmbeddedServer, warehouse_url: str) -> Iterator[dict[str, str]]:
    database = urlsplit(warehouse_url).path.lstrip("/")
    yield ensure_process_logins(pg_server, database)
    (pg_server.root / "logins.json").unlink(missing_ok=True)
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for name, _role in PROCESS_LOGINS.values():
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_the_embedded_server_makes_one_login_per_process_none_superuser(
    pg_server: EmbeddedServer, embedded_logins: dict[str, str], warehouse_url: str
) -> None:
    assert set(embedded_logins) == {
        PIPELINE,
        WEBHOOK,
        OPERATOR,
        "reconcile",
        "dedupe",
        "evidence",
        "funder_report",
    }
    for purpose, url in embedded_logins.items():
        login, role = PROCESS_LOGINS[purpose]
        with psycopg.connect(url) as conn:
            who, superuser, createrole, bypass = conn.execute(
                "SELECT current_user, rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            member_of = {row[0] for row in conn.execute(
                "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid"
                " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = current_user"
            )}  # fmt: skip
        assert (who, superuser, createrole, bypass) == (login, False, False, False)
        assert member_of == {role}
    path = pg_server.root / "logins.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    passwords = json.loads(path.read_text())
    # Made again (every `cdp migrate`): the same passwords, the same URLs.
    database = urlsplit(warehouse_url).path.lstrip("/")
    assert ensure_process_logins(pg_server, database) == embedded_logins
    assert json.loads(path.read_text()) == passwords
    assert process_urls(pg_server, database) == embedded_logins


def test_a_process_login_added_since_the_last_start_is_made_and_kept(
    pg_server: EmbeddedServer, embedded_logins: dict[str, str], warehouse_url: str
) -> None:
    """A logins file from before a process had its own login (the reconciliation's): the next start adds it,
    keeps the others' passwords, and the file stays private."""
    path = pg_server.root / "logins.json"
    older = {
        purpose: password
        for purpose, password in json.loads(path.read_text()).items()
        if purpose != "reconcile"
    }
    path.write_text(json.dumps(older))
    database = urlsplit(warehouse_url).path.lstrip("/")

    urls = ensure_process_logins(pg_server, database)

    now = json.loads(path.read_text())
    assert {purpose: now[purpose] for purpose in older} == older and now["reconcile"]
    assert {purpose: urls[purpose] for purpose in older} == {
        purpose: embedded_logins[purpose] for purpose in older
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with psycopg.connect(urls["reconcile"]) as conn:
        assert conn.execute("SELECT pg_has_role('cdp_reconcile', 'MEMBER')").fetchone()[0]


def test_the_embedded_settings_file_is_private_from_the_first_byte(pg_server: EmbeddedServer) -> None:
    assert stat.S_IMODE((pg_server.root / "server.json").stat().st_mode) == 0o600


# --- who connects: resolution per process ---------------------------------------------------------------------


def test_each_process_resolves_its_own_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgres://cdp_pipeline:p@db/cdp")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_WEBHOOK", "postgres://cdp_webhook_intake:w@db/cdp")
    monkeypatch.setenv("CDP_MIGRATIONS_URL", "postgres://cdp_owner:o@db/cdp")
    assert resolve_url(purpose=PIPELINE) == "postgresql://cdp_pipeline:p@db/cdp"
    assert resolve_url(purpose=WEBHOOK) == "postgresql://cdp_webhook_intake:w@db/cdp"
    assert resolve_url(purpose=MIGRATIONS) == "postgresql://cdp_owner:o@db/cdp"
    monkeypatch.setenv("CDP_WAREHOUSE_URL", "postgresql://alice:a@db/cdp")  # the operator's own login
    assert resolve_url() == "postgresql://alice:a@db/cdp"


def test_cdp_warehouse_logins_makes_the_service_logins_as_the_superuser(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CDP_MIGRATIONS_URL", warehouse_url)
    assert main(["warehouse", "logins"]) == 2
    assert "CDP_PIPELINE_PASSWORD" in capsys.readouterr().err

    monkeypatch.setenv("CDP_PIPELINE_PASSWORD", "pipeline-password-0123")
    monkeypatch.setenv("CDP_WEBHOOK_PASSWORD", "webhook-password-0123")
    monkeypatch.setenv("CDP_RECONCILE_PASSWORD", "reconcile-password-0123")
    monkeypatch.setenv("CDP_DEDUPE_PASSWORD", "dedupe-password-0123")
    monkeypatch.setenv("CDP_EVIDENCE_PASSWORD", "evidence-password-0123")
    monkeypatch.setenv("CDP_FUNDER_REPORT_PASSWORD", "funder_report-password-0123")
    try:
        assert main(["warehouse", "logins"]) == 0
        assert main(["warehouse", "logins"]) == 0  # again: passwords updated, nothing else
        with psycopg.connect(_url_for(warehouse_url, "cdp_webhook_intake", "webhook-password-0123")) as conn:
            assert conn.execute("SELECT pg_has_role('cdp_webhook', 'MEMBER')").fetchone()[0]
            assert not conn.execute("SELECT pg_has_role('cdp_loader', 'MEMBER')").fetchone()[0]
        for login, role in (
            ("cdp_reconcile_run", "cdp_reconcile"),
            ("cdp_dedupe_run", "cdp_dedupe"),
            ("cdp_evidence_run", "cdp_evidence"),
            ("cdp_funder_report_run", "cdp_funder_report"),
        ):
            password = login.removeprefix("cdp_").removesuffix("_run") + "-password-0123"
            with psycopg.connect(_url_for(warehouse_url, login, password)) as conn:
                assert conn.execute("SELECT pg_has_role(%s, 'MEMBER')", (role,)).fetchone()[0]
                assert not conn.execute("SELECT pg_has_role('cdp_loader', 'MEMBER')").fetchone()[0]
        with psycopg.connect(_url_for(warehouse_url, "cdp_pipeline", "pipeline-password-0123")) as conn:
            assert conn.execute("SELECT pg_has_role('cdp_loader', 'MEMBER')").fetchone()[0]
            assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[
                0
            ]
    finally:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS cdp_pipeline")
            conn.execute("DROP ROLE IF EXISTS cdp_webhook_intake")
            conn.execute("DROP ROLE IF EXISTS cdp_reconcile_run")
            conn.execute("DROP ROLE IF EXISTS cdp_dedupe_run")
            conn.execute("DROP ROLE IF EXISTS cdp_evidence_run")
            conn.execute("DROP ROLE IF EXISTS cdp_funder_report_run")


def test_a_dag_task_runs_as_the_pipelines_login(
    load_dag, login, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = login("cdp_loader")
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", pipeline)
    monkeypatch.setenv("CDP_IMPORT_FOLDERS", str(tmp_path))
    sheet = tmp_path / "legacy_referrals.csv"
    sheet.write_text("Ref,Referrer email,Referred email,Date,Status\nnot,a,valid,row,here\n")
    dag = load_dag("referral_migration").partial_subset(
        "import_legacy_sheet", include_upstream=False, include_downstream=False
    )

    assert dag.test(run_conf={"legacy_file": str(sheet)}).state == "success"

    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM raw.records").fetchone()[0] >= 1
        roles = {row[0] for row in conn.execute("SELECT DISTINCT session_role FROM audit.audit_events")}
    assert roles == {urlsplit(pipeline).username}


@pytest.mark.slow
def test_the_whole_sync_runs_as_the_pipelines_login(
    load_dag, login, warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdp.sync.specs import SCHEDULED_SPECS
    from cdp_sandbox.devserver import connection_env
    from cdp_sandbox.generator import World
    from cdp_sandbox.server import SandboxServer

    pipeline = login("cdp_loader")
    with SandboxServer(World(seed=5, learners=60), ledger_folder=tmp_path / "ledger-drop") as sandbox:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", pipeline)
        for source in {spec.source for spec in SCHEDULED_SPECS}:
            monkeypatch.setenv(
                *connection_env(source, sandbox.settings(source, max_attempts=2, retry_base_delay=0.01))
            )
        dag_run = load_dag("cdp_sync").test()

    failed = [ti.task_id for ti in dag_run.get_task_instances() if str(ti.state) != "success"]
    assert dag_run.state == "success", failed
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM core.person").fetchone()[0] > 0
        roles = {row[0] for row in conn.execute("SELECT DISTINCT session_role FROM audit.audit_events")}
    assert roles == {urlsplit(pipeline).username}


@pytest.mark.slow
def test_cdp_migrate_on_the_embedded_server_gives_each_process_its_own_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cdp.warehouse import migrations_url, process_environment
    from cdp.warehouse.embedded import default_server

    monkeypatch.setenv("CDP_HOME", str(tmp_path / "state"))
    server = default_server()
    try:
        assert main(["migrate"]) == 0
        assert "embedded warehouse logins:" in capsys.readouterr().out
        urls = {purpose: resolve_url(purpose=purpose) for purpose in PROCESS_LOGINS}
        assert {purpose: urlsplit(url).username for purpose, url in urls.items()} == {
            purpose: login for purpose, (login, _role) in PROCESS_LOGINS.items()
        }
        assert urlsplit(migrations_url()).username == "postgres"  # the superuser: migrations only
        environment = process_environment()
        assert environment == {
            "AIRFLOW_CONN_WAREHOUSE": urls[PIPELINE],
            "AIRFLOW_CONN_WAREHOUSE_WEBHOOK": urls[WEBHOOK],
            "AIRFLOW_CONN_WAREHOUSE_RECONCILE": urls["reconcile"],  # the DAG families' own logins
            "AIRFLOW_CONN_WAREHOUSE_DEDUPE": urls["dedupe"],
            "AIRFLOW_CONN_WAREHOUSE_EVIDENCE": urls["evidence"],
            "AIRFLOW_CONN_WAREHOUSE_FUNDER_REPORT": urls["funder_report"],
        }
        assert main(["warehouse", "url"]) == 0
        assert urlsplit(capsys.readouterr().out.strip()).username == "cdp_operator"
        with psycopg.connect(urls[OPERATOR]) as conn:
            assert conn.execute("SELECT pg_has_role('cdp_admin', 'MEMBER')").fetchone()[0]
            assert not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[
                0
            ]
        assert stat.S_IMODE((server.root / "logins.json").stat().st_mode) == 0o600
    finally:
        server.destroy()
