"""The Store contract: every Store implementation must pass this suite.

Add a factory to STORES to run it against a new backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

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
    Reason,
    Token,
    TrackedState,
    make_change_id,
)
from alertbot.domain.ops_events import key_rejected, ops_change
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys, Store, StoreError
from alertbot.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
ETH = Token(3306, "ETH", "Ethereum", "ethereum")
TG = Destination("telegram", "-1001")
DC = Destination("discord", "444", "555")
CON = Destination("console", "default")

StoreFactory = Callable[[Path], Awaitable[Store]]


async def _sqlite_file(tmp: Path) -> Store:
    store = SqliteStore(str(tmp / "contract.db"))
    await store.open()
    return store


async def _sqlite_memory(tmp: Path) -> Store:
    store = SqliteStore(":memory:")
    await store.open()
    return store


STORES: dict[str, StoreFactory] = {"sqlite-file": _sqlite_file, "sqlite-memory": _sqlite_memory}


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    instance = await STORES[request.param](tmp_path)
    yield instance
    await instance.close()


def flip(token: Token = BTC, kind: Kind = Kind.SIGNAL, to: float = 1.0,
         detected: datetime = NOW, source_day: int = 0) -> Change:
    source = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=source_day)
    return Change(make_change_id(token.token_id, kind, -to, to, source), token, kind, -to, to,
                  Direction.UP if to > 0 else Direction.DOWN, source, detected,
                  "bearish" if to > 0 else "bullish", "bullish" if to > 0 else "bearish", "flip")


def tracked(token: Token = BTC, kind: Kind = Kind.SIGNAL, value: float = 1.0) -> TrackedState:
    return TrackedState(token.token_id, kind, value, NOW - timedelta(hours=1), label="x",
                        band=2, alerted_value=value, fired_at=NOW - timedelta(days=1))


async def queued(store: Store, destination: Destination) -> int:
    alerts = await store.due_alerts(destination, NOW + timedelta(days=365))
    committed = await store.committed(destination, NOW + timedelta(days=365))
    return len(alerts) + sum(len(c.row_ids) for c in committed)


# ------------------------------------------------------------------ catalog, readings, meta


async def test_store_tokens_by_symbol_case_insensitive_and_ambiguous(store: Store) -> None:
    other = Token(9999, "BTC", "Other BTC", "")
    await store.upsert_tokens([BTC, ETH, other], NOW)
    assert [t.token_id for t in await store.tokens_by_symbol("btc")] == [3375, 9999]
    assert await store.token(3306) == ETH
    assert await store.token(1) is None


async def test_store_upsert_tokens_keeps_known_slug(store: Store) -> None:
    await store.upsert_tokens([BTC], NOW)
    await store.upsert_tokens([replace(BTC, slug="", name="Bitcoin!")], NOW)
    assert await store.token(BTC.token_id) == replace(BTC, name="Bitcoin!")


async def test_store_search_tokens_prefix_exact_first_and_limit(store: Store) -> None:
    await store.upsert_tokens([BTC, ETH, Token(1, "BTCST", "BTC Standard", ""),
                               Token(2, "WBTC", "Wrapped Bitcoin", "")], NOW)
    found = await store.search_tokens("btc", 2)
    assert [t.symbol for t in found] == ["BTC", "BTCST"]
    assert [t.symbol for t in await store.search_tokens("Bitc", 5)] == ["BTC"]
    assert await store.search_tokens("%", 5) == []


async def test_store_record_poll_persists_states_and_meta(store: Store) -> None:
    await store.record_poll([tracked(), tracked(kind=Kind.TM_GRADE, value=55.5)], [], NOW,
                            {"replay.cursor": "42"})
    states = await store.load_states([BTC.token_id, ETH.token_id])
    assert set(states) == {(3375, Kind.SIGNAL), (3375, Kind.TM_GRADE)}
    loaded = states[(3375, Kind.TM_GRADE)]
    assert replace(loaded, updated_at=None) == tracked(kind=Kind.TM_GRADE, value=55.5)
    assert loaded.updated_at == NOW
    assert await store.get_meta("replay.cursor") == "42"
    await store.set_meta("replay.cursor", "43")
    assert await store.get_meta("replay.cursor") == "43"
    assert await store.get_meta("missing") is None


async def test_store_record_poll_touched_series_only_become_fresh(store: Store) -> None:
    await store.record_poll([tracked(), tracked(ETH)], [], NOW)
    later = NOW + timedelta(minutes=5)
    await store.record_poll([], [], later, touched=[(BTC.token_id, Kind.SIGNAL)])
    states = await store.load_states([BTC.token_id, ETH.token_id])
    assert states[(BTC.token_id, Kind.SIGNAL)].updated_at == later
    assert states[(ETH.token_id, Kind.SIGNAL)].updated_at == NOW
    assert replace(states[(BTC.token_id, Kind.SIGNAL)], updated_at=None) == tracked()


async def test_store_record_poll_is_one_transaction(store: Store) -> None:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    bad_meta = {"key": object()}  # unstorable: the commit must fail as a whole
    with pytest.raises(Exception):  # noqa: B017 - any driver error will do
        await store.record_poll([tracked()], [flip()], NOW, bad_meta)  # type: ignore[dict-item]
    assert await store.load_states([BTC.token_id]) == {}
    assert await store.recent_changes(BTC.token_id, None, 5) == []
    assert await queued(store, TG) == 0


# ------------------------------------------------------------------ changes and fan-out


async def test_store_change_id_is_unique_and_fans_out_once(store: Store) -> None:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    first = await store.record_poll([], [flip()], NOW)
    again = await store.record_poll([], [flip()], NOW + timedelta(minutes=1))
    assert (len(first.new_changes), first.outbox_rows) == (1, 1)
    assert (again.new_changes, again.outbox_rows) == ([], 0)
    assert await queued(store, TG) == 1


async def test_store_fan_out_respects_kinds_tokens_pause_and_creation_time(store: Store) -> None:
    hour = timedelta(hours=1)
    await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW - hour)
    await store.subscribe(DC, ETH.token_id, ALL_KINDS, NOW - hour)
    await store.subscribe(CON, ALL_TOKENS, (Kind.TM_GRADE,), NOW - hour)
    late = Destination("telegram", "-1002")
    await store.subscribe(late, ALL_TOKENS, ALL_KINDS, NOW + hour)
    paused = Destination("telegram", "-1003")
    await store.subscribe(paused, ALL_TOKENS, ALL_KINDS, NOW - hour)
    await store.pause(paused, "bot was kicked", NOW - hour)
    result = await store.record_poll([], [flip(BTC, Kind.SIGNAL), flip(BTC, Kind.HOURLY),
                                          flip(ETH, Kind.TM_GRADE)], NOW)
    assert result.outbox_rows == 3
    assert await queued(store, TG) == 1  # BTC signal only
    assert await queued(store, DC) == 1  # ETH only
    assert await queued(store, CON) == 1  # tm_grade of any token
    assert await queued(store, late) == 0  # subscribed after the changes
    assert await queued(store, paused) == 0


async def test_store_recent_changes_newest_first_by_kind(store: Store) -> None:
    await store.record_poll([], [flip(detected=NOW), flip(to=-1.0, detected=NOW + timedelta(1),
                                                          source_day=1),
                                 flip(kind=Kind.HOURLY, detected=NOW + timedelta(2))], NOW)
    changes = await store.recent_changes(BTC.token_id, Kind.SIGNAL, 5)
    assert [c.to_value for c in changes] == [-1.0, 1.0]
    assert changes[1] == flip()
    assert len(await store.recent_changes(BTC.token_id, None, 2)) == 2


# ------------------------------------------------------------------ subscriptions


async def test_store_subscribe_merges_kinds_and_reports_no_change(store: Store) -> None:
    assert await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW)
    assert await store.subscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW)
    assert not await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW)
    (sub,) = await store.subscriptions(TG)
    assert sub.kinds == (Kind.SIGNAL, Kind.HOURLY)
    watched = await store.watched()
    assert watched.token_masks == {BTC.token_id: Kind.SIGNAL.bit | Kind.HOURLY.bit}
    assert watched.all_tokens_mask == 0


async def test_store_unsubscribe_removes_kinds_then_row(store: Store) -> None:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW)
    await store.subscribe(TG, ALL_TOKENS, (Kind.SIGNAL,), NOW)
    assert await store.unsubscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW) == 1
    assert await store.unsubscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW) == 0
    subs = {s.token_id: s.kinds for s in await store.subscriptions(TG)}
    assert subs[BTC.token_id] == (Kind.SIGNAL, Kind.TM_GRADE, Kind.FUNDAMENTAL)
    assert await store.unsubscribe(TG, None, ALL_KINDS, NOW) == 2
    assert await store.subscriptions(TG) == []
    assert (await store.watched()).kinds_mask == 0


async def test_store_subscriptions_list_symbols_and_all(store: Store) -> None:
    await store.upsert_tokens([BTC], NOW)
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW)
    await store.subscribe(TG, ALL_TOKENS, (Kind.SIGNAL,), NOW)
    await store.subscribe(DC, ETH.token_id, ALL_KINDS, NOW)
    assert [s.symbol for s in await store.subscriptions(TG)] == ["all", "BTC"]
    assert len(await store.subscriptions()) == 3


# ------------------------------------------------------------------ destinations


async def test_store_policy_round_trip(store: Store) -> None:
    policy = Policy(max_alerts=3, window=timedelta(minutes=30),
                    quiet=QuietHours(time(22, 0), time(7, 0), "Europe/Berlin"),
                    mute_until=NOW + timedelta(hours=2), settle=timedelta(minutes=5),
                    modes={Kind.HOURLY: Mode.SILENT, Kind.FUNDAMENTAL: Mode.OFF})
    await store.set_policy(TG, policy, NOW, actor="mod")
    info = await store.destination(TG)
    assert info is not None and info.policy == policy
    assert (await store.recent_audit(1))[0].action == "policy"
    assert await store.destination(DC) is None


async def test_store_ensure_destination_keeps_existing_policy(store: Store) -> None:
    await store.set_policy(CON, Policy(max_alerts=2), NOW)
    await store.ensure_destination(CON, NOW, address="https://example.test/hook", label="x")
    info = await store.destination(CON)
    assert info is not None
    assert (info.policy.max_alerts, info.address, info.label) == (2, "https://example.test/hook",
                                                                  "x")


async def test_store_destinations_filters(store: Store) -> None:
    topic = Destination("telegram", "-1001", "7")
    for destination in (TG, topic, DC, CON):
        await store.ensure_destination(destination, NOW)
    await store.ensure_destination(Destination("webhook", "wh-1"), NOW,
                                   address="https://example.test/h")
    everything = await store.destinations()
    assert len(everything) == 5
    chat = await store.destinations(platform="telegram", chat_id="-1001")
    assert [i.destination for i in chat] == [TG, topic]
    assert [i.destination.platform for i in await store.destinations(with_address=True)] == [
        "webhook"]
    assert len(await store.destinations(limit=2)) == 2
    assert await store.destinations(platform="discord", chat_id="nope") == []


async def test_store_pause_dead_letters_queue_and_subscribe_resumes(store: Store) -> None:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip()], NOW)
    assert await store.pause(TG, "bot was blocked", NOW) == 1
    assert await store.pause(TG, "again", NOW) == 0
    info = await store.destination(TG)
    assert info is not None and info.paused_reason == "bot was blocked"
    assert await queued(store, TG) == 0
    assert (await store.subscriptions(TG))[0].paused_reason == "bot was blocked"
    decisions = await store.recent_decisions(TG, 5)
    assert decisions[0].reason == Reason.DESTINATION_GONE.value
    assert (await store.watched()).kinds_mask == 0
    assert await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW)
    info = await store.destination(TG)
    assert info is not None and info.paused_reason == ""


async def test_store_rekey_moves_subscriptions_policy_and_queue(store: Store) -> None:
    new = Destination("telegram", "-1009")
    await store.set_policy(TG, Policy(max_alerts=4), NOW)
    await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW - timedelta(hours=1))
    await store.subscribe(new, BTC.token_id, (Kind.HOURLY,), NOW - timedelta(hours=1))
    await store.record_poll([], [flip()], NOW)
    assert await store.rekey(TG, new, NOW) == 1
    assert await store.subscriptions(TG) == []
    (sub,) = await store.subscriptions(new)
    assert sub.kinds == (Kind.SIGNAL, Kind.HOURLY)
    assert await queued(store, new) == 1
    assert await store.destination(TG) is None


# ------------------------------------------------------------------ outbox state machine


async def _one_row(store: Store, destination: Destination = TG, token: Token = BTC) -> int:
    await store.subscribe(destination, token.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(token)], NOW)
    (alert,) = await store.due_alerts(destination, NOW)
    return alert.row_id


async def test_store_due_destinations_filters_platform_and_exclusions(store: Store) -> None:
    await _one_row(store, TG)
    await _one_row(store, DC, ETH)
    assert set(await store.due_destinations(NOW, 10, ["telegram", "discord"])) == {TG, DC}
    assert await store.due_destinations(NOW, 10, ["telegram"]) == [TG]
    assert await store.due_destinations(NOW, 10, ["telegram", "discord"], exclude=[TG]) == [DC]
    assert await store.due_destinations(NOW - timedelta(seconds=1), 10, ["telegram"]) == []
    assert await store.next_due(["telegram"]) == NOW


async def test_store_single_message_lifecycle(store: Store) -> None:
    row = await _one_row(store)
    plan = Plan(singles=[Decision(row, Reason.SENT, silent=True)])
    recorded = await store.apply_plan(TG, plan, PlanKeys(singles={row: "akey"}), NOW)
    assert recorded == {Reason.SENT: 1}
    assert await store.due_alerts(TG, NOW) == []
    (message,) = await store.committed(TG, NOW)
    assert (message.key, message.row_ids, message.silent) == ("akey", (row,), True)
    await store.claim("akey", NOW)
    changes = await store.mark_sent(TG, "akey", "m-1", NOW + timedelta(seconds=1))
    assert [c.change_id for c in changes] == [flip().change_id]
    assert await store.committed(TG, NOW + timedelta(days=1)) == []
    assert await store.sent_times(TG, NOW - timedelta(hours=1)) == [NOW + timedelta(seconds=1)]
    assert (await store.outbox_stats()).by_state == {"sent": 1}
    assert [d.reason for d in await store.recent_decisions(TG, 5)] == ["sent"]


async def test_store_digest_groups_rows_under_one_key(store: Store) -> None:
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(BTC), flip(ETH)], NOW)
    rows = [a.row_id for a in await store.due_alerts(TG, NOW)]
    plan = Plan(digest=[Decision(r, Reason.DIGEST) for r in rows])
    await store.apply_plan(TG, plan, PlanKeys(digest="dkey"), NOW)
    (message,) = await store.committed(TG, NOW)
    assert message.row_ids == tuple(rows) and len(message.changes) == 2
    await store.mark_sent(TG, "dkey", "m-9", NOW)
    assert len(await store.sent_times(TG, NOW - timedelta(hours=1))) == 1


async def test_store_held_group_waits_until_due_then_returns_whole(store: Store) -> None:
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip(BTC), flip(ETH)], NOW)
    first, second = (a.row_id for a in await store.due_alerts(TG, NOW))
    later = NOW + timedelta(minutes=10)
    plan = Plan(held=[Decision(first, Reason.HELD_RATE, until=later),
                      Decision(second, Reason.HELD_RATE, until=later + timedelta(minutes=5))])
    await store.apply_plan(TG, plan, PlanKeys(), NOW)
    assert await store.due_alerts(TG, NOW + timedelta(minutes=5)) == []
    assert await store.due_destinations(NOW + timedelta(minutes=5), 5, ["telegram"]) == []
    group = await store.due_alerts(TG, later)
    assert [(a.row_id, a.held) for a in group] == [(first, True), (second, True)]
    # Holding again with the same reason records no second decision.
    assert await store.apply_plan(TG, plan, PlanKeys(), later) == {}
    assert [d.reason for d in await store.recent_decisions(TG, 5)] == ["held_rate"] * 2


async def test_store_suppressed_rows_are_final(store: Store) -> None:
    row = await _one_row(store)
    await store.apply_plan(TG, Plan(suppressed=[Decision(row, Reason.MUTED)]), PlanKeys(), NOW)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    assert await store.committed(TG, NOW) == []
    assert (await store.outbox_stats()).by_state == {"suppressed": 1}


async def test_store_due_alerts_carry_the_next_change_of_the_series(store: Store) -> None:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    up = flip(to=1.0, detected=NOW)
    down = flip(to=-1.0, detected=NOW + timedelta(seconds=30), source_day=1)
    await store.record_poll([], [up], NOW)
    await store.record_poll([], [down], NOW + timedelta(seconds=30))
    alerts = await store.due_alerts(TG, NOW + timedelta(minutes=1))
    assert alerts[0].next_change == down and alerts[0].next_row_id == alerts[1].row_id
    assert alerts[1].next_change is None


async def test_store_retry_counts_attempts_and_reschedules(store: Store) -> None:
    row = await _one_row(store)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    await store.claim("akey", NOW)
    later = NOW + timedelta(seconds=30)
    await store.mark_retry(TG, "akey", later, "HTTP 502", Reason.RETRY, True, NOW)
    await store.mark_retry(TG, "akey", later, "429", Reason.RATE_LIMITED, False, NOW)
    assert await store.committed(TG, NOW) == []
    (message,) = await store.committed(TG, later)
    assert message.attempts == 1
    await store.mark_dead(TG, "akey", "gave up", Reason.DEAD, later)
    assert (await store.outbox_stats()).by_state == {"dead": 1}
    reasons = [d.reason for d in await store.recent_decisions(TG, 10)]
    assert reasons[:3] == ["dead", "rate_limited", "retry"]


async def test_store_recover_makes_in_flight_rows_due_with_same_key(store: Store) -> None:
    row = await _one_row(store)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    await store.claim("akey", NOW)
    await store.mark_retry(TG, "akey", NOW + timedelta(hours=1), "x", Reason.RETRY, True, NOW)
    await store.claim("akey", NOW)
    assert await store.recover(NOW + timedelta(seconds=5)) == 1
    (message,) = await store.committed(TG, NOW + timedelta(seconds=5))
    assert message.key == "akey"
    stats = await store.outbox_stats()
    assert stats.by_state == {"sending": 1} and stats.oldest_pending == NOW


async def test_store_audit_records_actor(store: Store) -> None:
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW, actor="alice")
    await store.add_audit(None, "note", "hello", NOW + timedelta(seconds=1), actor="op")
    latest, first = await store.recent_audit(2)
    assert (latest.action, latest.destination, latest.actor) == ("note", None, "op")
    assert (first.action, first.destination, first.actor) == ("subscribe", TG, "alice")


async def test_store_ping_fails_after_close(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()


# ------------------------------------------------------------------ operator alerts


OPS = Destination("telegram", "-100999")


def ops_alert(at: datetime = NOW) -> Change:
    return ops_change(key_rejected("HTTP 401", at), NOW)


async def test_store_ops_event_queued_only_for_its_destination(store: Store) -> None:
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    assert await store.record_ops_event(ops_alert(), OPS, NOW) is True
    assert await queued(store, TG) == 0
    (alert,) = await store.due_alerts(OPS, NOW)
    assert alert.change == ops_alert()
    assert await store.subscriptions(OPS) == []
    assert (await store.watched()).kinds_mask & Kind.OPS.bit == 0


async def test_store_ops_event_same_occurrence_queued_once(store: Store) -> None:
    assert await store.record_ops_event(ops_alert(), OPS, NOW) is True
    assert await store.record_ops_event(ops_alert(), OPS, NOW + timedelta(hours=1)) is False
    assert await queued(store, OPS) == 1
    assert await store.record_ops_event(ops_alert(NOW + timedelta(days=1)), OPS, NOW) is True
    assert await queued(store, OPS) == 2


async def test_store_ops_event_for_paused_destination_not_queued(store: Store) -> None:
    await store.ensure_destination(OPS, NOW)
    await store.pause(OPS, "bot was kicked", NOW)
    assert await store.record_ops_event(ops_alert(), OPS, NOW) is False
    assert await queued(store, OPS) == 0


# ------------------------------------------------------------------ maintenance


async def _finished_rows(store: Store, at: datetime) -> None:
    """One sent and one dead row for TG, with their decisions and message, all at `at`."""
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, at - timedelta(hours=1))
    await store.record_poll([], [flip(detected=at, source_day=0),
                                 flip(to=-1.0, detected=at, source_day=1)], at)
    first, second = await store.due_alerts(TG, at)
    await store.apply_plan(TG, Plan(singles=[Decision(first.row_id, Reason.SENT),
                                             Decision(second.row_id, Reason.SENT)]),
                           PlanKeys(singles={first.row_id: "aone", second.row_id: "atwo"}), at)
    await store.mark_sent(TG, "aone", "m1", at)
    await store.mark_dead(TG, "atwo", "HTTP 400", Reason.DEAD, at)


async def test_store_purge_removes_old_finished_history_only(store: Store) -> None:
    old = NOW - timedelta(days=40)
    await _finished_rows(store, old)
    await store.subscribe(DC, ETH.token_id, ALL_KINDS, NOW - timedelta(days=50))
    await store.record_poll([], [flip(ETH, detected=old)], old)  # still queued: kept
    result = await store.purge(NOW - timedelta(days=30), NOW)
    assert (result.outbox, result.messages, result.changes) == (2, 1, 2)
    assert result.decisions >= 2
    assert await store.recent_decisions(TG, 10) == []
    assert await store.sent_times(TG, old - timedelta(days=1)) == []
    assert (await store.outbox_stats()).by_state == {"pending": 1}
    assert await store.recent_changes(BTC.token_id, None, 5) == []
    assert len(await store.recent_changes(ETH.token_id, None, 5)) == 1
    assert (await store.purge(NOW - timedelta(days=30), NOW)).total == 0


async def test_store_purge_keeps_rate_history_of_longest_window(store: Store) -> None:
    old = NOW - timedelta(days=3)
    await _finished_rows(store, old)
    await store.set_policy(TG, Policy(max_alerts=5, window=timedelta(days=7)), NOW)
    result = await store.purge(NOW - timedelta(days=1), NOW)
    assert result.messages == 0 and result.outbox == 2
    assert len(await store.sent_times(TG, old - timedelta(seconds=1))) == 1


async def test_store_stats_counts_rows_and_outbox(store: Store) -> None:
    await _finished_rows(store, NOW)
    stats = await store.stats()
    assert stats.schema_version >= 1
    assert stats.size_bytes > 0
    assert stats.tables["outbox"] == 2 and stats.tables["changes"] == 2
    assert stats.tables["messages"] == 1 and stats.tables["subscriptions"] == 1
    assert stats.outbox.by_state == {"sent": 1, "dead": 1}


async def test_store_backup_writes_complete_copy(store: Store, tmp_path: Path) -> None:
    await _finished_rows(store, NOW)
    target = tmp_path / "copy.db"
    target.write_bytes(b"an older backup")
    await store.backup(str(target))
    assert target.stat().st_size > 0
    assert target.stat().st_mode & 0o077 == 0, "a backup holds secrets: owner only"
    assert not (tmp_path / "copy.db.partial").exists()
    copy = SqliteStore(str(target))
    await copy.open()
    try:
        assert (await copy.stats()).tables == (await store.stats()).tables
    finally:
        await copy.close()


async def test_store_backup_to_missing_directory_raises_store_error(store: Store,
                                                                  tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await store.backup(str(tmp_path / "nope" / "copy.db"))
