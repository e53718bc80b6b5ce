"""Chat command core: argument parsing, permissions and replies, against an in-memory store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from alertbot.domain.commands import COMMAND_NAMES, COMMANDS, ReplyKind
from alertbot.domain.detect import Rules
from alertbot.domain.models import (
    ALL_KINDS,
    ALL_TOKENS,
    Change,
    Destination,
    Direction,
    Kind,
    Mode,
    Policy,
    QuietHours,
    Reading,
    Token,
    make_change_id,
)
from alertbot.domain.policy import (
    describe_policy,
    parse_max_alerts,
    parse_mute,
    parse_window,
    update_policy,
)
from alertbot.domain.why import explain
from alertbot.ports.source import Batch, SourceError
from alertbot.services.commands import Caller, CommandCore
from alertbot.services.lookup import Lookup
from alertbot.store.sqlite import SqliteStore
from tests.support import ManualClock

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(1027, "ETH", "Ethereum", "ethereum")
DUP_A = Token(9001, "DUP", "Duplicate One")
DUP_B = Token(9002, "DUP", "Duplicate Two")
GROUP = Destination("telegram", "-100123")


class TableSource:
    """A Source answering from a fixed table of readings."""

    name = "table"

    def __init__(self) -> None:
        self.tokens = [BTC, ETH, DUP_A, DUP_B]
        self.readings = [
            Reading(BTC, Kind.SIGNAL, 1.0, NOW - timedelta(days=1), "bullish",
                    fired_at=NOW - timedelta(days=3)),
            Reading(BTC, Kind.HOURLY, -1.0, NOW - timedelta(hours=1), "bearish"),
            Reading(BTC, Kind.TM_GRADE, 72.5, NOW - timedelta(days=1)),
            Reading(BTC, Kind.FUNDAMENTAL, 81.0, NOW - timedelta(days=1), "blueChip"),
        ]
        self.fetches = 0

    async def universe(self) -> list[Token]:
        return list(self.tokens)

    async def resolve(self, symbol: str) -> list[Token]:
        return [t for t in self.tokens if t.symbol == symbol.upper()]

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        self.fetches += 1
        return Batch(readings=[r for r in self.readings
                               if r.token.token_id in token_ids and r.kind in kinds])

    async def close(self) -> None:
        return None


@dataclass
class World:
    store: SqliteStore
    core: CommandCore
    clock: ManualClock
    source: TableSource


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = SqliteStore(":memory:")
    await store.open()
    clock = ManualClock(NOW)
    source = TableSource()
    lookup = Lookup(store, source, clock, fresh_for=timedelta(minutes=5))
    core = CommandCore(store, lookup, clock, band_label=Rules().band_label)
    yield World(store, core, clock, source)
    await store.close()


def admin(destination: Destination = GROUP) -> Caller:
    return Caller(destination, "7", "alice", is_moderator=True)


def member(destination: Destination = GROUP) -> Caller:
    return Caller(destination, "8", "bob", is_moderator=False)


async def state(store: SqliteStore, destination: Destination = GROUP) -> tuple[Any, ...]:
    """Everything a command could change, for before/after comparisons."""
    return (await store.subscriptions(destination), await store.destination(destination),
            await store.recent_audit(100))


# ---------------------------------------------------------------- pure parsing


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("5", 5), (" 1000 ", 1000)])
def test_parse_max_alerts_valid_number_returns_it(text: str, expected: int) -> None:
    assert parse_max_alerts(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("0", "between 1 and 1000"),
    ("1001", "between 1 and 1000"),
    ("-3", "not a whole number"),
    ("2.5", "not a whole number"),
    ("five", "not a whole number"),
    ("", "not a whole number"),
])
def test_parse_max_alerts_bad_value_raises_specific_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_max_alerts(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("1m", timedelta(minutes=1)), ("1h", timedelta(hours=1)), ("90m", timedelta(minutes=90)),
    ("1h30m", timedelta(minutes=90)), ("7d", timedelta(days=7)),
])
def test_parse_window_valid_duration_returns_it(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("30s", "at least 1m"), ("0", "longer than zero"), ("8d", "at most 7d"),
    ("soon", "not a duration"), ("-1h", "not a duration"),
])
def test_parse_window_bad_value_raises_specific_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("2h", timedelta(hours=2)), ("30d", timedelta(days=30)), ("45s", timedelta(seconds=45)),
])
def test_parse_mute_valid_duration_returns_it(text: str, expected: timedelta) -> None:
    assert parse_mute(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("31d", "at most 30d"), ("0", "longer than zero"), ("forever", "not a duration"),
])
def test_parse_mute_bad_value_raises_specific_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mute(text)


def test_update_policy_changes_only_what_is_given() -> None:
    base = Policy(max_alerts=3, window=timedelta(minutes=5))
    updated = update_policy(base, NOW, window="2h", quiet="22:00-07:00 Europe/Berlin",
                            modes=["hourly=silent"])
    assert updated.max_alerts == 3
    assert updated.window == timedelta(hours=2)
    assert updated.quiet == QuietHours(time(22), time(7), "Europe/Berlin")
    assert updated.modes == {Kind.HOURLY: Mode.SILENT}
    assert update_policy(updated, NOW, quiet="off").quiet is None
    assert update_policy(base, NOW, mute="2h").mute_until == NOW + timedelta(hours=2)


def test_update_policy_mute_and_unmute_together_raises() -> None:
    with pytest.raises(ValueError, match="not both"):
        update_policy(Policy(), NOW, mute="1h", unmute=True)


def test_describe_policy_default_lists_every_setting() -> None:
    lines = describe_policy(Policy())
    assert lines[0] == "throttle: at most 10 alerts per 1h (the rest arrive as one digest)"
    assert "quiet hours: off" in lines and "muted: no" in lines


def test_commands_table_descriptions_fit_discord_and_telegram_limits() -> None:
    for spec in COMMANDS:
        assert 1 <= len(spec.description) <= 100
        assert spec.name.islower() and len(spec.name) <= 32
    assert {c.name for c in COMMANDS} | {"start"} == COMMAND_NAMES


def _change(kind: Kind = Kind.HOURLY) -> Change:
    return Change(make_change_id(BTC.token_id, kind, -1, 1, NOW), BTC, kind, -1.0, 1.0,
                  Direction.UP, NOW, NOW, "bearish", "bullish", "flip")


@pytest.mark.parametrize(("reason", "detail", "expected"), [
    ("sent", "akey123", "BTC hourly signal turned bullish: sent"),
    ("held_quiet", "until 2026-11-28 07:00:00 UTC",
     "held for quiet hours, will arrive in a digest (until 2026-11-28 07:00:00 UTC)"),
    ("muted", "", "not sent: alerts here were muted"),
    ("destination_gone", "Telegram: bot was kicked",
     "stopped accepting messages (Telegram: bot was kicked)"),
    ("something_new", "", "BTC hourly signal turned bullish: something_new"),
])
def test_explain_decision_names_change_and_reason(reason: str, detail: str,
                                                  expected: str) -> None:
    line = explain(NOW, _change(), reason, detail)
    assert line.startswith("11-27 12:00 UTC · BTC hourly signal turned bullish: ")
    assert line.endswith(expected)
    assert "akey123" not in line  # message keys are internal


# ---------------------------------------------------------------- handlers


async def test_handle_subscribe_by_admin_subscribes_and_audits_actor(world: World) -> None:
    reply = await world.core.handle(admin(), "subscribe", "btc hourly,signal")
    assert not reply.error
    assert reply.lines[0] == "Subscribed this chat to BTC (Bitcoin): daily signal, hourly signal."
    (sub,) = await world.store.subscriptions(GROUP)
    assert (sub.token_id, sub.kinds) == (BTC.token_id, (Kind.SIGNAL, Kind.HOURLY))
    audit = await world.store.recent_audit(1)
    assert audit[0].action == "subscribe" and audit[0].actor == "telegram:7 alice"


async def test_handle_subscribe_twice_reports_already_and_changes_nothing(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "BTC")
    before = await state(world.store)
    reply = await world.core.handle(admin(), "subscribe", "BTC")
    assert not reply.error and reply.lines[0].startswith("This chat already receives BTC")
    assert await state(world.store) == before


async def test_handle_subscribe_all_without_kinds_covers_every_kind(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "all")
    (sub,) = await world.store.subscriptions(GROUP)
    assert (sub.token_id, sub.kinds) == (ALL_TOKENS, ALL_KINDS)


async def test_handle_subscribe_in_private_chat_needs_no_moderator(world: World) -> None:
    private = Destination("telegram", "555")
    caller = Caller(private, "555", "carol", is_private=True, is_moderator=False)
    reply = await world.core.handle(caller, "subscribe", "ETH")
    assert not reply.error
    assert [s.token_id for s in await world.store.subscriptions(private)] == [ETH.token_id]


MODERATOR_COMMANDS = [
    ("subscribe", "BTC"),
    ("subscribe", "all hourly"),
    ("unsubscribe", "BTC"),
    ("unsubscribe", "all"),
    ("throttle", "1 1h"),
    ("throttle", "5"),
    ("quiet", "22:00-07:00 Europe/Berlin"),
    ("quiet", "off"),
    ("mute", "2h"),
    ("unmute", ""),
    ("digest", "daily 09:00 Europe/Berlin"),
    ("digest", "off"),
]


@pytest.mark.parametrize(("command", "args"), MODERATOR_COMMANDS)
async def test_handle_moderator_command_by_member_is_refused_and_changes_nothing(
        world: World, command: str, args: str) -> None:
    await world.core.handle(admin(), "subscribe", "BTC")
    await world.core.handle(admin(), "mute", "1h")
    before = await state(world.store)
    reply = await world.core.handle(member(), command, args)
    assert reply.kind is ReplyKind.REFUSED and reply.error and reply.ephemeral
    assert reply.lines == (f"Sorry, only chat admins (anyone in a private chat) can "
                           f"{_ACTIONS[command]}.",)
    assert await state(world.store) == before


_ACTIONS = {"subscribe": "subscribe this chat", "unsubscribe": "unsubscribe this chat",
            "throttle": "change the throttle", "quiet": "set quiet hours",
            "mute": "mute alerts", "unmute": "unmute alerts", "digest": "schedule digests"}


BAD_INPUT = [
    ("subscribe", "", ReplyKind.USAGE, "Usage: /subscribe SYMBOL|all [kinds]"),
    ("subscribe", "BTC weekly", ReplyKind.USAGE, "Unknown kind 'weekly'"),
    ("subscribe", "NOPE", ReplyKind.NOT_FOUND, "Unknown symbol NOPE."),
    ("subscribe", "DUP", ReplyKind.NOT_FOUND, "DUP matches several tokens"),
    ("subscribe", "<b>x</b>", ReplyKind.USAGE, "is not a token symbol"),
    ("unsubscribe", "", ReplyKind.USAGE, "Usage: /unsubscribe"),
    ("unsubscribe", "ETH", ReplyKind.NOT_FOUND, "Nothing to remove"),
    ("unsubscribe", "BTC fundamental,grade", ReplyKind.NOT_FOUND, "Nothing to remove"),
    ("throttle", "0 1h", ReplyKind.USAGE, "between 1 and 1000"),
    ("throttle", "5 30s", ReplyKind.USAGE, "The window must be at least 1m."),
    ("throttle", "5 1x", ReplyKind.USAGE, "is not a duration"),
    ("throttle", "many 1h", ReplyKind.USAGE, "not a whole number"),
    ("throttle", "5 1h extra", ReplyKind.USAGE, "Usage: /throttle [MAX WINDOW]"),
    ("quiet", "22-07", ReplyKind.USAGE, "is not a time"),
    ("quiet", "22:00-07:00 Mars/Olympus", ReplyKind.USAGE, "Unknown time zone"),
    ("quiet", "22:00-22:00", ReplyKind.USAGE, "different times"),
    ("quiet", "22:00 07:00", ReplyKind.USAGE, "Use HH:MM-HH:MM"),
    ("mute", "", ReplyKind.USAGE, "Usage: /mute DURATION"),
    ("mute", "31d", ReplyKind.USAGE, "at most 30d"),
    ("mute", "later", ReplyKind.USAGE, "is not a duration"),
    ("signal", "", ReplyKind.USAGE, "Usage: /signal SYMBOL"),
    ("signal", "BTC ETH", ReplyKind.USAGE, "Usage: /signal SYMBOL"),
    ("grade", "NOPE", ReplyKind.NOT_FOUND, "Unknown symbol NOPE."),
    # Numeric edge cases that once answered "Something went wrong" (issue 13).
    ("signal", "²", ReplyKind.USAGE, "is not a token symbol"),
    ("grade", "99999999999999999999999", ReplyKind.USAGE, "not a valid token id"),
    ("subscribe", "99999999999999999999999", ReplyKind.USAGE, "not a valid token id"),
    ("mute", "inf", ReplyKind.USAGE, "is not a duration"),
    ("mute", "1e20", ReplyKind.USAGE, "is not a duration"),
    ("mute", "9" * 400 + "s", ReplyKind.USAGE, "longer than a year"),
    ("throttle", "5 inf", ReplyKind.USAGE, "is not a duration"),
    ("throttle", "5 1e400", ReplyKind.USAGE, "is not a duration"),
    ("throttle", "² 1h", ReplyKind.USAGE, "not a whole number"),
    ("throttle", "9" * 5000, ReplyKind.USAGE, "between 1 and 1000"),
    ("why", "now", ReplyKind.USAGE, "Usage: /why"),
    ("frobnicate", "", ReplyKind.USAGE, "Unknown command /frobnicate"),
]


@pytest.mark.parametrize(("command", "args", "kind", "fragment"), BAD_INPUT)
async def test_handle_bad_input_gets_specific_reply_and_changes_nothing(
        world: World, command: str, args: str, kind: ReplyKind, fragment: str) -> None:
    await world.core.handle(admin(), "subscribe", "BTC signal")
    before = await state(world.store)
    reply = await world.core.handle(admin(), command, args)
    assert reply.kind is kind and reply.error
    assert fragment in reply.text
    assert len(reply.text) < 300
    assert await state(world.store) == before


async def test_handle_read_commands_never_ask_for_moderator(world: World) -> None:
    async def explode() -> bool:
        raise AssertionError("moderator check must not run for reads")

    caller = Caller(GROUP, "8", "bob", is_moderator=explode)
    for command, args in [("subscriptions", ""), ("throttle", ""), ("quiet", ""), ("why", ""),
                          ("help", ""), ("start", ""), ("signal", "BTC"), ("grade", "BTC")]:
        reply = await world.core.handle(caller, command, args)
        assert not reply.error, (command, reply)
    assert await world.store.destination(GROUP) is None  # reading creates nothing


async def test_handle_failing_moderator_check_refuses(world: World) -> None:
    async def broken() -> bool:
        raise ConnectionError("permission lookup failed")

    reply = await world.core.handle(Caller(GROUP, "8", is_moderator=broken), "mute", "1h")
    assert reply.kind is ReplyKind.REFUSED
    assert await world.store.destination(GROUP) is None


async def test_handle_async_moderator_check_allows_when_true(world: World) -> None:
    async def yes() -> bool:
        return True

    reply = await world.core.handle(Caller(GROUP, "9", is_moderator=yes), "throttle", "5 1h")
    assert not reply.error
    info = await world.store.destination(GROUP)
    assert info is not None and (info.policy.max_alerts, info.policy.window) == (
        5, timedelta(hours=1))


async def test_handle_throttle_max_only_keeps_window(world: World) -> None:
    await world.core.handle(admin(), "throttle", "3 2h")
    reply = await world.core.handle(admin(), "throttle", "7")
    assert reply.lines == ("At most 7 alerts per 2h here now; the rest arrive as one digest.",)
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.window == timedelta(hours=2)
    audit = await world.store.recent_audit(1)
    assert (audit[0].action, audit[0].detail, audit[0].actor) == (
        "policy", "throttle 7 per 2h", "telegram:7 alice")


async def test_handle_throttle_without_args_shows_settings_to_anyone(world: World) -> None:
    reply = await world.core.handle(member(), "throttle", "")
    assert not reply.error
    assert "throttle: at most 10 alerts per 1h (the rest arrive as one digest)" in reply.lines


async def test_handle_quiet_sets_and_turns_off(world: World) -> None:
    reply = await world.core.handle(admin(), "quiet", "22:00-07:00 europe/berlin")
    assert reply.lines[0].startswith("Quiet hours: 22:00-07:00 Europe/Berlin.")
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.quiet == QuietHours(time(22), time(7),
                                                                "Europe/Berlin")
    assert (await world.core.handle(admin(), "quiet", "OFF")).lines == ("Quiet hours are off.",)
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.quiet is None


async def test_handle_quiet_off_when_already_off_writes_nothing(world: World) -> None:
    reply = await world.core.handle(admin(), "quiet", "off")
    assert reply.lines == ("Quiet hours are already off.",)
    assert await world.store.destination(GROUP) is None


async def test_handle_mute_then_unmute_round_trips(world: World) -> None:
    reply = await world.core.handle(admin(), "mute", "2h")
    assert reply.lines[0].startswith("Muted for 2h (until 2026-11-27 14:00 UTC)")
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.mute_until == NOW + timedelta(hours=2)
    assert (await world.core.handle(admin(), "unmute")).lines == (
        "Unmuted: new alerts will be posted again.",)
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.mute_until is None
    assert (await world.core.handle(admin(), "unmute")).lines == ("Alerts here are not muted.",)


async def test_handle_unmute_symbol_ends_token_mute_and_why_stops_listing_it(
        world: World) -> None:
    await world.core.handle(admin(), "subscribe", "BTC")
    [btc] = await world.store.tokens_by_symbol("BTC")
    await world.store.mute_token(GROUP, btc.token_id, NOW + timedelta(hours=24), NOW)
    why = await world.core.handle(member(), "why")
    assert ("BTC alerts here are muted until 11-28 12:00 UTC (Undo on its alert, or "
            "/unmute BTC, ends it)") in why.lines
    refused = await world.core.handle(member(), "unmute", "BTC")
    assert refused.kind is ReplyKind.REFUSED
    assert len(await world.store.token_mutes(GROUP, NOW)) == 1
    assert (await world.core.handle(admin(), "unmute", "BTC")).lines == (
        "Unmuted BTC: its alerts are posted here again.",)
    assert await world.store.token_mutes(GROUP, NOW) == []
    again = await world.core.handle(admin(), "unmute", "BTC")
    assert again.kind is ReplyKind.NOT_FOUND and again.lines == ("BTC is not muted here.",)
    assert not any("muted until" in line for line in (await world.core.handle(
        member(), "why")).lines)


async def test_handle_unmute_two_arguments_is_usage(world: World) -> None:
    reply = await world.core.handle(admin(), "unmute", "BTC ETH")
    assert reply.kind is ReplyKind.USAGE and reply.lines == ("Usage: /unmute [SYMBOL]",)


async def test_handle_unsubscribe_all_removes_every_subscription(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "BTC")
    await world.core.handle(admin(), "subscribe", "ETH hourly")
    reply = await world.core.handle(admin(), "unsubscribe", "all")
    assert not reply.error
    assert await world.store.subscriptions(GROUP) == []


async def test_handle_unsubscribe_some_kinds_keeps_the_others(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "BTC")
    reply = await world.core.handle(admin(), "unsubscribe", "BTC hourly")
    assert reply.lines == ("Removed hourly signal from BTC (Bitcoin).",)
    (sub,) = await world.store.subscriptions(GROUP)
    assert Kind.HOURLY not in sub.kinds and Kind.SIGNAL in sub.kinds


async def test_handle_unsubscribe_token_covered_by_all_explains(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "all")
    reply = await world.core.handle(admin(), "unsubscribe", "BTC")
    assert reply.kind is ReplyKind.NOT_FOUND
    assert "It receives all tokens; /unsubscribe all stops that." in reply.lines


async def test_handle_subscriptions_lists_tokens_pause_and_policy(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "BTC hourly")
    await world.core.handle(admin(), "subscribe", "all tm_grade")
    await world.store.pause(GROUP, "bot was kicked", NOW)
    reply = await world.core.handle(member(), "subscriptions")
    assert reply.title == "Subscriptions here"
    assert reply.lines[:3] == (
        "• all tokens: TM grade",
        "• BTC: hourly signal",
        "PAUSED: bot was kicked. Send /subscribe again to resume.",
    )
    assert reply.lines[3].startswith("throttle: at most 10 alerts per 1h")


async def test_handle_subscribe_on_paused_chat_resumes_and_says_so(world: World) -> None:
    await world.core.handle(admin(), "subscribe", "BTC")
    await world.store.pause(GROUP, "bot was kicked", NOW)
    reply = await world.core.handle(admin(), "subscribe", "BTC")
    assert "Alerts here had been paused; they are on again." in reply.lines
    info = await world.store.destination(GROUP)
    assert info is not None and info.paused_reason == ""


async def test_handle_signal_renders_lookup_message(world: World) -> None:
    reply = await world.core.handle(member(), "signal", "$btc")
    assert reply.message is not None and not reply.error
    assert reply.message.title == "BTC signals"
    assert "Daily signal: bullish since 2026-11-24" in reply.message.lines
    assert "Hourly signal: bearish since 2026-11-27 11:00 UTC" in reply.message.lines


async def test_handle_grade_renders_bands_and_missing_kinds(world: World) -> None:
    world.source.readings = [r for r in world.source.readings if r.kind is not Kind.FUNDAMENTAL]
    reply = await world.core.handle(member(), "grade", "BTC")
    assert reply.message is not None
    assert "TM grade: 72.5 (Buy)" in reply.message.lines
    assert reply.lines == ("Unavailable right now: fundamental grade.",)


async def test_handle_why_without_history_says_so(world: World) -> None:
    reply = await world.core.handle(member(), "why")
    assert reply.lines == ("No alerts have been handled for this chat yet.",)


async def test_handle_help_lists_every_command_and_the_moderator_rule(world: World) -> None:
    reply = await world.core.handle(member(), "help")
    for spec in COMMANDS:
        assert any(line.startswith(spec.usage) for line in reply.lines)
    assert reply.lines[-1].endswith("are for chat admins (anyone in a private chat).")
    discord = Caller(Destination("discord", "1"), "2")
    assert "Manage Server or Manage Channels" in (await world.core.help(discord)).lines[-1]


async def test_handle_too_many_subscriptions_is_refused(world: World,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("alertbot.services.commands.MAX_SUBSCRIPTIONS", 1)
    await world.core.handle(admin(), "subscribe", "BTC")
    before = await state(world.store)
    reply = await world.core.handle(admin(), "subscribe", "ETH")
    assert reply.kind is ReplyKind.REFUSED and "already has 1 subscriptions" in reply.text
    assert await state(world.store) == before
    assert not (await world.core.handle(admin(), "subscribe", "BTC hourly")).error


async def test_complete_symbol_prefix_returns_known_tokens(world: World) -> None:
    await world.store.upsert_tokens([BTC, ETH], NOW)
    assert [t.symbol for t in await world.core.complete_symbol("bt")] == ["BTC"]
    assert await world.core.complete_symbol("  ") == []


async def test_commands_concurrent_quiet_and_mute_keep_both(world: World) -> None:
    await asyncio.gather(world.core.handle(admin(), "quiet", "22:00-07:00 Europe/Berlin"),
                         world.core.handle(admin(), "mute", "2h"),
                         world.core.handle(admin(), "throttle", "4 30m"))
    info = await world.store.destination(GROUP)
    assert info is not None
    assert info.policy.quiet == QuietHours(time(22), time(7), "Europe/Berlin")
    assert info.policy.mute_until == NOW + timedelta(hours=2)
    assert (info.policy.max_alerts, info.policy.window) == (4, timedelta(minutes=30))


class RejectingSource(TableSource):
    """The source's key was rejected: every fetch fails as a whole."""

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        raise SourceError("Token Metrics rejected TOKENMETRICS_API_KEY (HTTP 401)", auth=True)


