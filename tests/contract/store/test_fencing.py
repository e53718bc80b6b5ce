"""Store contract, Fencing role: a leader's writes carry its epoch; older ones fail.

A leader that lost its leadership without noticing (paused, partitioned) must not record a
claim, a send, a poll, or a pause or rekey after a failed send once a newer leader began: each
refused write raises FencedError and changes nothing, and the newer epoch's writes go through.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from alertbot.domain.models import ALL_KINDS, Destination, Kind, Reason
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.leadership import ReplicaId, ReplicaRecord, Role
from alertbot.ports.store import FencedError, PlanKeys, Store, StoreError
from tests.contract.store.helpers import (
    BTC,
    NOW,
    TG,
    committed_row,
    flip,
    one_row,
    queued,
    tracked,
)

A = "host-a:100"
B = "host-b:200"


async def test_fencing_begin_epoch_increases_and_records_holder(contract_store: Store) -> None:
    store = contract_store
    assert await store.leader() is None
    assert await store.begin_epoch(A, NOW) == 1
    assert await store.begin_epoch(B, NOW + timedelta(seconds=1)) == 2
    leader = await store.leader()
    assert leader is not None
    assert (leader.holder, leader.epoch) == (ReplicaId("host-b", 200), 2)
    assert leader.acquired_at == NOW + timedelta(seconds=1)


async def test_fencing_fenced_error_is_a_store_error() -> None:
    assert issubclass(FencedError, StoreError)


async def test_fencing_current_epoch_writes_go_through(contract_store: Store) -> None:
    store = contract_store
    epoch = await store.begin_epoch(A, NOW)
    row = await one_row(store, epoch=epoch)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW, epoch=epoch)
    await store.claim("akey", NOW, epoch=epoch)
    assert await store.recover(NOW, epoch=epoch) == 1
    sent = await store.mark_sent(TG, "akey", "m-1", NOW, epoch=epoch)
    assert len(sent) == 1
    assert (await store.outbox_stats()).by_state == {"sent": 1}


async def test_fencing_older_epoch_claim_is_refused_and_changes_nothing(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    old = await store.begin_epoch(A, NOW)
    await store.begin_epoch(B, NOW)
    with pytest.raises(FencedError, match="epoch 1 is over: epoch 2"):
        await store.claim("akey", NOW, epoch=old)
    assert (await store.outbox_stats()).by_state == {"pending": 1}


async def test_fencing_older_epoch_outcomes_are_refused_and_change_nothing(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    old = await store.begin_epoch(A, NOW)
    await store.claim("akey", NOW, epoch=old)
    new = await store.begin_epoch(B, NOW)
    later = NOW + timedelta(seconds=5)
    with pytest.raises(FencedError):
        await store.mark_sent(TG, "akey", "m-1", later, epoch=old)
    with pytest.raises(FencedError):
        await store.mark_retry(TG, "akey", later, "HTTP 500", Reason.RETRY, True, later,
                               epoch=old)
    with pytest.raises(FencedError):
        await store.mark_dead(TG, "akey", "HTTP 400", Reason.DEAD, later, epoch=old)
    with pytest.raises(FencedError):
        await store.recover(later, epoch=old)
    assert (await store.outbox_stats()).by_state == {"sending": 1}
    assert await store.sent_times(TG, NOW - timedelta(hours=1)) == []
    assert [d.reason for d in await store.recent_decisions(TG, 5)] == ["sent"]
    # The new leader's recovery makes the claimed row due again and sends it under its key.
    assert await store.recover(later, epoch=new) == 1
    (message,) = await store.committed(TG, later)
    assert message.key == "akey"
    assert len(await store.mark_sent(TG, "akey", "m-2", later, epoch=new)) == 1


async def test_fencing_older_epoch_plan_is_refused_and_changes_nothing(
        contract_store: Store) -> None:
    store = contract_store
    old = await store.begin_epoch(A, NOW)
    row = await one_row(store, epoch=old)
    await store.begin_epoch(B, NOW)
    with pytest.raises(FencedError):
        await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                               PlanKeys(singles={row: "akey"}), NOW, epoch=old)
    assert await store.committed(TG, NOW) == []
    assert [a.row_id for a in await store.due_alerts(TG, NOW)] == [row]
    assert await store.recent_decisions(TG, 5) == []


async def test_fencing_heartbeats_replace_per_replica_and_forget_silent_ones(
        contract_store: Store) -> None:
    store = contract_store
    a, b = ReplicaId("host-a", 100), ReplicaId("host-b", 200)
    old = NOW - timedelta(days=2)
    await store.heartbeat(ReplicaRecord(b, old, old, Role.STANDBY), old - timedelta(days=1))
    await store.heartbeat(ReplicaRecord(a, NOW, NOW, Role.STANDBY), NOW - timedelta(days=3))
    await store.heartbeat(ReplicaRecord(a, NOW, NOW + timedelta(seconds=2), Role.LEADER),
                          NOW - timedelta(days=3))
    replicas = await store.replicas()
    assert [(r.replica, r.role) for r in replicas] == [(a, Role.LEADER), (b, Role.STANDBY)]
    assert replicas[0].started_at == NOW
    assert replicas[0].heartbeat_at == NOW + timedelta(seconds=2)
    await store.heartbeat(ReplicaRecord(a, NOW, NOW + timedelta(seconds=4), Role.LEADER),
                          NOW - timedelta(days=1))
    assert [r.replica for r in await store.replicas()] == [a]


async def test_fencing_default_epoch_passes_only_before_the_first_epoch(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store)
    await store.claim("akey", NOW)
    await store.begin_epoch(A, NOW)
    with pytest.raises(FencedError, match="epoch 0 is over: epoch 1"):
        await store.mark_sent(TG, "akey", "m-1", NOW)
    assert (await store.outbox_stats()).by_state == {"sending": 1}


async def test_fencing_older_epoch_poll_is_refused_and_changes_nothing(
        contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    old = await store.begin_epoch(A, NOW)
    await store.record_poll([tracked()], [], NOW, epoch=old)
    new = await store.begin_epoch(B, NOW)
    later = NOW + timedelta(minutes=5)
    with pytest.raises(FencedError, match="epoch 1 is over: epoch 2"):
        await store.record_poll([tracked(value=-1.0)], [flip()], later, {"cursor": "9"},
                                touched=[(BTC.token_id, Kind.SIGNAL)], epoch=old)
    states = await store.load_states([BTC.token_id])
    assert states[(BTC.token_id, Kind.SIGNAL)].value == 1.0
    assert states[(BTC.token_id, Kind.SIGNAL)].updated_at == NOW
    assert await store.recent_changes(BTC.token_id, None, 5) == []
    assert await queued(store, TG) == 0
    assert await store.get_meta("cursor") is None
    result = await store.record_poll([tracked(value=-1.0)], [flip()], later, epoch=new)
    assert result.outbox_rows == 1


async def test_fencing_older_epoch_pause_and_rekey_are_refused_and_change_nothing(
        contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    old = await store.begin_epoch(A, NOW)
    await store.begin_epoch(B, NOW)
    moved = Destination("telegram", "-1009")
    audit = await store.recent_audit(5)
    with pytest.raises(FencedError):
        await store.pause(TG, "bot was kicked", NOW, epoch=old)
    with pytest.raises(FencedError):
        await store.rekey(TG, moved, NOW, epoch=old)
    info = await store.destination(TG)
    assert info is not None and info.paused_at is None
    assert await store.destination(moved) is None
    assert [s.destination for s in await store.subscriptions()] == [TG]
    assert [a.row_id for a in await store.due_alerts(TG, NOW)] == [row]
    assert await store.recent_audit(5) == audit


async def test_fencing_pause_and_rekey_without_epoch_are_not_checked(
        contract_store: Store) -> None:
    # Chat commands (answered by any replica in webhook mode) pause and rekey without one.
    store = contract_store
    await one_row(store)
    await store.begin_epoch(A, NOW)
    moved = Destination("telegram", "-1009")
    assert await store.rekey(TG, moved, NOW) == 1
    assert await store.pause(moved, "bot was kicked", NOW) == 1
    assert await store.pause(moved, "again", NOW, epoch=1) == 0


async def test_fencing_older_epoch_decide_is_refused_and_changes_nothing(
        contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    old = await store.begin_epoch(A, NOW)
    await store.begin_epoch(B, NOW)
    with pytest.raises(FencedError, match="epoch 1 is over: epoch 2"):
        await store.decide(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW, epoch=old)
    assert [a.row_id for a in await store.due_alerts(TG, NOW)] == [row]
    assert await store.committed(TG, NOW) == []
