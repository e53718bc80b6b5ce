"""Tests of the fake Discord server, driven by the real discord.py (never mocked) and raw HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands

from tests.fakes.discord_api import (
    CREATE_MESSAGE_LIMIT,
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    DEFAULT_TOKEN,
    GLOBAL_LIMIT,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    patch_discord_urls,
    running_fake_discord,
)
from tests.support import ManualClock

GUILD = discord.Object(id=DEFAULT_GUILD_ID)
AUTH = {"Authorization": f"Bot {DEFAULT_TOKEN}"}
# Shortened window for tests where discord.py really sleeps; the count stays Discord's 5.
FAST_CREATE_LIMIT = (CREATE_MESSAGE_LIMIT, 0.5)

SetupFn = Callable[[discord.Client, app_commands.CommandTree[discord.Client]], None]


@contextlib.asynccontextmanager
async def connected_client(
    fake: FakeDiscord,
    setup: SetupFn | None = None,
    intents: discord.Intents | None = None,
) -> AsyncIterator[tuple[discord.Client, app_commands.CommandTree[discord.Client]]]:
    """A real discord.Client logged in to the fake and past on_ready."""
    if intents is None:
        intents = discord.Intents.none()
        intents.guilds = True
    client = discord.Client(intents=intents, guild_ready_timeout=0.1)
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        ready.set()

    if setup is not None:
        setup(client, tree)
    task = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(ready.wait(), 5.0)
        yield client, tree
    finally:
        await client.close()
        await asyncio.wait_for(task, 5.0)


@contextlib.asynccontextmanager
async def raw_gateway(
    fake: FakeDiscord, token: str = DEFAULT_TOKEN
) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, list[dict[str, Any]]]]:
    """Hand-driven gateway client; yields the socket and frames up to the last GUILD_CREATE."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws,
    ):
        frames = [await ws.receive_json()]
        await ws.send_json({"op": 2, "d": {"token": token, "intents": 1, "properties": {}}})
        if token == fake.token:
            frames.append(await ws.receive_json())
            frames.extend([await ws.receive_json() for _ in fake.guilds])
        yield ws, frames


def post_message(
    session: aiohttp.ClientSession,
    fake: FakeDiscord,
    body: dict[str, Any],
    channel_id: int = DEFAULT_CHANNEL_ID,
) -> Any:
    return session.post(f"{fake.api_base}/channels/{channel_id}/messages", json=body, headers=AUTH)


# --- discord.py end to end --------------------------------------------------------------------


async def test_client_login_and_gateway_fires_on_ready_with_guilds_channels_and_threads() -> None:
    thread = FakeChannel(
        id=444444444444444445, name="btc-thread", type=11, parent_id=DEFAULT_CHANNEL_ID
    )
    guilds = [
        FakeGuild(id=DEFAULT_GUILD_ID, channels=[FakeChannel(id=DEFAULT_CHANNEL_ID), thread]),
        FakeGuild(
            id=333333333333333334,
            name="Second",
            channels=[FakeChannel(id=444444444444444446, name="news", type=5)],
        ),
    ]
    async with running_fake_discord(guilds=guilds) as fake, connected_client(fake) as (client, _):
        guild = client.get_guild(DEFAULT_GUILD_ID)
        assert guild is not None and guild.name == "Alert Test Guild"
        channel = client.get_channel(DEFAULT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel) and channel.name == "alerts"
        cached_thread = guild.get_thread(thread.id)
        assert cached_thread is not None and cached_thread.parent_id == DEFAULT_CHANNEL_ID
        news = client.get_channel(444444444444444446)
        assert isinstance(news, discord.TextChannel) and news.is_news()
        assert guild.default_role.id == DEFAULT_GUILD_ID
        assert guild.me is not None and channel.permissions_for(guild.me).send_messages
        assert client.user is not None and client.user.id == fake.bot_user_id
        assert client.application_id == fake.application_id
        assert fake.intents == discord.Intents(guilds=True).value
        kinds = [r.kind for r in fake.requests]
        assert kinds[:3] == ["users_me", "application", "gateway_ws"]


