"""The fake Bot API's sendPhoto is as strict as Telegram: real PTB uploads against it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram
from telegram import InputFile
from telegram.error import BadRequest

from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.timeout(20)

GROUP = -1001234567890
PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(enforce_limits=False) as fake:
        yield fake


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=tg.base_url,
                            base_file_url=tg.base_file_url) as client:
        yield client


async def test_fake_send_photo_upload_is_a_photo_message(tg: FakeTelegram,
                                                         bot: telegram.Bot) -> None:
    sent = await bot.send_photo(GROUP, InputFile(PNG_1x1, filename="a.png"),
                                caption="<b>hi</b>", parse_mode="HTML")
    assert sent.photo[0].width == 1 and sent.caption == "hi"
    [photo] = tg.photos
    assert photo.content == PNG_1x1 and photo.visible_caption == "hi"


@pytest.mark.parametrize(("photo", "caption", "error"), [
    (PNG_1x1, "x" * 1025, "Message caption is too long"),
    (b"not an image", "", "Image_process_failed"),
    ("AgACAgIAAxkBAAIB", "", "Wrong file identifier/http url specified"),
])
async def test_fake_send_photo_refuses_what_telegram_refuses(
        tg: FakeTelegram, bot: telegram.Bot, photo: bytes | str, caption: str,
        error: str) -> None:
    upload = InputFile(photo, filename="a.png") if isinstance(photo, bytes) else photo
    with pytest.raises(BadRequest) as caught:
        await bot.send_photo(GROUP, upload, caption=caption or None)
    assert caught.value.message.lower() == error.lower()
    assert tg.photos == []
