"""Configuration of the Calendly sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class SandboxConfig:
    """Credentials and limits of one sandbox instance."""

    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"  # noqa: S105 - well-known sandbox credential
    webhook_signing_key: str = "sandbox-signing-key"
    access_token_ttl_seconds: int = 7200
    rate_limit_per_minute: int = 500
    default_user_email: str = "sandbox@example.com"
    public_url: str | None = None  # base of every URI emitted; None: the sandbox's own URL

    @classmethod
    def from_env(cls) -> SandboxConfig:
        """A config from CALENDLY_* and SANDBOX_PUBLIC_URL, keeping defaults for unset ones."""
        defaults = cls()
        return cls(
            client_id=_env("CALENDLY_CLIENT_ID", defaults.client_id),
            client_secret=_env("CALENDLY_CLIENT_SECRET", defaults.client_secret),
            webhook_signing_key=_env("CALENDLY_WEBHOOK_SIGNING_KEY", defaults.webhook_signing_key),
            public_url=public_base_url(os.environ.get("SANDBOX_PUBLIC_URL")),
        )


def public_base_url(value: str | None) -> str | None:
    """An http(s) base URL without trailing slash; empty or None means unset."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(f"public URL must be an http(s) base URL, got {value!r}")
    return value.rstrip("/")


def _env(name: str, default: str) -> str:
    """Return an environment variable, treating unset and empty alike."""
    return os.environ.get(name) or default
