"""Settings: defaults, validation with one line per problem, NAME_FILE secrets, no leaks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from alertbot.config import SECRET_VARIABLES, ConfigError, load_settings

CLEAN = ("ALERTBOT_", "TOKENMETRICS_", "TELEGRAM_", "DISCORD_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(CLEAN):
            monkeypatch.delenv(name)


def test_settings_defaults_run_the_demo() -> None:
    settings = load_settings(None)
    assert settings.use_demo
    assert settings.database_url == "sqlite:///alertbot.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.poll_interval is None and settings.secrets() == []


def test_settings_parse_durations_lists_and_demo_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTBOT_POLL_INTERVAL", "5m")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "123456789012345678, 223456789012345678")
    monkeypatch.setenv("ALERTBOT_DEMO", "1")
    monkeypatch.setenv("ALERTBOT_LOG_LEVEL", "debug")
    settings = load_settings(None)
    assert settings.poll_interval == timedelta(minutes=5)
    assert settings.discord_guild_ids == (123456789012345678, 223456789012345678)
    assert settings.use_demo and settings.log_level == "DEBUG"


@pytest.mark.parametrize(("variable", "value", "fragment"), [
    ("ALERTBOT_POLL_INTERVAL", "abc", "expected seconds"),
    ("ALERTBOT_POLL_INTERVAL", "0.01", "at least 0.1"),
    ("ALERTBOT_HTTP_PORT", "-1", "greater than or equal"),
    ("ALERTBOT_LOG_FORMAT", "xml", "text"),
    ("ALERTBOT_DATABASE_URL", "mysql://x", "sqlite:///"),
    ("ALERTBOT_OPS_DESTINATION", "slack:1", "telegram:CHAT_ID"),
    ("TOKENMETRICS_BASE_URL", "ftp://x", "http"),
    ("TOKENMETRICS_MONTHLY_CALLS", "0", "greater than or equal"),
    ("DISCORD_GATEWAY_URL", "https://x", "ws://"),
    ("DISCORD_GUILD_IDS", "1,2", "guild ids"),
])
def test_settings_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                               value: str, fragment: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None)
    (problem,) = excinfo.value.problems
    assert problem.startswith(f"{variable}: ") and fragment in problem


def test_settings_secret_values_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "hunter2 hunter2")
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "has space hunter3")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None)
    text = str(excinfo.value)
    assert "hunter2" not in text and "hunter3" not in text
    assert len(excinfo.value.problems) == 2


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_settings_secret_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   variable: str) -> None:
    value = "123456:ABC-def_ghi" if variable == "TELEGRAM_BOT_TOKEN" else "s3cret-value"
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    monkeypatch.setenv(f"{variable}_FILE", str(path))
    settings = load_settings(None)
    assert settings.secrets() == [value]
    assert value not in repr(settings)


def test_settings_secret_and_file_together_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    (tmp_path / "k").write_text("a")
    monkeypatch.setenv("TOKENMETRICS_API_KEY", "b")
    monkeypatch.setenv("TOKENMETRICS_API_KEY_FILE", str(tmp_path / "k"))
    with pytest.raises(ConfigError, match="either TOKENMETRICS_API_KEY or"):
        load_settings(None)


def test_settings_read_dotenv_and_environment_wins(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("ALERTBOT_HTTP_PORT=9001\nALERTBOT_LOG_FORMAT=json\n")
    monkeypatch.setenv("ALERTBOT_HTTP_PORT", "9002")
    settings = load_settings(env_file)
    assert (settings.http_port, settings.log_format) == (9002, "json")


def test_settings_demo_off_needs_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTBOT_DEMO", "0")
    with pytest.raises(ConfigError, match="TOKENMETRICS_API_KEY"):
        load_settings(None)


def test_settings_ops_destination_needs_its_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTBOT_OPS_DESTINATION", "discord:123")
    with pytest.raises(ConfigError, match="DISCORD_BOT_TOKEN"):
        load_settings(None)


def test_settings_http_limits_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(None)
    assert settings.http_max_connections == 256
    assert settings.http_read_timeout == timedelta(seconds=10)
    monkeypatch.setenv("ALERTBOT_HTTP_MAX_CONNECTIONS", "50")
    monkeypatch.setenv("ALERTBOT_HTTP_READ_TIMEOUT", "2.5s")
    settings = load_settings(None)
    assert settings.http_max_connections == 50
    assert settings.http_read_timeout == timedelta(seconds=2.5)


@pytest.mark.parametrize(("variable", "value", "fragment"), [
    ("ALERTBOT_HTTP_MAX_CONNECTIONS", "0", "greater than or equal to 1"),
    ("ALERTBOT_HTTP_MAX_CONNECTIONS", "lots", "valid integer"),
    ("ALERTBOT_HTTP_READ_TIMEOUT", "soon", "expected seconds or a duration"),
    ("ALERTBOT_HTTP_READ_TIMEOUT", "inf", "expected seconds or a duration"),
    ("ALERTBOT_HTTP_READ_TIMEOUT", "0.01", "between 0.1 seconds and 1 hour"),
    ("ALERTBOT_HTTP_READ_TIMEOUT", "2h", "between 0.1 seconds and 1 hour"),
])
def test_settings_bad_http_limit_names_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                    variable: str, value: str,
                                                    fragment: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None)
    (problem,) = excinfo.value.problems
    assert problem.startswith(f"{variable}: ") and fragment in problem, problem


# ------------------------------------------------------------------ Telegram webhook mode

TOKEN = "123456:ABC-def_ghi"


@pytest.mark.parametrize(("url", "fragment"), [
    ("ftp://bot.example.com/tg", "expected an https:// URL"),
    ("http://bot.example.com/tg", "only to https://"),
    ("https://bot.example.com:8080/tg", "ports 443, 80, 88, 8443, not 8080"),
    ("https://bot.example.com", "needs a path"),
    ("https://bot.example.com/", "needs a path"),
    ("https://bot.example.com/healthz", "already one of the server's endpoints"),
    ("https://bot.example.com:x/tg", "port is not a number"),
    ("https://user:pw@bot.example.com/tg", "credentials"),
])
def test_settings_telegram_webhook_url_bad_value_one_line(
        monkeypatch: pytest.MonkeyPatch, url: str, fragment: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", url)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None)
    (problem,) = excinfo.value.problems
    assert problem.startswith("TELEGRAM_WEBHOOK_URL: ") and fragment in problem
    assert "pw" not in problem


@pytest.mark.parametrize(("url", "path"), [
    ("https://bot.example.com/telegram", "/telegram"),
    ("https://bot.example.com:8443/tg/hook?x=1", "/tg/hook"),
    ("http://127.0.0.1:45678/telegram", "/telegram"),
    ("http://localhost:1/t", "/t"),
    ("http://[::1]:9/t", "/t"),
])
def test_settings_telegram_webhook_url_accepted_path_is_local_route(
        monkeypatch: pytest.MonkeyPatch, url: str, path: str) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", url)
    settings = load_settings(None)
    assert (settings.telegram_webhook_url, settings.telegram_webhook_path) == (url, path)


def test_settings_telegram_webhook_needs_bot_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/telegram")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None)
    assert excinfo.value.problems == ["TELEGRAM_WEBHOOK_URL needs TELEGRAM_BOT_TOKEN"]


def test_settings_telegram_webhook_needs_http_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/telegram")
    monkeypatch.setenv("ALERTBOT_HTTP_PORT", "0")
    with pytest.raises(ConfigError, match="ALERTBOT_HTTP_PORT is 0"):
        load_settings(None)


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "x" * 257])
def test_settings_telegram_webhook_secret_bad_value_not_echoed(
        monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(None)
    (problem,) = excinfo.value.problems
    assert problem.startswith("TELEGRAM_WEBHOOK_SECRET: expected 1-256 characters")
    assert secret not in problem


def test_settings_telegram_webhook_secret_derived_from_token_when_unset(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    polling = load_settings(None)
    assert polling.telegram_webhook_token() is None
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/telegram")
    derived = load_settings(None).telegram_webhook_token()
    assert derived is not None
    value = derived.get_secret_value()
    assert len(value) == 64 and TOKEN not in value
    assert load_settings(None).telegram_webhook_token() == derived, "every replica agrees"
    assert value in load_settings(None).secrets(), "redacted like any secret"
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "chosen-secret_1")
    chosen = load_settings(None)
    token = chosen.telegram_webhook_token()
    assert token is not None and token.get_secret_value() == "chosen-secret_1"
    assert "chosen-secret_1" not in repr(chosen)
