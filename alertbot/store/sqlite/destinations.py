"""The Destinations role on SQLite: policies, addresses, labels, pause and re-keying."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Any

import aiosqlite

from alertbot.domain.models import Destination, Policy, QuietHours, Reason
from alertbot.domain.policy import describe_policy
from alertbot.domain.scheduled_digest import schedule_from_spec
from alertbot.ports.store import DestinationInfo, PolicyChange
from alertbot.store.sqlite.audit import write_audit, write_decisions
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.fencing import check_epoch
from alertbot.store.sqlite.rows import (
    DEAD,
    HELD,
    PENDING,
    QUEUED,
    decode_modes,
    dest_params,
    encode_modes,
    opt_dt,
    opt_ts,
    ts,
)


def _policy_columns(policy: Policy) -> tuple[Any, ...]:
    quiet = policy.quiet
    return (
        policy.max_alerts,
        policy.window.total_seconds(),
        quiet.start.strftime("%H:%M") if quiet else None,
        quiet.end.strftime("%H:%M") if quiet else None,
        quiet.tz if quiet else None,
        opt_ts(policy.mute_until),
        policy.settle.total_seconds(),
        encode_modes(policy.modes),
        int(policy.charts),
        policy.digest.spec if policy.digest else "",
        opt_ts(policy.digest.since) if policy.digest else None,
    )


def _policy_from(row: Sequence[Any]) -> Policy:
    """A policy from its columns, in `_policy_columns` order."""
    quiet = None
    if row[2] and row[3]:
        quiet = QuietHours(time.fromisoformat(row[2]), time.fromisoformat(row[3]),
                           row[4] or "UTC")
    return Policy(max_alerts=row[0], window=timedelta(seconds=row[1]), quiet=quiet,
                  mute_until=opt_dt(row[5]), settle=timedelta(seconds=row[6]),
                  modes=decode_modes(row[7]), charts=bool(row[8]),
                  digest=schedule_from_spec(row[9], opt_dt(row[10])))


async def insert_destination(db: aiosqlite.Connection, destination: Destination,
                             now: datetime, policy: Policy | None = None) -> None:
    """Create a destination unless it exists, inside the caller's transaction."""
    policy = policy or Policy()
    await db.execute(
        "INSERT INTO destinations (platform, chat_id, thread_id, max_alerts, window_s,"
        " quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes, charts, digest,"
        " digest_since, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (platform, chat_id, thread_id) DO NOTHING",
        (*dest_params(destination), *_policy_columns(policy), ts(now)),
    )


async def resume_destination(db: aiosqlite.Connection, destination: Destination,
                             now: datetime, actor: str) -> bool:
    """Unpause a destination inside the caller's transaction; returns whether it was paused."""
    cur = await db.execute(
        "UPDATE destinations SET paused_at = NULL, paused_reason = ''"
        " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NOT NULL",
        dest_params(destination),
    )
    if cur.rowcount > 0:
        await write_audit(db, destination, "resume", "", now, actor)
        return True
    return False


DESTINATION_SELECT = (
    "SELECT platform, chat_id, thread_id, max_alerts, window_s, quiet_start, quiet_end,"
    " quiet_tz, mute_until, settle_s, modes, charts, digest, digest_since, address,"
    " label, paused_reason, paused_at FROM destinations"
)


def destination_from(row: Sequence[Any]) -> DestinationInfo:
    """A row of DESTINATION_SELECT."""
    return DestinationInfo(Destination(row[0], row[1], row[2]), _policy_from(tuple(row[3:14])),
                           address=row[14], label=row[15], paused_reason=row[16],
                           paused_at=opt_dt(row[17]))


