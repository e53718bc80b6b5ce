"""Going live on the demo's database: the switch of source alerts nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.process import ALERT_KEY, clean_env, run_alertbot
from tests.fakes.tokenmetrics_api import FakeTokenMetrics

KEY = "tm-switch-key-0001"
LIVE = {3375: ("BTC", "Bitcoin", "bitcoin"), 3306: ("ETH", "Ethereum", "ethereum")}


def stored(db: Path) -> dict[tuple[int, str], tuple[float, str]]:
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(readings)")}
        source = "source" if "source" in columns else "''"
        rows = conn.execute(f"SELECT token_id, kind, value, {source} FROM readings").fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


async def test_run_demo_then_tokenmetrics_same_database_alerts_nothing_from_the_switch(
        tmp_path: Path) -> None:
    db = tmp_path / "switch.db"
    demo_env = clean_env(tmp_path, ALERTBOT_DATABASE_URL=f"sqlite:///{db}")
    code, _, stderr = await run_alertbot(["run", "--once"], demo_env, tmp_path)
    assert code == 0, stderr
    demo = stored(db)

    today = datetime.now(UTC).date()
    async with FakeTokenMetrics(api_key=KEY, today=today) as fake:
        for token_id, (symbol, name, slug) in LIVE.items():
            fake.add_token(token_id, symbol, name, slug)
            # The opposite of what the demo left behind: compared with the demo, every
            # series would be a change.
            trend = -int(demo[(token_id, "signal")][0])
            fake.set_signal(token_id, today - timedelta(days=1), trend=trend)
            fake.set_signal(token_id, today, trend=trend)
            old_grade = demo.get((token_id, "tm_grade"), (50.0, ""))[0]
            fake.set_tm_grade(token_id, 5.0 if old_grade > 50 else 95.0,
                              "Strong Sell" if old_grade > 50 else "Strong Buy")
        live_env = clean_env(tmp_path, ALERTBOT_DATABASE_URL=f"sqlite:///{db}",
                             TOKENMETRICS_API_KEY=KEY, TOKENMETRICS_BASE_URL=fake.base_url,
                             TOKENMETRICS_WATCHLIST="BTC,ETH")
        code, out, stderr = await run_alertbot(
            ["subscribe", "--platform", "console", "--chat", "live", "BTC"], live_env, tmp_path)
        assert code == 0, stderr
        code, out, stderr = await run_alertbot(["run", "--once"], live_env, tmp_path)
        assert code == 0, stderr
        assert fake.calls_to("/trading-signals"), stderr

    assert not [line for line in out.splitlines() if ALERT_KEY.search(line)], out
    assert demo[(3375, "signal")][1] == "demo"
    live = stored(db)
    assert live[(3375, "signal")] == (-demo[(3375, "signal")][0], "tokenmetrics")
    removed = [line for line in stderr.splitlines() if "removed the demo's console" in line]
    assert len(removed) == 1, stderr
