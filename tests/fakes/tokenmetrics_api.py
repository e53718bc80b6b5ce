"""Hand-written fake of the Token Metrics v2 data API for tests.

Serves the endpoints the bot polls with the envelope, field names and encodings recorded in
``/work/shared/reference/tokenmetrics.md``. Anything that source marks as unknown (error bodies,
``POSITION`` values, the meaning of ``length``) is a plausible guess and is configurable.

In-process use::

    async with FakeTokenMetrics() as fake:
        fake.add_token(3375, "BTC", "Bitcoin", "bitcoin")
        fake.set_signal(3375, "2025-07-01", trend=-1)
        fake.flip(3375, "2025-07-02")
        fake.fail_next("/trading-signals", status=429, retry_after=2)
        ...  # point the client at fake.base_url with header x-api-key: test-key

Standalone (for subprocess end-to-end tests)::

    python -m tests.fakes.tokenmetrics_api --port 0 --data scenario.json

prints the base URL on stdout and serves until SIGINT/SIGTERM. Standalone mode also enables the
unauthenticated control plane ``GET /_fake/calls``, ``POST /_fake/scenario``, ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal as signal_module
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

API_PREFIX = "/v2"
API_PREFIXES = ("/v2", "/v3")
"""Both API versions are served; v3 answers with lower-case field names (`lowercase_fields`)."""
TOKENS = "/tokens"
TRADING_SIGNALS = "/trading-signals"
HOURLY_TRADING_SIGNALS = "/hourly-trading-signals"
TM_GRADE = "/tm-grade"
FUNDAMENTAL_GRADE = "/fundamental-grade"
TM_GRADE_HISTORY = "/tm-grade-history"
FUNDAMENTAL_GRADE_HISTORY = "/fundamental-grade-history"
ENDPOINTS: tuple[str, ...] = (
    TOKENS,
    TRADING_SIGNALS,
    HOURLY_TRADING_SIGNALS,
    TM_GRADE,
    FUNDAMENTAL_GRADE,
    TM_GRADE_HISTORY,
    FUNDAMENTAL_GRADE_HISTORY,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_WINDOW_DAYS = 29
OK_MESSAGE = "Data fetched successfully"
APP_URL = "https://app.tokenmetrics.com/"

FaultKind = Literal["status", "malformed", "truncated", "success_false", "slow", "strings"]
FAULT_KINDS: tuple[str, ...] = (
    "status",
    "malformed",
    "truncated",
    "success_false",
    "slow",
    "strings",
)

# Real error bodies are undocumented; these keep the envelope so clients can surface `message`.
_STATUS_MESSAGES: dict[int, str] = {
    400: "Bad request",
    401: "Invalid API key",
    403: "Forbidden: your plan does not include this endpoint",
    404: "Not found",
    405: "Method not allowed",
    429: "Rate limit exceeded",
    500: "Internal server error",
    503: "Service unavailable",
}
# A 502 normally comes from a gateway in front of the API, which answers in HTML, not JSON.
_BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
_MALFORMED_BODY = "<html><body>upstream returned garbage</body></html>"
_SECRET_HEADERS = frozenset({"x-api-key", "api_key"})
_NO_DATE_SORT_KEY = "\uffff"


class _BadRequest(Exception):
    """Raised by query validation; becomes a 400 envelope."""


@dataclass
class CallRecord:
    """One request the fake received, with secrets removed."""

    endpoint: str
    method: str
    query: dict[str, str]
    headers: dict[str, str]
    time: float
    at: dt.datetime
    authorized: bool = False
    fault: str | None = None
    status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy of the record."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass
class Fault:
    """A scripted failure consumed by the next matching calls."""

    kind: FaultKind
    endpoint: str | None
    remaining: int | None
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    message: str = ""
    body: str | None = None

    def matches(self, endpoint: str) -> bool:
        """Return True if this fault applies to a call to ``endpoint``."""
        return self.endpoint is None or self.endpoint == endpoint


@dataclass
class _Row:
    """A served row plus the parsed values the filters need."""

    fields: dict[str, Any]
    sort_key: str = _NO_DATE_SORT_KEY
    day: dt.date | None = None
    ts: dt.datetime | None = None
    raw: bool = False
    filtered: bool = True


@dataclass
class _Token:
    """Token metadata reused to fill name/symbol columns of other endpoints."""

    token_id: int
    symbol: str
    name: str
    slug: str
    row: dict[str, Any] = field(default_factory=dict)


def normalize_endpoint(endpoint: str) -> str:
    """Map ``"trading-signals"``, ``"/v2/trading-signals"`` etc. to ``"/trading-signals"``."""
    path = endpoint.strip()
    for prefix in API_PREFIXES:
        if path.startswith(prefix + "/"):
            path = path[len(prefix) :]
    if not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/") or "/"


def format_date(day: dt.date) -> str:
    """Format a day the way the API stamps daily rows."""
    return f"{day.isoformat()}T00:00:00.000Z"


def format_timestamp(ts: dt.datetime) -> str:
    """Format an instant as ISO-8601 UTC with milliseconds and ``Z``."""
    utc = ts.astimezone(dt.UTC) if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _to_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value[:10])


def _to_datetime(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _stringify_numbers(row: Mapping[str, Any], keep: Iterable[str]) -> dict[str, Any]:
    keep_set = set(keep)
    out: dict[str, Any] = {}
    for key, value in row.items():
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        out[key] = str(value) if is_number and key not in keep_set else value
    return out


def _lowercase_keys(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        # v2 serves both `tm_link` (slug) and `TM_LINK` (URL); v3 calls the URL `app_link`.
        out["app_link" if key == "TM_LINK" else key.lower()] = value
    return out


def _split_list(raw: str | None) -> list[str]:
    if raw is None:
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse_token_ids(raw: str | None) -> set[int] | None:
    parts = _split_list(raw)
    if not parts:
        return None
    try:
        return {int(part) for part in parts}
    except ValueError:
        raise _BadRequest(f"Invalid token_id: {raw}") from None


def _parse_int(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest(f"Invalid {name}: {raw}") from None


def _parse_query_date(query: Mapping[str, str], name: str) -> dt.date | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"Invalid {name}: {raw}, expected YYYY-MM-DD") from None


def _field(row: Mapping[str, Any], name: str) -> Any:
    # Raw rows may use either casing, and filters must not crash on them.
    if name in row:
        return row[name]
    return row.get(name.lower())


def _envelope(
    data: list[Any], *, success: bool = True, message: str = OK_MESSAGE, length: int | None = None
) -> dict[str, Any]:
    return {
        "success": success,
        "message": message,
        "length": len(data) if length is None else length,
        "data": data,
    }


def _json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(payload),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def _error_response(status: int, message: str | None = None) -> web.Response:
    text = message if message is not None else _STATUS_MESSAGES.get(status, f"HTTP {status}")
    return _json_response(_envelope([], success=False, message=text), status=status)


class FakeTokenMetrics:
    """In-process fake of ``https://api.tokenmetrics.com/v2`` backed by an editable scenario."""

    def __init__(
        self,
        api_key: str = "test-key",
        *,
        clock: Callable[[], dt.datetime] | None = None,
        today: dt.date | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        control: bool = False,
    ) -> None:
        """Create a stopped fake; ``today``/``clock`` decide which rows are in the past."""
        self.api_key = api_key
        self.host = host
        self.port = port
        self.control = control
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(dt.UTC))
        if today is not None:
            self.set_today(today)
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._base_url: str | None = None
        self.calls: list[CallRecord] = []
        self.faults: list[Fault] = []
        self._init_scenario()

    def _init_scenario(self) -> None:
        self.lowercase_fields = False
        self.numbers_as_strings = False
        # TOKEN_ID stays numeric in string mode: only grade fields are documented as strings.
        self.keep_numeric: set[str] = {"TOKEN_ID"}
        # Whether `length` is the page size or the total is unknown; page size matched a sample.
        self.length_mode: Literal["page", "total"] = "page"
        # Hiding rows dated after "today" lets tests script the future and advance the clock.
        self.hide_future = True
        self.max_window_days = MAX_WINDOW_DAYS
        self._tokens: dict[int, _Token] = {}
        self._signals: dict[tuple[int, dt.date], _Row] = {}
        self._hourly: dict[tuple[int, dt.datetime], _Row] = {}
        self._tm_grades: dict[int, _Row] = {}
        self._fundamentals: dict[int, _Row] = {}
        self._tm_history: dict[tuple[int, dt.date], _Row] = {}
        self._fundamental_history: dict[tuple[int, dt.date], _Row] = {}
        self._raw: dict[str, list[_Row]] = {endpoint: [] for endpoint in ENDPOINTS}

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> str:
        """Bind to an ephemeral port and return the base URL ``http://127.0.0.1:PORT/v2``."""
        if self._runner is not None:
            raise RuntimeError("FakeTokenMetrics already started")
        self._stopping = asyncio.Event()
        app = web.Application()
        if self.control:
            app.router.add_get("/_fake/calls", self._control_calls)
            app.router.add_post("/_fake/scenario", self._control_scenario)
            app.router.add_post("/_fake/reset", self._control_reset)
        for prefix in API_PREFIXES:
            app.router.add_route("*", prefix + "/{tail:.*}", self._handle)
        # Cancelling handlers on disconnect and a short shutdown keep slow faults from
        # holding up teardown after the client has already timed out.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self._base_url = f"http://{self.host}:{port}{API_PREFIX}"
        return self._base_url

    async def stop(self) -> None:
        """Stop serving; pending slow responses are abandoned."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeTokenMetrics:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()

    @property
    def base_url(self) -> str:
        """Base URL including ``/v2``; only valid after ``start()``."""
        if self._base_url is None:
            raise RuntimeError("FakeTokenMetrics not started")
        return self._base_url

    def url(self, endpoint: str) -> str:
        """Full URL of an endpoint, e.g. ``url("/tm-grade")``."""
        return self.base_url + normalize_endpoint(endpoint)

    # --------------------------------------------------------------------- clock

    def now(self) -> dt.datetime:
        """Current fake time (aware, UTC)."""
        return _to_datetime(self.clock())

    def today(self) -> dt.date:
        """Current fake UTC date."""
        return self.now().date()

    def set_now(self, now: dt.datetime | str) -> None:
        """Freeze the clock at ``now``."""
        frozen = _to_datetime(now)
        self.clock = lambda: frozen

    def set_today(self, today: dt.date | str) -> None:
        """Freeze the clock at the last millisecond of ``today`` so all its hourly rows show."""
        day = _to_date(today)
        self.set_now(dt.datetime.combine(day, dt.time(23, 59, 59, 999000), dt.UTC))

    # ------------------------------------------------------------------ scenario

    def add_token(
        self,
        token_id: int,
        symbol: str,
        name: str,
        slug: str | None = None,
        *,
        exchanges: Iterable[tuple[str, str]] = (("binance", "Binance"),),
        categories: Iterable[tuple[int, str, str]] = (),
    ) -> dict[str, Any]:
        """Add or replace a ``/tokens`` row; later rows of other endpoints reuse its names."""
        slug = slug or name.lower().replace(" ", "-")
        row: dict[str, Any] = {
            "TOKEN_ID": token_id,
            "TOKEN_NAME": name,
            "TOKEN_SYMBOL": symbol,
            "EXCHANGE_LIST": [
                {"exchange_id": ex_id, "exchange_name": ex_name} for ex_id, ex_name in exchanges
            ],
            "CATEGORY_LIST": [
                {"category_id": cat_id, "category_name": cat_name, "category_slug": cat_slug}
                for cat_id, cat_name, cat_slug in categories
            ],
            "contract_address": {},
            "tm_link": slug,
            "TM_LINK": APP_URL + slug,
        }
        self._tokens[token_id] = _Token(token_id, symbol, name, slug, row)
        return row

    def _token(self, token_id: int) -> _Token:
        token = self._tokens.get(token_id)
        if token is None:
            # Auto-create so a test that only cares about signals needs no add_token call.
            self.add_token(token_id, f"TKN{token_id}", f"Token {token_id}", f"token-{token_id}")
            token = self._tokens[token_id]
        return token

    def _identity(self, token_id: int) -> dict[str, Any]:
        token = self._token(token_id)
        return {"TOKEN_ID": token_id, "TOKEN_NAME": token.name, "TOKEN_SYMBOL": token.symbol}

    def set_signal(
        self,
        token_id: int,
        date: dt.date | str,
        trend: int,
        signal: int = 0,
        *,
        signal_returns: float = 0.0,
        holding_returns: float = 0.0,
        trader_grade: float | None = 50.0,
        investor_grade: float | None = 50.0,
    ) -> dict[str, Any]:
        """Add or replace the daily ``/trading-signals`` row of ``token_id`` on ``date``."""
        day = _to_date(date)
        token = self._token(token_id)
        fields: dict[str, Any] = {
            **self._identity(token_id),
            "DATE": format_date(day),
            "TRADING_SIGNAL": signal,
            "TOKEN_TREND": trend,
            "TRADING_SIGNALS_RETURNS": signal_returns,
            "HOLDING_RETURNS": holding_returns,
            "tm_link": token.slug,
            "TM_TRADER_GRADE": trader_grade,
            "TM_INVESTOR_GRADE": investor_grade,
            "TM_LINK": APP_URL + token.slug,
        }
        self._signals[(token_id, day)] = _Row(fields, sort_key=fields["DATE"], day=day)
        return fields

    def flip(self, token_id: int, date: dt.date | str) -> dict[str, Any]:
        """Add a daily row on ``date`` whose trend reverses the previous day's (bullish if none)."""
        day = _to_date(date)
        earlier = [key for key in self._signals if key[0] == token_id and key[1] < day]
        if earlier:
            previous = self._signals[max(earlier, key=lambda key: key[1])].fields
            new_trend = -1 if int(previous["TOKEN_TREND"]) == 1 else 1
            return self.set_signal(
                token_id,
                day,
                trend=new_trend,
                signal=new_trend,
                signal_returns=previous["TRADING_SIGNALS_RETURNS"],
                holding_returns=previous["HOLDING_RETURNS"],
                trader_grade=previous["TM_TRADER_GRADE"],
                investor_grade=previous["TM_INVESTOR_GRADE"],
            )
        return self.set_signal(token_id, day, trend=1, signal=1)

    def set_hourly(
        self,
        token_id: int,
        timestamp: dt.datetime | str,
        signal: str | int = "0",
        close: float = 100.0,
        position: str | None = None,
    ) -> dict[str, Any]:
        """Add or replace an ``/hourly-trading-signals`` row; ``SIGNAL`` is served as a string."""
        ts = _to_datetime(timestamp)
        signal_text = str(signal)
        if position is None:
            # The POSITION vocabulary is undocumented; this mapping is a guess.
            position = {"1": "LONG", "-1": "SHORT"}.get(signal_text, "NEUTRAL")
        fields: dict[str, Any] = {
            "TIMESTAMP": format_timestamp(ts),
            **self._identity(token_id),
            "CLOSE": close,
            "SIGNAL": signal_text,
            "POSITION": position,
        }
        self._hourly[(token_id, ts)] = _Row(fields, sort_key=fields["TIMESTAMP"], ts=ts)
        return fields

    def set_tm_grade(
        self,
        token_id: int,
        grade: float | None,
        signal_label: str = "Neutral",
        as_string: bool = False,
        *,
        pct_change_24h: float | None = 0.0,
        trader_grade_change_24h: float | None = 0.0,
        quant_grade: float | None = 50.0,
        momentum: str = "Holding Steady",
        fundamental_grade: float | None = None,
        fundamental_class: str | None = None,
    ) -> dict[str, Any]:
        """Set the ``/tm-grade`` row of ``token_id``; ``as_string`` serves numbers as strings."""
        numbers: dict[str, float | None] = {
            "TM_GRADE": grade,
            "TM_GRADE_24h_PCT_CHANGE": pct_change_24h,
            "TM_TRADER_GRADE_24H_CHANGE": trader_grade_change_24h,
            "QUANT_GRADE": quant_grade,
        }
        fields: dict[str, Any] = {
            **self._identity(token_id),
            "TM_GRADE": grade,
            "TM_GRADE_SIGNAL": signal_label,
            "TM_GRADE_24h_PCT_CHANGE": pct_change_24h,
            "TM_TRADER_GRADE_24H_CHANGE": trader_grade_change_24h,
            "QUANT_GRADE": quant_grade,
            "MOMENTUM": momentum,
        }
        if fundamental_grade is not None or fundamental_class is not None:
            numbers["FUNDAMENTAL_GRADE"] = fundamental_grade
            fields["FUNDAMENTAL_GRADE"] = fundamental_grade
            fields["FUNDAMENTAL_GRADE_CLASS"] = fundamental_class
        if as_string:
            fields.update({k: str(v) for k, v in numbers.items() if v is not None})
        self._tm_grades[token_id] = _Row(fields)
        return fields

    def set_fundamental(
        self,
        token_id: int,
        grade: float | None,
        klass: str = "blueChip",
        as_string: bool = False,
        *,
        community_score: float | None = 50.0,
        exchange_score: float | None = 50.0,
        vc_score: float | None = None,
        tokenomics_score: float | None = 50.0,
        defi_scanner_score: float | None = 50.0,
    ) -> dict[str, Any]:
        """Set the ``/fundamental-grade`` row of ``token_id``; ``VC_SCORE`` defaults to null."""
        numbers: dict[str, float | None] = {
            "FUNDAMENTAL_GRADE": grade,
            "COMMUNITY_SCORE": community_score,
            "EXCHANGE_SCORE": exchange_score,
            "VC_SCORE": vc_score,
            "TOKENOMICS_SCORE": tokenomics_score,
            "DEFI_SCANNER_SCORE": defi_scanner_score,
        }
        fields: dict[str, Any] = {
            **self._identity(token_id),
            "FUNDAMENTAL_GRADE": grade,
            "FUNDAMENTAL_GRADE_CLASS": klass,
            **{k: v for k, v in numbers.items() if k != "FUNDAMENTAL_GRADE"},
        }
        if as_string:
            fields.update({k: str(v) for k, v in numbers.items() if v is not None})
        self._fundamentals[token_id] = _Row(fields)
        return fields

    def add_tm_grade_history(
        self, token_id: int, date: dt.date | str, grade: float, signal_label: str = "Neutral",
        *, as_string: bool = False,
    ) -> dict[str, Any]:
        """Add the ``/tm-grade-history`` row of ``token_id`` on ``date`` (``/tm-grade`` + DATE)."""
        day = _to_date(date)
        fields: dict[str, Any] = {
            **self._identity(token_id),
            "DATE": format_date(day),
            "TM_GRADE": str(grade) if as_string else grade,
            "TM_GRADE_SIGNAL": signal_label,
            "TM_GRADE_24h_PCT_CHANGE": 0.0,
            "QUANT_GRADE": 50.0,
            "MOMENTUM": "Holding Steady",
        }
        self._tm_history[(token_id, day)] = _Row(fields, sort_key=fields["DATE"], day=day)
        return fields

    def add_fundamental_history(
        self, token_id: int, date: dt.date | str, grade: float, klass: str = "blueChip", *,
        community_score: float | None = 50.0, exchange_score: float | None = 50.0,
        vc_score: float | None = None, tokenomics_score: float | None = 50.0,
        defi_scanner_score: float | None = 50.0,
    ) -> dict[str, Any]:
        """Add the ``/fundamental-grade-history`` row of ``token_id`` on ``date``."""
        day = _to_date(date)
        fields: dict[str, Any] = {
            **self._identity(token_id),
            "DATE": format_date(day),
            "FUNDAMENTAL_GRADE": grade,
            "FUNDAMENTAL_GRADE_CLASS": klass,
            "COMMUNITY_SCORE": community_score,
            "EXCHANGE_SCORE": exchange_score,
            "VC_SCORE": vc_score,
            "TOKENOMICS_SCORE": tokenomics_score,
            "DEFI_SCANNER_SCORE": defi_scanner_score,
        }
        self._fundamental_history[(token_id, day)] = _Row(fields, sort_key=fields["DATE"],
                                                          day=day)
        return fields

    def add_raw_row(self, endpoint: str, row: Mapping[str, Any], *, filtered: bool = False) -> None:
        """Serve ``row`` verbatim on ``endpoint`` (no case/string transforms).

        Unfiltered raw rows are returned whatever the query; with ``filtered=True`` they must
        match the query filters, and a missing field counts as a mismatch. Rows sort among the
        others by ``DATE``/``TIMESTAMP``; rows without a string date come first.
        """
        path = self._check_endpoint(endpoint)
        stamp = _field(row, "DATE") if path != HOURLY_TRADING_SIGNALS else _field(row, "TIMESTAMP")
        raw = _Row(
            dict(row),
            sort_key=stamp if isinstance(stamp, str) else _NO_DATE_SORT_KEY,
            raw=True,
            filtered=filtered,
        )
        if isinstance(stamp, str):
            # Hostile dates (year 0001 with an offset) are served verbatim, unsorted.
            with contextlib.suppress(ValueError, OverflowError):
                raw.ts = _to_datetime(stamp)
                raw.day = raw.ts.date()
        self._raw[path].append(raw)

    def clear_data(self) -> None:
        """Remove every scenario row and reset serving options; calls and faults are kept."""
        self._init_scenario()

    def reset_calls(self) -> None:
        """Forget recorded calls."""
        self.calls.clear()

    def reset(self) -> None:
        """Forget calls, faults and scenario data."""
        self.reset_calls()
        self.clear_faults()
        self.clear_data()

    def load_scenario(self, scenario: Mapping[str, Any]) -> None:
        """Apply a JSON-style scenario dict, the format of the standalone ``--data`` file.

        Scalar keys ``api_key``, ``today``, ``now``, ``lowercase_fields``, ``numbers_as_strings``,
        ``length_mode`` set options. List keys hold keyword-argument dicts for one method each:
        ``tokens`` → add_token, ``signals`` → set_signal, ``flips`` → flip, ``hourly`` →
        set_hourly, ``tm_grades`` → set_tm_grade, ``fundamentals`` → set_fundamental,
        ``raw_rows`` → add_raw_row, ``faults`` → fail_next. Unknown keys raise ValueError.
        """
        unknown = set(scenario) - set(_SCENARIO_KEYS)
        if unknown:
            raise ValueError(f"Unknown scenario keys: {sorted(unknown)}")
        for option in ("api_key", "lowercase_fields", "numbers_as_strings", "length_mode"):
            if option in scenario:
                setattr(self, option, scenario[option])
        if "today" in scenario:
            self.set_today(scenario["today"])
        if "now" in scenario:
            self.set_now(scenario["now"])
        for item in scenario.get("tokens", []):
            self.add_token(**item)
        for item in scenario.get("signals", []):
            self.set_signal(**item)
        for item in scenario.get("flips", []):
            self.flip(**item)
        for item in scenario.get("hourly", []):
            self.set_hourly(**item)
        for item in scenario.get("tm_grades", []):
            self.set_tm_grade(**item)
        for item in scenario.get("fundamentals", []):
            self.set_fundamental(**item)
        for item in scenario.get("tm_grade_history", []):
            self.add_tm_grade_history(**item)
        for item in scenario.get("fundamental_history", []):
            self.add_fundamental_history(**item)
        for item in scenario.get("raw_rows", []):
            self.add_raw_row(**item)
        for item in scenario.get("faults", []):
            self.fail_next(**item)

    # -------------------------------------------------------------------- faults

    def fail_next(
        self,
        endpoint: str | None = None,
        times: int | None = 1,
        status: int | None = None,
        *,
        kind: FaultKind | None = None,
        retry_after: float | str | None = None,
        delay: float = 0.0,
        message: str | None = None,
        body: str | None = None,
    ) -> Fault:
        """Script a fault for the next ``times`` calls (``None`` = until cleared).

        ``endpoint=None`` matches every endpoint. Kinds: ``"status"`` (implied by ``status``;
        ``retry_after`` adds the header, ``body`` replaces the JSON error body), ``"malformed"``
        (non-JSON body labelled application/json), ``"truncated"`` (half a valid body),
        ``"success_false"`` (HTTP 200 with ``success: false``), ``"slow"`` (normal answer after
        ``delay`` seconds) and ``"strings"`` (numbers as strings). ``delay`` applies to any kind.
        Faults are consumed first-in first-out, after the API key has been accepted.
        """
        if kind is None:
            if status is None:
                raise ValueError("fail_next needs a status or a kind")
            kind = "status"
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}")
        if kind == "status" and (status is None or status < 400):
            raise ValueError("A status fault needs an HTTP error status")
        if kind == "slow" and delay <= 0:
            raise ValueError("A slow fault needs delay > 0")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        path = None if endpoint is None else self._check_endpoint(endpoint)
        if kind == "success_false" and message is None:
            message = "Something went wrong"
        if message is None:
            message = _STATUS_MESSAGES.get(status or 0, f"HTTP {status}")
        fault = Fault(
            kind=kind,
            endpoint=path,
            remaining=times,
            status=status if kind == "status" and status is not None else 200,
            retry_after=_format_retry_after(retry_after),
            delay=delay,
            message=message,
            body=body,
        )
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self.faults.clear()

    def _take_fault(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(endpoint):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _check_endpoint(endpoint: str) -> str:
        path = normalize_endpoint(endpoint)
        if path not in ENDPOINTS:
            # A typo here would make a fault silently never fire.
            raise ValueError(f"Unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
        return path

    # ---------------------------------------------------------------- inspection

    def calls_to(self, endpoint: str) -> list[CallRecord]:
        """Calls made to ``endpoint`` (any spelling accepted by ``normalize_endpoint``)."""
        path = normalize_endpoint(endpoint)
        return [call for call in self.calls if call.endpoint == path]

    @property
    def call_count(self) -> int:
        """Number of requests received under ``/v2``."""
        return len(self.calls)

    # ------------------------------------------------------------------- serving

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = normalize_endpoint(request.match_info["tail"])
        record = CallRecord(
            endpoint=endpoint,
            method=request.method,
            query=dict(request.query),
            headers={
                k.lower(): v for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS
            },
            time=time.monotonic(),
            at=self.now(),
        )
        self.calls.append(record)
        response = await self._respond(request, endpoint, record)
        record.status = response.status
        return response

    async def _respond(
        self, request: web.Request, endpoint: str, record: CallRecord
    ) -> web.StreamResponse:
        # Only x-api-key counts: the legacy `api_key` header of tmai-api is deliberately refused.
        if request.headers.get("x-api-key") != self.api_key:
            return _error_response(401)
        record.authorized = True
        if request.method != "GET":
            return _error_response(405)

        fault = self._take_fault(endpoint)
        stringify = self.numbers_as_strings
        if fault is not None:
            record.fault = fault.kind
            if fault.delay > 0:
                await self._sleep(fault.delay)
            if fault.kind == "status":
                return self._status_fault_response(fault)
            if fault.kind == "malformed":
                body = fault.body if fault.body is not None else _MALFORMED_BODY
                return web.Response(status=200, text=body, content_type="application/json")
            if fault.kind == "success_false":
                return _json_response(_envelope([], success=False, message=fault.message))
            if fault.kind == "strings":
                stringify = True

        if endpoint not in ENDPOINTS:
            version = request.path.split("/")[1]
            return _error_response(404, f"Endpoint /{version}{endpoint} not found")
        try:
            payload = self.query(endpoint, request.query, numbers_as_strings=stringify)
        except _BadRequest as exc:
            return _error_response(400, str(exc))
        if fault is not None and fault.kind == "truncated":
            text = json.dumps(payload)
            return web.Response(text=text[: len(text) // 2], content_type="application/json")
        return _json_response(payload)

    @staticmethod
    def _status_fault_response(fault: Fault) -> web.Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is not None:
            return web.Response(status=fault.status, text=fault.body, headers=headers)
        if fault.status == 502:
            return web.Response(
                status=502, text=_BAD_GATEWAY_HTML, content_type="text/html", headers=headers
            )
        payload = _envelope([], success=False, message=fault.message)
        return _json_response(payload, status=fault.status, headers=headers)

    async def _sleep(self, delay: float) -> None:
        # Waiting on the stop event lets stop() end a slow response at once.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    def query(
        self, endpoint: str, query: Mapping[str, str], *, numbers_as_strings: bool | None = None
    ) -> dict[str, Any]:
        """Build the envelope ``GET endpoint?query`` would return (raises on a bad query)."""
        path = self._check_endpoint(endpoint)
        limit = _parse_int(query, "limit", DEFAULT_LIMIT)
        page = _parse_int(query, "page", 1)
        if not 1 <= limit <= MAX_LIMIT:
            raise _BadRequest(f"Invalid limit: {limit}, must be between 1 and {MAX_LIMIT}")
        if page < 1:
            raise _BadRequest(f"Invalid page: {page}, pages start at 1")

        rows = self._select(path, query)
        rows.sort(key=lambda row: row.sort_key, reverse=True)
        total = len(rows)
        page_rows = rows[(page - 1) * limit : page * limit]

        stringify = self.numbers_as_strings if numbers_as_strings is None else numbers_as_strings
        data = [self._render(row, stringify) for row in page_rows]
        length = total if self.length_mode == "total" else len(data)
        return _envelope(data, length=length)

    def _render(self, row: _Row, stringify: bool) -> dict[str, Any]:
        if row.raw:
            return dict(row.fields)
        fields: dict[str, Any] = dict(row.fields)
        if stringify:
            fields = _stringify_numbers(fields, self.keep_numeric)
        if self.lowercase_fields:
            fields = _lowercase_keys(fields)
        return fields

    def _select(self, path: str, query: Mapping[str, str]) -> list[_Row]:
        token_ids = _parse_token_ids(query.get("token_id"))
        symbols = {s.upper() for s in _split_list(query.get("symbol"))} or None
        names = {n.lower() for n in _split_list(query.get("token_name"))} or None
        start = end = None
        signal: int | None = None

        if path == TOKENS:
            rows = [_Row(token.row) for token in self._tokens.values()]
        elif path == TRADING_SIGNALS:
            rows = list(self._signals.values())
            start, end = self._window(query)
            raw_signal = query.get("signal")
            if raw_signal:
                try:
                    signal = int(raw_signal)
                except ValueError:
                    raise _BadRequest(f"Invalid signal: {raw_signal}") from None
        elif path == HOURLY_TRADING_SIGNALS:
            if token_ids is None:
                raise _BadRequest("token_id is required")
            rows = list(self._hourly.values())
        elif path == TM_GRADE:
            rows = list(self._tm_grades.values())
        elif path in (TM_GRADE_HISTORY, FUNDAMENTAL_GRADE_HISTORY):
            rows = list((self._tm_history if path == TM_GRADE_HISTORY
                         else self._fundamental_history).values())
            start, end = self._window(query)
        else:
            rows = list(self._fundamentals.values())

        now = self.now()
        today = now.date()
        selected: list[_Row] = []
        for row in rows:
            if self.hide_future and (
                (row.day is not None and row.day > today) or (row.ts is not None and row.ts > now)
            ):
                continue
            if _matches(row, token_ids, symbols, names, start, end, signal):
                selected.append(row)
        for row in self._raw[path]:
            if not row.filtered or _matches(row, token_ids, symbols, names, start, end, signal):
                selected.append(row)
        return selected

    def _window(self, query: Mapping[str, str]) -> tuple[dt.date | None, dt.date | None]:
        start = _parse_query_date(query, "startDate")
        end = _parse_query_date(query, "endDate")
        if start is not None and end is None:
            end = self.today()
        if start is not None and end is not None:
            if start > end:
                raise _BadRequest("startDate must not be after endDate")
            if (end - start).days > self.max_window_days:
                raise _BadRequest(
                    f"Date range too large: maximum is {self.max_window_days} days per request"
                )
        return start, end

    # ------------------------------------------------------------- control plane

    async def _control_calls(self, request: web.Request) -> web.Response:
        return _json_response([call.to_json() for call in self.calls])

    async def _control_scenario(self, request: web.Request) -> web.Response:
        try:
            self.load_scenario(await request.json())
        except (ValueError, TypeError) as exc:
            return _error_response(400, str(exc))
        return _json_response(_envelope([], message="Scenario loaded"))

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json_response(_envelope([], message="Reset"))


_SCENARIO_KEYS: tuple[str, ...] = (
    "api_key",
    "today",
    "now",
    "lowercase_fields",
    "numbers_as_strings",
    "length_mode",
    "tokens",
    "signals",
    "flips",
    "hourly",
    "tm_grades",
    "fundamentals",
    "tm_grade_history",
    "fundamental_history",
    "raw_rows",
    "faults",
)


def _format_retry_after(value: float | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


def _matches(
    row: _Row,
    token_ids: set[int] | None,
    symbols: set[str] | None,
    names: set[str] | None,
    start: dt.date | None,
    end: dt.date | None,
    signal: int | None,
) -> bool:
    fields = row.fields
    if token_ids is not None:
        try:
            if int(_field(fields, "TOKEN_ID")) not in token_ids:
                return False
        except (TypeError, ValueError):
            return False
    if symbols is not None and str(_field(fields, "TOKEN_SYMBOL") or "").upper() not in symbols:
        return False
    if names is not None and str(_field(fields, "TOKEN_NAME") or "").lower() not in names:
        return False
    if start is not None and (row.day is None or row.day < start):
        return False
    if end is not None and (row.day is None or row.day > end):
        return False
    if signal is not None:
        try:
            return int(_field(fields, "TRADING_SIGNAL")) == signal
        except (TypeError, ValueError):
            return False
    return True


async def _serve(args: argparse.Namespace, scenario: Mapping[str, Any] | None) -> None:
    fake = FakeTokenMetrics(host=args.host, port=args.port, control=True)
    if scenario is not None:
        fake.load_scenario(scenario)
    if args.api_key is not None:
        fake.api_key = args.api_key
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal_module.SIGINT, signal_module.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    base_url = await fake.start()
    # The parent process reads this line to learn the ephemeral port.
    print(base_url, flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the fake until SIGINT/SIGTERM, printing its base URL first."""
    parser = argparse.ArgumentParser(description="Fake Token Metrics v2 API for tests")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data", help="JSON scenario file (see FakeTokenMetrics.load_scenario)")
    parser.add_argument("--api-key", default=None, help="accepted x-api-key (default test-key)")
    args = parser.parse_args(argv)
    scenario = json.loads(Path(args.data).read_text(encoding="utf-8")) if args.data else None
    asyncio.run(_serve(args, scenario))
    return 0


if __name__ == "__main__":
    sys.exit(main())
