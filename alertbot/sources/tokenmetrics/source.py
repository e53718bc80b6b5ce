"""Token Metrics source: batched, quota-aware polling of the data API.

- Batching: token ids are comma-joined (50 per daily-signal call, 100 per other call), pages
  run from 1 until a short page (or until every row the query can hold is in), daily-signal
  date windows are at most 29 days, and rows are de-duplicated on (token, date).
- Faults: a failed endpoint is listed in `Batch.errors` and yields no readings while the others
  still count; a rejected key (401) or a fetch where nothing answered raises SourceError, so
  the cycle changes nothing; repeated key rejections back off.
- Quota: every request counts against a per-month counter in the store; polling spends only
  the polling budget and is paced through the month, lookups only the reserve (see quota.py).
- `all` subscriptions cover the tokens of TOKENMETRICS_WATCHLIST (resolved through `/tokens`
  once and kept in the store) plus every token some subscription names (the poller adds those).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from alertbot.domain.charts import History
from alertbot.domain.models import Kind, Token
from alertbot.domain.parsing import parse_timestamp
from alertbot.ports.clock import Clock
from alertbot.ports.source import Batch, SourceError
from alertbot.ports.store import Meta, SourceStore
from alertbot.sources.tokenmetrics.client import (
    KEY_VARIABLE,
    PAGE_LIMIT,
    ApiError,
    AuthFailed,
    Meter,
    RateLimited,
    TokenMetricsApi,
)
from alertbot.sources.tokenmetrics.quota import Purpose, QuotaPlan, Refusal, Usage
from alertbot.sources.tokenmetrics.rows import (
    ENDPOINTS,
    HISTORY_ENDPOINTS,
    ParseReport,
    parse_history,
    parse_kind,
    parse_tokens,
)

log = logging.getLogger(__name__)

USAGE_KEY = "tokenmetrics.calls"
WATCHLIST_KEY = "tokenmetrics.watchlist"
TOKENS_ENDPOINT = "/tokens"

SIGNAL_IDS_PER_CALL = 50
"""Two days of daily rows for 50 tokens fill exactly one page."""
IDS_PER_CALL = 100
SYMBOLS_PER_CALL = 50
MAX_WINDOW_DAYS = 29
POLL_SIGNAL_DAYS = 2
"""Today and yesterday: today's row may not be published yet early in the UTC day."""
LOOKUP_SIGNAL_DAYS = MAX_WINDOW_DAYS
"""A lookup of one token reads a month of daily rows in one call, to show when it fired."""
POLL_MAX_PAGES = 10
HOURLY_MIN_LOOKBACK = timedelta(hours=2)
HOURLY_MAX_LOOKBACK = timedelta(hours=48)
HISTORY_MAX_PAGES = 2
"""A 29-day window of one token is one page; a second allows for repeated rows."""
HISTORY_CACHE_SIZE = 256
"""(token, range) histories kept; each expires at the end of its UTC day."""
HISTORY_RETRY = timedelta(minutes=5)
"""How long a history with a failed part is kept before it is read again."""
AUTH_BACKOFF_BASE = 60.0
AUTH_BACKOFF_MAX = 3600.0


def date_windows(start: date, end: date,
                 max_days: int = MAX_WINDOW_DAYS) -> list[tuple[date, date]]:
    """Consecutive windows (both ends inclusive) of at most `max_days` days, newest first."""
    windows: list[tuple[date, date]] = []
    last = end
    while last >= start:
        first = max(start, last - timedelta(days=max_days - 1))
        windows.append((first, last))
        last = first - timedelta(days=1)
    return windows


def _field(row: Any, name: str) -> Any:
    if not isinstance(row, Mapping):
        return None
    for key, value in row.items():
        if str(key).upper() == name:
            return value
    return None


def _token_id(row: Any) -> int | None:
    value = _field(row, "TOKEN_ID")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _stamp(row: Any, name: str) -> datetime | None:
    value = _field(row, name)
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        return None


def _time_field(kind: Kind) -> str:
    return "TIMESTAMP" if kind is Kind.HOURLY else "DATE"


def dedupe_rows(kind: Kind, rows: Iterable[Any]) -> list[Any]:
    """Rows without repeats of a (token, date), keeping the first (newest-page) one.

    Overlapping date windows and rows shifting between page requests repeat rows; rows
    without a token id are kept so the parser can report them.
    """
    seen: set[tuple[int, str]] = set()
    unique: list[Any] = []
    name = _time_field(kind)
    for row in rows:
        token_id = _token_id(row)
        if token_id is None:
            unique.append(row)
            continue
        stamp = _stamp(row, name)
        key = (token_id, stamp.isoformat() if stamp else str(_field(row, name)))
        if key in seen:
            continue
        seen.add(key)
        unique.append(row)
    return unique


