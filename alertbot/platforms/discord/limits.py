"""Discord's rate limits, each with where the number comes from."""

from __future__ import annotations

from alertbot.ports.notifier import Limit

# Discord rate-limits topic: 50 requests per second per bot (documented); create-message is
# commonly observed at 5 per 5 seconds per channel (X-RateLimit-Limit: 5; not documented).
DISCORD_GLOBAL = Limit("discord_global", 50, 1.0, "Discord docs: 50 requests per second",
                       shared=True)
DISCORD_PER_CHANNEL = Limit("discord_channel", 5, 5.0,
                            "observed X-RateLimit-Limit 5 per 5 s on create-message")
# Discord incoming webhooks: commonly observed 5 requests per 2 seconds per webhook.
DISCORD_PER_WEBHOOK = Limit("discord_webhook", 5, 2.0, "observed 5 per 2 s per webhook")
