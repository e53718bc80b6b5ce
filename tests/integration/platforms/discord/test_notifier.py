"""DiscordNotifier with the real discord.py against the fake Discord (REST, gateway, webhooks)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path

import aiohttp
import pytest

from alertbot.domain.address import address_id
from alertbot.domain.models import ALL_KINDS, Destination, DigestSchedule, Kind, Token
from alertbot.domain.render import render, render_change, render_digest
from alertbot.domain.scheduled_digest import (
    build_summary,
    digest_change,
    digest_change_id,
    period_containing,
)
from alertbot.platforms.discord.embeds import EMBED_TOTAL_MAX, alert_embed
from alertbot.platforms.discord.notifier import DiscordNotifier, validate_discord_webhook_url
from alertbot.ports.notifier import DeliveryError, Target
from alertbot.services.dispatcher import Dispatcher, message_key
from alertbot.store.sqlite import SqliteStore
from tests.fakes.discord_api import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    running_fake_discord,
)
from tests.integration.platforms.discord.support import (
    BTC,
    NOW,
    embed_within_limits,
    flip,
    notifier_for,
)
from tests.support import ManualClock

CHANNEL = Destination("discord", str(DEFAULT_CHANNEL_ID))
SUPPRESS_NOTIFICATIONS = 1 << 12
THREAD_ID = 444444444444444499
KEY = "a" + "k" * 23


def huge_token(i: int) -> Token:
    return Token(10_000 + i, f"SYM{i}" + "X" * 300, "Very long name " * 200 + str(i), f"t{i}")


# --- embeds -----------------------------------------------------------------------------------


async def test_discord_send_huge_digest_stays_within_every_embed_limit(
    fake_discord: FakeDiscord,
) -> None:
    changes = [flip(huge_token(i), day=i % 20) for i in range(400)]
    message = render_digest(changes)
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), message, key=KEY, silent=False)
    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    [embed] = recorded.embeds
    assert embed_within_limits(embed)
    assert embed["title"] == "400 more changes"
    assert embed["description"].splitlines()[-1].startswith("… and ")
    assert len(alert_embed(message)) <= EMBED_TOTAL_MAX


async def test_discord_send_long_token_names_stay_within_every_embed_limit(
    fake_discord: FakeDiscord,
) -> None:
    change = flip(huge_token(1))
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), render_change(change), key=KEY, silent=False)
    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    [embed] = recorded.embeds
    assert embed_within_limits(embed)
    assert embed["title"].endswith("…") and len(embed["title"]) == 256
    assert embed["color"] == 0x2ECC71 and embed["url"] == "https://app.tokenmetrics.com/t1"
    assert [f["name"] for f in embed["fields"]] == ["From", "To", "Kind", "As of"]
    assert [f["value"] for f in embed["fields"][:2]] == ["bearish", "bullish"]
    assert embed["timestamp"].startswith("2026-11-01")


async def test_discord_embed_downgrade_is_red_with_old_and_new_value(
    fake_discord: FakeDiscord,
) -> None:
    change = replace(flip(to=-1.0), kind=Kind.SIGNAL)
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), render_change(change), key=KEY, silent=False)
    [embed] = fake_discord.messages[0].embeds
    assert embed["color"] == 0xE74C3C
    assert "bullish → bearish" in embed["description"]
    assert embed["title"] == "BTC daily signal turned bearish"


async def test_discord_send_mentions_in_token_name_ping_no_one(fake_discord: FakeDiscord) -> None:
    evil = Token(666, "@here", "@everyone <@&123> <@!222222222222222222> free coins", "evil")
    hook = fake_discord.add_webhook()
    webhook = Target(Destination("discord", address_id(hook.url)), address=hook.url)
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), render_change(flip(evil)), key=KEY, silent=False)
        await notifier.send(webhook, render_change(flip(evil)), key=KEY, silent=False)
        await notifier.send(Target(CHANNEL), render_digest([flip(evil), flip(BTC, day=1)]),
                            key="d" + KEY[1:], silent=False)
    payloads = ([m.payload for m in fake_discord.messages]
                + [w.payload for w in fake_discord.webhook_executions])
    assert len(payloads) == 3
    for payload in payloads:
        assert payload["allowed_mentions"] == {"parse": []}
        text = str(payload["embeds"])
        assert "@everyone" not in text and "<@&123>" not in text and "@here" not in text
        assert not payload.get("content")


# --- nonce, silent, threads --------------------------------------------------------------------


async def test_discord_send_same_key_twice_creates_one_message(fake_discord: FakeDiscord) -> None:
    message = render_change(flip())
    async with notifier_for(fake_discord) as notifier:
        first = await notifier.send(Target(CHANNEL), message, key=KEY, silent=False)
        again = await notifier.send(Target(CHANNEL), message, key=KEY, silent=False)
    assert len(fake_discord.messages) == 1 and fake_discord.nonce_dedupes == 1
    assert first.message_id == again.message_id == str(fake_discord.messages[0].id)
    assert fake_discord.messages[0].nonce == KEY and fake_discord.messages[0].enforce_nonce is True


async def test_discord_send_silent_sets_suppress_notifications_flag(
    fake_discord: FakeDiscord,
) -> None:
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=True)
        await notifier.send(Target(CHANNEL), render_change(flip(day=1)), key="b" + KEY[1:],
                            silent=False)
    silent, loud = fake_discord.messages
    assert silent.flags == SUPPRESS_NOTIFICATIONS
    assert not (loud.flags or 0) & SUPPRESS_NOTIFICATIONS


async def test_discord_send_to_thread_destination_posts_in_the_thread(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.add_channel(DEFAULT_GUILD_ID, FakeChannel(id=THREAD_ID, name="btc", type=11,
                                                   parent_id=DEFAULT_CHANNEL_ID))
    thread = Destination("discord", str(DEFAULT_CHANNEL_ID), str(THREAD_ID))
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(thread), render_change(flip()), key=KEY, silent=False)
        limits = notifier.limits(thread)
    assert len(fake_discord.messages_in(THREAD_ID)) == 1
    assert fake_discord.messages_in(DEFAULT_CHANNEL_ID) == []
    assert [key for _, key in limits] == ["bot", str(THREAD_ID)]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, 10003, "deleted"),
        (404, 10004, "no longer in this server"),
        (403, 50001, "Missing Access"),
        (403, 50013, "Send Messages"),
    ],
)
async def test_discord_send_dead_channel_code_raises_destination_gone(
    fake_discord: FakeDiscord, status: int, code: int, expected: str
) -> None:
    fake_discord.set_channel_error(DEFAULT_CHANNEL_ID, status, code)
    async with notifier_for(fake_discord) as notifier:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=False)
    assert caught.value.destination_gone and not caught.value.retryable
    assert expected in caught.value.reason


async def test_discord_send_missing_permission_names_the_missing_one() -> None:
    denied = FakeChannel(id=DEFAULT_CHANNEL_ID, permission_overwrites=[
        {"id": str(DEFAULT_GUILD_ID), "type": 0, "allow": "0", "deny": str(1 << 11)}])
    guild = FakeGuild(id=DEFAULT_GUILD_ID, channels=[denied], bot_permissions=0)
    async with running_fake_discord(guilds=[guild]) as fake, notifier_for(fake) as notifier:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=False)
    reason = caught.value.reason
    assert caught.value.destination_gone
    # discord.py (like Discord) treats Embed Links as denied while Send Messages is.
    assert "the bot is missing Send Messages" in reason and "in this channel" in reason
    assert "View Channel" not in reason and "/subscribe" in reason


async def test_discord_send_long_rate_limit_raises_rate_limited_with_retry_after(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.fail_next("create_message", status=429, retry_after=45.0)
    async with notifier_for(fake_discord, max_ratelimit_timeout=30.0) as notifier:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=False)
    assert caught.value.rate_limited and caught.value.retryable
    assert caught.value.retry_after == pytest.approx(45.0)
    assert not caught.value.destination_gone and fake_discord.messages == []


async def test_discord_send_short_rate_limit_is_waited_out_and_delivered(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.fail_next("create_message", status=429, retry_after=0.05)
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=False)
    assert fake_discord.rate_limited == 1 and len(fake_discord.messages) == 1


async def test_discord_send_that_empties_the_bucket_returns_without_sleeping_its_reset() -> None:
    # Stock discord.py sleeps Reset-After (here an hour) inside the send that saw Remaining 0;
    # the pacer owns Create Message, so the send returns. The guard only catches that hang.
    async with running_fake_discord(create_message_limit=(2, 3600.0)) as fake, \
            notifier_for(fake) as notifier:
        async with asyncio.timeout(60):
            for n in range(2):
                await notifier.send(Target(CHANNEL), render_change(flip(day=n)),
                                    key=f"{KEY[:-1]}{n}", silent=False)
    assert len(fake.messages) == 2 and fake.rate_limited == 0


async def test_discord_send_invalid_form_body_is_permanent(fake_discord: FakeDiscord) -> None:
    fake_discord.fail_next("create_message", status=400, code=50035)
    async with notifier_for(fake_discord) as notifier:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=False)
    error = caught.value
    assert not (error.retryable or error.destination_gone or error.rate_limited)
    assert "50035" in error.reason


async def test_discord_send_without_bot_token_to_channel_is_retryable(
    fake_discord: FakeDiscord,
) -> None:
    async with aiohttp.ClientSession() as session:
        notifier = DiscordNotifier(session)
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(Target(CHANNEL), render_change(flip()), key=KEY, silent=False)
    assert caught.value.retryable and "DISCORD_BOT_TOKEN" in caught.value.reason
    assert fake_discord.requests_of("create_message") == []


# --- webhook mode ----------------------------------------------------------------------------


async def test_discord_webhook_send_posts_embed_through_webhook_with_wait(
    fake_discord: FakeDiscord,
) -> None:
    hook = fake_discord.add_webhook()
    destination = Destination("discord", address_id(hook.url))
    async with aiohttp.ClientSession() as session:
        notifier = DiscordNotifier(session)
        delivered = await notifier.send(Target(destination, hook.url), render_change(flip()),
                                        key=KEY, silent=True)
        limits = notifier.limits(destination)
    [execution] = fake_discord.webhook_executions
    assert execution.wait is True and delivered.message_id == str(execution.message_id)
    assert execution.embeds[0]["title"] == "BTC daily signal turned bullish"
    assert execution.allowed_mentions == {"parse": []}
    assert execution.flags == SUPPRESS_NOTIFICATIONS
    assert [(limit.name, key) for limit, key in limits] == [("discord_webhook",
                                                             destination.chat_id)]
    assert fake_discord.messages == []


async def test_discord_webhook_send_to_thread_passes_thread_id(fake_discord: FakeDiscord) -> None:
    hook = fake_discord.add_webhook()
    destination = Destination("discord", address_id(hook.url), str(THREAD_ID))
    async with aiohttp.ClientSession() as session:
        await DiscordNotifier(session).send(Target(destination, hook.url),
                                            render_change(flip()), key=KEY, silent=False)
    [execution] = fake_discord.webhook_executions
    assert execution.thread_id == THREAD_ID


async def test_discord_webhook_deleted_raises_destination_gone_without_url(
    fake_discord: FakeDiscord,
) -> None:
    hook = fake_discord.add_webhook()
    fake_discord.delete_webhook(hook.id)
    target = Target(Destination("discord", address_id(hook.url)), hook.url)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryError) as caught:
            await DiscordNotifier(session).send(target, render_change(flip()), key=KEY,
                                                silent=False)
    error = caught.value
    assert error.destination_gone and "10015" in error.reason
    assert hook.token not in f"{error} {error!r} {target!r}"


async def test_discord_webhook_wrong_token_raises_destination_gone(
    fake_discord: FakeDiscord,
) -> None:
    hook = fake_discord.add_webhook()
    wrong = hook.url.replace(hook.token, "w" * 68)
    target = Target(Destination("discord", address_id(wrong)), wrong)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DeliveryError) as caught:
            await DiscordNotifier(session).send(target, render_change(flip()), key=KEY,
                                                silent=False)
    assert caught.value.destination_gone and "w" * 68 not in caught.value.reason


@pytest.mark.parametrize("webhook", [False, True])
async def test_discord_edge_ban_retry_after_http_date_is_honoured(
    fake_discord: FakeDiscord, webhook: bool,
) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    header = format_datetime(when, usegmt=True)
    hook = fake_discord.add_webhook()
    if webhook:
        fake_discord.edge_ban_next("webhook", header)
        target = Target(Destination("discord", address_id(hook.url)), hook.url)
    else:
        fake_discord.edge_ban_next("create_message", header)
        target = Target(CHANNEL)
    async with notifier_for(fake_discord) as notifier:
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(target, render_change(flip()), key=KEY, silent=False)
    error = caught.value
    assert error.rate_limited and error.retry_after is not None
    assert 500 < error.retry_after <= 600  # about ten minutes, however long the call took


async def test_discord_webhook_malformed_json_answer_is_retryable_not_gone(
    fake_discord: FakeDiscord,
) -> None:
    hook = fake_discord.add_webhook()
    fake_discord.break_webhook_bodies()
    target = Target(Destination("discord", address_id(hook.url), str(THREAD_ID)), hook.url)
    async with aiohttp.ClientSession() as session:
        notifier = DiscordNotifier(session)
        with pytest.raises(DeliveryError) as caught:
            await notifier.send(target, render_change(flip()), key=KEY, silent=False)
        error = caught.value
        assert error.retryable and not error.destination_gone
        assert "malformed" in error.reason and hook.token not in f"{error} {error!r}"
        await notifier.send(target, render_change(flip()), key=KEY, silent=False)
    [execution] = fake_discord.webhook_executions
    assert execution.thread_id == THREAD_ID


def test_validate_discord_webhook_url_rejects_other_hosts_without_echo() -> None:
    good = "https://discord.com/api/webhooks/123456789012345678/" + "t" * 68
    assert validate_discord_webhook_url(good) == good
    for bad in ("https://example.com/api/webhooks/123456789012345678/" + "s" * 68,
                "http://discord.com/api/webhooks/123456789012345678/" + "s" * 68,
                "https://discord.com/api/webhooks/1/short-secret"):
        with pytest.raises(ValueError) as caught:
            validate_discord_webhook_url(bad)
        assert "s" * 20 not in str(caught.value) and "short-secret" not in str(caught.value)


# --- through the real dispatcher ---------------------------------------------------------------


async def _queued_store(tmp_path: Path, destination: Destination) -> SqliteStore:
    store = SqliteStore(str(tmp_path / "a.db"))
    await store.open()
    await store.subscribe(destination, BTC.token_id, ALL_KINDS, NOW - timedelta(hours=1))
    await store.record_poll([], [flip()], NOW)
    return store


async def test_dispatcher_discord_dead_channel_pauses_subscription(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    store = await _queued_store(tmp_path, CHANNEL)
    fake_discord.set_channel_error(DEFAULT_CHANNEL_ID, 403, 50001)
    try:
        async with notifier_for(fake_discord) as notifier:
            dispatcher = Dispatcher(store, {"discord": notifier},
                                    ManualClock(NOW + timedelta(seconds=1)))
            await dispatcher.run_until_idle(limit=10)
        info = await store.destination(CHANNEL)
        [subscription] = await store.subscriptions(CHANNEL)
    finally:
        await store.close()
    assert info is not None and "Missing Access" in info.paused_reason
    assert "Missing Access" in subscription.paused_reason
    assert fake_discord.messages == []


async def test_dispatcher_discord_delivers_with_outbox_key_as_nonce(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    store = await _queued_store(tmp_path, CHANNEL)
    try:
        async with notifier_for(fake_discord) as notifier:
            dispatcher = Dispatcher(store, {"discord": notifier},
                                    ManualClock(NOW + timedelta(seconds=1)))
            await dispatcher.run_until_idle(limit=10)
        info = await store.destination(CHANNEL)
    finally:
        await store.close()
    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    assert recorded.nonce == message_key(flip().change_id, CHANNEL)
    assert recorded.embeds[0]["title"] == "BTC daily signal turned bullish"
    assert info is not None and not info.paused_reason


async def test_discord_send_scheduled_digest_one_embed_resend_deduped_by_nonce(
        fake_discord: FakeDiscord) -> None:
    schedule = DigestSchedule(False, time(9, 0), "UTC")
    changes = [flip(huge_token(i), day=i % 20) for i in range(100)]
    period = period_containing(schedule, NOW)
    summary = build_summary(schedule, period, changes, {})
    message = render([digest_change(CHANNEL, summary, NOW)])
    key = message_key(digest_change_id(CHANNEL, period.key), CHANNEL)
    async with notifier_for(fake_discord) as notifier:
        first = await notifier.send(Target(CHANNEL), message, key=key, silent=False)
        again = await notifier.send(Target(CHANNEL), message, key=key, silent=False)
    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    assert first.message_id == again.message_id and fake_discord.nonce_dedupes == 1
    [embed] = recorded.embeds
    assert embed_within_limits(embed)
    assert embed["title"].startswith("Daily digest · ")
    assert "**Changes by token:**" in embed["description"]
    assert embed["footer"]["text"].startswith("Scheduled digest")
