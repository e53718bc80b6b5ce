"""Conversions between domain values and SQLite columns, shared by the role modules.

Outbox states are spelled as SQL literals here only, from OutboxState: queries interpolate
these constants and never type a state themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from alertbot.domain.models import Change, Destination, Direction, Kind, Mode, Reading, Token
from alertbot.ports.store import FINISHED_STATES, QUEUED_STATES, OutboxState


def _literal(state: OutboxState) -> str:
    return f"'{state.value}'"


def _in(*states: OutboxState) -> str:
    return "(" + ", ".join(_literal(s) for s in states) + ")"


PENDING = _literal(OutboxState.PENDING)
HELD = _literal(OutboxState.HELD)
SENDING = _literal(OutboxState.SENDING)
SENT = _literal(OutboxState.SENT)
SUPPRESSED = _literal(OutboxState.SUPPRESSED)
DEAD = _literal(OutboxState.DEAD)
QUEUED = _in(*QUEUED_STATES)
"""Rows still to be delivered."""
UNDECIDED = _in(OutboxState.PENDING, OutboxState.HELD)
"""Rows the throttle may still decide (when they have no message key yet)."""
IN_FLIGHT = _in(OutboxState.PENDING, OutboxState.SENDING)
"""Committed rows whose send outcome is still to be recorded."""
FINISHED = _in(*FINISHED_STATES)


def change_columns(alias: str) -> str:
    """The columns `change_from_row` reads, from `changes <alias>`."""
    return ", ".join(f"{alias}.{column}" for column in (
        "id", "change_id", "token_id", "symbol", "name", "slug", "kind", "from_value",
        "to_value", "from_label", "to_label", "direction", "cause", "source_ts", "detected_at"))


CHANGE_COLUMNS = change_columns("c")
"""The columns `change_from_row` reads, from `changes c`."""


def ts(value: datetime) -> float:
    """A time as stored (UNIX seconds)."""
    return value.timestamp()


def dt(value: float) -> datetime:
    """A stored time as a UTC datetime."""
    return datetime.fromtimestamp(value, UTC)


def opt_dt(value: float | None) -> datetime | None:
    """`dt`, passing None through."""
    return None if value is None else dt(value)


def opt_ts(value: datetime | None) -> float | None:
    """`ts`, passing None through."""
    return None if value is None else ts(value)


def dest_params(destination: Destination) -> tuple[str, str, str]:
    """A destination's key columns (platform, chat_id, thread_id)."""
    return destination.platform, destination.chat_id, destination.thread_id


def change_from_row(row: Sequence[Any], offset: int = 1) -> Change:
    """The change in CHANGE_COLUMNS order starting after `c.id` at `offset`."""
    (change_id, token_id, symbol, name, slug, kind, from_value, to_value, from_label,
     to_label, direction, cause, source_ts, detected_at) = row[offset:offset + 14]
    return Change(
        change_id=change_id,
        token=Token(token_id, symbol, name, slug),
        kind=Kind(kind),
        from_value=from_value,
        to_value=to_value,
        direction=Direction(direction),
        source_ts=dt(source_ts),
        detected_at=dt(detected_at),
        from_label=from_label,
        to_label=to_label,
        cause=cause,
    )


def encode_modes(modes: Mapping[Kind, Mode]) -> str:
    """Per-kind modes as "kind=mode,…" (only the ones that are not `on`)."""
    return ",".join(f"{k.value}={m.value}" for k, m in sorted(modes.items()) if m is not Mode.ON)


def decode_modes(text: str) -> dict[Kind, Mode]:
    """Inverse of encode_modes."""
    modes: dict[Kind, Mode] = {}
    for part in filter(None, text.split(",")):
        kind, _, mode = part.partition("=")
        modes[Kind(kind)] = Mode(mode)
    return modes


def chunks(items: Sequence[int], size: int) -> Iterable[list[int]]:
    """`items` in lists of at most `size` (SQLite limits the parameters of one statement)."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def encode_pushed(readings: Sequence[Reading], tokens: Sequence[Token]) -> str:
    """A push queue payload: readings and catalog tokens as JSON, times exact to the µs."""
    def token(t: Token) -> list[Any]:
        return [t.token_id, t.symbol, t.name, t.slug]
    return json.dumps({
        "tokens": [token(t) for t in tokens],
        "readings": [[token(r.token), r.kind.value, r.value, r.source_ts.isoformat(), r.label,
                      None if r.fired_at is None else r.fired_at.isoformat(), r.source]
                     for r in readings],
    }, separators=(",", ":"))


def decode_pushed(payload: str) -> tuple[tuple[Reading, ...], tuple[Token, ...]]:
    """The readings and tokens of `encode_pushed`."""
    data = json.loads(payload)
    readings = tuple(
        Reading(Token(*token), Kind(kind), float(value), datetime.fromisoformat(source_ts),
                label=label, fired_at=None if fired is None else datetime.fromisoformat(fired),
                source=source)
        for token, kind, value, source_ts, label, fired, source in data["readings"])
    return readings, tuple(Token(*token) for token in data["tokens"])
