"""peers: the same Telegram bursts sent the ways users otherwise would, side by side with ours.

- Apprise (the notifier most self-hosters use): one Apprise object per chat with its `tgram://`
  URL, `notify()` once per alert, one after another. Its Telegram plugin builds request URLs
  from the class attribute `notify_url` ("https://api.telegram.org/bot"); the instance's copy
  is pointed at the loopback fake, which speaks the real Bot API (Apprise posts JSON).
- python-telegram-bot's AIORateLimiter with its defaults: every alert is a task of its own
  (as handlers and jobs send), the limiter queues them.
- A naive loop: each change sent immediately with a plain PTB Bot, one after another.

None of them retries a 429 (Apprise and the limiter's defaults; the naive loop by nature), so a
429 is an alert lost. Each sender gets a fresh strict fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apprise
import telegram
from apprise.plugins.telegram import NotifyTelegram
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, ApplicationBuilder

from alertbot.domain.models import Change, Policy
from alertbot.domain.render import render_change
from alertbot.platforms.telegram.client import NO_PREVIEW, chat_ref
from alertbot.platforms.telegram.format import alert_lines, html_chunks
from bench import noise
from bench.ceiling import Shape, telegram_shapes
from bench.delivery import Runner, Schedule, burst_figures, ours_telegram
from bench.delivery import schedule as delivery_schedule
from bench.fixtures import flip, token
from bench.report import Figures, emit, progress, rounded
from tests.fakes.telegram_api import FakeTelegram

APPRISE = "apprise"
PTB_LIMITER = "ptb AIORateLimiter"
NAIVE = "naive loop"
FLAP_GUARD = timedelta(hours=2)

Outgoing = list[tuple[str, Change]]
"""(chat, change) of every message of a shape, in queue order."""


def outgoing(shape: Shape) -> Outgoing:
    """The k-th message to a chat carries the k-th change, as in our queued burst."""
    now = datetime.now(UTC)
    changes = [flip(token(i + 1), detected=now, day=i) for i in range(shape.per_chat)]
    seen: dict[str, int] = {}
    out = []
    for chat in shape.chats:
        k = seen[chat] = seen.get(chat, -1) + 1
        out.append((chat, changes[k]))
    return out


def html(change: Change) -> str:
    """The exact HTML our notifier sends for one alert."""
    return html_chunks(alert_lines(render_change(change)))[0]


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Peers log every refused request; thousands of those lines would bury the figures."""
    names = ("apprise", "telegram.ext", "httpx")
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _apprise_send_all(fake: FakeTelegram, messages: Outgoing) -> None:
    objects: dict[str, apprise.Apprise] = {}
    for chat, change in messages:
        sender = objects.get(chat)
        if sender is None:
            plugin = apprise.Apprise.instantiate(f"tgram://{fake.token}/{chat}/")
            if not isinstance(plugin, NotifyTelegram):
                raise RuntimeError("Apprise did not accept the tgram:// URL")
            plugin.notify_url = fake.base_url
            sender = objects[chat] = apprise.Apprise()
            sender.add(plugin)
        sender.notify(body=render_change(change).text)


async def via_apprise(fake: FakeTelegram, messages: Outgoing) -> None:
    """Apprise is synchronous (requests): it runs in a thread beside the fake's event loop."""
    await asyncio.to_thread(_apprise_send_all, fake, messages)


async def via_ptb_limiter(fake: FakeTelegram, messages: Outgoing) -> None:
    """A PTB Application built with AIORateLimiter() defaults; one task per alert."""
    app = (ApplicationBuilder().token(fake.token).base_url(fake.base_url)
           .base_file_url(fake.base_file_url).rate_limiter(AIORateLimiter()).build())
    async with app:
        await asyncio.gather(*(app.bot.send_message(chat_id=chat_ref(chat), text=html(change),
                                                    parse_mode=ParseMode.HTML,
                                                    link_preview_options=NO_PREVIEW)
                               for chat, change in messages), return_exceptions=True)


