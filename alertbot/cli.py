"""Commands: run, check, lookup, chart, (un)subscribe, subscriptions, throttle, digest, why, test,
status, db."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from alertbot import __version__
from alertbot.bootstrap.app import App
from alertbot.bootstrap.build import build
from alertbot.bootstrap.run import missing_platform_variable, run, unconfigured_destinations
from alertbot.config import ConfigError, Settings, load_settings
from alertbot.domain.address import ADDRESS_ID_PREFIX
from alertbot.domain.charts import DEFAULT_DAYS, MAX_DAYS, MIN_DAYS, ChartInputError, check_days
from alertbot.domain.models import ALL_TOKENS, Destination, Kind, Policy
from alertbot.domain.parsing import (
    parse_kinds,
)
from alertbot.domain.policy import describe_policy, update_policy
from alertbot.domain.render import render_grade_lookup, render_signal_lookup
from alertbot.domain.scheduled_digest import describe_schedule, period_containing
from alertbot.observability.logs import Redactor, setup_logging
from alertbot.ports.store import StoreError
from alertbot.services.charts import ChartUnavailable
from alertbot.services.commands import AlertTestOutcome
from alertbot.services.lookup import InvalidSymbol, LookupFailed, UnknownToken
from alertbot.store.factory import store_from_url
from alertbot.store.sqlite.instance import AlreadyRunning, single_run
from alertbot.store.urls import is_postgres, url_password

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
PLATFORMS = ("telegram", "discord", "webhook", "console")
DEFAULT_ENV_FILE = Path(".env")
_SNOWFLAKE = re.compile(r"[0-9]{17,20}")

log = logging.getLogger("alertbot")


class UsageError(Exception):
    """Bad command-line input: a one-line message, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        """Print one line naming the problem and where help is, then exit 2."""
        self.exit(EXIT_CONFIG, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _command(sub: argparse._SubParsersAction[_Parser], name: str, summary: str,
             description: str, examples: Sequence[str]) -> _Parser:
    """A subcommand whose --help shows a description and an examples block."""
    return sub.add_parser(
        name, help=summary, description=description,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alertbot",
        description="Posts changes in Token Metrics trading signals and grades to Discord, "
                    "Telegram, webhooks or the console. Configuration comes from the "
                    "environment and .env (see .env.example). Bad input: one line, exit 2.",
        epilog="examples:\n"
               "  alertbot run                      the demo (no configuration) or the live bot\n"
               "  alertbot check                    validate .env and reach every service\n"
               "  alertbot subscribe --platform telegram --chat -1001234567890 all\n"
               "  alertbot test --platform telegram --chat -1001234567890\n"
               "  alertbot COMMAND --help           what a command does, with examples",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"alertbot {__version__}")
    parser.add_argument("--env-file", type=Path, default=None,
                        help="read variables from this file too (default: .env when it exists)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run_p = _command(
        sub, "run", "the main job: poll, detect and deliver",
        "Poll the source (Token Metrics when TOKENMETRICS_API_KEY is set, else the bundled "
        "demo), detect changes and deliver them until SIGTERM or Ctrl-C (exit 0). Alerts go "
        "to stdout, logs to stderr. One `alertbot run` per SQLite file; a second one exits 2. "
        "--once runs one cycle and exits 1 when alerts it could not deliver are left.",
        ["alertbot run", "alertbot run 2>/dev/null          the demo's alerts alone",
         "alertbot run --once                for cron",
         "alertbot --env-file prod.env run"])
    run_p.add_argument("--once", action="store_true",
                       help="run one poll-and-dispatch cycle and exit")

    _command(
        sub, "check", "validate configuration and reach every configured service",
        "Validate the configuration, open the database and make one cheap call to each "
        "configured service (Token Metrics, Telegram, Discord). Prints one line per check; "
        "exit 0 when all pass, 1 when one failed, 2 on bad configuration. Secrets are never "
        "printed.",
        ["alertbot check", "alertbot --env-file prod.env check"])

    look = _command(
        sub, "lookup", "print the current signals and grades of a token",
        "Print a token's daily and hourly signal, TM grade and fundamental grade, from stored "
        "readings when fresh, else from the API (lookup reserve of the monthly quota). Exit 2 "
        "for a malformed or unknown symbol, 1 when the API failed.",
        ["alertbot lookup BTC", "alertbot lookup 3375               by Token Metrics token id"])
    look.add_argument("symbol")

    chart = _command(
        sub, "chart", "draw a token's grade-history chart (PNG) and print its text alternative",
        "Draw the TM grade and fundamental grade of a token over time on the band scale (daily "
        "signal flips marked), or with --drivers the fundamental grade's key drivers, to a PNG "
        "file; the caption printed is the chart's text alternative.",
        ["alertbot chart BTC --out btc.png",
         "alertbot chart ETH --days 365 --out eth-year.png",
         "alertbot chart SOL --drivers --out sol-drivers.png"])
    chart.add_argument("symbol", help="token symbol or numeric token id")
    chart.add_argument("--days", type=int, default=DEFAULT_DAYS,
                       help=f"days of history, {MIN_DAYS}-{MAX_DAYS} (default {DEFAULT_DAYS})")
    chart.add_argument("--drivers", action="store_true",
                       help="draw the fundamental grade's key drivers instead")
    chart.add_argument("--out", type=Path, required=True, help="PNG file to write")

    for name, summary, description, examples in (
        ("subscribe", "subscribe a destination to a token (or all)",
         "Subscribe a chat, topic, channel, thread or webhook to a token's changes (or to "
         "'all': the watchlist plus every subscribed token). With a new --url, subscribing "
         "again replaces a webhook's address. Find ids with /id in the chat.",
         ["alertbot subscribe --platform telegram --chat -1001234567890 all",
          "alertbot subscribe --platform telegram --chat -1001234567890 --thread 42 BTC "
          "--kinds signal,hourly",
          "alertbot subscribe --platform discord --chat 444444444444444444 ETH",
          "alertbot subscribe --platform discord --url 'https://discord.com/api/webhooks/…/…' "
          "all",
          "alertbot subscribe --platform webhook --chat ops-feed "
          "--url https://example.com/hooks/alertbot all"]),
        ("unsubscribe", "remove a subscription",
         "Remove kinds (default: all kinds) of a token's subscription; 'all' removes them from "
         "every subscription of the destination. Prints the kinds actually removed.",
         ["alertbot unsubscribe --platform telegram --chat -1001234567890 BTC",
          "alertbot unsubscribe --platform telegram --chat -1001234567890 all --kinds hourly",
          "alertbot unsubscribe --platform discord --chat wh-1a2b3c4d5e6f all"]),
    ):
        p = _command(sub, name, summary, description, examples)
        _destination_args(p, chat_required=name != "subscribe")
        p.add_argument("symbol", help="token symbol, numeric token id, or 'all'")
        p.add_argument("--kinds", default=None,
                       help="comma list of signal,hourly,tm_grade,fundamental (default: all)")
        if name == "subscribe":
            p.add_argument("--url", help="webhook URL (platform webhook, or a Discord webhook "
                                         "with platform discord; then --chat is not needed)")

    subs = _command(
        sub, "subscriptions", "list subscriptions",
        "List subscriptions with their kinds, pause state and noise controls; --platform "
        "(and --chat, --thread) narrow the list. Webhook URLs are never shown.",
        ["alertbot subscriptions", "alertbot subscriptions --platform telegram",
         "alertbot subscriptions --platform discord --chat 444444444444444444"])
    subs.add_argument("--platform", choices=PLATFORMS)
    subs.add_argument("--chat")
    subs.add_argument("--thread", default="")

    thr = _command(
        sub, "throttle", "show or set a destination's noise controls",
        "Without a setting, print the destination's noise controls. With settings, change "
        "only those (one transaction); alerts already held are decided again at once. The "
        "flap guard (--settle) and per-kind mode (--mode) are set here only, not in chat.",
        ["alertbot throttle --platform telegram --chat -1001234567890",
         "alertbot throttle --platform telegram --chat -1001234567890 --max 5 --window 1h",
         "alertbot throttle --platform discord --chat 444444444444444444 "
         "--quiet 22:00-07:00 --tz Europe/Berlin",
         "alertbot throttle --platform telegram --chat -1001234567890 --mute 2h",
         "alertbot throttle --platform telegram --chat -1001234567890 --settle 5m "
         "--mode hourly=silent",
         "alertbot throttle --platform telegram --chat -1001234567890 --quiet off --settle off",
         "alertbot throttle --platform discord --chat 444444444444444444 --charts on"])
    _destination_args(thr)
    thr.add_argument("--max", dest="max_alerts", help="alerts per window")
    thr.add_argument("--window", help="window length, e.g. 1h")
    thr.add_argument("--quiet", help="HH:MM-HH:MM [TZ], or 'off'")
    thr.add_argument("--tz", help="time zone of the quiet hours, e.g. Europe/Berlin")
    thr.add_argument("--mute", help="mute for a duration, e.g. 2h")
    thr.add_argument("--unmute", action="store_true")
    thr.add_argument("--settle", help="flap guard: cancel changes reverted within this long")
    thr.add_argument("--mode", action="append", default=[],
                     help="KIND=on|silent|off (repeatable)")
    thr.add_argument("--charts", help="on|off: attach a 30-day chart to grade alerts")

    dig = _command(
        sub, "digest", "show or set a destination's scheduled digest (the same as /digest)",
        "A daily or weekly summary of a destination's changes (changes by token, current "
        "grades, biggest upgrades and downgrades), sent when each period ends, exactly once "
        "per period. Without a schedule: show the current one.",
        ["alertbot digest --platform telegram --chat -100123 daily 09:00 Europe/Berlin",
         "alertbot digest --platform discord --chat 444444444444444444 weekly mon 09:00 "
         "Europe/Berlin --only",
         "alertbot digest --platform console --chat default off"])
    _destination_args(dig)
    dig.add_argument("schedule", nargs="*", metavar="SCHEDULE",
                     help="daily HH:MM [TZ] | weekly DAY HH:MM [TZ] | off")
    dig.add_argument("--only", action="store_true",
                     help="digests only: changes are not sent one by one")
    dig.add_argument("--always", action="store_true",
                     help="send a digest for a period without changes too")

    test = _command(
        sub, "test", "send one marked test alert to a destination and say what to fix",
        "Send ONE clearly marked test alert through the real delivery path (formatting, "
        "pacing, the platform's errors explained). It skips the outbox: it is never "
        "throttled, retried or recorded. Exit 0 when the platform accepted it, 1 when "
        "delivery failed, 2 on bad input or a platform that is not configured.",
        ["alertbot test --platform telegram --chat -1001234567890",
         "alertbot test --platform telegram --chat -1001234567890 --thread 42",
         "alertbot test --platform discord --chat 444444444444444444"])
    _destination_args(test)
    why = _command(
        sub, "why", "a destination's last alert decisions and their reasons "
                    "(the same as /why in chat)",
        "Print what /why answers in that chat: the last five alert decisions (sent, held, "
        "digested, suppressed, dead-lettered) with their reasons, and whether the "
        "destination is paused.",
        ["alertbot why --platform telegram --chat -1001234567890",
         "alertbot why --platform discord --chat 444444444444444444 --thread 444444444444444455"])
    _destination_args(why)

    _command(
        sub, "status", "which replica leads, since when, and every replica's last heartbeat",
        "Print which replica leads (host, pid, epoch, since when, lease end) and every "
        "replica's last heartbeat, marking silent ones. Exit 1 when no replica leads.",
        ["alertbot status"])

    db = _command(
        sub, "db", "database maintenance: backup, stats, migrate, copy",
        "Database maintenance beside a running bot: an online consistent backup (SQLite), "
        "sizes and counts, pending schema migrations, or a copy into another database.",
        ["alertbot db backup /backups/alertbot-$(date +%F).db", "alertbot db stats",
         "alertbot db migrate",
         "alertbot db copy sqlite:///alertbot.db postgresql://alertbot@db.example/alertbot"])
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    backup = _command(
        db_sub, "backup", "write a consistent copy while the bot runs (SQLite)",
        "Write a consistent copy through SQLite's online backup API while the bot keeps "
        "running. The file is replaced atomically and readable by its owner only. On "
        "PostgreSQL, print the pg_dump command that backs the database up instead.",
        ["alertbot db backup /backups/alertbot-$(date +%F).db"])
    backup.add_argument("path", help="file to write (replaced if it exists)")
    _command(
        db_sub, "stats", "sizes, rows per table, outbox by state, schema version",
        "Print the database location, schema version, size (and write-ahead log), rows per "
        "table, outbox rows by state and the oldest undelivered alert.",
        ["alertbot db stats"])
    _command(
        db_sub, "migrate", "apply pending schema migrations now",
        "Apply pending schema migrations and print the schema version, whatever "
        "ALERTBOT_MIGRATE says (for deployments that set it to off).",
        ["alertbot db migrate"])
    copy = _command(
        db_sub, "copy", "copy every row into an empty database (sqlite <-> postgresql)",
        "Copy every table, row ids included, from SRC_URL into the empty database DST_URL "
        "(migrated first); a destination with data is refused. Stop the bot first.",
        ["alertbot db copy sqlite:///alertbot.db postgresql://alertbot@db.example/alertbot",
         "alertbot db copy postgresql://alertbot@db.example/alertbot sqlite:///back.db"])
    copy.add_argument("source", metavar="SRC_URL", help="database to read")
    copy.add_argument("target", metavar="DST_URL", help="empty database to fill")
    return parser


def _destination_args(parser: argparse.ArgumentParser, *, chat_required: bool = True) -> None:
    parser.add_argument("--platform", required=True, choices=PLATFORMS)
    parser.add_argument("--chat", required=chat_required, help="chat, channel or webhook id")
    parser.add_argument("--thread", default="", help="forum topic or thread id")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `alertbot` command."""
    args = _parser().parse_args(argv)
    if args.env_file is None:
        args.env_file = DEFAULT_ENV_FILE
    elif not args.env_file.is_file():
        # Named on purpose: a missing file must not silently mean "no settings from it".
        print(f"alertbot: --env-file {args.env_file}: no such file (leave --env-file out to "
              f"read {DEFAULT_ENV_FILE} when it exists)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"alertbot: configuration error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    redactor = Redactor(settings.secrets())
    setup_logging(settings.log_level, settings.log_format, redactor)
    try:
        with _quiet_demo_logs(settings):
            return asyncio.run(_dispatch(args, settings, redactor))
    except KeyboardInterrupt:
        return EXIT_OK
    except (UsageError, AlreadyRunning) as exc:
        print(f"alertbot: {redactor(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as exc:
        print(f"alertbot: {redactor(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        # A database fault (locked, full, read-only): one line, and nothing was changed.
        print(f"alertbot: {redactor(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE


POLLER_LOGGER = "alertbot.services.poller"


@contextlib.contextmanager
def _quiet_demo_logs(settings: Settings) -> Iterator[None]:
    """In the demo, routine per-poll lines only when ALERTBOT_LOG_LEVEL asks for them.

    The demo's console notifier already prints every alert on stdout; the poller's INFO
    lines ("change …", "poll …: 20 tokens") repeat them on stderr and were 74 of 78 log lines
    in a minute. Raising only the poller keeps everything else at INFO (the start line, the
    first-run subscription, "alerts held" notices) and every warning, which a global WARNING
    default would hide. An explicit ALERTBOT_LOG_LEVEL (environment or .env) is obeyed as is.
    """
    poller = logging.getLogger(POLLER_LOGGER)
    previous = poller.level
    if settings.use_demo and "log_level" not in settings.model_fields_set:
        poller.setLevel(logging.WARNING)
    try:
        yield
    finally:
        poller.setLevel(previous)  # the process may run more than one command (tests do)


async def _dispatch(args: argparse.Namespace, settings: Settings, redactor: Redactor) -> int:
    if args.command == "status":
        from alertbot.bootstrap import maintenance

        return await maintenance.status(settings)
    if args.command == "db":
        from alertbot.bootstrap import maintenance

        if args.db_command == "backup":
            return await maintenance.backup(settings, args.path)
        if args.db_command == "migrate":
            return await maintenance.migrate(settings)
        if args.db_command == "copy":
            for url in (args.source, args.target):
                # Their passwords are secrets too, wherever they are printed.
                if password := url_password(url):
                    redactor.add(password)
                try:
                    store_from_url(url)
                except StoreError as exc:
                    raise UsageError(f"db copy: {exc}") from None
            return await maintenance.copy(args.source, args.target)
        return await maintenance.stats(settings)
    with _run_lock(settings) if args.command == "run" else contextlib.nullcontext():
        app = await build(settings, redactor=redactor, env_file=args.env_file)
        try:
            handler = _COMMANDS[args.command]
            return await handler(app, args)
        finally:
            await app.close()


def _run_lock(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """SQLite serves one bot per file; processes sharing PostgreSQL coordinate in the database."""
    if is_postgres(settings.database_url):
        return contextlib.nullcontext()
    from alertbot.store.sqlite.connection import sqlite_path

    return single_run(sqlite_path(settings.database_url))


async def _cmd_run(app: App, args: argparse.Namespace) -> int:
    return await run(app, once=args.once)


async def _cmd_check(app: App, args: argparse.Namespace) -> int:
    failures = 0
    print("configuration: ok")
    missing: dict[str, list[str]] = {}
    for destination, variable in await unconfigured_destinations(app):
        missing.setdefault(variable, []).append(str(destination))
    for variable, names in missing.items():
        failures += 1
        print(f"destinations: FAILED: {', '.join(names)} subscribed but {variable} is not set "
              f"(their alerts wait until it is)")
    for name, check in app.checks.items():
        try:
            detail = await asyncio.wait_for(check(), timeout=30)
        except Exception as exc:
            failures += 1
            print(f"{name}: FAILED: {app.redactor(str(exc) or type(exc).__name__)}")
        else:
            print(f"{name}: ok ({app.redactor(detail)})")
    return EXIT_FAILURE if failures else EXIT_OK


async def _cmd_lookup(app: App, args: argparse.Namespace) -> int:
    try:
        token = await app.lookup.resolve(args.symbol)
    except (InvalidSymbol, UnknownToken) as exc:
        raise UsageError(str(exc)) from None
    except LookupFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    try:
        snapshot = await app.lookup.snapshot(token)
    except LookupFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    for message in (render_signal_lookup(snapshot),
                    render_grade_lookup(snapshot, app.rules.band_label)):
        print(message.title)
        for line in message.lines[1:]:
            print(f"  {line}")
    print(f"  {token.link}")
    if snapshot.missing:
        print(f"  (unavailable right now: {', '.join(k.value for k in snapshot.missing)})")
    return EXIT_OK


def _destination(args: argparse.Namespace) -> Destination:
    chat = str(args.chat).strip()
    if not chat or len(chat) > 200:
        raise UsageError("--chat must be a non-empty id")
    if args.platform == "telegram" and not (_id_digits(chat.removeprefix("-"))
                                            or chat.startswith("@")):
        raise UsageError("--chat for telegram must be a numeric chat id or @channelname")
    if args.platform == "discord" and not (_SNOWFLAKE.fullmatch(chat)
                                           or chat.startswith(ADDRESS_ID_PREFIX)):
        raise UsageError("--chat for discord must be a channel id (17 to 20 digits), or the "
                         "wh-… id of a Discord webhook subscription")
    thread = str(args.thread or "").strip()
    if thread and args.platform in ("telegram", "discord") and not _id_digits(thread):
        what = "a forum topic id" if args.platform == "telegram" else "a thread id"
        raise UsageError(f"--thread for {args.platform} must be {what} (a whole number)")
    return Destination(args.platform, chat, thread)


def _id_digits(text: str) -> bool:
    # isdigit() alone accepts "²"; platform ids are ASCII digits of a 64-bit integer.
    return text.isascii() and text.isdigit() and len(text) <= 20


async def _target_token(app: App, symbol: str) -> tuple[int, str]:
    if symbol.strip().lower() == "all":
        return ALL_TOKENS, "all tokens"
    try:
        token = await app.lookup.resolve(symbol)
    except LookupFailed as exc:
        raise UsageError(str(exc)) from None
    return token.token_id, f"{token.symbol} ({token.name}, id {token.token_id})"


def _kinds(text: str | None) -> tuple[Kind, ...]:
    if text is not None and not text.strip():
        raise UsageError("--kinds: name at least one kind (signal, hourly, tm_grade, "
                         "fundamental) or leave --kinds out for all")
    try:
        return parse_kinds(text)
    except ValueError as exc:
        raise UsageError(f"--kinds: {exc}") from None


def _discord_webhook(args: argparse.Namespace) -> tuple[Destination, str]:
    """A Discord webhook destination: its chat id is a hash, the URL its secret address."""
    from alertbot.domain.address import address_id
    from alertbot.platforms.discord.notifier import validate_discord_webhook_url

    try:
        address = validate_discord_webhook_url(args.url)
    except ValueError as exc:
        raise UsageError(f"--url: {exc}") from None
    chat = address_id(address)
    if args.chat and str(args.chat).strip() != chat:
        raise UsageError(f"--chat is not needed with a Discord webhook --url (its id is {chat})")
    return Destination("discord", chat, str(args.thread or "").strip()), address


async def _cmd_subscribe(app: App, args: argparse.Namespace) -> int:
    if args.platform == "discord" and args.url is not None:
        destination, address = _discord_webhook(args)
        kinds = _kinds(args.kinds)
        token_id, described = await _target_token(app, args.symbol)
        now = app.clock.now()
        await app.store.ensure_destination(destination, now, address=address)
        changed = await app.store.subscribe(destination, token_id, kinds, now, actor="cli")
        verb = "subscribed" if changed else "already subscribed"
        print(f"{destination} (Discord webhook) {verb} to {described}: "
              f"{', '.join(k.value for k in kinds)}")
        return EXIT_OK
    if not args.chat:
        raise UsageError("--chat is required (a Discord webhook needs only --url)")
    destination = _destination(args)
    kinds = _kinds(args.kinds)
    token_id, described = await _target_token(app, args.symbol)
    now = app.clock.now()
    replaced = False
    if args.url is not None:
        from alertbot.domain.address import validate_webhook_address

        if destination.platform != "webhook":
            raise UsageError("--url is only for --platform webhook or discord")
        try:
            address = validate_webhook_address(args.url)
        except ValueError as exc:
            raise UsageError(f"--url: {exc}") from None
        previous = await app.store.destination(destination)
        replaced = bool(previous and previous.address and previous.address != address)
        await app.store.ensure_destination(destination, now, address=address)
    elif destination.platform == "webhook":
        info = await app.store.destination(destination)
        if info is None or not info.address:
            raise UsageError("a new webhook destination needs --url")
    changed = await app.store.subscribe(destination, token_id, kinds, now, actor="cli")
    names = ", ".join(k.value for k in kinds)
    verb = "subscribed" if changed else "already subscribed"
    print(f"{destination} {verb} to {described}: {names}")
    if replaced:
        print(f"{destination} address replaced: alerts still queued for it go to the new URL")
    variable = missing_platform_variable(app, destination)
    if variable is not None:
        # Accepted (the token may be added next), but never silently: nothing is sent until then.
        print(f"alertbot: warning: {variable} is not set: alerts for {destination} wait until "
              f"it is", file=sys.stderr)
    return EXIT_OK


async def _cmd_unsubscribe(app: App, args: argparse.Namespace) -> int:
    destination = _destination(args)
    kinds = _kinds(args.kinds)
    token_id: int | None
    if args.symbol.strip().lower() == "all":
        # As in chat: `all` removes those kinds from every subscription of the destination.
        token_id, described = None, "every token"
    else:
        token_id, described = await _target_token(app, args.symbol)
    held = {kind for sub in await app.store.subscriptions(destination)
            if token_id is None or sub.token_id == token_id for kind in sub.kinds}
    removed = await app.store.unsubscribe(destination, token_id, kinds, app.clock.now(),
                                          actor="cli")
    if not removed:
        print(f"{destination} had no subscription to {described} for those kinds")
        return EXIT_FAILURE
    # Name what was removed, not what was asked for.
    names = ", ".join(k.value for k in kinds if k in held)
    print(f"{destination} unsubscribed from {described}: {names}")
    return EXIT_OK


async def _cmd_subscriptions(app: App, args: argparse.Namespace) -> int:
    if args.chat and not args.platform:
        raise UsageError("--chat needs --platform (telegram, discord, webhook or console)")
    if args.thread and not (args.platform and args.chat):
        raise UsageError("--thread needs --platform and --chat")
    destination = None
    if args.platform and args.chat:
        destination = _destination(args)
    subs = await app.store.subscriptions(destination)
    if args.platform and not args.chat:
        subs = [s for s in subs if s.destination.platform == args.platform]
    if not subs:
        print("no subscriptions")
        return EXIT_OK
    width = max(len(str(s.destination)) for s in subs)
    for sub in subs:
        paused = f"  PAUSED: {sub.paused_reason}" if sub.paused_reason else ""
        kinds = ",".join(k.value for k in sub.kinds)
        print(f"{sub.destination!s:<{width}}  {sub.symbol or sub.token_id:<8}  {kinds}"
              f"  since {sub.created_at:%Y-%m-%d %H:%M}{paused}")
    return EXIT_OK


async def _cmd_throttle(app: App, args: argparse.Namespace) -> int:
    destination = _destination(args)
    now = app.clock.now()
    info = await app.store.destination(destination)
    policy = info.policy if info else Policy()
    quiet = args.quiet
    if args.tz and (not quiet or quiet.strip().lower() == "off"):
        raise UsageError("--tz goes with --quiet HH:MM-HH:MM (the time zone of the quiet hours)")
    if quiet and args.tz:
        quiet = f"{quiet} {args.tz}"

    def change(current: Policy) -> Policy:
        return update_policy(current, now, max_alerts=args.max_alerts, window=args.window,
                             quiet=quiet, mute=args.mute, unmute=args.unmute,
                             settle=args.settle, modes=args.mode, charts=args.charts)

    try:
        change(policy)  # validate before writing
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # Read, change and write in one transaction: a chat command at the same time keeps its
    # fields. Held alerts are decided again under the new policy by the running bot.
    result = await app.store.change_policy(destination, change, now, actor="cli")
    policy = result.after
    if result.changed:
        print(f"{destination} updated")
    elif info is None:
        print(f"{destination} has no settings yet (defaults apply)")
    for line in describe_policy(policy):
        print(f"  {line}")
    return EXIT_OK


async def _cmd_digest(app: App, args: argparse.Namespace) -> int:
    destination = _destination(args)
    now = app.clock.now()
    info = await app.store.destination(destination)
    policy = info.policy if info else Policy()
    words = list(args.schedule)
    if not words:
        if args.only or args.always:
            raise UsageError("--only and --always go with a schedule, e.g. daily 09:00 UTC")
        print(f"{destination}: {describe_schedule(policy.digest)}")
        return EXIT_OK
    words += [flag for flag, on in (("only", args.only), ("always", args.always)) if on]
    spec = " ".join(words)

    def change(current: Policy) -> Policy:
        return update_policy(current, now, digest=spec)

    try:
        change(policy)  # validate before writing
    except ValueError as exc:
        raise UsageError(f"digest: {exc}") from None
    result = await app.store.change_policy(destination, change, now, actor="cli",
                                           detail=lambda p: f"digest {p.digest or 'off'}")
    schedule = result.after.digest
    print(f"{destination} {'updated' if result.changed else 'unchanged'}: "
          f"{describe_schedule(schedule)}")
    if schedule is not None:
        first = period_containing(schedule, now).end.astimezone(ZoneInfo(schedule.tz))
        print(f"  first digest: {first:%Y-%m-%d %H:%M} {schedule.tz}")
    return EXIT_OK


async def _cmd_test(app: App, args: argparse.Namespace) -> int:
    destination = _destination(args)
    result = await app.commands.send_test(destination)
    for line in result.lines:
        print(app.redactor(line), file=sys.stdout if result.sent else sys.stderr)
    if result.outcome is AlertTestOutcome.NOT_CONFIGURED:
        return EXIT_CONFIG
    return EXIT_OK if result.sent else EXIT_FAILURE
async def _cmd_why(app: App, args: argparse.Namespace) -> int:
    from alertbot.services.commands import Caller

    # The operator at the console may see everything, as in a private chat.
    caller = Caller(_destination(args), user_id="cli", user_name="cli", is_private=True)
    reply = await app.commands.why(caller)
    print(reply.title)
    for line in reply.lines:
        print(f"  {line}")
    return EXIT_OK


async def _cmd_chart(app: App, args: argparse.Namespace) -> int:
    try:
        days = check_days(args.days)
    except ChartInputError as exc:
        raise UsageError(f"--days: {exc}") from None
    out: Path = args.out
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {out}: the file name must end in .png")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")
    if app.charts is None:
        print("charts are not available with this source", file=sys.stderr)
        return EXIT_FAILURE
    try:
        token = await app.lookup.resolve(args.symbol)
    except (InvalidSymbol, UnknownToken) as exc:
        raise UsageError(str(exc)) from None
    except LookupFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    try:
        if args.drivers:
            recent = await app.lookup.recent_changes(token, Kind.FUNDAMENTAL, 1)
            image = await app.charts.drivers_chart(token, recent[0].detected_at if recent
                                                   else None)
        else:
            image = await app.charts.chart(token, days)
    except ChartUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    try:
        await asyncio.to_thread(out.write_bytes, image.png)
    except OSError as exc:
        print(f"cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(image.caption)
    print(f"wrote {out} ({len(image.png):,} bytes)")
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "chart": _cmd_chart,
    "check": _cmd_check,
    "digest": _cmd_digest,
    "lookup": _cmd_lookup,
    "subscribe": _cmd_subscribe,
    "unsubscribe": _cmd_unsubscribe,
    "subscriptions": _cmd_subscriptions,
    "throttle": _cmd_throttle,
    "test": _cmd_test,
    "why": _cmd_why,
}
