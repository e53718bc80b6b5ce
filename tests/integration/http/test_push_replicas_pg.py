"""Push ingest with two replicas on one PostgreSQL schema: a standby only queues what it
accepts, the leader detects on it exactly once, and a push and a poll of one change alert once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.models import ALL_KINDS, Kind, Reading
from alertbot.ports.leadership import Role
from tests.integration.http.test_readyz_roles import as_role
from tests.integration.http.test_server import (
    BTC,
    HOOK,
    SECRET,
    Served,
    environment,
    reading,
    running,
    serve,
    stored,
)
from tests.support import eventually


@contextlib.asynccontextmanager
async def replica(role: Role) -> AsyncIterator[Served]:
    app = await build(load_settings(None))
    try:
        async with serve(app) as served:
            as_role(served, role)
            yield served
    finally:
        await app.close()


@pytest.fixture
async def pair(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               postgres_url: str) -> AsyncIterator[tuple[Served, Served]]:
    environment(monkeypatch, tmp_path, ALERTBOT_DEMO="1", ALERTBOT_WEBHOOK_SECRET=SECRET,
                ALERTBOT_DATABASE_URL=postgres_url)
    async with replica(Role.STANDBY) as standby, replica(Role.LEADER) as leader:
        store = leader.app.store
        now = leader.app.clock.now()
        await store.upsert_tokens(await leader.app.source.universe(), now)
        await store.ensure_destination(HOOK, now, address="http://127.0.0.1:9/hook")
        await store.subscribe(HOOK, BTC.token_id, ALL_KINDS, now - timedelta(minutes=1))
        yield standby, leader


async def test_push_to_standby_detected_by_the_leader_exactly_once(
        pair: tuple[Served, Served]) -> None:
    standby, leader = pair
    flipped = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert (await standby.push(reading(value=-1)))[0] == 202
    assert (await standby.push(reading(value="bullish", timestamp=flipped)))[0] == 202
    assert (await stored(standby.app))["changes"] == 0, "a standby detects nothing"
    async with running(leader.app.poller.run_pushes):
        async def drained() -> bool:
            return await leader.app.store.pending_pushed(10) == []

        await eventually(drained, what="the leader drains the queue", timeout=20)
    assert await leader.app.poller.drain_pushed() == 0
    counts = await stored(leader.app)
    assert (counts["changes"], counts["outbox"]) == (1, 1)
    samples = await leader.metrics()
    assert samples["alertbot_changes_total{kind=signal}"] == 1


async def test_push_to_standby_and_poll_of_the_same_change_alert_once(
        pair: tuple[Served, Served]) -> None:
    standby, leader = pair
    before = datetime.now(UTC) - timedelta(hours=2)
    flipped = datetime.now(UTC) - timedelta(minutes=5)
    await leader.app.poller.ingest([Reading(BTC, Kind.SIGNAL, -1.0, before)])
    status, _ = await standby.push(reading(value="bullish", timestamp=flipped.isoformat()))
    assert status == 202
    # The leader polls the same flip while it drains the push.
    polled = Reading(BTC, Kind.SIGNAL, 1.0, flipped, label="bullish")
    await asyncio.gather(leader.app.poller.ingest([polled]), leader.app.poller.drain_pushed())
    counts = await stored(leader.app)
    assert (counts["changes"], counts["outbox"]) == (1, 1)
    assert await leader.app.store.pending_pushed(10) == []
