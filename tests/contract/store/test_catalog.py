"""Store contract, Catalog role: known tokens."""

from __future__ import annotations

from dataclasses import replace

from alertbot.domain.models import Token
from alertbot.ports.store import Store
from tests.contract.store.helpers import BTC, ETH, NOW


async def test_store_tokens_by_symbol_case_insensitive_and_ambiguous(
        contract_store: Store) -> None:
    store = contract_store
    other = Token(9999, "BTC", "Other BTC", "")
    await store.upsert_tokens([BTC, ETH, other], NOW)
    assert [t.token_id for t in await store.tokens_by_symbol("btc")] == [3375, 9999]
    assert await store.token(3306) == ETH
    assert await store.token(1) is None


async def test_store_upsert_tokens_keeps_known_slug(contract_store: Store) -> None:
    store = contract_store
    await store.upsert_tokens([BTC], NOW)
    await store.upsert_tokens([replace(BTC, slug="", name="Bitcoin!")], NOW)
    assert await store.token(BTC.token_id) == replace(BTC, name="Bitcoin!")


async def test_store_search_tokens_prefix_exact_first_and_limit(contract_store: Store) -> None:
    store = contract_store
    await store.upsert_tokens([BTC, ETH, Token(1, "BTCST", "BTC Standard", ""),
                               Token(2, "WBTC", "Wrapped Bitcoin", "")], NOW)
    found = await store.search_tokens("btc", 2)
    assert [t.symbol for t in found] == ["BTC", "BTCST"]
    assert [t.symbol for t in await store.search_tokens("Bitc", 5)] == ["BTC"]
    assert await store.search_tokens("%", 5) == []
