"""build(): what the composition root loads for a configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, sys
from alertbot.bootstrap.build import build
from alertbot.config import load_settings

async def main():
    app = await build(load_settings(None))
    print(sorted(app.notifiers), sorted(app.jobs))
    await app.close()

asyncio.run(main())
print("discord" in sys.modules, "telegram" in sys.modules, "PIL" in sys.modules,
      "asyncpg" in sys.modules)
"""


def test_build_demo_loads_no_platform_or_postgres_library(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_"))}
    env["ALERTBOT_HTTP_PORT"] = "0"
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    wired, loaded = done.stdout.strip().splitlines()
    assert wired == "['console', 'webhook'] ['digests', 'reload', 'retention']"
    assert loaded == "False False False False"  # the chart library loads with the first chart
