"""peers: the same Telegram bursts sent the ways users otherwise would, side by side with ours.

- Apprise (the notifier most self-hosters use): one Apprise object per chat with its `tgram://`
  URL, `notify()` once per alert, one after another. Its Telegram plugin builds request URLs
  from the class attribute `notify_url` ("https://api.telegram.org/bot"); the instance's copy
  is pointed at the loopback fake, which speaks the real Bot API (Apprise posts JSON).
- python-telegram-bot's AIORateLimiter with its defaults: every alert is a task of its own
  (as handlers and jobs send), the limiter queues them.
- A naive loop: each change sent immediately with a plain PTB Bot, one after another.

None of them retries a 429 (Apprise and the limiter's defaults; the naive loop by nature), so a
429 is an alert lost. Each sender gets a fresh strict fake.

On the Discord shapes (the fake sends rate-limit headers, as Discord does):
- discord.py with only its own rate-limit handling: a logged-in Client, one task per alert
  (as event handlers send), `channel.send(embed=…)`; discord.py retries 429s itself.
- Apprise's Discord notifier: one incoming webhook per channel (`discord://ID/TOKEN`), one
  `notify()` per alert, one after another. Webhooks have their own limit (5 per 2 s per
  webhook, no global one), so its figures are judged against the channel ceiling only for
  comparison; it may come out above 100 %.
- A naive aiohttp loop: POST Create Message per alert, one after another, failures dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import apprise
import discord
import telegram
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.telegram import NotifyTelegram
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder

from alertbot.domain.models import Change, Policy
from alertbot.domain.render import render_change
from alertbot.platforms.discord.embeds import alert_embed
from alertbot.platforms.telegram.client import NO_PREVIEW, chat_ref
from alertbot.platforms.telegram.format import alert_lines, html_chunks
from bench import noise
from bench.ceiling import Shape, discord_shapes, ideal_span, telegram_shapes
from bench.delivery import (
    SLACK_S,
    Runner,
    Schedule,
    burst_figures,
    discord_fake,
    ours_discord,
    ours_telegram,
)
from bench.delivery import schedule as delivery_schedule
from bench.fixtures import flip, token
from bench.report import Figures, emit, progress, rounded
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

APPRISE = "apprise"
PTB_LIMITER = "ptb AIORateLimiter"
NAIVE = "naive loop"
DISCORD_PY = "discord.py own limits"
APPRISE_DISCORD = "apprise webhooks"
NAIVE_AIOHTTP = "naive aiohttp loop"
WEBHOOK_BASE = 960_000_000_000_000_000
FLAP_GUARD = timedelta(hours=2)

Outgoing = list[tuple[str, Change]]
"""(chat, change) of every message of a shape, in queue order."""


def outgoing(shape: Shape) -> Outgoing:
    """The k-th message to a chat carries the k-th change, as in our queued burst."""
    now = datetime.now(UTC)
    changes = [flip(token(i + 1), detected=now, day=i) for i in range(shape.per_chat)]
    seen: dict[str, int] = {}
    out = []
    for chat in shape.chats:
        k = seen[chat] = seen.get(chat, -1) + 1
        out.append((chat, changes[k]))
    return out


def html(change: Change) -> str:
    """The exact HTML our notifier sends for one alert."""
    return html_chunks(alert_lines(render_change(change)))[0]


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Peers log every refused request; thousands of those lines would bury the figures."""
    names = ("apprise", "telegram.ext", "httpx")
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _apprise_send_all(fake: FakeTelegram, messages: Outgoing) -> None:
    objects: dict[str, apprise.Apprise] = {}
    for chat, change in messages:
        sender = objects.get(chat)
        if sender is None:
            plugin = apprise.Apprise.instantiate(f"tgram://{fake.token}/{chat}/")
            if not isinstance(plugin, NotifyTelegram):
                raise RuntimeError("Apprise did not accept the tgram:// URL")
            plugin.notify_url = fake.base_url
            sender = objects[chat] = apprise.Apprise()
            sender.add(plugin)
        sender.notify(body=render_change(change).text)


async def via_apprise(fake: FakeTelegram, messages: Outgoing) -> None:
    """Apprise is synchronous (requests): it runs in a thread beside the fake's event loop."""
    await asyncio.to_thread(_apprise_send_all, fake, messages)


async def via_ptb_limiter(fake: FakeTelegram, messages: Outgoing) -> None:
    """A PTB Application built with AIORateLimiter() defaults; one task per alert."""
    app = (ApplicationBuilder().token(fake.token).base_url(fake.base_url)
           .base_file_url(fake.base_file_url).rate_limiter(AIORateLimiter()).build())
    async with app:
        await asyncio.gather(*(app.bot.send_message(chat_id=chat_ref(chat), text=html(change),
                                                    parse_mode=ParseMode.HTML,
                                                    link_preview_options=NO_PREVIEW)
                               for chat, change in messages), return_exceptions=True)


