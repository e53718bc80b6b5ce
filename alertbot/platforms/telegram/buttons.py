"""Telegram rendering of the buttons on alerts: inline keyboards and callback answers."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from alertbot.domain.buttons import TELEGRAM_DATA_MAX_BYTES, Button

CALLBACK_TEXT_MAX = 200
"""answerCallbackQuery text limit."""


def inline_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Chart and Why side by side, the mute button (the longest label) on its own row."""
    if not buttons:
        return None
    for button in buttons:
        # The API refuses the whole message (BUTTON_DATA_INVALID) otherwise.
        if not 1 <= len(button.data.encode()) <= TELEGRAM_DATA_MAX_BYTES:
            raise ValueError("callback data must be 1-64 bytes")
    rows = [list(buttons[:2]), list(buttons[2:])]
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows
         if row])


def callback_text(text: str) -> str:
    """A notice cut to what answerCallbackQuery shows."""
    one_line = " ".join(text.split())
    if len(one_line) <= CALLBACK_TEXT_MAX:
        return one_line
    return one_line[: CALLBACK_TEXT_MAX - 1] + "…"
