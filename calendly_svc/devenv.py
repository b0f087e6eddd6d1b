"""`make run`'s dev mode: embedded Postgres, the sandbox, generated keys kept under .data/."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet

log = structlog.get_logger(__name__)
DEV_FLAG = "CALENDLY_SVC_DEV"


def dev_mode(env: MutableMapping[str, str]) -> bool:
    """Dev conveniences apply only when make run asks for them."""
    return env.get(DEV_FLAG, "").lower() in {"1", "true", "yes"}


def _kept_secret(path: Path, make: Any) -> tuple[str, bool]:
    """A secret generated once and kept in a private file; (value, newly generated)."""
    if path.exists():
        return path.read_text().strip(), False
    value = str(make())
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value, True


def _runtime_dir() -> Path:
    """One directory per user for pgserver's lock file, shared by every run: a run's own
    temporary directory would get the lock file back after it was removed (pgserver touches
    it at exit)."""
    path = Path(tempfile.gettempdir()) / f"calendly-svc-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def start_embedded_postgres(directory: Path) -> Any:
    """A real PostgreSQL from the pgserver wheel, stopped when the process exits."""
    directory.mkdir(parents=True, exist_ok=True)
    # platformdirs (used by pgserver) warns when this is unset, as it is for root shells and CI
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir()))
    import pgserver  # dev-only dependency: imported only here

    return pgserver.get_server(str(directory), cleanup_mode="stop")  # type: ignore[attr-defined]


def stop_embedded_postgres(server: Any) -> None:
    """Stop an embedded server without forgetting it (fault tests restart it)."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)


def restart_embedded_postgres(server: Any) -> None:
    """Start a stopped embedded server again, on the same socket."""
    server.ensure_postgres_running()


@dataclass
class DevPlan:
    """What dev mode switched on, for the start-up log and the serve loop."""

    use_sandbox: bool = False
    postgres: Any = None
    notes: list[str] = field(default_factory=list)


def _database(env: MutableMapping[str, str], data: Path, plan: DevPlan) -> None:
    """Embedded Postgres under .data/pg unless DATABASE_URL is set."""
    if env.get("DATABASE_URL"):
        return
    plan.postgres = start_embedded_postgres(data / "pg")
    env["DATABASE_URL"] = plan.postgres.get_uri()
    plan.notes.append(f"embedded PostgreSQL in {data / 'pg'}")


def _sandbox(env: MutableMapping[str, str], data: Path, plan: DevPlan) -> None:
    """Point the service at the Calendly sandbox unless real credentials are set."""
    if env.get("CALENDLY_CLIENT_ID"):
        return
    own_url = f"http://127.0.0.1:{env.get('SANDBOX_PORT', '8081')}"
    sandbox_url = env.get("SANDBOX_PUBLIC_URL", "").rstrip("/") or own_url
    env["CALENDLY_CLIENT_ID"] = "sandbox-client"
    env["CALENDLY_CLIENT_SECRET"] = "sandbox-secret"  # noqa: S105 - the sandbox's own default
    env.setdefault("CALENDLY_API_BASE_URL", sandbox_url)
    env.setdefault("CALENDLY_AUTH_BASE_URL", sandbox_url)
    if not env.get("CALENDLY_WEBHOOK_SIGNING_KEY"):
        key, _ = _kept_secret(data / "webhook_signing_key", lambda: secrets.token_urlsafe(32))
        env["CALENDLY_WEBHOOK_SIGNING_KEY"] = key
    plan.use_sandbox = True
    plan.notes.append(f"Calendly sandbox at {sandbox_url} (no CALENDLY_CLIENT_ID configured)")


def _keys(env: MutableMapping[str, str], data: Path, plan: DevPlan) -> None:
    """Generated service token and encryption key, kept across restarts."""
    if not env.get("SERVICE_API_TOKENS"):
        token, _ = _kept_secret(data / "service_api_token", lambda: secrets.token_urlsafe(32))
        env["SERVICE_API_TOKENS"] = token
        plan.notes.append(f"service API token (from {data / 'service_api_token'}): {token}")
    if not env.get("TOKEN_ENCRYPTION_KEY"):
        key, _ = _kept_secret(data / "token_encryption_key", lambda: Fernet.generate_key().decode())
        env["TOKEN_ENCRYPTION_KEY"] = key
    env.setdefault("BACKEND_URL", f"http://127.0.0.1:{env.get('PORT', '8080')}")


def prepare_dev_environment(env: MutableMapping[str, str], data: Path) -> DevPlan:
    """Fill in every missing setting dev mode can provide; real settings always win."""
    data.mkdir(parents=True, exist_ok=True)
    plan = DevPlan()
    _database(env, data, plan)
    _sandbox(env, data, plan)
    _keys(env, data, plan)
    return plan
