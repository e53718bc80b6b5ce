"""`alertbot` going live: `why`, warnings for destinations whose platform is not configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertbot.bootstrap.build import build
from alertbot.config import load_settings
from alertbot.domain.models import Destination
from alertbot.services.commands import Caller
from tests.support import run_cli

CHANNEL = "123456789012345678"


@pytest.fixture(autouse=True)
def workspace(cli_workspace: Path) -> Path:
    return cli_workspace


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, *args)


async def _chat_why(destination: Destination) -> list[str]:
    app = await build(load_settings(None), env_file=None)
    try:
        reply = await app.commands.why(Caller(destination, user_id="1", is_private=True))
    finally:
        await app.close()
    return [reply.title, *(f"  {line}" for line in reply.lines)]


def test_cli_why_prints_what_slash_why_replies(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "subscribe", "--platform", "webhook", "--chat", "hook", "BTC",
                       "--url", "http://127.0.0.1:9/h")
    assert code == 0, err
    code, out, err = run(capsys, "why", "--platform", "webhook", "--chat", "hook")
    assert code == 0, err
    import asyncio
    expected = asyncio.run(_chat_why(Destination("webhook", "hook")))
    assert out.splitlines() == expected
    assert "No alerts have been handled for this chat yet." in out


def test_cli_why_bad_chat_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "why", "--platform", "discord", "--chat", "123")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "--chat for discord" in err


@pytest.mark.parametrize(("platform", "chat", "variable"), [
    ("telegram", "-100123", "TELEGRAM_BOT_TOKEN"),
    ("discord", CHANNEL, "DISCORD_BOT_TOKEN"),
])
def test_cli_subscribe_unconfigured_platform_warns_and_check_fails(
        capsys: pytest.CaptureFixture[str], platform: str, chat: str, variable: str) -> None:
    code, out, err = run(capsys, "subscribe", "--platform", platform, "--chat", chat, "BTC")
    assert code == 0 and "subscribed" in out
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and variable in warnings[0] and chat in warnings[0], err
    code, out, err = run(capsys, "subscriptions")
    assert code == 0 and chat in out
    code, out, err = run(capsys, "check")
    assert code == 1, (out, err)
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and variable in failed[0] and f"{platform}:{chat}" in failed[0]


def test_cli_subscribe_webhook_no_platform_warning(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "subscribe", "--platform", "webhook", "--chat", "hook", "BTC",
                         "--url", "http://127.0.0.1:9/h")
    assert code == 0 and err == "", err
    code, out, err = run(capsys, "check")
    assert code == 0 and "FAILED" not in out, (out, err)
