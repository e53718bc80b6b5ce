"""Signed push ingest (DESIGN §5): body validation, replay guard, and token resolution.

Readings are validated by the same rules as polled rows (`parse_timestamp`,
`parse_direction`, grades 0-100 with numbers accepted as strings), and accepted ones take the
poller's own detect -> store -> dispatch path, so a pushed reading can never alert twice or
move state backwards.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

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


class IngestError(Exception):
    """A rejected request: HTTP status and a message that is safe to return."""

    def __init__(self, status: int, message: str, result: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.result = result
        """Metric label: why it was rejected."""


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
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
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
            return parse_timestamp(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"expected ISO-8601, e.g. 2026-11-27T00:00:00Z ({exc})") from None

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
    except ValueError:
        raise _FieldProblem("a signal must be 1, -1, bullish or bearish") from None
    if number == 0:
        raise _FieldProblem("a signal must be 1 (bullish) or -1 (bearish), not neutral")
    return number


def _grade_value(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
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


async def resolve_tokens(readings: Sequence[PushedReading], store: Catalog,
                         lookup: Lookup) -> dict[tuple[str, int | None], Token]:
    """Catalog tokens for each (symbol, token_id); IngestError (422) when one is unknown."""
    resolved: dict[tuple[str, int | None], Token] = {}
    problems: list[str] = []
    for key in dict.fromkeys((r.symbol, r.token_id) for r in readings):
        symbol, token_id = key
        try:
            resolved[key] = await _resolve(symbol, token_id, store, lookup)
        except LookupFailed as exc:
            problems.append(str(exc))
    if problems:
        raise IngestError(422, " ".join(problems[:5]), "unknown_token")
    return resolved


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
