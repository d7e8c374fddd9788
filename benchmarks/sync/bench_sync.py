"""Initial full sync from the sandbox: our engine beside a plain COPY and dlt's rest_api, in one run.

    .venv/bin/python benchmarks/sync/bench_sync.py --learners 100000 --repeats 3
    .venv/bin/python benchmarks/sync/bench_sync.py --memory-scales 10000,30000,100000 --contenders ours

What is compared (issue 3), every contender on the same embedded PostgreSQL server, one fresh database each:
- ``ours``: ``cdp.sync.engine.sync_stream`` for each stream, wave by wave as ``cdp_sync`` runs them, reading
  the sandbox's vendor APIs over HTTP: land in ``raw``, validate, quarantine, upsert into ``core``, audit.
- ``copy``: the practical limit. The rows ``ours`` wrote (``raw.records`` and the ``core`` tables it filled)
  dumped once and loaded with ``COPY … FROM STDIN (FORMAT binary)`` into the same tables of a freshly
  migrated database (same indexes, constraints and audit triggers), in one transaction.
- ``dlt``: dlt's ``rest_api`` source reading the same sandbox endpoints into the same server with dlt's
  own defaults (``benchmarks/sync/dlt_load.py``, in its own venv ``benchmarks/.venv-sync``).

The sandbox runs in its own process with ``--prerender`` (every record encoded once before serving), so a
page costs what a real API's does and the source is not the bottleneck being measured. Each contender
runs in a child process; its time is the load itself (imports excluded) and its peak memory is the
child's maximum resident set size. Rows per second count the source records read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT / "benchmarks" / ".data" / "sync"
DLT_PYTHON = ROOT / "benchmarks" / ".venv-sync" / "bin" / "python"
# The mix: learners, enrollments, donations (Stripe charges) and survey responses.
STREAMS = (
    "moodle.users",
    "moodle.courses",
    "moodle.enrollments",
    "stripe.charges",
    "typeform.responses",
    "zigpoll.participants",
    "zigpoll.responses",
)
# Parents before children, so a plain COPY satisfies the foreign keys.
COPY_TABLES = (
    "raw.records",
    "core.household",
    "core.person",
    "core.person_source_id",
    "core.organization",
    "core.organization_membership",
    "core.course",
    "core.enrollment",
    "core.course_completion",
    "core.donation",
    "core.consent",
    "core.survey_response",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(argv: list[str]) -> tuple[dict, float]:
    """Run one contender; return what it printed (JSON, last line) and the child's own peak RSS in MiB."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"contender failed ({process.returncode}): {' '.join(argv[:5])}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    out = json.loads(lines[-1])
    # The child's own high-water mark (VmHWM, reset at exec). ru_maxrss of a child is no use here: Linux
    # folds the parent's peak into it when the child execs after a vfork, as subprocess does.
    return out, out.pop("peak_rss_mib", usage.ru_maxrss / 1024)


def own_peak_rss_mib() -> float:
    """This process's peak resident memory since exec, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


# ------------------------------------------------------------------------------------------- contenders
def contender_ours(url: str, settings_json: str, end_epoch: int, streams: list[str]) -> dict:
    """The sync engine over HTTP. Only connection settings come in: building the generator's world here
    would count its memory, which grows with the data, against the sync's (which must not)."""
    from cdp.sources import registry
    from cdp.sources.base import SourceSettings
    from cdp.sync.engine import sync_stream
    from cdp.sync.specs import BY_KEY
    from cdp.warehouse import Actor

    settings = {
        source: SourceSettings(values.pop("base_url"), values.pop("credential"), values)
        for source, values in json.loads(settings_json).items()
    }
    end = datetime.fromtimestamp(end_epoch, UTC)
    actor = Actor("benchmark", "bench_sync", "bench", "sync")
    specs = sorted((BY_KEY[key] for key in streams), key=lambda spec: spec.wave)
    started = time.perf_counter()
    read = upserted = quarantined = 0
    for spec in specs:
        stream = registry.stream(spec.source, spec.stream, settings[spec.source])
        result = sync_stream(url, stream, spec, actor=actor, run_id="bench", interval_end=end)
        read += result.rows_read
        upserted += result.rows_upserted
        quarantined += result.rows_quarantined
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": read, "upserted": upserted, "quarantined": quarantined}


