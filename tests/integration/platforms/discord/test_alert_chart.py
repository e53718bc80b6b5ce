"""A grade alert with its chart: DiscordNotifier (real discord.py) attaches it to the embed."""

from __future__ import annotations

from dataclasses import replace

from alertbot.domain.models import ChartImage, Destination
from alertbot.domain.render import render_change
from alertbot.ports.notifier import Target
from tests.fakes.discord_api import DEFAULT_CHANNEL_ID, FakeDiscord
from tests.integration.platforms.discord.support import notifier_for
from tests.integration.platforms.telegram.test_alert_chart import chart, upgrade

CHANNEL = Destination("discord", str(DEFAULT_CHANNEL_ID))
KEY = "d" + "k" * 23


async def test_discord_grade_alert_with_chart_is_one_embed_with_the_png_attached(
        fake_discord: FakeDiscord) -> None:
    image = chart()
    message = replace(render_change(upgrade()), image=image)

    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), message, key=KEY, silent=False)

    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    [embed] = recorded.embeds
    assert embed["image"]["url"] == "attachment://btc-grades.png"
    assert recorded.attachments == ["btc-grades.png"]
    assert fake_discord.uploads == [("btc-grades.png", image.png)]
    assert recorded.nonce is not None  # still sent exactly once by nonce


async def test_discord_alert_without_chart_uploads_nothing(fake_discord: FakeDiscord) -> None:
    async with notifier_for(fake_discord) as notifier:
        await notifier.send(Target(CHANNEL), render_change(upgrade()), key=KEY, silent=False)

    [recorded] = fake_discord.messages_in(DEFAULT_CHANNEL_ID)
    assert "image" not in recorded.embeds[0]
    assert fake_discord.uploads == []


async def test_discord_oversized_upload_is_refused_by_the_fake_like_discord(
        fake_discord: FakeDiscord) -> None:
    huge = ChartImage(b"\x89PNG" + b"\0" * (10 * 1024 * 1024 + 1), "big", "big.png")
    message = replace(render_change(upgrade()), image=huge)

    async with notifier_for(fake_discord) as notifier:
        try:
            await notifier.send(Target(CHANNEL), message, key=KEY, silent=False)
        except Exception as exc:  # DeliveryError: the adapter translated discord.py's error
            assert "413" in str(exc) or "too large" in str(exc).lower()
        else:
            raise AssertionError("an upload over 10 MB must be refused")
    assert fake_discord.messages_in(DEFAULT_CHANNEL_ID) == []
