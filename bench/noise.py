"""A noisy signal history through our throttle and flap guard, against "send every change".

Pure simulation: the bundled demo data (42 days, 20 tokens, hourly signals) is polled every
hour of its own timeline through the real parsers and detect(); one channel subscribed to
every token and kind then gets its messages planned by the real throttle.plan() with time as
a parameter, the way a dispatcher lane loads due rows, plans, sends and plans again.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alertbot.domain.detect import Rules, detect
from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Kind,
    Policy,
    Reading,
    Reason,
    Token,
    TrackedState,
)
from alertbot.domain.parsing import parse_timestamp
from alertbot.domain.throttle import DueAlert, plan
from alertbot.sources.replay import ReplaySource, load_demo_data

POLL = timedelta(hours=1)
_WALL0 = datetime(2030, 1, 1, tzinfo=UTC)


async def demo_changes() -> tuple[list[Change], float]:
    """Every change the demo data yields when polled hourly, and the days it spans."""
    data = load_demo_data()
    source = ReplaySource(data, speed=1.0, cursor=0.0, started_wall=_WALL0)
    start, end = parse_timestamp(data["start"]), parse_timestamp(data["end"])
    hours = int((end - start) / POLL)
    ids = [t.token_id for t in await source.universe()]
    rules = Rules()
    states: dict[tuple[int, Kind], TrackedState] = {}
    changes: list[Change] = []
    for hour in range(hours + 1):
        batch = await source.fetch(ids, ALL_KINDS, _WALL0 + hour * POLL)
        story_now = start + hour * POLL
        for reading in sorted(batch.readings, key=lambda r: r.source_ts):
            key = (reading.token.token_id, reading.kind)
            found = detect(states.get(key), reading, rules, story_now)
            if found.state is not None:
                states[key] = found.state
            changes.extend(found.changes)
    return changes, hours / 24


@dataclass(slots=True)
class _Row:
    """An outbox row of the simulated channel."""

    row_id: int
    change: Change
    due_at: datetime
    held: bool = False


@dataclass(slots=True)
class Outcome:
    """What one channel received over the replay."""

    messages: int = 0
    digests: int = 0
    alerts_sent: int = 0
    suppressed: dict[str, int] = field(default_factory=dict)
    delays_s: list[float] = field(default_factory=list)
    """Detection to message, per alert sent."""
    busiest_hour: int = 0


def simulate(changes: Sequence[Change], policy: Policy) -> Outcome:
    """Plan one channel's messages with the real throttle, stepping from event to event."""
    arrivals = sorted(changes, key=lambda c: c.detected_at)
    series: dict[tuple[int, Kind], list[_Row]] = {}
    open_rows: dict[int, _Row] = {}
    sent: list[datetime] = []
    out = Outcome()
    next_arrival = 0
    now = arrivals[0].detected_at if arrivals else _WALL0
    while True:
        while next_arrival < len(arrivals) and arrivals[next_arrival].detected_at <= now:
            change = arrivals[next_arrival]
            row = _Row(next_arrival, change, change.detected_at)
            open_rows[row.row_id] = row
            series.setdefault((change.token.token_id, change.kind), []).append(row)
            next_arrival += 1
        _dispatch(policy, open_rows, series, sent, now, out)
        upcoming = [r.due_at for r in open_rows.values() if r.due_at > now]
        if next_arrival < len(arrivals):
            upcoming.append(arrivals[next_arrival].detected_at)
        if not upcoming:
            break
        now = min(upcoming)
    out.busiest_hour = _busiest(sent, timedelta(hours=1))
    return out


def _dispatch(policy: Policy, open_rows: dict[int, _Row], series: dict[tuple[int, Kind],
              list[_Row]], sent: list[datetime], now: datetime, out: Outcome) -> None:
    """One lane visit: plan and send until a plan sends nothing (as Dispatcher._lane does)."""
    while True:
        due = _due(open_rows, series, now)
        if not due:
            return
        decided = plan(policy, due, [t for t in sent if t > now - policy.window], now)
        for decision in decided.suppressed:
            if open_rows.pop(decision.row_id, None) is not None:
                key = decision.reason.value
                out.suppressed[key] = out.suppressed.get(key, 0) + 1
        for decision in decided.held:
            row = open_rows[decision.row_id]
            row.held, row.due_at = True, decision.until or now
        for decision in decided.deferred:
            open_rows[decision.row_id].due_at = decision.until or now
        messages = [[d] for d in decided.singles] + ([decided.digest] if decided.digest else [])
        for message in messages:
            sent.append(now)
            out.messages += 1
            out.digests += len(message) > 1
            for decision in message:
                row = open_rows.pop(decision.row_id)
                out.alerts_sent += 1
                out.delays_s.append((now - row.change.detected_at).total_seconds())
        if not messages:
            return


def _due(open_rows: dict[int, _Row], series: dict[tuple[int, Kind], list[_Row]],
         now: datetime) -> list[DueAlert]:
    """Due pending rows plus the whole held group, like SqliteStore.due_alerts."""
    pending = [r for r in open_rows.values() if not r.held and r.due_at <= now]
    held = [r for r in open_rows.values() if r.held]
    if not pending and not any(r.due_at <= now for r in held):
        return []
    alerts = []
    for row in sorted([*pending, *held], key=lambda r: (r.change.detected_at, r.row_id)):
        rows = series[(row.change.token.token_id, row.change.kind)]
        following = next((r for r in rows if r.change.detected_at > row.change.detected_at
                          or (r.change.detected_at == row.change.detected_at
                              and r.row_id > row.row_id)), None)
        alerts.append(DueAlert(row.row_id, row.change, held=row.held,
                               next_change=following.change if following else None,
                               next_row_id=following.row_id if following else None))
    return alerts


def _busiest(times: Sequence[datetime], window: timedelta) -> int:
    best = start = 0
    ordered = sorted(times)
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def median_delay_min(outcome: Outcome) -> float:
    """Median minutes from detection to the message that carried an alert."""
    return statistics.median(outcome.delays_s) / 60 if outcome.delays_s else 0.0


FLAP_CANCELLED = Reason.FLAP_CANCELLED.value


def flapping_changes(days: int = 30, tokens: int = 20, flip_chance: float = 0.2,
                     seed: int = 8) -> tuple[list[Change], float]:
    """A generated worst case: every hour each token's hourly signal flips with some chance."""
    rng = random.Random(seed)
    rules = Rules()
    start = datetime(2026, 9, 1, tzinfo=UTC)
    states: dict[int, TrackedState] = {}
    changes: list[Change] = []
    catalog = [Token(9000 + i, f"FLAP{i}", f"Flapper {i}") for i in range(tokens)]
    trend = {t.token_id: 1.0 for t in catalog}
    for hour in range(days * 24 + 1):
        now = start + hour * POLL
        for tok in catalog:
            if hour and rng.random() < flip_chance:
                trend[tok.token_id] *= -1
            found = detect(states.get(tok.token_id),
                           Reading(tok, Kind.HOURLY, trend[tok.token_id], now), rules, now)
            if found.state is not None:
                states[tok.token_id] = found.state
            changes.extend(found.changes)
    return changes, float(days)
