"""Value types shared by every layer: readings, changes, subscriptions, policies, decisions."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

TOKEN_PAGE_ROOT = "https://app.tokenmetrics.com/"  # noqa: S105 - a URL, not a password


class Kind(enum.StrEnum):
    """What a reading measures; each kind has its own change rule."""

    SIGNAL = "signal"
    HOURLY = "hourly"
    TM_GRADE = "tm_grade"
    FUNDAMENTAL = "fundamental"
    OPS = "ops"
    """The bot's own operator alerts: never subscribable, fanned out to the ops destination."""
    SCHEDULED_DIGEST = "scheduled_digest"
    """A destination's daily or weekly summary: never subscribable, one per period."""

    @property
    def bit(self) -> int:
        """Bit of this kind in a subscription's kind mask."""
        return 1 << list(Kind).index(self)

    @property
    def label(self) -> str:
        """Human name used in messages."""
        return _KIND_LABELS[self]


_KIND_LABELS = {
    Kind.SIGNAL: "daily signal",
    Kind.HOURLY: "hourly signal",
    Kind.TM_GRADE: "TM grade",
    Kind.FUNDAMENTAL: "fundamental grade",
    Kind.OPS: "operator alert",
    Kind.SCHEDULED_DIGEST: "scheduled digest",
}

ALL_KINDS: tuple[Kind, ...] = (Kind.SIGNAL, Kind.HOURLY, Kind.TM_GRADE, Kind.FUNDAMENTAL)
"""Every market kind: what `all` means for subscriptions, lookups and parsing."""
ALL_KINDS_MASK = sum(k.bit for k in ALL_KINDS)
ALL_TOKENS = 0
"""Subscription target meaning every tracked token."""


def kinds_to_mask(kinds: frozenset[Kind] | set[Kind] | tuple[Kind, ...]) -> int:
    """Encode kinds as a bit mask."""
    return sum(k.bit for k in set(kinds))


def mask_to_kinds(mask: int) -> tuple[Kind, ...]:
    """Decode a bit mask into kinds, in canonical order."""
    return tuple(k for k in ALL_KINDS if mask & k.bit)


class Direction(enum.StrEnum):
    """Which way a change went."""

    UP = "up"
    DOWN = "down"


class Mode(enum.StrEnum):
    """Per-kind delivery mode set by moderators."""

    ON = "on"
    SILENT = "silent"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Token:
    """A token in the catalog; symbols are not unique, ids are."""

    token_id: int
    symbol: str
    name: str
    slug: str = ""

    @property
    def link(self) -> str:
        """Token page on the Token Metrics app."""
        return token_link(self.slug, self.name)


