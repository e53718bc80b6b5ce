"""Hand-written fake of the Telegram Bot API for tests and benchmarks.

It serves ``/bot{token}/{method}`` on 127.0.0.1 with aiohttp inside the test's event loop,
speaks the real wire format (form-encoded or JSON requests, ``{"ok": ...}`` envelopes with
matching HTTP statuses), enforces Telegram's documented flood limits, validates formatted
text like Telegram does, and lets tests inject updates and script faults.

Usage::

    async with FakeTelegram() as tg:
        bot = telegram.Bot(tg.token, base_url=tg.base_url)
        tg.inject_message(-100123, "/start", user_id=7)
        await tg.wait_for_messages(1)

Once a bot calls setWebhook, injected updates are POSTed to the registered URL instead (JSON,
with the ``X-Telegram-Bot-Api-Secret-Token`` header when a secret_token was set), one at a
time and in order; an update that gets no 2xx answer is retried after
``webhook_retry_delay`` like Telegram does, and getUpdates answers 409 Conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
from aiohttp import web

JSONDict = dict[str, Any]

# Flood limits. Source: Telegram Bot FAQ, "My bot is hitting limits, how do I avoid this?"
# (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this), the same
# numbers as python-telegram-bot's telegram.constants.FloodLimit. Telegram calls them
# approximate; the fake applies them as strict sliding windows so bots that rely on bursts fail.
MESSAGES_PER_SECOND: Final = 30  # FloodLimit.MESSAGES_PER_SECOND, all chats together
MESSAGES_PER_SECOND_PER_CHAT: Final = 1  # FloodLimit.MESSAGES_PER_SECOND_PER_CHAT
MESSAGES_PER_MINUTE_PER_GROUP: Final = 20  # FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP
# sendMessage(allow_paid_broadcast=True), Bot API docs; FloodLimit.PAID_MESSAGES_PER_SECOND.
PAID_MESSAGES_PER_SECOND: Final = 1000

# Bot API sendMessage: "1-4096 characters after entities parsing"; MessageLimit.MAX_TEXT_LENGTH.
MAX_TEXT_LENGTH: Final = 4096

# Fixed ids Telegram uses for senders that hide the real author (telegram.constants.ChatID).
GROUP_ANONYMOUS_BOT_ID: Final = 1087968824
CHANNEL_BOT_ID: Final = 136817688

RATE_LIMITED_METHODS: Final = frozenset({"sendmessage"})
CHAT_MEMBER_STATUSES: Final = frozenset(
    {"creator", "administrator", "member", "restricted", "left", "kicked"}
)
# Telegram's default when allowed_updates is unset or []: everything except these three.
_NOT_DEFAULT_UPDATES: Final = frozenset(
    {"chat_member", "message_reaction", "message_reaction_count"}
)
# PTB sends str-typed parameters raw and json.dumps everything else, so only these skip decoding.
_STRING_PARAMS: Final = frozenset(
    {
        "text", "parse_mode", "caption", "callback_query_id", "language_code", "url",
        "secret_token", "business_connection_id", "message_effect_id", "ip_address",
        "inline_message_id", "action", "emoji", "title", "description", "short_description",
        "name", "custom_title", "data", "query",
    }
)
_BAD_GATEWAY_HTML: Final = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_BOT_COMMAND_RE: Final = re.compile(
    r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?!\w)"
)
_COMMAND_NAME_RE: Final = re.compile(r"[a-z0-9_]{1,32}")
# setWebhook: "secret_token: 1-256 characters. Only characters A-Z, a-z, 0-9, _ and - are allowed."
_SECRET_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
_REGISTERED: Final = object()


class EntityParseError(ValueError):
    """Formatted text that Telegram would reject with "can't parse entities"."""


class _ApiError(Exception):
    """Raised inside method handlers; turned into a Bot API error envelope."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted response: an API error, a slow answer (delay), or both."""

    status: int = 0  # 0: no error, the request is processed normally after `delay`
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    delay: float = 0.0
    raw_body: str | None = None  # non-JSON body, as nginx sends for 502

    @classmethod
    def error(cls, status: int, description: str, **parameters: Any) -> Fault:
        """Any error envelope; keyword arguments become ``parameters``."""
        return cls(status=status, description=description, parameters=parameters or None)

    @classmethod
    def retry_after(cls, seconds: int) -> Fault:
        """429 flood-wait with ``parameters.retry_after``."""
        return cls.error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)

    @classmethod
    def blocked_by_user(cls) -> Fault:
        """403 for a private chat whose user blocked the bot."""
        return cls.error(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def kicked(cls, chat_type: str = "supergroup") -> Fault:
        """403 for a group the bot was removed from."""
        return cls.error(403, f"Forbidden: bot was kicked from the {chat_type} chat")

    @classmethod
    def chat_not_found(cls) -> Fault:
        """400 for an unknown chat id."""
        return cls.error(400, "Bad Request: chat not found")

    @classmethod
    def thread_not_found(cls) -> Fault:
        """400 for a message_thread_id that is not a topic of the forum."""
        return cls.error(400, "Bad Request: message thread not found")

    @classmethod
    def migrated(cls, new_chat_id: int) -> Fault:
        """400 for a group upgraded to a supergroup, with ``migrate_to_chat_id``."""
        return cls.error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=new_chat_id,
        )

    @classmethod
    def cant_parse_entities(
        cls, detail: str = 'Unsupported start tag "x" at byte offset 0'
    ) -> Fault:
        """400 for malformed HTML/Markdown."""
        return cls.error(400, f"Bad Request: can't parse entities: {detail}")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        """5xx; 502 comes back as nginx HTML like the real edge proxy sends."""
        if status == 502:
            return cls(status=502, raw_body=_BAD_GATEWAY_HTML)
        return cls.error(status, "Internal Server Error")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` of real time."""
        return cls(delay=seconds)


@dataclass(slots=True)
class SentMessage:
    """One message the fake accepted (sendMessage)."""

    chat_id: int
    message_id: int
    text: str  # as sent, markup included
    visible_text: str  # after entity parsing, as a client would show it
    entities: list[JSONDict]
    parse_mode: str | None
    disable_notification: bool
    message_thread_id: int | None
    link_preview_options: JSONDict | None
    reply_markup: JSONDict | None
    reply_to_message_id: int | None
    timestamp: float  # FakeTelegram.clock() at arrival
    params: JSONDict = field(repr=False)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One POST of an update to the registered webhook and the bot's answer."""

    update_id: int
    status: int  # HTTP status of the answer; 0 when the connection failed or timed out


@dataclass(slots=True)
class _ScriptedFault:
    method: str  # lower-case method name or "*"
    chat_id: int | str | None
    remaining: int
    fault: Fault


class _SlidingWindow:
    """At most `limit` events in any `period`-second window, by arrival time."""

    __slots__ = ("limit", "period", "stamps")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.stamps: deque[float] = deque()

    def wait(self, now: float, slack: float) -> float:
        """Seconds until one more event fits (0.0 if it fits now)."""
        horizon = self.period - slack
        stamps = self.stamps
        while stamps and now - stamps[0] >= horizon:
            stamps.popleft()
        if len(stamps) < self.limit:
            return 0.0
        return stamps[0] + horizon - now


def scope_key(scope: Mapping[str, Any] | None = None, language_code: str = "") -> str:
    """Key of `FakeTelegram.commands`, e.g. "default", "chat:-100123", "all_group_chats|de"."""
    scope = scope or {}
    parts = [str(scope.get("type", "default"))]
    parts += [str(scope[k]) for k in ("chat_id", "user_id") if k in scope]
    key = ":".join(parts)
    return f"{key}|{language_code}" if language_code else key


# --------------------------------------------------------------------------------------------
# Formatted text, modelled on tdlib's parse_html / parse_markdown_v2 / parse_markdown
# (the code behind the Bot API server), including its error wording.


def _u16(s: str) -> int:
    # Entity offsets and lengths are in UTF-16 code units.
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


_NAMED_HTML_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TAGS: Final = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
     "tg-emoji", "span", "pre", "code", "blockquote"}
)
_SIMPLE_HTML_ENTITY_TYPES: Final = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "tg-spoiler": "spoiler", "span": "spoiler",
}


def _decode_html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode ``&...;`` at `pos`; (None, pos) when Telegram would keep the '&' literally."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        hexadecimal = end < n and text[end] in "xX"
        if hexadecimal:
            end += 1
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        start, value = end, 0
        while end < n and text[end] in digits:
            value = value * (16 if hexadecimal else 10) + int(text[end], 16)
            end += 1
            if value >= 0x10FFFF:
                return None, pos
        if end == start or value == 0 or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None, pos
        char = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        named = _NAMED_HTML_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None, pos
        char = named
    if end < n and text[end] == ";":
        end += 1
    return char, end


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Visible text and entities of an HTML-formatted message; raises EntityParseError."""
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 offset, len(out)
    code_language: dict[int, str] = {}  # id(code entity) -> language, for <pre><code class>
    n, i, u16 = len(text), 0, 0

    def fail(message: str, index: int) -> EntityParseError:
        return EntityParseError(f"{message} at byte offset {_byte_offset(text, index)}")

    while i < n:
        char = text[i]
        if char == "&":
            decoded, end = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded)
                u16 += _u16(decoded)
                i = end
                continue
        if char != "<":
            out.append(char)
            u16 += _u16(char)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise fail("Unexpected end tag", begin)
            i += 1
            name_start = i
            while i < n and not text[i].isspace() and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i].isspace():
                i += 1
            if i >= n or text[i] != ">":
                raise fail("Unclosed end tag", begin)
            i += 1
            tag, argument, offset, out_len = stack.pop()
            if end_name and end_name != tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{tag}>", found "</{end_name}>"'
                )
            if u16 > offset:
                inner = "".join(out[out_len:]) if tag == "a" else ""
                _close_html_entity(
                    entities, code_language, tag, argument, offset, u16 - offset, inner
                )
            continue
        name_start = i
        while i < n and not text[i].isspace() and text[i] != ">":
            i += 1
        if i >= n:
            raise fail("Unclosed start tag", begin)
        tag = text[name_start:i].lower()
        if tag not in _HTML_TAGS:
            raise fail(f'Unsupported start tag "{tag}"', begin)
        argument = ""
        while True:
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise fail("Unclosed start tag", begin)
            if text[i] == ">":
                i += 1
                break
            attr_start = i
            while i < n and not text[i].isspace() and text[i] not in "=>/\"'":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise fail(f'Empty attribute name in the tag "{tag}"', begin)
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise fail(f'Unclosed start tag "{tag}"', begin)
            if text[i] != "=":
                if tag == "blockquote" and attr == "expandable":
                    argument = "expandable"
                continue
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise fail(f'Unclosed start tag "{tag}"', begin)
            if text[i] not in "\"'":
                value_start = i
                while i < n and text[i].isascii() and (text[i].isalnum() or text[i] in ".-"):
                    i += 1
                value = text[value_start:i].lower()
                if i >= n or (not text[i].isspace() and text[i] != ">"):
                    raise fail("Unexpected end of name token", i)
            else:
                quote = text[i]
                i += 1
                chars: list[str] = []
                while i < n and text[i] != quote:
                    if text[i] == "&":
                        decoded, end = _decode_html_entity(text, i)
                        if decoded is not None:
                            chars.append(decoded)
                            i = end
                            continue
                    chars.append(text[i])
                    i += 1
                i += 1
                value = "".join(chars)
                if i >= n:
                    raise fail("Unclosed start tag", begin)
            if (tag, attr) in {("a", "href"), ("tg-emoji", "emoji-id")}:
                argument = value
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                argument = value.removeprefix("language-")
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                argument = value.removeprefix("tg-")
            elif tag == "blockquote" and attr == "expandable":
                argument = "expandable"
        if tag == "span" and argument != "spoiler":
            raise fail('Tag "span" must have class "tg-spoiler"', begin)
        stack.append((tag, argument, u16, len(out)))
    if stack:
        raise EntityParseError(
            f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"'
        )
    return "".join(out), entities


def _close_html_entity(
    entities: list[JSONDict],
    code_language: dict[int, str],
    tag: str,
    argument: str,
    offset: int,
    length: int,
    inner_text: str,
) -> None:
    entity: JSONDict = {"offset": offset, "length": length}
    last = entities[-1] if entities else None
    same_span = last is not None and last["offset"] == offset and last["length"] == length
    if tag in _SIMPLE_HTML_ENTITY_TYPES:
        entity["type"] = _SIMPLE_HTML_ENTITY_TYPES[tag]
    elif tag == "tg-emoji":
        if not argument.isdigit():
            raise EntityParseError("Invalid custom emoji identifier specified")
        entity.update(type="custom_emoji", custom_emoji_id=argument)
    elif tag == "a":
        url = argument or inner_text
        if not url or url.startswith("tg://user"):
            return  # tdlib drops links it cannot normalise; mentions need a resolvable user
        entity.update(type="text_link", url=url)
    elif tag == "blockquote":
        entity["type"] = "expandable_blockquote" if argument else "blockquote"
    elif tag == "pre":
        if last is not None and same_span and last["type"] == "code":
            entities[-1] = {**last, "type": "pre"}
            language = code_language.pop(id(last), "")
            if language:
                entities[-1]["language"] = language
            return
        entity["type"] = "pre"
    elif tag == "code":
        if last is not None and same_span and last["type"] == "pre":
            if argument:
                last["language"] = argument
            return
        entity["type"] = "code"
        if argument:
            code_language[id(entity)] = argument
    entities.append(entity)


_MDV2_RESERVED: Final = "_*[]()~`>#+-=|{}.!"
_MDV2_END_MARKERS: Final = {
    "Bold": "*", "Italic": "_", "Underline": "__", "Strikethrough": "~", "Spoiler": "||",
    "Code": "`", "Pre": "```", "PreCode": "```", "TextUrl": "]", "CustomEmoji": "]",
}
_MDV2_ENTITY_TYPES: Final = {
    "Bold": "bold", "Italic": "italic", "Underline": "underline",
    "Strikethrough": "strikethrough", "Spoiler": "spoiler", "Code": "code", "Pre": "pre",
    "PreCode": "pre", "TextUrl": "text_link", "CustomEmoji": "custom_emoji",
}


