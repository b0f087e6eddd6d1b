"""Service configuration, read from the environment (and an optional .env file)."""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from cryptography.fernet import Fernet
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from calendly_svc.calendly.scopes import NEEDED_SCOPES, SCOPE_PATTERN, parse_scopes

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    """Turn 'a, b,,c' into ['a', 'b', 'c']; lists pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _strip_slash(value: str) -> str:
    """Validate an http(s) base URL and drop its trailing slash."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


def _postgres_url(value: str) -> str:
    """Only PostgreSQL URLs are accepted."""
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("must be a postgresql:// URL")
    return value


def _split_required(value: object) -> object:
    """Comma-separated list; at least one entry."""
    items = _split_commas(value)
    if isinstance(items, list) and not items:
        raise ValueError("must not be empty")
    return items


def _fernet_keys(value: list[str]) -> list[str]:
    """Every key must be a Fernet key; the first one encrypts."""
    for key in value:
        try:
            Fernet(key.encode())
        except ValueError:
            raise ValueError("not a Fernet key (32 url-safe base64-encoded bytes)") from None
    return value


PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]
RequiredList = Annotated[list[str], NoDecode, BeforeValidator(_split_required)]
FernetKeys = Annotated[RequiredList, AfterValidator(_fernet_keys)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["json", "console"] | None
ENV_CONFIG = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)


class DatabaseSettings(BaseSettings):
    """What `migrate` reads: the database and how to log, nothing else."""

    model_config = ENV_CONFIG

    database_url: PostgresUrl
    log_level: LogLevel = "INFO"
    log_format: LogFormat = None


class KeySettings(DatabaseSettings):
    """What `rotate-keys` reads: the database and the encryption keys."""

    token_encryption_key: FernetKeys


