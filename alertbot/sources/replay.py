"""Replay source: the bundled demo data set played back on an accelerated clock.

The replay position is a point on the data set's own timeline. It moves `speed` times
faster than the wall clock, is returned in every batch's meta (so it is committed together
with the readings) and is restored on start, so a restart continues the story. At the end of
the data set the story starts over with its timestamps shifted one lap later, so detection
keeps seeing newer readings.
"""

from __future__ import annotations

import gzip
import json
import math
from array import array
from bisect import bisect_right
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from alertbot.domain.charts import History
from alertbot.domain.models import Kind, Token
from alertbot.domain.parsing import parse_timestamp
from alertbot.ports.source import Batch
from alertbot.sources.tokenmetrics.rows import (
    ParseReport,
    parse_history,
    parse_kind,
    parse_tokens,
)

CURSOR_KEY = "replay.cursor"
DEFAULT_SPEED = 1800.0
"""Demo seconds per wall second: one demo hour every two seconds."""
WARM_UP = timedelta(days=3)
"""Where a fresh replay starts, so every token already has history."""

_ENDPOINT_KINDS = {
    "trading-signals": (Kind.SIGNAL, "DATE"),
    "hourly-trading-signals": (Kind.HOURLY, "TIMESTAMP"),
    "tm-grade": (Kind.TM_GRADE, "DATE"),
    "fundamental-grade": (Kind.FUNDAMENTAL, "DATE"),
}


_ABSENT = object()
"""A column's value for a row that has no such field."""


@dataclass(slots=True)
class _Series:
    """Rows of one (kind, token), oldest first, with their offsets into the data set.

    Kept by column (one list per field): a row costs a pointer per field, not an object
    of its own.
    """

    offsets: array[float]
    keys: tuple[str, ...]
    columns: tuple[Sequence[Any], ...]
    fired: list[int]
    """Indexes of rows that carry a non-zero signal."""

    @classmethod
    def of(cls, items: Sequence[tuple[float, Mapping[str, Any]]], fired: list[int]) -> _Series:
        """The series of (offset, row) pairs, in that order."""
        keys = tuple(dict.fromkeys(key for _, row in items for key in row))
        columns = tuple(_column([row.get(key, _ABSENT) for _, row in items]) for key in keys)
        return cls(array("d", (offset for offset, _ in items)), keys, columns, fired)

    def row(self, index: int) -> dict[str, Any]:
        """Row `index` as a new dict."""
        return {key: value for key, column in zip(self.keys, self.columns, strict=True)
                if (value := column[index]) is not _ABSENT}


class _Same(Sequence[Any]):
    """A column whose every row holds the same object (a token's id, name, symbol)."""

    __slots__ = ("_length", "_value")

    def __init__(self, value: Any, length: int) -> None:
        self._value = value
        self._length = length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice) or not -self._length <= index < self._length:
            raise IndexError(index)
        return self._value

    def __len__(self) -> int:
        return self._length


def _column(values: list[Any]) -> Sequence[Any]:
    """The cheapest form of one column: one shared value, packed floats, or a list."""
    if values and all(value is values[0] for value in values):
        return _Same(values[0], len(values))
    if values and all(type(value) is float for value in values):
        return array("d", values)
    return values


