"""`run()` in process: a failing start-up step is supervised like any job, not fatal."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

from alertbot.bootstrap.build import build
from alertbot.bootstrap.run import run
from alertbot.config import load_settings
from alertbot.domain.models import Kind, Reading, Token
from alertbot.ports.source import Source
from tests.support import eventually


class FirstUniverseFails:
    """The demo source, except that its first universe() answer is an unexpected error."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    async def universe(self) -> list[Token]:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("catalog row without a symbol")
        return await self.inner.universe()

    async def resolve(self, symbol: str) -> list[Token]:
        return await self.inner.resolve(symbol)

    async def fetch(self, token_ids: Sequence[int], kinds: Collection[Kind],
                    now: datetime) -> list[Reading]:
        return await self.inner.fetch(token_ids, kinds, now)

    async def close(self) -> None:
        await self.inner.close()


async def test_run_failing_startup_step_is_restarted_and_polling_begins(tmp_path: Path) -> None:
    settings = load_settings(env_file=None, ALERTBOT_DATABASE_URL=f"sqlite:///{tmp_path}/a.db",
                             ALERTBOT_DEMO="1", ALERTBOT_POLL_INTERVAL="0.2")
    app = await build(settings)
    flaky = FirstUniverseFails(app.source)
    app.source_parts = dataclasses.replace(app.source_parts, source=flaky)
    task = asyncio.create_task(run(app))
    try:
        await eventually(lambda: "job startup" in app.health and
                         (app.health["job startup"]() or "").startswith("down since"),
                         what="/readyz naming the failed start-up", timeout=10)
        assert "ValueError: catalog row without a symbol" in (app.health["job startup"]() or "")
        await eventually(lambda: app.poller.last_success is not None,
                         what="a successful poll after the restarted start-up", timeout=20)
        assert flaky.calls == 2 and not task.done()
        assert app.health["job startup"]() is None
        assert await app.store.destinations(limit=1)
    finally:
        task.cancel()
        await asyncio.wait({task})
        await app.close()
