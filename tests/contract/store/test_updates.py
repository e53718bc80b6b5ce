"""Store contract, Updates role: a received update id is claimed by exactly one caller."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from alertbot.ports.store import Store
from tests.contract.store.helpers import NOW


async def test_claim_update_first_claim_wins_repeat_refused(contract_store: Store) -> None:
    store = contract_store
    assert await store.claim_update("telegram", 1001, NOW) is True
    assert await store.claim_update("telegram", 1001, NOW) is False
    assert await store.claim_update("telegram", 1001, NOW + timedelta(hours=1)) is False


async def test_claim_update_other_id_or_platform_is_independent(contract_store: Store) -> None:
    store = contract_store
    assert await store.claim_update("telegram", 7, NOW)
    assert await store.claim_update("telegram", 8, NOW)
    assert await store.claim_update("discord", 7, NOW)
    # Telegram update ids are 32-bit today, but nothing promises they stay small.
    assert await store.claim_update("telegram", 2**40, NOW)
    assert not await store.claim_update("telegram", 2**40, NOW)


async def test_claim_update_concurrent_claims_exactly_one_wins(contract_store: Store) -> None:
    store = contract_store
    results = await asyncio.gather(*(store.claim_update("telegram", 55, NOW) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]


async def test_purge_updates_forgets_only_older_ids(contract_store: Store) -> None:
    store = contract_store
    await store.claim_update("telegram", 1, NOW)
    await store.claim_update("telegram", 2, NOW + timedelta(days=2))
    assert await store.purge_updates(NOW + timedelta(days=1)) == 1
    assert await store.purge_updates(NOW + timedelta(days=1)) == 0
    assert not await store.claim_update("telegram", 2, NOW + timedelta(days=3))
    # A forgotten id is new again (Telegram never reuses one within days).
    assert await store.claim_update("telegram", 1, NOW + timedelta(days=3))
