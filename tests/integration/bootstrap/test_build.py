"""build(): what the composition root loads for a configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LAZY = ("discord", "telegram", "PIL", "asyncpg", "aiohttp", "alertbot.http.server",
        "alertbot.http.ingest", "alertbot.sources.tokenmetrics.client")
"""Modules a demo `run` without the HTTP server must not load (each costs memory): no
platform library, no PostgreSQL driver, no chart library, no aiohttp (the shared session is
made on the first webhook or API request)."""

PROBE = """
import asyncio, json, sys
import alertbot.cli
from alertbot.bootstrap.build import build
from alertbot.config import load_settings

async def main():
    app = await build(load_settings(None))
    print(sorted(app.notifiers), sorted(app.jobs))
    await app.close()

asyncio.run(main())
print(json.dumps(sorted(name for name in sys.argv[1:] if name in sys.modules)))
"""


def _probe(tmp_path: Path, modules: tuple[str, ...], **extra: str) -> tuple[str, list[str]]:
    """What a fresh process wired, and which of `modules` it loaded, after build()."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_"))}
    env.update(ALERTBOT_HTTP_PORT="0", **extra)
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    wired, loaded = done.stdout.strip().splitlines()
    return wired, json.loads(loaded)


def test_build_demo_loads_no_platform_postgres_or_http_server_library(tmp_path: Path) -> None:
    wired, loaded = _probe(tmp_path, LAZY)
    assert wired == "['console', 'webhook'] ['digests', 'reload', 'retention']"
    assert loaded == []  # the chart library loads with the first chart


def test_build_telegram_demo_loads_neither_aiohttp_nor_the_httpx_command_line(
        tmp_path: Path) -> None:
    wired, loaded = _probe(tmp_path, ("discord", "PIL", "asyncpg", "aiohttp", "click", "rich",
                                      "pygments", "telegram"),
                           TELEGRAM_BOT_TOKEN="123456:test-token",
                           TELEGRAM_API_URL="http://127.0.0.1:9")
    assert wired == ("['console', 'telegram', 'webhook'] "
                     "['digests', 'reload', 'retention', 'telegram']")
    assert loaded == ["telegram"]  # PTB talks httpx; its CLI's libraries stay out