def _skip_pre_newline(text: str, i: int) -> int:
    # tdlib drops one line break after the opening ``` (and its language).
    if i < len(text) and text[i] in "\r\n":
        if i + 1 < len(text) and text[i + 1] in "\r\n" and text[i] != text[i + 1]:
            return i + 2
        return i + 1
    return i


def parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    """Visible text and entities of a MarkdownV2 message; raises EntityParseError."""
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[tuple[str, str, int, int, int]] = []  # kind, arg, u16, byte idx, out idx
    quote_start: int | None = None  # u16 offset of an open "> " blockquote
    n, i, u16 = len(text), 0, 0

    def char_at(index: int) -> str:
        return text[index] if index < n else ""

    while i < n:
        char = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        in_code = bool(stack) and stack[-1][0] in {"Code", "Pre", "PreCode"}
        if at_line_start and quote_start is not None and char != ">":
            _close_quote(entities, out, quote_start, u16)
            quote_start = None
        if char == "\\" and 0 < ord(char_at(i + 1) or "\0") <= 126:
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if at_line_start and char == ">" and not in_code:
            if quote_start is None:
                quote_start = u16
            i += 1
            continue
        reserved = "`" if in_code else _MDV2_RESERVED
        if char not in reserved:
            out.append(char)
            u16 += _u16(char)
            i += 1
            continue
        if stack:
            kind = stack[-1][0]
            marker = _MDV2_END_MARKERS[kind]
            closes = text.startswith(marker, i)
            if kind == "Italic":
                closes = char == "_" and char_at(i + 1) != "_"
            if closes:
                i = _close_mdv2_entity(text, i, stack.pop(), out, entities, u16)
                continue
        start = i
        if char == "_":
            kind = "Underline" if char_at(i + 1) == "_" else "Italic"
            i += 2 if kind == "Underline" else 1
        elif char in "*~[":
            kind = {"*": "Bold", "~": "Strikethrough", "[": "TextUrl"}[char]
            i += 1
        elif char == "|" and char_at(i + 1) == "|":
            kind = "Spoiler"
            i += 2
        elif char == "!" and char_at(i + 1) == "[":
            kind = "CustomEmoji"
            i += 2
        elif char == "`" and text.startswith("```", i):
            i += 3
            kind, language = "Pre", ""
            lang_end = i
            while lang_end < n and not text[lang_end].isspace() and text[lang_end] != "`":
                lang_end += 1
            if lang_end != i and lang_end < n and text[lang_end] != "`":
                kind, language = "PreCode", text[i:lang_end]
                i = lang_end
            i = _skip_pre_newline(text, i)
            stack.append((kind, language, u16, _byte_offset(text, start), len(out)))
            continue
        elif char == "`":
            kind = "Code"
            i += 1
        else:
            raise EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        stack.append((kind, "", u16, _byte_offset(text, start), len(out)))
    if stack:
        raise EntityParseError(
            f"Can't find end of {stack[-1][0]} entity at byte offset {stack[-1][3]}"
        )
    if quote_start is not None:
        _close_quote(entities, out, quote_start, u16)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_quote(entities: list[JSONDict], out: list[str], start: int, u16: int) -> None:
    end = u16 - 1 if out and out[-1] == "\n" else u16  # the quote excludes its line break
    if end > start:
        entities.append({"type": "blockquote", "offset": start, "length": end - start})


