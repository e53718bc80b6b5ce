"""A throttle plan written to the outbox: one algorithm and one set of statements for both
backends (PostgreSQL converts the `?` placeholders and locks the rows it reads to change)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from alertbot.domain.models import Reason
from alertbot.domain.throttle import Plan
from alertbot.ports.store import OutboxState, PlanKeys
from alertbot.store.sqlite.rows import PENDING, SUPPRESSED, UNDECIDED, ts

FetchOne = Callable[[str, Sequence[Any]], Awaitable[Sequence[Any] | None]]
"""Run one statement (`?` placeholders) and return its first row, if any."""
RecordDecisions = Callable[[Sequence[tuple[int, int]], Reason, str], Awaitable[None]]
"""Record one decision per (outbox id, change pk) with a reason and a detail."""


async def write_plan(one: FetchOne, record: RecordDecisions, plan: Plan, keys: PlanKeys,
                     now: datetime, *, lock: str = "") -> Counter[Reason]:
    """Store a plan's decisions inside the caller's transaction; the new ones by reason.

    Only rows still undecided change, so a plan applied twice records its decisions once.
    `lock` ends the read of a row about to change (" FOR UPDATE" where rows can be locked).
    """
    stamp = ts(now)
    recorded: Counter[Reason] = Counter()
    for decision in plan.suppressed:
        hit = await one(
            f"UPDATE outbox SET state = {SUPPRESSED}, reason = ?, updated_at = ?"
            f" WHERE id = ? AND state IN {UNDECIDED} AND msg_key IS NULL RETURNING change_pk",
            (decision.reason.value, stamp, decision.row_id))
        if hit:
            detail = (f"until {decision.until:%Y-%m-%d %H:%M} UTC"
                      if decision.reason is Reason.TOKEN_MUTED and decision.until else "")
            await record([(decision.row_id, hit[0])], decision.reason, detail)
            recorded[decision.reason] += 1
    waits = ([(d, OutboxState.HELD) for d in plan.held]
             + [(d, OutboxState.PENDING) for d in plan.deferred])
    for decision, state in waits:
        until = decision.until or now
        hit = await one(
            "SELECT change_pk, reason FROM outbox WHERE id = ? AND msg_key IS NULL"
            f" AND state IN {UNDECIDED}{lock}", (decision.row_id,))
        if hit is None:
            continue
        await one("UPDATE outbox SET state = ?, reason = ?, next_attempt_at = ?, updated_at = ?"
                  " WHERE id = ?",
                  (state.value, decision.reason.value, ts(until), stamp, decision.row_id))
        if hit[1] != decision.reason.value:
            await record([(decision.row_id, hit[0])], decision.reason,
                         f"until {until:%Y-%m-%d %H:%M:%S} UTC")
            recorded[decision.reason] += 1
    commits = [(d, keys.singles[d.row_id], d.silent) for d in plan.singles]
    if plan.digest:
        assert keys.digest is not None, "a digest needs a key"
        commits += [(d, keys.digest, plan.digest_silent) for d in plan.digest]
    for decision, key, silent in commits:
        hit = await one(
            f"UPDATE outbox SET state = {PENDING}, reason = ?, msg_key = ?, silent = ?,"
            " next_attempt_at = ?, updated_at = ? WHERE id = ? AND msg_key IS NULL"
            f" AND state IN {UNDECIDED} RETURNING change_pk",
            (decision.reason.value, key, int(silent), stamp, stamp, decision.row_id))
        if hit:
            await record([(decision.row_id, hit[0])], decision.reason, key)
            recorded[decision.reason] += 1
    return recorded
