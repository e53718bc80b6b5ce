"""Outbound webhook notifier against a local HTTP endpoint."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import pytest

from alertbot.domain.models import Change, Destination, Direction, Kind, Token, make_change_id
from alertbot.domain.render import render
from alertbot.domain.signing import SIGNATURE_HEADER, verify
from alertbot.platforms.webhook import WebhookNotifier
from alertbot.ports.notifier import DeliveryError, Target
from tests.fakes.webhook_receiver import WebhookReceiver

SECRET = "whsec-test-123"
TS = datetime(2026, 11, 27, tzinfo=UTC)
TOKEN = Token(3375, "BTC", "Bitcoin <b>&", "bitcoin")
CHANGE = Change(make_change_id(3375, Kind.SIGNAL, -1, 1, TS), TOKEN, Kind.SIGNAL, -1.0, 1.0,
                Direction.UP, TS, TS, "bearish", "bullish", "flip")
DEST = Destination("webhook", "wh-1")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_webhook_notifier_posts_signed_json_with_idempotency_key(
        receiver: WebhookReceiver, session: aiohttp.ClientSession) -> None:
    notifier = WebhookNotifier(session, secret=lambda: SECRET, clock=lambda: 1_800_000_000.0)
    result = await notifier.send(Target(DEST, receiver.url), render([CHANGE]), key="akey123",
                                 silent=False)
    (request,) = receiver.received
    assert result.message_id == "akey123"
    assert request.key == "akey123"
    assert request.headers["Content-Type"] == "application/json"
    assert verify(SECRET, request.headers[SIGNATURE_HEADER], request.body, 1_800_000_000.0) \
        == 1_800_000_000
    payload = request.json
    assert payload["type"] == "alert" and payload["reason"] == "sent"
    (alert,) = payload["alerts"]
    assert (alert["symbol"], alert["kind"], alert["direction"]) == ("BTC", "signal", "up")
    assert alert["name"] == "Bitcoin <b>&" and alert["link"].endswith("/bitcoin")


async def test_webhook_notifier_unsigned_without_secret(receiver: WebhookReceiver,
                                                        session: aiohttp.ClientSession) -> None:
    await WebhookNotifier(session).send(Target(DEST, receiver.url), render([CHANGE, CHANGE]),
                                        key="dkey", silent=True)
    (request,) = receiver.received
    assert SIGNATURE_HEADER not in request.headers
    assert request.json["type"] == "digest" and len(request.json["alerts"]) == 2


@pytest.mark.parametrize(("status", "headers", "flags"), [
    (429, {"Retry-After": "7"}, {"rate_limited": True, "retry_after": 7.0}),
    (503, {}, {"retryable": True, "rate_limited": False}),
    (408, {}, {"retryable": True}),
    (410, {}, {"destination_gone": True, "retryable": False}),
    (400, {}, {"retryable": False, "destination_gone": False}),
    (302, {"Location": "https://elsewhere.test/"}, {"retryable": False}),
])
async def test_webhook_notifier_maps_statuses(receiver: WebhookReceiver,
                                              session: aiohttp.ClientSession, status: int,
                                              headers: dict[str, str],
                                              flags: dict[str, object]) -> None:
    receiver.responses.append((status, headers))
    with pytest.raises(DeliveryError) as excinfo:
        await WebhookNotifier(session).send(Target(DEST, receiver.url), render([CHANGE]),
                                            key="k", silent=False)
    for name, value in flags.items():
        assert getattr(excinfo.value, name) == value
    assert "s3cr3t-token" not in str(excinfo.value)


async def test_webhook_notifier_unreachable_is_retryable_and_hides_url(
        session: aiohttp.ClientSession) -> None:
    url = "http://127.0.0.1:9/hook/s3cr3t-token"
    with pytest.raises(DeliveryError) as excinfo:
        await WebhookNotifier(session).send(Target(DEST, url), render([CHANGE]), key="k",
                                            silent=False)
    assert excinfo.value.retryable
    assert "s3cr3t" not in str(excinfo.value) and "s3cr3t" not in repr(excinfo.value)


def test_webhook_target_repr_hides_address() -> None:
    assert "s3cr3t" not in repr(Target(DEST, "https://x.test/s3cr3t"))


def test_webhook_payload_is_plain_json() -> None:
    from alertbot.platforms.webhook import message_payload

    payload = message_payload(render([CHANGE]), "k")
    assert json.loads(json.dumps(payload)) == payload


@pytest.mark.parametrize("status", [429, 503])
async def test_webhook_notifier_retry_after_http_date_is_honoured(
        receiver: WebhookReceiver, session: aiohttp.ClientSession, status: int) -> None:
    now = 1_790_000_000.0
    receiver.responses.append((status, {"Retry-After": format_datetime(
        datetime.fromtimestamp(now + 90, UTC), usegmt=True)}))
    notifier = WebhookNotifier(session, clock=lambda: now)
    with pytest.raises(DeliveryError) as excinfo:
        await notifier.send(Target(DEST, receiver.url), render([CHANGE]), key="k", silent=False)
    assert excinfo.value.retryable and excinfo.value.retry_after == 90.0
