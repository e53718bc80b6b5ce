"""A planned restart: SIGTERM with slow sends in flight finishes them, and repeats nothing."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import eventually

HOOKS = 6
SLOW = 12.0
"""Longer than the 10 s drain, shorter than the 30 s send timeout and the webhook's 15 s."""


async def test_stop_sigterm_with_slow_sends_in_flight_restart_repeats_no_key(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000", ALERTBOT_POLL_INTERVAL="0.2",
                    ALERTBOT_WEBHOOK_SECRET="clean-stop-secret")
    async with WebhookReceiver(delay=SLOW, clock=time.monotonic) as receiver:
        for hook in range(HOOKS):
            for args in (["subscribe", "--platform", "webhook", "--chat", f"hook{hook}",
                          "--url", f"{receiver.url}/{hook}", "all"],
                         ["throttle", "--platform", "webhook", "--chat", f"hook{hook}",
                          "--max", "1000", "--window", "1m"]):
                code, _, err = await run_alertbot(args, env, tmp_path)
                assert code == 0, err

        bot = await Alertbot(["run"], env, tmp_path).start()
        # One slow send in flight in every destination's lane, the rest queued behind them.
        await eventually(lambda: len({r.path for r in receiver.received}) >= HOOKS,
                         what="a send in flight to every hook", timeout=60)
        in_flight = len(receiver.received)
        assert await bot.stop(signal.SIGTERM, timeout=60) == 0, bot.stderr
        assert "Traceback" not in bot.stderr

        receiver.delay = 0.0
        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
        assert code == 0, err

    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
    assert set(states) == {"sent"}, states
    assert sum(states.values()) > in_flight, "nothing was left queued at the stop"
    repeated = {key: n for key, n in Counter(r.key for r in receiver.received).items() if n > 1}
    assert repeated == {}, repeated
