"""`alertbot db migrate|stats|backup` on both backends, and ALERTBOT_MIGRATE=off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import run_cli


def test_cli_migrate_off_refuses_a_new_database_until_db_migrate(
        cli_workspace: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ALERTBOT_MIGRATE", "off")
    code, _, err = run_cli(capsys, "db", "stats")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "ALERTBOT_MIGRATE=off: run `alertbot db migrate` first" in line
    code, out, err = run_cli(capsys, "db", "migrate")
    assert code == 0, err
    assert "is at schema version" in out
    code, out, err = run_cli(capsys, "db", "stats")
    assert code == 0, err and "schema version" in out


def test_cli_db_commands_on_postgresql_never_print_the_password(
        cli_workspace: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], postgres_url: str) -> None:
    # The test server trusts local connections, so any password is accepted.
    url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2pw@")
    monkeypatch.setenv("ALERTBOT_DATABASE_URL", url)
    code, out, err = run_cli(capsys, "db", "migrate")
    assert code == 0, err
    code, out, err = run_cli(capsys, "db", "stats")
    assert code == 0, err
    assert "database: postgresql://postgres:***@127.0.0.1" in out and "outbox:" in out
    code, out, err = run_cli(capsys, "db", "backup", "alertbot.dump")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "pg_dump --format=custom --schema=t_" in line and "--file=alertbot.dump" in line
    assert "hunter2pw" not in out + err
    assert not (cli_workspace / "alertbot.dump").exists()
