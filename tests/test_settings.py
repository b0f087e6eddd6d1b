"""Configuration: a missing or malformed setting stops start-up with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from calendly_svc.calendly.scopes import NEEDED_SCOPES
from calendly_svc.devenv import dev_mode, prepare_dev_environment
from calendly_svc.settings import (
    ConfigError,
    DatabaseSettings,
    KeySettings,
    load,
    load_settings,
)

REQUIRED = {
    "DATABASE_URL": "postgresql://u@localhost/db",
    "CALENDLY_CLIENT_ID": "client",
    "CALENDLY_CLIENT_SECRET": "secret",
    "CALENDLY_WEBHOOK_SIGNING_KEY": "key",
    "BACKEND_URL": "https://svc.example.com/",
    "SERVICE_API_TOKENS": "one, two",
    "TOKEN_ENCRYPTION_KEY": Fernet.generate_key().decode(),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> pytest.MonkeyPatch:
    """No service setting inherited from the machine; no .env picked up."""
    for name in list(os.environ):
        if name.startswith(("CALENDLY_", "DATABASE_", "SERVICE_", "TOKEN_", "OAUTH_", "BACKEND_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_complete_settings_are_parsed(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        clean_env.setenv(name, value)
    settings = load_settings()
    assert settings.service_api_tokens == ["one", "two"]
    assert settings.backend_url == "https://svc.example.com"
    assert settings.oauth_callback_url == "https://svc.example.com/api/v1/calendly/oauth/callback"
    assert (settings.port, settings.sandbox_port) == (8080, 8081)
    assert settings.calendly_scopes == list(NEEDED_SCOPES)


def test_calendly_scopes_are_space_or_comma_separated(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        clean_env.setenv(name, value)
    clean_env.setenv("CALENDLY_SCOPES", "users:read,  scheduled_events:read webhooks:write,")
    expected = ["users:read", "scheduled_events:read", "webhooks:write"]
    assert load_settings().calendly_scopes == expected


def test_oauth_complete_url_and_its_deprecated_stand_in(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        clean_env.setenv(name, value)
    clean_env.setenv("OAUTH_SUCCESS_REDIRECT_URL", "https://app.example.com/old")
    legacy = load_settings().oauth_forward_url
    clean_env.setenv("OAUTH_COMPLETE_URL", "https://app.example.com/calendly/done")
    current = load_settings().oauth_forward_url
    clean_env.setenv("OAUTH_COMPLETE_URL", "app.example.com/done")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert (legacy, current) == (
        "https://app.example.com/old",
        "https://app.example.com/calendly/done",
    )
    assert str(error.value) == "OAUTH_COMPLETE_URL: must be an http(s) URL"


def test_missing_settings_are_named(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        if name not in {"BACKEND_URL", "TOKEN_ENCRYPTION_KEY"}:
            clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value) == "BACKEND_URL: is required; TOKEN_ENCRYPTION_KEY: is required"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TOKEN_ENCRYPTION_KEY", "short", "TOKEN_ENCRYPTION_KEY: not a Fernet key"),
        ("BACKEND_URL", "svc.example.com", "BACKEND_URL: must be an http(s) URL"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: must be a postgresql:// URL"),
        ("SERVICE_API_TOKENS", " , ", "SERVICE_API_TOKENS: must not be empty"),
        ("PORT", "eighty", "PORT: Input should be a valid integer"),
        ("CALENDLY_SCOPES", " , ", "CALENDLY_SCOPES: must name at least one scope"),
        (
            "CALENDLY_SCOPES",
            "users:read invitees",
            "CALENDLY_SCOPES: not a Calendly scope: invitees",
        ),
        (
            "WEBHOOK_LOG_RETENTION_DAYS",
            "1",
            "WEBHOOK_LOG_RETENTION_DAYS: must be 0 (keep forever) or at least 2 days",
        ),
    ],
)
def test_malformed_settings_are_named(
    clean_env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    for key, good in REQUIRED.items():
        clean_env.setenv(key, good)
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value).startswith(message)


def test_serve_without_settings_refuses_to_start(tmp_path: os.PathLike[str]) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "calendly_svc", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: DATABASE_URL: is required; ")


def test_dev_conveniences_need_the_dev_flag() -> None:
    assert dev_mode({}) is False
    assert dev_mode({"CALENDLY_SVC_DEV": "1"}) is True


def test_dev_mode_fills_only_what_is_missing(tmp_path: os.PathLike[str]) -> None:
    env = {"DATABASE_URL": "postgresql://u@h/db", "SERVICE_API_TOKENS": "mine"}
    plan = prepare_dev_environment(env, tmp_path)  # type: ignore[arg-type]
    again = prepare_dev_environment(
        {"DATABASE_URL": "postgresql://u@h/db"},
        tmp_path,  # type: ignore[arg-type]
    )
    assert plan.postgres is None
    assert plan.use_sandbox is True
    assert env["SERVICE_API_TOKENS"] == "mine"
    assert env["CALENDLY_API_BASE_URL"] == "http://127.0.0.1:8081"
    assert env["BACKEND_URL"] == "http://127.0.0.1:8080"
    assert any("service API token" in note for note in again.notes)
    kept = (tmp_path / "token_encryption_key").read_text().strip()  # type: ignore[operator]
    assert env["TOKEN_ENCRYPTION_KEY"] == kept


def test_notification_url_needs_its_secret(clean_env: pytest.MonkeyPatch) -> None:
    for key, good in REQUIRED.items():
        clean_env.setenv(key, good)
    clean_env.setenv("MAIN_APP_WEBHOOK_URL", "https://app.example.com/hooks")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value) == "MAIN_APP_WEBHOOK_SECRET is required with MAIN_APP_WEBHOOK_URL"


def _run_cli(command: str, cwd: os.PathLike[str], **env: str) -> tuple[int, list[str]]:
    """Run one CLI command with only these settings; its exit status and stderr lines."""
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed module, a test command
        [sys.executable, "-m", "calendly_svc", command],
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stderr.strip().splitlines()


@pytest.mark.parametrize(
    ("command", "env", "line"),
    [
        ("migrate", {}, "configuration error: DATABASE_URL: is required"),
        (
            "migrate",
            {"DATABASE_URL": "mysql://x", "CALENDLY_CLIENT_ID": ""},
            "configuration error: DATABASE_URL: must be a postgresql:// URL",
        ),
        (
            "rotate-keys",
            {},
            "configuration error: DATABASE_URL: is required; TOKEN_ENCRYPTION_KEY: is required",
        ),
        (
            "rotate-keys",
            {"DATABASE_URL": REQUIRED["DATABASE_URL"], "TOKEN_ENCRYPTION_KEY": "short"},
            "configuration error: TOKEN_ENCRYPTION_KEY: not a Fernet key"
            " (32 url-safe base64-encoded bytes)",
        ),
    ],
)
def test_each_command_names_only_the_settings_it_uses(
    tmp_path: os.PathLike[str], command: str, env: dict[str, str], line: str
) -> None:
    assert (2, [line]) == _run_cli(command, tmp_path, **env)


def test_worker_needs_every_service_setting(tmp_path: os.PathLike[str]) -> None:
    env = {"DATABASE_URL": REQUIRED["DATABASE_URL"], "TOKEN_ENCRYPTION_KEY": "short"}
    status, lines = _run_cli("worker", tmp_path, **env)
    assert status == 2
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: CALENDLY_CLIENT_ID: is required; ")
    assert "; TOKEN_ENCRYPTION_KEY: not a Fernet key" in lines[0]


def test_migrate_settings_are_the_database_url_alone(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_URL", REQUIRED["DATABASE_URL"])
    clean_env.setenv("LOG_LEVEL", "WARNING")
    settings = load(DatabaseSettings)
    assert (REQUIRED["DATABASE_URL"], "WARNING", None) == (
        settings.database_url,
        settings.log_level,
        settings.log_format,
    )
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert str(error.value).startswith("CALENDLY_CLIENT_ID: is required; ")


def test_rotate_keys_settings_split_the_keys(clean_env: pytest.MonkeyPatch) -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    clean_env.setenv("DATABASE_URL", REQUIRED["DATABASE_URL"])
    clean_env.setenv("TOKEN_ENCRYPTION_KEY", f" {first}, {second},")
    assert [first, second] == load(KeySettings).token_encryption_key
