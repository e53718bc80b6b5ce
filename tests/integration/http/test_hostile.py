"""Hostile clients against the HTTP server on loopback: stalled, silent, vanishing, flooding."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.models import Token
from alertbot.domain.signing import SIGNATURE_HEADER, sign
from alertbot.sources.tokenmetrics.quota import Usage, month_key
from alertbot.sources.tokenmetrics.source import USAGE_KEY
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.integration.http.test_server import (
    NOTHING,
    SECRET,
    TM_KEY,
    Served,
    environment,
    reading,
    serve,
    stored,
)
from tests.support import eventually

READ_TIMEOUT = "0.5"
MAX_CONNECTIONS = 8
BOUND = 10.0
"""Seconds any single wait in these tests may take; the limits above act well within it."""


@pytest.fixture
async def limited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Served]:
    environment(monkeypatch, tmp_path, ALERTBOT_DEMO="1", ALERTBOT_WEBHOOK_SECRET=SECRET,
                ALERTBOT_HTTP_READ_TIMEOUT=READ_TIMEOUT,
                ALERTBOT_HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS))
    app = await build(load_settings(None))
    try:
        await app.store.upsert_tokens(await app.source.universe(), app.clock.now())
        async with serve(app) as served:
            yield served
    finally:
        await app.close()


def port_of(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def raw(served: Served) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(served))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def partial_push(length: int = 100, sent: bytes = b"[") -> bytes:
    header = sign(SECRET, b"x", int(time.time()))
    return (f"POST /hooks/signals HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\n{SIGNATURE_HEADER}: {header}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + sent


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]


async def refused(served: Served, reason: str) -> float:
    samples = await served.metrics()
    return samples.get(f"alertbot_http_refused_total{{reason={reason}}}", 0.0)


# ------------------------------------------------------------------ connection limits


async def test_server_silent_connection_closed_after_read_timeout(limited: Served) -> None:
    async with raw(limited) as (reader, _):
        async with asyncio.timeout(BOUND):
            assert await reader.read() == b""
    assert await refused(limited, "timeout") == 1


async def test_server_stalled_body_answered_408_and_closed(limited: Served) -> None:
    async with raw(limited) as (reader, writer):
        writer.write(partial_push())
        async with asyncio.timeout(BOUND):
            answer = await reader.read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body) == {"error": f"request body not received within {READ_TIMEOUT} s"}
    assert await stored(limited.app) == NOTHING
    assert await refused(limited, "timeout") == 1


async def test_server_client_gone_mid_body_counted_without_traceback(
        limited: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        async with raw(limited) as (_, writer):
            writer.write(partial_push(sent=b'{"symbol"'))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def counted() -> bool:
        return await refused(limited, "client_gone") == 3

    await eventually(counted, what="three clients counted as gone", timeout=BOUND)
    assert tracebacks(caplog) == []
    assert await stored(limited.app) == NOTHING


async def test_server_over_connection_cap_oldest_closed_and_healthz_served(
        limited: Served) -> None:
    async with contextlib.AsyncExitStack() as stack:
        stalled = [await stack.enter_async_context(raw(limited)) for _ in range(30)]
        for _, writer in stalled[::2]:
            writer.write(partial_push())
        assert await limited.get("/healthz") == (200, "ok\n")

        def closed() -> int:
            return sum(reader.at_eof() or bool(reader.exception()) for reader, _ in stalled)

        async def drained() -> bool:
            for reader, _ in stalled:
                with contextlib.suppress(OSError):
                    await asyncio.wait_for(reader.read(65536), 0.001)
            return closed() >= 30 - MAX_CONNECTIONS

        await eventually(drained, what="connections over the cap closed", timeout=BOUND)
        assert limited.server.open_connections <= MAX_CONNECTIONS
    assert await refused(limited, "over_capacity") >= 30 - MAX_CONNECTIONS + 1


async def test_server_malformed_request_flood_logged_as_one_summary_line(
        limited: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(40):
        async with raw(limited) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
            async with asyncio.timeout(BOUND):
                assert (await reader.read()).split(b" ", 2)[1] == b"400"
    assert tracebacks(caplog) == []
    caplog.clear()
    limited.server.log_refusals()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("HTTP:")]
    assert len(lines) == 1
    assert lines[0].startswith("HTTP: 40 requests refused in the last ")
    assert lines[0].endswith("(malformed 40)")
    assert await refused(limited, "bad_request") == 40


# ------------------------------------------------------------------ signed bodies


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(("payload", "status", "message"), [
    (deep(30_000), 400, "body is nested too deeply"),
    (reading(token_id=10**30), 422, "token_id: must be at most"),
    (reading(timestamp="0001-01-01T00:00:00+01:00"), 422, "timestamp: "),
    (reading(timestamp="9999-12-31T23:59:59-01:00"), 422, "timestamp: "),
    (reading(timestamp="0001-01-01T00:00:00Z"), 422, "timestamp: is before"),
    (reading(timestamp="9999-12-31T23:59:59Z"), 422, "timestamp: is in the future"),
    (reading(kind="tm_grade", value=10**400), 422, "value: a grade must be a number"),
])
async def test_ingest_hostile_signed_body_rejected_with_message_not_500(
        limited: Served, caplog: pytest.LogCaptureFixture, payload: Any, status: int,
        message: str) -> None:
    got, answer = await limited.push(payload)
    assert (got, message in answer["error"]) == (status, True), answer
    assert tracebacks(caplog) == []
    assert await stored(limited.app) == NOTHING


# ------------------------------------------------------------------ symbol resolution budget


@pytest.fixture
async def tm_served(monkeypatch: pytest.MonkeyPatch,
                    tmp_path: Path) -> AsyncIterator[tuple[Served, FakeTokenMetrics]]:
    async with FakeTokenMetrics(api_key=TM_KEY) as fake:
        for number in range(1, 81):
            fake.add_token(90_000 + number, f"NEW{number}", f"New {number}", f"new-{number}")
        environment(monkeypatch, tmp_path, TOKENMETRICS_API_KEY=TM_KEY,
                    TOKENMETRICS_BASE_URL=fake.base_url, TOKENMETRICS_WATCHLIST="BTC",
                    TOKENMETRICS_MONTHLY_CALLS="100000000", ALERTBOT_WEBHOOK_SECRET=SECRET)
        app = await build(load_settings(None))
        try:
            await app.store.upsert_tokens([Token(3375, "BTC", "Bitcoin", "bitcoin")],
                                          app.clock.now())
            async with serve(app) as served:
                yield served, fake
        finally:
            await app.close()


def unknown(first: int, count: int) -> list[dict[str, Any]]:
    return [reading(symbol=f"NEW{n}", token_id=None) for n in range(first, first + count)]


async def lookup_calls(served: Served) -> int:
    raw_usage = await served.app.store.get_meta(USAGE_KEY)
    return Usage.decode(raw_usage, datetime.now(UTC)).lookup


async def test_ingest_many_unknown_symbols_resolution_capped_and_rest_named(
        tm_served: tuple[Served, FakeTokenMetrics]) -> None:
    served, fake = tm_served
    status, answer = await served.push(unknown(1, 50))
    assert status == 422
    assert "NEW11" in answer["error"] and "(and 35 more)" in answer["error"]
    assert len(fake.calls_to("/tokens")) == 10
    assert await lookup_calls(served) == 10
    status, answer = await served.push(unknown(51, 30))
    assert status == 422 and "NEW61" in answer["error"]
    assert len(fake.calls_to("/tokens")) == 20
    status, answer = await served.push(unknown(61, 20))
    assert status == 422 and "NEW71" in answer["error"]
    assert len(fake.calls_to("/tokens")) == 30
    status, answer = await served.push(unknown(71, 5))
    assert status == 422 and "per minute" in answer["error"] and "NEW71" in answer["error"]
    assert len(fake.calls_to("/tokens")) == 30, "the minute's budget is spent"
    status, answer = await served.push(unknown(1, 10))
    assert (status, answer["accepted"]) == (200, 10), "resolved tokens are known now"
    assert len(fake.calls_to("/tokens")) == 30


async def test_ingest_unknown_symbol_with_lookup_reserve_spent_refused_422(
        tm_served: tuple[Served, FakeTokenMetrics]) -> None:
    served, fake = tm_served
    now = datetime.now(UTC)
    await served.app.store.set_meta(USAGE_KEY, Usage(month_key(now), 0, 10**9).encode())
    status, answer = await served.push(unknown(1, 1))
    assert status == 422
    assert "Cannot look NEW1 up right now" in answer["error"] and "spent" in answer["error"]
    assert fake.calls_to("/tokens") == []
    assert await stored(served.app) == NOTHING
