"""Telegram through python-telegram-bot: notifier, command bot, formatting, errors."""

import sys

# httpx (PTB's HTTP client) imports its command-line client, and with it click, rich and
# pygments (about 4 MB), whenever those happen to be installed, as development tools pull
# them in. The bot never runs it; marking the module absent makes httpx fall back to its
# stub, as it does on an install without them.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
