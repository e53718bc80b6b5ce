"""delivery: bursts through the real Dispatcher and notifiers to the strict platform fakes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import discord

from alertbot.domain.models import Destination
from alertbot.platforms.discord.notifier import DiscordNotifier
from alertbot.platforms.telegram.notifier import TelegramNotifier
from alertbot.ports.clock import SystemClock
from alertbot.ports.notifier import Notifier
from alertbot.services.dispatcher import Dispatcher
from alertbot.services.pacing import Pacer
from bench.ceiling import Shape, discord_shapes, ideal_span, judge, telegram_shapes
from bench.fixtures import flip, open_store, subscribe_all, token
from bench.report import Figures, emit, progress, rounded
from tests.fakes.discord_api import FakeChannel, FakeDiscord, FakeGuild, patch_discord_urls
from tests.fakes.telegram_api import FakeTelegram

OURS = "alertbot"
TARGET = 0.95
GUILD_ID = 880_000_000_000_000_000
SLACK_S = 30.0
"""Our sender may take twice the ideal duration plus this before the rest counts as lost."""

Arrival = tuple[str, float]
"""(chat, arrival time at the fake) of one accepted message."""


def burst_figures(bench: str, sender: str, shape: Shape, arrivals: Sequence[Arrival],
                  unique: int, rate_limited: int, **extra: object) -> Figures:
    """The figures of one sender delivering one shape (printed as a JSON line)."""
    judged = judge(arrivals, shape.windows)
    messages = len(shape.chats)
    ratio = judged.rate_vs_ceiling
    return emit({
        "bench": bench,
        "case": f"{sender}: {shape.platform} {shape.name}",
        "sender": sender,
        "platform": shape.platform,
        "shape": shape.name,
        "messages": messages,
        "delivered": unique,
        "lost": messages - unique,
        "duplicates": len(arrivals) - unique,
        "429s": rate_limited,
        "elapsed_s": rounded(judged.elapsed_s, 2),
        "t90_s": rounded(judged.t90_s, 2),
        "ideal_s": rounded(judged.ideal_s, 2),
        "rate_per_s": None if judged.rate is None else rounded(judged.rate, 3),
        "ceiling_per_s": None if judged.ceiling is None else rounded(judged.ceiling, 3),
        "rate_vs_ceiling": None if ratio is None else rounded(ratio, 4),
        "limits": shape.limits_text,
        **extra,
    })


async def queue_burst(path: Path, shape: Shape) -> int:
    """Subscribe the shape's chats and commit `per_chat` changes: one outbox row per message."""
    store = await open_store(path)
    try:
        chats = list(dict.fromkeys(shape.chats))
        await subscribe_all(store, (Destination(shape.platform, chat) for chat in chats))
        now = datetime.now(UTC)
        changes = [flip(token(i + 1), detected=now, day=i) for i in range(shape.per_chat)]
        result = await store.record_poll([], changes, now)
    finally:
        await store.close()
    return result.outbox_rows


async def dispatch_while(path: Path, notifier: Notifier, pacer: Pacer,
                         delivered: Awaitable[None]) -> None:
    """Run the real Dispatcher on the queued store until `delivered` completes or times out."""
    store = await open_store(path)
    dispatcher = Dispatcher(store, {notifier.platform: notifier}, SystemClock(), pacer=pacer)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        await delivered
    except TimeoutError:
        progress("delivery: gave up waiting; what is missing counts as lost")
    finally:
        stop.set()
        await task
        await store.close()


async def ours_telegram(shape: Shape, workdir: Path, bench: str = "delivery") -> Figures:
    """Our Dispatcher and TelegramNotifier (PTB underneath) against the strict Telegram fake."""
    path = workdir / f"{bench}-telegram-{len(shape.chats)}-{len(set(shape.chats))}.db"
    await queue_burst(path, shape)
    async with FakeTelegram() as fake:
        pacer = Pacer()
        notifier = TelegramNotifier.connect(fake.token, fake.root, pacer=pacer)
        try:
            everything = fake.wait_until(lambda: len(fake.sent) >= len(shape.chats),
                                         timeout=_timeout(shape))
            await dispatch_while(path, notifier, pacer, everything)
        finally:
            await notifier.close()
        arrivals = [(str(m.chat_id), m.timestamp) for m in fake.sent]
        unique = len({(m.chat_id, m.text) for m in fake.sent})
        return burst_figures(bench, OURS, shape, arrivals, unique, fake.rate_limited,
                             target=TARGET)