async def via_naive_loop(fake: FakeTelegram, messages: Outgoing) -> None:
    """Send each change the moment it is seen; a failure is logged and forgotten."""
    async with telegram.Bot(fake.token, base_url=fake.base_url,
                            base_file_url=fake.base_file_url) as bot:
        for chat, change in messages:
            with contextlib.suppress(TelegramError):
                await bot.send_message(chat_id=chat_ref(chat), text=html(change),
                                       parse_mode=ParseMode.HTML,
                                       link_preview_options=NO_PREVIEW)


SENDERS = {APPRISE: via_apprise, PTB_LIMITER: via_ptb_limiter, NAIVE: via_naive_loop}


async def via_discord_py(fake: FakeDiscord, messages: Outgoing) -> None:
    """A logged-in discord.Client; one task per alert, discord.py's buckets and 429 retries."""
    client = discord.Client(intents=discord.Intents.none())
    await client.login(fake.token)
    try:
        await asyncio.gather(*(client.get_partial_messageable(int(chat)).send(
            embed=alert_embed(render_change(change)),
            allowed_mentions=discord.AllowedMentions.none())
            for chat, change in messages), return_exceptions=True)
    finally:
        await client.close()


def _hook(chat: str) -> tuple[int, str]:
    """The incoming webhook (id, token) the Apprise peer uses for one channel."""
    return WEBHOOK_BASE + int(chat) % 1_000_000, "t" * 68


def _apprise_discord_all(fake: FakeDiscord, messages: Outgoing) -> None:
    objects: dict[str, apprise.Apprise] = {}
    for chat, change in messages:
        sender = objects.get(chat)
        if sender is None:
            hook_id, hook_token = _hook(chat)
            plugin = apprise.Apprise.instantiate(f"discord://{hook_id}/{hook_token}/")
            if not isinstance(plugin, NotifyDiscord):
                raise RuntimeError("Apprise did not accept the discord:// URL")
            plugin.notify_url = f"{fake.api_base}/webhooks"
            sender = objects[chat] = apprise.Apprise()
            sender.add(plugin)
        sender.notify(body=render_change(change).text)


async def via_apprise_discord(fake: FakeDiscord, messages: Outgoing) -> None:
    """Apprise is synchronous (requests): it runs in a thread beside the fake's event loop."""
    for chat in dict.fromkeys(chat for chat, _ in messages):
        hook_id, hook_token = _hook(chat)
        fake.add_webhook(hook_id, hook_token, channel_id=int(chat))
    await asyncio.to_thread(_apprise_discord_all, fake, messages)


