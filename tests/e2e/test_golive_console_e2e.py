"""Going live from the demo: honest start line, exit code of `run --once`, unset tokens named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.process import ALERT_KEY, clean_env, run_alertbot
from tests.fakes.webhook_receiver import WebhookReceiver

# Several `run --once` demo cycles a test, each waiting for a held digest on a busy machine.
pytestmark = pytest.mark.timeout(600)

START = "alertbot running:"


def _start_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if START in line)


async def test_run_demo_start_line_names_only_the_console(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
    assert code == 0, err
    assert _start_line(err).endswith("delivering to console"), err


async def test_run_once_undeliverable_rows_left_exit_1(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    async with WebhookReceiver() as receiver:
        code, _, err = await run_alertbot(["subscribe", "--platform", "webhook", "--chat", "hook",
                                           "all", "--url", receiver.url], env, tmp_path)
        assert code == 0, err
        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
        assert code == 0, err  # the first reading is a baseline: nothing to deliver
        assert _start_line(err).endswith("delivering to webhook"), err
        receiver.responses = [(404, {})] * 1000
        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
        assert receiver.received, err
        assert code == 1, err
        assert "webhook:hook" in err and "dead-lettered" in err
        receiver.responses = []
        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
        assert code == 0, err


async def test_run_unconfigured_destination_logged_once_at_start(tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    for chat in ("-100123", "-100456"):
        code, _, err = await run_alertbot(["subscribe", "--platform", "telegram", "--chat", chat,
                                           "all", "--kinds", "signal"], env, tmp_path)
        assert code == 0 and "TELEGRAM_BOT_TOKEN" in err, err
    code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
    lines = [line for line in err.splitlines() if "TELEGRAM_BOT_TOKEN" in line]
    assert len(lines) == 1, err  # one line per platform, however many destinations wait
    assert "2 telegram destinations are subscribed" in lines[0]
    assert "telegram:-100123" in lines[0] and "telegram:-100456" in lines[0]


async def test_run_demo_logs_quiet_alerts_on_stdout_explicit_level_restores(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000")
    code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
    assert code == 0, err
    code, out, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
    assert code == 0, err
    alerts = out.splitlines()
    assert alerts and all(ALERT_KEY.search(line) for line in alerts), out
    assert START in err
    assert " alertbot.services.poller" not in err, err
    loud = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000", ALERTBOT_LOG_LEVEL="INFO")
    code, out, err = await run_alertbot(["run", "--once"], loud, tmp_path, timeout=120)
    assert code == 0, err
    assert " alertbot.services.poller" in err and "services.poller" not in out
