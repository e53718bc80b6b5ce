"""Hand-written fake Discord server (REST API v10 + gateway websocket) for tests.

The fake runs on 127.0.0.1 with an ephemeral port inside the test's event loop. Point the real
discord.py at it with :func:`patch_discord_urls` (or :func:`running_fake_discord`), which patches
``discord.http.Route.BASE`` and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``.

Typical use::

    async with running_fake_discord() as fake:          # starts the fake, patches discord.py
        client = discord.Client(intents=intents, guild_ready_timeout=0.1)
        task = asyncio.create_task(client.start(fake.token))
        await fake.wait_ready()
        ...                                             # drive the bot
        interaction = await fake.inject_interaction("subscribe", [...], permissions="32")
        callback = await fake.wait_for_callback(interaction)
        messages = await fake.wait_for_messages(3, channel_id=DEFAULT_CHANNEL_ID)

Facts modelled here come from /work/shared/reference/platforms.md (sections 1 and 2) and from
reading discord.py 2.7.1. Where Discord's behaviour is only community-observed, the constant says
so.
"""

# wait_* helpers take `timeout=` like asyncio.wait_for: test code reads better than nesting
# every call in `async with asyncio.timeout(...)`.

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web

__all__ = [
    "CREATE_MESSAGE_LIMIT",
    "CREATE_MESSAGE_WINDOW_S",
    "DEFAULT_APPLICATION_ID",
    "DEFAULT_BOT_USER_ID",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_GUILD_ID",
    "DEFAULT_TOKEN",
    "DEFAULT_USER_ID",
    "GLOBAL_LIMIT",
    "GLOBAL_WINDOW_S",
    "INTERACTION_RESPONSE_DEADLINE_S",
    "WEBHOOK_LIMIT",
    "WEBHOOK_WINDOW_S",
    "CallbackRecord",
    "CommandPut",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeWebhook",
    "FollowupRecord",
    "InjectedInteraction",
    "RecordedMessage",
    "RequestRecord",
    "RouteKind",
    "SlidingWindow",
    "WebhookExecution",
    "patch_discord_urls",
    "running_fake_discord",
]

# --- Rate limits -------------------------------------------------------------------------------
# POST /channels/{id}/messages: 5 per 5 s per channel. NOT documented by Discord; community-observed
# (`X-RateLimit-Limit: 5`, rustplusplus#475, eris PR #1267). platforms.md §1 "Create-message
# per-channel limit" [obs].
CREATE_MESSAGE_LIMIT = 5
CREATE_MESSAGE_WINDOW_S = 5.0
# 50 requests per second per bot token. Documented (rate-limits.mdx:122); interaction endpoints are
# exempt (rate-limits.mdx:128). platforms.md §1 "Global limit" [doc].
GLOBAL_LIMIT = 50
GLOBAL_WINDOW_S = 1.0
# Incoming webhooks: 5 per 2 s per webhook. NOT documented; community-observed (Discord engineer in
# discord-api-docs#367). platforms.md §1 "Incoming webhooks" [obs].
WEBHOOK_LIMIT = 5
WEBHOOK_WINDOW_S = 2.0
# Initial interaction response deadline; documented (receiving-and-responding.mdx:351).
INTERACTION_RESPONSE_DEADLINE_S = 3.0
# Interaction tokens stay valid for follow-ups for 15 minutes (receiving-and-responding.mdx:432).
INTERACTION_TOKEN_TTL_S = 15 * 60.0
# enforce_nonce dedupes "in the past few minutes" (message.mdx, Create Message). The exact span is
# undocumented; 2 minutes is deliberately short so clients cannot lean on a longer window.
NONCE_DEDUPE_WINDOW_S = 120.0

# --- Payload limits (platforms.md §1 "Message and embed limits" [doc]) -------------------------
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_NONCE_LEN = 25
MAX_AUTOCOMPLETE_CHOICES = 25
_EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}

# --- Defaults ----------------------------------------------------------------------------------
DEFAULT_TOKEN = "fake-bot-token"
DEFAULT_APPLICATION_ID = 111111111111111111
DEFAULT_BOT_USER_ID = 222222222222222222
DEFAULT_GUILD_ID = 333333333333333333
DEFAULT_CHANNEL_ID = 444444444444444444
DEFAULT_OWNER_ID = 555555555555555555
DEFAULT_USER_ID = 777777777777777777
HEARTBEAT_INTERVAL_MS = 41250

# Permission bits (permissions.mdx).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
ADMINISTRATOR = 1 << 3
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
# Every permission bit defined today (up to USE_EXTERNAL_APPS = 1 << 50). Discord's computed
# permissions for an ADMINISTRATOR are "all", and that is what interactions carry.
ALL_PERMISSIONS = (1 << 51) - 1
DEFAULT_EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
)
DEFAULT_BOT_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | SEND_MESSAGES_IN_THREADS
ORDINARY_MEMBER_PERMISSIONS = str(DEFAULT_EVERYONE_PERMISSIONS)

_DISCORD_EPOCH_MS = 1420070400000
_THREAD_TYPES = frozenset({10, 11, 12})
_GUILD_MESSAGES_INTENT = 1 << 9
_EPHEMERAL = 1 << 6
_LOADING = 1 << 7
_JSON = "application/json"
_ARRIVAL = web.RequestKey("arrival", float)
# Gateway replay buffer per session; enough for any test's disconnect window.
_BACKLOG = 1000

_ERROR_MESSAGES: dict[int, str] = {
    0: "401: Unauthorized",
    10003: "Unknown Channel",
    10004: "Unknown Guild",
    10008: "Unknown Message",
    10015: "Unknown Webhook",
    10062: "Unknown interaction",
    20012: "You are not authorized to perform this action on this application",
    40060: "Interaction has already been acknowledged.",
    50001: "Missing Access",
    50006: "Cannot send an empty message",
    50007: "Cannot send messages to this user",
    50013: "Missing Permissions",
    50027: "Invalid Webhook Token",
    50035: "Invalid Form Body",
    50109: "The request body contains invalid JSON.",
}

RouteKind = Literal[
    "users_me",
    "application",
    "gateway",
    "commands",
    "get_channel",
    "create_message",
    "edit_message",
    "interaction_callback",
    "followup",
    "original",
    "webhook",
    "webhook_message",
    "gateway_ws",
    "unknown",
]
_AUTH_REQUIRED: frozenset[str] = frozenset(
    {"users_me", "application", "commands", "get_channel", "create_message", "edit_message"}
)
# Interaction endpoints are not bound to the bot's global limit (rate-limits.mdx:128).
_GLOBAL_EXEMPT: frozenset[str] = frozenset(
    {"interaction_callback", "followup", "original", "gateway_ws"}
)


# --- Layout ------------------------------------------------------------------------------------
@dataclass
class FakeChannel:
    """A guild channel: text (0), announcement (5), category (4) or thread (10/11/12)."""

    id: int
    name: str = "alerts"
    type: int = 0
    parent_id: int | None = None
    position: int = 0
    topic: str | None = None
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_thread(self) -> bool:
        """True for thread channel types."""
        return self.type in _THREAD_TYPES


@dataclass
class FakeGuild:
    """A guild the bot is in, with its channels and the permissions the bot gets there."""

    id: int
    name: str = "Alert Test Guild"
    channels: list[FakeChannel] = field(default_factory=list)
    everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS
    bot_permissions: int = DEFAULT_BOT_PERMISSIONS
    owner_id: int = DEFAULT_OWNER_ID
    member_count: int = 2


@dataclass
class FakeWebhook:
    """An incoming webhook known to the fake."""

    id: int
    token: str
    channel_id: int
    guild_id: int | None
    name: str = "Alerts"

    @property
    def url(self) -> str:
        """A discord.com-style URL that ``discord.Webhook.from_url`` accepts."""
        return f"https://discord.com/api/webhooks/{self.id}/{self.token}"


# --- Records -----------------------------------------------------------------------------------
@dataclass
class RequestRecord:
    """One HTTP request as it arrived (``time`` is the fake's clock at arrival)."""

    method: str
    path: str
    query: dict[str, str]
    kind: str
    time: float
    authorized: bool
    status: int = 0


@dataclass
class RecordedMessage:
    """A message created through ``POST /channels/{id}/messages``."""

    id: int
    channel_id: int
    content: str | None
    embeds: list[dict[str, Any]]
    allowed_mentions: dict[str, Any] | None
    flags: int | None
    nonce: str | int | None
    enforce_nonce: bool
    payload: dict[str, Any]
    attachments: list[str]
    time: float
    message: dict[str, Any]


@dataclass
class InjectedInteraction:
    """An INTERACTION_CREATE the fake dispatched; use ``id`` to find its callback."""

    id: int
    token: str
    application_id: int
    type: int
    name: str
    guild_id: int | None
    channel_id: int
    dispatched_at: float
    payload: dict[str, Any]
    acknowledged: bool = False
    original: dict[str, Any] | None = None


