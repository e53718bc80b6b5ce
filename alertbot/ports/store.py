"""The Store port: durable state, changes, subscriptions, policies, outbox and decisions.

The port is split into roles (Catalog, StateStore, Subscriptions, Destinations, Outbox,
Audit, Meta, TokenMutes, Updates, PushQueue, Maintenance); each consumer names only the roles it
uses, through the small combining protocols at the end. `Store` combines every role for the
composition root.

Common to every role: each method is one transaction, so it happens completely or not at
all and a crash at any point leaves a consistent database; it raises StoreError when the
database cannot be used (not open, unreachable, locked by another writer for longer than the
store waits, full, read-only), with the driver's error as `__cause__` and nothing changed;
no driver exception escapes. Methods are safe to repeat unless noted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from alertbot.domain.models import (
    Change,
    Destination,
    Kind,
    Policy,
    Reading,
    Reason,
    Subscription,
    Token,
    TrackedState,
)
from alertbot.domain.throttle import DueAlert, Plan
from alertbot.ports.leadership import LeaderRecord, ReplicaRecord


class StoreError(Exception):
    """The store cannot be used (unreachable, locked, full, read-only, newer schema, bad URL).

    Raised with the driver's error as `__cause__`; the failed call changed nothing, so the
    caller may retry it later.
    """


class FencedError(StoreError):
    """An outbox write carried an older leadership epoch than the store's current one.

    A newer leader has started since the writer's epoch began: the writer must stop sending
    and step down. Nothing was changed.
    """


class OutboxState(StrEnum):
    """Where an outbox row (one change for one destination) is in its life.

    A row starts `pending`. The throttle suppresses it (`suppressed`, final), holds it
    (`held`, until a time), defers it (stays `pending`) or commits it to a message key (stays
    `pending`). A committed row is claimed (`sending`) just before the send; the send ends it
    `sent` or `dead` (both final) or makes it `pending` again for a retry. A crash leaves rows
    in `sending`: `Outbox.recover` makes them due again under the same key. Pausing a
    destination makes its queued rows `dead`.
    """

    PENDING = "pending"
    HELD = "held"
    SENDING = "sending"
    SENT = "sent"
    SUPPRESSED = "suppressed"
    DEAD = "dead"


QUEUED_STATES: tuple[OutboxState, ...] = (OutboxState.PENDING, OutboxState.HELD,
                                          OutboxState.SENDING)
"""States of rows still to be delivered."""
FINISHED_STATES: tuple[OutboxState, ...] = (OutboxState.SENT, OutboxState.SUPPRESSED,
                                            OutboxState.DEAD)
"""Final states: nothing moves a row out of them."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one committed poll added."""

    new_changes: list[Change]
    outbox_rows: int


@dataclass(frozen=True, slots=True)
class Watched:
    """Which tokens and kinds active subscriptions need."""

    all_tokens_mask: int
    """Kinds wanted for every token (from `all` subscriptions); 0 when none."""
    token_masks: Mapping[int, int]

    @property
    def kinds_mask(self) -> int:
        """Every kind some subscription wants."""
        mask = self.all_tokens_mask
        for value in self.token_masks.values():
            mask |= value
        return mask


@dataclass(frozen=True, slots=True)
class DestinationInfo:
    """A destination's settings and status."""

    destination: Destination
    policy: Policy
    address: str | None = None
    """Secret delivery address (webhook URL); never shown."""
    label: str = ""
    paused_reason: str = ""
    paused_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """A destination's policy before and after `Destinations.change_policy`."""

    before: Policy
    after: Policy
    released: int = 0
    """Held rows made due at once, to be decided again under the new policy."""

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class Committed:
    """Rows already committed to one message (by key) that still need sending."""

    key: str
    row_ids: tuple[int, ...]
    changes: tuple[Change, ...]
    silent: bool
    attempts: int
    first_created: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One stored decision, for /why."""

    at: datetime
    reason: str
    change: Change | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry."""

    at: datetime
    destination: Destination | None
    action: str
    detail: str
    actor: str


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Outbox depth by state and the age of the oldest undelivered row."""

    by_state: Mapping[str, int]
    oldest_pending: datetime | None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Rows removed by one retention pass, by table."""

    decisions: int = 0
    outbox: int = 0
    messages: int = 0
    changes: int = 0

    @property
    def total(self) -> int:
        """Every row removed."""
        return self.decisions + self.outbox + self.messages + self.changes


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    """What `alertbot db stats` shows."""

    location: str
    schema_version: int
    size_bytes: int
    """Database pages in use, write-ahead log excluded."""
    wal_bytes: int
    tables: Mapping[str, int]
    """Rows per table."""
    outbox: OutboxStats


