"""The Fencing role on PostgreSQL: the leadership epoch outbox writes are checked against.

The lease itself is renewed by `leadership.py` on its own connection; this role reads the same
row. `check_epoch` takes the row FOR SHARE inside the write's transaction, so a takeover (which
updates the row) waits until a write already checked has committed, and every write after the
takeover sees the new epoch: a leader that lost the lease can record nothing more.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from alertbot.ports.leadership import LeaderRecord, ReplicaId, ReplicaRecord, Role
from alertbot.store.postgres.connection import PostgresConnection
from alertbot.store.postgres.leadership import LEADERSHIP
from alertbot.store.sqlite.fencing import refuse_older


async def check_epoch(conn: asyncpg.Connection, epoch: int) -> None:
    """Raise FencedError when `epoch` is older than the current one (inside the write's tx)."""
    current = await conn.fetchval("SELECT epoch FROM leadership WHERE name = $1 FOR SHARE",
                                  LEADERSHIP)
    refuse_older(epoch, int(current) if current is not None else 0)


class PostgresFencing(PostgresConnection):
    """Leadership epochs and replica heartbeats."""

    async def begin_epoch(self, holder: str, now: datetime) -> int:
        """Start a new epoch held by `holder` without a lease end; returns it."""
        async with self._tx() as conn:
            epoch = await conn.fetchval(
                "INSERT INTO leadership AS l (name, epoch, holder, acquired_at, expires_at)"
                " VALUES ($1, 1, $2, $3, NULL) ON CONFLICT (name) DO UPDATE SET"
                " epoch = l.epoch + 1, holder = excluded.holder,"
                " acquired_at = excluded.acquired_at, expires_at = NULL RETURNING epoch",
                LEADERSHIP, holder, now)
        return int(epoch)

    async def leader(self) -> LeaderRecord | None:
        """The current epoch's holder."""
        row = await self._fetchone(
            "SELECT holder, epoch, acquired_at, expires_at FROM leadership WHERE name = ?",
            (LEADERSHIP,))
        if row is None:
            return None
        return LeaderRecord(ReplicaId.parse(row[0]), int(row[1]), row[2], row[3])

    async def heartbeat(self, record: ReplicaRecord, forget_before: datetime) -> None:
        """Record a heartbeat; forget replicas silent since before `forget_before`."""
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO replicas (replica_id, started_at, heartbeat_at, role)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (replica_id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, role = excluded.role",
                str(record.replica), record.started_at, record.heartbeat_at,
                record.role.value)
            await conn.execute("DELETE FROM replicas WHERE heartbeat_at < $1", forget_before)

    async def replicas(self) -> list[ReplicaRecord]:
        """Every remembered replica, leader first."""
        rows = await self._fetchall(
            "SELECT replica_id, started_at, heartbeat_at, role FROM replicas"
            " ORDER BY role = 'leader' DESC, replica_id")
        return [ReplicaRecord(ReplicaId.parse(r[0]), r[1], r[2], Role(r[3])) for r in rows]
