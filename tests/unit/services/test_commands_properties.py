"""Properties: any command text gets a Reply; a refused one leaves the store unchanged."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alertbot.domain.commands import COMMAND_NAMES
from alertbot.domain.detect import Rules
from alertbot.services.commands import CommandCore
from alertbot.services.lookup import InvalidSymbol, Lookup, parse_symbol
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock
from tests.unit.services.test_commands import NOW, TableSource, admin, state

arguments = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(
        st.text(max_size=12),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats().map(repr),
        st.sampled_from(["inf", "1e20", "1e400", "nan", "²", "BTC", "$btc", "all", "3375",
                         "99999999999999999999999", "22:00-07:00", "Europe/Berlin", "off",
                         "hourly=silent", "signal,hourly", "2h", "5", "1h", "<b>&amp;"])),
        max_size=4).map(" ".join),
)


async def run_command(command: str, text: str) -> None:
    store = SqliteStore(":memory:")
    await store.open()
    try:
        clock = ManualClock(NOW)
        lookup = Lookup(store, TableSource(), clock, fresh_for=timedelta(minutes=5))
        core = CommandCore(store, lookup, clock, band_label=Rules().band_label)
        await core.handle(admin(), "subscribe", "BTC signal")
        before = await state(store)
        reply = await core.handle(admin(), command, text)
        assert reply.text.strip()
        assert "Something went wrong" not in reply.text
        if reply.error:
            assert await state(store) == before
    finally:
        await store.close()


@settings(max_examples=150, deadline=None)
@given(command=st.sampled_from(sorted(COMMAND_NAMES)), text=arguments)
def test_handle_any_arguments_reply_and_no_change_on_error(command: str, text: str) -> None:
    asyncio.run(run_command(command, text))


@given(st.one_of(st.text(max_size=30), st.integers().map(str)))
def test_parse_symbol_any_text_id_symbol_or_invalid(text: str) -> None:
    try:
        parsed = parse_symbol(text)
    except InvalidSymbol as exc:
        assert str(exc)
        return
    if isinstance(parsed, int):
        assert 0 < parsed < 2**63
    else:
        assert parsed == parsed.upper() and 1 <= len(parsed) <= 20