async def test_send_embed_with_no_mentions_records_empty_parse_and_random_nonce(
    fake_discord: FakeDiscord,
) -> None:
    async with connected_client(fake_discord) as (client, _):
        channel = client.get_partial_messageable(DEFAULT_CHANNEL_ID)
        embed = discord.Embed(title="BTC grade changed", description="B → A")
        sent = await channel.send(embed=embed, allowed_mentions=discord.AllowedMentions.none())
    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    assert recorded.allowed_mentions == {"parse": []}
    assert recorded.embeds[0]["title"] == "BTC grade changed"
    assert sent.id == recorded.id and sent.embeds[0].description == "B → A"
    # discord.py 2.7.1 always sends a random numeric nonce with enforce_nonce=True (abc.py:1686).
    assert isinstance(recorded.nonce, str) and recorded.nonce.isdigit()
    assert recorded.enforce_nonce is True


async def test_send_same_nonce_twice_records_one_message_and_returns_existing(
    fake_discord: FakeDiscord,
) -> None:
    async with connected_client(fake_discord) as (client, _):
        channel = client.get_partial_messageable(DEFAULT_CHANNEL_ID)
        first = await channel.send("alert 42", nonce="alert-42")
        second = await channel.send("alert 42", nonce="alert-42")
    assert first.id == second.id
    assert len(fake_discord.messages) == 1 and fake_discord.nonce_dedupes == 1
    [message] = fake_discord.messages
    assert message.nonce == "alert-42" and message.enforce_nonce is True


async def test_app_command_synced_to_guild_and_invoked_replies_ephemeral(
    fake_discord: FakeDiscord,
) -> None:
    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @tree.command(name="subscribe", description="Post alerts here", guild=GUILD)
        @app_commands.default_permissions(manage_guild=True)
        async def subscribe(interaction: discord.Interaction, symbol: str) -> None:
            await interaction.response.send_message(f"subscribed {symbol}", ephemeral=True)

    async with connected_client(fake_discord, setup) as (_, tree):
        synced = await tree.sync(guild=GUILD)
        interaction = await fake_discord.inject_interaction(
            "subscribe", [{"name": "symbol", "type": 3, "value": "BTC"}], permissions="32"
        )
        callback = await fake_discord.wait_for_callback(interaction)
    [put] = fake_discord.command_puts
    assert put.guild_id == DEFAULT_GUILD_ID and put.commands[0]["name"] == "subscribe"
    # discord.py sends the permission bit set as an int; Discord documents a string.
    assert put.commands[0]["default_member_permissions"] == 32
    assert synced[0].default_member_permissions == discord.Permissions(manage_guild=True)
    assert callback.type == 4
    assert callback.data is not None and callback.data["content"] == "subscribed BTC"
    assert callback.data["flags"] == 64
    assert callback.query.get("with_response") == "1"
    assert callback.status == 200  # the fake accepts a callback only inside the 3 s deadline


async def test_interaction_member_permissions_string_maps_to_interaction_permissions(
    fake_discord: FakeDiscord,
) -> None:
    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @tree.command(name="whoami", description="Show permissions", guild=GUILD)
        async def whoami(interaction: discord.Interaction) -> None:
            p = interaction.permissions
            await interaction.response.send_message(
                f"{p.manage_guild} {p.manage_channels} {p.administrator}"
            )

    async with connected_client(fake_discord, setup):
        results = {}
        for perms in ("32", "16", "8", "0"):
            interaction = await fake_discord.inject_interaction("whoami", permissions=perms)
            callback = await fake_discord.wait_for_callback(interaction)
            assert callback.data is not None
            results[perms] = callback.data["content"]
    assert results == {
        "32": "True False False",
        "16": "False True False",
        "8": "True True True",
        "0": "False False False",
    }