async def test_commands_signal_with_rejected_key_says_so_not_no_data(world: World) -> None:
    lookup = Lookup(world.store, RejectingSource(), world.clock, fresh_for=timedelta(minutes=5))
    core = CommandCore(world.store, lookup, world.clock, band_label=Rules().band_label)
    await world.store.upsert_tokens([BTC], NOW)
    for command in ("signal", "grade"):
        reply = await core.handle(member(), command, "BTC")
        assert reply.kind is ReplyKind.NOT_FOUND and reply.message is None
        assert "rejected TOKENMETRICS_API_KEY" in reply.text


async def test_handle_internal_failure_says_our_side_not_not_found(world: World) -> None:
    await world.store.close()  # every store call now fails
    for command, args in [("subscriptions", ""), ("why", ""), ("quiet", "off")]:
        reply = await world.core.handle(admin(), command, args)
        assert reply.kind is ReplyKind.INTERNAL, (command, reply)
        assert "went wrong on our side" in reply.text and "not found" not in reply.text.lower()


async def test_caller_moderator_check_cancelled_propagates_cancellation() -> None:
    started = asyncio.Event()

    async def admin_lookup() -> bool:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # What an HTTP client does when the request under it is torn down.
            raise ConnectionResetError("connection lost") from None
        return True

    caller = Caller(Destination("telegram", "-100"), "7", is_moderator=admin_lookup)
    task = asyncio.create_task(caller.moderator())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert task in done and task.cancelled(), "the refusal swallowed the cancellation"


