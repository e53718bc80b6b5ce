"""`python -m bench [NAME ...]`: run benchmarks, one JSON line per case, then a table."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    backends,
    chart,
    delivery,
    detect,
    due,
    fanout,
    growth,
    latency,
    memory,
    peers,
)
from bench.report import Figures, progress, table

Bench = Callable[[Path], Awaitable[list[Figures]]]

BENCHES: dict[str, Bench] = {
    "detect": detect.run,
    "fanout": fanout.run,
    "delivery": delivery.run,
    "due": due.run,
    "latency": latency.run,
    "memory": memory.run,
    "peers": peers.run,
    "chart": chart.run,
    "backends": backends.run,
    "growth": growth.run,
}


def machine() -> str:
    """CPU, cores, Python and load: the conditions the figures were taken under."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), model)
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{model}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
            f"load average {load}")


async def main(names: list[str]) -> list[Figures]:
    """Run the named benchmarks in order, in one temporary folder."""
    done: list[Figures] = []
    together = "delivery" in names and "peers" in names
    with tempfile.TemporaryDirectory(prefix="alertbot-bench-") as tmp:
        for name in names:
            if together and name == "peers":
                continue  # already ran with delivery
            progress(f"{name}: start ({machine()})")
            started = time.monotonic()
            if together and name == "delivery":
                # One schedule for both: ours is measured once and shown beside the peers.
                done += await peers.run(Path(tmp), with_delivery=True)
            else:
                done += await BENCHES[name](Path(tmp))
            progress(f"{name}: {time.monotonic() - started:.0f} s")
    return done


def cli() -> int:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHES)}")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r} (choose from {', '.join(BENCHES)})")
    names = list(dict.fromkeys(args.names)) or list(BENCHES)
    before = machine()
    started = time.monotonic()
    lines = asyncio.run(main(names))
    print()
    print(table(lines))
    print()
    print(f"machine before: {before}")
    print(f"machine after:  {machine()}")
    print(f"total: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
