"""Which of Telegram's flood limits a send counts against (pure)."""

from __future__ import annotations

import pytest

from alertbot.domain.models import Destination
from alertbot.platforms.telegram.limits import (
    TELEGRAM_OVERALL,
    TELEGRAM_PER_CHAT,
    TELEGRAM_PER_GROUP,
    telegram_limits,
)


@pytest.mark.parametrize(("chat", "group"), [("12345", False), ("-100123", True),
                                             ("-42", True), ("@channel", True)])
def test_telegram_limits_add_group_bucket_for_groups_and_channels(chat: str, group: bool) -> None:
    limits = telegram_limits(Destination("telegram", chat, "7"))
    assert (TELEGRAM_OVERALL, "telegram") in limits
    assert (TELEGRAM_PER_CHAT, chat) in limits
    assert ((TELEGRAM_PER_GROUP, chat) in limits) is group