def _close_mdv2_entity(
    text: str,
    i: int,
    opened: tuple[str, str, int, int, int],
    out: list[str],
    entities: list[JSONDict],
    u16: int,
) -> int:
    """Consume the closing marker at `i` and record the entity; returns the next index."""
    kind, argument, offset, _, out_index = opened
    i += len(_MDV2_END_MARKERS[kind])
    entity: JSONDict = {"type": _MDV2_ENTITY_TYPES[kind], "offset": offset,
                        "length": u16 - offset}
    if kind in {"TextUrl", "CustomEmoji"}:
        if i < len(text) and text[i] == "(":
            i += 1
            url_start, url_chars = i, []
            while i < len(text) and text[i] != ")":
                if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                    url_chars.append(text[i + 1])
                    i += 2
                    continue
                url_chars.append(text[i])
                i += 1
            if i >= len(text):
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(text, url_start)}"
                )
            i += 1
            url = "".join(url_chars)
        elif kind == "CustomEmoji":
            raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
        else:
            url = "".join(out[out_index:])
        if kind == "CustomEmoji":
            emoji_id = url.removeprefix("tg://emoji?id=")
            if not emoji_id.isdigit():
                raise EntityParseError("Invalid custom emoji identifier specified")
            entity["custom_emoji_id"] = emoji_id
        elif not url or url.startswith("tg://user"):
            return i
        else:
            entity["url"] = url
    elif kind == "PreCode":
        entity["language"] = argument
    if entity["length"] > 0:
        entities.append(entity)
    return i


def parse_markdown(text: str) -> tuple[str, list[JSONDict]]:
    """Visible text and entities of a legacy Markdown message; raises EntityParseError."""
    out: list[str] = []
    entities: list[JSONDict] = []
    n, i, u16 = len(text), 0, 0
    kinds = {"*": "bold", "_": "italic", "`": "code", "[": "text_link"}
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if char not in kinds:
            out.append(char)
            u16 += _u16(char)
            i += 1
            continue
        begin = i
        end_char = "]" if char == "[" else char
        i += 1
        is_pre, language = False, ""
        if text.startswith("```", begin):
            i += 2
            is_pre = True
            lang_end = i
            while lang_end < n and not text[lang_end].isspace() and text[lang_end] != "`":
                lang_end += 1
            if lang_end != i and lang_end < n and text[lang_end] != "`":
                language, i = text[i:lang_end], lang_end
            i = _skip_pre_newline(text, i)
        offset = u16
        while i < n and (text[i] != end_char or (is_pre and not text.startswith("```", i))):
            out.append(text[i])
            u16 += _u16(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                "Can't find end of the entity starting at byte offset "
                f"{_byte_offset(text, begin)}"
            )
        i += 3 if is_pre else 1
        entity: JSONDict = {"type": "pre" if is_pre else kinds[char], "offset": offset,
                            "length": u16 - offset}
        if language:
            entity["language"] = language
        if char == "[":
            url = ""
            if i < n and text[i] == "(":
                close = text.find(")", i)
                if close >= 0:
                    url, i = text[i + 1 : close], close + 1
            if not url:
                continue
            entity["url"] = url
        if entity["length"] > 0:
            entities.append(entity)
    return "".join(out), entities


