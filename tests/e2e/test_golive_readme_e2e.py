"""The README's "Going live on Telegram" and "Going live on Discord", step by step, for real.

The shell commands and the `.env` lines are read from the README section itself and run as
written: `cp .env.example .env` in an empty folder, the two secrets uncommented and filled in
(with the fakes' values), `alertbot check`, `alertbot run`, `/id` in the chat, then
`alertbot subscribe` and `alertbot test` with the id the bot answered (and `/test` in the chat),
and the first real alert once Token Metrics publishes a change. Only the fakes' URLs, a short
poll interval and a one-token watchlist are added to `.env`: they stand in for the real services.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from alertbot.domain.commands import TEST_ALERT_TITLE
from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.tokenmetrics_api import FakeTokenMetrics
from tests.support import eventually

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BTC = 3375
TM_KEY = "tm-e2e-key"
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
README_TELEGRAM_CHAT = "-1001234567890"
README_DISCORD_CHANNEL = "444444444444444444"
MANAGE_SERVER = "32"
STARTUP = 60.0
"""Generous: two cores shared with other test runs."""


def readme_section(heading: str) -> str:
    """The steps under `## heading`: its text up to the next heading of any level."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n") + 1
    end = re.compile(r"^#{2,3} ", re.MULTILINE).search(text, start + 1)
    return text[start:end.start() if end else None]


def fenced(section: str, language: str) -> Iterator[str]:
    """Each line of the section's fenced blocks in `language`, comments and blanks dropped."""
    for lang, body in FENCE.findall(section):
        if lang == language:
            for line in body.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line


def steps(heading: str) -> tuple[list[str], dict[str, str]]:
    """(shell commands, .env assignments) of a README section, in order."""
    section = readme_section(heading)
    assignments = dict(line.split("=", 1) for line in fenced(section, "ini"))
    return list(fenced(section, "sh")), assignments


def fill_in_dotenv(folder: Path, values: dict[str, str], extra: dict[str, str]) -> None:
    """Uncomment `#NAME=` lines of .env with the given values, as the README says; add `extra`."""
    path = folder / ".env"
    text = path.read_text(encoding="utf-8")
    for name, value in values.items():
        commented = re.compile(rf"^#{re.escape(name)}=.*$", re.MULTILINE)
        assert commented.search(text), f".env.example has no commented {name}= line to fill in"
        text = commented.sub(lambda _: f"{name}={value}", text, count=1)  # noqa: B023
    text += "".join(f"{name}={value}\n" for name, value in extra.items())
    path.write_text(text, encoding="utf-8")


def alertbot_args(command: str, chat: str, readme_chat: str) -> list[str]:
    """`alertbot …` from the README as argv for `python -m alertbot`, with the real chat id."""
    words = shlex.split(command)
    assert words[0] == "alertbot", command
    return [chat if word == readme_chat else word for word in words[1:]]


def copy_dotenv_example(folder: Path, command: str) -> None:
    """Run the README's `cp` line in a folder holding only .env.example."""
    shutil.copy(ROOT / ".env.example", folder / ".env.example")
    subprocess.run(shlex.split(command), cwd=folder, check=True, timeout=30)
    assert (folder / ".env").read_text() == (ROOT / ".env.example").read_text()


@pytest.fixture
async def tokenmetrics() -> AsyncIterator[FakeTokenMetrics]:
    today = datetime.now(UTC).date()
    async with FakeTokenMetrics(api_key=TM_KEY) as server:
        server.add_token(BTC, "BTC", "Bitcoin", "bitcoin")
        server.set_signal(BTC, today - timedelta(days=1), trend=-1)
        yield server


def stand_ins(tokenmetrics: FakeTokenMetrics, **urls: str) -> dict[str, str]:
    """What the test adds to .env so that the real services are the fakes."""
    return {"TOKENMETRICS_BASE_URL": tokenmetrics.base_url, "TOKENMETRICS_WATCHLIST": "BTC",
            "ALERTBOT_POLL_INTERVAL": "0.5", **urls}