def contender_copy(url: str, dump: Path) -> dict:
    import psycopg

    rows = 0
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for table in COPY_TABLES:
            path = dump / f"{table}.bin"
            columns = (dump / f"{table}.columns").read_text()
            with (
                path.open("rb") as handle,
                conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)") as copy,
            ):
                while chunk := handle.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM raw.records").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def dump_rows(url: str, dump: Path) -> None:
    """What `ours` wrote, in COPY binary form, so the COPY contender loads exactly the same rows."""
    import psycopg

    dump.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(url) as conn:
        for table in COPY_TABLES:
            schema, name = table.split(".")
            columns = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                    " AND table_name = %s AND is_identity = 'NO' ORDER BY ordinal_position",
                    (schema, name),
                )
            ]
            listed = ", ".join(columns)
            (dump / f"{table}.columns").write_text(listed)
            with (
                (dump / f"{table}.bin").open("wb") as handle,
                conn.cursor().copy(f"COPY (SELECT {listed} FROM {table}) TO STDOUT (FORMAT binary)") as copy,
            ):
                for chunk in copy:
                    handle.write(chunk)


# ------------------------------------------------------------------------------------------- orchestration
def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


class Bench:
    def __init__(self, learners: int, streams: list[str]) -> None:
        from cdp.warehouse.embedded import EmbeddedServer

        self.learners, self.streams = learners, streams
        self.pg = EmbeddedServer(DATA / "pg")
        self.pg.start()
        self.template = f"bench_template_{os.getpid()}"
        self.databases: list[str] = []
        self._create(self.template)
        from cdp.warehouse.migrations import upgrade

        upgrade(self.pg.url(self.template))
        self.sandbox: subprocess.Popen | None = None

    def _create(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(self.pg.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.databases.append(name)
        return self.pg.url(name)

    def fresh(self, name: str, migrated: bool = True) -> str:
        return self._create(name, self.template if migrated else None)

    def start_sandbox(self) -> str:
        port = free_port()
        log = (DATA / "sandbox.log").open("w")
        self.sandbox = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "cdp"), "sandbox", "serve", "--port", str(port)]
            # --fixed-past: the world end_epoch() and settings() build in this process.
            + ["--learners", str(self.learners), "--prerender", "--fixed-past"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/_sandbox/health", 900)
        return base

    def settings(self, base_url: str) -> dict[str, dict]:
        """Each source's base URL, credential and ids, for dlt (which cannot import our package)."""
        from cdp_sandbox.generator import World
        from cdp_sandbox.server import sandbox_settings

        world = World(seed=7, learners=self.learners)
        sources = {key.split(".")[0] for key in self.streams}
        out = {}
        for source in sources:
            settings = sandbox_settings(world, base_url, source)
            out[source] = {"base_url": settings.base_url, "credential": settings.credential, **settings.extra}
        return out

    def end_epoch(self) -> int:
        """The end of every contender's window: a day after the generator's last record."""
        from cdp_sandbox.generator import World

        return World(seed=7, learners=self.learners).end_ts + 86_400

    def close(self) -> None:
        import psycopg

        if self.sandbox:
            self.sandbox.terminate()
            self.sandbox.wait()
        with psycopg.connect(self.pg.url("postgres"), autocommit=True) as conn:
            for name in self.databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        self.pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contenders", default="ours,copy,dlt")
    parser.add_argument("--streams", default=",".join(STREAMS))
    parser.add_argument(
        "--memory-scales", default="", help="learner counts for the peak-memory series (ours)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "last_run.json")
    args = parser.parse_args(argv)

    from cdp.sync.specs import BY_KEY

    wanted = [key for key in args.streams.split(",") if key]
    streams = [key for key in wanted if key in BY_KEY]
    missing = sorted(set(wanted) - set(streams))
    if missing:
        print(f"no sync spec yet for {', '.join(missing)}: left out of every contender", flush=True)
    contenders = [name for name in args.contenders.split(",") if name]
    if "dlt" in contenders and not DLT_PYTHON.exists():
        raise SystemExit(f"{DLT_PYTHON} missing: run `make bench-sync` (it creates the dlt venv)")
    DATA.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {"learners": args.learners, "streams": streams, "runs": [], "memory": []}
    me = [sys.executable, str(Path(__file__).resolve())]

    scales = [int(s) for s in args.memory_scales.split(",") if s] or [args.learners]
    for scale in scales:
        bench = Bench(scale, streams)
        try:
            base = bench.start_sandbox()
            print(f"sandbox ready at {base} ({scale} learners)", flush=True)
            repeats = args.repeats if scale == args.learners else 1
            dump = DATA / f"copy-{scale}"
            shutil.rmtree(dump, ignore_errors=True)
            for repeat in range(repeats):
                order = contenders[repeat % len(contenders) :] + contenders[: repeat % len(contenders)]
                if "copy" in order and not (dump / "raw.records.bin").exists():
                    order = ["ours", *[c for c in order if c != "ours"]]  # copy needs ours' rows first
                for name in order:
                    if name == "ours":
                        url = bench.fresh(f"ours_{scale}_{repeat}")
                        out, rss = spawn(
                            [*me, "_ours", url, json.dumps(bench.settings(base)), str(bench.end_epoch())]
                            + [",".join(streams)]
                        )
                        if "copy" in contenders and not (dump / "raw.records.bin").exists():
                            dump_rows(url, dump)
                    elif name == "copy":
                        url = bench.fresh(f"copy_{scale}_{repeat}")
                        out, rss = spawn([*me, "_copy", url, str(dump)])
                    elif name == "dlt":
                        url = bench.fresh(f"dlt_{scale}_{repeat}", migrated=False)
                        workdir = DATA / f"dlt-{scale}-{repeat}"
                        shutil.rmtree(workdir, ignore_errors=True)
                        out, rss = spawn(
                            [
                                str(DLT_PYTHON),
                                str(HERE / "dlt_load.py"),
                                url,
                                json.dumps(bench.settings(base)),
                            ]
                            + [",".join(streams), str(workdir)]
                        )
                    else:
                        raise SystemExit(f"unknown contender {name!r}")
                    row = {"scale": scale, "repeat": repeat, "contender": name, "peak_rss_mib": rss, **out}
                    row["rows_per_second"] = out["rows"] / out["seconds"]
                    results["runs"].append(row)  # type: ignore[union-attr]
                    print(json.dumps(row), flush=True)
        finally:
            bench.close()

    print(summary(results))
    args.out.write_text(json.dumps(results, indent=2))
    return 0


def summary(results: dict) -> str:
    runs = [r for r in results["runs"] if r["scale"] == results["learners"]]
    lines = ["| contender | runs | median s | rows | median rows/s | ratio to COPY | peak RSS MiB |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    medians = {}
    for name in ("ours", "copy", "dlt"):
        mine = [r for r in runs if r["contender"] == name]
        if mine:
            medians[name] = statistics.median(r["rows_per_second"] for r in mine)
    for name, rate in medians.items():
        mine = [r for r in runs if r["contender"] == name]
        ratio = f"{rate / medians['copy']:.2f}" if "copy" in medians else "–"
        lines.append(
            f"| {name} | {len(mine)} | {statistics.median(r['seconds'] for r in mine):.1f} | {mine[0]['rows']}"
            f" | {rate:,.0f} | {ratio} | {max(r['peak_rss_mib'] for r in mine):,.0f} |"
        )
    series = sorted({(r["scale"], r["contender"], r["peak_rss_mib"]) for r in results["runs"]})
    if len({s for s, _, _ in series}) > 1:
        lines.append("\n| learners | contender | peak RSS MiB |\n| --- | --- | --- |")
        lines.extend(f"| {s:,} | {c} | {m:,.0f} |" for s, c, m in series)
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_ours"]:
        url, settings_json, end_epoch, streams = sys.argv[2:6]
        out = contender_ours(url, settings_json, int(end_epoch), streams.split(","))
        print(json.dumps({**out, "peak_rss_mib": own_peak_rss_mib()}))
    elif sys.argv[1:2] == ["_copy"]:
        print(
            json.dumps({**contender_copy(sys.argv[2], Path(sys.argv[3])), "peak_rss_mib": own_peak_rss_mib()})
        )
    else:
        sys.exit(main())
