"""Symbol resolution and lookups, shared by the CLI and chat commands.

Lookups answer from stored readings when they are fresh, and otherwise from the source
through a short-TTL cache in which concurrent identical lookups share one call, so chat
commands cannot burn the API quota.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Kind,
    Reading,
    Snapshot,
    Token,
    TrackedState,
)
from alertbot.domain.parsing import shown
from alertbot.domain.validity import MAX_TOKEN_ID
from alertbot.ports.clock import Clock
from alertbot.ports.source import Source, SourceError
from alertbot.ports.store import LookupStore

log = logging.getLogger(__name__)

SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9$._-]{1,20}$")
DEFAULT_CACHE_TTL = timedelta(minutes=5)
RECENT_LOOKUP_WINDOW = timedelta(hours=1)
"""Tokens looked up this recently ride along in the poll (free: ids are batched per call)."""

_K = TypeVar("_K")
_T = TypeVar("_T")


class LookupFailed(Exception):
    """A user-facing reason why a symbol or lookup cannot be answered."""


class InvalidSymbol(LookupFailed):
    """The text is neither a token symbol nor a token id: bad input, not an unknown token."""


class UnknownToken(LookupFailed):
    """No token, or several, answer to this symbol or id: the input names no single token."""


def parse_symbol(text: str) -> int | str:
    """A token id (int) or an upper-case symbol from typed text; raises InvalidSymbol."""
    raw = text.strip().lstrip("$")
    # isdigit() alone accepts "²" and other digits int() refuses.
    if raw.isascii() and raw.isdigit():
        if len(raw) > len(str(MAX_TOKEN_ID)) or not 0 < int(raw) <= MAX_TOKEN_ID:
            raise InvalidSymbol(f"{shown(raw, 20)} is not a valid token id.")
        return int(raw)
    if not SYMBOL_PATTERN.fullmatch(raw):
        raise InvalidSymbol(f"'{shown(raw, 20)}' is not a token symbol.")
    return raw.upper()


@dataclass(slots=True)
class _Cached:
    expires: datetime
    entries: dict[Kind, Reading]
    missing: tuple[Kind, ...]


class Lookup:
    """Resolves symbols and answers /signal, /grade and `alertbot lookup`."""

    def __init__(self, store: LookupStore, source: Source, clock: Clock, *, fresh_for: timedelta,
                 cache_ttl: timedelta = DEFAULT_CACHE_TTL) -> None:
        self._store = store
        self._source = source
        self._clock = clock
        self._fresh_for = fresh_for
        self._cache_ttl = cache_ttl
        self._cache: dict[tuple[int, tuple[Kind, ...]], _Cached] = {}
        self._inflight: dict[tuple[int, tuple[Kind, ...]], asyncio.Future[_Cached]] = {}
        self._resolving: dict[str, asyncio.Future[list[Token]]] = {}
        self._recent: dict[int, datetime] = {}

    def recent_tokens(self) -> set[int]:
        """Token ids looked up within RECENT_LOOKUP_WINDOW."""
        cutoff = self._clock.now() - RECENT_LOOKUP_WINDOW
        for token_id in [t for t, at in self._recent.items() if at < cutoff]:
            del self._recent[token_id]
        return set(self._recent)

    async def resolve(self, text: str) -> Token:
        """A token from a symbol (or a numeric token id); raises LookupFailed.

        InvalidSymbol (a LookupFailed) means the text can never name a token.
        """
        parsed = parse_symbol(text)
        if isinstance(parsed, int):
            token = await self._store.token(parsed)
            if token is None:
                raise UnknownToken(f"No token with id {parsed} is known.")
            return token
        symbol = parsed
        candidates = await self._store.tokens_by_symbol(symbol)
        if not candidates:
            candidates = await self._resolve_remote(symbol)
        if not candidates:
            raise UnknownToken(f"Unknown symbol {symbol}.")
        if len(candidates) > 1:
            listed = ", ".join(f"{t.name} (id {t.token_id})" for t in candidates[:5])
            raise UnknownToken(f"{symbol} matches several tokens: {listed}. "
                              f"Use the id instead, e.g. {candidates[0].token_id}.")
        return candidates[0]

    async def _resolve_remote(self, symbol: str) -> list[Token]:
        async def call() -> list[Token]:
            try:
                tokens = await self._source.resolve(symbol)
            except SourceError as exc:
                raise LookupFailed(f"Cannot look {symbol} up right now: {exc}") from None
            if tokens:
                await self._store.upsert_tokens(tokens, self._clock.now())
            return tokens

        return await _shared(self._resolving, symbol, call)

    async def snapshot(self, token: Token, kinds: Sequence[Kind] = ALL_KINDS) -> Snapshot:
        """Current values of a token: stored when fresh, else fetched (cached, shared).

        Raises LookupFailed when the source rejects its credentials; other source failures
        leave the kinds missing.
        """
        now = self._clock.now()
        self._recent[token.token_id] = now
        states = await self._store.load_states([token.token_id])
        entries: dict[Kind, Reading] = {}
        stale: list[Kind] = []
        for kind in kinds:
            state = states.get((token.token_id, kind))
            if state is not None and state.updated_at and now - state.updated_at <= self._fresh_for:
                entries[kind] = _stored(token, state)
            else:
                stale.append(kind)
        missing: tuple[Kind, ...] = ()
        if stale:
            fetched = await self._fetch(token, tuple(stale))
            entries.update(fetched.entries)
            missing = fetched.missing
            for kind in missing:
                state = states.get((token.token_id, kind))
                if state is not None:  # older than fresh, but better than nothing
                    entries[kind] = _stored(token, state)
        recent = await self._store.recent_changes(token.token_id, None, 6)
        return Snapshot(token, entries, tuple(recent),
                        tuple(k for k in missing if k not in entries))

    async def recent_changes(self, token: Token, kind: Kind | None = None,
                             limit: int = 6) -> list[Change]:
        """The token's newest stored changes (of one kind, or of all)."""
        return await self._store.recent_changes(token.token_id, kind, limit)

    async def _fetch(self, token: Token, kinds: tuple[Kind, ...]) -> _Cached:
        key = (token.token_id, kinds)
        now = self._clock.now()
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            return cached

        async def call() -> _Cached:
            result = await self._call(token, kinds, now)
            self._cache[key] = result
            self._prune(now)
            return result

        return await _shared(self._inflight, key, call)

    async def _call(self, token: Token, kinds: tuple[Kind, ...], now: datetime) -> _Cached:
        try:
            batch = await self._source.fetch([token.token_id], kinds, now)
        except SourceError as exc:
            if exc.auth:
                # Not "no data": nothing will answer until the operator fixes the key.
                raise LookupFailed(f"Cannot look {token.symbol} up: {exc}") from None
            log.warning("lookup of %s failed: %s", token.symbol, exc)
            return _Cached(now + timedelta(seconds=30), {}, kinds)
        entries = {r.kind: r for r in sorted(batch.readings, key=lambda r: r.source_ts)
                   if r.token.token_id == token.token_id}
        missing = tuple(k for k in kinds if k not in entries)
        return _Cached(now + self._cache_ttl, entries, missing)

    def _prune(self, now: datetime) -> None:
        for key in [k for k, v in self._cache.items() if v.expires <= now]:
            del self._cache[key]


