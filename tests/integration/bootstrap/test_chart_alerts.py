"""Charts on grade alerts through the whole wiring: build() in demo mode, real PTB, fake API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.models import Change, Destination, Direction, Kind, make_change_id
from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.timeout(60)

GROUP = -1001234567890
CHAT = Destination("telegram", str(GROUP))
OTHER = Destination("telegram", "-1009999999999")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(enforce_limits=False) as fake:
        yield fake


@pytest.fixture
async def app(tg: FakeTelegram, tmp_path: Path) -> AsyncIterator[App]:
    settings = load_settings(env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                             ALERTBOT_HTTP_PORT=0, ALERTBOT_DEMO="1",
                             TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.root)
    built = await build(settings)
    try:
        yield built
    finally:
        await built.close()


async def grade_alert(app: App, kind: Kind) -> Change:
    token = (await app.source.resolve("BTC"))[0]
    await app.store.upsert_tokens([token], app.clock.now())
    now = datetime.now(UTC)
    for destination in (CHAT, OTHER):
        await app.store.subscribe(destination, token.token_id, (kind,), now - timedelta(hours=1))
    await app.store.change_policy(CHAT, lambda p: replace(p, charts=True), now)
    change = Change(make_change_id(token.token_id, kind, 45.0, 66.0, now), token, kind, 45.0,
                    66.0, Direction.UP, now, now, "Neutral", "Buy", "band")
    await app.store.record_poll([], [change], now)
    return change


async def test_grade_alert_to_a_chat_with_charts_on_is_a_photo_bound_to_the_change(
        app: App, tg: FakeTelegram) -> None:
    await grade_alert(app, Kind.TM_GRADE)

    await app.dispatcher.run_until_idle(limit=20)

    [photo] = tg.photos
    assert photo.chat_id == GROUP
    assert photo.content.startswith(b"\x89PNG") and (photo.width, photo.height) == (1000, 560)
    assert "BTC TM grade upgraded to Buy" in photo.visible_caption
    [text] = tg.sent_to(int(OTHER.chat_id))  # charts are off there: text only
    assert "BTC TM grade upgraded to Buy" in text.visible_text
    assert (await app.store.outbox_stats()).by_state == {"sent": 2}


async def test_signal_alert_stays_text_even_with_charts_on(app: App, tg: FakeTelegram) -> None:
    await grade_alert(app, Kind.SIGNAL)

    await app.dispatcher.run_until_idle(limit=20)

    assert tg.photos == []
    assert len(tg.sent_to(GROUP)) == 1
