"""The local stack's process handling without Airflow: whole trees stopped (a child in its own process group
too), a dying component restarted then given up on, stale pid files never reported as running, and a busy
port reported with the process that holds it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from support import free_port

from cdp_sandbox import devserver
from cdp_sandbox.processes import Component, Record, StackFailed, Supervisor, read_records, record_for

# A parent that starts a child in a process group of its own (as Airflow's task runners do), writes the
# child's pid, and waits.
TREE = """
import os, sys, time
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    time.sleep(600)
    os._exit(0)
os.setpgid(child, child)  # the parent too: the pid is written only once the child leads its group
open(sys.argv[1], "w").write(str(child))
time.sleep(600)
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CDP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _wait_for(path: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.1)
    raise AssertionError(f"{path} was never written")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_make_stop_kills_the_leftovers_of_a_crashed_run_whole_trees_included(
    home: Path, tmp_path: Path
) -> None:
    supervisor = Supervisor(say=lambda text: None)
    supervisor.start(
        Component(
            "scheduler", [sys.executable, "-c", TREE, str(tmp_path / "child")], tmp_path / "s.log", os.environ
        )
    )
    child = _wait_for(tmp_path / "child")
    leader = supervisor.components["scheduler"].process
    assert leader is not None and _alive(leader.pid) and _alive(child)
    assert os.getpgid(child) != os.getpgid(leader.pid), "the child leads a process group of its own"
    # The supervisor is gone (a crash): only its pid files are left to find the processes by.
    assert [record.name for record in read_records()] == ["scheduler"]

    said = devserver.stop_all(warehouse=False)

    leader.wait(timeout=10)
    assert not _alive(child), "the child in its own process group was left running"
    assert any(f"pid {child}" in line for line in said), said
    assert read_records() == []


def test_a_dying_component_is_restarted_then_the_stack_gives_up_loudly(home: Path, tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(say=said.append, max_restarts=2, window=60)
    log = tmp_path / "dag-processor.log"
    command = [sys.executable, "-c", "print('parse error in line 7'); raise SystemExit(3)"]
    supervisor.start(Component("dag-processor", command, log, os.environ))
    with pytest.raises(StackFailed) as failure:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.2)
    assert len(said) == 2 and all("dag-processor exited with code 3; restarting it" in line for line in said)
    message = str(failure.value)
    assert "dag-processor exited (code 3) 3 times" in message and "stopping everything" in message
    assert str(log) in message and "parse error in line 7" in message, "the log's last lines are shown"


def test_a_pid_file_of_a_dead_process_is_removed_and_never_reported(home: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    record = record_for("sandbox", finished, port=8765)
    finished.wait(timeout=30)
    assert record.path.exists()
    assert devserver.previous_run_problems() == []
    assert not record.path.exists()
    # A pid the system gave to another process since (same pid, other start time) is not ours either.
    Record("sandbox", os.getpid(), time.time() - 3600).save()
    assert devserver.previous_run_problems() == []


def test_a_live_leftover_is_reported_with_its_pid_and_what_to_do(home: Path) -> None:
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        record_for("triggerer", leftover)
        problems = devserver.previous_run_problems()
        assert len(problems) == 1
        assert f"pid {leftover.pid}" in problems[0] and "make stop" in problems[0]
    finally:
        devserver.stop_all(warehouse=False)
    assert leftover.wait(timeout=10) is not None


def test_a_busy_port_is_reported_with_the_process_that_holds_it(home: Path) -> None:
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        problems = devserver.busy_ports({"the vendor sandbox": ("127.0.0.1", port)})
        assert problems == [problems[0]] and f"port {port} (the vendor sandbox)" in problems[0]
        assert f"pid {os.getpid()}" in problems[0]
        # `cdp run` refuses to start, says why, and leaves nothing behind.
        result = subprocess.run(
            [str(Path(sys.executable).with_name("cdp")), "run", "--port", str(free_port()), "--sandbox-port",
             str(port)],
            env={**os.environ, "CDP_HOME": str(home)}, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot start" in result.stderr and f"port {port}" in result.stderr
    assert read_records() == []
    assert not (home / "warehouse").exists(), "nothing was started"
    assert devserver.busy_ports({"the vendor sandbox": ("127.0.0.1", port)}) == []
