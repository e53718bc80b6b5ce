"""Limits that keep hostile or broken HTTP clients from exhausting the bot.

- At most `max_connections` connections are open at once. A connection over the cap closes
  the oldest one (preferring one that is not inside a request handler), so a flood of
  stalled connections can neither exhaust file descriptors nor lock out a health check.
- A request's headers must arrive within `read_timeout` of the connection opening (or of
  the previous response); the handlers read bodies under the same timeout.
- Refusals (timeouts, malformed or oversized requests, bad signatures, clients that went
  away) are counted, not logged one by one: `RefusalLog` turns them into at most one
  summary line per interval.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_READ_TIMEOUT = 10.0
SUMMARY_INTERVAL = 60.0
"""Seconds between two refusal summary lines."""
DESCRIPTOR_HEADROOM = 64
"""Descriptors kept free for the database, outbound sessions and logs."""
REASONS: dict[str, str] = {
    "timeout": "timeouts",
    "over_capacity": "over the connection cap",
    "too_large": "too large",
    "bad_request": "malformed",
    "malformed": "malformed body",
    "bad_signature": "bad or missing signature",
    "stale": "stale signature",
    "replayed": "replayed",
    "invalid": "invalid readings",
    "unknown_token": "unknown tokens",
    "client_gone": "client gone",
    "error": "server errors",
    "telegram_missing_secret": "Telegram webhook without secret",
    "telegram_bad_secret": "Telegram webhook with a wrong secret",
    "telegram_malformed": "malformed Telegram updates",
    "telegram_too_large": "too large Telegram updates",
    "telegram_not_ready": "Telegram updates before the adapter started",
    "telegram_store_error": "Telegram updates while the database failed",
}
"""Every refusal reason (the metric label) and how the summary line names it."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Connection cap and read timeout (ALERTBOT_HTTP_MAX_CONNECTIONS, _READ_TIMEOUT)."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    read_timeout: float = DEFAULT_READ_TIMEOUT


def descriptor_cap(wanted: int) -> int:
    """`wanted`, lowered to stay below the process's open-file limit with some headroom."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - every POSIX system has it
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - DESCRIPTOR_HEADROOM))


class RefusalLog:
    """Counts refused requests by reason; `due()` gives at most one summary line per interval."""

    def __init__(self, *, interval: float = SUMMARY_INTERVAL,
                 on_refusal: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._on_refusal = on_refusal
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._first: float | None = None
        self._last_line: float | None = None
        self._last_error: float | None = None

    def first_error(self) -> bool:
        """True at most once per interval: whether to log this error's traceback."""
        now = self._clock()
        if self._last_error is not None and now - self._last_error < self._interval:
            return False
        self._last_error = now
        return True

    def note(self, reason: str) -> None:
        """Count one refusal."""
        if self._first is None:
            self._first = self._clock()
        self._counts[reason] += 1
        if self._on_refusal is not None:
            self._on_refusal(reason)

    def due(self, *, force: bool = False) -> str | None:
        """The summary line when one is due (or `force`), resetting the counts; else None."""
        if not self._counts or self._first is None:
            return None
        now = self._clock()
        if not force and self._last_line is not None and now - self._last_line < self._interval:
            return None
        total = sum(self._counts.values())
        seconds = max(1, round(now - self._first))
        parts = ", ".join(f"{REASONS.get(reason, reason)} {count:,}"
                          for reason, count in self._counts.most_common())
        noun = "request" if total == 1 else "requests"
        self._counts.clear()
        self._first = None
        self._last_line = now
        return f"HTTP: {total:,} {noun} refused in the last {seconds} s ({parts})"