@dataclass(frozen=True, slots=True)
class PlanKeys:
    """Idempotency keys the dispatcher assigned to a plan's messages."""

    singles: Mapping[int, str] = field(default_factory=dict)
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Decided:
    """What `Outbox.decide` wrote and the messages now due, the first of them claimed."""

    recorded: Counter[Reason]
    """Decisions newly recorded, by reason (as `apply_plan` returns them)."""
    messages: list[Committed]
    """Messages due for sending, as `committed` lists them; the first one is `sending`."""


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """What a delivery lane reads before deciding, as of one time (see Outbox.delivery_view)."""

    info: DestinationInfo
    committed: list[Committed]
    due: list[DueAlert]
    mutes: list[TokenMute]
    sent: list[datetime]
    """Delivery times within the destination's policy window."""


@dataclass(frozen=True, slots=True)
class TokenMute:
    """One token muted for one destination until a time."""

    destination: Destination
    token: Token
    until: datetime
    created_at: datetime
    actor: str = ""


@dataclass(frozen=True, slots=True)
class TokenMuteResult:
    """The mute in force after `TokenMutes.mute_token`, and whether the call created it."""

    mute: TokenMute
    created: bool


# ---------------------------------------------------------------------- roles


class Catalog(Protocol):
    """Known tokens (id, symbol, name, slug), filled from sources and changes.

    Reads never fail for unknown tokens (None or an empty list). `upsert_tokens` is safe
    to repeat: it overwrites symbol and name and keeps a known slug when given none.
    """

    async def upsert_tokens(self, tokens: Sequence[Token], now: datetime) -> None:
        """Remember tokens (symbol, name, slug by id)."""
        ...

    async def tokens_by_symbol(self, symbol: str) -> list[Token]:
        """Catalog tokens with exactly this symbol (case-insensitive)."""
        ...

    async def token(self, token_id: int) -> Token | None:
        """A catalog token by id."""
        ...

    async def search_tokens(self, prefix: str, limit: int) -> list[Token]:
        """Catalog tokens whose symbol or name starts with `prefix` (for autocomplete)."""
        ...


class StateStore(Protocol):
    """Detection state (readings) and the changes detected from it, with their fan-out.

    Changes are deduplicated by change id: recording one that is already stored adds
    nothing (no second change, no second outbox row), so repeating a poll, a webhook
    delivery or a replay is safe.
    """

    async def load_states(self,
                          token_ids: Sequence[int]) -> dict[tuple[int, Kind], TrackedState]:
        """Stored detection state of these tokens."""
        ...

    async def record_poll(self, states: Sequence[TrackedState], changes: Sequence[Change],
                          now: datetime, meta: Mapping[str, str] | None = None,
                          touched: Sequence[tuple[int, Kind]] = (), *,
                          epoch: int = 0) -> PollResult:
        """Store readings, new changes (deduplicated by change id) and their outbox rows.

        `touched` series were read again unchanged: only their freshness moves to `now`.

        One transaction. A change id already stored is skipped together with its fan-out,
        so repeating a poll, a webhook delivery or a replay never creates a second alert.
        Fenced like the Outbox writes: an `epoch` older than the store's current one raises
        FencedError and changes nothing (a stale leader's poll queues no alert).
        """
        ...

    async def recent_changes(self, token_id: int, kind: Kind | None,
                             limit: int) -> list[Change]:
        """Newest changes of a token."""
        ...

    async def record_ops_event(self, change: Change, destination: Destination,
                               now: datetime) -> bool:
        """Store an operator alert and queue it for exactly one destination.

        One transaction. Bypasses subscriptions: nothing else receives it. A change id already
        stored adds nothing, so raising the same occurrence again is safe. The destination is
        created when missing; a paused one gets no row. Returns whether a row was queued.
        """
        ...


