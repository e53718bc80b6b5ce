"""Store contract, Audit role: decisions for /why and the audit log."""

from __future__ import annotations

from datetime import timedelta

from alertbot.domain.models import ALL_KINDS, Policy, Reason
from alertbot.domain.throttle import Decision, Plan
from alertbot.ports.store import PlanKeys, Store
from tests.contract.store.helpers import BTC, NOW, TG, flip, one_row


async def test_store_audit_records_actor(contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW, actor="alice")
    await store.add_audit(None, "note", "hello", NOW + timedelta(seconds=1), actor="op")
    latest, first = await store.recent_audit(2)
    assert (latest.action, latest.destination, latest.actor) == ("note", None, "op")
    assert (first.action, first.destination, first.actor) == ("subscribe", TG, "alice")


async def test_audit_policy_change_records_given_detail_else_describes_policy(
        contract_store: Store) -> None:
    store = contract_store
    await store.set_policy(TG, Policy(max_alerts=5), NOW, actor="mod", detail="throttle 5 per 1h")
    await store.set_policy(TG, Policy(max_alerts=7), NOW + timedelta(seconds=1), actor="cli")
    described, given = await store.recent_audit(2)
    assert (given.detail, given.actor) == ("throttle 5 per 1h", "mod")
    assert "at most 7 alerts" in described.detail and described.actor == "cli"


async def test_audit_decisions_newest_first_with_their_change(contract_store: Store) -> None:
    store = contract_store
    row = await one_row(store)
    await store.apply_plan(TG, Plan(singles=[Decision(row, Reason.SENT)]),
                           PlanKeys(singles={row: "akey"}), NOW)
    await store.mark_retry(TG, "akey", NOW + timedelta(minutes=1), "HTTP 502", Reason.RETRY,
                           True, NOW + timedelta(seconds=1))
    retry, sent = await store.recent_decisions(TG, 5)
    assert (retry.reason, sent.reason) == ("retry", "sent")
    assert retry.change == flip() and "HTTP 502" in retry.detail
    assert sent.detail == "akey"
    assert len(await store.recent_decisions(TG, 1)) == 1
