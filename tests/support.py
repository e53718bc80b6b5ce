"""Helpers shared by the test suite: a manual clock and a bounded wait for asynchronous effects."""

from __future__ import annotations

import asyncio
import inspect
import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

DEFAULT_START = datetime(2026, 11, 28, 12, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when a test sets ``at`` or calls ``advance``.

    ``now()`` satisfies the Clock port; ``monotonic`` stands in for ``time.monotonic`` where a
    fake takes a seconds function, so one object drives both kinds of time.
    """

    def __init__(self, at: datetime = DEFAULT_START) -> None:
        self.at = at
        self._origin = at

    def now(self) -> datetime:
        """The current manual time (aware, UTC)."""
        return self.at

    def advance(self, by: timedelta | float) -> None:
        """Move forward by ``by`` (a timedelta, or seconds)."""
        self.at += by if isinstance(by, timedelta) else timedelta(seconds=by)

    def monotonic(self) -> float:
        """Seconds since the clock was made, for fakes that take ``clock=time.monotonic``."""
        # Small magnitudes keep sums of fractional steps exact enough for window edges.
        return (self.at - self._origin).total_seconds()


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], *, what: str,
                     timeout: float = 5.0, interval: float = 0.02) -> None:
    """Wait until ``predicate`` (sync or async) holds; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        # Polling: the effects awaited here (store writes, process output) raise no event.
        await asyncio.sleep(interval)


ENV_PREFIXES = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")
"""Variables alertbot reads; tests start from an environment without them."""


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`alertbot ARGS` in this process: exit code, stdout, stderr."""
    from alertbot.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextmanager
def exclusive_lock(path: str | Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock, as `sqlite3 alertbot.db` would."""
    other = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield other
    finally:
        if other.in_transaction:
            other.rollback()
        other.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