class Subscriptions(Protocol):
    """Which destinations want which kinds of which tokens.

    Changing calls audit what they changed and report whether anything changed, so
    repeating one is safe (the repeat changes and audits nothing).
    """

    async def subscribe(self, destination: Destination, token_id: int, kinds: Sequence[Kind],
                        now: datetime, actor: str = "") -> bool:
        """Add kinds for a token (0 = all tokens); resumes a paused destination.

        Returns False when the destination already had exactly these kinds.
        """
        ...

    async def unsubscribe(self, destination: Destination, token_id: int | None,
                          kinds: Sequence[Kind], now: datetime, actor: str = "") -> int:
        """Remove kinds for a token (None = every subscription of the destination).

        Returns how many subscriptions changed.
        """
        ...

    async def subscriptions(self, destination: Destination | None = None) -> list[Subscription]:
        """Subscriptions of one destination, or all."""
        ...

    async def watched(self) -> Watched:
        """Tokens and kinds that active subscriptions need."""
        ...


class Destinations(Protocol):
    """Where alerts go: each destination's policy, delivery address, label and pause state.

    Unknown destinations read as None or are left out. Every call is safe to repeat:
    pausing a paused destination or resuming an active one changes nothing and returns
    0 or False; `rekey` of a destination already moved moves nothing; `set_policy` audits
    every call.
    """

    async def destination(self, destination: Destination) -> DestinationInfo | None:
        """A destination's settings, or None if unknown."""
        ...

    async def destinations(self, *, platform: str | None = None, chat_id: str | None = None,
                           with_address: bool = False,
                           limit: int | None = None) -> list[DestinationInfo]:
        """Known destinations, filtered by platform, chat (all its threads), address, count."""
        ...

    async def ensure_destination(self, destination: Destination, now: datetime, *,
                                 address: str | None = None, label: str = "",
                                 policy: Policy | None = None) -> None:
        """Create a destination if missing; update address or label when given."""
        ...

    async def set_policy(self, destination: Destination, policy: Policy, now: datetime,
                         actor: str = "", detail: str = "") -> None:
        """Replace a destination's policy and audit it (`detail`, else the policy described)."""
        ...

    async def change_policy(self, destination: Destination,
                            change: Callable[[Policy], Policy], now: datetime, actor: str = "",
                            detail: Callable[[Policy], str] | None = None) -> PolicyChange:
        """Apply `change` to the current policy in one transaction (read, change, write).

        Concurrent changes of different fields therefore never undo each other. When the
        policy changed, it is audited (`detail(after)`, else the policy described) and every
        held row of the destination becomes due now, so the dispatcher decides it again
        under the new policy. An exception from `change` (e.g. ValueError) writes nothing.
        """
        ...

    async def pause(self, destination: Destination, reason: str, now: datetime, *,
                    epoch: int | None = None) -> int:
        """Stop delivering to a destination; its queued rows are dead-lettered. Returns them.

        With an `epoch` (the dispatcher's, reacting to a send), fenced like the Outbox writes:
        an older epoch than the store's raises FencedError and changes nothing. Without one
        (chat commands, which any replica may answer) it is not checked.
        """
        ...

    async def resume(self, destination: Destination, now: datetime, actor: str = "") -> bool:
        """Deliver to a paused destination again. Returns whether it was paused."""
        ...

    async def rekey(self, old: Destination, new: Destination, now: datetime, *,
                    epoch: int | None = None) -> int:
        """Move a destination (subscriptions, policy, queued rows) to a new id.

        Returns how many queued rows moved. `epoch` is checked as by `pause`.
        """
        ...


class DigestOutcome(StrEnum):
    """How a finished period of a destination's scheduled digest was decided (once)."""

    QUEUED = "queued"
    """Its digest message was queued in the outbox."""
    EMPTY = "empty"
    """Nothing changed in it and the schedule does not say `always`: no message."""
    SKIPPED = "skipped"
    """It ended too long before the bot could send it: no message, recorded for /why."""


class Digests(Protocol):
    """Scheduled digests: which destinations have one, and each period decided exactly once.

    `record_digest` is safe to repeat and to race: the first decision of a (destination,
    period key) wins, later ones change nothing and return False, so no restart or repeated
    check can queue a second digest for a period.
    """

    async def digest_destinations(self) -> list[DestinationInfo]:
        """Destinations with a scheduled digest that are not paused."""
        ...

    async def decided_periods(self, destination: Destination,
                              keys: Sequence[str]) -> set[str]:
        """Which of these period keys of a destination are already decided."""
        ...

    async def period_changes(self, destination: Destination, start: datetime,
                             end: datetime) -> list[Change]:
        """Market changes fanned out to a destination that were detected in [start, end).

        Changes the destination never wanted (kind off), that a mute of the destination or of
        their token suppressed, or that were cancelled by the flap guard are left out; ones
        held or kept for the digest only are in.
        """
        ...

    async def record_digest(self, destination: Destination, key: str, start: datetime,
                            end: datetime, outcome: DigestOutcome, change: Change,
                            now: datetime) -> bool:
        """Decide a period once: store `change` and, when QUEUED, one outbox row for it.

        EMPTY and SKIPPED add a decision (DIGEST_EMPTY, DIGEST_SKIPPED) for /why instead. One
        transaction. Returns False, changing nothing, when the period was already decided.
        A paused destination gets no outbox row.
        """
        ...


