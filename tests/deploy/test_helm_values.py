"""deploy/helm/values.yaml, the Kubernetes path: values for the official Apache Airflow Helm chart that deploy the
shape docker-compose.yaml describes. No Kubernetes cluster or helm binary runs here, so the file is checked, not
deployed (no template is rendered): valid by the chart's own values.schema.json (vendored, see
schema/SOURCE.md), in step with compose (read from docker-compose.yaml itself, so there is one list of
connections, folders and pools), and with every Secret it names made by deploy/helm/create-secrets.sh (run here
with a stand-in kubectl). Each rule is also shown to catch the mistake it is there for."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from deploy.test_compose import DEFAULT_QUEUE
from deploy.test_pools import compose_pools

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / "deploy" / "helm"
SCHEMA = Path(__file__).with_name("schema") / "airflow-chart-values.schema.json"
SCHEMA_SHA256 = "27a1e197bbe91343ba7d8cb6b9914903a0b1f799fb80f06295a65046ad55a683"
CHART_WORKER_CONCURRENCY = 16  # the chart's config.celery.worker_concurrency when the values do not set it
HEAVY_SLOT_BYTES = (
    3 * 2**30
)  # README "Worker sizing": about 3 GiB per heavy slot (a full dedupe peaks at 2.5)
# What compose's airflow-init runs, in this order; the chart's migration job must run the same.
INIT_STEPS = ("airflow db migrate", "cdp migrate", "cdp warehouse logins", "python -m cdp.runtime.preflight")
# Set by the chart itself from its own values (executor, data.*, the fernet key, the API server's Service).
CHART_MANAGED = {
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__FERNET_KEY",
}
# Compose's init-only variable the chart gives otherwise: the chart's `uid`.
INIT_HANDLED_ELSEWHERE = {"AIRFLOW_UID"}
SECRET_KEYS = {
    "password",
    "pass",
    "fernetKey",
    "jwtSecret",
    "apiSecretKey",
    "webserverSecretKey",
    "brokerUrl",
    "metadataConnection",
    "resultBackendConnection",
}
SECRET_NAME = re.compile(r"AIRFLOW_CONN_|PASSWORD|SECRET|TOKEN|_URL$")
CREDENTIAL_IN_URL = re.compile(r"://[^/@:\s]+:[^/@\s]+@")


def _values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(doc)]


def _compose_default(value: object) -> str:
    """A compose value with its ``${VAR:-default}`` replaced by the default."""
    return re.sub(r"\$\{[A-Z_0-9]+:?-([^}]*)\}", r"\1", str(value))


def _bytes(quantity: str | int | None) -> int:
    """A Kubernetes memory quantity in bytes (0 when absent)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?)?", str(quantity or 0))
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    unit = match[2] or ""
    scale = (1024 if unit.endswith("i") else 1000) ** (" KMGT".index(unit[:1]) if unit else 0)
    return int(float(match[1]) * scale)


def _worker_sets(values: dict) -> list[dict]:
    """The Celery worker Deployments the chart makes: the default one (unless disabled) and each of `sets`,
    each with the values `workers.celery` gives it and its own on top (the chart's workersMergeValues)."""
    celery = values.get("workers", {}).get("celery", {})
    base = {key: value for key, value in celery.items() if key not in ("sets", "enableDefault")}
    sets = [{**base, "name": "default"}] if celery.get("enableDefault", True) else []
    return sets + [{**base, **item} for item in celery.get("sets", [])]


def _queues(worker: dict) -> set[str]:
    args = " ".join(worker.get("args") or [])
    named = re.search(r"(?:-q|--queues)[ =](\S+)", args)
    if named:
        return set(named[1].split(","))
    return {worker.get("queue") or DEFAULT_QUEUE}


def _concurrency(worker: dict, values: dict) -> int:
    args = " ".join(worker.get("args") or [])
    named = re.search(r"(?:-c|--concurrency)[ =](\d+)", args)
    if named:
        return int(named[1])
    env = {item["name"]: item.get("value") for item in worker.get("env") or []}
    if "AIRFLOW__CELERY__WORKER_CONCURRENCY" in env:
        return int(env["AIRFLOW__CELERY__WORKER_CONCURRENCY"])
    return int(values.get("config", {}).get("celery", {}).get("worker_concurrency", CHART_WORKER_CONCURRENCY))