NO_HEADERS = " (fake sends no rate-limit headers)"
"""Case suffix of the Discord run where only our pacer paces (discord.py sees no buckets)."""


@contextlib.asynccontextmanager
async def discord_fake(shape: Shape, headers: bool = True) -> AsyncIterator[FakeDiscord]:
    """A strict Discord fake whose guild has the shape's channels, with discord.py pointed at it."""
    channels = [FakeChannel(id=int(c), name=f"alerts-{n}")
                for n, c in enumerate(dict.fromkeys(shape.chats))]
    async with FakeDiscord(guilds=[FakeGuild(id=GUILD_ID, channels=channels)],
                           send_ratelimit_headers=headers) as fake:
        with patch_discord_urls(fake):
            yield fake


async def ours_discord(shape: Shape, workdir: Path, bench: str = "delivery",
                       headers: bool = True) -> Figures:
    """Our Dispatcher and DiscordNotifier (discord.py underneath) against the strict fake."""
    variant = "" if headers else "-noheaders"
    path = workdir / f"{bench}-discord-{len(shape.chats)}-{len(set(shape.chats))}{variant}.db"
    await queue_burst(path, shape)
    async with discord_fake(shape, headers) as fake, aiohttp.ClientSession() as session:
        client = discord.Client(intents=discord.Intents.none())
        await client.login(fake.token)
        pacer = Pacer()
        notifier = DiscordNotifier(session, client=client)
        try:
            everything = fake.wait_until(lambda: len(fake.messages) >= len(shape.chats),
                                         timeout=_timeout(shape))
            await dispatch_while(path, notifier, pacer, everything)
        finally:
            await client.close()
        arrivals = [(str(m.channel_id), m.time) for m in fake.messages]
        unique = len({m.nonce for m in fake.messages})
        named = shape if headers else dataclasses.replace(shape, name=shape.name + NO_HEADERS)
        return burst_figures(bench, OURS, named, arrivals, unique, fake.rate_limited,
                             target=TARGET)


def _timeout(shape: Shape) -> float:
    return 2 * ideal_span(shape.chats, shape.windows) + SLACK_S


Runner = Callable[[], Coroutine[Any, Any, Figures]]


@dataclass(slots=True)
class Schedule:
    """Long, light runs in the background while heavy ones run one after another.

    The single-chat bursts take 35-80 s but send about one message a second, so they overlap
    with the rest instead of adding their minutes to the total; the heavy bursts never
    overlap each other, so none of them shares the event loop with another heavy sender.
    """

    background: list[Runner] = field(default_factory=list)
    foreground: list[Runner] = field(default_factory=list)

    def __add__(self, other: Schedule) -> Schedule:
        return Schedule([*self.background, *other.background],
                        [*self.foreground, *other.foreground])

    async def run(self) -> list[Figures]:
        """Every runner's figures: the foreground ones first, then the background ones."""
        tasks = [asyncio.create_task(run()) for run in self.background]
        results = [await run() for run in self.foreground]
        return [*results, *await asyncio.gather(*tasks)]


def schedule(workdir: Path, bench: str = "delivery") -> Schedule:
    """Every Telegram and Discord shape through our Dispatcher."""
    telegram = telegram_shapes()
    discord_ = discord_shapes()
    # Discord runners never overlap: `patch_discord_urls` points discord.py's one class-wide
    # Route.BASE at one fake, so two at once would send into each other's fake.
    return Schedule(
        background=[functools.partial(ours_telegram, telegram[0], workdir, bench)],
        foreground=[functools.partial(ours_telegram, telegram[1], workdir, bench),
                    functools.partial(ours_telegram, telegram[2], workdir, bench),
                    functools.partial(ours_discord, discord_[0], workdir, bench),
                    functools.partial(ours_discord, discord_[1], workdir, bench),
                    functools.partial(ours_discord, discord_[1], workdir, bench, False)],
    )


async def run(workdir: Path) -> list[Figures]:
    """Our Dispatcher on every shape."""
    progress("delivery: 5 shapes (the single-chat ones overlap with the others)")
    return await schedule(workdir).run()