class DataRow(Mapping[str, Any]):
    """One dated row of the data set, read-only: its endpoint's key tuple and its values.

    The data set's 22,680 rows decoded as dicts, with an object per value, took 13.6 MB; in
    this form, keys, strings and ids shared, 4.4 MB. The replay keeps them by column (1.3 MB).
    """

    __slots__ = ("_keys", "_values")

    def __init__(self, keys: tuple[str, ...], values: tuple[Any, ...]) -> None:
        self._keys = keys
        self._values = values

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[self._keys.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return repr(dict(self))


class _Compact:
    """Turns decoded rows into DataRows sharing key tuples and equal strings and ids."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._strings: dict[str, str] = {}
        self._ints: dict[int, int] = {}

    def row(self, decoded: Any) -> Any:
        """A dated row as a DataRow; anything else as decoded."""
        if not isinstance(decoded, dict) or ("DATE" not in decoded
                                             and "TIMESTAMP" not in decoded):
            return decoded
        keys = tuple(decoded)
        keys = self._keys.setdefault(keys, keys)
        return DataRow(keys, tuple(self._shared(value) for value in decoded.values()))

    def _shared(self, value: Any) -> Any:
        # Dates, names, symbols and ids repeat across tokens and rows: one object each.
        # Floats are mostly distinct; a table of them would cost more than it saves.
        if type(value) is str:
            return self._strings.setdefault(value, value)
        if type(value) is int:
            return self._ints.setdefault(value, value)
        return value


def load_demo_data() -> dict[str, Any]:
    """The bundled data set; its dated rows are read-only DataRow mappings."""
    raw = resources.files("alertbot.sources").joinpath("demo/demo.json.gz").read_bytes()
    # Each row is compacted as soon as the decoder has read it, so the data set is never
    # held as 22,680 dicts at once (13.6 MB, whose holes the process would keep).
    data: dict[str, Any] = json.loads(gzip.decompress(raw), object_hook=_Compact().row)
    return data


class ReplaySource:
    """Source that replays recorded Token Metrics rows."""

    name = "demo"

    def __init__(self, data: Mapping[str, Any], *, speed: float = DEFAULT_SPEED,
                 cursor: float | None = None, started_wall: datetime,
                 head_start: timedelta = timedelta(0)) -> None:
        self._start = parse_timestamp(data["start"])
        self._span = (parse_timestamp(data["end"]) - self._start).total_seconds()
        self._speed = speed
        self._tokens = parse_tokens(data["tokens"]).tokens
        self._series: dict[tuple[Kind, int], _Series] = {}
        for endpoint, (kind, ts_field) in _ENDPOINT_KINDS.items():
            self._index(kind, ts_field, data.get(endpoint, []))
        base = WARM_UP.total_seconds() if cursor is None else cursor
        # Each (re)start moves on by `head_start`, so `run --once` and restarts make progress.
        self._origin = base + head_start.total_seconds() * speed
        self._wall0 = started_wall

    def _index(self, kind: Kind, ts_field: str, rows: Sequence[Mapping[str, Any]]) -> None:
        by_token: dict[int, list[tuple[float, Mapping[str, Any]]]] = {}
        for row in rows:
            offset = (parse_timestamp(row[ts_field]) - self._start).total_seconds()
            by_token.setdefault(int(row["TOKEN_ID"]), []).append((offset, row))
        for token_id, items in by_token.items():
            items.sort(key=lambda item: item[0])
            fired = [i for i, (_, row) in enumerate(items) if _fires(kind, row)]
            self._series[(kind, token_id)] = _Series.of(items, fired)

    def cursor(self, now: datetime) -> float:
        """Seconds into the (endless) story at wall time `now`."""
        elapsed = max(0.0, (now - self._wall0).total_seconds())
        return self._origin + elapsed * self._speed

    def story_time(self, now: datetime) -> datetime:
        """The demo timestamp the replay shows at wall time `now`."""
        return self._start + timedelta(seconds=self.cursor(now))

    async def universe(self) -> list[Token]:
        """Every demo token."""
        return sorted(self._tokens.values(), key=lambda t: t.token_id)

    async def resolve(self, symbol: str) -> list[Token]:
        """Demo tokens with exactly this symbol."""
        wanted = symbol.strip().upper()
        return [t for t in self._tokens.values() if t.symbol == wanted]

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> Batch:
        """Readings as of the replay position at `now`."""
        cursor = self.cursor(now)
        lap, offset = divmod(cursor, self._span)
        shift = timedelta(seconds=lap * self._span)
        report = ParseReport(source=self.name)
        for kind in kinds:
            rows = list(self._visible(kind, token_ids, offset, shift))
            parse_kind(kind, rows, now, report)
        return Batch(
            readings=report.readings,
            tokens=[self._tokens[t] for t in token_ids if t in self._tokens],
            errors=report.skipped,
            meta={CURSOR_KEY: f"{cursor:.3f}"},
        )

    def _visible(self, kind: Kind, token_ids: Sequence[int], offset: float,
                 shift: timedelta) -> Iterator[dict[str, Any]]:
        ts_field = "TIMESTAMP" if kind is Kind.HOURLY else "DATE"
        for token_id in token_ids:
            series = self._series.get((kind, token_id))
            if series is None:
                continue
            newest = bisect_right(series.offsets, offset) - 1
            if newest < 0:
                continue
            # The newest row plus the newest row that fired: what the parsers need to see.
            picks = {newest}
            fired_pos = bisect_right(series.fired, newest) - 1
            if fired_pos >= 0:
                picks.add(series.fired[fired_pos])
            for index in sorted(picks):
                row = series.row(index)
                moved = self._on_wall_clock(parse_timestamp(row[ts_field]) + shift)
                row[ts_field] = moved.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                yield row

    def _on_wall_clock(self, story: datetime) -> datetime:
        """When the replay reached `story`, on the wall clock.

        Readings carry this time rather than the story's own date: the story runs `speed`
        times faster than the wall and would soon lie in the future, where the validity
        window refuses readings. The mapping keeps the story's order, so laps keep moving
        forward, and nothing visible at wall time `now` is dated after `now`.
        """
        story_seconds = (story - self._start).total_seconds()
        return self._wall0 + timedelta(seconds=(story_seconds - self._origin) / self._speed)

    async def history(self, token: Token, days: int, end: datetime) -> History:
        """The story's daily rows of `token` over the `days` before the story time at `end`.

        The data set repeats before and after the replay, as it does during it, so any range
        has data: the story's own dates are shown, not wall-clock dates.
        """
        story_end = self.story_time(end)
        story_start = story_end - timedelta(days=days)
        rows: dict[str, list[dict[str, Any]]] = {}
        for endpoint, kind in (("tm", Kind.TM_GRADE), ("fundamental", Kind.FUNDAMENTAL),
                               ("signals", Kind.SIGNAL)):
            rows[endpoint] = list(self._story_rows(kind, token.token_id, story_start,
                                                   story_end))
        return parse_history(token, story_start, story_end, tm=rows["tm"],
                             fundamental=rows["fundamental"], signals=rows["signals"],
                             report=ParseReport(source=self.name))

    def _story_rows(self, kind: Kind, token_id: int, start: datetime,
                    end: datetime) -> Iterator[dict[str, Any]]:
        series = self._series.get((kind, token_id))
        if series is None:
            return
        first = math.floor((start - self._start).total_seconds() / self._span)
        last = math.floor((end - self._start).total_seconds() / self._span)
        for lap in range(first, last + 1):
            shift = timedelta(seconds=lap * self._span)
            for index, offset in enumerate(series.offsets):
                at = self._start + timedelta(seconds=offset) + shift
                if start <= at <= end:
                    row = series.row(index)
                    row["DATE"] = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                    yield row

    async def close(self) -> None:
        """Nothing to release."""


def _fires(kind: Kind, row: Mapping[str, Any]) -> bool:
    if kind is Kind.SIGNAL:
        return str(row.get("TRADING_SIGNAL", "0")) not in ("0", "0.0")
    if kind is Kind.HOURLY:
        return str(row.get("SIGNAL", "0")) not in ("0", "0.0")
    return False
