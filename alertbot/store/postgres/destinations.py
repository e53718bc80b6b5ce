"""The Destinations role on PostgreSQL: policies, addresses, labels, pause and re-keying."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from alertbot.domain.models import Destination, Policy, Reason
from alertbot.domain.policy import describe_policy
from alertbot.ports.store import DestinationInfo, PolicyChange
from alertbot.store.postgres.audit import write_audit, write_decisions
from alertbot.store.postgres.connection import PostgresConnection, lock_key, pg, status_count
from alertbot.store.postgres.fencing import check_epoch
from alertbot.store.sqlite.destinations import _policy_columns, _policy_from
from alertbot.store.sqlite.rows import DEAD, HELD, PENDING, QUEUED, dest_params, opt_dt, ts

_UPDATE_POLICY = pg(
    "UPDATE destinations SET max_alerts = ?, window_s = ?, quiet_start = ?,"
    " quiet_end = ?, quiet_tz = ?, mute_until = ?, settle_s = ?, modes = ?,"
    " charts = ?, digest = ?, digest_since = ?"
    " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
)


async def lock_destination(conn: asyncpg.Connection, destination: Destination) -> None:
    """Serialise read-modify-write transactions on one destination (across processes)."""
    await lock_key(conn, "destination", *dest_params(destination))


async def insert_destination(conn: asyncpg.Connection, destination: Destination,
                             now: datetime, policy: Policy | None = None) -> None:
    """Create a destination unless it exists, inside the caller's transaction."""
    policy = policy or Policy()
    await conn.execute(
        pg("INSERT INTO destinations (platform, chat_id, thread_id, max_alerts, window_s,"
           " quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes, charts, digest,"
           " digest_since, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
           " ON CONFLICT (platform, chat_id, thread_id) DO NOTHING"),
        *dest_params(destination), *_policy_columns(policy), ts(now),
    )


async def resume_destination(conn: asyncpg.Connection, destination: Destination,
                             now: datetime, actor: str) -> bool:
    """Unpause a destination inside the caller's transaction; returns whether it was paused."""
    status = await conn.execute(
        pg("UPDATE destinations SET paused_at = NULL, paused_reason = ''"
           " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NOT NULL"),
        *dest_params(destination),
    )
    if status_count(status) > 0:
        await write_audit(conn, destination, "resume", "", now, actor)
        return True
    return False