async def via_naive_loop(fake: FakeTelegram, messages: Outgoing) -> None:
    """Send each change the moment it is seen; a failure is logged and forgotten."""
    async with telegram.Bot(fake.token, base_url=fake.base_url,
                            base_file_url=fake.base_file_url) as bot:
        for chat, change in messages:
            with contextlib.suppress(TelegramError):
                await bot.send_message(chat_id=chat_ref(chat), text=html(change),
                                       parse_mode=ParseMode.HTML,
                                       link_preview_options=NO_PREVIEW)


SENDERS = {APPRISE: via_apprise, PTB_LIMITER: via_ptb_limiter, NAIVE: via_naive_loop}


async def peer(name: str, shape: Shape) -> Figures:
    """One peer sending one shape to a fresh strict fake."""
    messages = outgoing(shape)
    async with FakeTelegram() as fake:
        await SENDERS[name](fake, messages)
        arrivals = [(str(m.chat_id), m.timestamp) for m in fake.sent]
        unique = len({(m.chat_id, m.visible_text) for m in fake.sent})
        return burst_figures("peers", name, shape, arrivals, unique, fake.rate_limited)


def noise_lines(history: str, changes: Sequence[Change], days: float) -> list[Figures]:
    """Messages per channel per day: naive loop, our defaults, and our flap guard."""
    lines = [emit({
        "bench": "peers",
        "case": f"{history}: {NAIVE}",
        "history": history,
        "sender": None,
        "policy": f"{NAIVE} (every change at once)",
        "changes_per_day": rounded(len(changes) / days, 1),
        "messages_per_channel_day": rounded(len(changes) / days, 1),
        "details": f"{len(changes)} changes in {days:.0f} days, no delay",
    })]
    for label, policy in (("alertbot defaults (10/h, flap guard off)", Policy()),
                          ("alertbot 10/h + flap guard 2 h", Policy(settle=FLAP_GUARD))):
        outcome = noise.simulate(changes, policy)
        cancelled = outcome.suppressed.get(noise.FLAP_CANCELLED, 0)
        lines.append(emit({
            "bench": "peers",
            "case": f"{history}: {label}",
            "history": history,
            "policy": label,
            "changes_per_day": rounded(len(changes) / days, 1),
            "messages_per_channel_day": rounded(outcome.messages / days, 1),
            "digests_per_day": rounded(outcome.digests / days, 2),
            "alerts_delivered_per_day": rounded(outcome.alerts_sent / days, 1),
            "flap_cancelled_per_day": rounded(cancelled / days, 1),
            "median_delay_min": rounded(noise.median_delay_min(outcome), 1),
            "busiest_hour": outcome.busiest_hour,
            "details": f"{outcome.digests / days:.1f} digests/day, {cancelled / days:.1f} "
                       f"flap-cancelled/day, busiest hour {outcome.busiest_hour} messages, "
                       f"median delay {noise.median_delay_min(outcome):.0f} min",
        }))
    return lines


def schedule(workdir: Path, *, ours: bool) -> Schedule:
    """Every peer on every Telegram shape, and ours too when `delivery` does not run them."""
    shapes = telegram_shapes()

    def runners(shape: Shape) -> list[Runner]:
        out: list[Runner] = []
        if ours:
            out.append(functools.partial(ours_telegram, shape, workdir, "peers"))
        out.extend(functools.partial(peer, name, shape) for name in SENDERS)
        return out

    return Schedule(runners(shapes[0]), [r for shape in shapes[1:] for r in runners(shape)])


async def run(workdir: Path, *, with_delivery: bool = False) -> list[Figures]:
    """The peers beside ours on the Telegram shapes, then the noisy histories.

    With `with_delivery`, the `delivery` benchmark's shapes join the same schedule (their lines
    keep "bench": "delivery") so both fit the time budget and ours are not measured twice.
    """
    plan = schedule(workdir, ours=not with_delivery)
    if with_delivery:
        plan = delivery_schedule(workdir) + plan
    progress("peers: Apprise, PTB AIORateLimiter and a naive loop on the Telegram shapes"
             + (", with the delivery shapes" if with_delivery else ""))
    with quiet_libraries():
        lines = await plan.run()
    progress("peers: replaying noisy histories through the throttle")
    demo, demo_days = await noise.demo_changes()
    lines += noise_lines("demo data, hourly polls", demo, demo_days)
    flapping, flapping_days = noise.flapping_changes()
    lines += noise_lines("generated flapping signals", flapping, flapping_days)
    return lines