# -- /test and /id


async def test_handle_id_without_topic_gives_chat_and_user_ids(world: World) -> None:
    reply = await world.core.handle(member(), "id")
    assert reply.title == "Ids" and not reply.error
    assert reply.lines[:2] == ("Chat id: -100123", "Your user id: 8")
    assert reply.lines[2].endswith("ALERTBOT_OPS_DESTINATION=telegram:-100123")
    assert "--thread" not in reply.lines[2]


async def test_handle_test_without_sender_says_unavailable_and_changes_nothing(
        world: World) -> None:
    reply = await world.core.handle(admin(), "test")
    assert reply.kind is ReplyKind.NOT_FOUND
    assert reply.lines == ("Test alerts are not available in this setup.",)
    assert await world.store.destinations() == []


async def test_handle_test_and_id_with_arguments_get_usage(world: World) -> None:
    assert (await world.core.handle(admin(), "test", "now")).lines == ("Usage: /test",)
    assert (await world.core.handle(member(), "id", "x")).lines == ("Usage: /id",)


async def test_handle_test_sends_through_the_sender_for_the_callers_destination(
        world: World) -> None:
    from alertbot.services.commands import AlertTestOutcome, AlertTestResult

    asked: list[Destination] = []

    async def sender(destination: Destination) -> AlertTestResult:
        asked.append(destination)
        return AlertTestResult(AlertTestOutcome.FAILED, ("Test alert to x failed: no.", "Fix: y."))

    lookup = Lookup(world.store, world.source, world.clock, fresh_for=timedelta(minutes=5))
    core = CommandCore(world.store, lookup, world.clock, band_label=Rules().band_label,
                       send_test=sender)
    topic = Destination("telegram", "-100123", "42")
    reply = await core.handle(admin(topic), "test")
    assert asked == [topic]
    assert reply.error and reply.lines == ("Test alert to x failed: no.", "Fix: y.")
    refused = await core.handle(member(topic), "test")
    assert refused.kind is ReplyKind.REFUSED and asked == [topic]