def hourly_lookback(interval: timedelta) -> timedelta:
    """How far back hourly rows are read: one poll interval plus an hour, within bounds."""
    return min(HOURLY_MAX_LOOKBACK, max(HOURLY_MIN_LOOKBACK, interval + timedelta(hours=1)))


def ids_per_call(kind: Kind) -> int:
    """How many token ids one request of a kind carries."""
    return SIGNAL_IDS_PER_CALL if kind is Kind.SIGNAL else IDS_PER_CALL


def estimate_calls(kind: Kind, tokens: int, *, signal_days: int = POLL_SIGNAL_DAYS,
                   lookback: timedelta = HOURLY_MIN_LOOKBACK,
                   max_pages: int = POLL_MAX_PAGES) -> int:
    """Calls one request series of a kind costs for `tokens` ids (one batch)."""
    if tokens <= 0:
        return 0
    if kind is Kind.SIGNAL:
        total, days = 0, signal_days
        while days > 0:
            span = min(days, MAX_WINDOW_DAYS)
            days -= span
            total += min(max_pages, max(1, math.ceil(tokens * span / PAGE_LIMIT)))
        return total
    if kind is Kind.HOURLY:
        hours = math.ceil(lookback / timedelta(hours=1))
        return min(max_pages, max(1, math.ceil(tokens * hours / PAGE_LIMIT)))
    return min(max_pages, max(1, math.ceil(tokens / PAGE_LIMIT)))


def estimate_cycle_calls(tokens: int, kinds: Collection[Kind], *,
                         lookback: timedelta = HOURLY_MIN_LOOKBACK) -> int:
    """Calls one poll cycle of `tokens` tokens and these kinds costs."""
    total = 0
    for kind in kinds:
        size = ids_per_call(kind)
        full, rest = divmod(tokens, size)
        total += full * estimate_calls(kind, size, lookback=lookback)
        total += estimate_calls(kind, rest, lookback=lookback)
    return total