def _env_items(values: dict):
    """Every env entry the values give a container: (where, entry)."""
    yield from (("env", item) for item in values.get("env", []))
    yield from (
        ("migrateDatabaseJob.env", item) for item in values.get("migrateDatabaseJob", {}).get("env", [])
    )
    for worker in _worker_sets(values):
        yield from ((f"worker set {worker['name']}", item) for item in worker.get("env") or [])
    for component in ("apiServer", "scheduler", "triggerer", "dagProcessor"):
        yield from ((f"{component}.env", item) for item in values.get(component, {}).get("env") or [])


def _walk(node: object, path: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
            yield f"{path}.{key}" if path else str(key), key, value
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, None, node


def _migration_script(values: dict) -> str:
    job = values.get("migrateDatabaseJob", {})
    return "\n".join(job.get("command") or []) + "\n" + "\n".join(job.get("args") or [])


def referenced_secrets(values: dict) -> set[tuple[str, str]]:
    """(Secret, key) pairs the values make Kubernetes read; the Ingress's TLS certificate is the operator's."""
    data = values.get("data", {})
    pairs = {(item["secretName"], item.get("secretKey", "value")) for item in values.get("secret", [])}
    pairs |= {(ref["name"], ref["key"]) for _where, item in _env_items(values)
              if (ref := item.get("valueFrom", {}).get("secretKeyRef"))}  # fmt: skip
    for name_key, key in (("fernetKeySecretName", "fernet-key"), ("apiSecretKeySecretName", "api-secret-key"),
                          ("jwtSecretName", "jwt-secret")):  # fmt: skip
        if values.get(name_key):
            pairs.add((values[name_key], key))
    if data.get("metadataSecretName"):
        pairs.add((data["metadataSecretName"], "connection"))
    for volume in values.get("volumes", []):
        if "secret" in volume:
            pairs |= {
                (volume["secret"]["secretName"], item["key"]) for item in volume["secret"].get("items", [])
            }
    return pairs


def helm_problems(values: dict, compose: dict, pinned_airflow: str) -> list[str]:
    """What is wrong with the Helm values against compose's shape and the deployment rules (empty when all hold)."""
    problems: list[str] = []
    common = compose["x-airflow-common"]["environment"]
    init_env = compose["services"]["airflow-init"]["environment"]
    env = {item["name"]: item.get("value") for item in values.get("env", [])}
    secrets = {item["envName"]: item for item in values.get("secret", [])}

    # The image: the project's, for every process and for the migration job.
    image = values.get("images", {})
    repository = str(image.get("airflow", {}).get("repository") or values.get("defaultAirflowRepository", ""))
    project_image = _compose_default(compose["x-airflow-common"]["image"]).split(":")[0]
    if repository.rsplit("/", 1)[-1] != project_image:
        problems.append(
            f"the Airflow image is {repository!r}, not the project's {project_image} (Dockerfile)"
        )
    if image.get("useDefaultImageForMigration"):
        problems.append("the migration job runs the stock image, which has no `cdp`")
    if str(values.get("airflowVersion")) != pinned_airflow:
        problems.append(f"airflowVersion is {values.get('airflowVersion')!r}, the image has {pinned_airflow}")

    # Celery with Redis; Airflow's metadata in an external Postgres that is not the warehouse.
    if "CeleryExecutor" not in str(values.get("executor", "")):
        problems.append("the executor is not the CeleryExecutor")
    if not values.get("redis", {}).get("enabled", True) and not values.get("data", {}).get(
        "brokerUrlSecretName"
    ):
        problems.append("no Celery broker: Redis is off and no broker URL is given")
    if values.get("postgresql", {}).get("enabled", True):
        problems.append(
            "the chart's bundled Postgres is on: Airflow's metadata belongs in its own external server"
        )
    metadata_secret = values.get("data", {}).get("metadataSecretName")
    warehouse_secrets = {
        item["secretName"] for name, item in secrets.items() if name.startswith("AIRFLOW_CONN_WAREHOUSE")
    }
    if not metadata_secret:
        problems.append("Airflow's metadata database is not given by data.metadataSecretName")
    elif metadata_secret in warehouse_secrets:
        problems.append(f"Airflow's metadata and the warehouse share the Secret {metadata_secret!r}")
    for component in ("apiServer", "triggerer", "dagProcessor"):
        if values.get(component, {}).get("enabled") is not True:
            problems.append(f"{component} is not enabled (compose runs it)")

    # Every Airflow process gets what compose's common environment gives: connections from Secrets, the rest equal.
    for name, value in common.items():
        if name.startswith("AIRFLOW_CONN_"):
            if name not in secrets:
                problems.append(f"{name} is not given to the Airflow processes from a Secret")
        elif name.startswith("CDP_") and env.get(name) != str(value):
            problems.append(f"{name} is {env.get(name)!r}, compose sets {value!r}")
        elif name.startswith("AIRFLOW__") and name not in CHART_MANAGED:
            _, section, key = name.lower().split("__", 2)
            if key == "worker_concurrency":
                continue  # per worker set: checked with the heavy queue's sizing
            given = values.get("config", {}).get(section, {}).get(key)
            if str(given).lower() != _compose_default(value).lower():
                problems.append(
                    f"config.{section}.{key} is {given!r}, compose sets {_compose_default(value)!r}"
                )

    # No credential written in the values: Secrets only.
    for where, item in _env_items(values):
        if SECRET_NAME.search(item["name"]) and "value" in item:
            problems.append(f"{where} gives {item['name']} inline instead of from a Secret")
    for path, key, value in _walk(values):
        if key in SECRET_KEYS and value not in (None, {}, ""):
            problems.append(f"{path} is written in the values instead of a Secret")
        if key is None and CREDENTIAL_IN_URL.search(value):
            problems.append(f"{path} holds a URL with a password")

    # The queues: the heavy queue named by CDP_HEAVY_QUEUE, and the default one, each served by a worker set.
    workers = _worker_sets(values)
    served = set().union(*(_queues(worker) for worker in workers)) if workers else set()
    heavy = env.get("CDP_HEAVY_QUEUE")
    if heavy and heavy not in served:
        problems.append(f"CDP_HEAVY_QUEUE sends heavy tasks to queue {heavy!r}, which no worker set serves")
    if DEFAULT_QUEUE not in served:
        problems.append(f"no worker set serves the default queue {DEFAULT_QUEUE!r}")
    for worker in (w for w in workers if heavy in _queues(w)):
        slots = _concurrency(worker, values)
        resources = worker.get("resources") or {}
        for kind in ("requests", "limits"):
            memory = _bytes((resources.get(kind) or {}).get("memory"))
            if memory < slots * HEAVY_SLOT_BYTES:
                problems.append(
                    f"worker set {worker['name']} has {slots} heavy slots but {kind}.memory "
                    f'{memory / 2**30:.1f} GiB; give about 3 GiB a slot (README "Worker sizing")'
                )

    # Compose's airflow-init as the chart's migration job: the same steps, pools and owner-only variables.
    job = values.get("migrateDatabaseJob", {})
    script = _migration_script(values)
    if not job.get("enabled", True):
        problems.append("the migration job is disabled")
    positions = [script.find(step) for step in INIT_STEPS]
    if -1 in positions or positions != sorted(positions):
        problems.append(f"the migration job does not run {', '.join(INIT_STEPS)} in this order")
    init_script = compose["services"]["airflow-init"]["command"][-1].replace("$$", "$")
    if compose_pools(script) != compose_pools(init_script):
        problems.append(
            f"the migration job creates the pools {compose_pools(script)}, compose "
            f"{compose_pools(init_script)}"
        )
    job_env = {item["name"]: item for item in job.get("env", [])}
    owner_secrets = set()
    for name in set(init_env) - set(common) - INIT_HANDLED_ELSEWHERE:
        ref = job_env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
        if not ref:
            problems.append(f"the migration job lacks {name} from a Secret (compose's airflow-init has it)")
        else:
            owner_secrets.add(ref["name"])
    if shared := owner_secrets & {item["secretName"] for item in secrets.values()}:
        problems.append(f"airflow-init's Secret {sorted(shared)} reaches every Airflow process")
    if owner_secrets and re.search(
        "|".join(map(re.escape, owner_secrets)), str(values.get("extraEnvFrom") or "")
    ):
        problems.append("airflow-init's Secret reaches every Airflow process through extraEnvFrom")

    # Compose's volumes: the same folders, mounted in every Airflow pod (task logs are the chart's own).
    mounts = {mount["mountPath"]: mount["name"] for mount in values.get("volumeMounts", [])}
    volumes = {volume["name"] for volume in values.get("volumes", [])}
    for entry in compose["x-airflow-common"]["volumes"]:
        name, path = str(entry).split(":")[:2]
        if path != "/opt/airflow/logs" and path not in mounts:
            problems.append(f"compose's volume {name} ({path}) is not mounted")
    problems += [f"volumeMount {name} names no volume" for name in mounts.values() if name not in volumes]
    # The Simple auth manager opens its passwords file for writing: a shared volume, which airflow-init's
    # work (the migration job) fills, as compose's airflow-init writes it into the airflow-secrets volume.
    passwords_file = values.get("config", {}).get("core", {}).get("simple_auth_manager_passwords_file", "")
    folder = str(Path(passwords_file).parent)
    if passwords_file and folder not in mounts:
        problems.append(f"the UI's passwords file {passwords_file} is on no mounted volume")
    elif passwords_file and any(v["name"] == mounts[folder] and ("secret" in v or "configMap" in v)
                                for v in values.get("volumes", [])):  # fmt: skip
        problems.append(f"the UI's passwords file {passwords_file} is on a read-only volume")
    if passwords_file and passwords_file not in script:
        problems.append(f"the migration job does not write the UI's passwords file {passwords_file}")

    # The API server takes the webhooks (senders need HTTPS) and serves the data-health page.
    ingress = values.get("ingress", {}).get("apiServer", {})
    if not ingress.get("enabled"):
        problems.append("the API server has no Ingress: webhook senders cannot reach the intake")
    problems += [f"the API server's host {host.get('name')!r} has no TLS (webhook senders need HTTPS)"
                 for host in ingress.get("hosts", []) if not host.get("tls", {}).get("enabled")]  # fmt: skip
    return problems


@pytest.fixture(scope="module")
def pinned_airflow() -> str:
    return re.search(r"^apache-airflow==(\S+)", (REPO / "requirements.txt").read_text(), re.MULTILINE)[1]


def test_the_vendored_schema_is_the_one_recorded() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert (SCHEMA.parent / "LICENSE.airflow-chart").read_text().lstrip().startswith("Apache License")
    assert SCHEMA_SHA256 in (SCHEMA.parent / "SOURCE.md").read_text()


def test_the_values_are_valid_by_the_charts_schema() -> None:
    assert _schema_errors(_values()) == []


def test_the_schema_check_rejects_invalid_values() -> None:
    broken = _values()
    broken["executor"] = "CeleryExecuter"
    broken["images"]["airflow"]["pullPolicy"] = "Sometimes"
    broken["workers"]["celery"]["replicas"] = "2"
    broken["migrateDatabaseJob"]["arg"] = broken["migrateDatabaseJob"].pop("args")
    broken["secret"].append({"envName": "AIRFLOW_CONN_X", "secretName": "s", "key": "k"})
    errors = _schema_errors(broken)
    assert any(e.startswith("executor:") for e in errors), errors
    assert any("pullPolicy" in e for e in errors), errors
    assert any(e.startswith("workers/celery/replicas:") for e in errors), errors
    assert any(e.startswith("migrateDatabaseJob:") and "'arg'" in e for e in errors), errors
    assert any(e.startswith("secret/") and "'key'" in e for e in errors), errors


def test_the_values_follow_compose_and_the_deployment_rules(pinned_airflow: str) -> None:
    assert helm_problems(_values(), _compose(), pinned_airflow) == []


def _heavy_set(values: dict) -> dict:
    return next(item for item in values["workers"]["celery"]["sets"] if item["name"] == "heavy")


def _secret_entry(values: dict, name: str) -> dict:
    return next(item for item in values["secret"] if item["envName"] == name)


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda v, c: v["images"]["airflow"].update(repository="apache/airflow"),
         "the Airflow image is 'apache/airflow', not the project's cdp-airflow"),
        (lambda v, c: v["images"].update(useDefaultImageForMigration=True), "the migration job runs the stock image"),
        (lambda v, c: v.update(airflowVersion="3.2.0"), "airflowVersion is '3.2.0'"),
        (lambda v, c: v.update(executor="KubernetesExecutor"), "the executor is not the CeleryExecutor"),
        (lambda v, c: v["postgresql"].update(enabled=True), "the chart's bundled Postgres is on"),
        (lambda v, c: v["data"].update(metadataSecretName="cdp-warehouse"),
         "Airflow's metadata and the warehouse share the Secret 'cdp-warehouse'"),
        (lambda v, c: v["triggerer"].update(enabled=False), "triggerer is not enabled"),
        (lambda v, c: v["secret"].remove(_secret_entry(v, "AIRFLOW_CONN_STRIPE")),
         "AIRFLOW_CONN_STRIPE is not given to the Airflow processes from a Secret"),
        (lambda v, c: v["secret"].remove(_secret_entry(v, "AIRFLOW_CONN_WAREHOUSE_DEDUPE")),
         "AIRFLOW_CONN_WAREHOUSE_DEDUPE is not given"),
        (lambda v, c: c["x-airflow-common"]["environment"].update(AIRFLOW_CONN_NEWSOURCE=""),
         "AIRFLOW_CONN_NEWSOURCE is not given"),
        (lambda v, c: v["env"].append({"name": "AIRFLOW_CONN_SLACK_ALERTS", "value": "https://hooks.slack.com/x"}),
         "env gives AIRFLOW_CONN_SLACK_ALERTS inline"),
        (lambda v, c: v["env"].append({"name": "AIRFLOW__CORE__X", "value": "postgres://u:pw@db/cdp"}),
         "holds a URL with a password"),
        (lambda v, c: v.update(fernetKey="Zm9v"), "fernetKey is written in the values"),
        (lambda v, c: v["redis"].update(password="hunter2"), "redis.password is written in the values"),
        (lambda v, c: v["env"][0].update(value="hevy"),
         "CDP_HEAVY_QUEUE sends heavy tasks to queue 'hevy', which no worker set serves"),
        (lambda v, c: _heavy_set(v).update(queue="big"), "queue 'heavy', which no worker set serves"),
        (lambda v, c: _heavy_set(v).update(args=["bash", "-c", "exec airflow celery worker -q other"]),
         "queue 'heavy', which no worker set serves"),
        (lambda v, c: v["workers"]["celery"].update(enableDefault=False),
         "no worker set serves the default queue 'default'"),
        (lambda v, c: _heavy_set(v)["resources"]["limits"].update(memory="2Gi"),
         "has 2 heavy slots but limits.memory 2.0 GiB"),
        (lambda v, c: _heavy_set(v).update(env=[]), "has 8 heavy slots but requests.memory 6.0 GiB"),
        (lambda v, c: c["x-airflow-common"]["environment"].update(CDP_IMPORT_FOLDERS="/data/imports"),
         "CDP_IMPORT_FOLDERS is '/opt/airflow/imports', compose sets '/data/imports'"),
        (lambda v, c: v["config"]["core"].pop("auth_manager"), "config.core.auth_manager is None"),
        (lambda v, c: v["migrateDatabaseJob"].update(args=["bash", "-c", "exec airflow db migrate"]),
         "the migration job does not run airflow db migrate, cdp migrate"),
        (lambda v, c: v["migrateDatabaseJob"].update(args=[v["migrateDatabaseJob"]["args"][2].replace(
            'pool galaxy_api 2 "Galaxy Digital volunteer platform"\n', "")]),
         "the migration job creates the pools"),
        (lambda v, c: v["migrateDatabaseJob"]["env"].pop(0),
         "the migration job lacks CDP_MIGRATIONS_URL from a Secret"),
        (lambda v, c: v["secret"].append({"envName": "CDP_MIGRATIONS_URL", "secretName": "cdp-warehouse-owner",
                                          "secretKey": "CDP_MIGRATIONS_URL"}),
         "airflow-init's Secret ['cdp-warehouse-owner'] reaches every Airflow process"),
        (lambda v, c: v.update(extraEnvFrom="- secretRef:\n    name: cdp-warehouse-owner\n"),
         "reaches every Airflow process through extraEnvFrom"),
        (lambda v, c: v["volumeMounts"].pop(1), "compose's volume audit-anchors (/opt/airflow/audit-anchors)"),
        (lambda v, c: v["volumes"].pop(0), "volumeMount data-health names no volume"),
        (lambda v, c: v["volumeMounts"].pop(), "the UI's passwords file /opt/airflow/secrets/passwords.json"),
        (lambda v, c: v["volumes"][-1].update(persistentVolumeClaim=None, secret={"secretName": "cdp-airflow-admin"}),
         "the UI's passwords file /opt/airflow/secrets/passwords.json is on a read-only volume"),
        (lambda v, c: v["migrateDatabaseJob"].update(args=[v["migrateDatabaseJob"]["args"][2].replace(
            "/opt/airflow/secrets/passwords.json", "/tmp/passwords.json")]),
         "the migration job does not write the UI's passwords file"),
        (lambda v, c: v["migrateDatabaseJob"]["env"].pop(),
         "the migration job lacks AIRFLOW_ADMIN_PASSWORD from a Secret"),
        (lambda v, c: v["ingress"]["apiServer"]["hosts"][0]["tls"].update(enabled=False),
         "the API server's host 'airflow.example.org' has no TLS"),
    ],
    ids=["stock-image", "stock-migration-image", "other-airflow", "not-celery", "bundled-postgres",
         "metadata-in-warehouse-secret", "no-triggerer", "no-source-connection", "no-dedupe-login",
         "new-compose-connection", "inline-connection", "password-in-url", "inline-fernet-key",
         "inline-redis-password", "heavy-queue-misnamed", "heavy-set-misqueued", "heavy-args-misqueued",
         "default-queue-unserved", "heavy-memory-limit", "heavy-slots-from-config", "folder-differs",
         "fab-auth-manager", "no-cdp-migrate", "pool-missing", "no-owner-url", "owner-everywhere",
         "owner-through-envfrom", "anchor-volume-unmounted", "mount-without-volume", "passwords-unmounted",
         "passwords-read-only", "passwords-not-written", "no-admin-password", "webhooks-without-tls"],
)  # fmt: skip
def test_each_rule_catches_its_mistake(break_it, expected: str, pinned_airflow: str) -> None:
    values, compose = _values(), _compose()
    break_it(values, compose)
    problems = helm_problems(values, compose, pinned_airflow)
    assert any(expected in problem for problem in problems), problems