class PostgresDestinations(PostgresConnection):
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
            where.append("address IS NOT NULL AND address <> ''")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        clause += " ORDER BY platform, chat_id, thread_id"
        if limit is not None:
            clause += " LIMIT ?"
            params.append(limit)
        return await self._destination_rows(clause, params)

    async def _destination_rows(self, clause: str, params: Sequence[Any]) -> list[DestinationInfo]:
        rows = await self._fetchall(
            "SELECT platform, chat_id, thread_id, max_alerts, window_s, quiet_start, quiet_end,"
            " quiet_tz, mute_until, settle_s, modes, charts, digest, digest_since, address,"
            " label, paused_reason, paused_at FROM destinations" + clause,
            params,
        )
        infos = []
        for row in rows:
            policy = _policy_from(tuple(row[3:14]))
            infos.append(DestinationInfo(Destination(row[0], row[1], row[2]), policy,
                                         address=row[14], label=row[15], paused_reason=row[16],
                                         paused_at=opt_dt(row[17])))
        return infos

    async def ensure_destination(self, destination: Destination, now: datetime, *,
                                 address: str | None = None, label: str = "",
                                 policy: Policy | None = None) -> None:
        """Create a destination if missing; update address or label when given."""
        async with self._tx() as conn:
            await insert_destination(conn, destination, now, policy)
            if address is not None:
                await conn.execute(
                    pg("UPDATE destinations SET address = ? WHERE platform = ? AND chat_id = ?"
                       " AND thread_id = ?"), address, *dest_params(destination))
            if label:
                await conn.execute(
                    pg("UPDATE destinations SET label = ? WHERE platform = ? AND chat_id = ?"
                       " AND thread_id = ?"), label, *dest_params(destination))

    async def set_policy(self, destination: Destination, policy: Policy, now: datetime,
                         actor: str = "", detail: str = "") -> None:
        """Replace a destination's policy."""
        async with self._tx() as conn:
            await insert_destination(conn, destination, now)
            await conn.execute(_UPDATE_POLICY, *_policy_columns(policy), *dest_params(destination))
            await write_audit(conn, destination, "policy",
                              detail or "; ".join(describe_policy(policy)), now, actor)

    async def change_policy(self, destination: Destination,
                            change: Callable[[Policy], Policy], now: datetime, actor: str = "",
                            detail: Callable[[Policy], str] | None = None) -> PolicyChange:
        """Read, change and write a policy under the destination's lock; release held rows."""
        params = dest_params(destination)
        async with self._tx() as conn:
            await lock_destination(conn, destination)
            row = await conn.fetchrow(
                pg("SELECT max_alerts, window_s, quiet_start, quiet_end, quiet_tz, mute_until,"
                   " settle_s, modes, charts, digest, digest_since FROM destinations"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ?"), *params)
            before = _policy_from(tuple(row)) if row is not None else Policy()
            after = change(before)
            if after == before:
                return PolicyChange(before, after)
            await insert_destination(conn, destination, now)
            await conn.execute(_UPDATE_POLICY, *_policy_columns(after), *params)
            released = await conn.execute(
                pg(f"UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE platform = ?"
                   f" AND chat_id = ? AND thread_id = ? AND state = {HELD} AND msg_key IS NULL"
                   " AND next_attempt_at > ?"),
                ts(now), ts(now), *params, ts(now),
            )
            await write_audit(conn, destination, "policy",
                              detail(after) if detail else "; ".join(describe_policy(after)),
                              now, actor)
        return PolicyChange(before, after, status_count(released))

    async def pause(self, destination: Destination, reason: str, now: datetime, *,
                    epoch: int | None = None) -> int:
        """Pause a destination and dead-letter its queued rows."""
        params = dest_params(destination)
        async with self._tx() as conn:
            if epoch is not None:
                await check_epoch(conn, epoch)
            status = await conn.execute(
                pg("UPDATE destinations SET paused_at = ?, paused_reason = ?"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ? AND paused_at IS NULL"),
                ts(now), reason, *params,
            )
            if status_count(status) < 1:
                return 0
            # One statement finds and ends the rows, so none queued meanwhile is missed.
            queued = await conn.fetch(
                pg(f"UPDATE outbox SET state = {DEAD}, reason = ?, last_error = ?, updated_at = ?"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   f" AND state IN {QUEUED} RETURNING id, change_pk"),
                Reason.DESTINATION_GONE.value, reason, ts(now), *params,
            )
            rows = sorted((r[0], r[1]) for r in queued)
            await write_decisions(conn, destination, rows, Reason.DESTINATION_GONE, reason, now)
            await write_audit(conn, destination, "pause", reason, now, "alertbot")
        return len(rows)

    async def resume(self, destination: Destination, now: datetime, actor: str = "") -> bool:
        """Resume a paused destination."""
        async with self._tx() as conn:
            return await resume_destination(conn, destination, now, actor)

    async def rekey(self, old: Destination, new: Destination, now: datetime, *,
                    epoch: int | None = None) -> int:
        """Move a destination to a new id (a Telegram group that became a supergroup)."""
        old_p, new_p = dest_params(old), dest_params(new)
        async with self._tx() as conn:
            if epoch is not None:
                await check_epoch(conn, epoch)
            await lock_destination(conn, min(old, new, key=dest_params))
            await lock_destination(conn, max(old, new, key=dest_params))
            await conn.execute(
                pg("INSERT INTO destinations (platform, chat_id, thread_id, max_alerts, window_s,"
                   " quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes, charts, digest,"
                   " digest_since, address, label, created_at) SELECT ?, ?, ?, max_alerts,"
                   " window_s, quiet_start, quiet_end, quiet_tz, mute_until, settle_s, modes,"
                   " charts, digest, digest_since, address, label, created_at"
                   " FROM destinations WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   " ON CONFLICT (platform, chat_id, thread_id) DO NOTHING"),
                *new_p, *old_p,
            )
            await conn.execute(
                pg("INSERT INTO subscriptions (platform, chat_id, thread_id, token_id, kinds,"
                   " created_at) SELECT ?, ?, ?, token_id, kinds, created_at FROM subscriptions"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   " ON CONFLICT (platform, chat_id, thread_id, token_id)"
                   " DO UPDATE SET kinds = subscriptions.kinds | excluded.kinds"),
                *new_p, *old_p,
            )
            await conn.execute(
                pg("DELETE FROM subscriptions WHERE platform = ? AND chat_id = ?"
                   " AND thread_id = ?"), *old_p)
            # Rows the new id already has win; the rest move over and are sent again at once.
            await conn.execute(
                pg("DELETE FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   f" AND state IN {QUEUED} AND change_pk IN (SELECT change_pk"
                   " FROM outbox WHERE platform = ? AND chat_id = ? AND thread_id = ?)"),
                *old_p, *new_p,
            )
            status = await conn.execute(
                pg(f"UPDATE outbox SET platform = ?, chat_id = ?, thread_id = ?,"
                   f" state = {PENDING}, msg_key = NULL, next_attempt_at = ?, updated_at = ?"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   f" AND state IN {QUEUED}"),
                *new_p, ts(now), ts(now), *old_p,
            )
            moved = status_count(status)
            await conn.execute(
                pg("UPDATE messages SET platform = ?, chat_id = ?, thread_id = ?"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ?"), *new_p, *old_p)
            # Periods already decided stay decided: the chat gets no second digest for them.
            await conn.execute(
                pg("INSERT INTO scheduled_digests (platform, chat_id, thread_id, period_key,"
                   " period_start, period_end, outcome, change_id, changes, decided_at)"
                   " SELECT ?, ?, ?, period_key, period_start, period_end, outcome, change_id,"
                   " changes, decided_at FROM scheduled_digests"
                   " WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   " ON CONFLICT (platform, chat_id, thread_id, period_key) DO NOTHING"),
                *new_p, *old_p)
            await conn.execute(
                pg("DELETE FROM scheduled_digests WHERE platform = ? AND chat_id = ?"
                   " AND thread_id = ?"), *old_p)
            await conn.execute(
                pg("INSERT INTO token_mutes (platform, chat_id, thread_id, token_id, until,"
                   " created_at, actor) SELECT ?, ?, ?, token_id, until, created_at, actor"
                   " FROM token_mutes WHERE platform = ? AND chat_id = ? AND thread_id = ?"
                   " ON CONFLICT (platform, chat_id, thread_id, token_id) DO NOTHING"),
                *new_p, *old_p)
            await conn.execute(
                pg("DELETE FROM token_mutes WHERE platform = ? AND chat_id = ?"
                   " AND thread_id = ?"), *old_p)
            await conn.execute(
                pg("DELETE FROM destinations WHERE platform = ? AND chat_id = ?"
                   " AND thread_id = ?"), *old_p)
            await write_audit(conn, new, "rekey", f"moved from {old} ({moved} queued alerts)",
                              now, "alertbot")
        return moved
