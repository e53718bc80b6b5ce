"""What the bot needs in a channel (one table), its invite URL, and who counts as a moderator.

The table serves the invite's least privilege, the check before /subscribe and the reason
given after 50013 Missing Permissions (reference/platforms.md §1 "Permissions and invite URL").
"""

from __future__ import annotations

from dataclasses import dataclass

import discord


@dataclass(frozen=True, slots=True)
class Needed:
    """One permission the bot needs to post alerts, and where it needs it."""

    attr: str
    """discord.Permissions attribute."""
    label: str
    """Its name in Discord's UI."""
    in_channel: bool = True
    in_thread: bool = True


NEEDED = (
    Needed("view_channel", "View Channel"),
    Needed("send_messages", "Send Messages", in_thread=False),
    Needed("send_messages_in_threads", "Send Messages in Threads", in_channel=False),
    Needed("embed_links", "Embed Links"),
)

# The invite's least privilege: View Channel + Send Messages + Embed Links = 19456; threads
# also need Send Messages in Threads.
BOT_PERMISSIONS = discord.Permissions(**{p.attr: True for p in NEEDED if p.in_channel})
INVITE_SCOPES = ("bot", "applications.commands")

MODERATOR_PERMISSIONS = discord.Permissions(manage_guild=True)
"""Default visibility of moderator commands (servers may override it; the bot checks too)."""


def needed_permissions(*, thread: bool) -> list[str]:
    """Labels of every permission the bot needs in a channel, or in a thread."""
    return [p.label for p in NEEDED if (p.in_thread if thread else p.in_channel)]


def missing_permissions(permissions: discord.Permissions, *, thread: bool) -> list[str]:
    """Labels of the needed permissions that `permissions` lacks."""
    return [p.label for p in NEEDED if (p.in_thread if thread else p.in_channel)
            and not getattr(permissions, p.attr)]


def invite_url(application_id: int) -> str:
    """OAuth2 invite with the least privilege the bot needs and slash-command scope."""
    return discord.utils.oauth_url(application_id, permissions=BOT_PERMISSIONS,
                                   scopes=INVITE_SCOPES)


def is_moderator(permissions: discord.Permissions) -> bool:
    """Manage Server or Manage Channels in this channel (DESIGN §4)."""
    return permissions.manage_guild or permissions.manage_channels
