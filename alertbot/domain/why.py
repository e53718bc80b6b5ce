"""/why wording: one line per throttle or delivery decision."""

from __future__ import annotations

from datetime import datetime

from alertbot.domain.models import Change, Reason
from alertbot.domain.render import headline

_REASON_TEXT: dict[str, str] = {
    Reason.SENT: "sent",
    Reason.DIGEST: "sent in a digest",
    Reason.HELD_RATE: "held: over the alert budget, will arrive in a digest",
    Reason.HELD_QUIET: "held for quiet hours, will arrive in a digest",
    Reason.SETTLING: "waiting for the flap guard",
    Reason.MUTED: "not sent: alerts here were muted",
    Reason.TOKEN_MUTED: "not sent: this token was muted here",
    Reason.FLAP_CANCELLED: "cancelled: it reverted within the flap guard",
    Reason.KIND_OFF: "not sent: this kind is off here",
    Reason.RETRY: "delivery failed, retrying",
    Reason.RATE_LIMITED: "the platform asked us to slow down, retrying",
    Reason.DEAD: "delivery failed for good",
    Reason.DESTINATION_GONE: "not delivered: this chat stopped accepting messages",
    Reason.REKEYED: "the chat moved, sent again",
    Reason.DIGEST_ONLY: "not sent on its own: this chat gets the scheduled digest only",
    Reason.DIGEST_SKIPPED: "not sent: the bot was down when the period ended",
    Reason.DIGEST_EMPTY: "not sent: nothing changed in the period",
}
_DETAIL_REASONS = frozenset({Reason.HELD_RATE, Reason.HELD_QUIET, Reason.SETTLING,
                             Reason.RETRY, Reason.DEAD, Reason.DESTINATION_GONE,
                             Reason.TOKEN_MUTED, Reason.DIGEST_SKIPPED,
                             Reason.DIGEST_EMPTY})
MAX_DETAIL = 100


def explain(at: datetime, change: Change | None, reason: str, detail: str = "") -> str:
    """One /why line: when, which change, what happened and why."""
    what = headline(change) if change is not None else "alert"
    text = _REASON_TEXT.get(reason, reason)
    extra = ""
    if reason in _DETAIL_REASONS and detail:
        extra = f" ({' '.join(detail.split())[:MAX_DETAIL]})"
    return f"{at:%m-%d %H:%M} UTC · {what}: {text}{extra}"


def token_mute_line(symbol: str, until: datetime) -> str:
    """The /why line of one token muted for this chat."""
    return (f"{' '.join(symbol.split())} alerts here are muted until {until:%m-%d %H:%M} UTC "
            f"(Undo on its alert, or /unmute {' '.join(symbol.split())}, ends it)")
