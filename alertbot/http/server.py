"""HTTP endpoints: /healthz, /readyz, /metrics, the signed push ingest /hooks/signals and,
in Telegram webhook mode, the path of TELEGRAM_WEBHOOK_URL (telegram_hook.py).

With several replicas, /readyz says which role answers: the leader's body starts with
`ready` (or `not ready`), a standby's with `standby`; both carry an `Alertbot-Role` header
(`leader` or `standby`). A ready standby answers 200, since it serves /metrics and push
ingest; `/readyz?role=leader` answers 503 on a standby, for a load balancer that must reach
the leader only. A standby skips the leader-only checks (polls, chat connections).

Runs as a background job of `alertbot run` on ALERTBOT_HTTP_HOST:ALERTBOT_HTTP_PORT (port 0
disables it). Every response body passes through the redactor. Connections are capped and
reads are bounded in time (see limits.py); refusals are counted and summarised, never logged
one traceback at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from alertbot.domain.ops_events import STALE_INTERVALS
from alertbot.domain.signing import SIGNATURE_HEADER, SignatureError, sign, verify
from alertbot.http.ingest import (
    MAX_BODY,
    IngestError,
    ReplayGuard,
    ResolveBudget,
    parse_body,
    read_limited,
    resolve_tokens,
    to_readings,
)
from alertbot.http.limits import (
    SUMMARY_INTERVAL,
    ConnectionGuard,
    GuardedSite,
    HttpLimits,
    RefusalLog,
    descriptor_cap,
    server_logger,
)
from alertbot.http.telegram_hook import TelegramWebhook, UpdateSink
from alertbot.observability.logs import Redactor, correlation_id
from alertbot.observability.metrics import CONTENT_TYPE, Metrics, QuotaProbe
from alertbot.ports.clock import Clock
from alertbot.ports.leadership import Role
from alertbot.ports.lifecycle import Probe
from alertbot.ports.store import Store, StoreError
from alertbot.services.lookup import Lookup
from alertbot.services.poller import Poller

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
INGEST_PATH = "/hooks/signals"
LOGGED_STATUSES = (422,)
ROLE_HEADER = "Alertbot-Role"
"""Rejections logged one by one: only signed requests get this far, the rest are summarised."""


@dataclass(frozen=True, slots=True)
class TelegramRoute:
    """Where Telegram webhook updates arrive and what receives them."""

    path: str
    sink: UpdateSink
    secret: Callable[[], SecretStr | None]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One readiness check: None problem = passing."""

    name: str
    problem: str | None
    detail: str = ""


