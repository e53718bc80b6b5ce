"""Telegram HTML of alerts, digests and command replies: escaping and message splitting.

Every string that comes from outside (token names, symbols, labels, user input echoed in
replies) is HTML-escaped, so a token called `<b>&@everyone` shows exactly that. Text over
Telegram's 4096-character limit is split on line boundaries; each line carries its own tags,
so no split can break one.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from telegram.constants import MessageLimit

from alertbot.domain.commands import Reply
from alertbot.domain.models import Message
from alertbot.domain.render import ARROW

MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
"""sendMessage text: 1-4096 characters after entities parsing (Bot API)."""
MAX_CAPTION = int(MessageLimit.CAPTION_LENGTH)
"""sendPhoto caption: 0-1024 characters after entities parsing (Bot API)."""
LINK_TEXT = "Open on Token Metrics"
_URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"
"""Characters kept as they are in link targets; anything else is percent-encoded."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a message as plain text plus how to style it (bold, or a link)."""

    text: str
    bold: bool = False
    href: str = ""

    @property
    def html(self) -> str:
        """The line in Telegram HTML, everything escaped."""
        body = html.escape(self.text)
        if self.href:
            href = quote(self.href, safe=_URL_SAFE)
            return f'<a href="{html.escape(href)}">{body}</a>'
        return f"<b>{body}</b>" if self.bold else body

    @property
    def visible(self) -> int:
        """Characters Telegram counts for this line after parsing."""
        return utf16_len(self.text)


def alert_lines(message: Message) -> list[Line]:
    """An alert or digest as lines: bold title, the details, then the token link."""
    arrow = f"{ARROW[message.direction]} " if message.direction and not message.is_digest else ""
    title = message.title + (":" if message.is_digest else "")
    lines = [Line(arrow + title, bold=True)]
    # A scheduled digest heads its sections with lines ending in ':'.
    lines.extend(Line(text, bold=message.scheduled and text.endswith(":"))
                 for text in message.lines)
    if message.link:
        lines.append(Line(LINK_TEXT, href=message.link))
    return lines


def reply_lines(reply: Reply) -> list[Line]:
    """A command reply as formatted lines (lookup message first, then the text)."""
    lines: list[Line] = []
    if reply.message is not None:
        lines.extend(alert_lines(reply.message))
    if reply.title:
        lines.append(Line(reply.title, bold=True))
    lines.extend(Line(text) for text in reply.lines)
    return lines


def _hard_split(line: Line, limit: int) -> list[Line]:
    """A single line longer than a whole message, cut into pieces of the same style."""
    pieces: list[Line] = []
    current: list[str] = []
    size = 0
    for char in line.text:
        width = utf16_len(char)
        if size + width > limit:
            pieces.append(Line("".join(current), line.bold, line.href))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        pieces.append(Line("".join(current), line.bold, line.href))
    return pieces


def html_chunks(lines: Iterable[Line], limit: int = MAX_TEXT) -> list[str]:
    """HTML texts of at most `limit` visible characters each, split between lines."""
    chunks: list[str] = []
    current: list[Line] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        while current and not current[-1].text.strip():
            current.pop()
        if current:
            chunks.append("\n".join(line.html for line in current))
        current, size = [], 0

    for line in lines:
        for piece in [line] if line.visible <= limit else _hard_split(line, limit):
            extra = piece.visible + (1 if current else 0)
            if current and size + extra > limit:
                flush()
                extra = piece.visible
            if not current and not piece.text.strip():
                continue  # Telegram trims a message; a part may not start blank
            current.append(piece)
            size += extra
    flush()
    return chunks