class SqliteDestinations(SqliteConnection):
    """Destinations with their policy and status."""

    async def destination(self, destination: Destination) -> DestinationInfo | None:
        """A destination's settings."""
        rows = await self._destination_rows(
            " WHERE platform = ? AND chat_id = ? AND thread_id = ?", dest_params(destination)
        )
        return rows[0] if rows else None

    async def destinations(self, *, platform: str | None = None, chat_id: str | None = None,
                           with_address: bool = False,
                           limit: int | None = None) -> list[DestinationInfo]:
        """Destinations matching the filters, in key order."""
        where: list[str] = []
        params: list[Any] = []
        if platform is not None:
            where.append("platform = ?")
            params.append(platform)
        if chat_id is not None:
            where.append("chat_id = ?")
            params.append(chat_id)
        if with_address:
            where.append("address IS NOT NULL AND address != ''")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        clause += " ORDER BY platform, chat_id, thread_id"
        if limit is not None:
            clause += " LIMIT ?"
            params.append(limit)
        return await self._destination_rows(clause, params)

    async def _destination_rows(self, clause: str, params: Sequence[Any]) -> list[DestinationInfo]:
        rows = await self._fetchall(DESTINATION_SELECT + clause, params)
        return [destination_from(row) for row in rows]

    async def ensure_destination(self, destination: Destination, now: datetime, *,
                                 address: str | None = None, label: str = "",
                                 policy: Policy | None = None) -> None:
        """Create a destination if missing; update address or label when given."""
        async with self._tx() as db:
            await insert_destination(db, destination, now, policy)
            if address is not None:
                await db.execute(
                    "UPDATE destinations SET address = ? WHERE platform = ? AND chat_id = ?"
                    " AND thread_id = ?", (address, *dest_params(destination)))
            if label:
                await db.execute(
                    "UPDATE destinations SET label = ? WHERE platform = ? AND chat_id = ?"
                    " AND thread_id = ?", (label, *dest_params(destination)))

    async def set_policy(self, destination: Destination, policy: Policy, now: datetime,
                         actor: str = "", detail: str = "") -> None:
        """Replace a destination's policy."""
        async with self._tx() as db:
            await insert_destination(db, destination, now)
            await db.execute(
                "UPDATE destinations SET max_alerts = ?, window_s = ?, quiet_start = ?,"
                " quiet_end = ?, quiet_tz = ?, mute_until = ?, settle_s = ?, modes = ?,"
                " charts = ?, digest = ?, digest_since = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                (*_policy_columns(policy), *dest_params(destination)),
            )
            await write_audit(db, destination, "policy",
                              detail or "; ".join(describe_policy(policy)), now, actor)

    async def change_policy(self, destination: Destination,
                            change: Callable[[Policy], Policy], now: datetime, actor: str = "",
                            detail: Callable[[Policy], str] | None = None) -> PolicyChange:
        """Read, change and write a policy in one IMMEDIATE transaction; release held rows."""
        params = dest_params(destination)
        async with self._tx() as db:
            async with db.execute(
                "SELECT max_alerts, window_s, quiet_start, quiet_end, quiet_tz, mute_until,"
                " settle_s, modes, charts, digest, digest_since FROM destinations"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?", params,
            ) as cur:
                row = await cur.fetchone()
            before = _policy_from(tuple(row)) if row is not None else Policy()
            after = change(before)
            if after == before:
                return PolicyChange(before, after)
            await insert_destination(db, destination, now)
            await db.execute(
                "UPDATE destinations SET max_alerts = ?, window_s = ?, quiet_start = ?,"
                " quiet_end = ?, quiet_tz = ?, mute_until = ?, settle_s = ?, modes = ?,"
                " charts = ?, digest = ?, digest_since = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                (*_policy_columns(after), *params),
            )
            released = await db.execute(
                f"UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE platform = ?"
                f" AND chat_id = ? AND thread_id = ? AND state = {HELD} AND msg_key IS NULL"
                " AND next_attempt_at > ?",
                (ts(now), ts(now), *params, ts(now)),
            )
            await write_audit(db, destination, "policy",
                              detail(after) if detail else "; ".join(describe_policy(after)),
                              now, actor)
        return PolicyChange(before, after, max(released.rowcount, 0))

    async def pause(self, destination: Destination, reason: str, now: datetime, *,
                    epoch: int | None = None) -> int:
        """Pause a destination and dead-letter its queued rows."""
        params = dest_params(destination)
        async with self._tx() as db:
            if epoch is not None:
                await check_epoch(db, epoch)
            cur = await db.execute(
                "UPDATE destinations SET paused_at = ?, paused_reason = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NULL",
                (ts(now), reason, *params),
            )
            if cur.rowcount < 1:
                return 0
            async with db.execute(
                "SELECT id, change_pk FROM outbox WHERE platform = ? AND chat_id = ?"
                f" AND thread_id = ? AND state IN {QUEUED}", params,
            ) as rows_cur:
                queued = list(await rows_cur.fetchall())
            await db.execute(
                f"UPDATE outbox SET state = {DEAD}, reason = ?, last_error = ?, updated_at = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                f" AND state IN {QUEUED}",
                (Reason.DESTINATION_GONE.value, reason, ts(now), *params),
            )
            await write_decisions(db, destination, [(r[0], r[1]) for r in queued],
                                  Reason.DESTINATION_GONE, reason, now)
            await write_audit(db, destination, "pause", reason, now, "alertbot")
        return len(queued)

    async def resume(self, destination: Destination, now: datetime, actor: str = "") -> bool:
        """Resume a paused destination."""
        async with self._tx() as db:
            return await resume_destination(db, destination, now, actor)

    async def rekey(self, old: Destination, new: Destination, now: datetime, *,
                    epoch: int | None = None) -> int:
        """Move a destination to a new id (a Telegram group that became a supergroup)."""
        old_p, new_p = dest_params(old), dest_params(new)
        async with self._tx() as db:
            if epoch is not None:
                await check_epoch(db, epoch)
            await db.execute(
                "INSERT INTO destinations (platform, chat_id, thread_id, max_alerts, window_s,"
                " quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes, charts, digest,"
                " digest_since, address, label, created_at)"
                " SELECT ?, ?, ?, max_alerts, window_s, quiet_start, quiet_end, quiet_tz,"
                " mute_until, settle_s, modes, charts, digest, digest_since,"
                " address, label, created_at"
                " FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " ON CONFLICT (platform, chat_id, thread_id) DO NOTHING",
                (*new_p, *old_p),
            )
            await db.execute(
                "INSERT INTO subscriptions (platform, chat_id, thread_id, token_id, kinds,"
                " created_at) SELECT ?, ?, ?, token_id, kinds, created_at FROM subscriptions"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " ON CONFLICT (platform, chat_id, thread_id, token_id)"
                " DO UPDATE SET kinds = subscriptions.kinds | excluded.kinds",
                (*new_p, *old_p),
            )
            await db.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                old_p,
            )
            # Rows the new id already has win; the rest move over and are sent again at once.
            await db.execute(
                "DELETE FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                f" AND state IN {QUEUED} AND change_pk IN (SELECT change_pk"
                " FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?)",
                (*old_p, *new_p),
            )
            cur = await db.execute(
                f"UPDATE outbox SET platform = ?, chat_id = ?, thread_id = ?, state = {PENDING},"
                " msg_key = NULL, next_attempt_at = ?, updated_at = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                f" AND state IN {QUEUED}",
                (*new_p, ts(now), ts(now), *old_p),
            )
            moved = max(cur.rowcount, 0)
            await db.execute(
                "UPDATE messages SET platform = ?, chat_id = ?, thread_id = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?", (*new_p, *old_p))
            # Periods already decided stay decided: the chat gets no second digest for them.
            await db.execute(
                "UPDATE OR IGNORE scheduled_digests SET platform = ?, chat_id = ?, thread_id = ?"
                " WHERE platform = ? AND chat_id = ? AND thread_id = ?", (*new_p, *old_p))
            await db.execute(
                "INSERT INTO token_mutes (platform, chat_id, thread_id, token_id, until,"
                " created_at, actor) SELECT ?, ?, ?, token_id, until, created_at, actor"
                " FROM token_mutes WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                " ON CONFLICT (platform, chat_id, thread_id, token_id) DO NOTHING",
                (*new_p, *old_p))
            await db.execute(
                "DELETE FROM token_mutes WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                old_p)
            await db.execute(
                "DELETE FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?",
                old_p,
            )
            await write_audit(db, new, "rekey", f"moved from {old} ({moved} queued alerts)",
                              now, "alertbot")
        return moved
