"""A grade alert with its chart: TelegramNotifier (real PTB) sends one photo to the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertbot.charts.pillow import PillowRenderer
from alertbot.domain.charts import History, Point, build_chart
from alertbot.domain.models import (
    Change,
    ChartImage,
    Destination,
    Direction,
    Kind,
    Token,
    make_change_id,
)
from alertbot.domain.render import render_change
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.notifier import Target
from alertbot.services.pacing import Pacer
from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.timeout(30)

GROUP = -1001234567890
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
KEY = "c" + "k" * 23
SOURCE = datetime(2026, 11, 27, tzinfo=UTC)


def upgrade() -> Change:
    return Change(make_change_id(BTC.token_id, Kind.TM_GRADE, 55.0, 66.0, SOURCE), BTC,
                  Kind.TM_GRADE, 55.0, 66.0, Direction.UP, SOURCE, SOURCE, "Neutral", "Buy",
                  "band")


def chart() -> ChartImage:
    history = History(BTC, SOURCE - timedelta(days=30), SOURCE,
                      tm_grade=tuple(Point(SOURCE - timedelta(days=30 - i), 40 + i)
                                     for i in range(31)))
    spec = build_chart(history)
    return ChartImage(PillowRenderer().render(spec), spec.caption, "btc-grades.png")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def notifier(tg: FakeTelegram) -> AsyncIterator[TelegramNotifier]:
    sender = TelegramNotifier.connect(tg.token, tg.root, pacer=Pacer())
    yield sender
    await sender.close()


async def test_telegram_grade_alert_with_chart_is_one_photo_captioned_with_the_alert(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    message = replace(render_change(upgrade()), image=chart())

    delivered = await notifier.send(Target(Destination("telegram", str(GROUP))), message,
                                    key=KEY, silent=True)

    [photo] = tg.photos
    assert delivered.message_id == str(photo.message_id)
    assert (photo.width, photo.height) == (1000, 560)
    assert photo.visible_caption.splitlines()[0].endswith(message.title)
    assert photo.disable_notification
    assert tg.sent_to(GROUP) == []


async def test_telegram_refused_photo_still_delivers_the_alert_as_text(
        tg: FakeTelegram, notifier: TelegramNotifier) -> None:
    oversized = ChartImage(b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024), "big", "big.png")
    message = replace(render_change(upgrade()), image=oversized)

    await notifier.send(Target(Destination("telegram", str(GROUP))), message, key=KEY,
                        silent=False)

    assert tg.photos == []
    [sent] = tg.sent_to(GROUP)
    assert sent.visible_text.splitlines()[0].endswith(message.title)
