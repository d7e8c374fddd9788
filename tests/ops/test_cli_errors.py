"""What an operator types wrong ends in one clear line and an exit code, never a Python traceback."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from cdp.cli import EXIT_BAD_INPUT, EXIT_REFUSED, main


@pytest.fixture
def configured(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse_url)
    monkeypatch.setenv("T_LOGIN_PASSWORD", "a-long-enough-password")
    return warehouse_url


@pytest.mark.parametrize("login", ["Robert'); DROP TABLE x", "pg_monitor_me", "cdp_loader2", "ab"])
def test_a_login_name_the_warehouse_refuses_is_a_clear_error(
    configured: str, login: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["privacy", "create-login", login, "--role", "cdp_viewer", "--password-env", "T_LOGIN_PASSWORD"]
    )

    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: the warehouse refused: login name") and "is not allowed" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with psycopg.connect(configured) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (login,)).fetchone()[0] == 0


def test_a_login_that_exists_already_is_refused_without_a_traceback(
    configured: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "privacy",
        "create-login",
        "t_cli_twice",
        "--role",
        "cdp_viewer",
        "--password-env",
        "T_LOGIN_PASSWORD",
    ]
    try:
        assert main(args) == 0
        capsys.readouterr()
        assert main(args) == EXIT_REFUSED
        err = capsys.readouterr().err
        assert 'role "t_cli_twice" already exists' in err and "Traceback" not in err
    finally:
        with psycopg.connect(configured, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS t_cli_twice")


def test_an_unknown_dedupe_column_role_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = tmp_path / "people.csv"
    people.write_text("First,Last\nAda,Lovelace\n")
    output = tmp_path / "pairs.csv"

    code = main(["dedupe", "--input", str(people), "--output", str(output), "--columns", "first_name=First"])

    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "unknown roles ['first_name']" in err and "given_name" in err
    assert not output.exists()


def test_a_dedupe_column_the_csv_lacks_or_a_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = tmp_path / "people.csv"
    people.write_text("First,Last\nAda,Lovelace\n")
    output = str(tmp_path / "pairs.csv")

    assert (
        main(["dedupe", "--input", str(people), "--output", output, "--columns", "given_name=Vorname"]) == 2
    )
    assert "Vorname" in capsys.readouterr().err
    assert (
        main(
            ["dedupe", "--input", str(tmp_path / "nope.csv"), "--output", output, "--columns", "given_name=A"]
        )
        == 2
    )
    assert "nope.csv" in capsys.readouterr().err
