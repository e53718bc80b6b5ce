"""`alertbot` commands run in-process: validation refuses bad values with one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertbot.cli import main
from tests.support import run_cli

HOOK = ("https://discord.com/api/webhooks/123456789012345678/"
        "token_value-" + "A" * 60)


@pytest.fixture(autouse=True)
def workspace(cli_workspace: Path) -> Path:
    return cli_workspace


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, *args)


@pytest.mark.parametrize(("args", "message"), [
    (["subscriptions", "--chat", "-100123"], "--chat needs --platform"),
    (["subscriptions", "--thread", "7"], "--thread needs --platform and --chat"),
    (["subscribe", "--platform", "telegram", "--chat", "-100123", "BTC", "--kinds", ""],
     "--kinds: name at least one kind"),
    (["subscribe", "--platform", "telegram", "--chat", "-100123", "--thread", "abc", "BTC"],
     "--thread for telegram must be a forum topic id (a whole number)"),
    (["subscribe", "--platform", "discord", "--chat", "123", "BTC"],
     "--chat for discord must be a channel id (17 to 20 digits)"),
    (["throttle", "--platform", "telegram", "--chat", "-100123", "--tz", "Europe/Berlin"],
     "--tz goes with --quiet"),
    (["throttle", "--platform", "telegram", "--chat", "-100123", "--settle", "99d"],
     "the flap guard can wait at most 7d"),
    (["lookup", "FOOBAR"], "Unknown symbol FOOBAR."),
    (["digest", "--platform", "telegram", "--chat", "-100123", "daily", "25:00"],
     "digest: "),
    (["digest", "--platform", "telegram", "--chat", "-100123", "weekly", "09:00"],
     "digest: '09:00' is not a weekday"),
    (["digest", "--platform", "telegram", "--chat", "-100123", "--only"],
     "--only and --always go with a schedule"),
])
def test_cli_bad_value_one_line_exit_2_nothing_changed(
        capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and message in err, err
    code, out, _ = run(capsys, "subscriptions")
    assert code == 0 and out.strip() == "no subscriptions"


def test_cli_throttle_settle_off_accepted_like_quiet_off(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "throttle", "--platform", "telegram", "--chat", "-100123",
                         "--settle", "2h")
    assert code == 0 and "flap guard: 2h" in out, err
    code, out, err = run(capsys, "throttle", "--platform", "telegram", "--chat", "-100123",
                         "--settle", "off")
    assert code == 0 and "flap guard: off" in out, err


def test_cli_digest_sets_shows_and_turns_off(capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--platform", "telegram", "--chat", "-100123")
    code, out, err = run(capsys, "digest", *where, "weekly", "fri", "17:30", "Europe/Berlin",
                         "--only")
    assert code == 0, err
    assert out.splitlines()[0] == ("telegram:-100123 updated: scheduled digest: weekly on "
                                   "Fridays at 17:30 Europe/Berlin, digests only (no single "
                                   "alerts)")
    assert out.splitlines()[1].startswith("  first digest: ")
    code, out, err = run(capsys, "digest", *where)
    assert code == 0 and "weekly on Fridays at 17:30 Europe/Berlin" in out, err
    code, out, err = run(capsys, "throttle", *where)
    assert "scheduled digest: weekly on Fridays" in out, err
    code, out, err = run(capsys, "digest", *where, "off")
    assert code == 0 and out.strip() == "telegram:-100123 updated: scheduled digest: off", err


def test_cli_discord_webhook_old_and_new_host_same_destination(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, first, err = run(capsys, "subscribe", "--platform", "discord", "--url", HOOK, "BTC")
    assert code == 0, err
    legacy = HOOK.replace("https://discord.com/", "https://discordapp.com/")
    code, second, err = run(capsys, "subscribe", "--platform", "discord", "--url", legacy,
                            "BTC")
    assert code == 0 and "already subscribed" in second, (second, err)
    assert first.split()[0] == second.split()[0]
    assert "token_value" not in first + second + err


@pytest.mark.parametrize(("args", "message"), [
    (["subscribe", "--platform", "nope", "BTC"],
     "alertbot subscribe: argument --platform: invalid choice: 'nope'"),
    (["frob"], "alertbot: argument COMMAND: invalid choice: 'frob'"),
    (["throttle", "--platform", "telegram"], "the following arguments are required: --chat"),
])
def test_cli_usage_error_one_line_naming_help_exit_2(
        capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(args)
    err = capsys.readouterr().err
    assert caught.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--help" in lines[0], err


def test_cli_subscribe_webhook_new_url_replaces_the_address_and_says_so(
        capsys: pytest.CaptureFixture[str], workspace: Path) -> None:
    base = ["subscribe", "--platform", "webhook", "--chat", "hook", "BTC", "--url"]
    code, _, err = run(capsys, *base, "http://127.0.0.1:9/first-secret")
    assert code == 0, err
    code, out, err = run(capsys, *base, "http://127.0.0.1:9/second-secret")
    assert code == 0, err
    assert "webhook:hook address replaced" in out
    assert "secret" not in out + err
    import sqlite3
    with sqlite3.connect(workspace / "cli.db") as db:
        address = db.execute("SELECT address FROM destinations WHERE chat_id = 'hook'")
        assert address.fetchone()[0] == "http://127.0.0.1:9/second-secret"
    code, out, _ = run(capsys, *base, "http://127.0.0.1:9/second-secret")
    assert code == 0 and "address replaced" not in out


def test_cli_unsubscribe_names_only_the_kinds_it_removed(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "subscribe", "--platform", "console", "--chat", "x", "BTC",
                       "--kinds", "signal")
    assert code == 0, err
    code, out, err = run(capsys, "unsubscribe", "--platform", "console", "--chat", "x", "BTC")
    assert code == 0, err
    assert out.strip() == "console:x unsubscribed from BTC (Bitcoin, id 3375): signal"
