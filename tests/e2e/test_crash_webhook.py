"""Crash safety: SIGKILL a delivering `alertbot run` at random moments, restart, lose nothing."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import time
from collections import defaultdict
from pathlib import Path

from tests.e2e.process import Alertbot, clean_env, run_alertbot
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import eventually

KILLS = 20
IN_FLIGHT_SLACK = 0.1
"""A request written just before a kill can reach the receiver just after it."""


async def test_crash_sigkill_loses_nothing_and_duplicates_only_in_flight(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    env = clean_env(tmp_path, ALERTBOT_DEMO_SPEED="36000", ALERTBOT_POLL_INTERVAL="0.2",
                    ALERTBOT_WEBHOOK_SECRET="crash-test-secret")
    async with WebhookReceiver(delay=0.02, clock=time.monotonic) as receiver:
        for args in (["subscribe", "--platform", "webhook", "--chat", "hook", "--url",
                      receiver.url, "all"],
                     ["throttle", "--platform", "webhook", "--chat", "hook", "--max", "1000",
                      "--window", "1m"]):
            code, out, err = await run_alertbot(args, env, tmp_path)
            assert code == 0, err
            assert "s3cr3t-token" not in out + err

        kills: list[float] = []
        for _ in range(KILLS):
            before = len(receiver.received)
            bot = await Alertbot(["run"], env, tmp_path).start()
            # Kill while delivering: after this run's first request (a loaded machine starts
            # slower), at a random moment of the burst.
            await eventually(lambda n=before: len(receiver.received) > n, timeout=30,
                             what="a delivery from the restarted bot")
            await asyncio.sleep(rng.uniform(0.0, 0.8))
            kills.append(time.monotonic())
            assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
        assert receiver.received, "nothing was delivered before the kills"

        code, _, err = await run_alertbot(["run", "--once"], env, tmp_path, timeout=120)
        assert code == 0, err

    with sqlite3.connect(tmp_path / "alertbot.db") as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        committed = {row[0] for row in db.execute(
            "SELECT c.change_id FROM outbox o JOIN changes c ON c.id = o.change_pk")}
    assert set(states) == {"sent"}, states
    delivered = receiver.change_ids()
    assert committed <= set(delivered), "a committed change was never delivered"

    receipts: dict[str, list[float]] = defaultdict(list)
    for request in receiver.received:
        receipts[request.key].append(request.at)
    duplicated = {key: times for key, times in receipts.items() if len(times) > 1}
    assert len(duplicated) <= len(kills)
    for key, times in duplicated.items():
        # Only a row in flight when the process died may arrive again, once per such kill.
        in_flight_kills = [k for k in kills if times[0] - IN_FLIGHT_SLACK <= k <= times[-1]]
        assert len(times) - 1 <= len(in_flight_kills), (key, times, kills)
