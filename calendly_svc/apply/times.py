"""Time helpers shared by the edge, the worker and the sync."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: str | None) -> datetime | None:
    """Calendly's ISO-8601 timestamps (with a trailing Z)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
