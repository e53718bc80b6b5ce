"""Shapes every long-running part shares: background jobs, readiness probes, checks, closers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine

Job = Callable[[asyncio.Event], Coroutine[None, None, None]]
"""A long-running job: runs until the event is set."""
Probe = Callable[[], str | None]
"""A readiness probe: None when ready, else why not."""
Check = Callable[[], Awaitable[str]]
"""An `alertbot check` probe: returns a detail, raises when the service is unusable."""
Closer = Callable[[], Awaitable[None]]
"""Releases a resource; safe to call twice."""


def reraise_if_cancelling() -> None:
    """Raise CancelledError when the current task is being cancelled.

    Call it in an `except Exception` around an await: a library may turn its cancellation into
    an ordinary error (aiohttp tearing down a connection; `asyncio.wait_for` in Python 3.11
    returning the inner task's error), and swallowing that would leave a job that was told to
    stop running on.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
