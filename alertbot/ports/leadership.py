"""The Leadership port: which of the replicas sharing one database leads, and its epoch.

Exactly one replica leads at a time: it polls, dispatches and holds the chat connections.
Each acquisition gets an epoch one higher than any before it; the leader passes its epoch
with every outbox write, and the store refuses an older one (FencedError), so a leader that
lost its lease without noticing (paused, partitioned) cannot record anything after a newer
leader started. Replicas also record heartbeats, for `alertbot status`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    """What a replica does right now."""

    LEADER = "leader"
    STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class ReplicaId:
    """One running process: `host:pid`."""

    host: str
    pid: int

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    @classmethod
    def this_process(cls) -> ReplicaId:
        """The id of the calling process."""
        return cls(socket.gethostname(), os.getpid())

    @classmethod
    def parse(cls, text: str) -> ReplicaId:
        """`host:pid` back to a ReplicaId (the pid is 0 when it is not a number)."""
        host, _, pid = text.rpartition(":")
        return cls(host or text, int(pid) if pid.isdigit() else 0)


@dataclass(frozen=True, slots=True)
class ReplicaRecord:
    """A replica's last heartbeat."""

    replica: ReplicaId
    started_at: datetime
    heartbeat_at: datetime
    role: Role


@dataclass(frozen=True, slots=True)
class LeaderRecord:
    """The current (or last) leader as the database records it."""

    holder: ReplicaId
    epoch: int
    acquired_at: datetime
    expires_at: datetime | None
    """End of the lease (database clock); None where leadership needs no lease (SQLite)."""


@dataclass(frozen=True, slots=True)
class LeadershipStatus:
    """What `alertbot status` prints."""

    leader: LeaderRecord | None
    replicas: list[ReplicaRecord]
    now: datetime
    """The database's current time, against which expiry and heartbeat ages are judged."""


class Leadership(Protocol):
    """Acquire, hold and lose leadership; heartbeats while standing by and while leading.

    Typical use (bootstrap's role switch): `acquire` waits as a standby until this replica
    leads and returns the new epoch; `hold` keeps leadership until it is lost (returns) or
    `stop` is set (releases, returns); `release` gives it up at once (a fenced write, a clean
    stop), so a standby takes over without waiting for the lease to run out.
    """

    @property
    def replica(self) -> ReplicaId:
        """This process."""
        ...

    @property
    def epoch(self) -> int | None:
        """The epoch of the leadership held now; None while standing by."""
        ...

    def valid(self) -> bool:
        """Whether the held leadership is certainly still ours (its lease has not run out).

        Checked right before each send, so a leader resumed after a pause longer than its
        lease sends nothing more even before its next renewal fails.
        """
        ...

    async def acquire(self, stop: asyncio.Event) -> int | None:
        """Wait until this replica leads; the new epoch, or None when `stop` was set first."""
        ...

    async def hold(self, stop: asyncio.Event) -> None:
        """Keep leadership until it is lost or `stop` is set (then released)."""
        ...

    async def release(self) -> None:
        """Give up leadership now (safe when not leading)."""
        ...

    async def status(self) -> LeadershipStatus:
        """The leader and every replica's heartbeat, as recorded in the database."""
        ...

    async def close(self) -> None:
        """Release leadership and the connection (idempotent)."""
        ...
