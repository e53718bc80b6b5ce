"""`alertbot test` as an operator types it, against the fake Telegram Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertbot.domain.commands import TEST_ALERT_TITLE
from tests.e2e.process import clean_env, run_alertbot
from tests.fakes.telegram_api import FakeTelegram

pytestmark = pytest.mark.timeout(60)

GROUP = -1001234567890


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def env_for(tmp_path: Path, tg: FakeTelegram) -> dict[str, str]:
    return clean_env(tmp_path, TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.root)


async def test_cli_test_telegram_delivers_marked_alert_exit_0(tg: FakeTelegram,
                                                              tmp_path: Path) -> None:
    code, out, err = await run_alertbot(
        ["test", "--platform", "telegram", "--chat", str(GROUP), "--thread", "42"],
        env_for(tmp_path, tg), tmp_path)
    assert code == 0, err
    assert out.splitlines() == [f"Test alert sent to telegram:{GROUP}/42. If it did not show "
                                "up there, check that you are looking at the right chat and "
                                "topic."]
    [alert] = tg.sent_to(GROUP)
    assert alert.visible_text.splitlines()[0] == TEST_ALERT_TITLE
    assert alert.message_thread_id == 42


async def test_cli_test_bot_kicked_explains_and_exits_1(tg: FakeTelegram,
                                                        tmp_path: Path) -> None:
    tg.block_chat(GROUP)
    code, out, err = await run_alertbot(
        ["test", "--platform", "telegram", "--chat", str(GROUP)], env_for(tmp_path, tg),
        tmp_path)
    assert code == 1
    assert out == ""
    assert err.splitlines()[-2:] == [
        f"Test alert to telegram:{GROUP} failed: Telegram refused: bot was kicked from the "
        f"supergroup chat.",
        "Fix: add the bot to the chat (in a channel, as an administrator that can post "
        "messages), then try again."]
    assert tg.token not in err


async def test_cli_test_without_token_names_variable_exit_2(tmp_path: Path) -> None:
    code, _, err = await run_alertbot(["test", "--platform", "telegram", "--chat", str(GROUP)],
                                      clean_env(tmp_path), tmp_path)
    assert code == 2
    assert err.splitlines()[-1] == ("Test alert not sent: telegram is not configured; set "
                                    "TELEGRAM_BOT_TOKEN in the environment or .env (and "
                                    "restart a running alertbot).")


@pytest.mark.parametrize(("args", "message"), [
    (["--platform", "telegram", "--chat", str(GROUP), "--thread", "abc"],
     "alertbot: --thread for telegram must be a forum topic id (a whole number)"),
    (["--platform", "discord", "--chat", "123"],
     "alertbot: --chat for discord must be a channel id (17 to 20 digits), or the wh-… id "
     "of a Discord webhook subscription"),
])
async def test_cli_test_bad_destination_one_line_exit_2(tmp_path: Path, args: list[str],
                                                        message: str) -> None:
    code, out, err = await run_alertbot(["test", *args], clean_env(tmp_path), tmp_path)
    assert (code, out, err.strip()) == (2, "", message)


MUTED_CHANNEL_ID = 444444444444444466


async def test_cli_test_discord_sent_and_missing_permission_explained(tmp_path: Path) -> None:
    from tests.fakes.discord_api import (
        DEFAULT_CHANNEL_ID,
        DEFAULT_GUILD_ID,
        SEND_MESSAGES,
        FakeChannel,
        running_fake_discord,
    )

    async with running_fake_discord() as fake:
        fake.add_channel(DEFAULT_GUILD_ID, FakeChannel(
            id=MUTED_CHANNEL_ID, name="read-only", permission_overwrites=[
                {"id": str(fake.bot_user_id), "type": 1, "allow": "0",
                 "deny": str(SEND_MESSAGES)}]))
        env = clean_env(tmp_path, DISCORD_BOT_TOKEN=fake.token, DISCORD_API_URL=fake.api_base,
                        DISCORD_GATEWAY_URL=fake.gateway_url)
        code, out, err = await run_alertbot(
            ["test", "--platform", "discord", "--chat", str(DEFAULT_CHANNEL_ID)], env, tmp_path)
        assert code == 0, err
        assert out == (f"Test alert sent to discord:{DEFAULT_CHANNEL_ID}. If it did not show "
                       f"up there, check that you are looking at the right chat.")
        [message] = fake.messages_in(DEFAULT_CHANNEL_ID)
        assert message.embeds[0]["title"] == TEST_ALERT_TITLE
        code, out, err = await run_alertbot(
            ["test", "--platform", "discord", "--chat", str(MUTED_CHANNEL_ID)], env, tmp_path)
        assert (code, out) == (1, "")
        first, fix = err.splitlines()[-2:]
        assert first.startswith(f"Test alert to discord:{MUTED_CHANNEL_ID} failed: ")
        # Without a gateway cache the CLI cannot tell which one is missing: it lists them all.
        assert first.endswith("the bot lacks a permission here; it needs View Channel, Send "
                              "Messages, Embed Links in this channel (Discord 50013 Missing "
                              "Permissions); a moderator must grant it, then run /subscribe "
                              "again.")
        assert fix == ("Fix: in the channel's settings (Permissions), grant the bot's role the "
                       "permissions named above.")
        assert fake.token not in err


async def test_cli_test_discord_rejected_token_names_the_variable_exit_1(tmp_path: Path) -> None:
    from tests.fakes.discord_api import DEFAULT_CHANNEL_ID, running_fake_discord

    async with running_fake_discord() as fake:
        wrong = "MTIz.wrong.token-value"
        env = clean_env(tmp_path, DISCORD_BOT_TOKEN=wrong, DISCORD_API_URL=fake.api_base,
                        DISCORD_GATEWAY_URL=fake.gateway_url)
        code, out, err = await run_alertbot(
            ["test", "--platform", "discord", "--chat", str(DEFAULT_CHANNEL_ID)], env, tmp_path)
        assert (code, out) == (1, "")
        assert err.splitlines()[-2:] == [
            f"Test alert to discord:{DEFAULT_CHANNEL_ID} failed: Discord rejected "
            f"DISCORD_BOT_TOKEN.",
            "Fix: put the bot's current token in DISCORD_BOT_TOKEN (and restart a running "
            "alertbot)."]
        assert wrong not in err
        assert fake.messages_in(DEFAULT_CHANNEL_ID) == []
