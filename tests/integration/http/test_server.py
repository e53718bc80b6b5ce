"""The HTTP server on loopback, driven by a real aiohttp client: health, metrics, push ingest."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.bootstrap.operations import web_server
from alertbot.config import load_settings
from alertbot.domain.models import ALL_KINDS, Destination, Kind, Token
from alertbot.domain.signing import SIGNATURE_HEADER, sign
from alertbot.http.ingest import MAX_BODY
from alertbot.http.server import WebServer
from alertbot.ports.observers import PollObserver, PollReport
from alertbot.sources.tokenmetrics.client import ApiRetry
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import eventually

SECRET = "push-signing-secret-5f2e9c"
TM_KEY = "tm-test-key-8a7b6c"
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
HOOK = Destination("webhook", "ops-test")
_SCRUB = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")


@dataclass
class Served:
    app: App
    server: WebServer
    url: str
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def push(self, payload: Any, *, secret: str = SECRET, skew: float = 0.0,
                   header: str | None = None) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if header is None:
            header = sign(secret, body, int(time.time() + skew))
        headers = {SIGNATURE_HEADER: header} if header else {}
        return await self.post(body, headers)

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.url + "/hooks/signals", data=body,
                                  headers={"Content-Type": "application/json", **headers}) as r:
            return r.status, await r.json()

    async def metrics(self) -> dict[str, float]:
        status, text = await self.get("/metrics")
        assert status == 200
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples


def environment(monkeypatch: pytest.MonkeyPatch, tmp: Path, **values: str) -> None:
    for name in list(os.environ):
        if name.startswith(_SCRUB):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALERTBOT_DATABASE_URL", f"sqlite:///{tmp / 'web.db'}")
    monkeypatch.setenv("ALERTBOT_HTTP_PORT", "0")
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@contextlib.asynccontextmanager
async def serve(app: App) -> AsyncIterator[Served]:
    server = web_server(app)
    port = await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            yield Served(app, server, f"http://127.0.0.1:{port}", http)
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running(*jobs: Callable[[asyncio.Event], Awaitable[None]]) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(job(stop)) for job in jobs]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)


class CycleWatcher(PollObserver):
    """Counts finished poll cycles so a test can wait for the next one."""

    def __init__(self) -> None:
        self.finished = 0

    def poll_finished(self, report: PollReport, seconds: float, ok: bool) -> None:
        self.finished += 1


async def next_cycles(app: App, watcher: CycleWatcher, count: int = 1) -> None:
    target = watcher.finished + count
    for _ in range(count):
        app.poller.poll_soon()
    async with asyncio.timeout(30):
        while watcher.finished < target:
            await asyncio.sleep(0.02)
            if watcher.finished < target:
                app.poller.poll_soon()


# ------------------------------------------------------------------ demo-source app


@pytest.fixture
async def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Served]:
    environment(monkeypatch, tmp_path, ALERTBOT_DEMO="1", ALERTBOT_WEBHOOK_SECRET=SECRET)
    app = await build(load_settings(None))
    try:
        await app.store.upsert_tokens(await app.source.universe(), app.clock.now())
        async with serve(app) as served:
            yield served
    finally:
        await app.close()


async def stored(app: App) -> dict[str, int]:
    tables = (await app.store.stats()).tables
    return {name: tables[name] for name in ("readings", "changes", "outbox", "decisions")}


NOTHING = {"readings": 0, "changes": 0, "outbox": 0, "decisions": 0}


def reading(**change: Any) -> dict[str, Any]:
    return {"symbol": "BTC", "token_id": 3375, "kind": "signal", "value": "bearish",
            "timestamp": (datetime.now(UTC) - timedelta(hours=2)).isoformat(), **change}


async def test_healthz_answers_ok(demo: Served) -> None:
    assert await demo.get("/healthz") == (200, "ok\n")


async def test_readyz_before_first_poll_unready_naming_polls(demo: Served) -> None:
    status, body = await demo.get("/readyz")
    assert status == 503
    assert body.startswith("not ready\n")
    assert "database: ok" in body and "polls: FAILED: no successful poll yet" in body


async def test_readyz_after_poll_ready_and_failing_probe_named(demo: Served) -> None:
    await demo.app.poller.poll_once()
    status, body = await demo.get("/readyz")
    assert status == 200 and body.startswith("ready\n") and "polls: ok" in body
    demo.app.health["telegram"] = lambda: "Telegram: getUpdates failing"
    status, body = await demo.get("/readyz")
    assert status == 503
    assert "telegram: FAILED: Telegram: getUpdates failing" in body


async def test_readyz_database_closed_unready_naming_database(demo: Served) -> None:
    await demo.app.poller.poll_once()
    await demo.app.store.close()
    status, body = await demo.get("/readyz")
    assert status == 503 and "database: FAILED:" in body


async def test_ingest_without_secret_not_found(demo: Served) -> None:
    demo.app.settings = demo.app.settings.model_copy(update={"webhook_secret": None})
    async with demo.http.post(demo.url + "/hooks/signals", data=b"{}") as resp:
        assert resp.status == 404
    assert await stored(demo.app) == NOTHING


async def test_ingest_oversize_body_rejected_413(demo: Served) -> None:
    body = json.dumps([reading()] * 1000).encode()
    assert len(body) > MAX_BODY
    status, answer = await demo.push(body)
    assert status == 413 and answer["error"] == f"request body larger than {MAX_BODY} bytes"
    assert await stored(demo.app) == NOTHING


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"header": ""}, "missing X-Alertbot-Signature header"),
    ({"header": "v1=abc"}, "signature header has no valid t=<unix seconds>"),
    ({"header": "t=1700000000"}, "signature header has no v1=<hex digest>"),
    ({"secret": "not-the-secret"}, "signature does not match"),
    ({"skew": -302}, "signature timestamp is outside the allowed tolerance"),
    ({"skew": 400}, "signature timestamp is outside the allowed tolerance"),
])
async def test_ingest_bad_or_stale_signature_rejected_401(
        demo: Served, kwargs: dict[str, Any], message: str) -> None:
    status, answer = await demo.push(reading(), **kwargs)
    assert (status, answer) == (401, {"error": message})
    assert await stored(demo.app) == NOTHING


async def test_ingest_replayed_signature_rejected_401(demo: Served) -> None:
    body = json.dumps(reading()).encode()
    header = sign(SECRET, body, int(time.time()))
    first = await demo.post(body, {SIGNATURE_HEADER: header})
    assert first[0] == 200
    before = await stored(demo.app)
    again = await demo.post(body, {SIGNATURE_HEADER: header})
    padded = await demo.post(body, {SIGNATURE_HEADER: header + ",v1=" + "0" * 64})
    for status, answer in (again, padded):
        assert (status, answer) == (401, {"error": "signature already used (replayed request)"})
    assert await stored(demo.app) == before


@pytest.mark.parametrize(("payload", "status", "message", "result"), [
    (b'{"symbol": "BTC",', 400, "body is not valid JSON", "malformed"),
    (b"[]", 400, "the list of readings is empty", "malformed"),
    (b'"BTC"', 400, "expected a JSON object", "malformed"),
    (reading(kind="price"), 422, "kind: must be one of", "invalid"),
    (reading(value=3), 422, "value: a signal must be 1, -1, bullish or bearish", "invalid"),
    (reading(kind="tm_grade", value="high"), 422, "value: a grade must be a number", "invalid"),
    (reading(timestamp="tomorrow"), 422, "timestamp: expected ISO-8601", "invalid"),
    ([reading(), reading(extra=1)], 422, "readings[1].extra: unknown field", "invalid"),
    (reading(symbol="NOPE", token_id=None), 422, "Unknown symbol NOPE.", "unknown_token"),
    (reading(token_id=99999999), 422, "No token with id 99999999 is known for BTC.",
     "unknown_token"),
    (reading(symbol="ETH"), 422, "Token id 3375 is BTC, not ETH.", "unknown_token"),
])
async def test_ingest_malformed_or_invalid_rejected_with_message(
        demo: Served, payload: Any, status: int, message: str, result: str) -> None:
    got, answer = await demo.push(payload)
    assert got == status
    assert message in answer["error"]
    assert await stored(demo.app) == NOTHING
    samples = await demo.metrics()
    assert samples[f"alertbot_ingest_requests_total{{result={result}}}"] == 1


async def test_ingest_signed_reading_flip_delivered_as_alert(demo: Served) -> None:
    app = demo.app
    async with WebhookReceiver() as receiver:
        now = app.clock.now()
        await app.store.ensure_destination(HOOK, now, address=receiver.url)
        await app.store.subscribe(HOOK, BTC.token_id, ALL_KINDS, now - timedelta(minutes=1))
        async with running(app.dispatcher.run):
            status, answer = await demo.push(reading(value=-1))
            assert (status, answer["changes"], answer["outcomes"]) == (200, 0, {"baseline": 1})
            status, answer = await demo.push(reading(
                value="bullish", timestamp=datetime.now(UTC).isoformat()))
            assert (status, answer["changes"], answer["alerts_queued"]) == (200, 1, 1)
            [delivery] = await receiver.wait_for(1)
        (alert,) = delivery.json["alerts"]
        assert (alert["symbol"], alert["kind"], alert["to_label"]) == ("BTC", "signal",
                                                                        "bullish")
        stale, answer = await demo.push(reading(value=-1))
        assert (stale, answer["changes"], answer["outcomes"]) == (200, 0, {"stale": 1})
    samples = await demo.metrics()
    assert samples["alertbot_ingest_requests_total{result=accepted}"] == 3
    assert samples["alertbot_changes_total{kind=signal}"] == 1
    assert samples["alertbot_deliveries_total{outcome=sent,platform=webhook}"] == 1


# ------------------------------------------------------------------ Token Metrics fake


@pytest.fixture
async def fake_tm() -> AsyncIterator[FakeTokenMetrics]:
    today = datetime.now(UTC).date()
    async with FakeTokenMetrics(api_key=TM_KEY) as fake:
        fake.add_token(BTC.token_id, "BTC", "Bitcoin", "bitcoin")
        fake.set_signal(BTC.token_id, today - timedelta(days=1), trend=-1)
        yield fake


@pytest.fixture
async def tm_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                 fake_tm: FakeTokenMetrics) -> AsyncIterator[tuple[Served, CycleWatcher]]:
    environment(monkeypatch, tmp_path, TOKENMETRICS_API_KEY=TM_KEY,
                TOKENMETRICS_BASE_URL=fake_tm.base_url, TOKENMETRICS_WATCHLIST="BTC",
                TOKENMETRICS_MONTHLY_CALLS="100000000", ALERTBOT_POLL_INTERVAL="0.2")
    app = await build(load_settings(None))
    watcher = CycleWatcher()
    app.observers.add(watcher)
    api = getattr(app.source, "api")  # noqa: B009 - the Token Metrics source's client
    api.retry = ApiRetry(attempts=1)  # one request per failure keeps cycles short
    try:
        now = app.clock.now()
        await app.store.upsert_tokens([BTC], now)
        await app.store.subscribe(Destination("console", "default"), BTC.token_id,
                                  (Kind.SIGNAL,), now - timedelta(minutes=1))
        async with serve(app) as served:
            yield served, watcher
    finally:
        await app.close()


async def test_readyz_unready_while_token_metrics_fails_ready_after_recovery(
        tm_app: tuple[Served, CycleWatcher], fake_tm: FakeTokenMetrics) -> None:
    served, _ = tm_app

    async def ready() -> bool:
        return (await served.get("/readyz"))[0] == 200

    async def unready() -> bool:
        status, body = await served.get("/readyz")
        return status == 503 and "polls: FAILED: last successful poll" in body

    async with running(served.app.poller.run):
        await eventually(ready, what="/readyz 200", timeout=30)
        fake_tm.fail_next(None, times=None, status=500)
        await eventually(unready, what="/readyz 503 with a failed poll", timeout=30)
        _, body = await served.get("/readyz")
        assert "last error: Token Metrics /trading-signals failed (HTTP 500" in body
        fake_tm.clear_faults()
        await eventually(ready, what="/readyz 200 after recovery", timeout=30)
    samples = await served.metrics()
    assert samples["alertbot_poll_cycles_total{result=failed}"] >= 1
    assert samples["alertbot_tokenmetrics_api_calls_total{endpoint=/trading-signals,"
                   "status=500}"] >= 1


async def test_metrics_parse_and_counters_move_as_alerts_are_delivered(
        tm_app: tuple[Served, CycleWatcher], fake_tm: FakeTokenMetrics) -> None:
    served, watcher = tm_app
    app = served.app
    before = await served.metrics()
    assert before["alertbot_outbox_rows{state=sent}"] == 0
    assert "alertbot_deliveries_total{outcome=sent,platform=webhook}" not in before
    async with WebhookReceiver() as receiver:
        now = app.clock.now()
        await app.store.ensure_destination(HOOK, now, address=receiver.url)
        await app.store.subscribe(HOOK, BTC.token_id, ALL_KINDS, now - timedelta(minutes=1))
        app.poller.interval = timedelta(hours=1)  # cycles only when the test asks
        async with running(app.poller.run, app.dispatcher.run):
            await next_cycles(app, watcher)
            fake_tm.flip(BTC.token_id, datetime.now(UTC).date())
            await next_cycles(app, watcher)
            await receiver.wait_for(1)
            await eventually(lambda: _sent(served), what="two sent outbox rows", timeout=30)
    after = await served.metrics()
    assert after["alertbot_poll_cycles_total{result=ok}"] >= 2
    assert after["alertbot_poll_duration_seconds_count{}"] >= 2
    assert after["alertbot_changes_total{kind=signal}"] == 1
    assert after["alertbot_decisions_total{reason=sent}"] >= 1
    assert after["alertbot_deliveries_total{outcome=sent,platform=webhook}"] == 1
    assert after["alertbot_delivery_latency_seconds_count{platform=webhook}"] == 1
    assert after["alertbot_tokenmetrics_api_calls_total{endpoint=/trading-signals,"
                 "status=200}"] >= 2
    assert after["alertbot_tokenmetrics_quota_used_calls{}"] >= 2
    assert after["alertbot_tokenmetrics_quota_limit_calls{}"] == 100_000_000
    assert after["alertbot_deliveries_total{outcome=sent,platform=console}"] == 1
    assert after["alertbot_outbox_rows{state=sent}"] == 2
    assert after["alertbot_outbox_oldest_pending_age_seconds{}"] == 0
    assert after["alertbot_last_successful_poll_timestamp_seconds{}"] > 0


async def _sent(served: Served) -> bool:
    stats = await served.app.store.outbox_stats()
    return stats.by_state.get("sent", 0) == 2  # the webhook and the console


async def test_serve_port_in_use_names_the_variable_and_keeps_running(
        demo: Served, caplog: pytest.LogCaptureFixture) -> None:
    taken = demo.server.port
    server = web_server(demo.app, port=taken)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(server.serve(stop), 10)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(f":{taken}" in e and "ALERTBOT_HTTP_PORT" in e for e in errors), errors
    assert await demo.get("/healthz") == (200, "ok\n")