def token_link(slug: str, name: str) -> str:
    """Build the token page URL (the API's own TM_LINK is unreliable)."""
    path = slug or "-".join(name.lower().split())
    return TOKEN_PAGE_ROOT + path


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one kind for one token at one source timestamp."""

    token: Token
    kind: Kind
    value: float
    source_ts: datetime
    label: str = ""
    """Source-provided class or signal name (e.g. "Buy", "blueChip")."""
    fired_at: datetime | None = None
    """When the current signal fired, if the source says."""
    source: str = ""
    """Name of the source that produced it ("demo", "tokenmetrics"); empty when unknown."""


@dataclass(frozen=True, slots=True)
class TrackedState:
    """What the bot remembers about one (token, kind) between polls."""

    token_id: int
    kind: Kind
    value: float
    source_ts: datetime
    label: str = ""
    band: int = 0
    alerted_value: float = 0.0
    """Value at the last change (or baseline); min_delta is measured from it."""
    fired_at: datetime | None = None
    updated_at: datetime | None = None
    """When the bot last stored a reading of this series (freshness of lookups)."""
    source: str = ""
    """Source of the stored reading; a reading from another source starts a new baseline."""


@dataclass(frozen=True, slots=True)
class Change:
    """A detected change of one (token, kind); identified by a stable hash."""

    change_id: str
    token: Token
    kind: Kind
    from_value: float
    to_value: float
    direction: Direction
    source_ts: datetime
    detected_at: datetime
    from_label: str = ""
    to_label: str = ""
    cause: str = ""
    """Which rule fired: flip, band, class or delta."""

    def reverts(self, earlier: Change) -> bool:
        """Whether this change undoes `earlier` (same series, back to where it came from)."""
        return (
            self.token.token_id == earlier.token.token_id
            and self.kind == earlier.kind
            and _same_side(self, earlier)
        )


def _same_side(later: Change, earlier: Change) -> bool:
    if later.kind in (Kind.SIGNAL, Kind.HOURLY):
        return later.to_value == earlier.from_value
    # Grades rarely return to the exact value; reverting means moving back the other way
    # to the band or class it left.
    return later.direction != earlier.direction and later.to_label == earlier.from_label


def make_change_id(token_id: int, kind: Kind, from_value: float, to_value: float,
                   source_ts: datetime) -> str:
    """Stable identity of a change: polling, retrying or re-ingesting cannot make a second."""
    raw = f"{token_id}|{kind.value}|{from_value:.4f}|{to_value:.4f}|{source_ts.isoformat()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where alerts go: a platform chat, channel, thread or URL (by opaque id)."""

    platform: str
    chat_id: str
    thread_id: str = ""

    def __str__(self) -> str:
        suffix = f"/{self.thread_id}" if self.thread_id else ""
        return f"{self.platform}:{self.chat_id}{suffix}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A destination's interest in one token (or all) and a set of kinds."""

    destination: Destination
    token_id: int
    kinds: tuple[Kind, ...]
    created_at: datetime
    symbol: str = ""
    paused_reason: str = ""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Daily local-time window during which alerts are held."""

    start: time
    end: time
    tz: str = "UTC"

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz}"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names as typed and shown, Monday first (index = `date.weekday()`)."""


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When a destination receives its scheduled digest: daily or weekly at a local time."""

    weekly: bool
    at: time
    tz: str = "UTC"
    weekday: int = 0
    """Day of a weekly digest, 0 = Monday; ignored for daily ones."""
    only: bool = False
    """Digests only: changes are not sent one by one."""
    always: bool = False
    """Send a digest for a period without changes too (otherwise none is sent)."""
    since: datetime | None = None
    """When the schedule was set: no digest for a period that ended before it."""

    @property
    def spec(self) -> str:
        """The schedule as typed, e.g. "weekly mon 09:00 Europe/Berlin only"."""
        day = f" {WEEKDAYS[self.weekday]}" if self.weekly else ""
        flags = "".join(f" {name}" for name, on in (("only", self.only),
                                                   ("always", self.always)) if on)
        return f"{'weekly' if self.weekly else 'daily'}{day} {self.at:%H:%M} {self.tz}{flags}"

    def __str__(self) -> str:
        return self.spec


DEFAULT_MAX_ALERTS = 10
DEFAULT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Policy:
    """A destination's noise controls, set by its moderators."""

    max_alerts: int = DEFAULT_MAX_ALERTS
    window: timedelta = DEFAULT_WINDOW
    quiet: QuietHours | None = None
    mute_until: datetime | None = None
    settle: timedelta = timedelta(0)
    modes: dict[Kind, Mode] = field(default_factory=dict)
    charts: bool = False
    """Attach a 30-day chart to grade alerts."""
    digest: DigestSchedule | None = None
    """Scheduled digest of this destination, or None."""

    @property
    def digest_only(self) -> bool:
        """Changes reach this destination only in its scheduled digest."""
        return self.digest is not None and self.digest.only

    def mode(self, kind: Kind) -> Mode:
        """Delivery mode of a kind (on unless set)."""
        return self.modes.get(kind, Mode.ON)


class Reason(enum.StrEnum):
    """Why a row was sent, held or suppressed; stored, counted and explained by /why."""

    SENT = "sent"
    DIGEST = "digest"
    HELD_RATE = "held_rate"
    HELD_QUIET = "held_quiet"
    SETTLING = "settling"
    MUTED = "muted"
    TOKEN_MUTED = "token_muted"  # noqa: S105 - a reason code, not a password
    """This token was muted for this destination (the Mute button)."""
    FLAP_CANCELLED = "flap_cancelled"
    KIND_OFF = "kind_off"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    DEAD = "dead"
    DESTINATION_GONE = "destination_gone"
    REKEYED = "rekeyed"
    DIGEST_ONLY = "digest_only"
    """Not sent on its own: the destination receives changes in its scheduled digest only."""
    DIGEST_SKIPPED = "digest_skipped"
    """A scheduled digest's period ended too long before the bot could send it."""
    DIGEST_EMPTY = "digest_empty"
    """A scheduled digest's period had no changes, so none was sent."""


@dataclass(frozen=True, slots=True)
class ChartImage:
    """A rendered chart: PNG bytes and its caption (the text alternative)."""

    png: bytes
    caption: str
    filename: str = "chart.png"

    def __repr__(self) -> str:
        return f"ChartImage({self.filename!r}, {len(self.png)} bytes)"


@dataclass(frozen=True, slots=True)
class Message:
    """Platform-neutral rendered message: notifiers turn it into HTML, embeds or JSON."""

    title: str
    lines: tuple[str, ...]
    link: str
    direction: Direction | None
    timestamp: datetime
    changes: tuple[Change, ...]
    is_digest: bool = False
    """Held alerts bundled by the throttle (not a scheduled digest)."""
    image: ChartImage | None = None
    """A chart to show with the message (grade alerts of destinations with charts on)."""
    scheduled: bool = False
    """A scheduled digest: a multi-line summary whose lines ending in ':' head sections."""

    @property
    def text(self) -> str:
        """Plain text rendering (title, lines, link)."""
        return "\n".join((self.title, *self.lines, self.link)).strip()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a lookup shows about one token."""

    token: Token
    entries: dict[Kind, Reading]
    recent: tuple[Change, ...] = ()
    missing: tuple[Kind, ...] = ()
    """Kinds the source could not answer right now."""
