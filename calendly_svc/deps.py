"""The long-lived collaborators shared by handlers and the worker."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from calendly_svc.calendly.client import CalendlyClient
from calendly_svc.calendly.oauth import OAuthClient
from calendly_svc.calendly.tokens import TokenManager
from calendly_svc.crypto import SecretCipher
from calendly_svc.metrics import Metrics
from calendly_svc.settings import Settings
from calendly_svc.store.receivers import ReceiverCache


@dataclass(frozen=True, slots=True)
class Deps:
    """Everything a use case needs; built once per application."""

    settings: Settings
    pool: asyncpg.Pool
    cipher: SecretCipher
    calendly: CalendlyClient
    oauth: OAuthClient
    tokens: TokenManager
    metrics: Metrics
    receivers: ReceiverCache
