"""Shared steps of the tests of actions on Calendly (tests/test_actions_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Api

# a Monday at 10:00 UTC, inside the sandbox's default weekly availability, years ahead
START = "2030-01-07T10:00:00Z"


def booking_body(event_type_id: int, start: str = START, **invitee: Any) -> dict[str, Any]:
    """A POST /appointments body for Ana."""
    person = {"name": "Ana Lima", "email": "ana+calendly@example.com",
              "timezone": "America/Sao_Paulo"} | invitee  # fmt: skip
    return {"event_type_id": event_type_id, "start_time": start, "invitee": person}


async def event_type_id(api: Api, user: int = 1) -> int:
    """The id of the user's "30 Minute Meeting"."""
    status, listing = await api.call("GET", "/event-types", user)
    assert status == 200, listing
    return int(next(t["id"] for t in listing["items"] if t["name"] == "30 Minute Meeting"))


async def post_booking(
    api: Api, body: dict[str, Any], key: str | None = "key-1", user: int = 1
) -> tuple[int, Any]:
    """POST /appointments with an Idempotency-Key."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await api.call("POST", "/appointments", user, json=body, headers=headers)


def in_days(days: float) -> str:
    """An instant `days` from now, as UTC text."""
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()
