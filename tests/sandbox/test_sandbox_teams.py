"""Team event types (round robin, collective): listing per host, memberships, deliveries."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sandbox_helpers import Receiver, Sandbox, at
from test_sandbox_webhooks import INVITEE_EVENTS, Account, member_account

from tests.helpers import shared_calendly_dir

A, B, C = "a@example.com", "b@example.com", "c@example.com"
SPEC = "openapi/calendly-api-v2.speakeasy-vendored.2023-04-11.yaml"


async def team_type(sandbox: Sandbox, pooling: str, *hosts: str, **extra: Any) -> dict[str, Any]:
    """Create a team event type hosted by `hosts`; returns the EventType resource."""
    body = {"name": f"Team {pooling}", "duration": 30, "pooling_type": pooling,
            "hosts": list(hosts), "team_name": "Care Team", **extra}  # fmt: skip
    resource: dict[str, Any] = (await sandbox.control("POST", "/event_types", body))["resource"]
    return resource


async def book(sandbox: Sandbox, event_type: str, start: str, host: str | None = None) -> Any:
    """Book one guest, optionally with a round robin host."""
    body = {"event_type": event_type, "start_time": start,
            "invitees": [{"name": "Guest", "email": "guest@example.com"}]}  # fmt: skip
    return await sandbox.control("POST", "/bookings", body | ({"host": host} if host else {}))


def members(event: dict[str, Any]) -> list[str]:
    """The e-mails in an event's event_memberships."""
    return [m["user_email"] for m in event["event_memberships"]]


async def listed(sandbox: Sandbox, account: Account, path: str, **params: str) -> list[str]:
    """URIs of one API collection page as the account sees it."""
    reply = await sandbox.api(account.token, path, params=params)
    assert reply.status == 200, reply
    return [item["uri"] for item in reply.body["collection"]]


async def test_team_type_shape_and_listing(sandbox: Sandbox) -> None:
    a, b = await member_account(sandbox, A), await member_account(sandbox, B)
    owner = Account(sandbox, await sandbox.connect())
    robin = await team_type(sandbox, "round_robin", A, B)
    seeded = await sandbox.default_event_type()
    assert (robin["pooling_type"], robin["kind"]) == ("round_robin", "solo")
    assert robin["profile"] == {"type": "Team", "name": "Care Team", "owner": owner.org}
    assert await listed(sandbox, a, "/event_types", user=a.user) == [robin["uri"]]
    assert await listed(sandbox, b, "/event_types", user=b.user) == [robin["uri"]]
    assert await listed(sandbox, owner, "/event_types", user=owner.user) == [seeded]
    everything = await listed(sandbox, owner, "/event_types", organization=owner.org)
    assert sorted(everything) == sorted([seeded, robin["uri"]])
    by_member = await listed(sandbox, owner, "/event_types", organization=owner.org, user=b.user)
    assert by_member == [robin["uri"]]


async def test_round_robin_host_and_collective_members(sandbox: Sandbox) -> None:
    a, b = await member_account(sandbox, A), await member_account(sandbox, B)
    c = await member_account(sandbox, C)
    robin = await team_type(sandbox, "round_robin", A, B)
    both = await team_type(sandbox, "collective", A, B)
    first = await book(sandbox, robin["uri"], at(0))
    second = await book(sandbox, robin["uri"], at(60), host=B)
    joint = await book(sandbox, both["uri"], at(120))
    assert (members(first["event"]), members(second["event"])) == ([A], [B])
    assert members(joint["event"]) == [A, B]
    window = {"min_start_time": at(0), "max_start_time": at(600)}
    assert await listed(sandbox, a, "/scheduled_events", user=a.user, **window) == [
        first["event"]["uri"], joint["event"]["uri"],
    ]  # fmt: skip
    assert await listed(sandbox, b, "/scheduled_events", user=b.user, **window) == [
        second["event"]["uri"], joint["event"]["uri"],
    ]  # fmt: skip
    invitee = joint["invitees"][0]["uri"]
    statuses = [(await sandbox.api(x.token, invitee)).status for x in (a, b, c)]
    assert statuses == [200, 200, 403]
    assert (await sandbox.api(a.token, second["event"]["uri"])).status == 403


