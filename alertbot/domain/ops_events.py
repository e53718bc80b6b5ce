"""Operator alerts: the bot's own problems as changes of kind OPS. Pure: no IO, no clock.

An ops event is stored as a Change so it travels the same durable, deduplicated and throttled
outbox as market alerts, but it is fanned out only to ALERTBOT_OPS_DESTINATION, never through
subscriptions. Field use: `from_label` holds the event code, `to_label` the one-line title,
`cause` the detail, `source_ts` when the occurrence began. Its change id hashes the code and the
occurrence key, so raising the same occurrence again (every poll, after a restart) adds nothing.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

from alertbot.domain.models import Change, Destination, Direction, Kind, Message, Token

OPS_TOKEN = Token(0, "ALERTBOT", "alertbot")
"""Stand-in token of ops changes; never added to the catalog."""
QUOTA_THRESHOLDS = (80, 100)
"""Percent of the monthly API quota that raise an alert, once per month each."""
STALE_INTERVALS = 3
"""Polls are stale when the last success is older than this many poll intervals."""
_DETAIL_LIMIT = 500


class OpsCode(enum.StrEnum):
    """What happened."""

    KEY_REJECTED = "key_rejected"
    KEY_ACCEPTED = "key_accepted"
    QUOTA = "quota"
    DESTINATION_PAUSED = "destination_paused"
    DEAD_LETTERED = "dead_lettered"
    POLLS_STALE = "polls_stale"
    POLLS_RECOVERED = "polls_recovered"
    JOB_FAILED = "job_failed"
    JOB_RECOVERED = "job_recovered"


@dataclass(frozen=True, slots=True)
class OpsEvent:
    """One occurrence of an operator-relevant condition."""

    code: OpsCode
    occurrence: str
    """What distinguishes this occurrence from earlier ones of the same code."""
    title: str
    detail: str
    since: datetime
    problem: bool = True
    """False for recoveries (shown as an upward change)."""


def ops_change_id(code: OpsCode, occurrence: str) -> str:
    """Stable identity of one occurrence (same shape as market change ids)."""
    raw = f"ops|{code.value}|{occurrence}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def ops_change(event: OpsEvent, now: datetime) -> Change:
    """The change that carries an ops event through the outbox."""
    return Change(
        change_id=ops_change_id(event.code, event.occurrence),
        token=OPS_TOKEN,
        kind=Kind.OPS,
        from_value=0.0,
        to_value=0.0 if event.problem else 1.0,
        direction=Direction.DOWN if event.problem else Direction.UP,
        source_ts=event.since,
        detected_at=now,
        from_label=event.code.value,
        to_label=event.title,
        cause=" ".join(event.detail.split())[:_DETAIL_LIMIT],
    )


def ops_headline(change: Change) -> str:
    """One-line summary of an ops change."""
    return f"alertbot: {change.to_label}"


def render_ops(change: Change) -> Message:
    """A message for one ops change (no token link: it is about the bot itself)."""
    lines = (change.cause,) if change.cause else ()
    return Message(
        title=ops_headline(change),
        lines=(*lines, f"since {change.source_ts:%Y-%m-%d %H:%M} UTC"),
        link="",
        direction=change.direction,
        timestamp=change.source_ts,
        changes=(change,),
    )


# ---------------------------------------------------------------------------- event builders


def key_rejected(message: str, since: datetime) -> OpsEvent:
    """Token Metrics refused the API key; polling cannot work until it is replaced."""
    return OpsEvent(OpsCode.KEY_REJECTED, since.isoformat(),
                    "Token Metrics rejected TOKENMETRICS_API_KEY", message, since)


def key_accepted(rejected_since: datetime, now: datetime) -> OpsEvent:
    """The key works again."""
    return OpsEvent(OpsCode.KEY_ACCEPTED, rejected_since.isoformat(),
                    "Token Metrics accepts TOKENMETRICS_API_KEY again",
                    f"rejected from {rejected_since:%Y-%m-%d %H:%M} UTC", now, problem=False)


def quota_crossed(used: int, limit: int, month: str, now: datetime) -> list[OpsEvent]:
    """An event for every threshold of the month's quota that `used` has reached."""
    if limit <= 0:
        return []
    events = []
    for percent in QUOTA_THRESHOLDS:
        if used * 100 >= limit * percent:
            events.append(OpsEvent(
                OpsCode.QUOTA, f"{month}|{percent}",
                f"Token Metrics quota {percent}% used in {month}",
                f"{used:,} of {limit:,} calls (TOKENMETRICS_MONTHLY_CALLS)"
                + ("; polling pauses until the month ends" if percent >= 100 else ""),
                now))
    return events


def destination_paused(destination: Destination, reason: str, at: datetime) -> OpsEvent:
    """Alerts to a destination stopped because it no longer accepts messages."""
    return OpsEvent(OpsCode.DESTINATION_PAUSED, f"{destination}|{at.isoformat()}",
                    f"alerts to {destination} paused", reason, at)


def dead_lettered(destination: Destination, reason: str, at: datetime) -> OpsEvent:
    """Alerts to a destination were given up; one event per destination and hour."""
    hour = at.strftime("%Y-%m-%dT%H")
    return OpsEvent(OpsCode.DEAD_LETTERED, f"{destination}|{hour}",
                    f"alerts to {destination} were dead-lettered", reason, at)


def polls_stale(since: datetime, last_success: datetime | None, last_error: str,
                now: datetime) -> OpsEvent:
    """No successful poll for STALE_INTERVALS intervals."""
    when = (f"last success {last_success:%Y-%m-%d %H:%M:%S} UTC" if last_success
            else "no successful poll since the start")
    detail = f"{when}; last error: {last_error}" if last_error else when
    return OpsEvent(OpsCode.POLLS_STALE, since.isoformat(), "polls are stale", detail, since)


def polls_recovered(stale_since: datetime, now: datetime) -> OpsEvent:
    """Polling works again."""
    return OpsEvent(OpsCode.POLLS_RECOVERED, stale_since.isoformat(), "polls succeed again",
                    f"stale from {stale_since:%Y-%m-%d %H:%M} UTC", now, problem=False)


def job_failed(name: str, since: datetime, error: str) -> OpsEvent:
    """A background job raised; one event per failure streak (keyed by its start)."""
    return OpsEvent(OpsCode.JOB_FAILED, f"{name}|{since.isoformat()}",
                    f"job {name} failed and is being restarted", error, since)


def job_recovered(name: str, failed_since: datetime, now: datetime) -> OpsEvent:
    """A job that kept failing runs cleanly again."""
    return OpsEvent(OpsCode.JOB_RECOVERED, f"{name}|{failed_since.isoformat()}",
                    f"job {name} runs again", f"failing from {failed_since:%Y-%m-%d %H:%M} UTC",
                    now, problem=False)


def is_stale(last_success: datetime | None, started: datetime, interval_s: float,
             now: datetime) -> bool:
    """Whether polling has not succeeded for STALE_INTERVALS intervals."""
    reference = last_success or started
    return (now - reference).total_seconds() > STALE_INTERVALS * interval_s