async def flip_once_polled(tokenmetrics: FakeTokenMetrics) -> None:
    """Flip BTC's daily signal after two more polls stored the subscription's baseline."""
    seen = len(tokenmetrics.calls_to("/trading-signals"))
    await eventually(lambda: len(tokenmetrics.calls_to("/trading-signals")) >= seen + 2,
                     what="two polls after subscribing", timeout=STARTUP)
    tokenmetrics.flip(BTC, datetime.now(UTC).date())


async def answer(discord: FakeDiscord, command: str, channel: int, **kwargs: Any) -> str:
    """What the bot answered to a slash command typed in `channel` (deferred or not)."""
    asked = await discord.inject_interaction(command, [], channel_id=channel, **kwargs)
    callback = await discord.wait_for_callback(asked)
    if callback.type == 5:  # deferred: the answer is a follow-up
        await discord.wait_until(lambda: any(f.interaction_id == asked.id
                                             for f in discord.followups), 30, "the answer")
        return str([f for f in discord.followups if f.interaction_id == asked.id][-1].content)
    assert callback.data is not None
    return str(callback.data["content"])


def expected_commands(platform: str, chat: str) -> list[str]:
    return ["cp .env.example .env", "alertbot check", "alertbot run",
            f"alertbot subscribe --platform {platform} --chat {chat} all",
            f"alertbot test --platform {platform} --chat {chat}"]


async def test_readme_going_live_on_telegram_test_alert_then_first_real_alert(
        tmp_path: Path, tokenmetrics: FakeTokenMetrics) -> None:
    from tests.fakes.telegram_api import FakeTelegram

    commands, secrets = steps("Going live on Telegram")
    assert commands == expected_commands("telegram", README_TELEGRAM_CHAT)
    assert set(secrets) == {"TOKENMETRICS_API_KEY", "TELEGRAM_BOT_TOKEN"}
    cp, check, run, subscribe, test = commands
    group, admin = -1009876543210, 7  # not the README's example id: the test must learn it

    async with FakeTelegram() as tg:
        copy_dotenv_example(tmp_path, cp)
        fill_in_dotenv(tmp_path, {"TOKENMETRICS_API_KEY": TM_KEY,
                                  "TELEGRAM_BOT_TOKEN": tg.token},
                       stand_ins(tokenmetrics, TELEGRAM_API_URL=tg.root))
        env = clean_env(tmp_path)  # nothing of alertbot's but the database: the rest is .env

        code, out, err = await run_alertbot(alertbot_args(check, "", ""), env, tmp_path)
        assert code == 0, out + err
        assert "telegram: ok (connected as @alertbot_test_bot, updates by long polling)" in (
            out.splitlines())
        assert any(line.startswith("source: ok") for line in out.splitlines()), out

        bot = await Alertbot(alertbot_args(run, "", ""), env, tmp_path).start()
        try:
            await tg.wait_until(lambda: bool(tg.calls_of("getUpdates")), timeout=STARTUP)
            tg.add_chat(group, "supergroup", title="Crypto club")
            tg.inject_my_chat_member(group, "left", "member", from_user_id=admin)
            tg.set_chat_member(group, admin, "administrator")
            tg.inject_message(group, "/id", user_id=admin)
            await tg.wait_until(lambda: any("Chat id: " in m.visible_text
                                            for m in tg.sent_to(group)), timeout=30)
            [reply] = [m.visible_text for m in tg.sent_to(group) if "Chat id: " in m.visible_text]
            chat = re.search(r"Chat id: (-?\d+)", reply).group(1)  # type: ignore[union-attr]
            assert chat == str(group)

            code, out, err = await run_alertbot(
                alertbot_args(subscribe, chat, README_TELEGRAM_CHAT), env, tmp_path)
            assert code == 0, out + err
            code, out, err = await run_alertbot(
                alertbot_args(test, chat, README_TELEGRAM_CHAT), env, tmp_path)
            assert code == 0, out + err
            assert out.startswith(f"Test alert sent to telegram:{chat}.")
            tg.inject_message(group, "/test", user_id=admin)
            confirmed = "Test alert sent: delivery to this chat works."
            await tg.wait_until(lambda: any(confirmed in m.visible_text
                                            for m in tg.sent_to(group)), timeout=30)
            tests = [m for m in tg.sent_to(group) if m.visible_text.startswith(TEST_ALERT_TITLE)]
            assert len(tests) == 2, "one from `alertbot test`, one from /test"

            await flip_once_polled(tokenmetrics)
            first = "▲ BTC daily signal turned bullish"
            await tg.wait_until(lambda: any(m.visible_text.startswith(first)
                                            for m in tg.sent_to(group)), timeout=STARTUP)
        finally:
            code = await bot.stop()

    assert code == 0, bot.stderr
    assert "Traceback" not in bot.stderr
    output = bot.stderr + "\n".join(bot.stdout)
    assert tg.token not in output and TM_KEY not in output


