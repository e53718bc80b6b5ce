"""The one table of permissions the bot needs, its invite URL and moderators (pure)."""

from __future__ import annotations

import discord

from alertbot.platforms.discord.permissions import (
    BOT_PERMISSIONS,
    invite_url,
    is_moderator,
    missing_permissions,
    needed_permissions,
)


def test_invite_url_has_least_privilege_and_command_scope() -> None:
    url = invite_url(111111111111111111)
    assert "client_id=111111111111111111" in url
    assert "permissions=19456" in url
    assert "scope=bot+applications.commands" in url


def test_bot_permissions_are_what_a_channel_needs() -> None:
    assert missing_permissions(BOT_PERMISSIONS, thread=False) == []
    assert BOT_PERMISSIONS.value == 19456


def test_needed_permissions_in_a_thread_replace_send_messages() -> None:
    assert needed_permissions(thread=False) == ["View Channel", "Send Messages", "Embed Links"]
    assert needed_permissions(thread=True) == ["View Channel", "Send Messages in Threads",
                                               "Embed Links"]


def test_missing_permissions_names_only_the_missing_ones_in_order() -> None:
    granted = discord.Permissions(view_channel=True, send_messages=True)
    assert missing_permissions(granted, thread=False) == ["Embed Links"]
    assert missing_permissions(granted, thread=True) == ["Send Messages in Threads",
                                                         "Embed Links"]
    assert missing_permissions(discord.Permissions.none(), thread=False) == \
        needed_permissions(thread=False)


def test_is_moderator_manage_server_or_channels() -> None:
    assert is_moderator(discord.Permissions(manage_guild=True))
    assert is_moderator(discord.Permissions(manage_channels=True))
    assert not is_moderator(discord.Permissions(send_messages=True, manage_messages=True))
