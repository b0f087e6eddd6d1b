"""A booking rescheduled twice converges to one appointment whatever order the five deliveries
arrive in, including orders where two halves of the chain are first seen apart (then merged)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.conftest import Api, Sandbox
from tests.helpers import (
    appointments,
    book,
    default_event_type,
    envelope,
    invitee_payload,
    post_webhook,
    settled,
)

ORDERS = [
    ["a_created", "a_canceled", "b_created", "b_canceled", "c_created"],
    ["c_created", "b_canceled", "b_created", "a_canceled", "a_created"],
    ["a_created", "c_created", "b_canceled", "b_created", "a_canceled"],
    ["c_created", "a_created", "b_created", "b_canceled", "a_canceled"],
    *[
        random.Random(seed).sample(
            ["a_created", "a_canceled", "b_created", "b_canceled", "c_created"], 5
        )
        for seed in range(4)
    ],
]


async def _chain(control: Sandbox, event_type: str, day: int) -> dict[str, dict[str, Any]]:
    """Book and reschedule twice without delivering; return the five deliveries by name."""
    person = {"name": f"Chain {day}", "email": f"chain{day}@example.com"}
    booking = await book(control, event_type, f"2030-04-{day:02}T09:00:00Z", person, deliver=False)
    a = booking["invitees"][0]["uri"]
    first = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": a, "start_time": f"2030-04-{day:02}T11:00:00Z", "deliver": False},
    )
    b = first["new_invitee"]["uri"]
    second = await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": b, "start_time": f"2030-04-{day:02}T13:00:00Z", "deliver": False},
    )
    c = second["new_invitee"]["uri"]
    payloads = {
        name: await invitee_payload(control, uri) for name, uri in (("a", a), ("b", b), ("c", c))
    }
    return {
        "a_created": envelope(
            "invitee.created",
            payloads["a"]
            | {
                "status": "active",
                "rescheduled": False,
                "new_invitee": None,
                "cancellation": None,
                "updated_at": payloads["a"]["created_at"],
            },
        ),
        "a_canceled": envelope("invitee.canceled", payloads["a"]),
        "b_created": envelope(
            "invitee.created",
            payloads["b"]
            | {
                "status": "active",
                "rescheduled": False,
                "new_invitee": None,
                "cancellation": None,
                "updated_at": payloads["b"]["created_at"],
            },
        ),
        "b_canceled": envelope("invitee.canceled", payloads["b"]),
        "c_created": envelope("invitee.created", payloads["c"]),
        "uris": {"a": a, "b": b, "c": c},
    }


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
async def test_any_order_converges(api: Api, control: Sandbox, order: list[str]) -> None:
    integration = await api.connect()
    deliveries = await _chain(control, await default_event_type(control), 3)
    for name in order:
        status, _ = await post_webhook(api, integration["public_id"], deliveries[name])
        assert status == 200
        await settled(api)
    [appointment] = await appointments(api)
    uris = deliveries["uris"]
    assert appointment["status"] == "confirmed"
    assert appointment["calendly_invitee_uri"] == uris["c"]
    assert appointment["start_time"] == "2030-04-03T13:00:00+00:00"
    assert appointment["reschedule_count"] == 2
    assert [(h["calendly_invitee_uri"], h["start_time"]) for h in appointment["history"]] == [
        (uris["a"], "2030-04-03T09:00:00+00:00"),
        (uris["b"], "2030-04-03T11:00:00+00:00"),
    ]
    _, clients = await api.call("GET", "/clients")
    assert [c["email"] for c in clients["items"]] == ["chain3@example.com"]
