"""Run `alertbot` as a real subprocess and read what it prints."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ALERT_KEY = re.compile(r"\[([ad][a-z2-7]{23})\]$")
_SCRUB = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The inherited environment without alertbot's variables, plus a database in `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env.update({"ALERTBOT_DATABASE_URL": f"sqlite:///{tmp / 'alertbot.db'}",
                "ALERTBOT_HTTP_PORT": "0", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class Alertbot:
    """One `python -m alertbot ...` process with line-by-line stdout."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers: list[asyncio.Task[None]] = []
        self._new_line = asyncio.Event()

    async def start(self) -> Alertbot:
        """Start the process."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "alertbot", *self.args, cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [asyncio.create_task(self._read(self.proc.stdout, self.stdout)),
                         asyncio.create_task(self._read(self.proc.stderr, self._stderr))]
        return self

    async def _read(self, stream: asyncio.StreamReader, sink: list[str]) -> None:
        while line := await stream.readline():
            sink.append(line.decode(errors="replace").rstrip("\n"))
            self._new_line.set()

    @property
    def stderr(self) -> str:
        """Everything printed to stderr so far."""
        return "\n".join(self._stderr)

    def alert_keys(self) -> list[str]:
        """Idempotency keys of the alerts printed so far (one per message)."""
        return [m.group(1) for line in self.stdout if (m := ALERT_KEY.search(line))]

    async def wait_for_alerts(self, count: int, timeout: float) -> list[str]:
        """Wait until `count` alert messages were printed."""
        async with asyncio.timeout(timeout):
            while len(self.alert_keys()) < count:
                self._new_line.clear()
                if self.proc is not None and self.proc.returncode is not None:
                    raise AssertionError(f"alertbot exited early:\n{self.stderr}")
                await self._new_line.wait()
        return self.alert_keys()

    async def stop(self, signum: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send a signal and wait for the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signum)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._readers)
        return code

    async def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to exit on its own."""
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.gather(*self._readers)
        return code


async def run_alertbot(args: Sequence[str], env: Mapping[str, str], cwd: Path,
                       timeout: float = 60.0) -> tuple[int, str, str]:
    """Run to completion; returns (exit code, stdout, stderr)."""
    bot = await Alertbot(args, env, cwd).start()
    code = await bot.wait(timeout)
    return code, "\n".join(bot.stdout), bot.stderr
