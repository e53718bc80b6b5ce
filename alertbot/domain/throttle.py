"""Per-destination throttle: which alerts to send now, hold, or suppress, and why.

Pure: no IO, no clock. The dispatcher feeds it a destination's due alerts and the times of
the messages it already sent, executes the plan, and stores every decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from alertbot.domain.models import ALL_KINDS, Change, Kind, Mode, Policy, QuietHours, Reason


@dataclass(frozen=True, slots=True)
class DueAlert:
    """One outbox row that needs a decision."""

    row_id: int
    change: Change
    held: bool = False
    """Already waiting in the destination's held group (rate or quiet hours)."""
    next_change: Change | None = None
    """The following change of the same token and kind for this destination (flap guard)."""
    next_row_id: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision about one row, with the reason stored and shown by /why."""

    row_id: int
    reason: Reason
    until: datetime | None = None
    silent: bool = False


@dataclass(slots=True)
class Plan:
    """What to do with a destination now."""

    singles: list[Decision] = field(default_factory=list)
    """Rows sent as messages of their own, in order."""
    digest: list[Decision] = field(default_factory=list)
    """Rows sent together as ONE digest message (never a single row)."""
    held: list[Decision] = field(default_factory=list)
    deferred: list[Decision] = field(default_factory=list)
    suppressed: list[Decision] = field(default_factory=list)

    @property
    def digest_silent(self) -> bool:
        """A digest is silent only when every alert in it is."""
        return bool(self.digest) and all(d.silent for d in self.digest)

    @property
    def wake_at(self) -> datetime | None:
        """Earliest time a held or deferred row needs another look."""
        times = [d.until for d in (*self.held, *self.deferred) if d.until is not None]
        return min(times, default=None)

    @property
    def messages(self) -> int:
        """Messages this plan sends (a digest counts as one)."""
        return len(self.singles) + (1 if self.digest else 0)


def quiet_end(quiet: QuietHours | None, now: datetime) -> datetime | None:
    """End of the quiet period containing `now`, or None when not in quiet hours."""
    if quiet is None or quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.tz)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if quiet.start < quiet.end:
        active = quiet.start <= clock < quiet.end
        end_day = local.date()
    else:  # wraps past midnight, e.g. 22:00-07:00
        active = clock >= quiet.start or clock < quiet.end
        end_day = local.date() if clock < quiet.end else local.date() + timedelta(days=1)
    if not active:
        return None
    end_local = datetime.combine(end_day, quiet.end, tzinfo=zone)
    return end_local.astimezone(UTC)


def next_free_slot(sent: Sequence[datetime], policy: Policy, now: datetime) -> datetime | None:
    """When the rate window next has room, or None when it has room now."""
    recent = sorted(t for t in sent if t > now - policy.window)
    if len(recent) < policy.max_alerts:
        return None
    # Windows are half-open (t - window, t]: the slot frees once the max-th newest send leaves.
    return recent[-policy.max_alerts] + policy.window


def free_slots(sent: Sequence[datetime], policy: Policy, now: datetime) -> int:
    """Messages the destination may still receive in the current window."""
    recent = sum(1 for t in sent if t > now - policy.window)
    return max(0, policy.max_alerts - recent)


def plan(policy: Policy, due: Sequence[DueAlert], sent: Sequence[datetime],
         now: datetime, muted_tokens: Mapping[int, datetime] | None = None) -> Plan:
    """Decide every due alert of one destination.

    `muted_tokens` maps token ids muted for this destination to when each mute ends.
    """
    token_mutes = muted_tokens or {}
    result = Plan()
    candidates: list[DueAlert] = []
    cancelled: set[int] = set()
    for alert in sorted(due, key=lambda a: (a.change.detected_at, a.row_id)):
        if alert.row_id in cancelled:
            continue
        verdict = _filter(policy, alert, now, token_mutes)
        if verdict is None:
            candidates.append(alert)
        elif verdict.reason is Reason.SETTLING:
            result.deferred.append(verdict)
        else:
            result.suppressed.append(verdict)
            if verdict.reason is Reason.FLAP_CANCELLED and alert.next_row_id is not None:
                cancelled.add(alert.next_row_id)
                result.suppressed.append(Decision(alert.next_row_id, Reason.FLAP_CANCELLED))
    if candidates:
        _schedule(policy, candidates, sent, now, result)
    return result


def _filter(policy: Policy, alert: DueAlert, now: datetime,
            token_mutes: Mapping[int, datetime]) -> Decision | None:
    """Per-alert checks that do not depend on the other alerts; None = may be sent."""
    change = alert.change
    if change.kind is Kind.SCHEDULED_DIGEST:
        # A scheduled digest has no kind mode or flap guard; a mute silences it like alerts.
        if policy.mute_until is not None and now < policy.mute_until:
            return Decision(alert.row_id, Reason.MUTED, until=policy.mute_until)
        return None
    mode = policy.mode(change.kind)
    if mode is Mode.OFF:
        return Decision(alert.row_id, Reason.KIND_OFF)
    # Kind off and mutes before digest_only: what they suppress stays out of the scheduled
    # digest too (it leaves out kind_off, muted and token_muted, keeps digest_only).
    if policy.mute_until is not None and now < policy.mute_until:
        return Decision(alert.row_id, Reason.MUTED, until=policy.mute_until)
    token_until = token_mutes.get(change.token.token_id)
    if token_until is not None and now < token_until:
        return Decision(alert.row_id, Reason.TOKEN_MUTED, until=token_until)
    if policy.digest_only and change.kind in ALL_KINDS:
        return Decision(alert.row_id, Reason.DIGEST_ONLY)
    if policy.settle > timedelta(0) and not alert.held:
        settled_at = change.detected_at + policy.settle
        if now < settled_at:
            return Decision(alert.row_id, Reason.SETTLING, until=settled_at)
        following = alert.next_change
        if (
            following is not None
            and following.detected_at - change.detected_at <= policy.settle
            and following.reverts(change)
        ):
            return Decision(alert.row_id, Reason.FLAP_CANCELLED)
    return None


def _schedule(policy: Policy, candidates: list[DueAlert], sent: Sequence[datetime],
              now: datetime, result: Plan) -> None:
    silent = {a.row_id: policy.mode(a.change.kind) is Mode.SILENT for a in candidates}

    def decide(alert: DueAlert, reason: Reason, until: datetime | None = None) -> Decision:
        return Decision(alert.row_id, reason, until=until, silent=silent[alert.row_id])

    quiet_until = quiet_end(policy.quiet, now)
    if quiet_until is not None:
        result.held.extend(decide(a, Reason.HELD_QUIET, quiet_until) for a in candidates)
        return
    # A scheduled digest is always a message of its own, never bundled into a throttle
    # digest. It goes first and uses a slot of the budget like any message; without a free
    # slot it waits for the next one.
    scheduled = [a for a in candidates if a.change.kind is Kind.SCHEDULED_DIGEST]
    if scheduled:
        candidates = [a for a in candidates if a.change.kind is not Kind.SCHEDULED_DIGEST]
        now_sent = scheduled[:free_slots(sent, policy, now)]
        result.singles.extend(decide(a, Reason.SENT) for a in now_sent)
        sent = [*sent, *([now] * len(now_sent))]
        if len(now_sent) < len(scheduled):
            free_at = next_free_slot(sent, policy, now) or now
            result.held.extend(decide(a, Reason.HELD_RATE, free_at)
                               for a in scheduled[len(now_sent):])
        if not candidates:
            return
    slots = free_slots(sent, policy, now)
    if slots == 0:
        until = next_free_slot(sent, policy, now)
        result.held.extend(decide(a, Reason.HELD_RATE, until) for a in candidates)
        return
    if any(a.held for a in candidates):
        # Held alerts wait together; anything newer joins them so order is kept.
        group = candidates
    elif len(candidates) <= slots:
        result.singles.extend(decide(a, Reason.SENT) for a in candidates)
        return
    else:
        # Over budget: individual alerts while more than one slot is left, and the
        # last slot carries everything else as one digest instead of waiting a window.
        result.singles.extend(decide(a, Reason.SENT) for a in candidates[: slots - 1])
        group = candidates[slots - 1 :]
    if len(group) == 1:
        result.singles.append(decide(group[0], Reason.SENT))
    else:
        result.digest.extend(decide(a, Reason.DIGEST) for a in group)
