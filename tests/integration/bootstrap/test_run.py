"""`alertbot run` in process: first-run defaults, going live, supervised start-up."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

import pytest

from alertbot.bootstrap.build import build
from alertbot.bootstrap.run import (
    CONSOLE_DEFAULT,
    ensure_default_subscription,
    run,
    unconfigured_destinations,
)
from alertbot.config import load_settings
from alertbot.domain.models import (
    ALL_KINDS,
    ALL_TOKENS,
    Destination,
    Kind,
    Reading,
    Subscription,
    Token,
)
from alertbot.ports.source import Source
from tests.support import eventually

_SCRUB = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")


@pytest.fixture
def env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(_SCRUB):
            monkeypatch.delenv(name)
    path = tmp_path / ".env"
    path.write_text(f"ALERTBOT_DATABASE_URL=sqlite:///{tmp_path / 'run.db'}\n"
                    "ALERTBOT_HTTP_PORT=0\n")
    return path


async def test_unconfigured_destinations_none_on_unset_platforms_loads_no_subscription(
        env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = await build(load_settings(env_file), env_file=env_file)
    try:
        now = app.clock.now()
        for token_id in (3375, 3306, 1):
            await app.store.subscribe(CONSOLE_DEFAULT, token_id, ALL_KINDS, now, actor="test")
        listing = app.store.subscriptions
        loads: list[Destination | None] = []

        async def counted(destination: Destination | None = None) -> list[Subscription]:
            loads.append(destination)
            return await listing(destination)

        monkeypatch.setattr(app.store, "subscriptions", counted)
        assert await unconfigured_destinations(app) == []
        assert loads == []  # nothing on Telegram or Discord: the full list is never read
        chat = Destination("telegram", "42")
        await app.store.subscribe(chat, 3375, ALL_KINDS, now, actor="test")
        assert await unconfigured_destinations(app) == [(chat, "TELEGRAM_BOT_TOKEN")]
        assert loads == [None]
    finally:
        await app.close()


async def test_run_unconfigured_platforms_one_warning_per_platform_not_per_destination(
        env_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = await build(load_settings(env_file), env_file=env_file)
    try:
        now = app.clock.now()
        for chat in ("-1001", "-1002", "-1003", "-1004", "-1005"):
            await app.store.subscribe(Destination("telegram", chat), 3375, ALL_KINDS, now,
                                      actor="test")
        await app.store.subscribe(Destination("discord", "444444444444444444"), 3375,
                                  ALL_KINDS, now, actor="test")
        caplog.set_level(logging.INFO, logger="alertbot.bootstrap.run")
        await run(app, once=True)
    finally:
        await app.close()
    lines = [r.getMessage() for r in caplog.records
             if r.levelno == logging.WARNING and "is not set" in r.getMessage()]
    assert len(lines) == 2, lines
    telegram = next(line for line in lines if "TELEGRAM_BOT_TOKEN" in line)
    assert telegram.startswith("5 telegram destinations are subscribed but "
                               "TELEGRAM_BOT_TOKEN is not set")
    assert "telegram:-1001" in telegram and "telegram:-1005" not in telegram
    discord = next(line for line in lines if "DISCORD_BOT_TOKEN" in line)
    assert discord.startswith("discord:444444444444444444 is subscribed but "
                              "DISCORD_BOT_TOKEN is not set")


async def test_ensure_default_subscription_live_source_removes_only_the_demo_subscription(
        env_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    demo = await build(load_settings(env_file), env_file=env_file)
    try:
        assert await ensure_default_subscription(demo)
        now = demo.clock.now()
        # The operator also subscribed the console to one token while trying the demo.
        await demo.store.subscribe(CONSOLE_DEFAULT, 3375, ALL_KINDS, now, actor="operator")
    finally:
        await demo.close()

    with env_file.open("a") as extra:
        extra.write("TOKENMETRICS_API_KEY=tm-live-key-0001\n"
                    "TOKENMETRICS_BASE_URL=http://127.0.0.1:9/v2\n")
    caplog.set_level(logging.INFO, logger="alertbot.bootstrap.run")
    live = await build(load_settings(env_file), env_file=env_file)
    try:
        assert live.source.name == "tokenmetrics"
        assert not await ensure_default_subscription(live)
        assert not await ensure_default_subscription(live)  # a restart changes nothing more
        subscriptions = await live.store.subscriptions(CONSOLE_DEFAULT)
        info = await live.store.destination(CONSOLE_DEFAULT)
    finally:
        await live.close()
    assert [s.token_id for s in subscriptions] == [3375]
    assert ALL_TOKENS not in [s.token_id for s in subscriptions]
    assert info is not None and not info.paused_reason
    removed = [r for r in caplog.records if "removed the demo's console" in r.getMessage()]
    assert len(removed) == 1


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
