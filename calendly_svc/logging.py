"""structlog configuration: JSON off a tty, context vars for request and job ids."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "code",
        "code_verifier",
        "client_secret",
        "token",
        "signing_key",
        "authorization",
        "password",
    }
)


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any secret-looking key; a last line of defence."""
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "[redacted]"
    return event


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        """Forward to the current stderr."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Forward to the current stderr."""
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str | None = None) -> None:
    """Configure structlog and route stdlib logging through the same renderer."""
    use_json = fmt == "json" or (fmt is None and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        # loggers are first used after this runs (the CLI and the tests configure first), so the
        # cached ones carry this configuration; uncached, every call re-bound its logger
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "pgserver", "yoyo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
