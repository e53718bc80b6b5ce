"""Prometheus metrics on a dedicated registry, fed by the poller and dispatcher hooks.

Counters move as events happen; gauges that describe stored state (outbox depth, the API
quota, the age of the last successful poll) are read from the store when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from alertbot import __version__
from alertbot.domain.models import Change, Destination, Reason
from alertbot.ports.observers import DispatchObserver, JobObserver, PollObserver, PollReport
from alertbot.ports.store import OutboxState, OutboxStats

CONTENT_TYPE = CONTENT_TYPE_LATEST
OUTBOX_STATES: tuple[str, ...] = tuple(OutboxState)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                   900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)
"""Change detected -> platform accepted: milliseconds when sent at once, hours when held."""
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """API calls spent this month against the plan's monthly quota."""

    used: int
    limit: int
    month: str


QuotaProbe = Callable[[datetime], Awaitable[QuotaUsage | None]]


class Metrics(PollObserver, DispatchObserver, JobObserver):
    """Every metric alertbot exports; also the observer that feeds them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.info = Info("alertbot_build", "alertbot version", registry=r)
        self.info.info({"version": __version__})
        self.poll_cycles = Counter("alertbot_poll_cycles", "Poll cycles by result (ok, failed)",
                                   ["result"], registry=r)
        self.poll_duration = Histogram("alertbot_poll_duration_seconds",
                                       "Duration of poll cycles", buckets=POLL_BUCKETS,
                                       registry=r)
        self.poll_interval = Gauge("alertbot_poll_interval_seconds",
                                   "Configured seconds between poll cycles", registry=r)
        self.last_success = Gauge("alertbot_last_successful_poll_timestamp_seconds",
                                  "Unix time of the last successful poll (0 = none yet)",
                                  registry=r)
        self.api_calls = Counter("alertbot_tokenmetrics_api_calls",
                                 "Token Metrics API requests by endpoint and HTTP status "
                                 "(timeout and error when no status arrived)",
                                 ["endpoint", "status"], registry=r)
        self.quota_used = Gauge("alertbot_tokenmetrics_quota_used_calls",
                                "Token Metrics API calls counted in the current month",
                                registry=r)
        self.quota_limit = Gauge("alertbot_tokenmetrics_quota_limit_calls",
                                 "Monthly Token Metrics call quota (TOKENMETRICS_MONTHLY_CALLS)",
                                 registry=r)
        self.changes = Counter("alertbot_changes", "Changes detected, by kind", ["kind"],
                               registry=r)
        self.decisions = Counter("alertbot_decisions", "Throttle decisions stored, by reason",
                                 ["reason"], registry=r)
        self.deliveries = Counter("alertbot_deliveries",
                                  "Send attempts by platform and outcome (sent, retry, "
                                  "rate_limited, dead, destination_gone, rekeyed)",
                                  ["platform", "outcome"], registry=r)
        self.latency = Histogram("alertbot_delivery_latency_seconds",
                                 "Seconds from change detected to platform accepted",
                                 ["platform"], buckets=LATENCY_BUCKETS, registry=r)
        self.paused_destinations = Counter(
            "alertbot_destinations_paused",
            "Destinations paused because they no longer accept messages", ["platform"],
            registry=r)
        self.outbox = Gauge("alertbot_outbox_rows", "Outbox rows by state", ["state"],
                            registry=r)
        self.oldest_pending = Gauge("alertbot_outbox_oldest_pending_age_seconds",
                                    "Age of the oldest undelivered outbox row (0 = none)",
                                    registry=r)
        self.ingest = Counter("alertbot_ingest_requests",
                              "Push ingest requests by result", ["result"], registry=r)
        self.telegram_updates = Counter("alertbot_telegram_webhook_updates",
                                        "Telegram webhook requests by result (accepted, "
                                        "duplicate, bad_secret, malformed, …)", ["result"],
                                        registry=r)
        self.http_refusals = Counter("alertbot_http_refused",
                                     "HTTP requests and connections refused, by reason "
                                     "(timeout, over_capacity, too_large, bad_request, …)",
                                     ["reason"], registry=r)
        self.ops_events = Counter("alertbot_ops_events",
                                  "Operator alerts raised, by code", ["code"], registry=r)
        self.job_restarts = Counter("alertbot_job_restarts",
                                    "Background job failures the supervisor restarted, by job",
                                    ["job"], registry=r)
        self.scrape_errors = Counter("alertbot_metrics_scrape_errors",
                                     "Scrapes where stored state could not be read",
                                     registry=r)
        for state in OUTBOX_STATES:
            self.outbox.labels(state=state)
        for result in ("ok", "failed"):
            self.poll_cycles.labels(result=result)

    # ------------------------------------------------------------------ poller hooks

    def poll_finished(self, report: PollReport, seconds: float, ok: bool) -> None:
        """Count a cycle, its duration and its changes."""
        self.poll_cycles.labels(result="ok" if ok else "failed").inc()
        self.poll_duration.observe(seconds)
        self.count_changes(report.changes)

    def count_changes(self, changes: Iterable[Change]) -> None:
        """Count newly committed changes (from polls and push ingest)."""
        for change in changes:
            self.changes.labels(kind=change.kind.value).inc()

    # ------------------------------------------------------------------ dispatcher hooks

    def decided(self, destination: Destination, reason: Reason, count: int) -> None:
        """Count throttle decisions."""
        self.decisions.labels(reason=reason.value).inc(count)

    def delivered(self, destination: Destination, changes: Sequence[Change],
                  now: datetime) -> None:
        """Count a delivery and observe each change's latency."""
        self.deliveries.labels(platform=destination.platform, outcome=Reason.SENT).inc()
        histogram = self.latency.labels(platform=destination.platform)
        for change in changes:
            histogram.observe(max(0.0, (now - change.detected_at).total_seconds()))

    def failed(self, destination: Destination, outcome: Reason) -> None:
        """Count a failed send by outcome."""
        self.deliveries.labels(platform=destination.platform, outcome=outcome).inc()

    def paused(self, destination: Destination, reason: str) -> None:
        """Count a paused destination."""
        self.paused_destinations.labels(platform=destination.platform).inc()

    # ------------------------------------------------------------------ other sources

    def api_call(self, endpoint: str, status: str) -> None:
        """One Token Metrics request finished (status code, `timeout` or `error`)."""
        self.api_calls.labels(endpoint=endpoint, status=status).inc()

    def ops_event(self, code: str) -> None:
        """An operator alert was raised."""
        self.ops_events.labels(code=code).inc()

    def job_failed(self, name: str, since: datetime, error: str, restarts: int) -> None:
        """A supervised job raised and will be restarted."""
        self.job_restarts.labels(job=name).inc()

    def ingest_result(self, result: str) -> None:
        """A push ingest request ended with this result."""
        self.ingest.labels(result=result).inc()

    def telegram_update(self, result: str) -> None:
        """A Telegram webhook request ended with this result."""
        self.telegram_updates.labels(result=result).inc()

    def http_refused(self, reason: str) -> None:
        """The HTTP server refused a request or closed a connection for this reason."""
        self.http_refusals.labels(reason=reason).inc()

    # ------------------------------------------------------------------ scrape

    def set_state(self, *, outbox: OutboxStats, now: datetime, interval_s: float,
                  last_success: datetime | None, quota: QuotaUsage | None) -> None:
        """Gauges that describe stored state at scrape time."""
        for state in OUTBOX_STATES:
            self.outbox.labels(state=state).set(outbox.by_state.get(state, 0))
        for state, count in outbox.by_state.items():
            if state not in OUTBOX_STATES:
                self.outbox.labels(state=state).set(count)
        oldest = outbox.oldest_pending
        self.oldest_pending.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        self.poll_interval.set(interval_s)
        self.last_success.set(last_success.timestamp() if last_success else 0.0)
        if quota is not None:
            self.quota_used.set(quota.used)
            self.quota_limit.set(quota.limit)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
