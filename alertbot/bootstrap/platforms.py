"""Platform installers: each returns the notifiers, jobs and probes it adds.

A platform's client library is imported only when that platform is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from alertbot.bootstrap.parts import Installed
from alertbot.config import Settings
from alertbot.domain.address import ADDRESS_ID_PREFIX
from alertbot.observability.logs import Redactor
from alertbot.platforms.console import ConsoleNotifier
from alertbot.platforms.webhook import WebhookNotifier
from alertbot.ports.clock import Clock
from alertbot.ports.store import Store
from alertbot.services.buttons import ButtonCore
from alertbot.services.commands import CommandCore
from alertbot.services.pacing import Pacer

if TYPE_CHECKING:
    import aiohttp


def alert_buttons(store: Store, commands: CommandCore, clock: Clock) -> ButtonCore:
    """The Chart, Why and Mute buttons on alerts, shared by Telegram and Discord."""
    # The Chart button's answer for a token (a symbol or token id): what /chart answers.
    return ButtonCore(store, commands, clock, chart=commands.chart)


def install_builtin(clock: Clock, session: Callable[[], aiohttp.ClientSession],
                    webhook_secret: Callable[[], str | None]) -> Installed:
    """The console and outbound-webhook notifiers (always available)."""
    return Installed(notifiers={
        "console": ConsoleNotifier(clock=clock.now),
        "webhook": WebhookNotifier(session, secret=webhook_secret),
    })


def install_telegram(token: str, api_root: str, *, store: Store, clock: Clock,
                     commands: CommandCore, pacer: Pacer, redactor: Redactor,
                     on_rekey: Callable[[], None], buttons: ButtonCore | None = None,
                     webhook: tuple[str, str] | None = None) -> Installed:
    """The Telegram notifier and the command bot (a background job).

    With `webhook` (public URL, secret_token) the bot receives updates from the HTTP server
    instead of long polling.
    """
    from alertbot.platforms.telegram.commands import TelegramCommands, WebhookMode
    from alertbot.platforms.telegram.notifier import TelegramNotifier

    notifier = TelegramNotifier.connect(token, api_root, pacer=pacer, redactor=redactor,
                                        buttons=buttons)
    mode = WebhookMode(*webhook) if webhook is not None else None
    bot = TelegramCommands(commands, store, clock, token=token, api_root=api_root, pacer=pacer,
                           on_rekey=on_rekey, buttons=buttons, webhook=mode)
    url = mode.url if mode is not None else None

    async def check() -> str:
        return f"{await notifier.check()}, {await notifier.check_updates(url)}"

    return Installed(notifiers={"telegram": notifier}, jobs={"telegram": bot.run},
                     checks={"telegram": check}, health={"telegram": bot.health},
                     closers=[notifier.close, bot.stop],
                     receivers={"telegram": bot} if mode is not None else {})


async def install_discord(settings: Settings, *, store: Store, clock: Clock,
                          session: Callable[[], aiohttp.ClientSession],
                          commands: CommandCore, buttons: ButtonCore | None = None) -> Installed:
    """The Discord notifier (bot or webhook mode) and, with a bot token, the gateway bot."""
    token_value = settings.discord_bot_token
    token = token_value.get_secret_value() if token_value is not None else None
    if token is None and not await _has_discord_webhooks(store):
        return Installed()
    from alertbot.platforms.discord.bot import DiscordBot, check_discord, point_discord_at
    from alertbot.platforms.discord.notifier import DiscordNotifier

    point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
    guild_ids = settings.discord_guild_ids

    async def check() -> str:
        return await check_discord(store, token, guild_ids)

    if token is None:
        return Installed(notifiers={"discord": DiscordNotifier(session())},
                         checks={"discord": check})
    bot = DiscordBot(token, store, commands, clock, guild_ids=guild_ids, buttons=buttons)
    notifier = DiscordNotifier(session(), client=bot.client, login=bot.ensure_login,
                               buttons=buttons)
    return Installed(notifiers={"discord": notifier}, jobs={"discord": bot.run},
                     checks={"discord": check}, health={"discord": bot.health},
                     closers=[bot.close])


async def _has_discord_webhooks(store: Store) -> bool:
    # Checked without importing discord.py: a webhook destination's chat id is its address id.
    return any(i.destination.chat_id.startswith(ADDRESS_ID_PREFIX) for i in
               await store.destinations(platform="discord", with_address=True))