def test_the_pvcs_mounted_are_the_ones_deploy_helm_volumes_yaml_makes() -> None:
    claims = {
        v["persistentVolumeClaim"]["claimName"] for v in _values()["volumes"] if "persistentVolumeClaim" in v
    }
    made = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all((HELM / "volumes.yaml").read_text())}
    assert claims and claims == set(made), (claims, set(made))
    # Workers on several nodes write them and the API server reads them: ReadWriteMany.
    assert all(doc["spec"]["accessModes"] == ["ReadWriteMany"] for doc in made.values())


# The stand-in kubectl: `create … --dry-run=client -o yaml` prints its arguments as one JSON line, `apply -f -`
# appends what it reads to the log, `get secret` finds nothing (a first install).
FAKE_KUBECTL = """#!{python}
import json, sys
args = sys.argv[1:]
if args[:1] == ["get"]:
    sys.exit(1)
if args[:1] == ["create"]:
    print(json.dumps(args))
elif args[:1] == ["apply"]:
    with open({log!r}, "a") as log:
        log.write(sys.stdin.read())
"""


def _env_file(tmp_path: Path, changes: dict[str, str]) -> Path:
    """.env.example with every password filled in, as an operator's .env, and `changes` made to it."""
    lines = []
    for line in (REPO / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in changes:
            line = f"{name}={changes[name]}"
        elif line.endswith("="):
            line = f"{name}={name.lower().replace('_', '-')}-0123456789abcdef"
        lines.append(line)
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def _create_secrets(
    tmp_path: Path, script: str, file_changes: dict[str, str] | None = None, **env: str
) -> tuple[subprocess.CompletedProcess, dict]:
    log = tmp_path / "applied.jsonl"
    log.unlink(missing_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable, log=str(log)))
    kubectl.chmod(0o755)
    script_path = tmp_path / "create-secrets.sh"
    script_path.write_text(script)
    environment = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
                   "AIRFLOW_METADATA_URL": "postgresql+psycopg2://airflow:pw-0123456789@airflow-db.example.org:5432/airflow",
                   "WAREHOUSE_ADDRESS": "warehouse.example.org:5432/cdp", **env}  # fmt: skip
    result = subprocess.run(["bash", str(script_path), str(_env_file(tmp_path, file_changes or {}))], env=environment,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    made: dict[str, dict[str, str]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        args = json.loads(line)
        literals = [arg.removeprefix("--from-literal=") for arg in args if arg.startswith("--from-literal=")]
        made[args[3]] = dict(literal.split("=", 1) for literal in literals)
    return result, made


def missing_secrets(values: dict, made: dict[str, dict[str, str]]) -> list[str]:
    return sorted(
        f"{name}/{key}" for name, key in referenced_secrets(values) if key not in made.get(name, {})
    )


def test_create_secrets_makes_every_secret_and_key_the_values_name(tmp_path: Path) -> None:
    result, made = _create_secrets(tmp_path, (HELM / "create-secrets.sh").read_text())
    assert result.returncode == 0, result.stderr
    assert missing_secrets(_values(), made) == []
    warehouse, owner = made["cdp-warehouse"], made["cdp-warehouse-owner"]
    # Each family logs in as its own role; only the owner Secret, which the migration job alone reads, has cdp_owner.
    assert warehouse["AIRFLOW_CONN_WAREHOUSE"].startswith("postgres://cdp_pipeline:cdp-pipeline-password-")
    assert warehouse["AIRFLOW_CONN_WAREHOUSE_WEBHOOK"].startswith("postgres://cdp_webhook_intake:")
    assert not any("cdp_owner" in url for url in warehouse.values())
    assert owner["CDP_MIGRATIONS_URL"] == (
        "postgres://cdp_owner:warehouse-owner-password-0123456789abcdef@warehouse.example.org:5432/cdp"
    )
    assert made["cdp-airflow-admin"] == {"AIRFLOW_ADMIN_PASSWORD": "airflow-admin-password-0123456789abcdef"}
    # The connections come from the env file as written (JSON included).
    assert json.loads(made["cdp-connections"]["AIRFLOW_CONN_STRIPE"])["host"] == "https://api.stripe.com"


def test_a_secret_the_script_forgets_is_caught(tmp_path: Path) -> None:
    script = (HELM / "create-secrets.sh").read_text().replace("CERTIFICATES SLACK_ALERTS", "SLACK_ALERTS")
    result, made = _create_secrets(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert missing_secrets(_values(), made) == ["cdp-connections/AIRFLOW_CONN_CERTIFICATES"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AIRFLOW_METADATA_URL": "postgresql://airflow:pw@warehouse.example.org:5432/airflow"},
         "Airflow's metadata needs a Postgres server of its own"),
        ({"file:CDP_DEDUPE_PASSWORD": ""}, "error: set CDP_DEDUPE_PASSWORD"),
        ({"CDP_RECONCILE_PASSWORD": "short"}, "CDP_RECONCILE_PASSWORD must be URL-safe and 16 characters"),
        ({"CDP_WEBHOOK_PASSWORD": "has@and/in-it-0123456789"}, "CDP_WEBHOOK_PASSWORD must be URL-safe"),
        ({"WAREHOUSE_ADDRESS": "postgres://cdp_owner:pw@warehouse/cdp"}, "set WAREHOUSE_ADDRESS to host:port/database"),
    ],
    ids=["metadata-on-warehouse-server", "missing-password", "short-password", "unsafe-password", "address-with-login"],
)  # fmt: skip
def test_create_secrets_refuses_a_wrong_setup_saying_why(tmp_path: Path, env: dict, expected: str) -> None:
    in_file = {name.removeprefix("file:"): value for name, value in env.items() if name.startswith("file:")}
    in_environment = {name: value for name, value in env.items() if not name.startswith("file:")}
    result, made = _create_secrets(
        tmp_path, (HELM / "create-secrets.sh").read_text(), in_file, **in_environment
    )
    assert result.returncode == 2 and expected in result.stderr, (result.returncode, result.stderr)
    assert made == {}, "nothing is created before the setup is known to be right"


def test_the_readme_installs_with_these_files() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("Kubernetes (the official Helm chart)") :]
    for needed in (
        "helm repo add apache-airflow https://airflow.apache.org",
        "deploy/helm/values.yaml",
        "deploy/helm/create-secrets.sh",
        "deploy/helm/volumes.yaml",
        "--version 1.21.0",
    ):
        assert needed in section, needed
