"""The local stack's processes: each started in a session of its own, recorded in a pid file, watched, and
stopped as a whole tree.

A process started here leads a new session (``start_new_session``), and everything it starts stays in that
session even when it moves to a process group of its own (Airflow's task runners do): so "every process of
the session" is the whole tree, orphans included, and stopping it leaves nothing behind. Each session is
recorded in ``.cdp/run/<name>.json`` with its leader's pid and start time, so that `cdp stop` finds the
leftovers of a run that crashed, and a pid that the system gave to another process since is never taken
for ours (nor printed as running).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cdp.paths import state_dir

#: how many times a component may exit within ``RESTART_WINDOW`` seconds and still be restarted
MAX_RESTARTS = 3
RESTART_WINDOW = 600.0
#: seconds a stopping process gets between SIGTERM and SIGKILL
STOP_GRACE = 5.0


class StackFailed(RuntimeError):
    """A component kept dying: the whole stack stops, and the message says which and where its log is."""


def run_dir() -> Path:
    path = state_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Record:
    """A session this stack started: its leader's pid and start time (a reused pid has another start time)."""

    name: str
    pid: int
    started: float
    command: tuple[str, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return run_dir() / f"{self.name}.json"

    def save(self) -> None:
        body = {"pid": self.pid, "started": self.started, "command": list(self.command), **self.details}
        self.path.write_text(json.dumps(body, indent=2))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def leader_alive(self) -> bool:
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False

    def members(self) -> list[psutil.Process]:
        """Every live process of the session, the leader included (none when the leader's pid was reused)."""
        found = []
        for process in psutil.process_iter(["create_time"]):
            try:
                if os.getsid(process.pid) != self.pid or process.info["create_time"] < self.started - 1.0:
                    continue
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
            found.append(process)
        return found


def record_for(name: str, process: subprocess.Popen[bytes] | psutil.Process, **details: object) -> Record:
    pid = process.pid
    started = psutil.Process(pid).create_time()
    command = tuple(process.args) if isinstance(process, subprocess.Popen) else tuple(process.cmdline())
    record = Record(name, pid, started, tuple(str(part) for part in command), details)
    record.save()
    return record


def read_records() -> list[Record]:
    records = []
    for path in sorted(run_dir().glob("*.json")):
        try:
            body = json.loads(path.read_text())
            pid, started = int(body.pop("pid")), float(body.pop("started"))
            command = tuple(body.pop("command", ()))
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: it names nothing we could stop
            continue
        records.append(Record(path.stem, pid, started, command, body))
    return records


def stop_sessions(records: Iterable[Record], grace: float = STOP_GRACE) -> list[psutil.Process]:
    """SIGTERM every process of the sessions, SIGKILL what is left after ``grace`` seconds; returns what ran.

    The sessions are listed again until they are empty: a process forked while the others were stopping (an
    executor starting one more task) is stopped too.
    """
    records = list(records)
    seen: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + grace
    for _ in range(100):
        members = [process for record in records for process in record.members()]
        if not members:
            break
        killing = time.monotonic() >= deadline
        for process in members:
            if killing or process.pid not in seen:
                with contextlib.suppress(psutil.Error):
                    process.kill() if killing else process.send_signal(signal.SIGTERM)
            seen.setdefault(process.pid, process)
        psutil.wait_procs(
            members, timeout=1.0 if killing else max(0.1, min(0.5, deadline - time.monotonic()))
        )
    return list(seen.values())


def port_owner(port: int) -> psutil.Process | None:
    """The process listening on a TCP port, when this user may see it."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, PermissionError):
        return None
    for connection in connections:
        listening = connection.status == psutil.CONN_LISTEN and connection.laddr
        if listening and connection.laddr.port == port and connection.pid:
            try:
                return psutil.Process(connection.pid)
            except psutil.Error:
                return None
    return None


def describe(process: psutil.Process) -> str:
    try:
        command = " ".join(process.cmdline())[:120] or process.name()
    except psutil.Error:
        command = "?"
    return f"pid {process.pid} ({command})"


@dataclass
class Component:
    """One long-running process of the stack; ``ready`` says when it serves (None: as soon as it runs)."""

    name: str
    command: Sequence[str]
    log_path: Path
    environment: Mapping[str, str]
    ready: Callable[[], bool] | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    record: Record | None = None
    exits: list[float] = field(default_factory=list)


class Supervisor:
    """Starts components in their own sessions, restarts one that dies (bounded), stops them all."""

    def __init__(
        self,
        say: Callable[[str], None] = print,
        max_restarts: int = MAX_RESTARTS,
        window: float = RESTART_WINDOW,
    ) -> None:
        self.components: dict[str, Component] = {}
        self.say = say
        self.max_restarts = max_restarts
        self.window = window

    def start(self, component: Component) -> None:
        self.components[component.name] = component
        component.log_path.parent.mkdir(parents=True, exist_ok=True)
        # critical_section: a stop request waits until the new session is recorded
        with component.log_path.open("ab") as log, critical_section():
            component.process = subprocess.Popen(
                list(component.command), env=dict(component.environment), stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            component.record = record_for(component.name, component.process, **component.details)

    def wait_ready(self, name: str, timeout: float) -> None:
        """Wait until the component serves; a component that dies meanwhile is restarted or fails the stack."""
        component = self.components[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if component.ready is None or component.ready():
                return
            self.check()
            time.sleep(0.5)
        raise StackFailed(
            f"{name} did not answer within {timeout:.0f} s; see {component.log_path}\n{log_tail(component)}"
        )

    def check(self) -> None:
        """Restart a component that exited, unless it exited too often: then raise StackFailed."""
        for component in list(self.components.values()):
            if component.process is None or component.process.poll() is None:
                continue
            code = component.process.returncode
            now = time.monotonic()
            component.exits = [t for t in component.exits if now - t < self.window] + [now]
            if component.record:  # whatever the dead leader left in its session goes with it
                stop_sessions([component.record], grace=2)
                component.record.remove()
            if len(component.exits) > self.max_restarts:
                raise StackFailed(
                    f"{component.name} exited (code {code}) {len(component.exits)} times within "
                    f"{self.window / 60:.0f} minutes: stopping everything. Its log: {component.log_path}\n"
                    f"{log_tail(component)}"
                )
            self.say(
                f"  ! {component.name} exited with code {code}; restarting it "
                f"({len(component.exits)} of {self.max_restarts} restarts allowed within "
                f"{self.window / 60:.0f} min). Its log: {component.log_path}"
            )
            self.start(component)

    def stop(self, grace: float = STOP_GRACE) -> int:
        """Stop every component's whole tree; returns how many processes were running."""
        records = [c.record for c in self.components.values() if c.record]
        stopped = stop_sessions(records, grace)
        for component in self.components.values():
            if component.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.process.wait(timeout=2)
            if component.record:
                component.record.remove()
        return len(stopped)


def log_tail(component: Component, lines: int = 25) -> str:
    try:
        text = component.log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


# ---------------------------------------------------------------- stop requests
class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """SIGTERM or SIGHUP arrived (SIGINT arrives as KeyboardInterrupt)."""


_critical = {"depth": 0, "pending": None}


def _on_stop_signal(signum: int, frame: object) -> None:
    if _critical["depth"]:
        _critical["pending"] = signum
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise StopRequested(signal.Signals(signum).name)


class critical_section:  # noqa: N801 - used as a statement
    """A stop request that arrives inside is raised when the block ends (so no process goes unrecorded)."""

    def __enter__(self) -> None:
        _critical["depth"] += 1

    def __exit__(self, *exc: object) -> None:
        _critical["depth"] -= 1
        pending = _critical["pending"]
        if not _critical["depth"] and pending is not None:
            _critical["pending"] = None
            _on_stop_signal(int(pending), None)


def handle_stop_signals() -> None:
    """Ctrl-C, SIGTERM (`cdp stop`, a service manager) and SIGHUP (the terminal closed) all stop the stack."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_stop_signal)
