"""`alertbot run` under 1,100 stalled HTTP connections, with the open-file limit of a default host.

The connections send headers and one body byte (or nothing) and never finish. The bot must
keep polling and delivering, answer /healthz on a fresh connection, log a handful of lines
about it instead of a traceback per accept, and give its descriptors back afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from alertbot.domain.signing import SIGNATURE_HEADER, sign
from tests.e2e.process import Alertbot, clean_env
from tests.support import eventually

pytestmark = pytest.mark.timeout(240)

STALLED = 1_100
SILENT = 100
"""Of the stalled connections, these send nothing at all."""
BOT_FILE_LIMIT = 1_024
SECRET = "flood-push-secret-Ld82Kw"
POLL_LINE = " alertbot.services.poller "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raise_own_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _bot_limit() -> None:
    # The bot gets the open-file limit a default Linux host gives it, whatever this process has.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= BOT_FILE_LIMIT:
        resource.setrlimit(resource.RLIMIT_NOFILE, (BOT_FILE_LIMIT, hard))


class LimitedAlertbot(Alertbot):
    """`alertbot run` with the open-file soft limit of a default host."""

    async def start(self) -> Alertbot:
        """Start the process under BOT_FILE_LIMIT."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "alertbot", *self.args, cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_bot_limit)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [asyncio.create_task(self._read(self.proc.stdout, self.stdout)),
                         asyncio.create_task(self._read(self.proc.stderr, self._stderr))]
        return self


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def stalled_request(port: int) -> bytes:
    header = sign(SECRET, b"{}", int(time.time()))
    return (f"POST /hooks/signals HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\n{SIGNATURE_HEADER}: {header}\r\n"
            f"Content-Length: 4096\r\n\r\n{{").encode()


async def open_stalled(port: int, index: int) -> asyncio.StreamWriter | None:
    try:
        async with asyncio.timeout(10):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, TimeoutError):
        return None  # refused while the bot makes room: that is allowed
    if index >= SILENT:
        with contextlib.suppress(OSError):
            writer.write(stalled_request(port))
    return writer


async def healthz(port: int) -> int:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=10)) as http, \
            http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        return resp.status


async def test_run_under_stalled_connection_flood_keeps_delivering_and_recovers(
        tmp_path: Path) -> None:
    raise_own_file_limit(STALLED + 512)
    port = free_port()
    # The demo hides routine poll lines unless ALERTBOT_LOG_LEVEL is set; this test counts them.
    env = clean_env(tmp_path, ALERTBOT_HTTP_PORT=str(port), ALERTBOT_WEBHOOK_SECRET=SECRET,
                    ALERTBOT_LOG_LEVEL="INFO")
    bot = await LimitedAlertbot(["run"], env, tmp_path).start()
    assert bot.proc is not None
    pid = bot.proc.pid
    writers: list[asyncio.StreamWriter] = []
    try:
        async def serving() -> bool:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                return await healthz(port) == 200
            return False

        await eventually(serving, what="/healthz before the flood", timeout=30, interval=0.2)
        await bot.wait_for_alerts(1, timeout=30)
        baseline = descriptors(pid)
        lines_before = len(bot.stderr.splitlines())
        alerts_before = len(bot.alert_keys())
        polls_before = bot.stderr.count(POLL_LINE)

        peak = baseline
        for index in range(STALLED):
            writer = await open_stalled(port, index)
            if writer is not None:
                writers.append(writer)
            if index % 100 == 0:
                peak = max(peak, descriptors(pid))
        assert len(writers) >= STALLED * 0.9, f"only {len(writers)} connections opened"

        assert await healthz(port) == 200, "a fresh connection is served during the flood"
        await bot.wait_for_alerts(alerts_before + 1, timeout=90)
        await eventually(lambda: bot.stderr.count(POLL_LINE) >= polls_before + 3,
                         what="polls continuing during the flood", timeout=30, interval=0.2)
        peak = max(peak, descriptors(pid))
        assert peak < BOT_FILE_LIMIT - 256, f"{peak} descriptors open at the peak"
    finally:
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await eventually(lambda: descriptors(pid) <= baseline + 8,
                     what=f"descriptors back near {baseline}", timeout=60, interval=0.5)
    assert await healthz(port) == 200
    assert await bot.stop() == 0
    flood_lines = [line for line in bot.stderr.splitlines()[lines_before:]
                   if POLL_LINE not in line]
    assert len(flood_lines) < 100, "\n".join(flood_lines[:20])
    trace = bot.stderr.find("Traceback")
    assert trace < 0, bot.stderr[max(0, trace - 300):trace + 3000]
    assert "Too many open files" not in bot.stderr
    summaries = [line for line in flood_lines if " refused in the last " in line]
    assert summaries, "\n".join(flood_lines[:20])
    assert any("over the connection cap" in line for line in summaries)