async def test_each_host_subscription_gets_the_deliveries(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    a, b = await member_account(sandbox, A), await member_account(sandbox, B)
    hook_a = (await a.subscribe(receiver.url, INVITEE_EVENTS, scope="user", user=a.user)).body
    other = receiver.url.replace("/hook", "/other")
    hook_b = (await b.subscribe(other, INVITEE_EVENTS, scope="user", user=b.user)).body
    sub_a, sub_b = hook_a["resource"]["uri"], hook_b["resource"]["uri"]
    robin = await team_type(sandbox, "round_robin", A, B)
    both = await team_type(sandbox, "collective", A, B)
    joint = await book(sandbox, both["uri"], at(0))
    single = await book(sandbox, robin["uri"], at(60), host=B)
    moved = await sandbox.control(
        "POST",
        "/invitees/reschedule",
        {"invitee": single["invitees"][0]["uri"], "start_time": at(90), "host": A},
    )
    same = await sandbox.control(
        "POST",
        "/invitees/reschedule",
        {"invitee": moved["new_invitee"]["uri"], "start_time": at(150)},
    )

    def sent(result: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((d["subscription"], d["event"]) for d in result["deliveries"])

    assert sent(joint) == sorted([(sub_a, "invitee.created"), (sub_b, "invitee.created")])
    assert sent(single) == [(sub_b, "invitee.created")]
    assert sent(moved) == sorted([(sub_b, "invitee.canceled"), (sub_a, "invitee.created")])
    assert sent(same) == sorted([(sub_a, "invitee.canceled"), (sub_a, "invitee.created")])
    new_event = await sandbox.api(a.token, moved["new_invitee"]["event"])
    assert members(new_event.body["resource"]) == [A]
    assert all(d["status"] == 200 for r in (joint, single, moved, same) for d in r["deliveries"])


async def test_team_validation(sandbox: Sandbox) -> None:
    await member_account(sandbox, A)
    await member_account(sandbox, B)
    await sandbox.add_user("outsider@example.com", new_organization=True, role=None)
    robin = await team_type(sandbox, "round_robin", A)
    both = await team_type(sandbox, "collective", A, B)
    bad = [
        ("/event_types", {"name": "X", "duration": 30, "pooling_type": "collective"}),
        ("/event_types", {"name": "X", "duration": 30, "hosts": [A]}),
        (
            "/event_types",
            {"name": "X", "duration": 30, "pooling_type": "round_robin", "hosts": [A], "user": A},
        ),
        (
            "/event_types",
            {
                "name": "X",
                "duration": 30,
                "pooling_type": "round_robin",
                "hosts": [A, "outsider@example.com"],
            },
        ),
        ("/event_types", {"name": "X", "duration": 30}),
        (
            "/bookings",
            {
                "event_type": robin["uri"],
                "start_time": at(0),
                "host": B,
                "invitees": [{"name": "G", "email": "g@example.com"}],
            },
        ),
        (
            "/bookings",
            {
                "event_type": both["uri"],
                "start_time": at(0),
                "host": A,
                "invitees": [{"name": "G", "email": "g@example.com"}],
            },
        ),
    ]
    for path, body in bad:
        reply = await sandbox.request("POST", "/_sandbox" + path, json=body)
        assert (reply.status, sorted(reply.body)) == (400, ["details", "error"]), body
    unknown = {"name": "X", "duration": 30, "pooling_type": "collective", "hosts": [C]}
    assert (await sandbox.request("POST", "/_sandbox/event_types", json=unknown)).status == 404


async def test_team_types_and_events_follow_calendlys_schemas(sandbox: Sandbox) -> None:
    folder = shared_calendly_dir()
    if folder is None:
        pytest.skip(
            "Calendly reference material absent (CALENDLY_SHARED_DIR or ../shared/calendly)"
        )
    schemas = yaml.safe_load((folder / SPEC).read_text())["components"]["schemas"]
    pooling = schemas["EventType"]["properties"]["pooling_type"]["enum"]
    profile = schemas["Profile"]
    membership = schemas["Event"]["properties"]["event_memberships"]["items"]
    await member_account(sandbox, A)
    await member_account(sandbox, B)
    made = [await team_type(sandbox, kind, A, B) for kind in ("round_robin", "collective")]
    events = [(await book(sandbox, t["uri"], at(60 * n)))["event"] for n, t in enumerate(made)]
    for event_type in made:
        assert event_type["pooling_type"] in pooling
        assert set(profile["required"]) <= set(event_type["profile"])
        assert event_type["profile"]["type"] in profile["properties"]["type"]["enum"]
    for event in events:
        for item in event["event_memberships"]:
            assert set(membership["required"]) <= set(item)
            assert item["user"].startswith(f"{sandbox.url}/users/")
