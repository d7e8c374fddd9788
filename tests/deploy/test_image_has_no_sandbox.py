"""The production image holds no sandbox code, and the product never imports the sandbox.

No Docker engine runs here, so the image is checked from its recipe: the Dockerfile's COPY/ADD
instructions are read, the files each would take from the build context (after .dockerignore) are laid
out as the image would hold them, and there ``cdp_sandbox`` must be neither present nor importable, nor
named by the package metadata the image installs. Each rule is also shown to catch the mistake it is
there for.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import tomllib
from importlib.machinery import PathFinder
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SANDBOX_PACKAGE = "cdp_sandbox"
PRODUCT = ("include", "dags", "plugins")
#: Where Python looks for modules in the image: the package's source root (installed editable) and the
#: folders Airflow puts on sys.path.
IMAGE_PYTHON_PATHS = ("/opt/cdp/include", "/opt/cdp", "/opt/airflow/dags", "/opt/airflow/plugins")


def _ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (exclude?, regex) rules; the last rule that matches a path decides, as in Docker."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern):
            if part in ("**", "**/"):
                regex += "(?:.*/)?" if part == "**/" else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            else:
                regex += re.escape(part)
        rules.append((exclude, re.compile(rf"^{regex}(?:/.*)?$")))
    return rules


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    ignored = False
    for exclude, regex in rules:
        if regex.match(path):
            ignored = exclude
    return ignored


def _copies(dockerfile: str) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD from the build context (not from another stage or image)."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    copies = []
    for line in joined.splitlines():
        match = re.match(r"^\s*(COPY|ADD)\s+(.*)$", line, re.IGNORECASE)
        if not match:
            continue
        rest = match.group(2).strip()
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [word for word in words if word.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        paths = [word for word in words if not word.startswith("--")]
        copies.append((paths[:-1], paths[-1]))
    return copies


def _walk(folder: Path, context: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> list[Path]:
    """Files under ``folder``, not descending into ignored folders (.venv, .git: no `!` exceptions used)."""
    files = []
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not _ignored((here / d).relative_to(context).as_posix(), rules))
        files.extend(here / name for name in sorted(names))
    return files


def image_files(dockerfile: str, dockerignore: str, context: Path) -> dict[str, Path]:
    """Path in the image -> file in the build context, for everything the Dockerfile copies."""
    rules = _ignore_rules(dockerignore)
    files: dict[str, Path] = {}
    for sources, destination in _copies(dockerfile):
        for source in sources:
            origin = (context / source).resolve()
            for path in [origin] if origin.is_file() else _walk(origin, context, rules):
                if _ignored(path.relative_to(context).as_posix(), rules):
                    continue
                inside = path.relative_to(origin).as_posix() if path != origin else path.name
                if origin.is_file() and not destination.endswith("/"):
                    target = destination
                else:
                    target = f"{destination.rstrip('/')}/{inside}"
                files[target] = path
    return files


def _imports_sandbox(source: str) -> bool:
    if SANDBOX_PACKAGE not in source:  # no need to parse: it cannot name the package
        return False
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == SANDBOX_PACKAGE for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == SANDBOX_PACKAGE:
            return True
    return False


def sandbox_in_image(dockerfile: str, dockerignore: str, context: Path, image_root: Path) -> list[str]:
    """What of the sandbox the image would get: its files, an importable package, an import, metadata."""
    files = image_files(dockerfile, dockerignore, context)
    problems = [
        f"{target} (from {path.relative_to(context)}) is sandbox code"
        for target, path in sorted(files.items())
        if path.relative_to(context).parts[0] == "sandbox" or SANDBOX_PACKAGE in Path(target).parts
    ]
    for target, path in sorted(files.items()):
        destination = image_root / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        if target.endswith(".py") and _imports_sandbox(path.read_text(encoding="utf-8")):
            problems.append(f"{target} imports {SANDBOX_PACKAGE}")
        if target.endswith("pyproject.toml"):
            project = tomllib.loads(path.read_text()).get("project", {})
            for group, entries in project.get("entry-points", {}).items():
                for name, value in entries.items():
                    if value.split(".")[0].split(":")[0] == SANDBOX_PACKAGE:
                        problems.append(f"{target} declares {group} {name} = {value}")
    search = [str(image_root / path.lstrip("/")) for path in IMAGE_PYTHON_PATHS]
    if PathFinder.find_spec(SANDBOX_PACKAGE, search) is not None:
        problems.append(f"{SANDBOX_PACKAGE} is importable in the image")
    return problems


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def dockerignore() -> str:
    return (REPO / ".dockerignore").read_text()


def test_the_image_gets_no_sandbox_code(dockerfile: str, dockerignore: str, tmp_path: Path) -> None:
    files = image_files(dockerfile, dockerignore, REPO)
    assert "/opt/cdp/include/cdp/cli.py" in files and "/opt/airflow/dags/cdp_sync.py" in files, (
        "the check reads what the Dockerfile copies"
    )
    assert sandbox_in_image(dockerfile, dockerignore, REPO, tmp_path) == []


def test_the_build_context_leaves_the_sandbox_out(dockerignore: str) -> None:
    rules = _ignore_rules(dockerignore)
    sandbox_files = [p.relative_to(REPO).as_posix() for p in (REPO / "sandbox").rglob("*.py")]
    assert sandbox_files, "the sandbox lives in sandbox/"
    assert [path for path in sandbox_files if not _ignored(path, rules)] == []
    assert not _ignored("include/cdp/cli.py", rules)


def test_copying_the_sandbox_or_the_whole_context_is_caught(
    dockerfile: str, dockerignore: str, tmp_path: Path
) -> None:
    context_without_rule = "\n".join(line for line in dockerignore.splitlines() if "sandbox" not in line)
    assert _ignored("sandbox/cdp_sandbox/server.py", _ignore_rules(dockerignore))
    assert not _ignored("sandbox/cdp_sandbox/server.py", _ignore_rules(context_without_rule))
    copied = dockerfile + "\nCOPY --chown=airflow:0 sandbox /opt/cdp/sandbox\n"
    problems = sandbox_in_image(copied, context_without_rule, REPO, tmp_path / "explicit")
    assert any("sandbox code" in p for p in problems)
    whole = dockerfile + "\nCOPY . /opt/cdp/\n"
    problems = sandbox_in_image(whole, context_without_rule, REPO, tmp_path / "whole")
    assert any("/opt/cdp/sandbox/cdp_sandbox/server.py" in p for p in problems)
    into_include = dockerfile + "\nCOPY sandbox/cdp_sandbox /opt/cdp/include/cdp_sandbox\n"
    problems = sandbox_in_image(into_include, context_without_rule, REPO, tmp_path / "importable")
    assert f"{SANDBOX_PACKAGE} is importable in the image" in problems


def test_product_code_that_imports_the_sandbox_is_caught(tmp_path: Path) -> None:
    (tmp_path / "include" / "cdp").mkdir(parents=True)
    (tmp_path / "include" / "cdp" / "leak.py").write_text("from cdp_sandbox.generator import World\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "cdp"\n[project.entry-points."cdp.commands"]\n'
        'sandbox = "cdp_sandbox.commands:register_sandbox"\n'
    )
    recipe = "COPY pyproject.toml /opt/cdp/pyproject.toml\nCOPY include /opt/cdp/include\n"
    problems = sandbox_in_image(recipe, "", tmp_path, tmp_path / "image")
    assert "/opt/cdp/include/cdp/leak.py imports cdp_sandbox" in problems
    assert any("declares cdp.commands sandbox" in p for p in problems)


def test_the_product_never_imports_the_sandbox() -> None:
    offenders = [
        path.relative_to(REPO).as_posix()
        for folder in PRODUCT
        for path in sorted((REPO / folder).rglob("*.py"))
        if _imports_sandbox(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
