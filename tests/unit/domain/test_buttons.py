"""Button payloads: signed per chat and action, refused when forged, malformed or moved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertbot.domain.buttons import (
    DISCORD_CUSTOM_ID_MAX,
    LABEL_MAX,
    TELEGRAM_DATA_MAX_BYTES,
    Action,
    InvalidPayload,
    has_buttons,
    keyboard,
    parse,
    payload,
    verify,
)
from alertbot.domain.models import Change, Destination, Direction, Kind, Message, Token

SECRET = b"s" * 32
OTHER_SECRET = b"t" * 32
TG = Destination("telegram", "-1001", "7")
KEY = "a" + "b" * 23
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _message(kind: Kind = Kind.SIGNAL, changes: int = 1, digest: bool = False) -> Message:
    change = Change("c" * 32, Token(1, "BTC", "Bitcoin"), kind, -1, 1, Direction.UP, AT, AT)
    return Message("t", (), "", None, AT, (change,) * changes, is_digest=digest)


@pytest.mark.parametrize("action", list(Action))
def test_verify_own_payload_returns_action_and_key(action: Action) -> None:
    data = payload(SECRET, TG, action, KEY)
    press = verify(SECRET, TG, data)
    assert (press.action, press.key) == (action, KEY)


def test_payload_fits_telegram_and_discord_limits() -> None:
    data = payload(SECRET, TG, Action.UNDO, "a" * 40)
    assert len(data.encode()) <= TELEGRAM_DATA_MAX_BYTES
    assert len(data) <= DISCORD_CUSTOM_ID_MAX


@pytest.mark.parametrize("elsewhere", [
    Destination("telegram", "-1002", "7"),
    Destination("telegram", "-1001", ""),
    Destination("telegram", "-1001", "8"),
    Destination("discord", "-1001", "7"),
])
def test_verify_payload_pressed_in_another_chat_is_refused(elsewhere: Destination) -> None:
    with pytest.raises(InvalidPayload, match="does not match"):
        verify(SECRET, elsewhere, payload(SECRET, TG, Action.MUTE, KEY))


def test_verify_payload_of_another_secret_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="does not match"):
        verify(SECRET, TG, payload(OTHER_SECRET, TG, Action.MUTE, KEY))


def test_verify_action_swapped_in_payload_is_refused() -> None:
    data = payload(SECRET, TG, Action.WHY, KEY).replace(":w:", ":m:", 1)
    with pytest.raises(InvalidPayload, match="does not match"):
        verify(SECRET, TG, data)


@pytest.mark.parametrize("data", [
    "", "ab1", "ab1:m", f"ab1:x:{KEY}:" + "a" * 16, f"ab1:m:{KEY}:" + "a" * 15,
    f"ab1:m:{KEY.upper()}:" + "a" * 16, f"ab2:m:{KEY}:" + "a" * 16,
    f"ab1:m:{KEY}:" + "a" * 16 + "\n", f"ab1:m:{'a' * 41}:" + "a" * 16, "ab1:m:é:" + "a" * 16,
])
def test_parse_malformed_payload_is_refused(data: str) -> None:
    with pytest.raises(InvalidPayload, match="not a button payload"):
        parse(data)


@given(st.text(max_size=120))
def test_verify_random_text_is_never_accepted(data: str) -> None:
    with pytest.raises(InvalidPayload):
        verify(SECRET, TG, data)


@given(st.integers(min_value=0, max_value=46), st.characters(min_codepoint=32,
                                                             max_codepoint=0x2FF))
def test_verify_any_one_character_change_is_refused(index: int, char: str) -> None:
    data = payload(SECRET, TG, Action.MUTE, KEY)
    forged = data[:index] + char + data[index + 1:]
    if forged == data:
        return
    with pytest.raises(InvalidPayload):
        verify(SECRET, TG, forged)


def test_keyboard_unmuted_offers_chart_why_and_mute() -> None:
    buttons = keyboard(SECRET, TG, KEY, "BTC")
    assert [b.label for b in buttons] == ["Chart", "Why", "Mute BTC 24h"]
    assert [verify(SECRET, TG, b.data).action for b in buttons] == [
        Action.CHART, Action.WHY, Action.MUTE]


def test_keyboard_muted_shows_end_and_undo() -> None:
    buttons = keyboard(SECRET, TG, KEY, "BTC", muted_until=datetime(2026, 12, 1, 14, 0,
                                                                    tzinfo=UTC))
    assert buttons[-1].label == "Muted BTC until 14:00 UTC · Undo"
    assert verify(SECRET, TG, buttons[-1].data).action is Action.UNDO


def test_keyboard_long_symbol_label_is_cut_to_discord_limit() -> None:
    buttons = keyboard(SECRET, TG, KEY, "X" * 500, muted_until=AT)
    assert all(len(b.label) <= LABEL_MAX for b in buttons)


@pytest.mark.parametrize(("message", "key", "expected"), [
    (_message(), KEY, True),
    (_message(changes=2, digest=True), "d" + "b" * 23, False),
    (_message(kind=Kind.OPS), KEY, False),
    (_message(kind=Kind.SCHEDULED_DIGEST), KEY, False),
    (_message(), "test-0123456789", False),
])
def test_has_buttons_only_single_market_alerts(message: Message, key: str,
                                               expected: bool) -> None:
    assert has_buttons(message, key) is expected
