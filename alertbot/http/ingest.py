"""Signed push ingest (DESIGN §5): body validation, replay guard, and token resolution.

Readings are validated by the same rules as polled rows (`parse_timestamp`,
`parse_direction`, grades 0-100 with numbers accepted as strings), and accepted ones take the
poller's own detect -> store -> dispatch path, so a pushed reading can never alert twice or
move state backwards. Every hostile body (deep nesting, huge numbers, timestamps at the ends
of the calendar) is a 400 or 422 naming the problem. Symbols the catalog does not know cost a
Token Metrics lookup each, so at most MAX_NEW_SYMBOLS_PER_REQUEST of them are looked up per
request and MAX_NEW_SYMBOLS_PER_MINUTE per minute; the rest are refused by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alertbot.domain.models import Kind, Reading, Token
from alertbot.domain.parsing import parse_direction, parse_timestamp
from alertbot.domain.signing import DEFAULT_TOLERANCE
from alertbot.domain.validity import timestamp_problem
from alertbot.ports.store import Catalog
from alertbot.services.lookup import SYMBOL_PATTERN, Lookup, LookupFailed

MAX_BODY = 64 * 1024
MAX_READINGS = 500
MAX_REMEMBERED = 100_000
"""Signatures kept for replay detection; only requests signed with the secret are kept."""
MAX_TOKEN_ID = 2**63 - 1
"""The largest id the store can hold (SQLite INTEGER)."""
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)
"""No crypto reading predates the first Bitcoin block."""
MAX_NEW_SYMBOLS_PER_REQUEST = 10
MAX_NEW_SYMBOLS_PER_MINUTE = 30
NAMED = 5
"""Symbols or problems named in one error message; the rest are counted."""


class IngestError(Exception):
    """A rejected request: HTTP status and a message that is safe to return."""

    def __init__(self, status: int, message: str, result: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.result = result
        """Metric label: why it was rejected."""
        self.headers = dict(headers or {})


class PushedReading(BaseModel):
    """One pushed reading, e.g. {"symbol": "BTC", "kind": "signal", "value": "bullish", …}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(min_length=1, max_length=20)
    token_id: int | None = Field(None, gt=0)
    kind: Literal["signal", "hourly", "tm_grade", "fundamental"]
    value: float
    timestamp: datetime
    label: str = Field("", max_length=40)
    """Optional class or signal name from the sender (e.g. "Buy")."""

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        text = value.strip().lstrip("$")
        if not SYMBOL_PATTERN.match(text):
            raise ValueError("not a token symbol (letters, digits, $ . _ -; up to 20)")
        return text.upper()

    @field_validator("token_id", mode="before")
    @classmethod
    def _token_id(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a positive integer")
        if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            if len(value.strip()) > len(str(MAX_TOKEN_ID)):
                raise ValueError(f"must be at most {MAX_TOKEN_ID}")
            value = int(value.strip())
        if isinstance(value, int) and value > MAX_TOKEN_ID:
            raise ValueError(f"must be at most {MAX_TOKEN_ID}")
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            raise ValueError("must be a number, or bullish/bearish for signals")
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> datetime:
        try:
            parsed = parse_timestamp(value)
        except OverflowError:
            raise ValueError("is outside the range of dates (year 1 to 9999 in UTC)") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"expected ISO-8601, e.g. 2026-11-27T00:00:00Z ({exc})") from None
        if parsed < EARLIEST:
            raise ValueError(f"is before {EARLIEST:%Y-%m-%d}, earlier than any crypto reading")
        return parsed

    @classmethod
    def parse(cls, raw: Any) -> PushedReading:
        """Validate one raw reading; the value rule depends on the kind."""
        if isinstance(raw, dict) and raw.get("kind") in ("signal", "hourly"):
            raw = {**raw, "value": _signal_value(raw.get("value"))}
        elif isinstance(raw, dict) and raw.get("kind") in ("tm_grade", "fundamental"):
            raw = {**raw, "value": _grade_value(raw.get("value"))}
        return cls.model_validate(raw)


class _FieldProblem(ValueError):
    pass


def _signal_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    try:
        number = parse_direction(value)
    except (ValueError, OverflowError):
        raise _FieldProblem("a signal must be 1, -1, bullish or bearish") from None
    if number == 0:
        raise _FieldProblem("a signal must be 1 (bullish) or -1 (bearish), not neutral")
    return number