class Outbox(Protocol):
    """The delivery queue: one row per change and destination, moved through OutboxState.

    This is the crash-safety core. A row is committed to a message key before it is
    sent, claimed just before the send and finished only after the platform answered; a
    claimed row stays due, so a crash between send and `mark_sent` sends it again under the
    same key (idempotent on the platforms that support keys). Transitions only apply to rows
    in the states they start from, so repeating any call (or reporting the outcome of a
    message already finished) changes nothing. `apply_plan`, `mark_retry` and `mark_dead`
    record decisions (see Audit.recent_decisions).

    Fencing: the writes of the delivery path (`recover`, `apply_plan`, `decide`, `claim`,
    `mark_sent`, `mark_retry`, `mark_dead`) take the writer's leadership `epoch` and raise
    FencedError, changing nothing, when it is older than the store's current epoch
    (Fencing.begin_epoch); the check and the write are one transaction. The default epoch 0
    passes only as long as no epoch has begun (tools and tests on a fresh database).
    """

    async def recover(self, now: datetime, *, epoch: int = 0) -> int:
        """Make rows left in `sending` by a crash due again; returns how many."""
        ...

    async def due_destinations(self, now: datetime, limit: int, platforms: Sequence[str],
                               exclude: Sequence[Destination] = ()) -> list[Destination]:
        """Destinations on these platforms with rows due now, oldest first."""
        ...

    async def next_due(self, platforms: Sequence[str]) -> datetime | None:
        """When the next queued row on these platforms becomes due."""
        ...

    async def committed(self, destination: Destination, now: datetime) -> list[Committed]:
        """Messages already decided for this destination that are due for (re)sending."""
        ...

    async def due_alerts(self, destination: Destination, now: datetime) -> list[DueAlert]:
        """Rows that need a throttle decision (due pending rows and the held group)."""
        ...

    async def delivery_view(self, destination: Destination,
                            now: datetime) -> DeliveryView | None:
        """`destination`, `committed`, `due_alerts`, `token_mutes` and `sent_times` (over the
        policy's window) as of `now`, in one call; None when the destination is unknown."""
        ...

    async def sent_times(self, destination: Destination, since: datetime) -> list[datetime]:
        """When messages were delivered to a destination since a time."""
        ...

    async def apply_plan(self, destination: Destination, plan: Plan, keys: PlanKeys,
                         now: datetime, *, epoch: int = 0) -> Counter[Reason]:
        """Store a throttle plan: decisions, holds, suppressions and message keys.

        Returns the decisions newly recorded, by reason: re-holding a row for the reason it
        is already held for records nothing.
        """
        ...

    async def decide(self, destination: Destination, plan: Plan, keys: PlanKeys,
                     now: datetime, *, epoch: int = 0) -> Decided:
        """`apply_plan`, `committed` and `claim` of the first message, in one transaction.

        The delivery path's round trips: the caller sends the first message next (or leaves
        it claimed for `recover`), exactly as after the three calls.
        """
        ...

    async def claim(self, key: str, now: datetime, *, epoch: int = 0) -> None:
        """Mark a message's rows as being sent."""
        ...

    async def mark_sent(self, destination: Destination, key: str, message_id: str,
                        now: datetime, *, epoch: int = 0) -> list[Change]:
        """Record a delivered message; returns its changes (none when already finished)."""
        ...

    async def mark_retry(self, destination: Destination, key: str, until: datetime,
                         error: str, reason: Reason, count_attempt: bool,
                         now: datetime, *, epoch: int = 0) -> None:
        """Schedule a message for another attempt."""
        ...

    async def mark_dead(self, destination: Destination, key: str, error: str, reason: Reason,
                        now: datetime, *, epoch: int = 0) -> None:
        """Give up on a message."""
        ...


