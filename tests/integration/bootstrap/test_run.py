"""First-run defaults of `alertbot run`: the demo's console subscription and going live."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from alertbot.bootstrap.build import build
from alertbot.bootstrap.run import CONSOLE_DEFAULT, ensure_default_subscription
from alertbot.config import load_settings
from alertbot.domain.models import ALL_KINDS, ALL_TOKENS

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
