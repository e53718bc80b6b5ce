"""SIGHUP reloads and retention against a real app built from files and environment."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.bootstrap.operations import Reloader
from alertbot.config import load_settings
from alertbot.domain.models import (
    ALL_KINDS,
    Change,
    Destination,
    Direction,
    Kind,
    Reading,
    Token,
    make_change_id,
)
from alertbot.services.retention import Retention
from tests.support import ManualClock

OLD_SECRET = "old-push-secret-1a2b"
NEW_SECRET = "new-push-secret-3c4d"
OLD_BOT = "111111:AAoldTelegramTokenValue"
NEW_BOT = "222222:AAnewTelegramTokenValue"
_SCRUB = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")


@pytest.fixture
async def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[App]:
    for name in list(os.environ):
        if name.startswith(_SCRUB):
            monkeypatch.delenv(name)
    (tmp_path / "secret").write_text(OLD_SECRET)
    (tmp_path / ".env").write_text(
        f"ALERTBOT_DATABASE_URL=sqlite:///{tmp_path / 'ops.db'}\n"
        f"ALERTBOT_WEBHOOK_SECRET_FILE={tmp_path / 'secret'}\n"
        "ALERTBOT_HTTP_PORT=0\nALERTBOT_DEMO=1\nALERTBOT_LOG_LEVEL=INFO\n")
    env_file = tmp_path / ".env"
    instance = await build(load_settings(env_file), env_file=env_file)
    yield instance
    await instance.close()


def rewrite_env(app: App, **changes: str) -> None:
    assert app.env_file is not None
    lines = app.env_file.read_text().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0] not in changes]
    app.env_file.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in changes.items())]))


async def test_reload_rotated_secret_file_used_and_logged_by_name_only(
        app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "secret").write_text(NEW_SECRET)
    with caplog.at_level(logging.INFO):
        applied = await Reloader(app).reload()
    assert applied == ["ALERTBOT_WEBHOOK_SECRET"]
    assert app.settings.webhook_secret is not None
    assert app.settings.webhook_secret.get_secret_value() == NEW_SECRET
    assert "SIGHUP: now using the new ALERTBOT_WEBHOOK_SECRET" in caplog.text
    assert NEW_SECRET not in caplog.text and OLD_SECRET not in caplog.text
    assert app.redactor(f"{OLD_SECRET} {NEW_SECRET}") == "*** ***"


async def test_reload_bot_token_change_needs_restart_and_keeps_running_token(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    app.settings = app.settings.model_copy(update={"telegram_bot_token": None})
    rewrite_env(app, TELEGRAM_BOT_TOKEN=NEW_BOT)
    with caplog.at_level(logging.INFO):
        assert await Reloader(app).reload() == []
    assert app.settings.telegram_bot_token is None
    assert "TELEGRAM_BOT_TOKEN changed; restart alertbot" in caplog.text
    assert NEW_BOT not in caplog.text
    assert app.redactor(NEW_BOT) == "***", "known to the redactor before anything logs it"


async def test_reload_log_level_live_other_settings_need_restart(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    rewrite_env(app, ALERTBOT_LOG_LEVEL="WARNING", ALERTBOT_POLL_INTERVAL="5m",
                ALERTBOT_RETENTION_DAYS="7")
    root = logging.getLogger()
    level = root.level
    try:
        with caplog.at_level(logging.INFO):
            applied = await Reloader(app).reload()
        assert sorted(applied) == ["ALERTBOT_LOG_LEVEL", "ALERTBOT_RETENTION_DAYS"]
        assert (app.settings.log_level, app.settings.retention_days) == ("WARNING", 7)
        assert app.settings.poll_interval is None
        assert "ALERTBOT_POLL_INTERVAL changed; restart alertbot" in caplog.text
    finally:
        root.setLevel(level)


async def test_reload_invalid_configuration_keeps_running_one(
        app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = app.settings
    rewrite_env(app, ALERTBOT_RETENTION_DAYS="-3")
    (tmp_path / "secret").write_text(NEW_SECRET)
    assert await Reloader(app).reload() == []
    assert app.settings is before
    assert "configuration not reloaded" in caplog.text
    assert "ALERTBOT_RETENTION_DAYS" in caplog.text


async def test_reload_demo_source_key_added_needs_restart(
        app: App, caplog: pytest.LogCaptureFixture) -> None:
    rewrite_env(app, TOKENMETRICS_API_KEY="tm-new-key-5e6f")
    assert await Reloader(app).reload() == []
    assert app.settings.tokenmetrics_api_key is None
    assert "TOKENMETRICS_API_KEY changed; restart alertbot" in caplog.text
    assert "tm-new-key-5e6f" not in caplog.text


# ------------------------------------------------------------------ retention


async def test_retention_purges_history_older_than_setting(app: App) -> None:
    old = datetime(2026, 1, 1, tzinfo=UTC)
    token = Token(1, "AAA", "Aaa")
    chat = Destination("console", "retention")
    await app.store.subscribe(chat, token.token_id, ALL_KINDS, old - timedelta(hours=1))
    change = Change(make_change_id(1, Kind.SIGNAL, -1, 1, old), token, Kind.SIGNAL, -1.0, 1.0,
                    Direction.UP, old, old, "bearish", "bullish", "flip")
    await app.store.record_poll([], [change], old)
    await app.dispatcher.run_until_idle(limit=5)
    assert (await app.store.outbox_stats()).by_state == {"sent": 1}

    delivered = datetime.now(UTC)  # the dispatcher runs on the real clock
    days = [30]
    retention = Retention(app.store, ManualClock(delivered + timedelta(days=29)),
                          lambda: days[0])
    assert (await retention.purge_once()).total == 0
    retention = Retention(app.store, ManualClock(delivered + timedelta(days=31)),
                          lambda: days[0])
    days[0] = 0
    assert (await retention.purge_once()).total == 0, "0 keeps everything"
    days[0] = 30
    result = await retention.purge_once()
    assert (result.outbox, result.changes, result.messages) == (1, 1, 1)
    assert (await app.store.outbox_stats()).by_state == {}


async def test_retention_forgets_old_update_ids_even_when_keeping_history(app: App) -> None:
    received = datetime(2026, 1, 1, tzinfo=UTC)
    await app.store.claim_update("telegram", 1, received)
    await app.store.claim_update("telegram", 2, received + timedelta(days=2))
    retention = Retention(app.store, ManualClock(received + timedelta(days=3)), lambda: 0)
    await retention.purge_once()
    assert await app.store.claim_update("telegram", 1, received + timedelta(days=3))
    assert not await app.store.claim_update("telegram", 2, received + timedelta(days=3))


async def test_retention_removes_processed_pushes_after_a_day_keeps_pending(app: App) -> None:
    received = datetime(2026, 1, 1, tzinfo=UTC)
    token = Token(3375, "BTC", "Bitcoin", "bitcoin")
    reading = Reading(token, Kind.TM_GRADE, 60.0, received)
    done = await app.store.enqueue_pushed([reading], [token], received)
    pending = await app.store.enqueue_pushed([reading], [token], received)
    await app.store.finish_pushed([done], received)
    await Retention(app.store, ManualClock(received + timedelta(hours=23)), lambda: 0
                    ).purge_once()
    assert await app.store.purge_pushed(received + timedelta(seconds=1)) == 1, "kept < 1 day"
    again = await app.store.enqueue_pushed([reading], [token], received)
    await app.store.finish_pushed([again], received)
    await Retention(app.store, ManualClock(received + timedelta(days=2)), lambda: 0).purge_once()
    assert await app.store.purge_pushed(received + timedelta(days=2)) == 0
    assert [b.batch_id for b in await app.store.pending_pushed(10)] == [pending]
