"""Token Metrics rows -> readings, parsed defensively (shared by the API client and the replay).

The API's encodings drift: numbers arrive as strings, field names come in v2 UPPER and v3
lower case, timestamps as ISO with `Z` or as plain dates. Every row is validated on its own,
so one malformed row is skipped with a warning instead of failing the poll.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alertbot.domain.charts import Flip, History, Point, driver_scores
from alertbot.domain.models import Kind, Reading, Token
from alertbot.domain.parsing import parse_direction, parse_timestamp
from alertbot.domain.validity import MAX_TOKEN_ID, timestamp_problem

log = logging.getLogger(__name__)

ENDPOINTS: dict[Kind, str] = {
    Kind.SIGNAL: "/trading-signals",
    Kind.HOURLY: "/hourly-trading-signals",
    Kind.TM_GRADE: "/tm-grade",
    Kind.FUNDAMENTAL: "/fundamental-grade",
}

def _upper_keys(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k).upper(): v for k, v in data.items()}
    return data


class _Row(BaseModel):
    """Fields every endpoint shares."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token_id: int = Field(alias="TOKEN_ID", gt=0, le=MAX_TOKEN_ID)
    token_name: str = Field("", alias="TOKEN_NAME")
    token_symbol: str = Field("", alias="TOKEN_SYMBOL")
    symbol: str = Field("", alias="SYMBOL")
    tm_link: str = Field("", alias="TM_LINK")
    slug: str = Field("", alias="SLUG")

    @model_validator(mode="before")
    @classmethod
    def _normalise_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        # v2 sends both `tm_link` (a slug) and `TM_LINK` (an app URL, sometimes ".../undefined");
        # upper-casing folds them together, so keep the slug-looking one.
        slug = next((v for k, v in data.items() if str(k).upper() == "TM_LINK"
                     and isinstance(v, str) and v and "/" not in v), "")
        folded = _upper_keys(data)
        folded["TM_LINK"] = slug
        return {k: "" if v is None and k in _TEXT_FIELDS else v for k, v in folded.items()}

    @field_validator("token_id", mode="before")
    @classmethod
    def _int_id(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        return value

    def source_time(self) -> datetime | None:
        """When the source says this row's value holds (None: the row has no date)."""
        return None

    def token(self) -> Token:
        """The token this row describes."""
        symbol = (self.token_symbol or self.symbol).strip().upper()
        name = self.token_name.strip() or symbol
        return Token(self.token_id, symbol, name, (self.slug or self.tm_link).strip())


_TEXT_FIELDS = {"TOKEN_NAME", "TOKEN_SYMBOL", "SYMBOL", "TM_LINK", "SLUG",
                "TM_GRADE_SIGNAL", "FUNDAMENTAL_GRADE_CLASS"}


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _word_direction(value: Any) -> float:
    # A word the parser does not know is no data, not a reason to drop the row's numbers.
    try:
        return 0.0 if value is None else parse_direction(value)
    except ValueError:
        return 0.0


class SignalRow(_Row):
    """A `/trading-signals` row (daily); v3 also sends the signal and trend as words."""

    date: datetime = Field(alias="DATE")
    trading_signal: float = Field(0.0, alias="TRADING_SIGNAL")
    token_trend: float = Field(0.0, alias="TOKEN_TREND")
    """0 when missing: no data for this row, not a malformed row."""
    token_signal_str: float = Field(0.0, alias="TOKEN_SIGNAL_STR")
    token_trend_str: float = Field(0.0, alias="TOKEN_TREND_STR")

    @field_validator("date", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> datetime:
        return parse_timestamp(value)

    def source_time(self) -> datetime | None:
        """The row's DATE."""
        return self.date

    @field_validator("trading_signal", "token_trend", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> float:
        return 0.0 if value is None else parse_direction(value)

    @field_validator("token_signal_str", "token_trend_str", mode="before")
    @classmethod
    def _word(cls, value: Any) -> float:
        return _word_direction(value)

    @property
    def trend(self) -> float:
        """The current regime: the number, else the word (v3), else 0 (no data)."""
        return self.token_trend or self.token_trend_str

    @property
    def signal(self) -> float:
        """The signal fired on this day: the number, else the word (v3), else 0."""
        return self.trading_signal or self.token_signal_str


class HourlyRow(_Row):
    """An `/hourly-trading-signals` row; SIGNAL arrives as a string."""

    timestamp: datetime = Field(alias="TIMESTAMP")
    signal: float = Field(0.0, alias="SIGNAL")
    """0 when missing: no new signal in this row."""

    @field_validator("timestamp", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> datetime:
        return parse_timestamp(value)

    def source_time(self) -> datetime | None:
        """The row's TIMESTAMP."""
        return self.timestamp

    @field_validator("signal", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> float:
        return 0.0 if value is None else parse_direction(value)


class GradeRow(_Row):
    """A `/tm-grade` or `/fundamental-grade` row; numbers may arrive as strings."""

    date: datetime | None = Field(None, alias="DATE")
    tm_grade: float | None = Field(None, alias="TM_GRADE", ge=0, le=100)
    tm_grade_signal: str = Field("", alias="TM_GRADE_SIGNAL")
    fundamental_grade: float | None = Field(None, alias="FUNDAMENTAL_GRADE", ge=0, le=100)
    fundamental_grade_class: str = Field("", alias="FUNDAMENTAL_GRADE_CLASS")

    @field_validator("date", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> datetime | None:
        return None if value in (None, "") else parse_timestamp(value)

    def source_time(self) -> datetime | None:
        """The row's DATE, if it has one."""
        return self.date

    @field_validator("tm_grade", "fundamental_grade", mode="after")
    @classmethod
    def _grade_finite(cls, value: float | None) -> float | None:
        return _finite(value)


class TokenRow(_Row):
    """A `/tokens` catalog row."""


RowT = TypeVar("RowT", bound=_Row)


@dataclass(slots=True)
class ParseReport:
    """Readings built from one endpoint's rows, and the rows skipped as malformed."""

    readings: list[Reading] = field(default_factory=list)
    tokens: dict[int, Token] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    source: str = ""
    """Name of the source the readings are stamped with."""


def _validate(model: type[RowT], rows: Iterable[Any], endpoint: str,
              report: ParseReport, now: datetime | None = None) -> list[RowT]:
    parsed: list[RowT] = []
    for raw in rows:
        try:
            row = model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            _skip(report, raw, endpoint, problems)
            continue
        stamp = row.source_time()
        problem = None if now is None or stamp is None else timestamp_problem(stamp, now)
        if problem is not None:
            # Dropped before the newest row is chosen, so a genuine row still counts.
            _skip(report, raw, endpoint, f"{stamp:%Y-%m-%d %H:%M} {problem}")
            continue
        parsed.append(row)
        report.tokens.setdefault(row.token_id, row.token())
    return parsed


def _skip(report: ParseReport, raw: Any, endpoint: str, problems: str) -> None:
    message = f"skipped malformed row for token {_raw_token_id(raw)} from {endpoint}: {problems}"
    log.warning(message)
    report.skipped.append(message)


def _raw_token_id(raw: Any) -> str:
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if str(key).upper() == "TOKEN_ID":
                return repr(value)
    return "<unknown>"


def _by_token(rows: Sequence[RowT]) -> dict[int, list[RowT]]:
    grouped: dict[int, list[RowT]] = {}
    for row in rows:
        grouped.setdefault(row.token_id, []).append(row)
    return grouped


def parse_signals(rows: Iterable[Any], report: ParseReport | None = None, *,
                  now: datetime | None = None) -> ParseReport:
    """Daily signal readings: the newest row's trend; fired_at from the newest non-zero signal.

    With `now`, rows dated outside the validity window are skipped as malformed.
    """
    report = report or ParseReport()
    valid = _validate(SignalRow, rows, ENDPOINTS[Kind.SIGNAL], report, now)
    for token_rows in _by_token(valid).values():
        token_rows.sort(key=lambda r: r.date, reverse=True)
        newest = next((r for r in token_rows if r.trend != 0), None)
        if newest is None:
            continue
        fired = next((r.date for r in token_rows if r.signal != 0), None)
        report.readings.append(Reading(newest.token(), Kind.SIGNAL, newest.trend,
                                       newest.date, fired_at=fired, source=report.source))
    return report


def parse_hourly(rows: Iterable[Any], report: ParseReport | None = None, *,
                 now: datetime | None = None) -> ParseReport:
    """Hourly readings: the newest non-zero SIGNAL (zero rows mean no new signal).

    With `now`, rows dated outside the validity window are skipped as malformed.
    """
    report = report or ParseReport()
    valid = _validate(HourlyRow, rows, ENDPOINTS[Kind.HOURLY], report, now)
    for token_rows in _by_token(valid).values():
        token_rows.sort(key=lambda r: r.timestamp, reverse=True)
        fired = next((r for r in token_rows if r.signal != 0), None)
        if fired is not None:
            report.readings.append(Reading(fired.token(), Kind.HOURLY, fired.signal,
                                           fired.timestamp, fired_at=fired.timestamp,
                                           source=report.source))
    return report


def parse_grades(kind: Kind, rows: Iterable[Any], fetched_at: datetime,
                 report: ParseReport | None = None) -> ParseReport:
    """TM or fundamental grade readings; rows without a DATE are stamped with the fetch time.

    Rows dated outside the validity window around `fetched_at` are skipped as malformed.
    """
    report = report or ParseReport()
    valid = _validate(GradeRow, rows, ENDPOINTS[kind], report, fetched_at)
    for token_rows in _by_token(valid).values():
        token_rows.sort(key=lambda r: r.date or fetched_at, reverse=True)
        for row in token_rows:
            if kind is Kind.TM_GRADE and row.tm_grade is not None:
                value, label = row.tm_grade, row.tm_grade_signal
            elif kind is Kind.FUNDAMENTAL and row.fundamental_grade is not None:
                value, label = row.fundamental_grade, row.fundamental_grade_class
            else:
                continue
            report.readings.append(Reading(row.token(), kind, value, row.date or fetched_at,
                                           label=label.strip(), source=report.source))
            break
    return report


def parse_tokens(rows: Iterable[Any], report: ParseReport | None = None) -> ParseReport:
    """Catalog rows (symbol, name, slug by token id)."""
    report = report or ParseReport()
    _validate(TokenRow, rows, "/tokens", report)
    return report


def parse_kind(kind: Kind, rows: Iterable[Any], fetched_at: datetime,
               report: ParseReport | None = None) -> ParseReport:
    """Dispatch to the parser of a kind; rows dated after `fetched_at` (beyond the skew) skip."""
    if kind is Kind.SIGNAL:
        return parse_signals(rows, report, now=fetched_at)
    if kind is Kind.HOURLY:
        return parse_hourly(rows, report, now=fetched_at)
    return parse_grades(kind, rows, fetched_at, report)


# ---------------------------------------------------------------- history (charts)

HISTORY_ENDPOINTS = {
    "tm": "/tm-grade-history",
    "fundamental": "/fundamental-grade-history",
    "signal": ENDPOINTS[Kind.SIGNAL],
}


def _score(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0 <= number <= 100 else None


class DriverRow(GradeRow):
    """A `/fundamental-grade(-history)` row with the grade's component scores."""

    date: datetime | None = Field(None, alias="DATE")
    community_score: float | None = Field(None, alias="COMMUNITY_SCORE")
    exchange_score: float | None = Field(None, alias="EXCHANGE_SCORE")
    vc_score: float | None = Field(None, alias="VC_SCORE")
    tokenomics_score: float | None = Field(None, alias="TOKENOMICS_SCORE")
    defi_scanner_score: float | None = Field(None, alias="DEFI_SCANNER_SCORE")

    @field_validator("community_score", "exchange_score", "vc_score", "tokenomics_score",
                     "defi_scanner_score", mode="before")
    @classmethod
    def _component(cls, value: Any) -> float | None:
        # A component the API cannot rate comes as null; an odd one is no score, not a bad row.
        return _score(value)

    def components(self) -> dict[str, float | None]:
        """Component scores by their API field name."""
        return {"COMMUNITY_SCORE": self.community_score, "EXCHANGE_SCORE": self.exchange_score,
                "VC_SCORE": self.vc_score, "TOKENOMICS_SCORE": self.tokenomics_score,
                "DEFI_SCANNER_SCORE": self.defi_scanner_score}


def parse_history(token: Token, start: datetime, end: datetime, *, tm: Iterable[Any] = (),
                  fundamental: Iterable[Any] = (), signals: Iterable[Any] = (),
                  report: ParseReport | None = None) -> History:
    """A token's chart history from history rows; malformed rows and other tokens are skipped.

    Rows outside [start, end] are left out, so a chart bound to a time never shows later data.
    """
    report = report or ParseReport()

    def mine(rows: Sequence[RowT]) -> list[RowT]:
        return [r for r in rows if r.token_id == token.token_id
                and (stamp := r.source_time()) is not None and start <= stamp <= end]

    tm_rows = mine(_validate(GradeRow, tm, HISTORY_ENDPOINTS["tm"], report))
    fundamental_rows = mine(_validate(DriverRow, fundamental, HISTORY_ENDPOINTS["fundamental"],
                                      report))
    signal_rows = mine(_validate(SignalRow, signals, HISTORY_ENDPOINTS["signal"], report))
    return History(
        token, start, end,
        tm_grade=tuple(sorted((Point(r.date, r.tm_grade) for r in tm_rows
                               if r.date is not None and r.tm_grade is not None),
                              key=lambda p: p.at)),
        fundamental=tuple(sorted((Point(r.date, r.fundamental_grade) for r in fundamental_rows
                                  if r.date is not None and r.fundamental_grade is not None),
                                 key=lambda p: p.at)),
        flips=tuple(sorted((Flip(r.date, r.signal > 0) for r in signal_rows if r.signal != 0),
                           key=lambda f: f.at)),
        drivers=tuple(sorted((driver_scores(r.date, r.components()) for r in fundamental_rows
                              if r.date is not None and any(
                                  v is not None for v in r.components().values())),
                             key=lambda d: d.at)),
    )
