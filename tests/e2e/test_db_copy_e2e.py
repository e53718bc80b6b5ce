"""Moving a deployment between backends: `alertbot db copy` both ways, then `run --once`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.process import ALERT_KEY, clean_env, run_alertbot


def _keys(stdout: str) -> list[str]:
    return [m.group(1) for line in stdout.splitlines() if (m := ALERT_KEY.search(line))]


def _sqlite_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                for table in ("changes", "destinations", "subscriptions", "outbox", "messages",
                              "decisions", "audit", "meta", "readings", "tokens")}


def _copied(stdout: str) -> dict[str, int]:
    """Rows per table from `db copy`'s line ("… : tokens 20, readings 80, …")."""
    listed = stdout.strip().rpartition(": ")[2]
    return {name: int(count.replace(",", ""))
            for name, count in (part.rsplit(" ", 1) for part in listed.split(", "))}


async def test_db_copy_sqlite_to_postgresql_and_back_keeps_rows_and_resends_nothing(
        tmp_path: Path, postgres_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'alertbot.db'}"
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    first: list[str] = []
    for _ in range(2):  # the first cycle only takes the baseline
        code, stdout, stderr = await run_alertbot(["run", "--once"], env, tmp_path)
        assert code == 0, stderr
        first += _keys(stdout)
    assert first, "the demo's first cycle delivers alerts"
    before = _sqlite_counts(tmp_path / "alertbot.db")

    code, stdout, stderr = await run_alertbot(["db", "copy", sqlite_url, postgres_url], env,
                                              tmp_path)
    assert code == 0, stderr
    assert {t: n for t, n in _copied(stdout).items() if t in before} == before

    pg_env = {**env, "ALERTBOT_DATABASE_URL": postgres_url}
    code, stdout, stderr = await run_alertbot(["run", "--once"], pg_env, tmp_path)
    assert code == 0, stderr
    second = _keys(stdout)
    assert not set(first) & set(second), "an alert delivered before the copy was sent again"
    assert "subscribed the console" not in stderr, "the copy kept the subscription"

    back = tmp_path / "back.db"
    code, stdout, stderr = await run_alertbot(
        ["db", "copy", postgres_url, f"sqlite:///{back}"], env, tmp_path)
    assert code == 0, stderr
    after = _sqlite_counts(back)
    assert after == {t: n for t, n in _copied(stdout).items() if t in after}
    assert after["outbox"] >= before["outbox"] and after["messages"] == before["messages"] + len(
        set(second))
    with sqlite3.connect(back) as db:
        sent = db.execute("SELECT COUNT(DISTINCT msg_key) FROM outbox WHERE state = 'sent'")
        assert sent.fetchone()[0] == len(set(first)) + len(set(second))


async def test_db_copy_refuses_a_destination_with_data(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    code, _, stderr = await run_alertbot(["run", "--once"], env, tmp_path)
    assert code == 0, stderr
    source = f"sqlite:///{tmp_path / 'alertbot.db'}"
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    code, _, stderr = await run_alertbot(["db", "copy", source, target], env, tmp_path)
    assert code == 0, stderr
    copied = _sqlite_counts(tmp_path / "copy.db")
    code, _, stderr = await run_alertbot(["db", "copy", source, target], env, tmp_path)
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert "is not empty (tokens 20" in line
    assert _sqlite_counts(tmp_path / "copy.db") == copied, "a refused copy changes nothing"


async def test_db_copy_bad_url_exits_2_without_the_password(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    code, _, stderr = await run_alertbot(
        ["db", "copy", "mysql://u:hunter2pw@h/db", "sqlite:///x.db"], env, tmp_path)
    assert code == 2
    (line,) = stderr.strip().splitlines()
    assert "unsupported database URL" in line and "hunter2pw" not in stderr
