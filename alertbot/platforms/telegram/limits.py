"""Telegram's flood limits, each with where the number comes from, and which ones a send uses."""

from __future__ import annotations

from alertbot.domain.models import Destination
from alertbot.ports.notifier import Limit

CHAT_MARGIN = 0.15
"""Margin of Telegram's per-chat windows until the pacer has measured how late requests arrive
(services/pacing.py `Lateness`): a 1-second window is where a request delayed behind others
(a pause, a new connection) most easily lands next to its successor."""

# Telegram Bot FAQ, "My bot is hitting limits, how do I avoid this?"
# (https://core.telegram.org/bots/faq); the same numbers are telegram.constants.FloodLimit.
TELEGRAM_OVERALL = Limit("telegram_overall", 30, 1.0,
                         "Bot FAQ: no more than about 30 messages per second overall",
                         shared=True)
TELEGRAM_PER_CHAT = Limit("telegram_chat", 1, 1.0,
                          "Bot FAQ: avoid more than one message per second in a single chat",
                          margin=CHAT_MARGIN)
TELEGRAM_PER_GROUP = Limit("telegram_group", 20, 60.0,
                           "Bot FAQ: no more than 20 messages per minute to the same group",
                           margin=CHAT_MARGIN)

OVERALL_BUCKET = "telegram"


def is_group(chat_id: str) -> bool:
    """Groups, supergroups and channels have negative ids or @usernames; users do not."""
    text = chat_id.strip()
    return text.startswith(("-", "@"))


def telegram_limits(destination: Destination) -> list[tuple[Limit, str]]:
    """Telegram's flood limits that a message to this destination counts against."""
    limits = [(TELEGRAM_OVERALL, OVERALL_BUCKET), (TELEGRAM_PER_CHAT, destination.chat_id)]
    if is_group(destination.chat_id):
        limits.append((TELEGRAM_PER_GROUP, destination.chat_id))
    return limits


def pacing_scopes(destination: Destination) -> tuple[str, str]:
    """Pause scopes the dispatcher uses for a destination (platform, destination)."""
    return destination.platform, str(destination)
