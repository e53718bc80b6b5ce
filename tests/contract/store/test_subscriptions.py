"""Store contract, Subscriptions role: who wants which kinds of which tokens."""

from __future__ import annotations

from alertbot.domain.models import ALL_KINDS, ALL_TOKENS, Kind
from alertbot.ports.store import Store
from tests.contract.store.helpers import BTC, DC, ETH, NOW, TG


async def test_store_subscribe_merges_kinds_and_reports_no_change(contract_store: Store) -> None:
    store = contract_store
    assert await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW)
    assert await store.subscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW)
    assert not await store.subscribe(TG, BTC.token_id, (Kind.SIGNAL,), NOW)
    (sub,) = await store.subscriptions(TG)
    assert sub.kinds == (Kind.SIGNAL, Kind.HOURLY)
    watched = await store.watched()
    assert watched.token_masks == {BTC.token_id: Kind.SIGNAL.bit | Kind.HOURLY.bit}
    assert watched.all_tokens_mask == 0


async def test_store_unsubscribe_removes_kinds_then_row(contract_store: Store) -> None:
    store = contract_store
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW)
    await store.subscribe(TG, ALL_TOKENS, (Kind.SIGNAL,), NOW)
    assert await store.unsubscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW) == 1
    assert await store.unsubscribe(TG, BTC.token_id, (Kind.HOURLY,), NOW) == 0
    subs = {s.token_id: s.kinds for s in await store.subscriptions(TG)}
    assert subs[BTC.token_id] == (Kind.SIGNAL, Kind.TM_GRADE, Kind.FUNDAMENTAL)
    assert await store.unsubscribe(TG, None, ALL_KINDS, NOW) == 2
    assert await store.subscriptions(TG) == []
    assert (await store.watched()).kinds_mask == 0


async def test_store_subscriptions_list_symbols_and_all(contract_store: Store) -> None:
    store = contract_store
    await store.upsert_tokens([BTC], NOW)
    await store.subscribe(TG, BTC.token_id, ALL_KINDS, NOW)
    await store.subscribe(TG, ALL_TOKENS, (Kind.SIGNAL,), NOW)
    await store.subscribe(DC, ETH.token_id, ALL_KINDS, NOW)
    assert [s.symbol for s in await store.subscriptions(TG)] == ["all", "BTC"]
    assert len(await store.subscriptions()) == 3