def _strip_text(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    # Telegram trims leading/trailing whitespace and shifts/clips entities to match.
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = _u16(text[: len(text) - len(text.lstrip())])
    total = _u16(stripped)
    clipped: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            clipped.append({**entity, "offset": start, "length": end - start})
    return stripped, clipped


def parse_formatted(text: str, parse_mode: str | None) -> tuple[str, list[JSONDict]]:
    """Visible (trimmed) text and entities as Telegram computes them for `parse_mode`."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        visible, entities = parse_html(text)
    elif mode == "markdownv2":
        visible, entities = parse_markdown_v2(text)
    elif mode == "markdown":
        visible, entities = parse_markdown(text)
    elif mode == "":
        visible, entities = text, []
    else:
        raise ValueError(f"unsupported parse_mode {parse_mode!r}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return _strip_text(visible, entities)


# --------------------------------------------------------------------------------------------


def _default_chat_type(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    # Real supergroup/channel ids are -100 followed by 10+ digits and basic groups have no
    # such prefix; short test ids like -100123 are read as supergroups on purpose.
    return "supergroup" if str(chat_id).startswith("-100") else "group"


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _ApiError(400, f"Bad Request: invalid {name} specified")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _ApiError(400, f"Bad Request: invalid {name} specified")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in {"true", "1"}
    return bool(value)


def _update_type(update: Mapping[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


Handler = Callable[[JSONDict], Awaitable[Any]]


class FakeTelegram:
    """In-process fake Telegram Bot API server (aiohttp) with scripted faults and flood limits."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        enforce_limits: bool = True,
        long_poll_max: float = 0.5,
        limit_slack: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        bot_id: int = 4242,
        bot_username: str = "alertbot_test_bot",
        bot_first_name: str = "Alertbot Test",
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.enforce_limits = enforce_limits
        self.long_poll_max = long_poll_max
        self.limit_slack = limit_slack  # seconds each window is shortened by; >0 is lenient
        self.clock = clock
        self.host = host
        self.bot_user: JSONDict = {
            "id": bot_id, "is_bot": True, "first_name": bot_first_name, "username": bot_username,
        }

        self.calls: list[tuple[str, JSONDict]] = []
        self.sent: list[SentMessage] = []
        self.edited: list[JSONDict] = []
        self.commands: dict[str, list[JSONDict]] = {}
        self.rate_limited = 0  # every 429 answered, enforced or scripted
        self.rate_limited_by_chat: Counter[int] = Counter()
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_retry_delay = 0.2  # Telegram waits longer; tests should not
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._webhook_task: asyncio.Task[None] | None = None
        # Inline keyboards (see the "inline keyboards and callback queries" section).
        self.callback_answers: list[CallbackAnswer] = []
        self.markup_edits: list[JSONDict] = []
        self._callback_queries: dict[str, JSONDict] = {}
        self._answered_queries: set[str] = set()

        self._sent_by_chat: dict[int, list[SentMessage]] = {}
        self._messages: dict[tuple[int, int], JSONDict] = {}
        self._bot_messages: set[tuple[int, int]] = set()
        self._last_message_id: dict[int, int] = {}
        self._chats: dict[int, JSONDict] = {}
        self._users: dict[int, JSONDict] = {bot_id: dict(self.bot_user)}
        self._members: dict[tuple[int, int], JSONDict] = {}
        self._blocked: dict[int, str] = {}
        self._migrated: dict[int, int] = {}
        self._forgotten: set[int] = set()
        self._faults: list[_ScriptedFault] = []

        self._updates: deque[JSONDict] = deque()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0

        self._global_window = _SlidingWindow(MESSAGES_PER_SECOND, 1.0)
        self._paid_window = _SlidingWindow(PAID_MESSAGES_PER_SECOND, 1.0)
        self._chat_windows: dict[int, _SlidingWindow] = {}
        self._group_windows: dict[int, _SlidingWindow] = {}

        self._root = ""
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._updates_changed = asyncio.Event()
        self._state_changed = asyncio.Event()
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._ok,
                "close": self._ok,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "deleteMessage": self._delete_message,
                "sendChatAction": self._send_chat_action,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatAdministrators": self._get_chat_administrators,
                "leaveChat": self._leave_chat,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "answerCallbackQuery": self._answer_callback_query,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
            }.items()
        }

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on an ephemeral port; returns the root URL, e.g. ``http://127.0.0.1:PORT``."""
        if self._runner is not None:
            return self._root
        # Events are created here so they bind to the test's running loop.
        self._closing = asyncio.Event()
        self._updates_changed = asyncio.Event()
        self._state_changed = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._root = f"http://{host}:{port}"
        return self._root

    async def stop(self) -> None:
        """Release long polls and delayed answers, then shut the server down."""
        if self._runner is None:
            return
        self._closing.set()
        self._wake(self._updates_changed)
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def root(self) -> str:
        """Server root URL; empty before start()."""
        return self._root

    @property
    def base_url(self) -> str:
        """Value for PTB's ``base_url`` (PTB appends the token)."""
        return f"{self._root}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for PTB's ``base_file_url`` (file downloads are not served)."""
        return f"{self._root}/file/bot"

    # ---- inspection ------------------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        """Messages accepted for one chat, in order."""
        return list(self._sent_by_chat.get(chat_id, ()))

    def calls_of(self, method: str) -> list[JSONDict]:
        """Parameters of every call of `method` (case-insensitive), in order."""
        wanted = method.lower()
        return [params for name, params in self.calls if name.lower() == wanted]

    @property
    def pending_updates(self) -> int:
        """Updates injected but not yet confirmed by a getUpdates offset."""
        return len(self._updates)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until `predicate()` holds; re-checked after every request and injection."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._state_changed.wait()

    async def wait_for_messages(
        self, n: int, timeout: float = 5.0, chat_id: int | None = None
    ) -> list[SentMessage]:
        """Wait until at least `n` messages were accepted (for `chat_id` if given)."""

        def messages() -> list[SentMessage]:
            return self.sent if chat_id is None else self._sent_by_chat.get(chat_id, [])

        try:
            await self.wait_until(lambda: len(messages()) >= n, timeout)
        except TimeoutError:
            where = "" if chat_id is None else f" in chat {chat_id}"
            raise TimeoutError(
                f"expected {n} messages{where} within {timeout}s, got {len(messages())}"
            ) from None
        return list(messages())

    # ---- scripting -------------------------------------------------------------------------

    def fail_next(
        self, method: str, error: Fault, *, chat_id: int | str | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` calls of `method` ("*" = any) with `error` (see Fault)."""
        self._faults.append(_ScriptedFault(method.lower(), chat_id, times, error))

    def block_chat(self, chat_id: int, description: str | None = None) -> None:
        """Every send to `chat_id` gets 403 (blocked by user / kicked) until reset_chat()."""
        if description is None:
            chat_type = self._chat(chat_id)["type"]
            description = {
                "private": "Forbidden: bot was blocked by the user",
                "channel": "Forbidden: bot is not a member of the channel chat",
            }.get(chat_type, f"Forbidden: bot was kicked from the {chat_type} chat")
        self._blocked[chat_id] = description

    def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> None:
        """Group `old_chat_id` became supergroup `new_chat_id`; the old id answers 400+migrate."""
        self._migrated[old_chat_id] = new_chat_id
        old = self._chat(old_chat_id)
        self.add_chat(new_chat_id, "supergroup", title=old.get("title"))

    def forget_chat(self, chat_id: int) -> None:
        """Every call naming `chat_id` gets 400 "chat not found" until reset_chat()."""
        self._forgotten.add(chat_id)

    def reset_chat(self, chat_id: int) -> None:
        """Undo block_chat / migrate_chat / forget_chat for `chat_id`."""
        self._blocked.pop(chat_id, None)
        self._migrated.pop(chat_id, None)
        self._forgotten.discard(chat_id)

    def set_chat_member(self, chat_id: int, user_id: int, status: str, **fields: Any) -> None:
        """Role returned by getChatMember; `fields` override the ChatMember defaults."""
        if status not in CHAT_MEMBER_STATUSES:
            raise ValueError(f"unknown chat member status {status!r}")
        self._members[(chat_id, user_id)] = {"status": status, **fields}

    def add_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        *,
        title: str | None = None,
        username: str | None = None,
        is_forum: bool = False,
    ) -> JSONDict:
        """Register (or update) a chat so replies and getChat describe it accurately."""
        chat_type = chat_type or _default_chat_type(chat_id)
        chat: JSONDict = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            user = self._user(chat_id)
            chat["first_name"] = user["first_name"]
            username = username or user.get("username")
        else:
            chat["title"] = title or f"Test {chat_type} {chat_id}"
        if username:
            chat["username"] = username
        if is_forum:
            chat["is_forum"] = True
        self._chats[chat_id] = chat
        return chat

    def add_user(
        self, user_id: int, *, username: str | None = None, first_name: str | None = None
    ) -> JSONDict:
        """Register (or update) a user shown in updates and ChatMember objects."""
        user: JSONDict = {
            "id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}",
            "language_code": "en",
        }
        if username:
            user["username"] = username
        self._users[user_id] = user
        return user

    # ---- update injection ------------------------------------------------------------------

    def inject_update(self, update: Mapping[str, Any]) -> JSONDict:
        """Queue a raw Update for getUpdates; update_id is assigned if missing."""
        queued = dict(update)
        if "update_id" in queued:
            self._next_update_id = max(self._next_update_id, int(queued["update_id"]) + 1)
        else:
            queued = {"update_id": self._next_update_id, **queued}
            self._next_update_id += 1
        self._updates.append(queued)
        self._wake(self._updates_changed)
        self._wake(self._state_changed)
        return queued

    def inject_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        message_thread_id: int | None = None,
        sender_chat_id: int | None = None,
        is_topic_message: bool = False,
    ) -> JSONDict:
        """Queue a realistic text message (channel_post for channels); returns the Update.

        ``sender_chat_id == chat_id`` (or ``user_id == GROUP_ANONYMOUS_BOT_ID``) models an
        anonymous group admin; another ``sender_chat_id`` models a post on behalf of a channel.
        """
        chat_type = chat_type or self._chats.get(chat_id, {}).get("type")
        chat_type = chat_type or _default_chat_type(chat_id)
        if user_id is None:
            user_id = chat_id if chat_type == "private" else 1001
        if username or first_name or user_id not in self._users:
            self.add_user(user_id, username=username, first_name=first_name)
        known = self._chats.get(chat_id)
        if (
            known is None
            or known["type"] != chat_type
            or (is_topic_message and not known.get("is_forum"))
        ):
            self.add_chat(chat_id, chat_type, is_forum=is_topic_message)
        chat = self._chat(chat_id)
        message: JSONDict = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
        }
        if chat_type == "channel":
            message["sender_chat"] = chat
        elif sender_chat_id == chat_id or user_id == GROUP_ANONYMOUS_BOT_ID:
            message["from"] = {"id": GROUP_ANONYMOUS_BOT_ID, "is_bot": True,
                               "first_name": "Group", "username": "GroupAnonymousBot"}
            message["sender_chat"] = chat
        elif sender_chat_id is not None:
            message["from"] = {"id": CHANNEL_BOT_ID, "is_bot": True, "first_name": "Channel",
                               "username": "Channel_Bot"}
            message["sender_chat"] = self._chats.get(sender_chat_id) or self.add_chat(
                sender_chat_id, "channel"
            )
        else:
            message["from"] = self._user(user_id)
        if message_thread_id is not None:
            message["message_thread_id"] = message_thread_id
        if is_topic_message:
            message["is_topic_message"] = True
        message["text"] = text
        entities = [
            {"type": "bot_command", "offset": _u16(text[: m.start()]), "length": _u16(m.group())}
            for m in _BOT_COMMAND_RE.finditer(text)
        ]
        if entities:
            message["entities"] = entities
        self._messages[(chat_id, message["message_id"])] = message
        kind = "channel_post" if chat_type == "channel" else "message"
        return self.inject_update({kind: message})

    def inject_my_chat_member(
        self,
        chat_id: int,
        old_status: str,
        new_status: str,
        *,
        chat_type: str | None = None,
        from_user_id: int = 1001,
    ) -> JSONDict:
        """Queue a my_chat_member Update (bot added, promoted, kicked...) and apply it."""
        if chat_type is not None or chat_id not in self._chats:
            self.add_chat(chat_id, chat_type)
        bot_id = self.bot_user["id"]
        old = self._member_object(chat_id, bot_id, {"status": old_status})
        self.set_chat_member(chat_id, bot_id, new_status)
        new = self._member_object(chat_id, bot_id, self._members[(chat_id, bot_id)])
        return self.inject_update(
            {
                "my_chat_member": {
                    "chat": self._chat(chat_id),
                    "from": self._user(from_user_id),
                    "date": int(time.time()),
                    "old_chat_member": old,
                    "new_chat_member": new,
                }
            }
        )

    def inject_callback_query(
        self, chat_id: int, data: str, *, user_id: int = 1001, message_id: int | None = None
    ) -> JSONDict:
        """Queue a callback_query for an inline button on a message in `chat_id`."""
        if message_id is None:
            message_id = self._last_message_id.get(chat_id, 0)
        message = self._messages.get((chat_id, message_id)) or {
            "message_id": message_id, "date": 0, "chat": self._chat(chat_id),
        }
        return self.inject_update(
            {
                "callback_query": {
                    "id": str(self._next_update_id * 1000 + 7),
                    "from": self._user(user_id),
                    "message": message,
                    "chat_instance": str(abs(chat_id)),
                    "data": data,
                }
            }
        )

    # ---- HTTP plumbing ---------------------------------------------------------------------

    @staticmethod
    def _wake(event: asyncio.Event) -> None:
        event.set()
        event.clear()  # waiters already woken stay woken; later waiters block again

    @staticmethod
    def _envelope_error(
        status: int, description: str, parameters: Mapping[str, Any] | None = None
    ) -> web.Response:
        body: JSONDict = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = dict(parameters)
        return web.json_response(body, status=status)

    async def _not_found(self, request: web.Request) -> web.Response:
        return self._envelope_error(404, "Not Found")

    async def _read_params(self, request: web.Request) -> JSONDict:
        params: JSONDict = {k: self._decode(k, v) for k, v in request.query.items()}
        if not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: JSON object expected")
            params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = {"filename": value.filename, "content": value.file.read()}
                else:
                    params[key] = self._decode(key, str(value))
        return params

    @staticmethod
    def _decode(key: str, value: str) -> Any:
        if key in _STRING_PARAMS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value  # e.g. chat_id="@channelname"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return self._envelope_error(401, "Unauthorized")
        sent_name = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except _ApiError as exc:
            return self._envelope_error(exc.status, exc.description, exc.parameters)
        name, handler = self._methods.get(sent_name.lower(), (sent_name, None))
        self.calls.append((name, params))
        self._wake(self._state_changed)
        if handler is None:
            return self._envelope_error(404, "Not Found")
        try:
            fault = self._take_fault(name.lower(), params)
            if fault is not None:
                if fault.delay > 0 and await self._sleep_or_close(fault.delay):
                    raise _ApiError(502, "Bad Gateway")  # shutting down; client is gone anyway
                if fault.raw_body is not None:
                    return web.Response(status=fault.status, text=fault.raw_body,
                                        content_type="text/html")
                if fault.status:
                    raise _ApiError(fault.status, fault.description,
                                    dict(fault.parameters or {}) or None)
            result = await handler(params)
        except _ApiError as exc:
            if exc.status == 429:
                self.rate_limited += 1
                chat_id = params.get("chat_id")
                if isinstance(chat_id, int):
                    self.rate_limited_by_chat[chat_id] += 1
            return self._envelope_error(exc.status, exc.description, exc.parameters)
        finally:
            self._wake(self._state_changed)
        return web.json_response({"ok": True, "result": result})

    def _take_fault(self, method: str, params: JSONDict) -> Fault | None:
        for scripted in self._faults:
            if scripted.method not in {method, "*"}:
                continue
            if scripted.chat_id is not None and str(scripted.chat_id) != str(
                params.get("chat_id")
            ):
                continue
            scripted.remaining -= 1
            if scripted.remaining <= 0:
                self._faults.remove(scripted)
            return scripted.fault
        return None

    async def _sleep_or_close(self, seconds: float) -> bool:
        """Sleep `seconds` of real time; True if the server began shutting down meanwhile."""
        try:
            async with asyncio.timeout(seconds):
                await self._closing.wait()
        except TimeoutError:
            return False
        return True

    # ---- model helpers ---------------------------------------------------------------------

    def _user(self, user_id: int) -> JSONDict:
        return self._users.get(user_id) or self.add_user(user_id)

    def _chat(self, chat_id: int) -> JSONDict:
        return self._chats.get(chat_id) or self.add_chat(chat_id)

    def _next_message_id(self, chat_id: int) -> int:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        return message_id

    def _resolve_chat(self, params: JSONDict, *, sending: bool = False) -> int:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            wanted = raw[1:].lower()
            match = next(
                (cid for cid, chat in self._chats.items()
                 if chat.get("username", "").lower() == wanted),
                None,
            )
            if match is None:
                raise _ApiError(400, "Bad Request: chat not found")
            chat_id = match
        else:
            chat_id = _as_int(raw, "chat_id")
        params["chat_id"] = chat_id
        if chat_id in self._forgotten:
            raise _ApiError(400, "Bad Request: chat not found")
        if chat_id in self._migrated:
            raise _ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if sending and chat_id in self._blocked:
            raise _ApiError(403, self._blocked[chat_id])
        return chat_id

    def _member_object(self, chat_id: int, user_id: int, spec: Mapping[str, Any]) -> JSONDict:
        status = spec["status"]
        defaults: JSONDict = {}
        if status == "creator":
            defaults = {"is_anonymous": False}
        elif status == "administrator":
            defaults = {
                "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
                "can_delete_messages": True, "can_manage_video_chats": True,
                "can_restrict_members": True, "can_promote_members": False,
                "can_change_info": True, "can_invite_users": True, "can_post_stories": False,
                "can_edit_stories": False, "can_delete_stories": False,
                "can_pin_messages": True, "can_manage_topics": False,
            }
        elif status == "restricted":
            defaults = {
                "is_member": True, "can_send_messages": False, "can_send_audios": False,
                "can_send_documents": False, "can_send_photos": False,
                "can_send_videos": False, "can_send_video_notes": False,
                "can_send_voice_notes": False, "can_send_polls": False,
                "can_send_other_messages": False, "can_add_web_page_previews": False,
                "can_change_info": False, "can_invite_users": False, "can_pin_messages": False,
                "can_manage_topics": False, "can_edit_tag": False,
                "can_react_to_messages": False, "until_date": 0,
            }
        elif status == "kicked":
            defaults = {"until_date": 0}
        return {"user": self._user(user_id), **defaults, **spec}

    def _check_rate(self, chat_id: int, now: float, paid: bool) -> None:
        windows = [self._paid_window if paid else self._global_window]
        chat_window = self._chat_windows.get(chat_id)
        if chat_window is None:
            chat_window = self._chat_windows[chat_id] = _SlidingWindow(
                MESSAGES_PER_SECOND_PER_CHAT, 1.0
            )
        windows.append(chat_window)
        if chat_id < 0:
            group_window = self._group_windows.get(chat_id)
            if group_window is None:
                group_window = self._group_windows[chat_id] = _SlidingWindow(
                    MESSAGES_PER_MINUTE_PER_GROUP, 60.0
                )
            windows.append(group_window)
        wait = max(window.wait(now, self.limit_slack) for window in windows)
        if wait > 0:
            retry_after = max(1, math.ceil(wait - 1e-9))
            raise _ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )
        for window in windows:
            window.stamps.append(now)

    def _formatted(self, params: JSONDict) -> tuple[str, str, list[JSONDict]]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode") or None
        try:
            visible, entities = parse_formatted(text, parse_mode)
        except EntityParseError as exc:
            raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        except ValueError:
            raise _ApiError(400, "Bad Request: unsupported parse_mode") from None
        if parse_mode is None and isinstance(params.get("entities"), list):
            entities = params["entities"]
        if not visible:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(visible) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        return text, visible, entities

    # ---- Bot API methods -------------------------------------------------------------------

    async def _ok(self, params: JSONDict) -> bool:
        return True

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return {
            **self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, params: JSONDict) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.fullmatch(str(secret)):
            raise _ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        if _as_bool(params.get("drop_pending_updates")):
            self._updates.clear()
        self.webhook_url = url
        self.webhook_secret = str(secret or "")
        if url and self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._deliver_to_webhook())
        self._wake(self._updates_changed)
        return True

    async def _delete_webhook(self, params: JSONDict) -> bool:
        self.webhook_url = ""
        self.webhook_secret = ""
        if _as_bool(params.get("drop_pending_updates")):
            self._updates.clear()
        self._wake(self._updates_changed)
        return True

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        info: JSONDict = {"url": self.webhook_url, "has_custom_certificate": False,
                          "pending_update_count": len(self._updates)}
        if self.webhook_url and self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        failed = [d for d in self.webhook_deliveries if not 200 <= d.status < 300]
        if failed:
            info["last_error_date"] = int(time.time())
            info["last_error_message"] = f"Wrong response from the webhook: {failed[-1].status}"
        return info

    # ---- webhook delivery ------------------------------------------------------------------

    async def post_to_webhook(
        self, body: Mapping[str, Any] | bytes, *, secret: Any = _REGISTERED
    ) -> tuple[int, str]:
        """POST one body to the registered URL as Telegram would; (status, response text).

        For duplicates and hostile requests: `secret` None sends no header, a string sends
        that one, the default sends the registered secret_token.
        """
        if not self.webhook_url:
            raise RuntimeError("no webhook registered (setWebhook was not called)")
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        chosen = self.webhook_secret if secret is _REGISTERED else secret
        headers = {"Content-Type": "application/json"}
        if chosen:
            headers[WEBHOOK_SECRET_HEADER] = str(chosen)
        async with aiohttp.ClientSession() as session, session.post(
                self.webhook_url, data=data, headers=headers) as response:
            return response.status, await response.text()

    async def _deliver_to_webhook(self) -> None:
        """Push queued updates to the webhook in order; retry each until it gets a 2xx."""
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while self.webhook_url and not self._closing.is_set():
                    batch = self._deliverable(1)
                    if not batch:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(0.2):
                                await self._updates_changed.wait()
                        continue
                    update = batch[0]
                    status = await self._post_update(session, update)
                    self.webhook_deliveries.append(WebhookDelivery(update["update_id"], status))
                    if 200 <= status < 300:
                        with contextlib.suppress(ValueError):
                            self._updates.remove(update)
                    self._wake(self._state_changed)
                    if not 200 <= status < 300 and await self._sleep_or_close(
                            self.webhook_retry_delay):
                        return
        finally:
            self._webhook_task = None

    async def _post_update(self, session: aiohttp.ClientSession, update: JSONDict) -> int:
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[WEBHOOK_SECRET_HEADER] = self.webhook_secret
        try:
            async with session.post(self.webhook_url, data=json.dumps(update).encode(),
                                    headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset", 0), "offset")
        limit = min(max(_as_int(params.get("limit", 100), "limit"), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        updates = self._updates
        if offset < 0:
            while len(updates) > -offset:
                updates.popleft()
        else:
            while updates and updates[0]["update_id"] < offset:
                updates.popleft()
        # A newer getUpdates ends an older one with 409, as with two bot instances.
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake(self._updates_changed)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, self.long_poll_max)
        while True:
            batch = self._deliverable(limit)
            if batch or self._closing.is_set():
                return batch
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            try:
                async with asyncio.timeout(remaining):
                    await self._updates_changed.wait()
            except TimeoutError:
                return []

    def _deliverable(self, limit: int) -> list[JSONDict]:
        allowed = self._allowed_updates
        if allowed is None:
            batch = [u for u in self._updates if _update_type(u) not in _NOT_DEFAULT_UPDATES]
        else:
            batch = [u for u in self._updates if _update_type(u) in allowed]
        if len(batch) != len(self._updates):
            # Telegram never queues types the bot did not ask for.
            self._updates = deque(batch)
        return batch[:limit]

    async def _send_message(self, params: JSONDict) -> JSONDict:
        now = self.clock()
        chat_id = self._resolve_chat(params, sending=True)
        text, visible, entities = self._formatted(params)
        _check_reply_markup(params.get("reply_markup"))
        reply = params.get("reply_parameters") or {}
        if not isinstance(reply, dict):
            raise _ApiError(400, "Bad Request: can't parse reply parameters JSON object")
        reply_to = reply.get("message_id", params.get("reply_to_message_id"))
        replied: JSONDict | None = None
        if reply_to is not None:
            reply_to = _as_int(reply_to, "reply message identifier")
            replied = self._messages.get((chat_id, reply_to))
            if replied is None and not _as_bool(
                reply.get("allow_sending_without_reply",
                          params.get("allow_sending_without_reply"))
            ):
                raise _ApiError(400, "Bad Request: message to be replied not found")
        if self.enforce_limits and "sendmessage" in RATE_LIMITED_METHODS:
            self._check_rate(chat_id, now, _as_bool(params.get("allow_paid_broadcast")))

        chat = self._chat(chat_id)
        message: JSONDict = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "text": visible,
        }
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = dict(self.bot_user)
        thread_id = params.get("message_thread_id")
        if thread_id is not None:
            thread_id = _as_int(thread_id, "message thread identifier")
            message["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                message["is_topic_message"] = True
        if entities:
            message["entities"] = entities
        if replied is not None:
            message["reply_to_message"] = replied
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # only inline keyboards are echoed back
        preview = params.get("link_preview_options")
        if isinstance(preview, dict):
            message["link_preview_options"] = preview
        self._messages[(chat_id, message["message_id"])] = message
        self._bot_messages.add((chat_id, message["message_id"]))

        record = SentMessage(
            chat_id=chat_id,
            message_id=message["message_id"],
            text=text,
            visible_text=visible,
            entities=entities,
            parse_mode=params.get("parse_mode") or None,
            disable_notification=_as_bool(params.get("disable_notification")),
            message_thread_id=thread_id,
            link_preview_options=preview if isinstance(preview, dict) else None,
            reply_markup=markup if isinstance(markup, dict) else None,
            reply_to_message_id=reply_to,
            timestamp=now,
            params=params,
        )
        self.sent.append(record)
        self._sent_by_chat.setdefault(chat_id, []).append(record)
        return message

    async def _edit_message_text(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat(params)
        message_id = _as_int(params.get("message_id"), "message identifier")
        message = self._messages.get((chat_id, message_id))
        if message is None or (chat_id, message_id) not in self._bot_messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        _, visible, entities = self._formatted(params)
        markup = params.get("reply_markup")
        if visible == message["text"] and entities == message.get("entities", []) and (
            markup == message.get("reply_markup")
        ):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message",
            )
        message.update(text=visible, edit_date=int(time.time()))
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self.edited.append(params)
        return message

    async def _delete_message(self, params: JSONDict) -> bool:
        chat_id = self._resolve_chat(params)
        message_id = _as_int(params.get("message_id"), "message identifier")
        if self._messages.pop((chat_id, message_id), None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _send_chat_action(self, params: JSONDict) -> bool:
        self._resolve_chat(params, sending=True)
        return True

    async def _get_chat(self, params: JSONDict) -> JSONDict:
        chat = self._chat(self._resolve_chat(params))
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                "premium_subscription": False, "gifts_from_channels": False,
            },
        }

    async def _get_chat_member(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat(params)
        if params.get("user_id") in (None, ""):
            raise _ApiError(400, "Bad Request: user_id is empty")
        user_id = _as_int(params["user_id"], "user_id")
        spec = self._members.get((chat_id, user_id), {"status": "member"})
        return self._member_object(chat_id, user_id, spec)

    async def _get_chat_administrators(self, params: JSONDict) -> list[JSONDict]:
        chat_id = self._resolve_chat(params)
        if chat_id > 0:
            raise _ApiError(400, "Bad Request: there are no administrators in the private chat")
        return [
            self._member_object(cid, uid, spec)
            for (cid, uid), spec in self._members.items()
            if cid == chat_id and spec["status"] in {"creator", "administrator"}
        ]

    async def _leave_chat(self, params: JSONDict) -> bool:
        chat_id = self._resolve_chat(params)
        self.set_chat_member(chat_id, self.bot_user["id"], "left")
        return True

    def _commands_scope_key(self, params: JSONDict) -> str:
        scope = params.get("scope")
        if scope is not None and not isinstance(scope, dict):
            raise _ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        return scope_key(scope, str(params.get("language_code") or ""))

    async def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise _ApiError(400, "Bad Request: too many commands specified")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_NAME_RE.fullmatch(
                str(command.get("command", ""))
            ):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._commands_scope_key(params)
        if commands:
            self.commands[key] = [
                {"command": c["command"], "description": c["description"]} for c in commands
            ]
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return list(self.commands.get(self._commands_scope_key(params), []))

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        self.commands.pop(self._commands_scope_key(params), None)
        return True

    # ---- inline keyboards and callback queries ---------------------------------------------

    def press_button(self, chat_id: int, message_id: int, *, label: str | None = None,
                     data: str | None = None, user_id: int = 1001) -> str:
        """Press a button of a bot message as `user_id`; returns the callback query id.

        Names the button by its label (its callback_data is sent, as a client does) or sends
        any `data` (a forged press). The message in the update carries its current keyboard.
        """
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        if label is not None:
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            found = [b for row in rows for b in row if b.get("text") == label]
            if not found:
                raise KeyError(f"no button {label!r} on message {message_id}")
            data = found[0]["callback_data"]
        query_id = str(4_000_000 + len(self._callback_queries))
        query: JSONDict = {
            "id": query_id,
            "from": self._user(user_id),
            "message": json.loads(json.dumps(message)),
            "chat_instance": str(abs(chat_id)),
            "data": data or "",
        }
        self._callback_queries[query_id] = query
        self.inject_update({"callback_query": query})
        return query_id

    async def wait_for_answer(self, query_id: str, timeout: float = 5.0) -> CallbackAnswer:
        """The answerCallbackQuery the bot sent for a press."""
        await self.wait_until(lambda: any(a.query_id == query_id
                                          for a in self.callback_answers), timeout)
        return next(a for a in self.callback_answers if a.query_id == query_id)

    def keyboard_labels(self, chat_id: int, message_id: int) -> list[list[str]]:
        """The button labels of a message as they stand now, row by row."""
        message = self._messages[(chat_id, message_id)]
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        return [[b["text"] for b in row] for row in rows]

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        too_old = ("Bad Request: query is too old and response timeout expired or query ID "
                   "is invalid")
        if not query_id or query_id in self._answered_queries:
            raise _ApiError(400, too_old)
        text = params.get("text")
        if text is not None and len(str(text)) > CALLBACK_ANSWER_MAX:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if query_id in self._callback_queries:
            self._answered_queries.add(query_id)  # a query can be answered once
        self.callback_answers.append(CallbackAnswer(
            query_id, None if text is None else str(text), _as_bool(params.get("show_alert"))))
        return True

    async def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        chat_id = self._resolve_chat(params)
        message_id = _as_int(params.get("message_id"), "message identifier")
        message = self._messages.get((chat_id, message_id))
        if message is None or (chat_id, message_id) not in self._bot_messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        _check_reply_markup(markup)
        if (markup or None) == message.get("reply_markup"):
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup of "
                "the message",
            )
        if isinstance(markup, dict) and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        self.markup_edits.append(params)
        return message


# ---- inline keyboards -------------------------------------------------------------------------

CALLBACK_DATA_MAX_BYTES: Final = 64
CALLBACK_ANSWER_MAX: Final = 200
_BUTTON_ACTIONS: Final = frozenset({"callback_data", "url", "web_app", "login_url",
                                    "switch_inline_query", "switch_inline_query_current_chat",
                                    "copy_text", "pay", "callback_game"})


@dataclass
class CallbackAnswer:
    """One answerCallbackQuery: the text shown, and whether as a modal alert."""

    query_id: str
    text: str | None
    show_alert: bool


def _check_reply_markup(markup: Any) -> None:
    """Refuse an inline keyboard the way the Bot API does (shape, data size)."""
    if markup is None or not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise _ApiError(400, "Bad Request: can't parse inline keyboard button: "
                             "InlineKeyboardMarkup must be an Array of Arrays")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text") or "").strip():
                raise _ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                     "Text buttons are unallowed in the inline keyboard")
            if sum(1 for key in button if key in _BUTTON_ACTIONS) != 1:
                raise _ApiError(400, "Bad Request: BUTTON_TYPE_INVALID")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_MAX_BYTES:
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
