"""docker-compose.yaml, the path to production: valid by the Compose Specification's JSON schema (vendored,
see schema/SOURCE.md) and built the way the issue says. No Docker engine runs here, so the file is checked,
not started. Each rule is also shown to catch the mistake it is there for."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from cdp.sources.registry import STREAMS
from cdp.webhooks.config import SOURCES as WEBHOOK_SOURCES

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("schema") / "compose-spec.json"
DEFAULT_QUEUE = "default"  # Airflow's operators.default_queue, which compose does not change
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-worker-heavy")  # fmt: skip
REQUIRED_SERVICES = (*AIRFLOW_SERVICES, "airflow-init", "redis", "airflow-db", "warehouse-db")
CONNECTIONS = (
    "AIRFLOW_CONN_WAREHOUSE",
    "AIRFLOW_CONN_SLACK_ALERTS",
    "AIRFLOW_CONN_CERTIFICATES",  # the certificate service of the completion triggers (phase 3)
    *(f"AIRFLOW_CONN_{source.upper()}" for source in STREAMS),
    *(f"AIRFLOW_CONN_WEBHOOK_{source.upper()}" for source in WEBHOOK_SOURCES),
)


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def _validator() -> jsonschema.protocols.Validator:
    schema = yaml.safe_load(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(doc)]


def _host(url: str) -> str:
    return urlsplit(re.sub(r"\$\{[^}]*\}", "x", url)).hostname or ""


def _image_of(doc: dict, service: str) -> str:
    return doc["services"][service].get("image", "")


def _served_queues(services: dict) -> set[str]:
    """The Celery queues some worker service consumes (``--queues``, else Airflow's default queue)."""
    served: set[str] = set()
    for service in services.values():
        command = str(service.get("command", ""))
        if command.startswith("celery worker"):
            named = re.search(r"--queues[ =](\S+)", command)
            served |= set(named.group(1).split(",")) if named else {DEFAULT_QUEUE}
    return served


def compose_problems(doc: dict, dockerfile: str) -> list[str]:
    """What is wrong with a compose file against the deployment rules (empty when all hold)."""
    problems = []
    services = doc.get("services", {})
    problems += [f"service {name} is missing" for name in REQUIRED_SERVICES if name not in services]
    if problems:
        return problems
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        service = services[name]
        env = service.get("environment", {})
        if env.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
            problems.append(f"{name} does not run the CeleryExecutor")
        if _host(env.get("AIRFLOW__CELERY__BROKER_URL", "")) != "redis":
            problems.append(f"{name}'s Celery broker is not the redis service")
        problems += [f"{name} lacks {conn}" for conn in CONNECTIONS if conn not in env]
        metadata = _host(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""))
        warehouse = _host(env.get("AIRFLOW_CONN_WAREHOUSE", ""))
        if metadata != "airflow-db":
            problems.append(f"{name}'s metadata database is {metadata!r}, not airflow-db")
        if warehouse != "warehouse-db":
            problems.append(f"{name}'s warehouse is {warehouse!r}, not warehouse-db")
        build = service.get("build", {})
        if (build.get("dockerfile") if isinstance(build, dict) else None) != "Dockerfile":
            problems.append(f"{name} is not built from the project's Dockerfile")
    served = _served_queues(services)
    for name in AIRFLOW_SERVICES:
        queue = services[name].get("environment", {}).get("CDP_HEAVY_QUEUE")
        if queue and queue not in served:
            problems.append(f"{name} sends heavy tasks to queue {queue!r}, which no Celery worker serves")
    if DEFAULT_QUEUE not in served:
        problems.append(f"no Celery worker serves the default queue {DEFAULT_QUEUE!r}")
    images = {name: _image_of(doc, name) for name in ("airflow-db", "warehouse-db")}
    if not all(image.startswith("postgres:") for image in images.values()):
        problems.append(f"both databases must be Postgres: {images}")
    volumes = {name: {str(v).split(":")[0] for v in services[name].get("volumes", [])}
               for name in ("airflow-db", "warehouse-db")}  # fmt: skip
    if not volumes["airflow-db"] or volumes["airflow-db"] & volumes["warehouse-db"]:
        problems.append(
            "Airflow's metadata and the warehouse must be separate Postgres servers with their own volumes"
        )
    if "requirements.txt" not in dockerfile or not re.search(
        r"pip install[^\n]*-r [^\n]*requirements\.txt", dockerfile
    ):
        problems.append("the image does not install requirements.txt")
    if not re.search(r"pip install[^\n]*--no-deps[^\n]*/opt/cdp", dockerfile):
        problems.append("the image does not install the cdp package")
    for folder in ("dags", "plugins", "include", "sql"):
        if not re.search(rf"^COPY .*\b{folder}\b", dockerfile, re.MULTILINE):
            problems.append(f"the image does not contain {folder}/")
    return problems


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


