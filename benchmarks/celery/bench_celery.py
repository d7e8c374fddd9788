"""2-hourly ``cdp_sync`` runs through the CeleryExecutor: one Celery worker beside two, in one run (issue 20, item 6).

    .venv/bin/python benchmarks/celery/bench_celery.py --learners 1000000 --intervals 12
    .venv/bin/python benchmarks/celery/bench_celery.py --learners 2000 --intervals 2     # a smoke run

What runs, all real and on this machine: one embedded PostgreSQL (``cdp.warehouse.embedded``) holding the
warehouse and Airflow's metadata in databases of their own, the vendor sandbox serving a ``World`` of
``--learners`` learners whose records span one year (2024), and for each configuration a fresh Redis, a fresh
migrated warehouse, a fresh metadata database and its own Airflow (``tests/airflow_cluster.py``: api-server,
scheduler, dag-processor, triggerer on the CeleryExecutor) with one or two ``airflow celery worker`` processes
of the same ``--concurrency`` on Airflow's default queue. Each configuration runs the same ``--intervals``
consecutive 2-hour intervals of ``cdp_sync`` (from ``--first-interval``) as one backfill with
``--max-active-runs 1``, production's ``max_active_runs`` (``dags/cdp_sync.py``): every run pulls the records
its vendors changed in its 2 hours, 25 streams in their vendors' pools, as the scheduled runs do. Every
stream's watermark is set at the first interval's start beforehand (``ops.sync_watermark``), as a warehouse
that has been syncing has it: without it the first run would be an initial full sync of half the year
(``benchmarks/sync/`` measures that). The warehouse holds nothing from before the watermark; records read,
landed and quarantined are counted from ``ops.sync_run``.

The scheduler's cap on running tasks (``core.parallelism``, 2 in the test clusters) is raised to the
workers' total slots, so it never binds before the workers do.

What is reported per configuration, from Airflow's metadata database (``dag_run``, ``task_instance``,
``celery_taskmeta``) once the backfill completed:
- runs per hour: 3600 / the median run's wall time (start to end of the dag_run; runs are sequential,
  so this is the throughput of consecutive runs), and over the whole backfill (runs / first start to last end);
- task duration (start_date to end_date): median and p95;
- the scheduler's overhead per task: scheduled → queued (``scheduled_dttm`` to ``queued_dttm``: the scheduler
  deciding, pools, sending to Celery) and queued → start (``queued_dttm`` to ``start_date``: Redis, a worker
  slot, the task process starting), medians and p95;
- tasks per Celery worker (``celery_taskmeta.worker``), and records the runs read (``ops.sync_run``).
The two-workers/one-worker ratio of each figure, and a month (360 runs) extrapolated from the measured median.
Results are appended as one JSON line per run of the script to ``benchmarks/celery/runs.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT / "benchmarks" / ".data" / "celery"
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's real-process helpers: Airflow, Redis

import psycopg  # noqa: E402
from airflow_cluster import (  # noqa: E402
    DEFAULT_QUEUE,
    AirflowCluster,
    CeleryWorker,
    drop_metadata_database,
    metadata_database,
)
from redis_server import RedisServer  # noqa: E402
from support import cluster_connections, create_database, drop_database  # noqa: E402

INTERVAL = timedelta(hours=2)
MONTH_RUNS = 30 * 24 // 2  # a 30-day month of 2-hourly runs
WORLD_START = datetime(2024, 1, 1, tzinfo=UTC)
WORLD_END = datetime(2025, 1, 1, tzinfo=UTC)


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def run_configuration(
    args: argparse.Namespace, pg: Any, template: str, sandbox: Any, workers: int, home: Path
) -> dict[str, Any]:
    """One configuration on its own Redis, warehouse, metadata database and Airflow: its figures."""
    warehouse = create_database(pg, template)
    set_watermarks(pg.url(warehouse), args.first_interval)
    metadata, metadata_url = metadata_database(pg)
    redis = RedisServer(home / "redis")
    pool = [CeleryWorker(f"worker{n + 1}", (DEFAULT_QUEUE,), args.concurrency) for n in range(workers)]
    cluster: AirflowCluster | None = None
    try:
        redis.start()
        cluster = AirflowCluster(
            home / "airflow", metadata_url, cluster_connections(sandbox, pg.url(warehouse)),
            executor="CeleryExecutor", broker_url=redis.url, workers=pool,
        )  # fmt: skip
        # The workers' slots, not the scheduler's cap, are what is compared.
        cluster.env["AIRFLOW__CORE__PARALLELISM"] = str(max(2, workers * args.concurrency))
        began = time.monotonic()
        cluster.start()
        startup = time.monotonic() - began
        first = args.first_interval
        last = first + INTERVAL * (args.intervals - 1)
        cluster.airflow(
            "backfill", "create", "--dag-id", "cdp_sync", "--from-date", (first + INTERVAL).isoformat(),
            "--to-date", (last + INTERVAL).isoformat(), "--max-active-runs", "1",
        )  # fmt: skip
        began = time.monotonic()
        cluster.wait(
            lambda: cluster.query("SELECT completed_at FROM backfill")[0][0], args.timeout,
            f"the backfill of {args.intervals} intervals with {workers} worker(s) did not complete",
        )  # fmt: skip
        backfill_seconds = time.monotonic() - began
        # Celery writes a task's result a moment after Airflow's state: wait for every task's worker.
        cluster.wait(
            lambda: not _tasks_without_worker(cluster), 120, "Celery did not record every task's worker"
        )
        figures = _figures(cluster, pg.url(warehouse))
        figures |= {
            "workers": workers,
            "startup_s": round(startup, 1),
            "backfill_s": round(backfill_seconds, 1),
        }
        return figures
    finally:
        if cluster is not None:
            cluster.stop()
        redis.stop()
        drop_metadata_database(pg, metadata)
        drop_database(pg, warehouse)


def set_watermarks(url: str, at: datetime) -> None:
    """Every scheduled stream's watermark at the first interval's start: the warehouse has been syncing every
    2 hours, so each run reads its own interval (less the overlap), not the whole history a first sync reads."""
    from cdp.sync.specs import SCHEDULED_SPECS

    with psycopg.connect(url) as conn:
        for spec in SCHEDULED_SPECS:
            conn.execute(
                "INSERT INTO ops.sync_watermark (source, stream, watermark, run_id) VALUES (%s, %s, %s, %s)",
                (spec.source, spec.stream, at, "bench_celery_before"),
            )


TASKS = """
    SELECT ti.task_id, ti.state, ti.try_number,
           extract(epoch FROM ti.end_date - ti.start_date),
           extract(epoch FROM ti.start_date - ti.queued_dttm),
           extract(epoch FROM ti.queued_dttm - ti.scheduled_dttm),
           m.worker
    FROM task_instance ti JOIN dag_run r USING (dag_id, run_id)
    LEFT JOIN celery_taskmeta m ON m.task_id = ti.external_executor_id
    WHERE ti.dag_id = 'cdp_sync' AND r.backfill_id IS NOT NULL"""


def _tasks_without_worker(cluster: AirflowCluster) -> list[tuple]:
    return [row for row in cluster.query(TASKS) if row[1] == "success" and row[6] is None]


def _figures(cluster: AirflowCluster, warehouse_url: str) -> dict[str, Any]:
    runs = cluster.query(
        "SELECT run_id, state, extract(epoch FROM end_date - start_date), start_date, end_date FROM dag_run"
        " WHERE dag_id = 'cdp_sync' AND backfill_id IS NOT NULL ORDER BY data_interval_end"
    )
    tasks = cluster.query(TASKS)
    seconds = [float(row[2]) for row in runs]
    span = (max(row[4] for row in runs) - min(row[3] for row in runs)).total_seconds()
    durations = [float(t[3]) for t in tasks if t[3] is not None]
    queued_to_start = [float(t[4]) for t in tasks if t[4] is not None]
    scheduled_to_queued = [float(t[5]) for t in tasks if t[5] is not None]
    by_worker: dict[str, int] = {}
    for task in tasks:
        node = (task[6] or "none").split("@")[0]
        by_worker[node] = by_worker.get(node, 0) + 1
    with psycopg.connect(warehouse_url) as conn:
        records, landed, quarantined, streams = conn.execute(
            "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_landed), 0),"
            " coalesce(sum(rows_quarantined), 0), count(*) FROM ops.sync_run"
        ).fetchone()
    run_median = median(seconds)

    def two(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "runs": len(runs),
        "run_states": sorted({row[1] for row in runs}),
        "run_s": [round(s, 1) for s in seconds],
        "run_s_median": two(run_median),
        "runs_per_hour_median": two(3600 / run_median) if run_median else None,
        "runs_per_hour_overall": two(len(runs) * 3600 / span) if span else None,
        "tasks": len(tasks),
        "task_states": sorted({t[1] for t in tasks}),
        "retries": sum(1 for t in tasks if t[2] and t[2] > 1),
        "task_s_median": two(median(durations)),
        "task_s_p95": two(percentile(durations, 0.95)),
        "queued_to_start_s_median": two(median(queued_to_start)),
        "queued_to_start_s_p95": two(percentile(queued_to_start, 0.95)),
        "scheduled_to_queued_s_median": two(median(scheduled_to_queued)),
        "scheduled_to_queued_s_p95": two(percentile(scheduled_to_queued, 0.95)),
        "tasks_by_worker": dict(sorted(by_worker.items())),
        "stream_runs": streams,
        "records_read": int(records),
        "records_landed": int(landed),
        "records_quarantined": int(quarantined),
        "month_hours_extrapolated": two(MONTH_RUNS * run_median / 3600) if run_median else None,
        "interval_share_extrapolated": two(run_median / INTERVAL.total_seconds()) if run_median else None,
    }


RATIOS = (
    "runs_per_hour_median", "runs_per_hour_overall", "task_s_median", "queued_to_start_s_median",
    "scheduled_to_queued_s_median",
)  # fmt: skip


def report(result: dict[str, Any]) -> str:
    """The figures as a Markdown table: one column a configuration, and the ratio of the last to the first."""
    configs = result["configurations"]
    rows = [
        ("runs (state)", lambda c: f"{c['runs']} ({', '.join(c['run_states'])})"),
        ("run wall s, median", lambda c: c["run_s_median"]),
        ("**runs per hour** (3600 / median run)", lambda c: f"**{c['runs_per_hour_median']}**"),
        ("runs per hour over the backfill", lambda c: c["runs_per_hour_overall"]),
        ("task duration s, median / p95", lambda c: f"{c['task_s_median']} / {c['task_s_p95']}"),
        ("scheduled → queued s, median / p95",
         lambda c: f"{c['scheduled_to_queued_s_median']} / {c['scheduled_to_queued_s_p95']}"),
        ("queued → start s, median / p95",
         lambda c: f"{c['queued_to_start_s_median']} / {c['queued_to_start_s_p95']}"),
        ("tasks (retried) by worker", lambda c: f"{c['tasks']} ({c['retries']}): "
         + ", ".join(f"{k} {v}" for k, v in c["tasks_by_worker"].items())),
        ("records read / quarantined", lambda c: f"{c['records_read']:,} / {c['records_quarantined']:,}"),
        ("month of 360 runs, hours back to back (**extrapolated**)", lambda c: c["month_hours_extrapolated"]),
        ("share of each 2-hour interval busy (**extrapolated**)", lambda c: c["interval_share_extrapolated"]),
    ]  # fmt: skip
    head = "| measure | " + " | ".join(f"{c['workers']} worker(s) × {result['concurrency']}" for c in configs)
    lines = [head + " |", "| --- |" + " --- |" * len(configs)]
    lines += [f"| {name} | " + " | ".join(str(cell(c)) for c in configs) + " |" for name, cell in rows]
    if len(configs) == 2:
        lines.append("")
        lines.append(
            "ratio two workers / one: "
            + ", ".join(f"{key} {value}" for key, value in result["ratio_two_to_one"].items())
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=1_000_000)
    parser.add_argument("--intervals", type=int, default=12, help="consecutive 2-hour runs (12: a day)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots of each Celery worker")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, in this order")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--first-interval", type=lambda s: datetime.fromisoformat(s).astimezone(UTC),
                        default=datetime(2024, 6, 3, tzinfo=UTC), help="start of the first interval (UTC)")  # fmt: skip
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds a configuration's backfill may take"
    )
    parser.add_argument("--out", type=Path, default=HERE / "runs.jsonl")
    args = parser.parse_args(argv)

    from cdp.warehouse.embedded import EmbeddedServer
    from cdp.warehouse.migrations import upgrade
    from cdp_sandbox.generator import World
    from cdp_sandbox.server import SandboxServer

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_start": load_average(),
        "learners": args.learners,
        "intervals": args.intervals,
        "first_interval": args.first_interval.isoformat(),
        "concurrency": args.concurrency,
        "command": " ".join([".venv/bin/python", "benchmarks/celery/bench_celery.py", *sys.argv[1:]]),
    }
    DATA.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-celery-", dir=DATA))
    pg = EmbeddedServer(DATA / "pg")
    pg.start()
    template = "bench_celery_template"
    try:
        began = time.monotonic()
        pg.ensure_database(template)
        upgrade(pg.url(template))
        print(f"warehouse template migrated in {time.monotonic() - began:.0f} s", flush=True)

        began = time.monotonic()
        world = World(seed=args.seed, learners=args.learners, start=WORLD_START, end=WORLD_END)
        result["world_s"] = round(time.monotonic() - began, 1)
        result["world_records"] = sum(world.truth.expected_counts().values())
        result["bench_peak_rss_mib_after_world"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"world of {args.learners:,} learners ({result['world_records']:,} records) in {result['world_s']} s,"
              f" peak RSS {result['bench_peak_rss_mib_after_world']} MiB", flush=True)  # fmt: skip
        with SandboxServer(world, ledger_folder=scratch / "ledger") as sandbox:
            configs = []
            for workers in (int(n) for n in args.workers.split(",")):
                began = time.monotonic()
                figures = run_configuration(args, pg, template, sandbox, workers, scratch / f"w{workers}")
                configs.append(figures)
                print(
                    f"{workers} worker(s): {json.dumps(figures)} ({time.monotonic() - began:.0f} s)",
                    flush=True,
                )
        result["configurations"] = configs
        if len(configs) == 2:
            result["ratio_two_to_one"] = {
                key: round(configs[1][key] / configs[0][key], 2)
                for key in RATIOS
                if configs[0].get(key) and configs[1].get(key) is not None
            }
        result["load_average_end"] = load_average()
    finally:
        pg.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    with args.out.open("a") as out:
        out.write(json.dumps(result) + "\n")
    print(report(result))
    print(f"load average at start {result['load_average_start']}, at end {result['load_average_end']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
