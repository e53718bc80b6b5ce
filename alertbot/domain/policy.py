"""Destination policies in words (pure)."""

from __future__ import annotations

from alertbot.domain.models import ALL_KINDS, Policy
from alertbot.domain.parsing import format_duration


def describe_policy(policy: Policy) -> list[str]:
    """Readable lines for a destination's policy."""
    lines = [f"throttle: at most {policy.max_alerts} alerts per "
             f"{format_duration(policy.window)} (the rest arrive as one digest)"]
    lines.append(f"quiet hours: {policy.quiet}" if policy.quiet else "quiet hours: off")
    lines.append(f"muted until {policy.mute_until:%Y-%m-%d %H:%M} UTC" if policy.mute_until
                 else "muted: no")
    lines.append(f"flap guard: {format_duration(policy.settle)}" if policy.settle
                 else "flap guard: off")
    modes = ", ".join(f"{k.value}={policy.mode(k).value}" for k in ALL_KINDS)
    lines.append(f"modes: {modes}")
    return lines
