"""Scheduled digests set with the chat command, across restarts, through real PTB and discord.py.

Each test runs real `alertbot` processes against the fake Telegram Bot API or the fake Discord
(REST and gateway). Waiting for a wall-clock period end would cost up to a minute per test, so
the first run happens "two hours ago": after it stops, the test moves what it recorded (change
detection times, when the schedules and the token mute were set) back by two hours. Its
schedules end their period one hour before now, so the period ended while the bot was down and
the next start sends its digest, as it does after any restart near a period's end.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.discord_api import DEFAULT_GUILD_ID, FakeChannel, FakeDiscord, FakeGuild
from tests.fakes.telegram_api import FakeTelegram
from tests.support import eventually

pytestmark = pytest.mark.timeout(150)

SHIFT = timedelta(hours=2)
"""How far back the first run is moved."""
DIGEST = "Daily digest · "
MUTE = "Mute BTC 24h"
MANAGE_SERVER = "32"
CHANNELS = (555555555555555551, 555555555555555552, 555555555555555553, 555555555555555554)
TIMEOUT = 30.0
"""Generous: two cores shared with other test runs."""


@dataclass(frozen=True)
class Post:
    """One message the bot posted in a chat, as a member reads it."""

    id: int
    text: str


class Platform(Protocol):
    """What a test does in chats, whichever platform they are on."""

    chats: tuple[int, int, int, int]
    env: dict[str, str]

    async def ready(self) -> None:
        """Wait until the bot is connected."""

    async def command(self, chat: int, name: str, args: str) -> str:
        """A moderator's command in `chat`; returns the bot's answer."""

    def posts(self, chat: int) -> list[Post]:
        """What the bot posted in `chat` on its own (alerts and digests), oldest first."""

    async def press_mute(self, chat: int, post: Post) -> None:
        """A moderator presses "Mute BTC 24h" on `post`."""


class Telegram:
    """Four supergroups on the fake Bot API; ADMIN moderates all of them."""

    ADMIN = 7

    def __init__(self, tg: FakeTelegram, tmp: Path) -> None:
        self.tg = tg
        self.chats = (-1001000000001, -1001000000002, -1001000000003, -1001000000004)
        for chat in self.chats:
            tg.add_chat(chat, "supergroup", title=f"Club {chat}")
            tg.set_chat_member(chat, self.ADMIN, "administrator")
        self.env = clean_env(tmp, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.root)

    async def ready(self) -> None:
        calls = len(self.tg.calls_of("getUpdates"))
        await self.tg.wait_until(lambda: len(self.tg.calls_of("getUpdates")) > calls, TIMEOUT)

    async def command(self, chat: int, name: str, args: str) -> str:
        update = self.tg.inject_message(chat, f"/{name} {args}", user_id=self.ADMIN)
        asked = update["message"]["message_id"]

        def replies() -> list[str]:
            return [m.visible_text for m in self.tg.sent_to(chat)
                    if m.reply_to_message_id == asked]

        await self.tg.wait_until(lambda: bool(replies()), TIMEOUT)
        return replies()[0]

    def posts(self, chat: int) -> list[Post]:
        return [Post(m.message_id, m.visible_text) for m in self.tg.sent_to(chat)
                if m.reply_to_message_id is None]

    async def press_mute(self, chat: int, post: Post) -> None:
        query = self.tg.press_button(chat, post.id, label=MUTE, user_id=self.ADMIN)
        answer = await self.tg.wait_for_answer(query, timeout=TIMEOUT)
        assert answer.text is not None and answer.text.startswith("Muted BTC"), answer


class Discord:
    """Four text channels of one guild on the fake Discord; the moderator has Manage Server."""

    def __init__(self, fake: FakeDiscord, tmp: Path) -> None:
        self.fake = fake
        self.chats = CHANNELS
        self.env = clean_env(tmp, DISCORD_BOT_TOKEN=fake.token, DISCORD_API_URL=fake.api_base,
                             DISCORD_GATEWAY_URL=fake.gateway_url,
                             DISCORD_GUILD_IDS=str(DEFAULT_GUILD_ID))

    async def ready(self) -> None:
        await self.fake.wait_ready(timeout=TIMEOUT, count=len(self.fake.identifies) + 1)

    async def command(self, chat: int, name: str, args: str) -> str:
        first, _, rest = args.partition(" ")
        options = {"subscribe": [{"name": "symbol", "type": 3, "value": first},
                                 {"name": "kinds", "type": 3, "value": rest}],
                   "digest": [{"name": "schedule", "type": 3, "value": args}]}[name]
        interaction = await self.fake.inject_interaction(name, options, channel_id=chat,
                                                         permissions=MANAGE_SERVER)
        answer = await self.fake.wait_for_callback(interaction, timeout=TIMEOUT)
        if answer.type == 4 and answer.data is not None:
            return str(answer.data["content"])
        # Deferred (the command took over a second, as on a busy machine): the answer follows.
        assert answer.type == 5, answer

        def followups() -> list[str]:
            return [f.content or "" for f in self.fake.followups
                    if f.interaction_id == interaction.id]

        await self.fake.wait_until(lambda: bool(followups()), TIMEOUT, "the deferred answer")
        return followups()[0]

    def posts(self, chat: int) -> list[Post]:
        return [Post(m.id, "\n".join(filter(None, (m.embeds[0].get("title"),
                                                   m.embeds[0].get("description")))))
                for m in self.fake.messages_in(chat)]

    async def press_mute(self, chat: int, post: Post) -> None:
        interaction = await self.fake.press_button(post.id, label=MUTE,
                                                   permissions=MANAGE_SERVER)
        answer = await self.fake.wait_for_callback(interaction, timeout=TIMEOUT)
        assert answer.status == 200, answer


@asynccontextmanager
async def platform(name: str, tmp: Path) -> AsyncIterator[Platform]:
    """The fake of one platform, running, and the chats the test uses on it."""
    if name == "telegram":
        async with FakeTelegram() as tg:
            yield Telegram(tg, tmp)
    else:
        guild = FakeGuild(id=DEFAULT_GUILD_ID, channels=[
            FakeChannel(id=c, name=f"club-{i}") for i, c in enumerate(CHANNELS, start=1)])
        async with FakeDiscord(guilds=[guild]) as fake:
            yield Discord(fake, tmp)


def query(tmp: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp / "alertbot.db", timeout=10) as db:
        return list(db.execute(sql, params).fetchall())


def move_back(tmp: Path, by: timedelta) -> None:
    """As if everything the first run recorded had happened `by` earlier."""
    seconds = by.total_seconds()
    with sqlite3.connect(tmp / "alertbot.db", timeout=10) as db:
        db.execute("UPDATE changes SET detected_at = detected_at - ?", (seconds,))
        db.execute("UPDATE destinations SET digest_since = digest_since - ?"
                   " WHERE digest_since IS NOT NULL", (seconds,))
        db.execute("UPDATE token_mutes SET created_at = created_at - ?, until = until - ?",
                   (seconds, seconds))


def reasons(tmp: Path, chat: int) -> list[str]:
    return [r for (r,) in query(tmp, "SELECT reason FROM outbox WHERE chat_id = ?", str(chat))]


def changes_in(post: Post) -> int:
    """How many changes an alert (or a throttle digest of held alerts) carried."""
    held = re.match(r"(\d+) more changes", post.text)
    return int(held.group(1)) if held else 1


async def wait_for_post(chats: Platform, chat: int, predicate: Callable[[Post], bool],
                        what: str) -> Post:
    await eventually(lambda: any(predicate(p) for p in chats.posts(chat)), timeout=TIMEOUT,
                     interval=0.1, what=what)
    return next(p for p in chats.posts(chat) if predicate(p))


def is_digest(post: Post) -> bool:
    return post.text.startswith(DIGEST)


@pytest.mark.parametrize("name", ["telegram", "discord"])
async def test_digest_chat_command_one_per_period_across_restarts_none_when_empty(
        tmp_path: Path, name: str) -> None:
    async with platform(name, tmp_path) as chats:
        feed, only, quiet, always = chats.chats
        env = {**chats.env, "ALERTBOT_DEMO": "1", "ALERTBOT_DEMO_SPEED": "1000000",
               "ALERTBOT_POLL_INTERVAL": "0.2"}
        first = await Alertbot(["run"], env, tmp_path).start()
        try:
            await chats.ready()
            # The period ends an hour before now once the first run is moved back two hours.
            at = f"{datetime.now(UTC) - SHIFT / 2:%H:%M}"
            for chat, extra in ((feed, ""), (only, " only"), (quiet, ""), (always, " always")):
                answer = await chats.command(chat, "digest", f"daily {at} UTC{extra}")
                assert f"Scheduled digest: daily at {at} UTC" in answer, answer
            for chat in (feed, only):
                answer = await chats.command(chat, "subscribe", "BTC signal")
                assert "Subscribed this chat to BTC (Bitcoin): daily signal" in answer, answer

            alert = await wait_for_post(chats, feed, lambda p: not is_digest(p), "an alert")
            await chats.press_mute(feed, alert)
            # BTC flips about once a second: soon a flip is muted here, and one kept for the
            # digest in the digests-only chat.
            await eventually(lambda: "token_muted" in reasons(tmp_path, feed)
                             and "digest_only" in reasons(tmp_path, only),
                             timeout=TIMEOUT, interval=0.1, what="a muted and a kept flip")
        finally:
            first_code = await first.stop()
        assert first_code == 0, first.stderr
        move_back(tmp_path, SHIFT)

        second = await Alertbot(["run"], env, tmp_path).start()
        try:
            for chat in (feed, only, always):
                await wait_for_post(chats, chat, is_digest, f"the digest in {chat}")
        finally:
            second_code = await second.stop()
        assert second_code == 0, second.stderr
        # Started again after the digests went out: nothing is sent twice.
        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=90)
        assert code == 0, err

        posts = {chat: chats.posts(chat) for chat in chats.chats}
    for bot in (first, second):
        assert "Traceback" not in bot.stderr

    digests = {chat: [p for p in found if is_digest(p)] for chat, found in posts.items()}
    assert {chat: len(found) for chat, found in digests.items()} == {
        feed: 1, only: 1, quiet: 0, always: 1}
    ended = query(tmp_path, "SELECT DISTINCT period_end FROM scheduled_digests")
    assert len(ended) == 1
    period = f"→ {datetime.fromtimestamp(ended[0][0], UTC):%Y-%m-%d %H:%M} UTC"
    assert all(period in found[0].text.splitlines()[0] for found in digests.values() if found)
    assert "No signal or grade changes in this period." in digests[always][0].text

    # Digests only: no alert was posted, the flips are in the digest.
    assert [p for p in posts[only] if not is_digest(p)] == []
    assert re.search(r"\d+ changes? across 1 token\.", digests[only][0].text)
    # A moderator muted BTC after its first alert: the digest counts the flips alerted here
    # and leaves out the ones muted.
    alerted = sum(changes_in(p) for p in posts[feed] if not is_digest(p))
    plural = "s" if alerted != 1 else ""
    assert f"{alerted} change{plural} across 1 token." in digests[feed][0].text.splitlines()
    assert "token_muted" in reasons(tmp_path, feed)