class _ServerLogHandler(logging.Handler):
    """aiohttp's per-request error log, turned into counts (and rare real errors)."""

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__(logging.DEBUG)
        self._refusals = refusals

    def emit(self, record: logging.LogRecord) -> None:
        """Count what a hostile client causes; pass on a real error once per interval."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            self._refusals.note("bad_request")
        elif isinstance(exc, ConnectionError | asyncio.CancelledError):
            self._refusals.note("client_gone")
        elif exc is not None or record.levelno >= logging.WARNING:
            self._refusals.note("error")
            if self._refusals.first_error():
                log.handle(record)


def server_logger(refusals: RefusalLog) -> logging.Logger:
    """A logger for aiohttp's request handlers that counts refusals instead of logging each."""
    logger = logging.Logger("alertbot.http.aiohttp", logging.DEBUG)
    logger.propagate = False
    logger.addHandler(_ServerLogHandler(refusals))
    return logger


class _Connection(asyncio.Protocol):
    """One accepted connection: aiohttp's protocol, wrapped with the guard's timer."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self.transport: asyncio.Transport | None = None
        self.busy = False
        """Inside a request handler (headers read)."""
        self.served = 0
        self.refused = False
        """Closed by the server (timeout, over the cap): not the client's doing."""
        self._pending = False
        """Bytes arrived since the last request was handled."""
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol, delegated

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the guard (which may close an older connection) and start the timer."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._guard.opened(self)
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Pass the bytes on."""
        if not self.busy:
            self._pending = True
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Pass the end of input on."""
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Unregister and pass on."""
        self._disarm()
        self._guard.closed(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Pass on."""
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Pass on."""
        self._inner.resume_writing()

    # request phases, from the middleware

    def request_started(self) -> None:
        """Headers are in: the handler bounds its own body reads."""
        self.busy = True
        self._disarm()

    def request_finished(self) -> None:
        """The next request (or the end of this response) must come within the timeout."""
        self.busy = False
        self.served += 1
        self._pending = False
        self._arm()

    # closing

    def close(self, reason: str | None) -> None:
        """Close now, counting `reason` (None: an idle keep-alive, not a refusal)."""
        self._disarm()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if reason is not None:
            self.refused = True
            self._guard.refusals.note(reason)
        if transport.get_write_buffer_size():
            transport.abort()  # a client that does not read would hold a graceful close open
        else:
            transport.close()

    def _expired(self) -> None:
        self._timer = None
        if self.busy:
            return
        # A silent connection, or one that started a request and stalled, is a refusal; an
        # idle keep-alive after a complete exchange is not.
        self.close("timeout" if self._pending or not self.served else None)

    def _arm(self) -> None:
        self._disarm()
        if self.transport is None or self.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.limits.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ConnectionGuard:
    """The connection cap and read timeouts around aiohttp's protocol factory."""

    def __init__(self, limits: HttpLimits, refusals: RefusalLog) -> None:
        self.limits = limits
        self.refusals = refusals
        self._open: dict[_Connection, None] = {}
        """Oldest first."""
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}

    def __len__(self) -> int:
        return len(self._open)

    def factory(self, inner: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory to listen with."""
        return lambda: _Connection(self, inner())

    def connection(self, request: web.BaseRequest) -> _Connection | None:
        """The guarded connection a request arrived on."""
        transport = request.transport
        return self._by_transport.get(transport) if transport is not None else None

    def opened(self, connection: _Connection) -> None:
        """A new connection: make room under the cap first."""
        while len(self._open) >= self.limits.max_connections:
            victim = next((c for c in self._open if not c.busy), None)
            victim = victim or next(iter(self._open))
            del self._open[victim]
            victim.close("over_capacity")
        self._open[connection] = None
        if connection.transport is not None:
            self._by_transport[connection.transport] = connection

    def closed(self, connection: _Connection) -> None:
        """A connection ended."""
        self._open.pop(connection, None)
        if connection.transport is not None:
            self._by_transport.pop(connection.transport, None)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a ConnectionGuard."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard,
                 *, backlog: int = 128) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        """Where it listens."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen."""
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._guard.factory(server), self._host,
                                                self._port, backlog=self._backlog)