class WebServer:
    """The aiohttp application and its lifecycle."""

    def __init__(self, *, store: Store, poller: Poller, lookup: Lookup, clock: Clock,
                 metrics: Metrics, redactor: Redactor, health: Mapping[str, Probe],
                 webhook_secret: Callable[[], SecretStr | None], host: str = "127.0.0.1",
                 port: int = 0, quota: QuotaProbe | None = None, started: datetime | None = None,
                 wall: Callable[[], float] = time.time, limits: HttpLimits | None = None,
                 summary_every: float = SUMMARY_INTERVAL,
                 telegram: TelegramRoute | None = None,
                 role: Callable[[], Role | None] = lambda: None,
                 leader_probes: Collection[str] = ()) -> None:
        self._store = store
        self._poller = poller
        self._lookup = lookup
        self._clock = clock
        self._metrics = metrics
        self._redactor = redactor
        self._health = health
        """Shared with the composition root: probes added later are read too."""
        self._role = role
        """None outside `alertbot run` (answers as the leader)."""
        self._leader_probes = leader_probes
        """Shared like `health`: probes a standby skips."""
        self._webhook_secret = webhook_secret
        self._host = host
        self._port = port
        self._quota = quota
        self._started = started or clock.now()
        self._wall = wall
        self._replays = ReplayGuard()
        self._resolutions = ResolveBudget()
        self._runner: web.AppRunner | None = None
        self._flusher: asyncio.Task[None] | None = None
        limits = limits or HttpLimits()
        cap = descriptor_cap(limits.max_connections)
        if cap < limits.max_connections:
            log.warning("ALERTBOT_HTTP_MAX_CONNECTIONS=%d would exceed the open-file limit; "
                        "using %d", limits.max_connections, cap)
            limits = HttpLimits(cap, limits.read_timeout)
        self.limits = limits
        self._summary_every = summary_every
        self._refusals = RefusalLog(interval=summary_every, on_refusal=metrics.http_refused)
        self._guard = ConnectionGuard(limits, self._refusals)
        self._telegram_path = telegram.path if telegram is not None else None
        self._telegram = None if telegram is None else TelegramWebhook(
            telegram.sink, store, clock, telegram.secret, on_result=metrics.telegram_update,
            on_refusal=self._refusals.note, read_timeout=limits.read_timeout)
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    def application(self) -> web.Application:
        """Routes and handlers."""
        application = web.Application(client_max_size=MAX_BODY, middlewares=[self._guarded])
        application.router.add_get("/healthz", self._healthz)
        application.router.add_get("/readyz", self._readyz)
        application.router.add_get("/metrics", self._metrics_page)
        application.router.add_post(INGEST_PATH, self._ingest)
        if self._telegram is not None and self._telegram_path is not None:
            application.router.add_post(self._telegram_path, self._telegram.handle)
        return application

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful when `port` is 0 in tests)."""
        timeout = self.limits.read_timeout
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False,
                               shutdown_timeout=2.0, keepalive_timeout=timeout,
                               lingering_time=min(timeout, 2.0),
                               logger=server_logger(self._refusals))
        await runner.setup()
        site = GuardedSite(runner, host, port, self._guard,
                           backlog=min(128, self.limits.max_connections))
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self._flusher = asyncio.create_task(self._summaries())
        return self.port

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        runner, self._runner = self._runner, None
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.cancel()
        if runner is not None:
            await runner.cleanup()
        self.log_refusals()

    @property
    def open_connections(self) -> int:
        """Connections open right now."""
        return len(self._guard)

    def log_refusals(self, *, force: bool = True) -> None:
        """Log the refusal summary line (when one is due, unless `force`)."""
        line = self._refusals.due(force=force)
        if line is not None:
            log.warning(line)

    async def _summaries(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._summary_every))
            self.log_refusals(force=False)

    @web.middleware
    async def _guarded(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                       ) -> web.StreamResponse:
        """Mark the connection busy while a handler runs; no handler error escapes as a trace."""
        connection = self._guard.connection(request)
        if connection is not None:
            connection.request_started()
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            self._refusals.note("error")
            if self._refusals.first_error():
                log.exception("HTTP %s %s failed", request.method, request.path)
            response = web.json_response({"error": "internal error"}, status=500)
            response.force_close()
            return response
        finally:
            if connection is not None:
                connection.request_finished()

    async def serve(self, stop: asyncio.Event) -> None:
        """Background job: listen on the configured address until `stop`."""
        host = self._host
        try:
            port = await self.start(host, self._port)
        except OSError as exc:
            # Alerts matter more than the endpoints: keep delivering, but say so loudly.
            log.error("HTTP server cannot listen on %s:%d (%s): set ALERTBOT_HTTP_PORT to a "
                      "free port (0 turns the server off) or ALERTBOT_HTTP_HOST to another "
                      "address; health, metrics and push ingest are unavailable meanwhile",
                      host, self._port, exc.strerror or exc)
            return
        ingest = "on" if self._webhook_secret() else "off (ALERTBOT_WEBHOOK_SECRET unset)"
        telegram = (f", Telegram updates on {self._telegram_path}" if self._telegram_path
                    else "")
        log.info("HTTP on %s:%d: /healthz /readyz /metrics, push ingest %s%s", host, port,
                 ingest, telegram)
        try:
            await stop.wait()
        finally:
            await self.stop()

    # ------------------------------------------------------------------ health

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readiness(self) -> list[CheckResult]:
        """Every readiness check: database, poll freshness, each registered probe.

        A standby checks only what it runs itself (the database, the HTTP server, ...).
        """
        standby = self._role() is Role.STANDBY
        results = [await self._database()]
        if not (standby and "polls" in self._leader_probes):
            results.append(self._polls())
        for name, probe in self._health.items():
            if standby and name in self._leader_probes:
                continue
            try:
                problem = probe()
            except Exception as exc:
                problem = f"check failed: {type(exc).__name__}"
            results.append(CheckResult(name, problem))
        return results

    async def _database(self) -> CheckResult:
        try:
            await asyncio.wait_for(self._store.ping(), PROBE_TIMEOUT)
        except TimeoutError:
            return CheckResult("database", f"no answer within {PROBE_TIMEOUT:.0f}s")
        except Exception as exc:
            return CheckResult("database", str(exc) or type(exc).__name__)
        return CheckResult("database", None)

    def _polls(self) -> CheckResult:
        poller = self._poller
        now = self._clock.now()
        interval = poller.interval.total_seconds()
        limit = STALE_INTERVALS * interval
        last = poller.last_success
        error = f"; last error: {poller.last_error}" if poller.last_error else ""
        if last is None:
            waited = (now - self._started).total_seconds()
            return CheckResult("polls", f"no successful poll yet ({waited:.0f}s since start)"
                                        + error)
        age = (now - last).total_seconds()
        if age > limit:
            return CheckResult("polls", f"last successful poll {age:.0f}s ago, more than "
                                        f"{STALE_INTERVALS} intervals ({limit:.0f}s)" + error)
        return CheckResult("polls", None, f"last success {age:.0f}s ago")

    async def _readyz(self, request: web.Request) -> web.Response:
        role = self._role() or Role.LEADER
        results = await self.readiness()
        ready = all(r.problem is None for r in results)
        if role is Role.STANDBY:
            lines = ["standby" if ready else "not ready (standby)"]
            if request.query.get("role") == "leader":
                ready = False
        else:
            lines = ["ready" if ready else "not ready"]
        for result in results:
            if result.problem is None:
                lines.append(f"{result.name}: ok" + (f" ({result.detail})" if result.detail
                                                      else ""))
            else:
                lines.append(f"{result.name}: FAILED: {result.problem}")
        body = self._redactor("\n".join(lines) + "\n")
        return web.Response(text=body, status=200 if ready else 503,
                            headers={ROLE_HEADER: role.value})

    # ------------------------------------------------------------------ metrics

    async def _metrics_page(self, request: web.Request) -> web.Response:
        await self.refresh_metrics()
        return web.Response(body=self._metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE})

    async def refresh_metrics(self) -> None:
        """Read the stored state that scrape-time gauges describe."""
        now = self._clock.now()
        try:
            outbox = await asyncio.wait_for(self._store.outbox_stats(), PROBE_TIMEOUT)
            quota = (await asyncio.wait_for(self._quota(now), PROBE_TIMEOUT)
                     if self._quota else None)
        except Exception as exc:
            self._metrics.scrape_errors.inc()
            log.warning("metrics: cannot read stored state: %s", exc)
            return
        self._metrics.set_state(outbox=outbox, now=now,
                                interval_s=self._poller.interval.total_seconds(),
                                last_success=self._poller.last_success, quota=quota)

    # ------------------------------------------------------------------ push ingest

    async def _ingest(self, request: web.Request) -> web.Response:
        secret = self._webhook_secret()
        if secret is None:
            # Without a secret nothing could be verified: the endpoint does not exist.
            raise web.HTTPNotFound(text="push ingest is off (ALERTBOT_WEBHOOK_SECRET unset)\n")
        token = correlation_id.set(f"push-{uuid.uuid4().hex[:8]}")
        connection = self._guard.connection(request)
        try:
            status, summary = await self._accept(request, secret.get_secret_value())
        except IngestError as exc:
            self._metrics.ingest_result(exc.result)
            # A connection the server closed itself (over the cap) was counted when closed.
            if exc.result != "client_gone" or (connection is not None
                                               and not connection.refused):
                self._refusals.note(exc.result)
            message = self._redactor(exc.message)
            log.log(logging.INFO if exc.status in LOGGED_STATUSES else logging.DEBUG,
                    "push ingest rejected (%d): %s", exc.status, message)
            response = web.json_response({"error": message}, status=exc.status,
                                         headers=exc.headers)
            if exc.status not in LOGGED_STATUSES:
                # The body may be unread or the client hostile: do not wait for more.
                response.force_close()
            return response
        finally:
            correlation_id.reset(token)
        self._metrics.ingest_result("accepted")
        return web.json_response(summary, status=status)

    async def _accept(self, request: web.Request, secret: str) -> tuple[int, dict[str, Any]]:
        body = await read_limited(request, self.limits.read_timeout)
        now = self._wall()
        try:
            timestamp = verify(secret, request.headers.get(SIGNATURE_HEADER), body, now)
        except SignatureError as exc:
            result = "stale" if "tolerance" in str(exc) else "bad_signature"
            raise IngestError(401, str(exc), result) from None
        # The canonical signature, not the header: extra v1= entries must not make a replay
        # look new.
        if not self._replays.first_use(sign(secret, body, timestamp), timestamp, now):
            raise IngestError(401, "signature already used (replayed request)", "replayed")
        pushed = parse_body(body, self._clock.now())
        tokens = await resolve_tokens(pushed, self._store, self._lookup, self._resolutions)
        readings = to_readings(pushed, tokens)
        # Stored first, on every replica: only the leader's poller detects on pushed readings,
        # so a push here and a poll there cannot both detect one change.
        batch = await self._store.enqueue_pushed(
            readings, list(dict.fromkeys(tokens.values())), self._clock.now())
        report = None
        if self._role() is not Role.STANDBY:
            try:
                await self._poller.drain_pushed()
            except StoreError as exc:
                log.warning("push ingest: batch %d stored, detection deferred: %s", batch, exc)
            report = self._poller.push_report(batch)
        if report is None:
            # Stored for the leader (this replica stands by, or detection must be retried):
            # it detects within its next queue check.
            self._poller.pushed()
            log.info("push ingest: %d readings queued for the leader (batch %d)",
                     len(readings), batch)
            return 202, {"accepted": len(readings), "queued": True}
        log.info("push ingest: %d readings, %d changes, %d alerts queued", len(readings),
                 len(report.changes), report.outbox_rows)
        return 200, {"accepted": len(readings), "changes": len(report.changes),
                     "alerts_queued": report.outbox_rows,
                     "outcomes": _outcomes(report.outcomes)}


def _outcomes(outcomes: Mapping[Any, int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(outcomes.items(), key=lambda kv: str(kv[0]))}
