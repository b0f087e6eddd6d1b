"""Configuration of the Calendly sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class SandboxConfig:
    """Credentials and limits of one sandbox instance."""

    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"  # noqa: S105 - well-known sandbox credential
    webhook_signing_key: str = "sandbox-signing-key"
    access_token_ttl_seconds: int = 7200
    rate_limit_per_minute: int = 500
    default_user_email: str = "sandbox@example.com"

    @classmethod
    def from_env(cls) -> SandboxConfig:
        """Build a config from CALENDLY_* variables, keeping defaults for unset ones."""
        defaults = cls()
        return cls(
            client_id=_env("CALENDLY_CLIENT_ID", defaults.client_id),
            client_secret=_env("CALENDLY_CLIENT_SECRET", defaults.client_secret),
            webhook_signing_key=_env("CALENDLY_WEBHOOK_SIGNING_KEY", defaults.webhook_signing_key),
        )


def _env(name: str, default: str) -> str:
    """Return an environment variable, treating unset and empty alike."""
    return os.environ.get(name) or default