async def test_app_command_defer_then_followup_and_edit_are_recorded(
    fake_discord: FakeDiscord,
) -> None:
    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @tree.command(name="status", description="Slow status", guild=GUILD)
        async def status(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("3 subscriptions", ephemeral=True)
            await interaction.edit_original_response(content="done")

    async with connected_client(fake_discord, setup):
        interaction = await fake_discord.inject_interaction("status")
        callback = await fake_discord.wait_for_callback(interaction)
        followups = await fake_discord.wait_for_followups(2)
    assert callback.type == 5 and callback.data == {"flags": 64}
    assert [f.kind for f in followups] == ["followup", "edit"]
    assert followups[0].content == "3 subscriptions" and followups[0].flags == 64
    assert followups[1].content == "done"
    assert all(f.interaction_id == interaction.id for f in followups)


async def test_autocomplete_interaction_callback_returns_choices(fake_discord: FakeDiscord) -> None:
    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @tree.command(name="track", description="Track a token", guild=GUILD)
        async def track(interaction: discord.Interaction, symbol: str) -> None:
            await interaction.response.send_message(symbol)

        @track.autocomplete("symbol")
        async def symbols(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [
                app_commands.Choice(name=s, value=s)
                for s in ("BTC", "BNB", "ETH")
                if s.startswith(current)
            ]

    async with connected_client(fake_discord, setup):
        interaction = await fake_discord.inject_interaction(
            "track", [{"name": "symbol", "type": 3, "value": "B"}], interaction_type=4
        )
        callback = await fake_discord.wait_for_callback(interaction)
    assert interaction.payload["data"]["options"][0]["focused"] is True
    assert callback.type == 8
    assert callback.data == {
        "choices": [{"name": "BTC", "value": "BTC"}, {"name": "BNB", "value": "BNB"}]
    }


async def test_six_rapid_sends_with_headers_prewait_and_get_no_429() -> None:
    async with (
        running_fake_discord(create_message_limit=FAST_CREATE_LIMIT) as fake,
        connected_client(fake) as (client, _),
    ):
        channel = client.get_partial_messageable(DEFAULT_CHANNEL_ID)
        await asyncio.gather(*(channel.send(f"alert {i}") for i in range(6)))
    # The fake answers a sixth send inside the window with 429, so six 200s mean discord.py
    # held the sixth back on X-RateLimit-Remaining/Reset-After.
    assert len(fake.messages_in(DEFAULT_CHANNEL_ID)) == 6 and fake.rate_limited == 0
    assert [r.status for r in fake.requests_of("create_message")] == [200] * 6


async def test_six_rapid_sends_without_headers_get_429_retried_and_delivered() -> None:
    async with (
        running_fake_discord(
            create_message_limit=FAST_CREATE_LIMIT, send_ratelimit_headers=False
        ) as fake,
        connected_client(fake) as (client, _),
    ):
        channel = client.get_partial_messageable(DEFAULT_CHANNEL_ID)
        for i in range(6):
            await channel.send(f"alert {i}")
    assert [m.content for m in fake.messages] == [f"alert {i}" for i in range(6)]
    assert fake.rate_limited == 1 and fake.rate_limited_by_channel[DEFAULT_CHANNEL_ID] == 1
    statuses = [r.status for r in fake.requests_of("create_message")]
    assert statuses == [200] * 5 + [429, 200]


async def test_channel_error_missing_access_raises_forbidden_50001(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.set_channel_error(DEFAULT_CHANNEL_ID, 403, 50001)
    async with connected_client(fake_discord) as (client, _):
        with pytest.raises(discord.Forbidden) as caught:
            await client.get_partial_messageable(DEFAULT_CHANNEL_ID).send("x")
    assert caught.value.code == 50001 and caught.value.text == "Missing Access"
    assert fake_discord.messages == []


async def test_channel_error_unknown_channel_raises_not_found_10003(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.set_channel_error(DEFAULT_CHANNEL_ID, 404, 10003)
    async with connected_client(fake_discord) as (client, _):
        with pytest.raises(discord.NotFound) as caught:
            await client.get_partial_messageable(DEFAULT_CHANNEL_ID).send("x")
        with pytest.raises(discord.NotFound):
            await client.fetch_channel(DEFAULT_CHANNEL_ID)
    assert caught.value.code == 10003


async def test_send_without_send_permission_overwrite_raises_forbidden_50013() -> None:
    denied = FakeChannel(
        id=DEFAULT_CHANNEL_ID,
        permission_overwrites=[
            {"id": str(DEFAULT_GUILD_ID), "type": 0, "allow": "0", "deny": str(1 << 11)}
        ],
    )
    guild = FakeGuild(id=DEFAULT_GUILD_ID, channels=[denied], bot_permissions=0)
    async with running_fake_discord(guilds=[guild]) as fake, connected_client(fake) as (client, _):
        channel = client.get_channel(DEFAULT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        me = channel.guild.me
        assert not channel.permissions_for(me).send_messages
        with pytest.raises(discord.Forbidden) as caught:
            await channel.send("x")
    assert caught.value.code == 50013


async def test_content_over_2000_chars_raises_http_exception_50035(
    fake_discord: FakeDiscord,
) -> None:
    async with connected_client(fake_discord) as (client, _):
        with pytest.raises(discord.HTTPException) as caught:
            await client.get_partial_messageable(DEFAULT_CHANNEL_ID).send("x" * 2001)
    assert caught.value.status == 400 and caught.value.code == 50035
    assert fake_discord.messages == []


async def test_fetch_channel_returns_text_channel_in_guild(fake_discord: FakeDiscord) -> None:
    async with connected_client(fake_discord) as (client, _):
        channel = await client.fetch_channel(DEFAULT_CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    assert channel.guild.id == DEFAULT_GUILD_ID and channel.name == "alerts"


async def test_webhook_from_url_send_wait_true_and_false_are_recorded(
    fake_discord: FakeDiscord,
) -> None:
    url = f"https://discord.com/api/webhooks/{'9' * 18}/{'T' * 68}"
    async with aiohttp.ClientSession() as session:
        webhook = discord.Webhook.from_url(url, session=session)
        message = await webhook.send(
            "BTC A → B",
            username="Alerts",
            allowed_mentions=discord.AllowedMentions.none(),
            wait=True,
        )
        await webhook.send("ETH", wait=False)  # typed as returning None; the fake answers 204
    first, second = await fake_discord.wait_for_webhook_executions(2)
    assert first.webhook_id == int("9" * 18) and first.token == "T" * 68
    assert first.content == "BTC A → B" and first.username == "Alerts" and first.wait is True
    assert first.allowed_mentions == {"parse": []}
    assert message.id == first.message_id and message.webhook_id == first.webhook_id
    assert second.content == "ETH" and second.wait is False
    assert [r.status for r in fake_discord.requests_of("webhook")] == [200, 204]


async def test_deleted_webhook_raises_not_found_10015(fake_discord: FakeDiscord) -> None:
    hook = fake_discord.add_webhook()
    fake_discord.delete_webhook(hook.id)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(discord.NotFound) as caught:
            await discord.Webhook.from_url(hook.url, session=session).send("x")
    assert caught.value.code == 10015 and fake_discord.webhook_executions == []


async def test_guild_delete_injection_fires_on_guild_remove_and_channel_then_403(
    fake_discord: FakeDiscord,
) -> None:
    removed: asyncio.Future[discord.Guild] = asyncio.get_running_loop().create_future()

    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @client.event
        async def on_guild_remove(guild: discord.Guild) -> None:
            removed.set_result(guild)

    async with connected_client(fake_discord, setup) as (client, _):
        await fake_discord.inject_guild_delete(DEFAULT_GUILD_ID)
        guild = await asyncio.wait_for(removed, 5.0)
        assert client.get_guild(DEFAULT_GUILD_ID) is None
        with pytest.raises(discord.Forbidden) as caught:
            await client.get_partial_messageable(DEFAULT_CHANNEL_ID).send("x")
    assert guild.id == DEFAULT_GUILD_ID and caught.value.code == 50001


async def test_gateway_reconnect_op7_resumes_session_and_fires_on_resumed(
    fake_discord: FakeDiscord,
) -> None:
    resumed = asyncio.Event()

    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @client.event
        async def on_resumed() -> None:
            resumed.set()

        @tree.command(name="ping", description="Ping", guild=GUILD)
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

    async with connected_client(fake_discord, setup):
        await fake_discord.inject_reconnect()
        await asyncio.wait_for(resumed.wait(), 5.0)
        interaction = await fake_discord.inject_interaction("ping")
        callback = await fake_discord.wait_for_callback(interaction)
    [resume] = fake_discord.resumes
    assert resume["session_id"] and resume["seq"] >= 2 and resume["token"] == fake_discord.token
    assert len(fake_discord.identifies) == 1 and fake_discord.gateway_connects == 2
    assert callback.data is not None and callback.data["content"] == "pong"


async def test_gateway_drop_then_resume_replays_events_missed_while_disconnected(
    fake_discord: FakeDiscord,
) -> None:
    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @tree.command(name="ping", description="Ping", guild=GUILD)
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

    async with connected_client(fake_discord, setup):
        await fake_discord.drop_gateway(4000)
        missed = await fake_discord.inject_interaction("ping")
        callback = await fake_discord.wait_for_callback(missed)
    assert len(fake_discord.resumes) == 1 and len(fake_discord.identifies) == 1
    assert callback.data is not None and callback.data["content"] == "pong"


async def test_send_to_thread_records_message_and_dispatches_message_create() -> None:
    thread = FakeChannel(id=444444444444444445, name="btc", type=11, parent_id=DEFAULT_CHANNEL_ID)
    guild = FakeGuild(id=DEFAULT_GUILD_ID, channels=[FakeChannel(id=DEFAULT_CHANNEL_ID), thread])
    seen: asyncio.Queue[discord.Message] = asyncio.Queue()
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = True

    def setup(client: discord.Client, tree: app_commands.CommandTree[discord.Client]) -> None:
        @client.event
        async def on_message(message: discord.Message) -> None:
            seen.put_nowait(message)

    async with (
        running_fake_discord(guilds=[guild]) as fake,
        connected_client(fake, setup, intents) as (client, _),
    ):
        cached = client.get_guild(DEFAULT_GUILD_ID)
        assert cached is not None
        target = cached.get_thread(thread.id)
        assert target is not None
        sent = await target.send("thread alert")
        echoed = await asyncio.wait_for(seen.get(), 5.0)
    [recorded] = fake.messages_in(thread.id)
    assert recorded.content == "thread alert" and fake.messages_in(DEFAULT_CHANNEL_ID) == []
    assert echoed.id == sent.id and echoed.channel.id == thread.id


async def test_fail_next_429_is_retried_by_discordpy_and_counted(fake_discord: FakeDiscord) -> None:
    fake_discord.fail_next("create_message", status=429, retry_after=0.05)
    async with connected_client(fake_discord) as (client, _):
        await client.get_partial_messageable(DEFAULT_CHANNEL_ID).send("after 429")
    assert fake_discord.rate_limited == 1
    assert [m.content for m in fake_discord.messages] == ["after 429"]


# --- raw HTTP and gateway, with the injectable clock --------------------------------------------


async def test_create_message_sixth_in_window_gets_429_with_discord_headers() -> None:
    clock = ManualClock()
    async with FakeDiscord(clock=clock.monotonic) as fake, aiohttp.ClientSession() as session:
        for i in range(5):
            async with post_message(session, fake, {"content": str(i)}) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"] == "application/json"
                assert resp.headers["X-RateLimit-Limit"] == "5"
                assert resp.headers["X-RateLimit-Remaining"] == str(4 - i)
                assert float(resp.headers["X-RateLimit-Reset-After"]) == pytest.approx(5.0)
                assert resp.headers["X-RateLimit-Bucket"]
        clock.advance(1.0)
        async with post_message(session, fake, {"content": "6"}) as resp:
            body = await resp.json()
            assert resp.status == 429
            assert resp.headers["Content-Type"] == "application/json"
            assert resp.headers["Via"] == "1.1 google"
            assert resp.headers["X-RateLimit-Scope"] == "user"
            assert resp.headers["Retry-After"] == "4"
            assert "X-RateLimit-Global" not in resp.headers
        assert body == {
            "message": "You are being rate limited.",
            "retry_after": 4.0,
            "global": False,
        }
        assert len(fake.messages) == 5 and fake.rate_limited == 1
        clock.advance(4.0)
        async with post_message(session, fake, {"content": "6"}) as resp:
            assert resp.status == 200
    assert len(fake.messages) == 6


async def test_create_message_window_is_sliding_not_fixed() -> None:
    clock = ManualClock()
    async with FakeDiscord(clock=clock.monotonic) as fake, aiohttp.ClientSession() as session:
        async with post_message(session, fake, {"content": "t0"}) as resp:
            assert resp.status == 200
        clock.advance(4.0)
        for i in range(4):
            async with post_message(session, fake, {"content": f"t4-{i}"}) as resp:
                assert resp.status == 200
        clock.advance(1.0)  # t=5: only the t=0 message has left the window
        async with post_message(session, fake, {"content": "t5-a"}) as resp:
            assert resp.status == 200
        async with post_message(session, fake, {"content": "t5-b"}) as resp:
            assert resp.status == 429
            assert (await resp.json())["retry_after"] == pytest.approx(4.0)
        async with post_message(session, fake, {"content": "other"}, channel_id=1) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 10003


async def test_global_limit_51st_request_in_one_second_gets_global_429() -> None:
    clock = ManualClock()
    async with FakeDiscord(clock=clock.monotonic) as fake, aiohttp.ClientSession() as session:
        for _ in range(GLOBAL_LIMIT):
            async with session.get(f"{fake.api_base}/users/@me", headers=AUTH) as resp:
                assert resp.status == 200
        async with session.get(f"{fake.api_base}/users/@me", headers=AUTH) as resp:
            body = await resp.json()
            assert resp.status == 429
            assert resp.headers["X-RateLimit-Global"] == "true"
            assert resp.headers["X-RateLimit-Scope"] == "global"
            assert resp.headers["Via"] == "1.1 google"
        assert body["global"] is True and body["retry_after"] == pytest.approx(1.0)
        # Interaction callbacks are exempt: an unknown interaction is a 404, not a 429.
        async with session.post(
            f"{fake.api_base}/interactions/1/tok/callback", json={"type": 4}
        ) as resp:
            assert resp.status == 404
        clock.advance(1.0)
        async with session.get(f"{fake.api_base}/users/@me", headers=AUTH) as resp:
            assert resp.status == 200
    assert fake.rate_limited == 1


async def test_webhook_sixth_execution_in_two_seconds_gets_429_per_webhook() -> None:
    clock = ManualClock()
    async with FakeDiscord(clock=clock.monotonic) as fake, aiohttp.ClientSession() as session:
        first, other = fake.add_webhook(), fake.add_webhook()
        url = f"{fake.api_base}/webhooks/{first.id}/{first.token}"
        for _ in range(5):
            async with session.post(url, json={"content": "x"}) as resp:
                assert resp.status == 204
        async with session.post(url, json={"content": "x"}) as resp:
            assert resp.status == 429 and resp.headers["Via"] == "1.1 google"
            assert (await resp.json())["retry_after"] == pytest.approx(2.0)
        async with session.post(
            f"{fake.api_base}/webhooks/{other.id}/{other.token}?wait=true", json={"content": "y"}
        ) as resp:
            assert resp.status == 200 and (await resp.json())["webhook_id"] == str(other.id)
        async with session.post(
            f"{fake.api_base}/webhooks/{first.id}/wrong-token", json={"content": "x"}
        ) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == 50027
        clock.advance(2.0)
        async with session.post(url, json={"content": "x"}) as resp:
            assert resp.status == 204
    assert len(fake.webhook_executions) == 7 and fake.rate_limited_by_webhook[first.id] == 1


async def test_users_me_without_bot_token_gets_401_json(fake_discord: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_discord.api_base}/users/@me") as resp:
            assert resp.status == 401
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
        async with session.get(
            f"{fake_discord.api_base}/users/@me", headers={"Authorization": "Bot nope"}
        ) as resp:
            assert resp.status == 401
    assert fake_discord.invalid_requests == 2


async def test_gateway_hello_heartbeat_identify_send_ready_then_guild_create() -> None:
    guilds = [
        FakeDiscord.default_guild(),
        FakeGuild(id=333333333333333334, channels=[FakeChannel(id=5)]),
    ]
    async with FakeDiscord(guilds=guilds) as fake, raw_gateway(fake) as (ws, frames):
        hello, ready, *creates = frames
        await ws.send_json({"op": 1, "d": 2})
        ack = await ws.receive_json()
        identify = await fake.wait_ready()
    assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41250
    assert ack["op"] == 11
    assert ready["t"] == "READY" and ready["s"] == 1
    assert ready["d"]["resume_gateway_url"] == fake.gateway_url and ready["d"]["session_id"]
    assert ready["d"]["application"]["id"] == str(fake.application_id)
    assert all(g["unavailable"] for g in ready["d"]["guilds"])
    assert [c["t"] for c in creates] == ["GUILD_CREATE", "GUILD_CREATE"]
    assert [c["s"] for c in creates] == [2, 3]
    roles = creates[0]["d"]["roles"]
    assert roles[0]["id"] == str(DEFAULT_GUILD_ID) and roles[0]["name"] == "@everyone"
    assert identify["intents"] == 1


async def test_gateway_identify_with_wrong_token_closes_4004(fake_discord: FakeDiscord) -> None:
    async with raw_gateway(fake_discord, token="wrong") as (ws, _):
        msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4004
    assert fake_discord.identifies == []


async def test_interaction_callback_after_3_seconds_gets_10062_with_elapsed_recorded() -> None:
    clock = ManualClock()
    async with (
        FakeDiscord(clock=clock.monotonic) as fake,
        raw_gateway(fake) as (ws, _),
        aiohttp.ClientSession() as session,
    ):
        late = await fake.inject_interaction("ping")
        dispatched = await ws.receive_json()
        clock.advance(3.5)
        url = f"{fake.api_base}/interactions/{late.id}/{late.token}/callback?with_response=1"
        async with session.post(url, json={"type": 4, "data": {"content": "late"}}) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 10062
        on_time = await fake.inject_interaction("ping")
        clock.advance(2.0)
        url = f"{fake.api_base}/interactions/{on_time.id}/{on_time.token}/callback?with_response=1"
        async with session.post(
            url, json={"type": 4, "data": {"content": "ok", "flags": 64}}
        ) as resp:
            body = await resp.json()
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        async with session.post(url, json={"type": 4, "data": {"content": "again"}}) as resp:
            assert resp.status == 400 and (await resp.json())["code"] == 40060
    payload = dispatched["d"]
    for key in (
        "id",
        "application_id",
        "type",
        "token",
        "version",
        "attachment_size_limit",
        "channel",
        "member",
        "app_permissions",
        "entitlements",
        "authorizing_integration_owners",
        "context",
        "locale",
        "guild_locale",
        "data",
    ):
        assert key in payload
    assert dispatched["t"] == "INTERACTION_CREATE" and payload["data"]["guild_id"] == str(
        DEFAULT_GUILD_ID
    )
    assert fake.callback_log[0].elapsed == pytest.approx(3.5) and late.id not in fake.callbacks
    assert fake.callbacks[on_time.id].elapsed == pytest.approx(2.0)
    assert body["interaction"] == {
        "id": str(on_time.id),
        "type": 2,
        "response_message_loading": False,
        "response_message_ephemeral": True,
        "response_message_id": body["resource"]["message"]["id"],
    }
    assert body["resource"]["type"] == 4 and body["resource"]["message"]["content"] == "ok"


async def test_nonce_dedupe_returns_existing_within_window_then_expires() -> None:
    clock = ManualClock()
    body = {"content": "a", "nonce": "n-1", "enforce_nonce": True}
    async with (
        FakeDiscord(clock=clock.monotonic, enforce_limits=False) as fake,
        aiohttp.ClientSession() as session,
    ):
        async with post_message(session, fake, body) as resp:
            first = await resp.json()
        clock.advance(60.0)
        async with post_message(session, fake, body) as resp:
            again = await resp.json()
        async with post_message(session, fake, {"content": "a", "nonce": "n-1"}) as resp:
            unenforced = await resp.json()
        clock.advance(fake.nonce_window)
        async with post_message(session, fake, body) as resp:
            later = await resp.json()
    assert again["id"] == first["id"] and again["nonce"] == "n-1"
    assert unenforced["id"] != first["id"] and later["id"] != first["id"]
    assert len(fake.messages) == 3 and fake.nonce_dedupes == 1


async def test_fail_next_scripted_error_applies_once_then_succeeds(
    fake_discord: FakeDiscord,
) -> None:
    fake_discord.fail_next("get_channel", status=403, code=50013)
    async with aiohttp.ClientSession() as session:
        url = f"{fake_discord.api_base}/channels/{DEFAULT_CHANNEL_ID}"
        async with session.get(url, headers=AUTH) as resp:
            assert resp.status == 403
            assert await resp.json() == {"message": "Missing Permissions", "code": 50013}
        async with session.get(url, headers=AUTH) as resp:
            assert resp.status == 200 and (await resp.json())["guild_id"] == str(DEFAULT_GUILD_ID)


async def test_enforce_limits_off_allows_bursts_without_headers() -> None:
    async with FakeDiscord(enforce_limits=False) as fake, aiohttp.ClientSession() as session:
        for i in range(CREATE_MESSAGE_LIMIT + 3):
            async with post_message(session, fake, {"content": str(i)}) as resp:
                assert resp.status == 200 and "X-RateLimit-Limit" not in resp.headers
    assert len(fake.messages) == CREATE_MESSAGE_LIMIT + 3 and fake.rate_limited == 0


async def test_wait_for_messages_times_out_with_clear_error(fake_discord: FakeDiscord) -> None:
    with pytest.raises(TimeoutError, match="1 message"):
        await fake_discord.wait_for_messages(1, timeout=0.05)


async def test_patch_discord_urls_sets_and_restores_originals() -> None:
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        with patch_discord_urls(fake):
            assert fake.api_base == discord.http.Route.BASE
            assert yarl.URL(fake.gateway_url) == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
