"""The Fencing role on SQLite: the leadership epoch outbox writes are checked against.

One process runs the bot on a SQLite file (see instance.py), so leadership needs no lease:
each start begins a new epoch, and a process that kept running with an older one (it cannot,
short of a second `run` bypassing the run lock) would be refused.
"""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from alertbot.ports.leadership import LeaderRecord, ReplicaId, ReplicaRecord, Role
from alertbot.ports.store import FencedError
from alertbot.store.sqlite.connection import SqliteConnection
from alertbot.store.sqlite.rows import dt, opt_dt, ts

LEADERSHIP = "alertbot"
"""The name of the one leadership row."""


async def check_epoch(db: aiosqlite.Connection, epoch: int) -> None:
    """Raise FencedError when `epoch` is older than the current one (inside the write's tx)."""
    rows = list(await db.execute_fetchall("SELECT epoch FROM leadership WHERE name = ?",
                                          (LEADERSHIP,)))
    refuse_older(epoch, int(rows[0][0]) if rows else 0)


def refuse_older(epoch: int, current: int) -> None:
    """Raise FencedError when `epoch` is older than `current` (both backends)."""
    if epoch < current:
        raise FencedError(f"leadership epoch {epoch} is over: epoch {current} has begun")


class SqliteFencing(SqliteConnection):
    """Leadership epochs and replica heartbeats."""

    async def begin_epoch(self, holder: str, now: datetime) -> int:
        """Start a new epoch held by `holder`; returns it."""
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT INTO leadership (name, epoch, holder, acquired_at, expires_at)"
                " VALUES (?, 1, ?, ?, NULL) ON CONFLICT (name) DO UPDATE SET"
                " epoch = leadership.epoch + 1, holder = excluded.holder,"
                " acquired_at = excluded.acquired_at, expires_at = NULL RETURNING epoch",
                (LEADERSHIP, holder, ts(now)),
            )
            row = await cur.fetchone()
        assert row is not None, "an upsert returns its row"
        return int(row[0])

    async def leader(self) -> LeaderRecord | None:
        """The current epoch's holder."""
        row = await self._fetchone(
            "SELECT holder, epoch, acquired_at, expires_at FROM leadership WHERE name = ?",
            (LEADERSHIP,))
        if row is None:
            return None
        return LeaderRecord(ReplicaId.parse(row[0]), int(row[1]), dt(row[2]), opt_dt(row[3]))

    async def heartbeat(self, record: ReplicaRecord, forget_before: datetime) -> None:
        """Record a heartbeat; forget replicas silent since before `forget_before`."""
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO replicas (replica_id, started_at, heartbeat_at, role)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (replica_id) DO UPDATE SET"
                " heartbeat_at = excluded.heartbeat_at, role = excluded.role",
                (str(record.replica), ts(record.started_at), ts(record.heartbeat_at),
                 record.role.value),
            )
            await db.execute("DELETE FROM replicas WHERE heartbeat_at < ?",
                             (ts(forget_before),))

    async def replicas(self) -> list[ReplicaRecord]:
        """Every remembered replica, leader first."""
        rows = await self._fetchall(
            "SELECT replica_id, started_at, heartbeat_at, role FROM replicas"
            " ORDER BY role = 'leader' DESC, replica_id")
        return [ReplicaRecord(ReplicaId.parse(r[0]), dt(r[1]), dt(r[2]), Role(r[3]))
                for r in rows]