def test_the_vendored_schema_is_the_one_recorded() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert (SCHEMA.parent / "LICENSE.compose-spec").read_text().lstrip().startswith("Apache License")


def test_compose_file_is_valid_by_the_compose_schema() -> None:
    assert _schema_errors(_compose()) == []


def test_the_schema_check_rejects_an_invalid_file() -> None:
    doc = _compose()
    broken = copy.deepcopy(doc)
    broken["services"]["redis"]["restart"] = 5
    broken["services"]["airflow-worker"]["healthcheck"]["intervall"] = "10s"
    broken["servics"] = {}
    errors = _schema_errors(broken)
    assert any("redis/restart" in e for e in errors), errors
    assert any("intervall" in e for e in errors), errors
    assert any("servics" in e for e in errors), errors


def test_compose_file_follows_the_deployment_rules(dockerfile: str) -> None:
    assert compose_problems(_compose(), dockerfile) == []


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda d: d["services"].pop("airflow-dag-processor"), "service airflow-dag-processor is missing"),
        (lambda d: d["services"]["airflow-worker"]["environment"].pop("AIRFLOW_CONN_STRIPE"),
         "airflow-worker lacks AIRFLOW_CONN_STRIPE"),
        (lambda d: d["services"]["airflow-scheduler"]["environment"].update(
            AIRFLOW_CONN_WAREHOUSE="postgres://airflow:x@airflow-db/airflow"),
         "airflow-scheduler's warehouse is 'airflow-db', not warehouse-db"),
        (lambda d: d["services"]["warehouse-db"].update(volumes=["airflow-db-data:/var/lib/postgresql/data"]),
         "must be separate Postgres servers"),
        (lambda d: d["services"]["airflow-triggerer"]["environment"].update(AIRFLOW__CORE__EXECUTOR="LocalExecutor"),
         "airflow-triggerer does not run the CeleryExecutor"),
        (lambda d: d["services"]["airflow-apiserver"].pop("build"),
         "airflow-apiserver is not built from the project's Dockerfile"),
        (lambda d: d["services"]["airflow-worker-heavy"].update(command="celery worker --queues hevy"),
         "airflow-scheduler sends heavy tasks to queue 'heavy', which no Celery worker serves"),
        (lambda d: d["services"]["airflow-worker"].update(command="celery worker --queues heavy"),
         "no Celery worker serves the default queue 'default'"),
    ],
    ids=["no-dag-processor", "no-source-connection", "warehouse-in-metadata-db", "shared-volume", "local-executor",
         "stock-image", "heavy-queue-unserved", "default-queue-unserved"],
)  # fmt: skip
def test_each_rule_catches_its_mistake(break_it, expected: str, dockerfile: str) -> None:
    doc = _compose()
    break_it(doc)
    problems = compose_problems(doc, dockerfile)
    assert any(expected in problem for problem in problems), problems


def test_an_image_without_the_requirements_is_caught(dockerfile: str) -> None:
    stripped = "\n".join(line for line in dockerfile.splitlines() if "requirements.txt" not in line)
    assert "the image does not install requirements.txt" in compose_problems(_compose(), stripped)


def test_the_image_is_the_pinned_airflow_version(dockerfile: str) -> None:
    pinned = re.search(r"^apache-airflow==(\S+)", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    base = re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:(\d+\.\d+\.\d+)", dockerfile, re.MULTILINE)
    assert pinned and base and base.group(1) == pinned.group(1)


def test_every_variable_the_compose_file_needs_is_in_the_env_example() -> None:
    text = (REPO / "docker-compose.yaml").read_text()
    needed = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::?-[^}]*)?\}", text))
    example = {line.split("=", 1)[0] for line in (REPO / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    optional = {
        "CDP_IMAGE",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_PARALLELISM",
        "AIRFLOW_WORKER_CONCURRENCY",
        "AIRFLOW_HEAVY_WORKER_CONCURRENCY",
    }
    assert needed - optional <= example, sorted(needed - optional - example)