@dataclass
class CallbackRecord:
    """An interaction callback; ``elapsed`` is seconds since the INTERACTION_CREATE dispatch."""

    interaction_id: int
    token: str
    type: int
    data: dict[str, Any] | None
    query: dict[str, str]
    time: float
    elapsed: float
    status: int
    error_code: int | None = None


@dataclass
class FollowupRecord:
    """A follow-up or @original edit made with an interaction token."""

    kind: Literal["followup", "edit", "delete"]
    interaction_id: int
    message_id: int
    content: str | None
    embeds: list[dict[str, Any]]
    flags: int | None
    allowed_mentions: dict[str, Any] | None
    payload: dict[str, Any]
    time: float
    elapsed: float


@dataclass
class WebhookExecution:
    """An accepted execution of an incoming webhook."""

    webhook_id: int
    token: str
    channel_id: int
    thread_id: int | None
    wait: bool
    content: str | None
    embeds: list[dict[str, Any]]
    username: str | None
    avatar_url: str | None
    allowed_mentions: dict[str, Any] | None
    flags: int | None
    payload: dict[str, Any]
    message_id: int
    time: float


@dataclass
class CommandPut:
    """One bulk-overwrite of application commands (``guild_id`` None means global)."""

    application_id: int
    guild_id: int | None
    commands: list[dict[str, Any]]
    time: float


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    retry_after: float
    scope: str
    times: int
    edge_headers: Mapping[str, str] | None = None
    """Set: answer as Cloudflare's edge does (HTML body, no Via) with these headers."""


