"""/chart on Telegram: a real PTB Application uploads the chart with sendPhoto to the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from alertbot.bootstrap.build import pillow_renderer
from alertbot.domain.detect import Rules
from alertbot.platforms.telegram.commands import TelegramCommands
from alertbot.ports.clock import SystemClock
from alertbot.services.charts import ChartService
from alertbot.services.commands import CommandCore
from alertbot.services.lookup import Lookup
from alertbot.sources.replay import ReplaySource, load_demo_data
from alertbot.store.sqlite import SqliteStore
from tests.fakes.telegram_api import FakeTelegram, SentMessage, SentPhoto
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)

GROUP = -1001234567890
MEMBER = 8
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Bot:
    tg: FakeTelegram

    async def photo(self, chat: int, text: str) -> SentPhoto:
        before = len(self.tg.photos)
        self.tg.inject_message(chat, text, user_id=MEMBER)
        await eventually(lambda: len(self.tg.photos) > before, what="a photo", timeout=20)
        return self.tg.photos[before]

    async def text(self, chat: int, text: str) -> SentMessage:
        before = len(self.tg.sent_to(chat))
        self.tg.inject_message(chat, text, user_id=MEMBER)
        return (await self.tg.wait_for_messages(before + 1, chat_id=chat))[before]


@pytest.fixture
async def bot(store: SqliteStore) -> AsyncIterator[Bot]:
    async with FakeTelegram(enforce_limits=False) as tg:
        clock = SystemClock()
        source = ReplaySource(load_demo_data(), started_wall=clock.now())
        lookup = Lookup(store, source, clock, fresh_for=timedelta(minutes=5))
        charts = ChartService(source, pillow_renderer, clock)
        core = CommandCore(store, lookup, clock, band_label=Rules().band_label, charts=charts)
        commands = TelegramCommands(core, store, clock, token=tg.token, api_root=tg.root,
                                    poll_timeout=1)
        tg.set_chat_member(GROUP, MEMBER, "member")
        await commands.start()
        try:
            yield Bot(tg)
        finally:
            await commands.stop()


async def test_telegram_chart_is_a_photo_upload_with_the_text_alternative(bot: Bot) -> None:
    photo = await bot.photo(GROUP, "/chart BTC 30d")

    assert photo.content.startswith(PNG)
    assert (photo.width, photo.height) == (1000, 560)
    assert photo.visible_caption.startswith("BTC grade history, ")
    assert "(30 days)" in photo.visible_caption and "TM grade " in photo.visible_caption
    assert len(photo.visible_caption) <= 1024
    assert photo.parse_mode == "HTML"
    assert photo.reply_to_message_id is not None  # quotes the command in a group
    assert bot.tg.sent_to(GROUP) == []  # the caption is the whole answer


async def test_telegram_chart_drivers_is_a_bar_chart(bot: Bot) -> None:
    photo = await bot.photo(GROUP, "/chart ETH drivers")

    assert photo.content.startswith(PNG)
    assert photo.visible_caption.startswith("ETH fundamental-grade components on ")


async def test_telegram_chart_bad_range_is_a_one_line_usage_reply(bot: Bot) -> None:
    reply = await bot.text(GROUP, "/chart BTC 5y")

    assert reply.visible_text == ("'5y' is not a chart range: use 30d, 90d, 1y or drivers.\n"
                                  "Usage: /chart SYMBOL [30d|90d|1y|drivers]")
    assert bot.tg.photos == []


async def test_telegram_chart_unknown_symbol_is_refused_without_a_photo(bot: Bot) -> None:
    reply = await bot.text(GROUP, "/chart NOPE")

    assert "Unknown symbol NOPE" in reply.visible_text
    assert bot.tg.photos == []