class Audit(Protocol):
    """Append-only history: delivery decisions (for /why) and settings changes.

    `add_audit` appends: repeating it adds a second entry.
    """

    async def recent_decisions(self, destination: Destination,
                               limit: int) -> list[DecisionRecord]:
        """Newest decisions for a destination."""
        ...

    async def add_audit(self, destination: Destination | None, action: str, detail: str,
                        now: datetime, actor: str = "") -> None:
        """Append an audit entry."""
        ...

    async def recent_audit(self, limit: int) -> list[AuditRecord]:
        """Newest audit entries."""
        ...


class Meta(Protocol):
    """Small bookkeeping values by key (cursors, quota counters, sync hashes)."""

    async def get_meta(self, key: str) -> str | None:
        """A bookkeeping value, or None when never set."""
        ...

    async def set_meta(self, key: str, value: str) -> None:
        """Set a bookkeeping value (replaces the previous one)."""
        ...

    async def update_meta(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Read, change and write one value atomically, also against other processes.

        `change` gets the current value (None when never set) and returns the new one; None
        or the same value writes nothing. Returns the value stored afterwards. Counters
        that several processes share (API calls) are kept this way, never read and
        written in two steps.
        """
        ...


class TokenMutes(Protocol):
    """Per-destination, per-token mutes (the Mute button) and the alerts buttons refer to.

    A mute suppresses alerts of one token to one destination until it ends; every other
    token and destination goes on. Changing calls audit only what they changed, so
    repeating one is safe: muting a token already muted keeps the mute in force as it is
    (same end, no second audit entry), unmuting a token not muted changes nothing.
    """

    async def mute_token(self, destination: Destination, token_id: int, until: datetime,
                         now: datetime, actor: str = "") -> TokenMuteResult:
        """Mute a token for a destination until `until`, unless a mute is already in force.

        Returns the mute in force afterwards and whether this call created it. A mute that
        has ended is replaced.
        """
        ...

    async def unmute_token(self, destination: Destination, token_id: int, now: datetime,
                           actor: str = "") -> bool:
        """End a token's mute for a destination now. Returns whether one was in force."""
        ...

    async def token_mutes(self, destination: Destination, now: datetime) -> list[TokenMute]:
        """Mutes in force for a destination at `now`, by token symbol."""
        ...

    async def message_changes(self, destination: Destination, key: str) -> list[Change]:
        """The changes an outbox message key carried to this destination.

        Empty when the key is unknown there (never sent there, or purged by retention).
        """
        ...


class Updates(Protocol):
    """Chat-platform updates already received, so a redelivered one is handled once.

    Telegram redelivers a webhook update it got no 2xx for, and behind a load balancer the
    copies may reach different processes; the first to claim an update id handles it.
    """

    async def claim_update(self, platform: str, update_id: int, now: datetime) -> bool:
        """Record `update_id` of `platform`; True only for the first caller, atomically.

        Atomic also across processes sharing the database: of concurrent claims of one id,
        exactly one returns True. Safe to repeat (a repeat returns False).
        """
        ...

    async def purge_updates(self, before: datetime) -> int:
        """Forget update ids claimed before `before`; returns how many. Safe to repeat."""
        ...


@dataclass(frozen=True, slots=True)
class PushedBatch:
    """The readings one accepted push ingest request stored, waiting for the leader."""

    batch_id: int
    readings: tuple[Reading, ...]
    tokens: tuple[Token, ...]
    """Catalog tokens of the readings, upserted before detection like a poll's."""
    received_at: datetime


class PushQueue(Protocol):
    """Validated pushed readings: any process stores them, only the leader detects on them.

    So detection runs in one process (the leader's poller), and a push handled by a standby
    and a poll by the leader of the same series cannot both compare against the old state.
    """

    async def enqueue_pushed(self, readings: Sequence[Reading], tokens: Sequence[Token],
                             received_at: datetime) -> int:
        """Store one request's readings durably, pending; returns the batch id."""
        ...

    async def pending_pushed(self, limit: int) -> list[PushedBatch]:
        """Up to `limit` pending batches, oldest first."""
        ...

    async def finish_pushed(self, batch_ids: Sequence[int], now: datetime) -> int:
        """Mark batches processed (detection committed); returns how many were pending.

        Safe to repeat: a batch already processed stays as it is.
        """
        ...

    async def purge_pushed(self, before: datetime) -> int:
        """Delete processed batches received before `before`; pending ones stay. How many."""
        ...


class Fencing(Protocol):
    """Leadership epochs and replica heartbeats as the database records them.

    The epoch stored here is the one Outbox writes are checked against. `begin_epoch` is how
    a backend that always leads (SQLite, one process) starts its epoch; a leadership that
    elects among replicas (PostgreSQL lease) writes the same record itself.
    """

    async def begin_epoch(self, holder: str, now: datetime) -> int:
        """Start a new epoch held by `holder` (one above every earlier one); returns it."""
        ...

    async def leader(self) -> LeaderRecord | None:
        """The current epoch's holder, or None before the first epoch."""
        ...

    async def heartbeat(self, record: ReplicaRecord, forget_before: datetime) -> None:
        """Record a replica's heartbeat; forget replicas silent since before `forget_before`."""
        ...

    async def replicas(self) -> list[ReplicaRecord]:
        """Every remembered replica, leader first, then by id."""
        ...


class Maintenance(Protocol):
    """Lifecycle, health and housekeeping of the database.

    `open` raises StoreError for a database it cannot use (missing directory, schema of a
    newer version); every other method raises it when the store is not open or the
    database does not answer. `close` is safe to repeat; so are `purge` and `backup`.
    """

    async def open(self) -> None:
        """Connect and apply pending migrations; refuse a database from a newer version."""
        ...

    async def close(self) -> None:
        """Close the connection."""
        ...

    async def ping(self) -> None:
        """Raise StoreError unless the database answers."""
        ...

    async def outbox_stats(self) -> OutboxStats:
        """Outbox depth by state and the oldest undelivered row."""
        ...

    async def purge(self, before: datetime, now: datetime) -> PurgeResult:
        """Delete history older than `before`: decisions, finished outbox rows, changes.

        Finished means sent, suppressed or dead; queued rows are never touched. Messages (the
        throttle's rate history) are kept for at least the longest throttle window of any
        destination, and changes while an outbox row still refers to them. Safe to repeat.
        """
        ...

    async def backup(self, path: str) -> None:
        """Write a consistent copy of the database to `path` while it stays in use.

        The copy appears under its name only when complete (an existing file is replaced).
        Raises StoreError when it cannot be written. A server database backed up with its
        own tools (PostgreSQL: pg_dump) raises StoreError naming the command instead.
        """
        ...

    async def stats(self) -> DatabaseStats:
        """Size, schema version, rows per table and outbox depth."""
        ...


class Store(Catalog, StateStore, Subscriptions, Destinations, Outbox, Audit, Meta, TokenMutes,
            Updates, PushQueue, Fencing, Digests, Maintenance, Protocol):
    """Durable state of the bot: every role, for the composition root and the tests."""


# ---------------------------------------------------------------------- what consumers use


class PollStore(Catalog, StateStore, Subscriptions, PushQueue, Protocol):
    """What the poller uses: the catalog, detection state, what subscriptions watch, pushes."""


class LookupStore(Catalog, StateStore, Protocol):
    """What lookups use: the catalog and stored readings and changes."""


class DispatchStore(Outbox, Destinations, TokenMutes, Protocol):
    """What the dispatcher uses: the outbox, its destinations (pause, rekey), token mutes."""


class CommandStore(Catalog, Subscriptions, Destinations, Audit, TokenMutes, Protocol):
    """What chat commands use: tokens, subscriptions, policies, mutes and /why's decisions."""


class ButtonStore(CommandStore, Meta, Protocol):
    """What buttons on alerts use: what commands use, and the button secret in meta."""


class OpsStore(StateStore, Destinations, Audit, Meta, Protocol):
    """What the operator-alert monitor uses: queue alerts, read decisions, keep its state."""


class SourceStore(Catalog, Meta, Protocol):
    """What a data source uses: the catalog and its quota and watchlist bookkeeping."""


class SourceSetupStore(SourceStore, Subscriptions, Protocol):
    """What building a data source uses: a SourceStore and what subscriptions watch."""


class DigestStore(Digests, Destinations, StateStore, TokenMutes, Protocol):
    """What the digest scheduler uses: schedules, period decisions, current grades, mutes."""


class PlatformStore(Destinations, Meta, Protocol):
    """What a platform bot uses: its destinations and its own bookkeeping."""


class RetentionStore(Updates, PushQueue, Maintenance, Protocol):
    """What retention uses: history purging, the update ids and processed pushes it forgets."""
