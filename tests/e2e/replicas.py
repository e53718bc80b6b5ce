"""Several `alertbot run` replicas as real processes: find the leader, kill or pause it,
and measure how long until another one leads.

Each replica listens on its own HTTP port; its role is read from the `Alertbot-Role` header
of /readyz (`leader` or `standby`), which is what a load balancer sees too. Made for the
failover test against PostgreSQL (every replica gets the same ALERTBOT_DATABASE_URL); on
SQLite only one replica can run.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.e2e.process import Alertbot

ROLE_HEADER = "Alertbot-Role"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    """One `alertbot run` process and its HTTP port."""

    bot: Alertbot
    port: int
    paused: bool = False

    @property
    def pid(self) -> int:
        """The process id (as `alertbot status` shows it)."""
        assert self.bot.proc is not None
        return self.bot.proc.pid

    @property
    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.bot.proc is not None and self.bot.proc.returncode is None

    async def role(self, http: aiohttp.ClientSession) -> str | None:
        """`leader` or `standby` from /readyz; None when it does not answer (yet)."""
        if not self.alive or self.paused:
            return None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(f"http://127.0.0.1:{self.port}/readyz",
                                timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return resp.headers.get(ROLE_HEADER)
        return None


@dataclass
class Replicas:
    """N replicas sharing one environment (the same database), each on its own port."""

    env: Mapping[str, str]
    cwd: Path
    members: list[Replica] = field(default_factory=list)
    failovers: list[float] = field(default_factory=list)
    """Seconds from each kill or pause of a leader to another replica leading."""
    signalled: list[float] = field(default_factory=list)
    """When (time.monotonic()) each kill or pause signal was sent."""

    async def start(self, count: int) -> Replicas:
        """Start `count` more replicas."""
        for _ in range(count):
            port = free_port()
            env = {**self.env, "ALERTBOT_HTTP_PORT": str(port)}
            self.members.append(Replica(await Alertbot(["run"], env, self.cwd).start(), port))
        return self

    async def leader(self, http: aiohttp.ClientSession, *, timeout: float = 30.0,
                     other_than: Replica | None = None) -> Replica:
        """The one replica whose /readyz says `leader` (waiting for it); never two."""
        async with asyncio.timeout(timeout):
            while True:
                roles = [await m.role(http) for m in self.members]
                leaders = [m for m, r in zip(self.members, roles, strict=True)
                           if r == "leader" and m is not other_than]
                assert len(leaders) <= 1, f"{len(leaders)} replicas say they lead"
                if leaders:
                    return leaders[0]
                await asyncio.sleep(0.05)

    async def kill_leader(self, http: aiohttp.ClientSession, signum: int = signal.SIGKILL,
                          timeout: float = 30.0) -> Replica:
        """Kill the leader with `signum`; returns the replica that leads next.

        The time from the signal to the new leader's /readyz saying `leader` is appended to
        `failovers` (an upper bound of the takeover itself; the first send follows it).
        """
        old = await self.leader(http)
        assert old.bot.proc is not None
        started = time.monotonic()
        old.paused = signum == signal.SIGSTOP
        old.bot.proc.send_signal(signum)
        self.signalled.append(started)
        new = await self.leader(http, timeout=timeout, other_than=old)
        self.failovers.append(time.monotonic() - started)
        if signum != signal.SIGSTOP:
            await asyncio.wait_for(old.bot.proc.wait(), timeout)
            self.members.remove(old)
        return new

    async def pause_leader(self, http: aiohttp.ClientSession,
                           timeout: float = 30.0) -> tuple[Replica, Replica]:
        """SIGSTOP the leader until another leads; returns (paused, new leader)."""
        old = await self.leader(http)
        return old, await self.kill_leader(http, signal.SIGSTOP, timeout)

    @staticmethod
    def resume(replica: Replica) -> None:
        """SIGCONT a paused replica."""
        assert replica.bot.proc is not None
        replica.bot.proc.send_signal(signal.SIGCONT)
        replica.paused = False

    async def stop(self, timeout: float = 30.0) -> list[int]:
        """SIGTERM every replica still running (resuming paused ones first); exit codes."""
        codes = []
        for member in self.members:
            if member.paused:
                self.resume(member)
            codes.append(await member.bot.stop(signal.SIGTERM, timeout))
        return codes
