"""Settings from environment variables and `.env`; built once in main() and passed down.

Every secret also accepts NAME_FILE (a path whose contents are the value). Secrets are
SecretStr: they never appear in reprs, logs, errors or `alertbot check` output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from alertbot.domain.address import is_loopback
from alertbot.domain.parsing import parse_duration
from alertbot.domain.signing import derive_secret

SECRET_VARIABLES = (
    "ALERTBOT_WEBHOOK_SECRET",
    "TOKENMETRICS_API_KEY",
    "TELEGRAM_BOT_TOKEN",
    "DISCORD_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
)
_TELEGRAM_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
_OPS_DESTINATION = re.compile(r"^(telegram|discord):(-?\d{1,20}|@[A-Za-z0-9_]{5,32})$")
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
TELEGRAM_WEBHOOK_PORTS = (443, 80, 88, 8443)
"""The only ports Telegram delivers webhooks to."""
TELEGRAM_WEBHOOK_PURPOSE = "telegram-webhook"
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics", "/hooks/signals")
"""Paths the HTTP server already answers (alertbot.http.server)."""
_WATCH_ENTRY = re.compile(r"^[A-Z0-9$._-]{1,20}$")
DEFAULT_WATCHLIST = (
    "BTC", "ETH", "BNB", "SOL", "XRP", "DOGE", "ADA", "TRX", "AVAX", "LINK",
    "TON", "DOT", "LTC", "BCH", "SHIB", "XLM", "SUI", "NEAR", "UNI", "APT",
)
"""Large, well-known tokens (stablecoins left out): what `all` covers by default."""
MAX_WATCHLIST = 500


class ConfigError(Exception):
    """Invalid configuration: one line per problem, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _FileSecretsSource(PydanticBaseSettingsSource):
    """Reads NAME_FILE for each secret NAME, from the environment or `.env`."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str | None]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: values come from __call__."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name in SECRET_VARIABLES:
            path = self._env.get(f"{name}_FILE")
            if not path:
                continue
            if self._env.get(name):
                problems.append(f"{name}: set either {name} or {name}_FILE, not both")
                continue
            try:
                values[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(f"{name}_FILE: cannot read {path}: {exc.strerror or exc}")
        if problems:
            raise ConfigError(problems)
        return values


def _dotenv_values(path: Path | None) -> dict[str, str | None]:
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values  # pydantic-settings' own dependency

    return dict(dotenv_values(path))


class Settings(BaseSettings):
    """Every configuration variable of alertbot."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True,
        validate_default=True, hide_input_in_errors=True,
    )

    database_url: str = Field("sqlite:///alertbot.db", alias="ALERTBOT_DATABASE_URL")
    poll_interval: timedelta | None = Field(None, alias="ALERTBOT_POLL_INTERVAL")
    http_host: str = Field("127.0.0.1", alias="ALERTBOT_HTTP_HOST")
    http_port: int = Field(8080, alias="ALERTBOT_HTTP_PORT", ge=0, le=65535)
    http_max_connections: int = Field(256, alias="ALERTBOT_HTTP_MAX_CONNECTIONS", ge=1,
                                      le=100_000)
    """Open HTTP connections at once; a new one over the cap closes the oldest."""
    http_read_timeout: timedelta = Field(timedelta(seconds=10), alias="ALERTBOT_HTTP_READ_TIMEOUT")
    """Time a client has to send a request's headers, and then its body."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="ALERTBOT_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="ALERTBOT_LOG_FORMAT")
    webhook_secret: SecretStr | None = Field(None, alias="ALERTBOT_WEBHOOK_SECRET")
    ops_destination: str | None = Field(None, alias="ALERTBOT_OPS_DESTINATION")
    demo: bool | None = Field(None, alias="ALERTBOT_DEMO")
    demo_speed: float = Field(1800.0, alias="ALERTBOT_DEMO_SPEED", gt=0, le=1_000_000)
    min_delta: float = Field(10.0, alias="ALERTBOT_MIN_DELTA", ge=0, le=100)
    hysteresis: float = Field(2.0, alias="ALERTBOT_HYSTERESIS", ge=0, le=20)
    retention_days: int = Field(30, alias="ALERTBOT_RETENTION_DAYS", ge=0, le=3650)
    """Days of decisions, finished outbox rows and old changes kept; 0 keeps everything."""

    tokenmetrics_api_key: SecretStr | None = Field(None, alias="TOKENMETRICS_API_KEY")
    tokenmetrics_base_url: str = Field("https://api.tokenmetrics.com/v2",
                                       alias="TOKENMETRICS_BASE_URL")
    tokenmetrics_monthly_calls: int = Field(10_000, alias="TOKENMETRICS_MONTHLY_CALLS", ge=1,
                                            le=100_000_000)
    tokenmetrics_watchlist: Annotated[tuple[str, ...], NoDecode] = Field(
        DEFAULT_WATCHLIST, alias="TOKENMETRICS_WATCHLIST")

    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_URL")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    """Public URL Telegram posts updates to; unset = long polling."""
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    discord_bot_token: SecretStr | None = Field(None, alias="DISCORD_BOT_TOKEN")
    discord_api_url: str = Field("https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_gateway_url: str = Field("wss://gateway.discord.gg/", alias="DISCORD_GATEWAY_URL")
    discord_guild_ids: Annotated[tuple[int, ...], NoDecode] = Field((), alias="DISCORD_GUILD_IDS")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment, then `.env`, then NAME_FILE secrets."""
        env_file = None
        if isinstance(dotenv_settings, DotEnvSettingsSource) and dotenv_settings.env_file:
            first = dotenv_settings.env_file
            env_file = Path(first if isinstance(first, str | Path) else next(iter(first)))
        merged: dict[str, str | None] = {**_dotenv_values(env_file), **os.environ}
        return (init_settings, env_settings, dotenv_settings,
                _FileSecretsSource(settings_cls, merged))

    # ---------------------------------------------------------------- validators

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("sqlite:///") and len(value) > len("sqlite:///"):
            return value
        if value.startswith(("postgresql://", "postgres://")):
            raise ValueError("PostgreSQL is not supported yet; use sqlite:///PATH")
        raise ValueError("expected sqlite:///PATH (e.g. sqlite:///alertbot.db)")

    @field_validator("poll_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, timedelta):
            return value
        try:
            interval = parse_duration(str(value))
        except ValueError:
            raise ValueError(
                f"expected seconds or a duration such as 60, 90s or 5m, got {str(value)[:20]!r}"
            ) from None
        if interval < timedelta(seconds=0.1):
            raise ValueError("must be at least 0.1 seconds")
        return interval

    @field_validator("http_read_timeout", mode="before")
    @classmethod
    def _read_timeout(cls, value: Any) -> Any:
        if isinstance(value, timedelta):
            return value
        try:
            timeout = parse_duration(str(value))
        except (ValueError, OverflowError):
            raise ValueError(
                f"expected seconds or a duration such as 10, 10s or 1m, got {str(value)[:20]!r}"
            ) from None
        if not timedelta(seconds=0.1) <= timeout <= timedelta(hours=1):
            raise ValueError("must be between 0.1 seconds and 1 hour")
        return timeout

    @field_validator("demo", mode="before")
    @classmethod
    def _demo(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("", "auto"):
            return None
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected 1, 0 or auto, got {str(value)[:10]!r}")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return value.strip().upper() if value.strip().upper() in (
            "DEBUG", "INFO", "WARNING", "ERROR") else value.strip().lower()

    @field_validator("tokenmetrics_base_url", "telegram_api_url", "discord_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s):// URL")
        return value.strip().rstrip("/")

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError("expected a ws:// or wss:// URL")
        return value.strip()

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _guild_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            items = [p.strip() for p in value.split(",") if p.strip()]
            bad = [p for p in items if not p.isdigit() or not 15 <= len(p) <= 21]
            if bad:
                raise ValueError(f"expected comma-separated guild ids, got {bad[0][:25]!r}")
            return tuple(int(p) for p in items)
        return value

    @field_validator("tokenmetrics_watchlist", mode="before")
    @classmethod
    def _watchlist(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        items = [p.strip().lstrip("$").upper() for p in value.split(",") if p.strip()]
        if not items:
            return DEFAULT_WATCHLIST
        bad = [p for p in items if not _WATCH_ENTRY.match(p)]
        if bad:
            raise ValueError(f"expected comma-separated symbols or token ids, got {bad[0][:25]!r}")
        unique = tuple(dict.fromkeys(items))
        if len(unique) > MAX_WATCHLIST:
            raise ValueError(f"at most {MAX_WATCHLIST} entries, got {len(unique)}")
        return unique

    @field_validator("ops_destination")
    @classmethod
    def _ops(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not _OPS_DESTINATION.match(value.strip()):
            raise ValueError("expected telegram:CHAT_ID or discord:CHANNEL_ID")
        return value.strip()

    @field_validator("telegram_bot_token")
    @classmethod
    def _telegram_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not _TELEGRAM_TOKEN.match(value.get_secret_value().strip()):
            raise ValueError("does not look like a bot token from @BotFather (digits:letters)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("telegram_webhook_url")
    @classmethod
    def _telegram_webhook_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip()
        parts = urlsplit(text)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError("the port is not a number") from None
        if parts.scheme not in ("https", "http") or not host:
            raise ValueError("expected an https:// URL, e.g. https://bot.example.com/telegram")
        local = is_loopback(host)
        if parts.scheme == "http" and not local:
            raise ValueError("Telegram delivers only to https:// URLs (plain http:// is "
                             "accepted for loopback addresses, for tests)")
        if not local and port is not None and port not in TELEGRAM_WEBHOOK_PORTS:
            ports = ", ".join(str(p) for p in TELEGRAM_WEBHOOK_PORTS)
            raise ValueError(f"Telegram delivers only to ports {ports}, not {port}")
        if parts.username or parts.password:
            raise ValueError("credentials in the URL are not supported")
        if parts.path in ("", "/"):
            raise ValueError("needs a path, e.g. https://bot.example.com/telegram: the HTTP "
                             "server receives updates on that path")
        if parts.path.rstrip("/") in RESERVED_PATHS:
            raise ValueError(f"the path {parts.path} is already one of the server's endpoints "
                             f"({', '.join(RESERVED_PATHS)})")
        return text

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value().strip()
        if not _WEBHOOK_SECRET.match(text):
            raise ValueError("expected 1-256 characters of A-Z, a-z, 0-9, _ and - (what "
                             "Telegram accepts as secret_token)")
        return SecretStr(text)

    @field_validator("tokenmetrics_api_key", "discord_bot_token", "webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value().strip()
        if any(c.isspace() for c in text):
            raise ValueError("must not contain whitespace")
        return SecretStr(text)

    @model_validator(mode="after")
    def _combination(self) -> Settings:
        if self.demo is False and self.tokenmetrics_api_key is None:
            raise ValueError("ALERTBOT_DEMO=0 needs TOKENMETRICS_API_KEY")
        if self.ops_destination:
            platform = self.ops_destination.split(":", 1)[0]
            token = self.telegram_bot_token if platform == "telegram" else self.discord_bot_token
            if token is None:
                raise ValueError(f"ALERTBOT_OPS_DESTINATION uses {platform} but "
                                 f"{platform.upper()}_BOT_TOKEN is not set")
        if self.telegram_webhook_url:
            if self.telegram_bot_token is None:
                raise ValueError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_BOT_TOKEN")
            if not self.http_port:
                raise ValueError("TELEGRAM_WEBHOOK_URL needs the HTTP server, but "
                                 "ALERTBOT_HTTP_PORT is 0")
        return self

    # ---------------------------------------------------------------- derived

    @property
    def use_demo(self) -> bool:
        """Whether the bundled demo source replaces the Token Metrics API."""
        return self.demo if self.demo is not None else self.tokenmetrics_api_key is None

    @property
    def telegram_webhook_path(self) -> str | None:
        """The local path webhook updates arrive on (that of TELEGRAM_WEBHOOK_URL)."""
        if not self.telegram_webhook_url:
            return None
        return urlsplit(self.telegram_webhook_url).path

    def telegram_webhook_token(self) -> SecretStr | None:
        """The secret_token of webhook mode: TELEGRAM_WEBHOOK_SECRET, else derived.

        Derived from the bot token, so every replica agrees on it without configuration.
        None in long-polling mode.
        """
        if not self.telegram_webhook_url or self.telegram_bot_token is None:
            return None
        if self.telegram_webhook_secret is not None:
            return self.telegram_webhook_secret
        return SecretStr(derive_secret(self.telegram_bot_token.get_secret_value(),
                                       TELEGRAM_WEBHOOK_PURPOSE))

    def secrets(self) -> list[str]:
        """Values of every configured secret (for log redaction)."""
        found = []
        for value in (self.webhook_secret, self.tokenmetrics_api_key, self.telegram_bot_token,
                      self.discord_bot_token, self.telegram_webhook_secret):
            if value is not None:
                found.append(value.get_secret_value())
        derived = self.telegram_webhook_token()
        if derived is not None and derived.get_secret_value() not in found:
            found.append(derived.get_secret_value())
        return found


_ALIASES = {name: info.alias or name for name, info in Settings.model_fields.items()}


def load_settings(env_file: Path | None = Path(".env"), **overrides: Any) -> Settings:
    """Build Settings, turning every problem into one line that names its variable."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError([_describe(err) for err in exc.errors()]) from None
    except SettingsError as exc:
        raise ConfigError([str(exc)]) from None


def _describe(err: Any) -> str:
    loc = [str(part) for part in err.get("loc", ())]
    variable = _ALIASES.get(loc[0], loc[0]) if loc else ""
    message = str(err.get("msg", "invalid value"))
    message = re.sub(r"^(Value error|Assertion failed), ", "", message)
    if not variable:
        # Cross-field problems name their variables in the message.
        return message
    return f"{variable}: {message}"



