"""Store contract, TokenMutes role: per-destination token mutes and the alerts buttons name."""

from __future__ import annotations

from datetime import timedelta

from alertbot.domain.models import Destination, Reason
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys, Store
from tests.contract.store.helpers import BTC, DC, ETH, NOW, TG, committed_row, one_row

UNTIL = NOW + timedelta(hours=24)


async def _catalog(store: Store) -> None:
    await store.upsert_tokens([BTC, ETH], NOW)


async def test_token_mutes_mute_is_listed_until_it_ends(contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    result = await store.mute_token(TG, BTC.token_id, UNTIL, NOW, actor="telegram:1 @mod")
    assert result.created
    assert (result.mute.token.symbol, result.mute.until, result.mute.destination) == (
        "BTC", UNTIL, TG)
    (listed,) = await store.token_mutes(TG, NOW + timedelta(hours=23))
    assert (listed.token.token_id, listed.until, listed.actor) == (
        BTC.token_id, UNTIL, "telegram:1 @mod")
    assert await store.token_mutes(TG, UNTIL) == []


async def test_token_mutes_are_per_destination_and_token(contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    await store.mute_token(TG, BTC.token_id, UNTIL, NOW)
    assert await store.token_mutes(DC, NOW) == []
    assert await store.token_mutes(Destination("telegram", "-1001", "5"), NOW) == []
    await store.mute_token(TG, ETH.token_id, UNTIL, NOW)
    assert [m.token.symbol for m in await store.token_mutes(TG, NOW)] == ["BTC", "ETH"]


async def test_token_mutes_muting_twice_keeps_first_mute_and_audits_once(
        contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    first = await store.mute_token(TG, BTC.token_id, UNTIL, NOW, actor="a")
    again = await store.mute_token(TG, BTC.token_id, UNTIL + timedelta(minutes=5),
                                   NOW + timedelta(minutes=5), actor="b")
    assert not again.created and again.mute.until == first.mute.until == UNTIL
    audit = [a for a in await store.recent_audit(10) if a.action == "mute_token"]
    assert len(audit) == 1 and "mute BTC until" in audit[0].detail and audit[0].actor == "a"


async def test_token_mutes_ended_mute_is_replaced(contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    await store.mute_token(TG, BTC.token_id, UNTIL, NOW)
    later = UNTIL + timedelta(hours=1)
    result = await store.mute_token(TG, BTC.token_id, later + timedelta(hours=24), later)
    assert result.created and result.mute.until == later + timedelta(hours=24)


async def test_token_mutes_unmute_ends_mute_once(contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    await store.mute_token(TG, BTC.token_id, UNTIL, NOW)
    assert await store.unmute_token(TG, BTC.token_id, NOW + timedelta(hours=1), actor="m")
    assert not await store.unmute_token(TG, BTC.token_id, NOW + timedelta(hours=1))
    assert await store.token_mutes(TG, NOW + timedelta(hours=1)) == []
    audit = [a.action for a in await store.recent_audit(10)]
    assert audit.count("unmute_token") == 1


async def test_token_mutes_unmute_of_ended_mute_reports_nothing(contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    await store.mute_token(TG, BTC.token_id, UNTIL, NOW)
    assert not await store.unmute_token(TG, BTC.token_id, UNTIL + timedelta(seconds=1))


async def test_token_mutes_follow_a_rekeyed_destination(contract_store: Store) -> None:
    store = contract_store
    await _catalog(store)
    await one_row(store)
    await store.mute_token(TG, BTC.token_id, UNTIL, NOW)
    new = Destination("telegram", "-100222")
    await store.rekey(TG, new, NOW)
    assert [m.token.symbol for m in await store.token_mutes(new, NOW)] == ["BTC"]
    assert await store.token_mutes(TG, NOW) == []


async def test_message_changes_returns_change_of_key_in_its_destination_only(
        contract_store: Store) -> None:
    store = contract_store
    await committed_row(store, key="akey")
    (change,) = await store.message_changes(TG, "akey")
    assert change.token.token_id == BTC.token_id
    assert await store.message_changes(TG, "aother") == []
    assert await store.message_changes(Destination("telegram", "-1002"), "akey") == []


async def test_message_changes_of_suppressed_row_without_key_is_empty(
        contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(suppressed=[Decision(row, Reason.TOKEN_MUTED,
                                                         until=UNTIL)]), PlanKeys(), NOW)
    assert await store.message_changes(TG, "akey") == []
    (decision,) = await store.recent_decisions(TG, 1)
    assert decision.reason == "token_muted" and "until" in decision.detail