class Settings(BaseSettings):
    """Everything the service reads from its environment (`serve` and `worker`)."""

    model_config = ENV_CONFIG

    database_url: PostgresUrl
    calendly_client_id: str = Field(min_length=1)
    calendly_client_secret: SecretStr
    calendly_webhook_signing_key: SecretStr
    backend_url: str
    calendly_api_base_url: str = "https://api.calendly.com"
    calendly_auth_base_url: str = "https://auth.calendly.com"
    service_api_tokens: RequiredList
    token_encryption_key: FernetKeys
    oauth_success_redirect_url: str | None = None
    oauth_complete_url: str | None = None
    oauth_redirect_uris: CommaList = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    sandbox_port: int = Field(default=8081, ge=0, le=65535)
    sandbox_public_url: str | None = None
    log_level: LogLevel = "INFO"
    log_format: LogFormat = None
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=10, ge=1)
    calendly_timeout_seconds: float = Field(default=30.0, gt=0)
    calendly_max_retries: int = Field(default=5, ge=0)
    calendly_retry_base_seconds: float = Field(default=0.5, gt=0)
    calendly_rate_limit: int = Field(default=500, ge=1)
    calendly_max_reset_wait_seconds: float = Field(default=120.0, gt=0)
    token_refresh_margin_seconds: int = Field(default=300, ge=0)
    oauth_state_ttl_seconds: int = Field(default=600, ge=60)
    webhook_max_age_seconds: float = Field(default=180.0, gt=0)
    webhook_max_future_seconds: float = Field(default=60.0, ge=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_wake_interval_seconds: float = Field(default=0.01, ge=0)
    webhook_log_retention_days: int = Field(default=30, ge=0)
    sync_log_retention_days: int = Field(default=90, ge=0)
    outbox_retention_days: int = Field(default=7, ge=0)
    worker_enabled: bool = True
    worker_lease_seconds: float = Field(default=60.0, gt=0)
    worker_poll_seconds: float = Field(default=5.0, gt=0)
    worker_batch_size: int = Field(default=20, ge=1)
    worker_max_batch_size: int = Field(default=200, ge=1)
    worker_concurrency: int = Field(default=4, ge=1)
    worker_shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    sync_interval_seconds: float = Field(default=900.0, gt=0)
    sync_schedule_check_seconds: float = Field(default=30.0, gt=0)
    sync_concurrency: int = Field(default=8, ge=1)
    sync_jobs_per_worker: int = Field(default=2, ge=1)
    calendly_rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    main_app_webhook_url: str | None = None
    main_app_webhook_secret: SecretStr | None = None
    outbox_max_attempts: int = Field(default=25, ge=1)
    outbox_timeout_seconds: float = Field(default=10.0, gt=0)
    calendly_scopes: CommaList = Field(default_factory=lambda: list(NEEDED_SCOPES))
    reschedule_half_wait_seconds: float = Field(default=30.0, gt=0, le=3600)
    erasure_tombstone_keys: CommaList = Field(default_factory=list)
    body_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    inbox_flushers: int = Field(default=1, ge=1, le=8)
    probe_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    webhook_health_interval_seconds: float = Field(default=300.0, gt=0, le=86_400)
    action_retention_hours: int = Field(default=48, ge=24)
    available_times_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    action_wait_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("oauth_redirect_uris", "erasure_tombstone_keys", mode="before")
    @classmethod
    def _split_optional(cls, value: object) -> object:
        """Comma-separated list, possibly empty."""
        return _split_commas(value)

    @field_validator("calendly_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: object) -> object:
        """Space- or comma-separated `<domain>:read|write` scopes; at least one."""
        items = parse_scopes(value) if isinstance(value, str) else value
        if isinstance(items, list):
            if not items:
                raise ValueError("must name at least one scope")
            if bad := [item for item in items if not SCOPE_PATTERN.fullmatch(str(item))]:
                raise ValueError(f"not a Calendly scope: {', '.join(map(str, bad))}")
        return items

    @field_validator(
        "oauth_success_redirect_url", "oauth_complete_url", "main_app_webhook_url", mode="before"
    )
    @classmethod
    def _optional_url(cls, value: object) -> object:
        """An empty value means unset; anything else must be an http(s) URL."""
        if value in ("", None):
            return None
        if not str(value).startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("sandbox_public_url", mode="before")
    @classmethod
    def _sandbox_public_url(cls, value: object) -> object:
        """Empty means unset (the dev sandbox's own URL); else an http(s) base URL."""
        return None if value in ("", None) else _strip_slash(str(value))

    @field_validator("backend_url", "calendly_api_base_url", "calendly_auth_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        """Base URLs are http(s) and carry no trailing slash."""
        return _strip_slash(value)

    @field_validator("webhook_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        """0 keeps the log forever; otherwise Calendly's 24 hours of retries must fit, so that a
        redelivery still finds the delivery it repeats."""
        if value == 1:
            raise ValueError("must be 0 (keep forever) or at least 2 days")
        return value

    @model_validator(mode="after")
    def _notification_secret(self) -> Settings:
        """Notifications are always signed: a URL needs its secret."""
        if self.main_app_webhook_url and not self.main_app_webhook_secret:
            raise ValueError("MAIN_APP_WEBHOOK_SECRET is required with MAIN_APP_WEBHOOK_URL")
        return self

    @property
    def oauth_callback_url(self) -> str:
        """The browser callback registered as the default OAuth redirect URI."""
        return f"{self.backend_url}/api/v1/calendly/oauth/callback"

    @property
    def oauth_forward_url(self) -> str | None:
        """The main app's page the browser callback forwards code and state to (the deprecated
        OAUTH_SUCCESS_REDIRECT_URL stands in for OAUTH_COMPLETE_URL)."""
        return self.oauth_complete_url or self.oauth_success_redirect_url

    @property
    def webhook_base_url(self) -> str:
        """Where Calendly delivers webhooks for this service."""
        return f"{self.backend_url}/api/v1/calendly/webhook"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it."""


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad setting by its environment variable."""
    parts = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else ""
        reason = (
            "is required"
            if item["type"] == "missing"
            else item["msg"].removeprefix("Value error, ")
        )
        parts.append(f"{name}: {reason}" if name else reason)
    return "; ".join(parts)


AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def load(kind: type[AnySettings], **overrides: object) -> AnySettings:
    """Read one settings class, raising ConfigError with a one-line message on any problem."""
    try:
        return kind(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


def load_settings(**overrides: object) -> Settings:
    """Read every setting the service needs."""
    return load(Settings, **overrides)
