"""Changes -> platform-neutral message parts. Pure: notifiers do the escaping and formatting."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from alertbot.domain.models import Change, Kind, Message, Reading, Snapshot
from alertbot.domain.ops_events import render_ops
from alertbot.domain.scheduled_digest import render_scheduled_digest
from alertbot.domain.wording import ARROW, headline, movement, when

__all__ = ["ARROW", "headline", "movement", "render", "render_change", "render_digest",
           "render_grade_lookup", "render_signal_lookup", "when"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def render_change(change: Change) -> Message:
    """A message for one change."""
    if change.kind is Kind.OPS:
        return render_ops(change)
    if change.kind is Kind.SCHEDULED_DIGEST:
        return render_scheduled_digest(change)
    token = change.token
    return Message(
        title=headline(change),
        lines=(
            f"{token.name} ({token.symbol})",
            movement(change),
            f"as of {when(change.source_ts, change.kind)}",
        ),
        link=token.link,
        direction=change.direction,
        timestamp=change.source_ts,
        changes=(change,),
    )


def digest_line(change: Change) -> str:
    """One line of a digest."""
    return f"{ARROW[change.direction]} {headline(change)} · {movement(change)}"


def render_digest(changes: Sequence[Change]) -> Message:
    """ONE message for several held changes, oldest first."""
    ordered = tuple(sorted(changes, key=lambda c: (c.detected_at, c.source_ts)))
    directions = {c.direction for c in ordered}
    return Message(
        title=f"{len(ordered)} more changes",
        lines=tuple(digest_line(c) for c in ordered),
        link="",
        direction=directions.pop() if len(directions) == 1 else None,
        timestamp=max(c.detected_at for c in ordered),
        changes=ordered,
        is_digest=True,
    )


def render(changes: Sequence[Change]) -> Message:
    """A single alert for one change, a digest for several."""
    if len(changes) == 1:
        return render_change(changes[0])
    return render_digest(changes)


def _signal_line(entry: Reading | None, name: str) -> str:
    if entry is None:
        return f"{name}: no data"
    trend = "bullish" if entry.value > 0 else "bearish"
    fired = entry.fired_at or entry.source_ts
    return f"{name}: {trend} since {when(fired, entry.kind)}"


def render_signal_lookup(snapshot: Snapshot) -> Message:
    """Answer to /signal: latest daily and hourly signal, with when each fired."""
    lines = [
        _signal_line(snapshot.entries.get(Kind.SIGNAL), "Daily signal"),
        _signal_line(snapshot.entries.get(Kind.HOURLY), "Hourly signal"),
    ]
    lines += [f"Recent: {headline(c)} ({when(c.source_ts, c.kind)})"
              for c in snapshot.recent if c.kind in (Kind.SIGNAL, Kind.HOURLY)][:2]
    return _lookup_message(snapshot, "signals", lines)


def _lookup_message(snapshot: Snapshot, what: str, lines: list[str]) -> Message:
    token = snapshot.token
    return Message(title=f"{token.symbol} {what}",
                   lines=(f"{token.name} ({token.symbol})", *lines),
                   link=token.link, direction=None,
                   timestamp=max((e.source_ts for e in snapshot.entries.values()),
                                 default=_EPOCH),
                   changes=())


def _grade_line(entry: Reading | None, name: str, band_name: str) -> str:
    if entry is None:
        return f"{name}: no data"
    label = f", {entry.label}" if entry.label and entry.label != band_name else ""
    return f"{name}: {entry.value:.1f} ({band_name}{label})"


def render_grade_lookup(snapshot: Snapshot, band_name: Callable[[float], str]) -> Message:
    """Answer to /grade: TM and fundamental grade with bands and the recent change."""
    lines = []
    for kind, name in ((Kind.TM_GRADE, "TM grade"), (Kind.FUNDAMENTAL, "Fundamental grade")):
        entry = snapshot.entries.get(kind)
        lines.append(_grade_line(entry, name, band_name(entry.value) if entry else ""))
    lines += [f"Recent: {headline(c)} ({movement(c)}, {when(c.source_ts, c.kind)})"
              for c in snapshot.recent if c.kind in (Kind.TM_GRADE, Kind.FUNDAMENTAL)][:2]
    return _lookup_message(snapshot, "grades", lines)