def _grade_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        raise _FieldProblem("a grade must be a number from 0 to 100") from None
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise _FieldProblem("a grade must be a number from 0 to 100")
    return number


def parse_body(body: bytes, now: datetime,
               tolerance: float = DEFAULT_TOLERANCE) -> list[PushedReading]:
    """Readings from a request body, or IngestError naming the first problems."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise IngestError(400, "body is not UTF-8 text", "malformed") from None
    except RecursionError:
        raise IngestError(400, "body is nested too deeply to be a reading", "malformed") from None
    except ValueError as exc:
        raise IngestError(400, f"body is not valid JSON: {exc}", "malformed") from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise IngestError(400, "expected a JSON object (one reading) or a list of objects",
                          "malformed")
    if not items:
        raise IngestError(400, "the list of readings is empty", "malformed")
    if len(items) > MAX_READINGS:
        raise IngestError(413, f"at most {MAX_READINGS} readings per request", "too_large")
    problems: list[str] = []
    readings: list[PushedReading] = []
    for index, item in enumerate(items):
        prefix = f"readings[{index}]." if isinstance(data, list) else ""
        try:
            reading = PushedReading.parse(item)
        except _FieldProblem as exc:
            problems.append(f"{prefix}value: {exc}")
            continue
        except ValidationError as exc:
            problems.extend(f"{prefix}{_describe(err)}" for err in exc.errors())
            continue
        # The polled readings' rule, with the signature tolerance as the allowed skew.
        problem = timestamp_problem(reading.timestamp, now,
                                    max_skew=timedelta(seconds=tolerance))
        if problem is not None:
            problems.append(f"{prefix}timestamp: {problem}")
            continue
        readings.append(reading)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise IngestError(422, "; ".join(problems[:5]) + more, "invalid")
    return readings


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "reading"
    message = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        message = "unknown field"
    elif err.get("type") == "literal_error":
        message = "must be one of signal, hourly, tm_grade, fundamental"
    elif err.get("type") == "missing":
        message = "is required"
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return f"{loc}: {message}"


@dataclass(slots=True)
class ReplayGuard:
    """Remembers verified signatures for the tolerance window; a second use is a replay."""

    tolerance: float = DEFAULT_TOLERANCE
    limit: int = MAX_REMEMBERED
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def first_use(self, signature: str, timestamp: int, now: float) -> bool:
        """Record a verified signature; False when it was seen before (a replay)."""
        self._prune(now)
        if signature in self._seen:
            return False
        # A signature cannot verify once its timestamp is outside the tolerance, so it need
        # not be remembered beyond that.
        self._seen[signature] = timestamp + self.tolerance
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True

    def _prune(self, now: float) -> None:
        expired = [key for key, until in self._seen.items() if until < now]
        for key in expired:
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(slots=True)
class ResolveBudget:
    """How many unknown symbols push ingest may look up: per request and per sliding minute."""

    per_request: int = MAX_NEW_SYMBOLS_PER_REQUEST
    per_minute: int = MAX_NEW_SYMBOLS_PER_MINUTE
    clock: Callable[[], float] = time.monotonic
    _spent: deque[float] = field(default_factory=deque)

    def available(self) -> int:
        """Lookups allowed in this request right now."""
        now = self.clock()
        while self._spent and self._spent[0] <= now - 60.0:
            self._spent.popleft()
        return max(0, min(self.per_request, self.per_minute - len(self._spent)))

    def spend(self) -> None:
        """Count one lookup."""
        self._spent.append(self.clock())

    def retry_after(self) -> int:
        """Seconds until the oldest lookup of the minute stops counting."""
        if len(self._spent) < self.per_minute:
            return 0
        return max(1, math.ceil(self._spent[0] + 60.0 - self.clock()))


async def resolve_tokens(readings: Sequence[PushedReading], store: Catalog, lookup: Lookup,
                         budget: ResolveBudget | None = None,
                         ) -> dict[tuple[str, int | None], Token]:
    """Catalog tokens for each (symbol, token_id); IngestError (422) when one is unknown.

    Catalog hits cost nothing; each symbol the catalog lacks costs one lookup (counted by
    the source against its lookup reserve), within `budget`. Symbols over the budget are
    refused by name and can be sent again later.
    """
    budget = budget or ResolveBudget()
    resolved: dict[tuple[str, int | None], Token] = {}
    problems: list[str] = []
    unknown: list[tuple[str, int | None]] = []
    for key in dict.fromkeys((r.symbol, r.token_id) for r in readings):
        symbol, token_id = key
        try:
            token = await _known(symbol, token_id, store, lookup)
        except LookupFailed as exc:
            problems.append(str(exc))
            continue
        if token is None:
            unknown.append(key)
        else:
            resolved[key] = token
    allowed = budget.available()
    for key in unknown[:allowed]:
        budget.spend()
        try:
            resolved[key] = await _resolve(key[0], key[1], store, lookup)
        except LookupFailed as exc:
            problems.append(str(exc))
    headers: dict[str, str] = {}
    rest = list(dict.fromkeys(symbol for symbol, _ in unknown[allowed:]))
    if rest:
        named = ", ".join(rest[:NAMED]) + (f" (and {len(rest) - NAMED} more)"
                                           if len(rest) > NAMED else "")
        if allowed < budget.per_request:
            wait = budget.retry_after()
            headers["Retry-After"] = str(wait)
            problems.insert(0, f"at most {budget.per_minute} unknown symbols are looked up per "
                               f"minute; not looked up: {named}; send them again in {wait} s.")
        else:
            problems.insert(0, f"at most {budget.per_request} unknown symbols are looked up per "
                               f"request; not looked up: {named}; send them again in a later "
                               f"request.")
    if problems:
        raise IngestError(422, " ".join(problems[:NAMED]), "unknown_token", headers)
    return resolved


async def _known(symbol: str, token_id: int | None, store: Catalog,
                 lookup: Lookup) -> Token | None:
    """The token when the catalog alone decides it (no API call), None when it cannot."""
    if token_id is None:
        if not await store.tokens_by_symbol(symbol):
            return None
        return await lookup.resolve(symbol)  # answered from the catalog
    known = await store.token(token_id)
    if known is None:
        if await store.tokens_by_symbol(symbol):
            raise LookupFailed(f"No token with id {token_id} is known for {symbol}.")
        return None
    if known.symbol != symbol:
        raise LookupFailed(f"Token id {token_id} is {known.symbol}, not {symbol}.")
    return known


async def _resolve(symbol: str, token_id: int | None, store: Catalog, lookup: Lookup) -> Token:
    if token_id is None:
        return await lookup.resolve(symbol)
    known = await store.token(token_id)
    if known is None:
        # An ambiguous symbol still lands in the catalog; the id decides below.
        with contextlib.suppress(LookupFailed):
            await lookup.resolve(symbol)
        known = await store.token(token_id)
    if known is None:
        raise LookupFailed(f"No token with id {token_id} is known for {symbol}.")
    if known.symbol != symbol:
        raise LookupFailed(f"Token id {token_id} is {known.symbol}, not {symbol}.")
    return known


def to_readings(readings: Sequence[PushedReading],
                tokens: dict[tuple[str, int | None], Token]) -> list[Reading]:
    """Domain readings of validated, resolved pushed readings."""
    result = []
    for pushed in readings:
        kind = Kind(pushed.kind)
        fired = pushed.timestamp if kind is Kind.HOURLY else None
        result.append(Reading(tokens[(pushed.symbol, pushed.token_id)], kind, pushed.value,
                              pushed.timestamp, label=pushed.label.strip(), fired_at=fired))
    return result


async def read_limited(request: web.Request, read_timeout: float, limit: int = MAX_BODY) -> bytes:
    """The request body, or IngestError (413 over `limit`, 408 slow, 400 broken)."""
    too_large = IngestError(413, f"request body larger than {limit} bytes", "too_large")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(read_timeout):
            async for chunk in request.content.iter_chunked(16 * 1024):
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError:
        raise IngestError(408, f"request body not received within {read_timeout:g} s",
                          "timeout") from None
    except ConnectionError:
        raise IngestError(400, "the client went away before the body was complete",
                          "client_gone") from None
    except web.RequestPayloadError as exc:
        raise IngestError(400, f"request body could not be read: {exc}", "malformed") from None
    except RuntimeError:
        # aiohttp's "Connection closed." when the body is read after the connection ended.
        if request.transport is None or request.transport.is_closing():
            raise IngestError(400, "the client went away before the body was complete",
                              "client_gone") from None
        raise
    return bytes(body)