async def via_naive_aiohttp(fake: FakeDiscord, messages: Outgoing) -> None:
    """POST each alert the moment it is seen; a refused one is forgotten."""
    headers = {"Authorization": f"Bot {fake.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for chat, change in messages:
            body = {"embeds": [alert_embed(render_change(change)).to_dict()]}
            with contextlib.suppress(aiohttp.ClientError):
                async with session.post(f"{fake.api_base}/channels/{chat}/messages",
                                        json=body) as response:
                    await response.read()


DISCORD_SENDERS = {DISCORD_PY: via_discord_py, APPRISE_DISCORD: via_apprise_discord,
                   NAIVE_AIOHTTP: via_naive_aiohttp}


def _webhook_arrivals(fake: FakeDiscord, chats: Sequence[str]) -> list[tuple[str, float]]:
    by_hook = {_hook(chat)[0]: chat for chat in chats}
    return [(by_hook[int(r.path.split("/webhooks/", 1)[1].split("/", 1)[0])], r.time)
            for r in fake.requests if r.kind == "webhook" and r.status in (200, 204)]


async def discord_peer(name: str, shape: Shape) -> Figures:
    """One peer sending one Discord shape to a fresh strict fake (rate-limit headers on)."""
    messages = outgoing(shape)
    async with discord_fake(shape) as fake:
        try:
            async with asyncio.timeout(2 * ideal_span(shape.chats, shape.windows) + SLACK_S):
                await DISCORD_SENDERS[name](fake, messages)
        except TimeoutError:
            progress(f"peers: {name} gave up waiting; what is missing counts as lost")
        if name == APPRISE_DISCORD:
            arrivals = _webhook_arrivals(fake, shape.chats)
            unique = len(arrivals)
        else:
            arrivals = [(str(m.channel_id), m.time) for m in fake.messages]
            unique = len({(m.channel_id, str(m.embeds)) for m in fake.messages})
        return burst_figures("peers", name, shape, arrivals, unique, fake.rate_limited)


async def peer(name: str, shape: Shape) -> Figures:
    """One peer sending one shape to a fresh strict fake."""
    messages = outgoing(shape)
    async with FakeTelegram() as fake:
        await SENDERS[name](fake, messages)
        arrivals = [(str(m.chat_id), m.timestamp) for m in fake.sent]
        unique = len({(m.chat_id, m.visible_text) for m in fake.sent})
        return burst_figures("peers", name, shape, arrivals, unique, fake.rate_limited)


def noise_lines(history: str, changes: Sequence[Change], days: float) -> list[Figures]:
    """Messages per channel per day: naive loop, our defaults, and our flap guard."""
    lines = [emit({
        "bench": "peers",
        "case": f"{history}: {NAIVE}",
        "history": history,
        "sender": None,
        "policy": f"{NAIVE} (every change at once)",
        "changes_per_day": rounded(len(changes) / days, 1),
        "messages_per_channel_day": rounded(len(changes) / days, 1),
        "details": f"{len(changes)} changes in {days:.0f} days, no delay",
    })]
    for label, policy in (("alertbot defaults (10/h, flap guard off)", Policy()),
                          ("alertbot 10/h + flap guard 2 h", Policy(settle=FLAP_GUARD))):
        outcome = noise.simulate(changes, policy)
        cancelled = outcome.suppressed.get(noise.FLAP_CANCELLED, 0)
        lines.append(emit({
            "bench": "peers",
            "case": f"{history}: {label}",
            "history": history,
            "policy": label,
            "changes_per_day": rounded(len(changes) / days, 1),
            "messages_per_channel_day": rounded(outcome.messages / days, 1),
            "digests_per_day": rounded(outcome.digests / days, 2),
            "alerts_delivered_per_day": rounded(outcome.alerts_sent / days, 1),
            "flap_cancelled_per_day": rounded(cancelled / days, 1),
            "median_delay_min": rounded(noise.median_delay_min(outcome), 1),
            "busiest_hour": outcome.busiest_hour,
            "details": f"{outcome.digests / days:.1f} digests/day, {cancelled / days:.1f} "
                       f"flap-cancelled/day, busiest hour {outcome.busiest_hour} messages, "
                       f"median delay {noise.median_delay_min(outcome):.0f} min",
        }))
    return lines


def schedule(workdir: Path, *, ours: bool) -> Schedule:
    """Every peer on every Telegram and Discord shape, and ours too when `delivery` does not
    run them."""
    shapes = telegram_shapes()
    discords = discord_shapes()

    def runners(shape: Shape) -> list[Runner]:
        out: list[Runner] = []
        if ours:
            out.append(functools.partial(ours_telegram, shape, workdir, "peers"))
        out.extend(functools.partial(peer, name, shape) for name in SENDERS)
        return out

    def discord_runners(shape: Shape) -> list[Runner]:
        out: list[Runner] = []
        if ours:
            out.append(functools.partial(ours_discord, shape, workdir, "peers"))
        out.extend(functools.partial(discord_peer, name, shape) for name in DISCORD_SENDERS)
        return out

    # Discord runners run one after another (see delivery.schedule).
    return Schedule(runners(shapes[0]),
                    [r for shape in shapes[1:] for r in runners(shape)]
                    + discord_runners(discords[0]) + discord_runners(discords[1]))


async def run(workdir: Path, *, with_delivery: bool = False) -> list[Figures]:
    """The peers beside ours on the Telegram shapes, then the noisy histories.

    With `with_delivery`, the `delivery` benchmark's shapes join the same schedule (their lines
    keep "bench": "delivery") so both fit the time budget and ours are not measured twice.
    """
    plan = schedule(workdir, ours=not with_delivery)
    if with_delivery:
        plan = delivery_schedule(workdir) + plan
    progress("peers: Apprise, PTB AIORateLimiter and a naive loop on the Telegram shapes; "
             "discord.py, Apprise webhooks and a naive aiohttp loop on the Discord shapes"
             + (", with the delivery shapes" if with_delivery else ""))
    with quiet_libraries():
        lines = await plan.run()
    progress("peers: replaying noisy histories through the throttle")
    demo, demo_days = await noise.demo_changes()
    lines += noise_lines("demo data, hourly polls", demo, demo_days)
    flapping, flapping_days = noise.flapping_changes()
    lines += noise_lines("generated flapping signals", flapping, flapping_days)
    return lines
