"""Store contract, StateStore role: readings, changes, fan-out and operator alerts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Destination, Kind
from alertbot.ports.store import Store
from tests.contract.store.helpers import (
    BTC,
    CON,
    DC,
    ETH,
    NOW,
    OPS,
    TG,
    flip,
    ops_alert,
    queued,
    tracked,
)


async def test_store_record_poll_persists_states_and_meta(contract_store: Store) -> None:
    store = contract_store
    await store.record_poll([tracked(), tracked(kind=Kind.TM_GRADE, value=55.5)], [], NOW,
                            {"replay.cursor": "42"})
    states = await store.load_states([BTC.token_id, ETH.token_id])
    assert set(states) == {(3375, Kind.SIGNAL), (3375, Kind.TM_GRADE)}
    loaded = states[(3375, Kind.TM_GRADE)]
    assert replace(loaded, updated_at=None) == tracked(kind=Kind.TM_GRADE, value=55.5)
    assert loaded.updated_at == NOW
    assert await store.get_meta("replay.cursor") == "42"


async def test_store_record_poll_keeps_source_of_each_reading(contract_store: Store) -> None:
    store = contract_store
    await store.record_poll([replace(tracked(), source="demo")], [], NOW)
    await store.record_poll([replace(tracked(), source="tokenmetrics"),
                             tracked(kind=Kind.TM_GRADE, value=55.5)], [], NOW)
    states = await store.load_states([BTC.token_id])
    assert states[(BTC.token_id, Kind.SIGNAL)].source == "tokenmetrics"
    assert states[(BTC.token_id, Kind.TM_GRADE)].source == ""


async def test_store_record_poll_touched_series_only_become_fresh(contract_store: Store) -> None:
    store = contract_store
    await store.record_poll([tracked(), tracked(ETH)], [], NOW)
    later = NOW + timedelta(minutes=5)
    await store.record_poll([], [], later, touched=[(BTC.token_id, Kind.SIGNAL)])
    states = await store.load_states([BTC.token_id, ETH.token_id])
    assert states[(BTC.token_id, Kind.SIGNAL)].updated_at == later
    assert states[(ETH.token_id, Kind.SIGNAL)].updated_at == NOW
    assert replace(states[(BTC.token_id, Kind.SIGNAL)], updated_at=None) == tracked()


async def test_store_record_poll_is_one_transaction(contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    bad_meta = {"key": object()}  # unstorable: the commit must fail as a whole
    with pytest.raises(Exception):  # noqa: B017 - any driver error will do
        await store.record_poll([tracked()], [flip()], NOW, bad_meta)  # type: ignore[dict-item]
    assert await store.load_states([BTC.token_id]) == {}
    assert await store.recent_changes(BTC.token_id, None, 5) == []
    assert await queued(store, TG) == 0


async def test_store_change_id_is_unique_and_fans_out_once(contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    first = await store.record_poll([], [flip()], NOW)
    again = await store.record_poll([], [flip()], NOW + timedelta(minutes=1))
    assert (len(first.new_changes), first.outbox_rows) == (1, 1)
    assert (again.new_changes, again.outbox_rows) == ([], 0)
    assert await queued(store, TG) == 1


async def test_store_fan_out_respects_kinds_tokens_pause_and_creation_time(
        contract_store: Store) -> None:
    store = contract_store
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


async def test_store_fan_out_one_row_per_destination_whichever_subscription_matches(
        contract_store: Store) -> None:
    store = contract_store
    hour = timedelta(hours=1)
    # Own subscription of another kind, every-token one of this kind: the latter matches.
    await store.subscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW - hour)
    await store.subscribe(TG, ALL_TOKENS, (Kind.SIGNAL,), NOW - hour)
    # Own subscription made after the change, every-token one before: the latter matches.
    await store.subscribe(DC, BTC.token_id, ALL_KINDS, NOW + hour)
    await store.subscribe(DC, ALL_TOKENS, ALL_KINDS, NOW - hour)
    # Both match: still one row.
    await store.subscribe(CON, BTC.token_id, ALL_KINDS, NOW - hour)
    await store.subscribe(CON, ALL_TOKENS, ALL_KINDS, NOW - hour)
    result = await store.record_poll([], [flip(BTC, Kind.SIGNAL), flip(ETH, Kind.HOURLY)], NOW)
    # BTC signal: TG, DC, CON; ETH hourly: DC and CON through their every-token subscriptions.
    assert result.outbox_rows == 5
    assert [await queued(store, d) for d in (TG, DC, CON)] == [1, 2, 2]


async def test_store_recent_changes_newest_first_by_kind(contract_store: Store) -> None:
    store = contract_store
    await store.record_poll([], [flip(detected=NOW), flip(to=-1.0, detected=NOW + timedelta(1),
                                                          source_day=1),
                                 flip(kind=Kind.HOURLY, detected=NOW + timedelta(2))], NOW)
    changes = await store.recent_changes(BTC.token_id, Kind.SIGNAL, 5)
    assert [c.to_value for c in changes] == [-1.0, 1.0]
    assert changes[1] == flip()
    assert len(await store.recent_changes(BTC.token_id, None, 2)) == 2


# ------------------------------------------------------------------ operator alerts


async def test_store_ops_event_queued_only_for_its_destination(contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, ALL_TOKENS, ALL_KINDS, NOW - timedelta(hours=1))
    assert await store.record_ops_event(ops_alert(), OPS, NOW) is True
    assert await queued(store, TG) == 0
    (alert,) = await store.due_alerts(OPS, NOW)
    assert alert.change == ops_alert()
    assert await store.subscriptions(OPS) == []
    assert (await store.watched()).kinds_mask & Kind.OPS.bit == 0


async def test_store_ops_event_same_occurrence_queued_once(contract_store: Store) -> None:
    store = contract_store
    assert await store.record_ops_event(ops_alert(), OPS, NOW) is True
    assert await store.record_ops_event(ops_alert(), OPS, NOW + timedelta(hours=1)) is False
    assert await queued(store, OPS) == 1
    assert await store.record_ops_event(ops_alert(NOW + timedelta(days=1)), OPS, NOW) is True
    assert await queued(store, OPS) == 2


async def test_store_ops_event_for_paused_destination_not_queued(contract_store: Store) -> None:
    store = contract_store
    await store.ensure_destination(OPS, NOW)
    await store.pause(OPS, "bot was kicked", NOW)
    assert await store.record_ops_event(ops_alert(), OPS, NOW) is False
    assert await queued(store, OPS) == 0
