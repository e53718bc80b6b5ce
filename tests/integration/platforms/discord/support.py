"""Shared helpers for tests that drive the real discord.py against the fake Discord."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import discord

from alertbot.domain.models import Change, Direction, Kind, Token, make_change_id
from alertbot.platforms.discord.notifier import DiscordNotifier
from tests.fakes.discord_api import FakeDiscord

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BTC = Token(3375, "BTC", "Bitcoin", "bitcoin")
EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}


def flip(token: Token = BTC, kind: Kind = Kind.SIGNAL, to: float = 1.0, day: int = 0) -> Change:
    """A daily-signal flip of `token`."""
    source = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=day)
    return Change(make_change_id(token.token_id, kind, -to, to, source), token, kind, -to, to,
                  Direction.UP if to > 0 else Direction.DOWN, source, NOW,
                  "bearish" if to > 0 else "bullish", "bullish" if to > 0 else "bearish", "flip")


@contextlib.asynccontextmanager
async def connected_client(fake: FakeDiscord, **options: Any) -> AsyncIterator[discord.Client]:
    """A real discord.Client logged in to the fake, with its guild cache filled."""
    intents = discord.Intents.none()
    intents.guilds = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.1, **options)
    ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        ready.set()

    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(ready.wait(), 5.0)
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, 5.0)


@contextlib.asynccontextmanager
async def notifier_for(fake: FakeDiscord, **options: Any) -> AsyncIterator[DiscordNotifier]:
    """A DiscordNotifier over a connected client and a fresh aiohttp session."""
    async with aiohttp.ClientSession() as session, connected_client(fake, **options) as client:
        yield DiscordNotifier(session, client=client)


def embed_within_limits(embed: dict[str, Any]) -> bool:
    """Whether an embed as sent obeys every documented Discord embed limit."""
    total = 0
    for key, limit in EMBED_TEXT_LIMITS.items():
        size = len(str(embed.get(key) or "").strip())
        if size > limit:
            return False
        total += size
    footer = len(str((embed.get("footer") or {}).get("text") or "").strip())
    author = len(str((embed.get("author") or {}).get("name") or "").strip())
    if footer > 2048 or author > 256:
        return False
    total += footer + author
    fields = embed.get("fields") or []
    if len(fields) > 25:
        return False
    for fld in fields:
        name, value = str(fld.get("name", "")).strip(), str(fld.get("value", "")).strip()
        if len(name) > 256 or len(value) > 1024 or not name or not value:
            return False
        total += len(name) + len(value)
    return total <= 6000