async def test_handle_digest_sets_shows_and_turns_off(world: World) -> None:
    reply = await world.core.handle(admin(), "digest", "weekly mon 09:00 europe/berlin only")
    assert reply.lines[:2] == (
        "Scheduled digest: weekly on Mondays at 09:00 Europe/Berlin, digests only (no single "
        "alerts).", "The first one arrives 2026-11-30 09:00 Europe/Berlin.")
    assert "Changes are no longer posted one by one here, only in the digest." in reply.lines
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.digest is not None
    assert (info.policy.digest.spec, info.policy.digest.since) == (
        "weekly mon 09:00 Europe/Berlin only", NOW)
    shown = await world.core.handle(member(), "digest", "")
    assert not shown.error and shown.lines[0].startswith("Scheduled digest: weekly on Mondays")
    assert (await world.core.handle(admin(), "digest", "off")).lines == (
        "Scheduled digest off: changes are posted one by one again.",)
    assert (await world.core.handle(admin(), "digest", "off")).lines == (
        "There is no scheduled digest here.",)


async def test_handle_digest_same_schedule_again_keeps_when_it_was_set(world: World) -> None:
    await world.core.handle(admin(), "digest", "daily 09:00 UTC")
    world.clock.advance(timedelta(days=1))
    await world.core.handle(admin(), "digest", "daily 09:00 UTC")
    info = await world.store.destination(GROUP)
    assert info is not None and info.policy.digest is not None
    assert info.policy.digest.since == NOW


@pytest.mark.parametrize(("args", "problem"), [
    ("hourly 09:00", "'hourly' is not daily, weekly or off"),
    ("daily 9", "HH:MM"),
    ("weekly someday 09:00", "'someday' is not a weekday"),
    ("daily 09:00 Nowhere/City", "Nowhere/City"),
])
async def test_handle_digest_bad_schedule_is_usage_and_changes_nothing(
        world: World, args: str, problem: str) -> None:
    reply = await world.core.handle(admin(), "digest", args)
    assert reply.kind is ReplyKind.USAGE and problem in reply.text
    assert await world.store.destination(GROUP) is None
