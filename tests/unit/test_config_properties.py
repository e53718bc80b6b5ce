"""Properties: any environment values give Settings or a ConfigError naming the problem."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertbot.config import ConfigError, Settings, load_settings

# *_FILE variables are left out: an arbitrary path could name a device that never ends.
VARIABLES = [
    "ALERTBOT_DATABASE_URL", "ALERTBOT_POLL_INTERVAL", "ALERTBOT_HTTP_HOST",
    "ALERTBOT_HTTP_PORT", "ALERTBOT_LOG_LEVEL", "ALERTBOT_LOG_FORMAT",
    "ALERTBOT_WEBHOOK_SECRET", "ALERTBOT_OPS_DESTINATION", "ALERTBOT_DEMO",
    "ALERTBOT_DEMO_SPEED", "ALERTBOT_MIN_DELTA", "ALERTBOT_HYSTERESIS",
    "ALERTBOT_RETENTION_DAYS", "TOKENMETRICS_API_KEY", "TOKENMETRICS_BASE_URL",
    "TOKENMETRICS_MONTHLY_CALLS", "TOKENMETRICS_WATCHLIST", "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_URL", "DISCORD_BOT_TOKEN", "DISCORD_API_URL", "DISCORD_GATEWAY_URL",
    "DISCORD_GUILD_IDS",
]
MARKER = "s3cr3t-marker"


def _secret(name: str) -> bool:
    return any(word in name for word in ("SECRET", "_TOKEN", "API_KEY"))


values = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
            max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats().map(repr),
    st.sampled_from(["inf", "nan", "1e400", "²", "0", "-1", "65536", "99999999999999999999",
                     "telegram:", "discord:²", "http://", "sqlite:///", "1,²,3", " "]),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(env=st.dictionaries(st.sampled_from(VARIABLES), values, max_size=4))
def test_load_settings_any_values_settings_or_config_error(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Secrets carry a marker, so an error quoting one is caught whatever else it quotes.
    env = {name: f"{MARKER}{value}" if _secret(name) else value for name, value in env.items()}
    try:
        loaded = load_settings(env_file=None, **env)
    except ConfigError as exc:
        assert exc.problems and all(line.strip() for line in exc.problems)
        assert MARKER not in str(exc)
        return
    assert isinstance(loaded, Settings)