def _chunks(items: Sequence[int], size: int) -> list[list[int]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


class CallBudget:
    """The per-month call counter kept in the store, checked against the plan before calls.

    Calls are counted before they are made (the estimate) and corrected afterwards, so
    concurrent polls and lookups never overshoot, and a crash can only over-count. Every
    check and count is one atomic store update (`Meta.update_meta`), so the running bot and
    CLI commands (`lookup`, `check`) on the same database all count, and none overspends.
    """

    def __init__(self, store: Meta, plan: QuotaPlan, key: str = USAGE_KEY) -> None:
        self._store = store
        self.plan = plan
        self._key = key
        self.paused: Refusal | None = None
        """Why polling was last refused, until a poll is admitted again."""

    async def usage(self, now: datetime) -> Usage:
        """Calls spent so far in the month of `now`."""
        return Usage.decode(await self._store.get_meta(self._key), now)

    async def admit(self, purpose: Purpose, calls: int, now: datetime) -> None:
        """Count `calls` for a purpose, or raise SourceError when the budget does not allow."""
        refusal: Refusal | None = None

        def count(stored: str | None) -> str | None:
            nonlocal refusal
            usage = Usage.decode(stored, now)
            if purpose == "poll":
                refusal = self.plan.refuse_poll(usage, calls, now)
            else:
                refusal = self.plan.refuse_lookup(usage, calls, now)
            return None if refusal is not None else usage.add(purpose, calls).encode()

        await self._store.update_meta(self._key, count)
        if purpose == "poll":
            self.paused = refusal
        if refusal is not None:
            raise SourceError(refusal.message, retry_after=refusal.retry_after)

    async def settle(self, purpose: Purpose, delta: int, now: datetime) -> None:
        """Correct the count once the real number of calls is known."""
        if delta == 0:
            return
        await self._store.update_meta(
            self._key, lambda stored: Usage.decode(stored, now).add(purpose, delta).encode())


@dataclass(slots=True)
class _Shared:
    """State the polling source and its lookup view share."""

    api: TokenMetricsApi
    store: SourceStore
    clock: Clock
    budget: CallBudget
    watchlist: tuple[str, ...]
    universe: list[Token] | None = None
    universe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    auth_error: str | None = None
    auth_failures: int = 0
    announced: bool = False
    history: dict[tuple[int, date, date], tuple[datetime, dict[str, list[Any]]]] = field(
        default_factory=dict)
    """Chart history rows by (token, first day, last day): (expires, rows by part)."""
    history_locks: dict[tuple[int, date, date], asyncio.Lock] = field(default_factory=dict)


class TokenMetricsSource:
    """Source reading the Token Metrics data API; see the module docstring for the contract."""

    name = "tokenmetrics"

    def __init__(self, api: TokenMetricsApi, store: SourceStore, clock: Clock, plan: QuotaPlan, *,
                 budget: CallBudget | None = None, watchlist: Sequence[str] = (),
                 signal_days: int = POLL_SIGNAL_DAYS, max_pages: int = POLL_MAX_PAGES,
                 attempts: int | None = None, purpose: Purpose = "poll",
                 shared: _Shared | None = None) -> None:
        self._state = shared or _Shared(api, store, clock, budget or CallBudget(store, plan),
                                        tuple(s.strip().upper() for s in watchlist if s.strip()))
        self._purpose: Purpose = purpose
        self._signal_days = max(1, signal_days)
        self._max_pages = max(1, max_pages)
        self._attempts = attempts
        self._lookback = hourly_lookback(plan.interval)
        self.plan = plan
        self.lookups: TokenMetricsSource = self if purpose == "lookup" else TokenMetricsSource(
            api, store, clock, plan, signal_days=LOOKUP_SIGNAL_DAYS, max_pages=1, attempts=1,
            purpose="lookup", shared=self._state)
        """The view lookups use: one call per kind, no retries, counted against the reserve."""

    def __repr__(self) -> str:
        return f"TokenMetricsSource({self._state.api.base_url!r}, purpose={self._purpose!r})"

    @property
    def budget(self) -> CallBudget:
        """The shared call counter."""
        return self._state.budget

    @property
    def api(self) -> TokenMetricsApi:
        """The HTTP client (shared with the lookup view)."""
        return self._state.api

    def rotate_key(self, api_key: SecretStr) -> None:
        """Use a new TOKENMETRICS_API_KEY from the next request on (SIGHUP)."""
        self._state.api.rotate_key(api_key)
        self._state.auth_failures = 0

    @property
    def last_auth_error(self) -> str | None:
        """The key rejection of the last call, until a call succeeds again."""
        return self._state.auth_error

    def readiness(self) -> str | None:
        """None when polling can work; else why not (key rejected, budget spent)."""
        if self._state.auth_error:
            return self._state.auth_error
        paused = self._state.budget.paused
        if paused is not None and paused.until > self._state.clock.now():
            return paused.message
        return None

    # ------------------------------------------------------------------ errors

    async def announce(self) -> None:
        """Log the quota plan in one line, once (when polling starts)."""
        state = self._state
        if state.announced:
            return
        state.announced = True
        usage = await state.budget.usage(state.clock.now())
        log.info("Token Metrics plan: %s; %s of %s calls used so far in %s", self.plan.describe(),
                 f"{usage.total:,}", f"{self.plan.monthly_calls:,}", usage.month)

    def _auth_failure(self, message: str) -> SourceError:
        state = self._state
        state.auth_failures += 1
        state.auth_error = message
        wait = min(AUTH_BACKOFF_MAX, AUTH_BACKOFF_BASE * 2 ** (state.auth_failures - 1))
        return SourceError(message, retry_after=wait, auth=True)

    def _answered(self) -> None:
        self._state.auth_error = None
        self._state.auth_failures = 0

    async def _spend(self, calls: int, now: datetime) -> None:
        await self._state.budget.admit(self._purpose, calls, now)

    async def _settle(self, meter: Meter, estimate: int, now: datetime) -> None:
        await self._state.budget.settle(self._purpose, meter.calls - estimate, now)

    # ------------------------------------------------------------------ fetch

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        """Current readings of the tokens; failed endpoints are listed in `errors`."""
        ids = sorted({int(t) for t in token_ids if int(t) > 0})
        wanted = [k for k in Kind if k in set(kinds)]
        if not ids or not wanted:
            return Batch()
        if self._purpose == "poll":
            await self.announce()
        requests = [(kind, chunk) for kind in wanted for chunk in _chunks(ids, ids_per_call(kind))]
        estimate = sum(self._estimate(kind, len(chunk)) for kind, chunk in requests)
        await self._spend(estimate, now)
        meter = Meter()
        try:
            rows, errors = await self._collect(requests, now, meter)
        finally:
            await self._settle(meter, estimate, now)
        report = ParseReport(source=self.name)
        for kind in wanted:
            if kind in rows:
                parse_kind(kind, dedupe_rows(kind, rows[kind]), now, report)
        asked = set(ids)
        return Batch(
            readings=[r for r in report.readings if r.token.token_id in asked],
            tokens=[t for i, t in sorted(report.tokens.items()) if i in asked],
            errors=errors + report.skipped,
            calls=meter.calls,
        )

    def _estimate(self, kind: Kind, tokens: int) -> int:
        return estimate_calls(kind, tokens, signal_days=self._signal_days,
                              lookback=self._lookback, max_pages=self._max_pages)

    async def _collect(self, requests: Sequence[tuple[Kind, list[int]]], now: datetime,
                       meter: Meter) -> tuple[dict[Kind, list[Any]], list[str]]:
        rows: dict[Kind, list[Any]] = {}
        errors: list[str] = []
        answered = 0
        forbidden: str | None = None
        limited: RateLimited | None = None
        for kind, chunk in requests:
            if limited is not None:
                # The limit is per key: more requests now would only be refused and counted.
                errors.append(f"Token Metrics {ENDPOINTS[kind]} skipped for {len(chunk)} "
                              "tokens: rate limited")
                continue
            try:
                found = await self._rows(kind, chunk, now, meter)
            except AuthFailed as exc:
                if not exc.forbidden:
                    raise self._auth_failure(str(exc)) from None
                forbidden = forbidden or str(exc)
                errors.append(str(exc))
                continue
            except RateLimited as exc:
                limited = exc
                errors.append(str(exc))
                continue
            except ApiError as exc:
                errors.append(str(exc))
                continue
            answered += 1
            rows.setdefault(kind, []).extend(found)
        if answered:
            self._answered()
            for message in errors:
                log.warning("%s", message)
            return rows, errors
        more = f" (and {len(errors) - 1} more failures)" if len(errors) > 1 else ""
        if limited is not None:
            raise SourceError(str(limited) + more, retry_after=limited.retry_after)
        if forbidden is not None:
            raise self._auth_failure(forbidden + more)
        raise SourceError(errors[0] + more)

    async def _rows(self, kind: Kind, ids: list[int], now: datetime, meter: Meter) -> list[Any]:
        endpoint = ENDPOINTS[kind]
        params = {"token_id": ",".join(str(i) for i in ids)}
        api = self._state.api
        if kind is Kind.SIGNAL:
            today = now.astimezone(UTC).date()
            start = today - timedelta(days=self._signal_days - 1)
            found: list[Any] = []
            for first, last in date_windows(start, today):
                query = {**params, "startDate": first.isoformat(), "endDate": last.isoformat()}
                found += await api.pages(endpoint, query, meter=meter, max_pages=self._max_pages,
                                         attempts=self._attempts,
                                         done=_all_days(ids, (last - first).days + 1))
            return found
        done = (_hourly_done(ids, now - self._lookback) if kind is Kind.HOURLY
                else _all_tokens(ids))
        return await api.pages(endpoint, params, meter=meter, max_pages=self._max_pages,
                               attempts=self._attempts, done=done)

    # ------------------------------------------------------------------ history (charts)

    async def history(self, token: Token, days: int, end: datetime) -> History:
        """Daily TM grade, fundamental grade and signal rows of the `days` before `end`.

        Rows are read in windows of at most 29 days, one token per request, and kept per
        token and UTC day: a popular chart costs the API once a day. The calls count against
        the lookup reserve of the quota. The TM grade must answer; a failed fundamental or
        signal endpoint leaves that part empty (and is not kept for the day).
        """
        end_day = end.astimezone(UTC).date()
        start = (end - timedelta(days=days)).astimezone(UTC)
        # Daily rows are stamped 00:00Z: the first day that can hold one at or after `start`.
        first_day = start.date() if start.time() == time() else start.date() + timedelta(days=1)
        key = (token.token_id, first_day, end_day)
        state = self._state
        now = state.clock.now()
        cached = state.history.get(key)
        if cached is None or cached[0] <= now:
            lock = state.history_locks.setdefault(key, asyncio.Lock())
            async with lock:
                cached = state.history.get(key)
                if cached is None or cached[0] <= now:
                    cached = await self._history_rows(token.token_id, first_day, end_day, now)
                    state.history[key] = cached
                    while len(state.history) > HISTORY_CACHE_SIZE:
                        oldest = next(iter(state.history))
                        del state.history[oldest]
                        state.history_locks.pop(oldest, None)
        rows = cached[1]
        return parse_history(token, end - timedelta(days=days), end,
                             tm=rows.get("tm", ()), fundamental=rows.get("fundamental", ()),
                             signals=rows.get("signal", ()),
                             report=ParseReport(source=self.name))

    async def _history_rows(self, token_id: int, first: date, last: date,
                            now: datetime) -> tuple[datetime, dict[str, list[Any]]]:
        windows = date_windows(first, last)
        estimate = len(windows) * len(HISTORY_ENDPOINTS)
        await self._spend(estimate, now)
        meter = Meter()
        rows: dict[str, list[Any]] = {}
        complete = True
        try:
            for part, endpoint in HISTORY_ENDPOINTS.items():
                try:
                    found: list[Any] = []
                    for start, end in windows:
                        query = {"token_id": str(token_id), "startDate": start.isoformat(),
                                 "endDate": end.isoformat()}
                        found += await self._state.api.pages(
                            endpoint, query, meter=meter, max_pages=HISTORY_MAX_PAGES,
                            attempts=self._attempts)
                    rows[part] = dedupe_rows(Kind.TM_GRADE, found)
                except AuthFailed as exc:
                    if not exc.forbidden or part == "tm":
                        raise self._auth_failure(str(exc)) from None
                    complete = False
                    log.warning("chart history without %s: %s", endpoint, exc)
                except RateLimited as exc:
                    raise SourceError(str(exc), retry_after=exc.retry_after) from None
                except ApiError as exc:
                    if part == "tm":
                        raise SourceError(str(exc)) from None
                    complete = False
                    log.warning("chart history without %s: %s", endpoint, exc)
        finally:
            await self._settle(meter, estimate, now)
        self._answered()
        if complete:
            today = now.astimezone(UTC).date()
            expires = datetime.combine(today + timedelta(days=1), time(), UTC)
        else:
            expires = now + HISTORY_RETRY
        return expires, rows

    # ------------------------------------------------------------------ symbols

    async def resolve(self, symbol: str) -> list[Token]:
        """Tokens whose symbol is exactly `symbol`, from `/tokens` (one call for lookups)."""
        wanted = symbol.strip().lstrip("$").upper()
        if not wanted:
            return []
        tokens = await self._catalog({"symbol": wanted}, 1)
        return sorted((t for t in tokens if t.symbol == wanted), key=lambda t: t.token_id)

    async def _catalog(self, params: Mapping[str, str], estimate: int) -> list[Token]:
        now = self._state.clock.now()
        await self._spend(estimate, now)
        meter = Meter()
        try:
            rows = await self._state.api.pages(TOKENS_ENDPOINT, params, meter=meter,
                                               max_pages=self._max_pages,
                                               attempts=self._attempts)
        except AuthFailed as exc:
            raise self._auth_failure(str(exc)) from None
        except RateLimited as exc:
            raise SourceError(str(exc), retry_after=exc.retry_after) from None
        except ApiError as exc:
            raise SourceError(str(exc)) from None
        finally:
            await self._settle(meter, estimate, now)
        self._answered()
        return list(parse_tokens(rows).tokens.values())

    async def universe(self) -> list[Token]:
        """The watchlist's tokens (resolved once, then read from the store)."""
        state = self._state
        if self._purpose == "poll":
            await self.announce()
        async with state.universe_lock:
            if state.universe is None:
                state.universe = await self._load_universe()
            return list(state.universe)

    async def _load_universe(self) -> list[Token]:
        state = self._state
        spec = ",".join(state.watchlist)
        if not spec:
            return []
        stored = _decode_watchlist(await state.store.get_meta(WATCHLIST_KEY))
        if stored is not None and stored[0] == spec:
            known = [await state.store.token(i) for i in stored[1]]
            if all(t is not None for t in known):
                return [t for t in known if t is not None]
        tokens = await self._resolve_watchlist()
        now = state.clock.now()
        await state.store.upsert_tokens(tokens, now)
        await state.store.set_meta(WATCHLIST_KEY, json.dumps(
            {"spec": spec, "ids": [t.token_id for t in tokens], "resolved_at": now.isoformat()}))
        log.info("TOKENMETRICS_WATCHLIST resolved to %d tokens: %s", len(tokens),
                 ", ".join(t.symbol for t in tokens))
        return tokens

    async def _resolve_watchlist(self) -> list[Token]:
        entries = self._state.watchlist
        numbers = [int(e) for e in entries if e.isdigit()]
        symbols = [e for e in entries if not e.isdigit()]
        found: dict[int, Token] = {}
        try:
            for part in _chunks(list(range(len(symbols))), SYMBOLS_PER_CALL):
                query = {"symbol": ",".join(symbols[i] for i in part)}
                found.update((t.token_id, t) for t in await self._catalog(query, 1))
            for chunk in _chunks(numbers, IDS_PER_CALL):
                query = {"token_id": ",".join(str(i) for i in chunk)}
                found.update((t.token_id, t) for t in await self._catalog(query, 1))
        except SourceError as exc:
            raise SourceError(f"cannot resolve TOKENMETRICS_WATCHLIST: {exc}",
                              retry_after=exc.retry_after, auth=exc.auth) from None
        chosen: dict[int, Token] = {}
        unknown: list[str] = []
        for entry in entries:
            if entry.isdigit():
                token = found.get(int(entry))
                if token is None:
                    unknown.append(entry)
                else:
                    chosen[token.token_id] = token
                continue
            matches = sorted((t for t in found.values() if t.symbol == entry),
                             key=lambda t: t.token_id)
            if not matches:
                unknown.append(entry)
                continue
            if len(matches) > 1:
                listed = ", ".join(f"{t.name} (id {t.token_id})" for t in matches[:5])
                log.warning("TOKENMETRICS_WATCHLIST: %s matches several tokens: %s; watching "
                            "id %d (list a token id to choose another)", entry, listed,
                            matches[0].token_id)
            chosen[matches[0].token_id] = matches[0]
        if unknown:
            log.warning("TOKENMETRICS_WATCHLIST: unknown to Token Metrics: %s",
                        ", ".join(unknown))
        return list(chosen.values())

    # ------------------------------------------------------------------ checks

    async def check(self) -> str:
        """`alertbot check`: one cheap call proving the URL answers and the key is accepted."""
        state = self._state
        now = state.clock.now()
        await state.budget.admit("lookup", 1, now)
        meter = Meter()
        try:
            await state.api.get(TOKENS_ENDPOINT, {"symbol": "BTC", "limit": "1", "page": "1"},
                                meter=meter, attempts=1)
        except AuthFailed as exc:
            raise self._auth_failure(str(exc)) from None
        except ApiError as exc:
            raise SourceError(str(exc)) from None
        finally:
            await state.budget.settle("lookup", meter.calls - 1, now)
        self._answered()
        usage = await state.budget.usage(now)
        host = urlsplit(state.api.base_url).hostname or "the API"
        return (f"{host} accepted {KEY_VARIABLE}; {usage.total:,} of "
                f"{self.plan.monthly_calls:,} calls used in {usage.month}; "
                f"plan: {self.plan.describe()}")

    async def close(self) -> None:
        """Nothing to release: the HTTP session belongs to the app."""


def _all_days(ids: Sequence[int], days: int) -> Callable[[Sequence[Any]], bool]:
    """Paging can stop once every token has a row for every day of the window."""
    wanted = set(ids)
    need = len(wanted) * days

    def done(rows: Sequence[Any]) -> bool:
        keys = {(t, str(_field(r, "DATE"))) for r in rows if (t := _token_id(r)) in wanted}
        return len(keys) >= need
    return done


def _all_tokens(ids: Sequence[int]) -> Callable[[Sequence[Any]], bool]:
    """Latest-value endpoints: paging can stop once every token has a row (newest first)."""
    wanted = set(ids)

    def done(rows: Sequence[Any]) -> bool:
        return wanted <= {_token_id(r) for r in rows}
    return done


def _hourly_done(ids: Sequence[int], cutoff: datetime) -> Callable[[Sequence[Any]], bool]:
    """Hourly rows (newest first): stop at every token's newest signal, or past the lookback."""
    wanted = set(ids)

    def done(rows: Sequence[Any]) -> bool:
        fired = {_token_id(r) for r in rows if str(_field(r, "SIGNAL")).strip()
                 not in ("0", "0.0", "", "None")}
        if wanted <= fired:
            return True
        oldest = next((s for r in reversed(rows) if (s := _stamp(r, "TIMESTAMP"))), None)
        return oldest is not None and oldest < cutoff
    return done


def _decode_watchlist(text: str | None) -> tuple[str, list[int]] | None:
    if not text:
        return None
    try:
        data = json.loads(text)
        return str(data["spec"]), [int(i) for i in data["ids"]]
    except (ValueError, TypeError, KeyError):
        return None
