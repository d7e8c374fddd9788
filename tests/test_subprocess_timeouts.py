"""No subprocess without its own timeout (issue 20): a command that hangs on a loaded machine fails with its
own message instead of holding a test, a task or `make run` until pytest's 600 s timeout kills the worker.

Read from the source (``ast``) of everything that runs: the package, the DAGs, the plugins, the sandbox, the
tests and the benchmarks. ``subprocess.run``/``call``/``check_call``/``check_output`` must pass ``timeout=``;
a long-lived ``Popen`` is the caller's to bound (its ``wait``/``communicate`` carry their own timeouts there).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("include", "dags", "plugins", "sandbox", "tests", "benchmarks")
BLOCKING = {"run", "call", "check_call", "check_output"}


def calls_without_timeout(source: str) -> list[int]:
    """Line numbers of ``subprocess.<blocking call>(...)`` without a ``timeout`` keyword."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id == "subprocess" and node.func.attr in BLOCKING:
            keywords = {keyword.arg for keyword in node.keywords}
            if "timeout" not in keywords and None not in keywords:  # None: **kwargs, checked where built
                lines.append(node.lineno)
    return lines


def test_every_blocking_subprocess_call_has_its_own_timeout() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}"
        for folder in FOLDERS
        for path in sorted((REPO / folder).rglob("*.py"))
        if ".venv" not in path.parts
        for line in calls_without_timeout(path.read_text())
    ]
    assert not offenders, f"subprocess calls without timeout=: {offenders}"


def test_the_check_sees_a_call_without_a_timeout_and_accepts_one_with_it() -> None:
    assert calls_without_timeout("import subprocess\nsubprocess.run(['true'])\n") == [2]
    assert calls_without_timeout("import subprocess\nsubprocess.check_output(['true'], timeout=5)\n") == []
    assert calls_without_timeout("import subprocess\nsubprocess.Popen(['true'])\n") == []
