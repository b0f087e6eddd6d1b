"""In-memory emulator of the Calendly API v2 and OAuth endpoints used by calendly-svc (dev and
tests only: the service imports it only from __main__ and devenv, lazily, in dev mode).

May import: nothing of calendly_svc outside the sandbox (it is self-contained).
"""

from __future__ import annotations

from .app import SandboxServer, create_sandbox_app, start_sandbox
from .config import SandboxConfig
from .state import SANDBOX_STATE, SandboxState
from .webhooks import SIGNATURE_HEADER, signature_header

__all__ = [
    "SANDBOX_STATE",
    "SIGNATURE_HEADER",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "create_sandbox_app",
    "signature_header",
    "start_sandbox",
]