async def test_readme_going_live_on_discord_test_alert_then_first_real_alert(
        tmp_path: Path, tokenmetrics: FakeTokenMetrics) -> None:
    from tests.fakes.discord_api import DEFAULT_GUILD_ID, FakeChannel, FakeDiscord, FakeGuild

    commands, secrets = steps("Going live on Discord")
    assert commands == expected_commands("discord", README_DISCORD_CHANNEL)
    assert set(secrets) == {"TOKENMETRICS_API_KEY", "DISCORD_BOT_TOKEN"}
    cp, check, run, subscribe, test = commands
    channel = 987654321098765432  # not the README's example id: the test must learn it
    guild = FakeGuild(DEFAULT_GUILD_ID, channels=[FakeChannel(channel, name="alerts")])

    async with FakeDiscord(guilds=[guild]) as discord:
        copy_dotenv_example(tmp_path, cp)
        fill_in_dotenv(tmp_path, {"TOKENMETRICS_API_KEY": TM_KEY,
                                  "DISCORD_BOT_TOKEN": discord.token},
                       stand_ins(tokenmetrics, DISCORD_API_URL=discord.api_base,
                                 DISCORD_GATEWAY_URL=discord.gateway_url))
        env = clean_env(tmp_path)

        code, out, err = await run_alertbot(alertbot_args(check, "", ""), env, tmp_path)
        assert code == 0, out + err
        [line] = [line for line in out.splitlines() if line.startswith("discord: ")]
        assert line.startswith("discord: ok (logged in as") and "invite: https://" in line
        assert any(line.startswith("source: ok") for line in out.splitlines()), out

        bot = await Alertbot(alertbot_args(run, "", ""), env, tmp_path).start()
        try:
            await discord.wait_ready(timeout=STARTUP)
            found = re.search(r"Channel id: (\d+)", await answer(discord, "id", channel))
            assert found is not None
            chat = found.group(1)
            assert chat == str(channel)

            code, out, err = await run_alertbot(
                alertbot_args(subscribe, chat, README_DISCORD_CHANNEL), env, tmp_path)
            assert code == 0, out + err
            code, out, err = await run_alertbot(
                alertbot_args(test, chat, README_DISCORD_CHANNEL), env, tmp_path)
            assert code == 0, out + err
            assert out.startswith(f"Test alert sent to discord:{chat}.")
            assert await answer(discord, "test", channel, permissions=MANAGE_SERVER) == (
                "Test alert sent: delivery to this chat works.")
            tests = [m for m in discord.messages_in(channel)
                     if m.embeds and m.embeds[0]["title"] == TEST_ALERT_TITLE]
            assert len(tests) == 2, "one from `alertbot test`, one from /test"

            await flip_once_polled(tokenmetrics)
            messages = await discord.wait_for_messages(3, timeout=STARTUP, channel_id=channel)
        finally:
            code = await bot.stop()

    assert code == 0, bot.stderr
    assert "Traceback" not in bot.stderr
    assert messages[2].embeds[0]["title"] == "BTC daily signal turned bullish"
    output = bot.stderr + "\n".join(bot.stdout)
    assert discord.token not in output and TM_KEY not in output
