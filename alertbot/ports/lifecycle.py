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
