"""`alertbot chart` as a subprocess against the fake Token Metrics API (history endpoints)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.process import run_alertbot
from tests.e2e.test_tokenmetrics_e2e import BAD_KEY, BTC, GOOD_KEY, tm_env
from tests.fakes.tokenmetrics_api import FakeTokenMetrics


@pytest.fixture
async def fake() -> AsyncIterator[FakeTokenMetrics]:
    today = datetime.now(UTC).date()
    async with FakeTokenMetrics(api_key=GOOD_KEY) as server:
        server.add_token(BTC, "BTC", "Bitcoin", "bitcoin")
        for back in range(40):
            day = today - timedelta(days=back)
            server.add_tm_grade_history(BTC, day, 80.0 - back, as_string=back % 2 == 0)
            server.add_fundamental_history(BTC, day, 70.0, community_score=60.0 - back / 4)
        server.flip(BTC, today - timedelta(days=12))
        yield server


async def test_cli_chart_from_token_metrics_history_writes_png_and_caption(
        tmp_path: Path, fake: FakeTokenMetrics) -> None:
    code, stdout, stderr = await run_alertbot(
        ["chart", "BTC", "--days", "30", "--out", "btc.png"], tm_env(tmp_path, fake), tmp_path)

    assert code == 0, stdout + stderr
    data = (tmp_path / "btc.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 560)
    assert "TM grade 80.0 (Strong Buy)" in stdout
    assert "Daily signal fired 1 time (1 bullish ▲, 0 bearish ▼)" in stdout
    history_calls = [c for c in fake.calls if c.endpoint.endswith("-history")]
    assert len(history_calls) == 4  # two 29-day windows, two history endpoints


async def test_cli_chart_rejected_key_exits_1_naming_the_variable(
        tmp_path: Path, fake: FakeTokenMetrics) -> None:
    code, stdout, stderr = await run_alertbot(
        ["chart", "BTC", "--out", "btc.png"], tm_env(tmp_path, fake, BAD_KEY), tmp_path)

    assert code == 1, stdout + stderr
    assert "TOKENMETRICS_API_KEY" in stderr and BAD_KEY not in stdout + stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "btc.png").exists()
