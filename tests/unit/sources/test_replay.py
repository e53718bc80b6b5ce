"""The demo replay: accelerated clock, resumable position, endless laps, bundled data."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alertbot.domain.models import ALL_KINDS, Kind
from alertbot.sources.replay import CURSOR_KEY, WARM_UP, ReplaySource, load_demo_data

WALL = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def source(cursor: float | None = None, speed: float = 3600.0,
           head_start: timedelta = timedelta(0)) -> ReplaySource:
    return ReplaySource(load_demo_data(), speed=speed, cursor=cursor, started_wall=WALL,
                        head_start=head_start)


async def test_replay_fresh_start_has_history_for_every_token() -> None:
    replay = source()
    tokens = await replay.universe()
    assert len(tokens) == 20 and {"BTC", "ETH", "SOL"} <= {t.symbol for t in tokens}
    batch = await replay.fetch([t.token_id for t in tokens], ALL_KINDS, WALL)
    kinds_per_token = {(r.token.token_id, r.kind) for r in batch.readings}
    assert len(kinds_per_token) >= 20 * 3
    assert float(batch.meta[CURSOR_KEY]) == WARM_UP.total_seconds()


async def test_replay_never_shows_the_future() -> None:
    replay = source()
    now = WALL + timedelta(seconds=10)
    batch = await replay.fetch([3375], ALL_KINDS, now)
    assert batch.readings and all(r.source_ts <= now for r in batch.readings)


async def test_replay_many_laps_in_readings_stay_at_or_before_the_wall_clock() -> None:
    data = load_demo_data()
    span = (datetime.fromisoformat(data["end"].replace("Z", "+00:00"))
            - datetime.fromisoformat(data["start"].replace("Z", "+00:00"))).total_seconds()
    # Three laps in, the story's own dates lie weeks past the wall clock.
    replay = source(cursor=3 * span + 3600.0)
    batch = await replay.fetch([3375], ALL_KINDS, WALL)
    assert batch.readings and all(r.source_ts <= WALL for r in batch.readings)
    assert all(r.fired_at is None or r.fired_at <= WALL for r in batch.readings)


async def test_replay_position_moves_with_the_wall_clock_at_speed() -> None:
    replay = source(speed=3600.0)
    first = replay.cursor(WALL)
    assert replay.cursor(WALL + timedelta(seconds=2)) - first == 7200.0


async def test_replay_restart_continues_from_saved_cursor_with_head_start() -> None:
    saved = 500_000.0
    replay = source(cursor=saved, speed=100.0, head_start=timedelta(seconds=2))
    assert replay.cursor(WALL) == saved + 200.0


async def test_replay_laps_keep_timestamps_moving_forward() -> None:
    data = load_demo_data()
    span = (datetime.fromisoformat(data["end"].replace("Z", "+00:00"))
            - datetime.fromisoformat(data["start"].replace("Z", "+00:00"))).total_seconds()
    replay = source(cursor=span - 3600.0, speed=3600.0)
    before = await replay.fetch([3375], [Kind.HOURLY, Kind.TM_GRADE], WALL)
    later = WALL + timedelta(seconds=3)  # three story hours on: into the next lap
    after = await replay.fetch([3375], [Kind.HOURLY, Kind.TM_GRADE], later)
    newest_before = max(r.source_ts for r in before.readings)
    assert max(r.source_ts for r in after.readings) > newest_before
    assert all(r.source_ts <= later for r in after.readings)


async def test_replay_resolve_exact_symbol() -> None:
    replay = source()
    assert [t.token_id for t in await replay.resolve("btc")] == [3375]
    assert await replay.resolve("NOPE") == []


def test_demo_data_is_generated_by_the_script(tmp_path: Path) -> None:
    out = tmp_path / "demo.json.gz"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_data.py"), "--out",
                    str(out)], check=True, capture_output=True)
    bundled = ROOT / "alertbot" / "sources" / "demo" / "demo.json.gz"
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(bundled.read_bytes())


async def test_replay_history_ends_at_the_story_time_and_covers_the_range() -> None:
    replay = source()
    token = (await replay.resolve("BTC"))[0]
    end = WALL + timedelta(minutes=10)

    history = await replay.history(token, 90, end)

    assert history.end == replay.story_time(end)
    assert history.start == history.end - timedelta(days=90)
    assert len(history.tm_grade) >= 85  # the data set repeats before the replay too
    assert all(history.start <= p.at <= history.end for p in history.tm_grade)
    assert history.flips and history.drivers
    assert len({p.at for p in history.tm_grade}) == len(history.tm_grade)


async def test_replay_history_never_shows_story_after_the_bound() -> None:
    replay = source()
    token = (await replay.resolve("ETH"))[0]
    early = await replay.history(token, 30, WALL)
    later = await replay.history(token, 30, WALL + timedelta(hours=1))

    assert max(p.at for p in early.tm_grade) <= replay.story_time(WALL)
    assert max(p.at for p in later.tm_grade) > max(p.at for p in early.tm_grade)


def test_demo_data_compact_rows_equal_the_decoded_json() -> None:
    bundled = ROOT / "alertbot" / "sources" / "demo" / "demo.json.gz"
    plain = json.loads(gzip.decompress(bundled.read_bytes()))
    data = load_demo_data()
    assert data.keys() == plain.keys()
    for name, value in plain.items():
        if isinstance(value, list):
            assert [dict(row) for row in data[name]] == value, name
        else:
            assert data[name] == value
    row = data["hourly-trading-signals"][0]
    assert row.get("SIGNAL") == plain["hourly-trading-signals"][0]["SIGNAL"]
    assert row.get("MISSING") is None and "TIMESTAMP" in row