@dataclass
class _Session:
    session_id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    ws: web.WebSocketResponse | None = None
    alive: bool = True
    backlog: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=_BACKLOG))
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SlidingWindow:
    """Strict sliding-window limiter: at most ``limit`` hits in any ``window``-second span."""

    __slots__ = ("_hits", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: deque[float] = deque()

    def _prune(self, now: float) -> None:
        hits = self._hits
        cutoff = now - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()

    def retry_after(self, now: float) -> float:
        """Seconds until one more hit is allowed (0.0 if allowed now)."""
        self._prune(now)
        if len(self._hits) < self.limit:
            return 0.0
        return self._hits[0] + self.window - now

    def hit(self, now: float) -> None:
        """Count a request that arrived at ``now``."""
        self._hits.append(now)

    def remaining(self, now: float) -> int:
        """Hits still allowed right now."""
        self._prune(now)
        return max(0, self.limit - len(self._hits))

    def reset_after(self, now: float) -> float:
        """Seconds until the window is completely empty again."""
        self._prune(now)
        return self._hits[-1] + self.window - now if self._hits else 0.0


def _ceil_ms(seconds: float) -> float:
    # Round up so a client that sleeps exactly this long is never a hair early.
    return max(0.001, math.ceil(seconds * 1000.0 - 1e-6) / 1000.0)


def _member(user: dict[str, Any], roles: Iterable[int]) -> dict[str, Any]:
    """A guild member payload with the fields discord.py reads."""
    return {
        "user": user,
        "roles": [str(r) for r in roles],
        "nick": None,
        "avatar": None,
        "banner": None,
        "joined_at": _iso_now(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    # discord.py only parses JSON when Content-Type is exactly "application/json"
    # (http.py json_or_text); web.json_response would append "; charset=utf-8".
    merged = {"Content-Type": _JSON}
    if headers:
        merged.update(headers)
    return web.Response(body=json.dumps(body).encode(), status=status, headers=merged)


def _error(status: int, code: int, message: str | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"message": message or _ERROR_MESSAGES.get(code, "Error"), "code": code}
    body.update(extra)
    return _json_response(body, status=status)


def _form_error(path: str, error_code: str, text: str) -> web.Response:
    errors: dict[str, Any] = {"_errors": [{"code": error_code, "message": text}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return _error(400, 50035, errors=errors)


class _BadJson(Exception):
    pass


class FakeDiscord:
    """Fake Discord REST API + gateway on 127.0.0.1 that records what a client sends."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_user_id: int = DEFAULT_BOT_USER_ID,
        guilds: Sequence[FakeGuild] | None = None,
        *,
        bot_username: str = "alertbot",
        enforce_limits: bool = True,
        send_ratelimit_headers: bool = True,
        clock: Callable[[], float] = time.monotonic,
        response_delay: float = 0.0,
        validate_payloads: bool = True,
        allow_unknown_webhooks: bool = True,
        nonce_scope: Literal["author", "channel"] = "author",
        create_message_limit: tuple[int, float] = (CREATE_MESSAGE_LIMIT, CREATE_MESSAGE_WINDOW_S),
        global_limit: tuple[int, float] = (GLOBAL_LIMIT, GLOBAL_WINDOW_S),
        webhook_limit: tuple[int, float] = (WEBHOOK_LIMIT, WEBHOOK_WINDOW_S),
        nonce_window: float = NONCE_DEDUPE_WINDOW_S,
    ) -> None:
        self.token = token
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.bot_username = bot_username
        self.enforce_limits = enforce_limits
        self.send_ratelimit_headers = send_ratelimit_headers
        self.clock = clock
        self.response_delay = response_delay
        self.validate_payloads = validate_payloads
        self.allow_unknown_webhooks = allow_unknown_webhooks
        self.nonce_scope = nonce_scope
        self.create_message_limit = create_message_limit
        self.webhook_limit = webhook_limit
        self.nonce_window = nonce_window

        self.guilds: dict[int, FakeGuild] = {}
        self._channels: dict[int, tuple[FakeGuild, FakeChannel]] = {}
        self._bot_role_ids: dict[int, int] = {}
        self._last_id = 0
        self._id_seq = itertools.count()
        for guild in guilds if guilds is not None else [self.default_guild()]:
            self._register_guild(guild)

        # Inspection state (public, read by tests).
        self.requests: list[RequestRecord] = []
        self.messages: list[RecordedMessage] = []
        self.message_edits: list[dict[str, Any]] = []
        """Edits of bot messages: PATCH .../messages/{id} and type 7 callbacks (components)."""
        self.callbacks: dict[int, CallbackRecord] = {}
        self.callback_log: list[CallbackRecord] = []
        self.followups: list[FollowupRecord] = []
        self.webhook_executions: list[WebhookExecution] = []
        self.command_puts: list[CommandPut] = []
        self.interactions: dict[int, InjectedInteraction] = {}
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.rate_limited = 0
        self.rate_limited_by_channel: Counter[int] = Counter()
        self.rate_limited_by_webhook: Counter[int] = Counter()
        self.invalid_requests = 0
        self.nonce_dedupes = 0
        self.heartbeats = 0
        self.gateway_connects = 0

        self._by_channel: dict[int, list[RecordedMessage]] = {}
        self._interactions_by_token: dict[str, InjectedInteraction] = {}
        self._webhook_messages: dict[int, tuple[int, str, dict[str, Any]]] = {}
        self._commands: dict[int | None, list[dict[str, Any]]] = {}
        self._channel_errors: dict[int, tuple[int, int, str]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._drops: Counter[str] = Counter()
        self._canned: dict[str, deque[Any]] = {}
        self._webhooks: dict[int, FakeWebhook] = {}
        self._deleted_webhooks: set[int] = set()
        self._global_window = SlidingWindow(*global_limit)
        self._channel_windows: dict[int, SlidingWindow] = {}
        self._webhook_windows: dict[int, SlidingWindow] = {}
        self._broken_webhook_bodies = 0
        self._nonces: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}
        self._nonce_order: deque[tuple[float, tuple[int, str]]] = deque()
        self._sessions: dict[str, _Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._server_closed: set[web.WebSocketResponse] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    # --- lifecycle -----------------------------------------------------------------------------
    @staticmethod
    def default_guild() -> FakeGuild:
        """The default layout: guild 333… with text channel 444… named #alerts."""
        return FakeGuild(id=DEFAULT_GUILD_ID, channels=[FakeChannel(id=DEFAULT_CHANNEL_ID)])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if not self._port:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``DiscordWebSocket.DEFAULT_GATEWAY`` and READY.resume_gateway_url."""
        return f"ws://127.0.0.1:{self._port}/gw"

    async def start(self) -> None:
        """Bind an ephemeral port on 127.0.0.1 and start serving."""
        app = web.Application(middlewares=[self._middleware])
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Close gateway sockets and the HTTP server."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(RuntimeError("FakeDiscord stopped while a test was waiting"))

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- layout helpers ------------------------------------------------------------------------
    def _register_guild(self, guild: FakeGuild) -> None:
        self.guilds[guild.id] = guild
        self._bot_role_ids.setdefault(guild.id, self._next_id())
        for channel in guild.channels:
            self._channels[channel.id] = (guild, channel)

    def add_channel(self, guild_id: int, channel: FakeChannel) -> FakeChannel:
        """Add a channel (or thread) to a guild; no gateway event is sent."""
        guild = self.guilds[guild_id]
        guild.channels.append(channel)
        self._channels[channel.id] = (guild, channel)
        return channel

    def channel(self, channel_id: int) -> FakeChannel:
        """Look up a channel of the layout."""
        return self._channels[channel_id][1]

    def add_webhook(
        self,
        webhook_id: int | None = None,
        token: str | None = None,
        channel_id: int | None = None,
        name: str = "Alerts",
    ) -> FakeWebhook:
        """Register an incoming webhook; ``.url`` is a discord.com URL for ``Webhook.from_url``."""
        channel_id = channel_id if channel_id is not None else self._first_text_channel()
        guild = self._channels[channel_id][0] if channel_id in self._channels else None
        hook = FakeWebhook(
            id=webhook_id if webhook_id is not None else self._next_id(),
            token=token if token is not None else secrets.token_urlsafe(51)[:68],
            channel_id=channel_id,
            guild_id=guild.id if guild else None,
            name=name,
        )
        self._webhooks[hook.id] = hook
        self._deleted_webhooks.discard(hook.id)
        return hook

    def delete_webhook(self, webhook_id: int) -> None:
        """Delete a webhook: later executions get 404 10015 Unknown Webhook."""
        self._webhooks.pop(webhook_id, None)
        self._deleted_webhooks.add(webhook_id)

    def _first_text_channel(self, guild_id: int | None = None) -> int:
        for guild in self.guilds.values():
            if guild_id is not None and guild.id != guild_id:
                continue
            for channel in guild.channels:
                if channel.type in (0, 5):
                    return channel.id
        raise LookupError("layout has no text channel")

    # --- scripting -----------------------------------------------------------------------------
    def set_channel_error(
        self, channel_id: int, status: int, code: int, message: str | None = None
    ) -> None:
        """Make every request on this channel fail with ``status``/``code`` until cleared."""
        self._channel_errors[channel_id] = (status, code, message or _ERROR_MESSAGES.get(code, ""))

    def clear_channel_error(self, channel_id: int) -> None:
        """Undo :meth:`set_channel_error`."""
        self._channel_errors.pop(channel_id, None)

    def fail_next(
        self,
        route_kind: RouteKind,
        times: int = 1,
        *,
        status: int = 429,
        code: int = 0,
        message: str | None = None,
        retry_after: float = 0.1,
        scope: Literal["user", "global", "shared"] = "user",
    ) -> None:
        """Fail the next ``times`` requests of ``route_kind`` (429s are well-formed, with Via)."""
        text = message or (
            "You are being rate limited." if status == 429 else _ERROR_MESSAGES.get(code, "Error")
        )
        self._failures.setdefault(route_kind, deque()).append(
            _Failure(status, code, text, retry_after, scope, times)
        )

    def edge_ban_next(self, route_kind: RouteKind, retry_after: str, times: int = 1) -> None:
        """Answer the next requests 429 as Cloudflare's edge does: HTML, no Via header.

        ``retry_after`` is the raw Retry-After header (delta-seconds or an HTTP-date);
        discord.py raises HTTPException at once for such an answer (http.py, "Via").
        """
        self._failures.setdefault(route_kind, deque()).append(
            _Failure(429, 0, "", 0.0, "user", times, edge_headers={"Retry-After": retry_after})
        )

    def break_webhook_bodies(self, times: int = 1) -> None:
        """Answer the next ``times`` webhook executions 200 with a truncated JSON body.

        Nothing is posted: as when a proxy or an overloaded edge cuts the answer short.
        """
        self._broken_webhook_bodies += times

    def drop_next(self, route_kind: RouteKind, times: int = 1) -> None:
        """Close the connection instead of answering the next ``times`` requests of a kind."""
        # What a proxy restart or an idle-connection reset looks like to the client: aiohttp
        # raises ServerDisconnectedError, which is neither an HTTPException nor an OSError.
        self._drops[route_kind] += times

    def answer_next(self, route_kind: RouteKind, body: Any, times: int = 1) -> None:
        """Answer the next ``times`` requests of a kind with 200 and ``body`` as JSON."""
        # A payload of the wrong shape: what the client makes of an answer it cannot parse.
        self._canned.setdefault(route_kind, deque()).extend([body] * times)

    def set_response_delay(self, route_kind: RouteKind, seconds: float) -> None:
        """Delay responses of one route kind (real seconds, after the request is recorded)."""
        self._delays[route_kind] = seconds

    # --- inspection ----------------------------------------------------------------------------
    def messages_in(self, channel_id: int) -> list[RecordedMessage]:
        """Messages recorded in one channel, oldest first."""
        return list(self._by_channel.get(channel_id, ()))

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """Currently registered commands (guild_id None for global)."""
        return list(self._commands.get(guild_id, ()))

    @property
    def intents(self) -> int | None:
        """Intents sent in the latest IDENTIFY."""
        return self.identifies[-1].get("intents") if self.identifies else None

    def requests_of(self, kind: RouteKind) -> list[RequestRecord]:
        """Request log filtered by route kind."""
        return [r for r in self.requests if r.kind == kind]

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        """Wait (event-driven) until ``predicate()`` holds after some recorded event."""
        if predicate():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (predicate, fut)
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"FakeDiscord: timed out after {timeout}s waiting for {what}"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def wait_for_messages(
        self, n: int, timeout: float = 5.0, channel_id: int | None = None
    ) -> list[RecordedMessage]:
        """Wait until at least ``n`` messages were recorded (optionally in one channel)."""

        def source() -> list[RecordedMessage]:
            return self.messages if channel_id is None else self._by_channel.get(channel_id, [])

        await self.wait_until(lambda: len(source()) >= n, timeout, f"{n} message(s)")
        return list(source())

    async def wait_for_callback(
        self, interaction_id: int | InjectedInteraction, timeout: float = 5.0
    ) -> CallbackRecord:
        """Wait for the accepted callback of an interaction."""
        iid = (
            interaction_id.id if isinstance(interaction_id, InjectedInteraction) else interaction_id
        )
        await self.wait_until(lambda: iid in self.callbacks, timeout, f"callback of {iid}")
        return self.callbacks[iid]

    async def wait_for_followups(self, n: int, timeout: float = 5.0) -> list[FollowupRecord]:
        """Wait until at least ``n`` follow-ups/edits were recorded."""
        await self.wait_until(lambda: len(self.followups) >= n, timeout, f"{n} follow-up(s)")
        return list(self.followups)

    async def wait_for_webhook_executions(
        self, n: int, timeout: float = 5.0
    ) -> list[WebhookExecution]:
        """Wait until at least ``n`` incoming-webhook executions were recorded."""
        await self.wait_until(
            lambda: len(self.webhook_executions) >= n, timeout, f"{n} webhook execution(s)"
        )
        return list(self.webhook_executions)

    async def wait_ready(self, timeout: float = 5.0, count: int = 1) -> dict[str, Any]:
        """Wait until ``count`` IDENTIFYs were answered with READY; returns the latest IDENTIFY."""
        await self.wait_until(lambda: len(self.identifies) >= count, timeout, "IDENTIFY")
        return self.identifies[-1]

    def _notify(self) -> None:
        for predicate, fut in list(self._waiters):
            if not fut.done() and predicate():
                fut.set_result(None)

    # --- ids and payload builders --------------------------------------------------------------
    def _next_id(self) -> int:
        ms = int(time.time() * 1000) - _DISCORD_EPOCH_MS
        candidate = (ms << 22) | (1 << 17) | (next(self._id_seq) & 0xFFF)
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id

    def bot_user(self) -> dict[str, Any]:
        """The bot's user object."""
        return {
            "id": str(self.bot_user_id),
            "username": self.bot_username,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": False,
            "flags": 0,
            "public_flags": 0,
            "locale": "en-US",
            "email": None,
        }

    def _bot_member(self, guild: FakeGuild) -> dict[str, Any]:
        return _member(self.bot_user(), [self._bot_role_ids[guild.id]])

    def _role(self, role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "permissions": str(permissions),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return role

    def channel_payload(self, channel: FakeChannel, guild_id: int | None) -> dict[str, Any]:
        """Channel object as the API returns it."""
        data: dict[str, Any] = {
            "id": str(channel.id),
            "type": channel.type,
            "name": channel.name,
            "position": channel.position,
            "parent_id": str(channel.parent_id) if channel.parent_id else None,
            "permission_overwrites": channel.permission_overwrites,
            "topic": channel.topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        if channel.is_thread:
            now = _iso_now()
            data.update(
                owner_id=str(self.bot_user_id),
                message_count=0,
                member_count=1,
                total_message_sent=0,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": now,
                    "locked": False,
                    "create_timestamp": now,
                },
            )
            for key in ("position", "permission_overwrites", "topic"):
                data.pop(key)
        elif channel.type in (2, 13):
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        return data

    def guild_payload(self, guild: FakeGuild) -> dict[str, Any]:
        """GUILD_CREATE payload that fills discord.py's guild, channel, thread and role caches."""
        bot_role = self._role(
            self._bot_role_ids[guild.id], self.bot_username, guild.bot_permissions, 1
        )
        bot_role.update(managed=True, tags={"bot_id": str(self.bot_user_id)})
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "application_id": None,
            "incidents_data": None,
            "joined_at": _iso_now(),
            "large": guild.member_count >= 250,
            "lazy": True,
            "unavailable": False,
            "member_count": guild.member_count,
            "roles": [self._role(guild.id, "@everyone", guild.everyone_permissions, 0), bot_role],
            "emojis": [],
            "stickers": [],
            "channels": [self.channel_payload(c, None) for c in guild.channels if not c.is_thread],
            "threads": [self.channel_payload(c, guild.id) for c in guild.channels if c.is_thread],
            "members": [self._bot_member(guild)],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _bot_channel_permissions(self, guild: FakeGuild, channel: FakeChannel) -> int:
        base = guild.everyone_permissions | guild.bot_permissions
        if base & ADMINISTRATOR:
            return ALL_PERMISSIONS
        target = channel
        if channel.is_thread and channel.parent_id in self._channels:
            target = self._channels[channel.parent_id][1]
        role_id = self._bot_role_ids[guild.id]
        overwrites = {int(o["id"]): o for o in target.permission_overwrites}
        # Discord's order: @everyone overwrite, then role overwrites, then the member overwrite.
        for oid in (guild.id, role_id, self.bot_user_id):
            if oid in overwrites:
                base &= ~int(overwrites[oid].get("deny", 0))
                base |= int(overwrites[oid].get("allow", 0))
        return base

    def _message(
        self,
        channel_id: int,
        payload: dict[str, Any],
        *,
        message_id: int | None = None,
        author: dict[str, Any] | None = None,
        webhook_id: int | None = None,
        interaction: InjectedInteraction | None = None,
        flags: int | None = None,
        attachments: Sequence[str] = (),
    ) -> dict[str, Any]:
        embeds = [{"type": "rich", **e} for e in payload.get("embeds") or []]
        msg: dict[str, Any] = {
            "id": str(message_id or self._next_id()),
            "channel_id": str(channel_id),
            "author": author or self.bot_user(),
            "content": payload.get("content") or "",
            "timestamp": _iso_now(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [
                {
                    "id": str(self._next_id()),
                    "filename": name,
                    "size": 0,
                    "url": "",
                    "proxy_url": "",
                }
                for name in attachments
            ],
            "embeds": embeds,
            "pinned": False,
            "type": 0,
            "flags": flags if flags is not None else int(payload.get("flags") or 0),
            "components": payload.get("components") or [],
        }
        if "nonce" in payload:
            msg["nonce"] = payload["nonce"]
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
        if interaction is not None:
            msg["type"] = 20 if interaction.payload["data"].get("type", 1) == 1 else 23
            msg["application_id"] = str(self.application_id)
            user = interaction.payload.get("member", {}).get("user") or interaction.payload.get(
                "user"
            )
            msg["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": interaction.payload[
                    "authorizing_integration_owners"
                ],
                "name": interaction.name,
            }
        return msg

    # --- HTTP plumbing -------------------------------------------------------------------------
    def _add_routes(self, app: web.Application) -> None:
        api = "/api/v10"
        add = app.router.add_route
        add("GET", f"{api}/users/@me", self._users_me)
        add("GET", f"{api}/oauth2/applications/@me", self._application)
        add("GET", f"{api}/gateway", self._gateway_info)
        add("GET", f"{api}/gateway/bot", self._gateway_bot)
        for method in ("GET", "PUT"):
            add(method, f"{api}/applications/{{app_id}}/commands", self._commands_route)
            add(
                method,
                f"{api}/applications/{{app_id}}/guilds/{{guild_id}}/commands",
                self._commands_route,
            )
        add("GET", f"{api}/channels/{{channel_id}}", self._get_channel)
        add("POST", f"{api}/channels/{{channel_id}}/messages", self._create_message)
        add("PATCH", f"{api}/channels/{{channel_id}}/messages/{{message_id}}",
            self._edit_message)
        add("POST", f"{api}/interactions/{{interaction_id}}/{{token}}/callback", self._callback)
        add("POST", f"{api}/webhooks/{{webhook_id}}/{{token}}", self._webhook_post)
        for method in ("GET", "PATCH", "DELETE"):
            add(
                method,
                f"{api}/webhooks/{{webhook_id}}/{{token}}/messages/{{message_id}}",
                self._webhook_message,
            )
        app.router.add_get("/gw", self._gateway_ws)

    def _route_kind(self, request: web.Request) -> str:
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else ""
        if route == "/gw":
            return "gateway_ws"
        if not route.startswith("/api/v10"):
            return "unknown"
        tail = route[len("/api/v10") :]
        if tail == "/users/@me":
            return "users_me"
        if tail == "/oauth2/applications/@me":
            return "application"
        if tail.startswith("/gateway"):
            return "gateway"
        if tail.endswith("/commands"):
            return "commands"
        if tail == "/channels/{channel_id}":
            return "get_channel"
        if tail == "/channels/{channel_id}/messages":
            return "create_message"
        if tail == "/channels/{channel_id}/messages/{message_id}":
            return "edit_message"
        if tail.endswith("/callback"):
            return "interaction_callback"
        if tail.startswith("/webhooks/"):
            is_interaction = self._is_interaction_webhook(info["webhook_id"])
            if tail.endswith("/messages/{message_id}"):
                return "original" if is_interaction else "webhook_message"
            return "followup" if is_interaction else "webhook"
        return "unknown"

    def _is_interaction_webhook(self, webhook_id: str) -> bool:
        # Interaction follow-ups use the application id as the webhook id.
        return webhook_id == str(self.application_id)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        now = self.clock()
        request[_ARRIVAL] = now
        kind = self._route_kind(request)
        record = RequestRecord(
            request.method, request.path, dict(request.query), kind, now, self._authorized(request)
        )
        self.requests.append(record)
        if self._drops[kind] > 0:
            self._drops[kind] -= 1
            assert request.transport is not None
            request.transport.abort()
            self._notify()
            return web.Response(status=599)  # never reaches the client: the socket is gone
        response: web.StreamResponse | None = self._gate(request, kind, now)
        canned = self._canned.get(kind)
        if response is None and canned:
            response = web.json_response(canned.popleft())
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                # Unknown routes: JSON like Discord, so the client sees a dict not a str.
                response = _error(exc.status, 0, f"{exc.status}: {exc.reason}")
        record.status = response.status
        # Discord's invalid-request budget counts 401/403/429, except 429s with a shared scope.
        if response.status in (401, 403) or (
            response.status == 429 and response.headers.get("X-RateLimit-Scope") != "shared"
        ):
            self.invalid_requests += 1
        self._notify()
        delay = self._delays.get(kind, self.response_delay)
        if delay > 0 and kind != "gateway_ws":
            await asyncio.sleep(delay)
        return response

    def _gate(self, request: web.Request, kind: str, now: float) -> web.Response | None:
        authorized = self._authorized(request)
        if kind in _AUTH_REQUIRED and not authorized:
            return _error(401, 0, "401: Unauthorized")
        if self.enforce_limits and authorized and kind not in _GLOBAL_EXEMPT:
            wait = self._global_window.retry_after(now)
            if wait > 0:
                return self._rate_limited(wait, scope="global", request=request)
            self._global_window.hit(now)
        queue = self._failures.get(kind)
        if queue:
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.popleft()
            if failure.edge_headers is not None:
                return web.Response(status=failure.status, headers=failure.edge_headers,
                                    text="<html><body>1015: You are being rate limited</body>"
                                         "</html>", content_type="text/html")
            if failure.status == 429:
                return self._rate_limited(
                    failure.retry_after, scope=failure.scope, request=request, code=failure.code
                )
            return _error(failure.status, failure.code, failure.message)
        return None

    def _rate_limited(
        self,
        retry_after: float,
        *,
        scope: str,
        request: web.Request,
        extra_headers: Mapping[str, str] | None = None,
        code: int = 0,
    ) -> web.Response:
        retry = _ceil_ms(retry_after)
        is_global = scope == "global"
        body: dict[str, Any] = {
            "message": "You are being rate limited.",
            "retry_after": retry,
            "global": is_global,
        }
        if code:
            body["code"] = code
        # discord.py treats a 429 without Via as a Cloudflare ban and raises at once (http.py:712).
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(math.ceil(retry)),
            "X-RateLimit-Scope": scope,
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        if extra_headers:
            headers.update(extra_headers)
        self.rate_limited += 1
        info = request.match_info
        if "channel_id" in info:
            self.rate_limited_by_channel[int(info["channel_id"])] += 1
        if "webhook_id" in info and info["webhook_id"].isdigit():
            self.rate_limited_by_webhook[int(info["webhook_id"])] += 1
        return _json_response(body, status=429, headers=headers)

    def _bucket_headers(self, window: SlidingWindow, now: float, bucket: str) -> dict[str, str]:
        if not (self.enforce_limits and self.send_ratelimit_headers):
            return {}
        # Reset-After is the time until the window is EMPTY: discord.py resets "remaining" to the
        # full limit when it expires, which is only safe once every counted hit has aged out.
        reset_after = _ceil_ms(window.reset_after(now))
        return {
            "X-RateLimit-Limit": str(window.limit),
            "X-RateLimit-Remaining": str(window.remaining(now)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    async def _read_json(self, request: web.Request) -> tuple[Any, list[str]]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            files = [v.filename for v in form.values() if isinstance(v, web.FileField)]
            raw = form.get("payload_json")
            try:
                return (json.loads(raw) if isinstance(raw, str) else {}), files
            except ValueError as exc:
                raise _BadJson from exc
        body = await request.read()
        if not body:
            return {}, []
        try:
            return json.loads(body), []
        except ValueError as exc:
            raise _BadJson from exc

    async def _read_object(
        self, request: web.Request
    ) -> tuple[dict[str, Any], list[str]] | web.Response:
        try:
            payload, files = await self._read_json(request)
        except _BadJson:
            return _error(400, 50109)
        if not isinstance(payload, dict):
            return _error(400, 50109)
        return payload, files

    def _validate_message(
        self, payload: dict[str, Any], files: Sequence[str], *, need_body: bool = True
    ) -> web.Response | None:
        if not self.validate_payloads:
            return None
        invalid_components = _check_components(payload.get("components"))
        if invalid_components is not None:
            return invalid_components
        content = payload.get("content")
        embeds = payload.get("embeds") or []
        if need_body and not (
            content
            or embeds
            or files
            or payload.get("components")
            or payload.get("sticker_ids")
            or payload.get("poll")
        ):
            return _error(400, 50006)
        if content is not None and len(str(content)) > MAX_CONTENT:
            return _form_error(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        if len(embeds) > MAX_EMBEDS:
            return _form_error(
                "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
            )
        total = 0
        for i, embed in enumerate(embeds):
            texts: list[tuple[str, str, int]] = [
                (f"embeds.{i}.{k}", str(embed.get(k) or ""), limit)
                for k, limit in _EMBED_FIELD_LIMITS.items()
            ]
            texts.append(
                (
                    f"embeds.{i}.footer.text",
                    str((embed.get("footer") or {}).get("text") or ""),
                    2048,
                )
            )
            texts.append(
                (f"embeds.{i}.author.name", str((embed.get("author") or {}).get("name") or ""), 256)
            )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                return _form_error(
                    f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for j, fld in enumerate(fields):
                texts.append((f"embeds.{i}.fields.{j}.name", str(fld.get("name") or ""), 256))
                texts.append((f"embeds.{i}.fields.{j}.value", str(fld.get("value") or ""), 1024))
            for path, text, limit in texts:
                size = len(text.strip())
                if size > limit:
                    return _form_error(
                        path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                    )
                total += size
        if total > MAX_EMBED_TOTAL:
            return _form_error(
                "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        nonce = payload.get("nonce")
        if isinstance(nonce, str) and len(nonce) > MAX_NONCE_LEN:
            return _form_error(
                "nonce", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_NONCE_LEN} or fewer in length."
            )
        mentions = payload.get("allowed_mentions")
        if isinstance(mentions, dict):
            parse = mentions.get("parse") or []
            if any(p not in ("users", "roles", "everyone") for p in parse):
                return _form_error(
                    "allowed_mentions.parse",
                    "BASE_TYPE_CHOICES",
                    "Value must be one of ('users', 'roles', 'everyone').",
                )
            for key in ("users", "roles"):
                if key in parse and mentions.get(key):
                    return _form_error(
                        f"allowed_mentions.{key}",
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        f'parse:["{key}"] and {key}: [ids] are mutually exclusive.',
                    )
        return None

    def _channel_gate(self, channel_id: int, *, for_send: bool) -> web.Response | None:
        scripted = self._channel_errors.get(channel_id)
        if scripted is not None:
            return _error(scripted[0], scripted[1], scripted[2])
        entry = self._channels.get(channel_id)
        if entry is None:
            return _error(404, 10003)
        guild, channel = entry
        perms = self._bot_channel_permissions(guild, channel)
        if not perms & VIEW_CHANNEL:
            return _error(403, 50001)
        needed = SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES
        if for_send and not perms & needed:
            return _error(403, 50013)
        return None

    # --- REST handlers -------------------------------------------------------------------------
    async def _users_me(self, request: web.Request) -> web.Response:
        return _json_response(self.bot_user())

    async def _application(self, request: web.Request) -> web.Response:
        owner = {
            "id": str(DEFAULT_OWNER_ID),
            "username": "owner",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
        }
        return _json_response(
            {
                "id": str(self.application_id),
                "name": self.bot_username,
                "icon": None,
                "description": "Fake application for tests",
                "summary": "",
                "type": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": owner,
                "team": None,
                "verify_key": secrets.token_hex(32),
                "flags": 0,
                "tags": [],
                "rpc_origins": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "role_connections_verification_url": None,
                "approximate_guild_count": len(self.guilds),
                "bot": self.bot_user(),
                "integration_types_config": {"0": {}},
            }
        )

    async def _gateway_info(self, request: web.Request) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, 0, "401: Unauthorized")
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _commands_route(self, request: web.Request) -> web.Response:
        info = request.match_info
        if info["app_id"] != str(self.application_id):
            return _error(403, 20012)
        guild_id = int(info["guild_id"]) if "guild_id" in info else None
        if guild_id is not None and guild_id not in self.guilds:
            return _error(403, 50001)
        if request.method == "GET":
            return _json_response(self._commands.get(guild_id, []))
        try:
            body, _ = await self._read_json(request)
        except _BadJson:
            return _error(400, 50109)
        if not isinstance(body, list):
            return _form_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
        invalid = self._validate_commands(body)
        if invalid is not None:
            return invalid
        self.command_puts.append(CommandPut(self.application_id, guild_id, body, request[_ARRIVAL]))
        existing = {
            (c["name"], c.get("type", 1)): c["id"] for c in self._commands.get(guild_id, [])
        }
        registered: list[dict[str, Any]] = []
        for cmd in body:
            ctype = cmd.get("type", 1)
            perms = cmd.get("default_member_permissions")
            out = {
                "id": existing.get((cmd["name"], ctype)) or str(self._next_id()),
                "application_id": str(self.application_id),
                "version": str(self._next_id()),
                "type": ctype,
                "name": cmd["name"],
                "name_localizations": cmd.get("name_localizations"),
                "description": cmd.get("description", ""),
                "description_localizations": cmd.get("description_localizations"),
                # Discord returns the bit set as a string even when sent as an int.
                "default_member_permissions": None if perms is None else str(perms),
                "dm_permission": cmd.get("dm_permission", True),
                "contexts": cmd.get("contexts"),
                "integration_types": cmd.get("integration_types", [0]),
                "nsfw": cmd.get("nsfw", False),
                "options": cmd.get("options", []),
            }
            if guild_id is not None:
                out["guild_id"] = str(guild_id)
            registered.append(out)
        self._commands[guild_id] = registered
        return _json_response(registered)

    def _validate_commands(self, body: list[Any]) -> web.Response | None:
        if not self.validate_payloads:
            return None
        chat = [c for c in body if isinstance(c, dict) and c.get("type", 1) == 1]
        if len(chat) > 100:
            return _form_error("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        for i, cmd in enumerate(body):
            if not isinstance(cmd, dict) or not isinstance(cmd.get("name"), str):
                return _form_error(f"{i}.name", "BASE_TYPE_REQUIRED", "This field is required")
            name = cmd["name"]
            if cmd.get("type", 1) == 1:
                if not re.fullmatch(r"[-_'\w]{1,32}", name) or name != name.lower():
                    return _form_error(
                        f"{i}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                    )
                if not 1 <= len(cmd.get("description") or "") <= 100:
                    return _form_error(
                        f"{i}.description",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 100 in length.",
                    )
        return None

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        denied = self._channel_gate(channel_id, for_send=False)
        if denied is not None:
            return denied
        guild, channel = self._channels[channel_id]
        return _json_response(self.channel_payload(channel, guild.id))

    async def _admit_message(
        self, request: web.Request, window: SlidingWindow, now: float, bucket: str
    ) -> web.Response | tuple[dict[str, str], dict[str, Any], list[str]]:
        """Apply a message route's rate limit, then read and validate its payload."""
        if self.enforce_limits:
            wait = window.retry_after(now)
            if wait > 0:
                return self._rate_limited(
                    wait,
                    scope="user",
                    request=request,
                    extra_headers=self._bucket_headers(window, now, bucket),
                )
            window.hit(now)
        headers = self._bucket_headers(window, now, bucket)
        parsed = await self._read_object(request)
        if isinstance(parsed, web.Response):
            return parsed
        payload, files = parsed
        invalid = self._validate_message(payload, files)
        if invalid is not None:
            return invalid
        return headers, payload, files

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        now: float = request[_ARRIVAL]
        denied = self._channel_gate(channel_id, for_send=True)
        if denied is not None:
            return denied
        window = self._channel_windows.get(channel_id)
        if window is None:
            window = self._channel_windows[channel_id] = SlidingWindow(*self.create_message_limit)
        admitted = await self._admit_message(request, window, now, "fake-create-message")
        if isinstance(admitted, web.Response):
            return admitted
        headers, payload, files = admitted

        nonce = payload.get("nonce")
        enforce = bool(payload.get("enforce_nonce")) and nonce is not None
        key: tuple[int, str] | None = None
        if enforce:
            self._expire_nonces(now)
            scope_id = self.bot_user_id if self.nonce_scope == "author" else channel_id
            key = (scope_id, str(nonce))
            seen = self._nonces.get(key)
            if seen is not None:
                self.nonce_dedupes += 1
                return _json_response(seen[1], headers=headers)

        message = self._message(channel_id, payload, attachments=files)
        if key is not None:
            self._nonces[key] = (now, message)
            self._nonce_order.append((now, key))
        record = RecordedMessage(
            id=int(message["id"]),
            channel_id=channel_id,
            content=payload.get("content"),
            embeds=list(payload.get("embeds") or []),
            allowed_mentions=payload.get("allowed_mentions"),
            flags=payload.get("flags"),
            nonce=nonce,
            enforce_nonce=bool(payload.get("enforce_nonce", False)),
            payload=payload,
            attachments=files,
            time=now,
            message=message,
        )
        self.messages.append(record)
        self._by_channel.setdefault(channel_id, []).append(record)
        await self._dispatch_message_create(channel_id, message)
        return _json_response(message, headers=headers)

    def _expire_nonces(self, now: float) -> None:
        order = self._nonce_order
        while order and order[0][0] <= now - self.nonce_window:
            _, key = order.popleft()
            seen = self._nonces.get(key)
            if seen is not None and seen[0] <= now - self.nonce_window:
                del self._nonces[key]

    async def _dispatch_message_create(self, channel_id: int, message: dict[str, Any]) -> None:
        if not any(s.alive and s.intents & _GUILD_MESSAGES_INTENT for s in self._sessions.values()):
            return
        data = dict(message)
        entry = self._channels.get(channel_id)
        if entry is not None:
            guild = entry[0]
            data["guild_id"] = str(guild.id)
            member = self._bot_member(guild)
            member.pop("user")
            data["member"] = member
        await self._dispatch(
            "MESSAGE_CREATE", data, only=lambda s: bool(s.intents & _GUILD_MESSAGES_INTENT)
        )

    async def _callback(self, request: web.Request) -> web.Response:
        now: float = request[_ARRIVAL]
        iid = int(request.match_info["interaction_id"])
        token = request.match_info["token"]
        parsed = await self._read_object(request)
        if isinstance(parsed, web.Response):
            return parsed
        payload, _ = parsed
        interaction = self.interactions.get(iid)
        elapsed = now - interaction.dispatched_at if interaction else math.inf
        ctype = int(payload.get("type", 0))
        data = payload.get("data")
        record = CallbackRecord(iid, token, ctype, data, dict(request.query), now, elapsed, 200)

        def reject(status: int, code: int) -> web.Response:
            record.status, record.error_code = status, code
            self.callback_log.append(record)
            return _error(status, code)

        if interaction is None or interaction.token != token:
            return reject(404, 10062)
        if self.enforce_limits and elapsed > INTERACTION_RESPONSE_DEADLINE_S:
            return reject(404, 10062)
        if interaction.acknowledged:
            return reject(400, 40060)
        if self.validate_payloads and ctype == 8:
            choices = (data or {}).get("choices") or []
            if len(choices) > MAX_AUTOCOMPLETE_CHOICES:
                record.status, record.error_code = 400, 50035
                self.callback_log.append(record)
                return _form_error(
                    "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
        if ctype == 7:
            invalid = self._validate_message(data or {}, (), need_body=False)
            if invalid is not None:
                record.status, record.error_code = invalid.status, 50035
                self.callback_log.append(record)
                return invalid
        if ctype == 4:
            invalid = self._validate_message(data or {}, ())
            if invalid is not None:
                record.status, record.error_code = invalid.status, 50035
                self.callback_log.append(record)
                return invalid
        interaction.acknowledged = True
        self.callbacks[iid] = record
        self.callback_log.append(record)

        flags = int((data or {}).get("flags") or 0)
        body: dict[str, Any] = {
            "interaction": {
                "id": str(iid),
                "type": interaction.type,
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": bool(flags & _EPHEMERAL),
            }
        }
        if ctype in (4, 5):
            msg_flags = flags | (_LOADING if ctype == 5 else 0)
            original = self._message(
                interaction.channel_id,
                data if ctype == 4 and data else {},
                webhook_id=self.application_id,
                interaction=interaction,
                flags=msg_flags,
            )
            interaction.original = original
            body["interaction"]["response_message_id"] = original["id"]
            body["resource"] = {"type": ctype, "message": original}
        elif ctype in (6, 7):
            body["resource"] = {"type": ctype}
            if ctype == 7:
                self._update_pressed_message(interaction, data or {})
        return _json_response(body)

    async def _webhook_post(self, request: web.Request) -> web.Response:
        webhook_id = request.match_info["webhook_id"]
        token = request.match_info["token"]
        if self._is_interaction_webhook(webhook_id):
            return await self._followup(request, token)
        if not webhook_id.isdigit():
            return _error(404, 10015)
        return await self._execute_webhook(request, int(webhook_id), token)

    def _live_interaction(self, token: str, now: float) -> InjectedInteraction | None:
        interaction = self._interactions_by_token.get(token)
        if interaction is None:
            return None
        # Follow-ups need an acknowledged interaction whose 15-minute token is still valid;
        # otherwise Discord answers 404 10015 Unknown Webhook.
        if not interaction.acknowledged:
            return None
        if self.enforce_limits and now - interaction.dispatched_at > INTERACTION_TOKEN_TTL_S:
            return None
        return interaction

    async def _followup(self, request: web.Request, token: str) -> web.Response:
        now: float = request[_ARRIVAL]
        interaction = self._live_interaction(token, now)
        if interaction is None:
            return _error(404, 10015)
        parsed = await self._read_object(request)
        if isinstance(parsed, web.Response):
            return parsed
        payload, files = parsed
        invalid = self._validate_message(payload, files)
        if invalid is not None:
            return invalid
        message = self._message(
            interaction.channel_id,
            payload,
            webhook_id=self.application_id,
            interaction=interaction,
            attachments=files,
        )
        self._webhook_messages[int(message["id"])] = (self.application_id, token, message)
        self.followups.append(
            FollowupRecord(
                kind="followup",
                interaction_id=interaction.id,
                message_id=int(message["id"]),
                content=payload.get("content"),
                embeds=list(payload.get("embeds") or []),
                flags=payload.get("flags"),
                allowed_mentions=payload.get("allowed_mentions"),
                payload=payload,
                time=now,
                elapsed=now - interaction.dispatched_at,
            )
        )
        return _json_response(message)

    async def _execute_webhook(
        self, request: web.Request, webhook_id: int, token: str
    ) -> web.Response:
        now: float = request[_ARRIVAL]
        hook = self._webhooks.get(webhook_id)
        if hook is None:
            if webhook_id in self._deleted_webhooks or not self.allow_unknown_webhooks:
                return _error(404, 10015)
            hook = self.add_webhook(webhook_id, token)
        elif hook.token != token:
            return _error(401, 50027)
        denied = self._channel_errors.get(hook.channel_id)
        if denied is not None and denied[1] == 10003:
            # A deleted channel takes its webhooks with it.
            return _error(404, 10015)
        window = self._webhook_windows.get(webhook_id)
        if window is None:
            window = self._webhook_windows[webhook_id] = SlidingWindow(*self.webhook_limit)
        admitted = await self._admit_message(request, window, now, "fake-webhook")
        if isinstance(admitted, web.Response):
            return admitted
        headers, payload, files = admitted
        if self._broken_webhook_bodies > 0:
            self._broken_webhook_bodies -= 1
            return web.Response(body=b'{"id": "12', status=200,
                                headers={**headers, "Content-Type": _JSON})
        wait_flag = request.query.get("wait", "false").lower() in ("1", "true")
        thread_id = int(request.query["thread_id"]) if request.query.get("thread_id") else None
        channel_id = thread_id or hook.channel_id
        author = {
            "id": str(hook.id),
            "username": payload.get("username") or hook.name,
            "discriminator": "0000",
            "avatar": None,
            "bot": True,
        }
        message = self._message(
            channel_id, payload, author=author, webhook_id=hook.id, attachments=files
        )
        self._webhook_messages[int(message["id"])] = (hook.id, token, message)
        self.webhook_executions.append(
            WebhookExecution(
                webhook_id=hook.id,
                token=token,
                channel_id=hook.channel_id,
                thread_id=thread_id,
                wait=wait_flag,
                content=payload.get("content"),
                embeds=list(payload.get("embeds") or []),
                username=payload.get("username"),
                avatar_url=payload.get("avatar_url"),
                allowed_mentions=payload.get("allowed_mentions"),
                flags=payload.get("flags"),
                payload=payload,
                message_id=int(message["id"]),
                time=now,
            )
        )
        if not wait_flag:
            return web.Response(status=204, headers=headers)
        return _json_response(message, headers=headers)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        now: float = request[_ARRIVAL]
        info = request.match_info
        token = info["token"]
        if not info["webhook_id"].isdigit():
            return _error(404, 10015)
        webhook_id = int(info["webhook_id"])
        interaction = None
        if self._is_interaction_webhook(info["webhook_id"]):
            interaction = self._live_interaction(token, now)
            if interaction is None:
                return _error(404, 10015)
        elif webhook_id not in self._webhooks or self._webhooks[webhook_id].token != token:
            return _error(404, 10015)

        if info["message_id"] == "@original":
            if interaction is None or interaction.original is None:
                return _error(404, 10008)
            message = interaction.original
        else:
            stored = (
                self._webhook_messages.get(int(info["message_id"]))
                if info["message_id"].isdigit()
                else None
            )
            if stored is None or stored[:2] != (webhook_id, token):
                return _error(404, 10008)
            message = stored[2]

        if request.method == "GET":
            return _json_response(message)
        payload: dict[str, Any] = {}
        if request.method == "PATCH":
            parsed = await self._read_object(request)
            if isinstance(parsed, web.Response):
                return parsed
            payload = parsed[0]
            invalid = self._validate_message(payload, parsed[1], need_body=False)
            if invalid is not None:
                return invalid
            for key in ("content", "components"):
                if key in payload:
                    message[key] = payload[key] or ([] if key == "components" else "")
            if "embeds" in payload:
                message["embeds"] = [{"type": "rich", **e} for e in payload["embeds"] or []]
            message["flags"] = int(message.get("flags", 0)) & ~_LOADING
            message["edited_timestamp"] = _iso_now()
        if interaction is not None:
            self.followups.append(
                FollowupRecord(
                    kind="edit" if request.method == "PATCH" else "delete",
                    interaction_id=interaction.id,
                    message_id=int(message["id"]),
                    content=payload.get("content"),
                    embeds=list(payload.get("embeds") or []),
                    flags=payload.get("flags"),
                    allowed_mentions=payload.get("allowed_mentions"),
                    payload=payload,
                    time=now,
                    elapsed=now - interaction.dispatched_at,
                )
            )
        if request.method == "DELETE":
            return web.Response(status=204)
        return _json_response(message)

    # --- gateway -------------------------------------------------------------------------------
    async def _gateway_ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.gateway_connects += 1
        session: _Session | None = None
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": 10,
                        "s": None,
                        "t": None,
                        "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS},
                    }
                )
            )
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                self.gateway_received.append(frame)
                op = frame.get("op")
                if op == 1:
                    self.heartbeats += 1
                    await self._send_raw(ws, session, {"op": 11, "s": None, "t": None, "d": None})
                elif op == 2:
                    session = await self._identify(ws, frame.get("d") or {})
                elif op == 6:
                    session = await self._resume(ws, frame.get("d") or {})
                elif op == 8 and session is not None:
                    await self._request_members(session, frame.get("d") or {})
                self._notify()
        finally:
            self._sockets.discard(ws)
            server_closed = ws in self._server_closed
            self._server_closed.discard(ws)
            if session is not None and session.ws is ws:
                session.ws = None
                # A client closing with 1000/1001 ends its session (no RESUME). aiohttp answers a
                # server-initiated close with 1000, so only client-initiated closes count.
                if ws.close_code in (1000, 1001) and not server_closed:
                    session.alive = False
            self._notify()
        return ws

    async def _send_raw(
        self, ws: web.WebSocketResponse, session: _Session | None, frame: dict[str, Any]
    ) -> None:
        if ws.closed:
            return
        lock = session.send_lock if session is not None else None
        with contextlib.suppress(ConnectionError, RuntimeError):
            if lock is None:
                await ws.send_str(json.dumps(frame))
            else:
                async with lock:
                    await ws.send_str(json.dumps(frame))

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard = data.get("shard")
        session = _Session(
            session_id=secrets.token_hex(16), intents=int(data.get("intents", 0)), shard=shard
        )
        session.ws = ws
        self._sessions[session.session_id] = session
        guilds = [g for g in self.guilds.values() if self._in_shard(g.id, shard)]
        ready = {
            "v": 10,
            "user": self.bot_user(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        if shard is not None:
            ready["shard"] = shard
        await self._dispatch("READY", ready, session=session)
        for guild in guilds:
            await self._dispatch("GUILD_CREATE", self.guild_payload(guild), session=session)
        # Recorded after READY/GUILD_CREATE went out so wait_ready() implies the caches are sent.
        self.identifies.append(data)
        return session

    @staticmethod
    def _in_shard(guild_id: int, shard: list[int] | None) -> bool:
        if not shard:
            return True
        return (guild_id >> 22) % shard[1] == shard[0]

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        self.resumes.append(data)
        session = self._sessions.get(str(data.get("session_id")))
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        if session is None or not session.alive:
            await self._send_raw(ws, None, {"op": 9, "s": None, "t": None, "d": False})
            return None
        session.ws = ws
        last_seq = int(data.get("seq") or 0)
        for frame in list(session.backlog):
            if frame["s"] > last_seq:
                await self._send_raw(ws, session, frame)
        await self._dispatch("RESUMED", {}, session=session)
        return session

    async def _request_members(self, session: _Session, data: dict[str, Any]) -> None:
        guild_ids = data.get("guild_id")
        for gid in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            guild = self.guilds.get(int(gid)) if gid is not None else None
            if guild is None:
                continue
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [self._bot_member(guild)],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self._dispatch("GUILD_MEMBERS_CHUNK", chunk, session=session)

    async def _dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        session: _Session | None = None,
        only: Callable[[_Session], bool] | None = None,
    ) -> int:
        if session is not None:
            targets = [session]
        else:
            targets = [s for s in self._sessions.values() if s.alive and (only is None or only(s))]
        for target in targets:
            target.seq += 1
            frame = {"op": 0, "t": event, "s": target.seq, "d": data}
            # Buffered even while disconnected so a RESUME can replay it.
            target.backlog.append(frame)
            if target.ws is not None:
                await self._send_raw(target.ws, target, frame)
        return len(targets)

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self._sessions.values() if s.alive]

    async def inject_dispatch(self, event_name: str, data: dict[str, Any]) -> int:
        """Send any DISPATCH event to every live session; returns how many sessions got it."""
        if not self._live_sessions():
            raise RuntimeError("no gateway session has identified yet")
        return await self._dispatch(event_name, data)

    async def inject_interaction(
        self,
        name: str,
        options: Sequence[Mapping[str, Any]] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        user_id: int = DEFAULT_USER_ID,
        username: str = "moderator",
        permissions: str = ORDINARY_MEMBER_PERMISSIONS,
        roles: Sequence[int] = (),
        interaction_type: int = 2,
        focused: str | None = None,
        command_type: int = 1,
        command_scope: Literal["auto", "guild", "global"] = "auto",
        resolved: Mapping[str, Any] | None = None,
        locale: str = "en-US",
        component: Mapping[str, Any] | None = None,
        message: Mapping[str, Any] | None = None,
    ) -> InjectedInteraction:
        """Dispatch a realistic INTERACTION_CREATE (type 2 command, 3 component, 4 autocomplete).

        A component press (type 3) carries `component` as its data and the `message` the
        component is on; `press_button` builds both from a message the bot sent.
        """
        if not self._live_sessions():
            raise RuntimeError("no gateway session has identified yet")
        gid: int | None = None
        if not dm:
            gid = guild_id if guild_id is not None else next(iter(self.guilds))
        if channel_id is None:
            channel_id = self._first_text_channel(gid) if gid is not None else self._next_id()
        iid = self._next_id()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        user = {
            "id": str(user_id),
            "username": username,
            "discriminator": "0",
            "global_name": username.title(),
            "avatar": None,
            "public_flags": 0,
        }
        opts = [dict(o) for o in options or []]
        member_permissions = permissions
        if int(permissions) & ADMINISTRATOR:
            member_permissions = str(ALL_PERMISSIONS)
        if interaction_type == 4:
            self._mark_focused(opts, focused)

        data: dict[str, Any] = {"id": "", "name": name, "type": command_type}
        if interaction_type == 3:
            data = dict(component or {})
        else:
            scope_gid = self._command_scope(name, command_type, gid, command_scope)
            known = {
                c["name"]: c["id"]
                for c in self._commands.get(scope_gid, [])
                if c["type"] == command_type
            }
            data["id"] = known.get(name) or str(self._next_id())
            if scope_gid is not None:
                data["guild_id"] = str(scope_gid)
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = dict(resolved)

        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "token": token,
            "version": 1,
            "attachment_size_limit": 10 * 1024 * 1024,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "locale": locale,
            "data": data,
        }
        if gid is not None:
            guild = self.guilds[gid]
            channel = (
                self._channels[channel_id][1]
                if channel_id in self._channels
                else FakeChannel(channel_id)
            )
            payload.update(
                guild_id=str(gid),
                guild={"id": str(gid), "locale": "en-US", "features": []},
                guild_locale="en-US",
                channel_id=str(channel_id),
                channel=self.channel_payload(channel, gid),
                member={
                    **_member(user, roles),
                    "unusual_dm_activity_until": None,
                    "permissions": member_permissions,
                },
                app_permissions=str(
                    self._bot_channel_permissions(guild, channel)
                    if channel_id in self._channels
                    else guild.bot_permissions
                ),
                authorizing_integration_owners={"0": str(gid)},
                context=0,
            )
        else:
            payload.update(
                channel_id=str(channel_id),
                channel={
                    "id": str(channel_id),
                    "type": 1,
                    "recipients": [user],
                    "last_message_id": None,
                    "flags": 0,
                },
                user=user,
                app_permissions=str(DEFAULT_BOT_PERMISSIONS),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )

        if message is not None:
            payload["message"] = json.loads(json.dumps(message))
        injected = InjectedInteraction(
            id=iid,
            token=token,
            application_id=self.application_id,
            type=interaction_type,
            name=name,
            guild_id=gid,
            channel_id=channel_id,
            dispatched_at=self.clock(),
            payload=payload,
        )
        self.interactions[iid] = injected
        self._interactions_by_token[token] = injected
        await self._dispatch("INTERACTION_CREATE", payload)
        return injected

    @staticmethod
    def _mark_focused(options: list[dict[str, Any]], focused: str | None) -> None:
        # Descend through sub-commands/groups (types 1 and 2) to the leaf options.
        leaf = options
        while leaf and leaf[0].get("type") in (1, 2):
            leaf[0] = dict(leaf[0])
            leaf[0]["options"] = leaf = [dict(o) for o in leaf[0].get("options", [])]
        if not leaf:
            return
        target = focused if focused is not None else leaf[-1]["name"]
        for opt in leaf:
            if opt["name"] == target:
                opt["focused"] = True

    def _command_scope(
        self, name: str, command_type: int, gid: int | None, scope: str
    ) -> int | None:
        if scope == "global" or gid is None:
            return None
        if scope == "guild":
            return gid

        def has(key: int | None) -> bool:
            return any(
                c["name"] == name and c["type"] == command_type for c in self._commands.get(key, [])
            )

        if has(gid):
            return gid
        return None if has(None) else gid

    async def inject_guild_delete(self, guild_id: int, *, unavailable: bool = False) -> None:
        """Dispatch GUILD_DELETE; unless ``unavailable``, the bot has left: its channels 403."""
        await self.inject_dispatch(
            "GUILD_DELETE", {"id": str(guild_id), **({"unavailable": True} if unavailable else {})}
        )
        if not unavailable and guild_id in self.guilds:
            guild = self.guilds.pop(guild_id)
            for channel in guild.channels:
                self._channels.pop(channel.id, None)
                self._channel_errors.setdefault(channel.id, (403, 50001, _ERROR_MESSAGES[50001]))

    async def inject_guild_create(self, guild: FakeGuild) -> None:
        """Add a guild to the layout and dispatch GUILD_CREATE (the bot joined it)."""
        self._register_guild(guild)
        for channel in guild.channels:
            self._channel_errors.pop(channel.id, None)
        await self.inject_dispatch("GUILD_CREATE", self.guild_payload(guild))

    async def inject_reconnect(self) -> None:
        """Send op 7 RECONNECT; discord.py reconnects to resume_gateway_url and RESUMEs."""
        for session in self._live_sessions():
            if session.ws is not None:
                await self._send_raw(
                    session.ws, session, {"op": 7, "s": None, "t": None, "d": None}
                )

    async def inject_invalid_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION (discord.py sleeps ~5 s before it re-IDENTIFYs)."""
        for session in self._live_sessions():
            if not resumable:
                session.alive = False
            if session.ws is not None:
                await self._send_raw(
                    session.ws, session, {"op": 9, "s": None, "t": None, "d": resumable}
                )

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway socket with ``code`` (4000 lets discord.py resume)."""
        for ws in list(self._sockets):
            self._server_closed.add(ws)
            await ws.close(code=code, message=b"dropped by fake")

    # --- message components (buttons) ----------------------------------------------------------

    def recorded(self, message_id: int) -> RecordedMessage:
        """A message the bot created, by id."""
        return next(m for m in self.messages if m.id == message_id)

    def button_labels(self, message_id: int) -> list[list[str]]:
        """The button labels of a bot message as they stand now, row by row."""
        rows = self.recorded(message_id).message.get("components") or []
        return [[c.get("label", "") for c in row.get("components") or []] for row in rows]

    def custom_id_of(self, message_id: int, label: str) -> str:
        """The custom_id of the button with this label on a bot message."""
        rows = self.recorded(message_id).message.get("components") or []
        for row in rows:
            for component in row.get("components") or []:
                if component.get("label") == label:
                    return str(component["custom_id"])
        raise KeyError(f"no button {label!r} on message {message_id}")

    async def press_button(
        self,
        message_id: int,
        *,
        label: str | None = None,
        custom_id: str | None = None,
        user_id: int = DEFAULT_USER_ID,
        permissions: str = ORDINARY_MEMBER_PERMISSIONS,
        username: str = "member",
    ) -> InjectedInteraction:
        """Press a button of a bot message (by label, or send any `custom_id`: a forgery)."""
        record = self.recorded(message_id)
        if label is not None:
            custom_id = self.custom_id_of(message_id, label)
        return await self.inject_interaction(
            "", interaction_type=3, channel_id=record.channel_id, user_id=user_id,
            permissions=permissions, username=username,
            component={"custom_id": custom_id or "", "component_type": 2},
            message=record.message)

    def _update_pressed_message(self, interaction: InjectedInteraction,
                                data: Mapping[str, Any]) -> None:
        pressed = interaction.payload.get("message") or {}
        record = next((m for m in self.messages if str(m.id) == str(pressed.get("id"))), None)
        if record is None:
            return
        self._apply_edit(record, data)

    def _apply_edit(self, record: RecordedMessage, data: Mapping[str, Any]) -> None:
        for key in ("content", "embeds", "components"):
            if key in data and data[key] is not None:
                record.message[key] = data[key]
        record.message["edited_timestamp"] = _iso_now()
        self.message_edits.append({"message_id": record.id, **data})
        self._notify()

    async def _edit_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        message_id = int(request.match_info["message_id"])
        record = next((m for m in self._by_channel.get(channel_id, []) if m.id == message_id),
                      None)
        if record is None:
            return _error(404, 10008)
        parsed = await self._read_object(request)
        if isinstance(parsed, web.Response):
            return parsed
        payload, _ = parsed
        invalid = self._validate_message(payload, (), need_body=False)
        if invalid is not None:
            return invalid
        self._apply_edit(record, payload)
        return _json_response(record.message)


# --- component validation ----------------------------------------------------------------------

MAX_ACTION_ROWS = 5
MAX_ROW_COMPONENTS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80


def _check_components(components: Any) -> web.Response | None:
    """Refuse message components the way Discord does (rows, buttons, custom_id, label)."""
    if components is None:
        return None
    if not isinstance(components, list) or len(components) > MAX_ACTION_ROWS:
        return _form_error("components", "BASE_TYPE_MAX_LENGTH",
                           f"Must be {MAX_ACTION_ROWS} or fewer in length.")
    for i, row in enumerate(components):
        if not isinstance(row, dict) or row.get("type") != 1:
            return _form_error(f"components.{i}.type", "BASE_TYPE_CHOICES",
                               "Value must be one of {1}.")
        items = row.get("components") or []
        if not 1 <= len(items) <= MAX_ROW_COMPONENTS:
            return _form_error(f"components.{i}.components", "BASE_TYPE_BAD_LENGTH",
                               f"Must be between 1 and {MAX_ROW_COMPONENTS} in length.")
        for j, item in enumerate(items):
            path = f"components.{i}.components.{j}"
            if item.get("type") != 2:
                return _form_error(f"{path}.type", "BASE_TYPE_CHOICES", "Value must be 2.")
            style = item.get("style")
            custom_id = item.get("custom_id")
            if style != 5 and not (isinstance(custom_id, str)
                                   and 1 <= len(custom_id) <= MAX_CUSTOM_ID):
                return _form_error(f"{path}.custom_id", "BASE_TYPE_BAD_LENGTH",
                                   f"Must be between 1 and {MAX_CUSTOM_ID} in length.")
            if len(str(item.get("label") or "")) > MAX_BUTTON_LABEL:
                return _form_error(f"{path}.label", "BASE_TYPE_MAX_LENGTH",
                                   f"Must be {MAX_BUTTON_LABEL} or fewer in length.")
    return None


@contextlib.contextmanager
def patch_discord_urls(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Point discord.py's REST base and default gateway at ``fake``; restore on exit."""
    route = discord.http.Route
    socket_cls = discord.gateway.DiscordWebSocket
    old_base, old_gateway = route.BASE, socket_cls.DEFAULT_GATEWAY
    route.BASE = fake.api_base
    socket_cls.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield fake
    finally:
        route.BASE = old_base
        socket_cls.DEFAULT_GATEWAY = old_gateway


@contextlib.asynccontextmanager
async def running_fake_discord(**kwargs: Any) -> AsyncIterator[FakeDiscord]:
    """Start a :class:`FakeDiscord` with ``kwargs`` and patch discord.py's URLs while it runs."""
    async with FakeDiscord(**kwargs) as fake:
        with patch_discord_urls(fake):
            yield fake