class _LeaderCancelled(Exception):
    """The caller doing a shared call was cancelled; the callers waiting on it try again."""


async def _shared(table: dict[_K, asyncio.Future[_T]], key: _K,
                  call: Callable[[], Awaitable[_T]]) -> _T:
    """Run `call` once for every concurrent caller with the same key.

    The shared future always completes: with the result, with the caller's exception, or,
    when the caller doing the call is cancelled, with `_LeaderCancelled`, on which a waiting
    caller makes the call itself. A cancelled waiter leaves the others alone (shield), and
    the entry is removed when the call ends, so a later caller retries a failure.
    """
    while (pending := table.get(key)) is not None:
        try:
            return await asyncio.shield(pending)
        except _LeaderCancelled:
            continue
    future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
    future.add_done_callback(_retrieve)
    table[key] = future
    try:
        result = await call()
    except Exception as exc:
        future.set_exception(exc)
        raise
    except BaseException:  # cancelled (or the process is ending): another caller takes over
        future.set_exception(_LeaderCancelled())
        raise
    finally:
        if table.get(key) is future:
            del table[key]
    future.set_result(result)
    return result


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Nobody may be waiting: mark the exception retrieved so asyncio does not log it.
    if not future.cancelled():
        future.exception()


def _stored(token: Token, state: TrackedState) -> Reading:
    return Reading(token, state.kind, state.value, state.source_ts, state.label, state.fired_at)
