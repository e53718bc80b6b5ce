"""Buttons on alerts: their payloads, signatures and labels (pure).

A button's payload is echoed back by the chat client, so it is untrusted input: anyone who
sees the message can press, and a modified client can send anything. The payload names an
action and the alert's message key, and carries an HMAC over (platform, chat, thread, action,
key) made with the installation's button secret: a payload is accepted only in the chat it was
made for, for the action it names, and only if this installation made it.

    ab1:<action>:<message key>:<mac>      e.g. ab1:m:a3kq…:x7c2…   (47 bytes)

It fits Telegram's 64-byte callback_data and Discord's 100-character custom_id.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alertbot.domain.models import ALL_KINDS, Destination, Message

PREFIX = "ab1"
MAC_LENGTH = 16
"""Base32 characters of the signature (80 bits)."""
KEY_MAX = 40
TELEGRAM_DATA_MAX_BYTES = 64
DISCORD_CUSTOM_ID_MAX = 100
LABEL_MAX = 80
"""Discord's button label limit; Telegram's buttons are shown shorter anyway."""
SYMBOL_MAX = 12
MUTE_DURATION = timedelta(hours=24)
SECRET_BYTES = 32

_PAYLOAD = re.compile(
    rf"{PREFIX}:([cwmu]):([a-z0-9]{{1,{KEY_MAX}}}):([a-z2-7]{{{MAC_LENGTH}}})")


class Action(enum.StrEnum):
    """What a button does."""

    CHART = "c"
    WHY = "w"
    MUTE = "m"
    UNDO = "u"


class InvalidPayload(ValueError):
    """A payload that is malformed or not signed for this chat (never accepted)."""


@dataclass(frozen=True, slots=True)
class Press:
    """A parsed payload: the action and the message key it names, with its signature."""

    action: Action
    key: str
    mac: str


@dataclass(frozen=True, slots=True)
class Button:
    """One button: its label and its payload."""

    label: str
    data: str


def signature(secret: bytes, destination: Destination, action: Action, key: str) -> str:
    """The payload signature binding an action on a message key to one chat or thread."""
    raw = "|".join((PREFIX, destination.platform, destination.chat_id, destination.thread_id,
                    action.value, key))
    digest = hmac.new(secret, raw.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:MAC_LENGTH]


def payload(secret: bytes, destination: Destination, action: Action, key: str) -> str:
    """A signed payload for one button of one alert in one chat."""
    if not re.fullmatch(rf"[a-z0-9]{{1,{KEY_MAX}}}", key):
        raise ValueError("a button needs a message key of lowercase letters and digits")
    return f"{PREFIX}:{action.value}:{key}:{signature(secret, destination, action, key)}"


def parse(data: str) -> Press:
    """Split a payload; raises InvalidPayload when it is not one this bot makes."""
    match = _PAYLOAD.fullmatch(data) if data.isascii() else None
    if match is None:
        raise InvalidPayload("not a button payload")
    return Press(Action(match.group(1)), match.group(2), match.group(3))


def verify(secret: bytes, destination: Destination, data: str) -> Press:
    """The press a payload names, if it was signed for this chat; raises InvalidPayload."""
    press = parse(data)
    expected = signature(secret, destination, press.action, press.key)
    if not hmac.compare_digest(expected, press.mac):
        raise InvalidPayload("the signature does not match this chat")
    return press


def has_buttons(message: Message, key: str) -> bool:
    """Whether an alert message gets buttons: one market change, sent under an alert key.

    Digests of several changes, scheduled digests and operator alerts get none (which token
    would Mute mean?), nor do test alerts (their keys are not outbox keys).
    """
    return (not message.is_digest and len(message.changes) == 1
            and message.changes[0].kind in ALL_KINDS
            and re.fullmatch(rf"a[a-z0-9]{{1,{KEY_MAX - 1}}}", key) is not None)


def short_symbol(symbol: str) -> str:
    """A token symbol as shown on a button (one line, cut short)."""
    text = " ".join(symbol.split()) or "token"
    return text if len(text) <= SYMBOL_MAX else text[: SYMBOL_MAX - 1] + "…"


def until_text(until: datetime) -> str:
    """When a button mute ends, as a button shows it."""
    return f"{until.astimezone(UTC):%H:%M} UTC"


def keyboard(secret: bytes, destination: Destination, key: str, symbol: str,
             muted_until: datetime | None = None) -> tuple[Button, ...]:
    """The buttons of one alert: Chart, Why, and Mute (or, while muted, the mute with Undo)."""
    name = short_symbol(symbol)
    if muted_until is None:
        last = Button(f"Mute {name} 24h", payload(secret, destination, Action.MUTE, key))
    else:
        last = Button(f"Muted {name} until {until_text(muted_until)} · Undo",
                      payload(secret, destination, Action.UNDO, key))
    return (Button("Chart", payload(secret, destination, Action.CHART, key)),
            Button("Why", payload(secret, destination, Action.WHY, key)),
            Button(last.label[:LABEL_MAX], last.data))
