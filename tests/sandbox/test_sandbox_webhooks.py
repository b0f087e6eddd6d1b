"""Webhook subscriptions API and signed deliveries (booking, cancel, reschedule, no-show)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from typing import Any

import pytest
from sandbox_helpers import Received, Receiver, Reply, Sandbox, at

from calendly_svc.sandbox import SandboxConfig, start_sandbox

INVITEE_EVENTS = ["invitee.created", "invitee.canceled"]


def verify(received: Received, key: str = "sandbox-signing-key") -> dict[str, Any]:
    """Check the Calendly-Webhook-Signature like a receiver would; return the parsed body."""
    header = received.headers["Calendly-Webhook-Signature"]
    parts = dict(part.split("=", 1) for part in header.split(","))
    signed = f"{parts['t']}.".encode() + received.body
    expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), header
    assert abs(int(parts["t"]) - time.time()) < 60
    assert received.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = json.loads(received.body)
    return body


class Account:
    """A connected sandbox user: token response plus request helpers."""

    def __init__(self, sandbox: Sandbox, tokens: dict[str, Any]) -> None:
        self.sandbox = sandbox
        self.tokens = tokens
        self.token = tokens["access_token"]
        self.user = tokens["owner"]
        self.org = tokens["organization"]

    async def subscribe(
        self, url: str, events: list[str], scope: str = "organization", **extra: Any
    ) -> Reply:
        """POST /webhook_subscriptions."""
        body = {"url": url, "events": events, "organization": self.org, "scope": scope, **extra}
        return await self.sandbox.api(self.token, "/webhook_subscriptions", "POST", json=body)


@pytest.fixture
async def owner(sandbox: Sandbox) -> Account:
    """The default owner, connected."""
    return Account(sandbox, await sandbox.connect())


async def member_account(sandbox: Sandbox, email: str = "member@example.com") -> Account:
    """A plain member of the default organization, connected."""
    await sandbox.add_user(email)
    return Account(sandbox, await sandbox.connect(login_hint=email))


async def test_subscription_lifecycle(sandbox: Sandbox, owner: Account) -> None:
    created = await owner.subscribe("https://hooks.example/a", INVITEE_EVENTS)
    sub = created.body["resource"]
    expected_keys = {
        "uri", "callback_url", "created_at", "updated_at", "retry_started_at", "state",
        "events", "scope", "organization", "user", "group", "creator",
    }  # fmt: skip
    assert created.status == 201
    assert expected_keys == set(sub)
    expected = ("active", "organization", owner.org, owner.user, None, INVITEE_EVENTS)
    assert expected == (
        sub["state"], sub["scope"], sub["organization"], sub["creator"], sub["user"], sub["events"],
    )  # fmt: skip

    duplicate = await owner.subscribe("https://hooks.example/a", ["invitee.created"])
    expected_409 = {"title": "Already Exists", "message": "Hook with this url already exists"}
    assert (duplicate.status, duplicate.body) == (409, expected_409)

    for missing in ("organization", "scope"):
        params = {"organization": owner.org, "scope": "organization"}
        del params[missing]
        bad = await sandbox.api(owner.token, "/webhook_subscriptions", params=params)
        assert (bad.status, bad.body["details"][0]["parameter"]) == (400, missing)
    params = {"organization": owner.org, "scope": "organization"}
    listed = await sandbox.api(owner.token, "/webhook_subscriptions", params=params)
    assert [sub] == listed.body["collection"]
    assert listed.body["pagination"]["next_page"] is None

    assert sub == (await sandbox.api(owner.token, sub["uri"])).body["resource"]
    deleted = await sandbox.api(owner.token, sub["uri"], "DELETE")
    assert (deleted.status, deleted.body) == (204, None)
    assert (await sandbox.api(owner.token, sub["uri"])).status == 404
    relisted = await sandbox.api(owner.token, "/webhook_subscriptions", params=params)
    assert relisted.body["collection"] == []


async def test_signing_key_is_write_only(owner: Account) -> None:
    created = await owner.subscribe("https://hooks.example/k", INVITEE_EVENTS, signing_key="s3")
    assert "signing_key" not in json.dumps(created.body)


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"scope": "user"}, "user"),
        (
            {"events": ["routing_form_submission.created"], "scope": "user", "user": "self"},
            "events",
        ),
        ({"events": ["invitee.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"organization": None}, "organization"),
        ({"url": "ftp://hooks.example"}, "url"),
        ({"scope": "galaxy"}, "scope"),
    ],
)
async def test_subscription_validation(
    sandbox: Sandbox, owner: Account, body: dict[str, Any], parameter: str
) -> None:
    request = {
        "url": "https://hooks.example/v",
        "events": ["invitee.created"],
        "organization": owner.org,
        "scope": "organization",
        **body,
    }
    if request.get("user") == "self":
        request["user"] = owner.user
    if request["organization"] is None:
        del request["organization"]
    reply = await sandbox.api(owner.token, "/webhook_subscriptions", "POST", json=request)
    assert (reply.status, reply.body["details"][0]["parameter"]) == (400, parameter)


async def test_subscription_permissions(sandbox: Sandbox, owner: Account) -> None:
    member = await member_account(sandbox)
    org_scope = await member.subscribe("https://hooks.example/m", INVITEE_EVENTS)
    assert (org_scope.status, org_scope.body["title"]) == (403, "Permission Denied")
    for_owner = await member.subscribe(
        "https://hooks.example/m", INVITEE_EVENTS, scope="user", user=owner.user
    )
    assert for_owner.status == 403
    for_self = await member.subscribe(
        "https://hooks.example/m", INVITEE_EVENTS, scope="user", user=member.user
    )
    assert for_self.status == 201
    org_list = await sandbox.api(
        member.token,
        "/webhook_subscriptions",
        params={"organization": member.org, "scope": "organization"},
    )
    assert org_list.status == 403
    own_list = await sandbox.api(
        member.token,
        "/webhook_subscriptions",
        params={"organization": member.org, "scope": "user", "user": member.user},
    )
    assert [for_self.body["resource"]] == own_list.body["collection"]
    owner_sub = await owner.subscribe("https://hooks.example/o", INVITEE_EVENTS)
    assert (await sandbox.api(member.token, owner_sub.body["resource"]["uri"])).status == 403


async def test_delivery_is_signed(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    sub = (await owner.subscribe(receiver.url, INVITEE_EVENTS)).body["resource"]
    booked = await sandbox.book(await sandbox.default_event_type(), at(0), "ann@example.com")
    expected_delivery = {
        "subscription": sub["uri"],
        "event": "invitee.created",
        "status": 200,
        "error": None,
    }
    assert [expected_delivery] == booked["deliveries"]
    assert len(receiver.received) == 1
    body = verify(receiver.received[0])
    assert sorted(body) == ["created_at", "created_by", "event", "payload"]
    assert ("invitee.created", owner.user) == (body["event"], body["created_by"])
    payload = body["payload"]
    assert booked["invitees"][0]["uri"] == payload["uri"]
    assert booked["event"] == payload.pop("scheduled_event")
    assert booked["invitees"][0] == payload


async def test_custom_signing_key(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    await owner.subscribe(receiver.url, INVITEE_EVENTS, signing_key="per-hook-key")
    await sandbox.book(await sandbox.default_event_type(), at(0))
    received = receiver.received[0]
    verify(received, "per-hook-key")
    with pytest.raises(AssertionError):
        verify(received)


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(webhook_signing_key="app-key")])
async def test_configured_signing_key(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    await owner.subscribe(receiver.url, INVITEE_EVENTS)
    await sandbox.book(await sandbox.default_event_type(), at(0))
    verify(receiver.received[0], "app-key")


async def test_reschedule_delivers_both_halves(
    sandbox: Sandbox, owner: Account, receiver: Receiver
) -> None:
    await owner.subscribe(receiver.url, INVITEE_EVENTS)
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    old_uri = booked["invitees"][0]["uri"]
    moved = await sandbox.control(
        "POST", "/invitees/reschedule", {"invitee": old_uri, "start_time": at(120)}
    )
    new_uri = moved["new_invitee"]["uri"]
    assert [d["event"] for d in moved["deliveries"]] == ["invitee.canceled", "invitee.created"]

    canceled, created = (verify(r) for r in receiver.received[1:])
    old, new = canceled["payload"], created["payload"]
    assert (canceled["event"], created["event"]) == ("invitee.canceled", "invitee.created")
    expected_old = (old_uri, "canceled", True, new_uri, None)
    assert expected_old == (
        old["uri"], old["status"], old["rescheduled"], old["new_invitee"], old["old_invitee"],
    )  # fmt: skip
    expected_cancellation = {"canceled_by": "Guest guest@example.com", "reason": None}
    assert expected_cancellation == {k: old["cancellation"][k] for k in expected_cancellation}
    assert old["cancellation"]["canceler_type"] == "invitee"
    assert ("canceled", at(0)) == (
        old["scheduled_event"]["status"],
        old["scheduled_event"]["start_time"],
    )
    expected_new = (new_uri, "active", False, None, old_uri)
    assert expected_new == (
        new["uri"], new["status"], new["rescheduled"], new["new_invitee"], new["old_invitee"],
    )  # fmt: skip
    assert new["event"] != old["event"]
    assert (at(120), "active") == (
        new["scheduled_event"]["start_time"],
        new["scheduled_event"]["status"],
    )
    via_api = await sandbox.api(owner.token, old_uri)
    assert (via_api.body["resource"]["new_invitee"], via_api.body["resource"]["rescheduled"]) == (
        new_uri,
        True,
    )


async def test_group_event_cancel_keeps_event(sandbox: Sandbox, owner: Account) -> None:
    group = await sandbox.control(
        "POST",
        "/event_types",
        {
            "user": owner.user,
            "name": "Workshop",
            "duration": 60,
            "kind": "group",
            "invitee_limit": 3,
        },
    )
    event_type = group["resource"]["uri"]
    first = await sandbox.book(event_type, at(0), "a@example.com", "b@example.com")
    joined = await sandbox.book(event_type, at(0), "c@example.com")
    assert first["event"]["uri"] == joined["event"]["uri"]
    assert joined["event"]["invitees_counter"] == {"total": 3, "active": 3, "limit": 3}
    full = await sandbox.request(
        "POST",
        "/_sandbox/bookings",
        json={
            "event_type": event_type,
            "start_time": at(0),
            "invitees": [{"name": "D", "email": "d@x.io"}],
        },
    )
    assert full.status == 400

    uris = [inv["uri"] for inv in first["invitees"]] + [joined["invitees"][0]["uri"]]
    result = await sandbox.control("POST", "/invitees/cancel", {"invitee": uris[0]})
    assert (result["invitee"]["status"], result["event"]["status"]) == ("canceled", "active")
    assert result["event"]["invitees_counter"] == {"total": 3, "active": 2, "limit": 3}
    for uri in uris[1:]:
        result = await sandbox.control(
            "POST", "/invitees/cancel", {"invitee": uri, "canceler_type": "host"}
        )
    assert (
        result["event"]["status"],
        result["event"]["cancellation"]["canceled_by"],
        result["event"]["cancellation"]["canceler_type"],
    ) == ("canceled", "Sandbox User", "host")


async def test_no_show_webhooks(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    await owner.subscribe(receiver.url, ["invitee_no_show.created", "invitee_no_show.deleted"])
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    assert booked["deliveries"] == []
    invitee = booked["invitees"][0]["uri"]
    marked = await sandbox.control("POST", "/invitees/no_show", {"invitee": invitee})
    assert marked["invitee"]["no_show"]["uri"].startswith(sandbox.url + "/invitee_no_shows/")
    again = await sandbox.request("POST", "/_sandbox/invitees/no_show", json={"invitee": invitee})
    assert again.status == 400
    await sandbox.control("DELETE", "/invitees/no_show", {"invitee": invitee})

    created, deleted = (verify(r) for r in receiver.received)
    assert (
        created["event"],
        deleted["event"],
    ) == ("invitee_no_show.created", "invitee_no_show.deleted")
    assert marked["invitee"]["no_show"] == created["payload"]["no_show"]
    assert sorted(created["payload"]["no_show"]) == ["created_at", "uri"]
    assert deleted["payload"]["no_show"] is None
    assert created["payload"]["scheduled_event"]["uri"] == booked["event"]["uri"]


async def test_event_type_webhooks(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    events = ["event_type.created", "event_type.updated", "event_type.deleted"]
    await owner.subscribe(receiver.url, events)
    made = await sandbox.control(
        "POST", "/event_types", {"user": owner.user, "name": "Intro", "duration": 20}
    )
    uuid = made["resource"]["uri"].rsplit("/", 1)[1]
    await sandbox.control("PATCH", f"/event_types/{uuid}", {"name": "Intro Call", "duration": 25})
    await sandbox.control("DELETE", f"/event_types/{uuid}")
    bodies = [verify(r) for r in receiver.received]
    assert events == [b["event"] for b in bodies]
    assert [(b["payload"]["name"], b["payload"]["duration"]) for b in bodies] == [
        ("Intro", 20),
        ("Intro Call", 25),
        ("Intro Call", 25),
    ]
    assert (bodies[1]["payload"]["deleted_at"], bodies[1]["payload"]["active"]) == (None, True)
    assert bodies[2]["payload"]["deleted_at"] is not None
    assert bodies[2]["payload"]["active"] is False


async def test_deliver_false_skips(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    await owner.subscribe(receiver.url, INVITEE_EVENTS)
    booked = await sandbox.book(await sandbox.default_event_type(), at(0), deliver=False)
    canceled = await sandbox.control(
        "POST", "/invitees/cancel", {"invitee": booked["invitees"][0]["uri"], "deliver": False}
    )
    assert (booked["deliveries"], canceled["deliveries"]) == ([], [])
    assert receiver.received == []


async def test_user_scope_matches_host(
    sandbox: Sandbox, owner: Account, receiver: Receiver
) -> None:
    member = await member_account(sandbox)
    await member.subscribe(receiver.url, INVITEE_EVENTS, scope="user", user=member.user)
    owner_booking = await sandbox.book(await sandbox.default_event_type(), at(0))
    assert owner_booking["deliveries"] == []
    own_type = await sandbox.control(
        "POST", "/event_types", {"user": "member@example.com", "name": "Mine", "duration": 15}
    )
    member_booking = await sandbox.book(own_type["resource"]["uri"], at(0))
    assert [d["status"] for d in member_booking["deliveries"]] == [200]
    assert verify(receiver.received[0])["created_by"] == member.user


async def test_gone_deletes_subscription(
    sandbox: Sandbox, owner: Account, receiver: Receiver
) -> None:
    sub = (await owner.subscribe(receiver.url, INVITEE_EVENTS)).body["resource"]
    receiver.statuses = [410]
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    assert [d["status"] for d in booked["deliveries"]] == [410]
    assert (await sandbox.api(owner.token, sub["uri"])).status == 404
    assert (await sandbox.control("GET", "/webhook_subscriptions"))["collection"] == []


async def test_failed_delivery_is_retried(
    sandbox: Sandbox, owner: Account, receiver: Receiver
) -> None:
    await owner.subscribe(receiver.url, INVITEE_EVENTS)
    receiver.statuses = [500]
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    assert [d["status"] for d in booked["deliveries"]] == [500]
    listed = (await sandbox.control("GET", "/webhook_subscriptions"))["collection"][0]
    assert (listed["deliveries_ok"], listed["deliveries_failed"]) == (0, 1)
    assert listed["retry_started_at"] is not None

    await receiver.wait_for(2)
    first, retry = (verify(r) for r in receiver.received)
    assert first == retry
    await asyncio.sleep(0.05)
    listed = (await sandbox.control("GET", "/webhook_subscriptions"))["collection"][0]
    assert (
        listed["deliveries_ok"],
        listed["deliveries_failed"],
        listed["retry_started_at"],
    ) == (1, 1, None)


def closed_port_url() -> str:
    """A callback URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def test_unreachable_callback_and_clean_shutdown(http: Any) -> None:
    server = await start_sandbox(SandboxConfig(), port=0)
    try:
        sandbox = Sandbox(server, http)
        owner = Account(sandbox, await sandbox.connect())
        await owner.subscribe(closed_port_url(), INVITEE_EVENTS)
        booked = await sandbox.book(await sandbox.default_event_type(), at(0))
        delivery = booked["deliveries"][0]
        assert delivery["status"] is None
        assert "Connect" in delivery["error"]
        dispatcher = server.state.dispatcher
        assert dispatcher is not None
        assert len(dispatcher.tasks) == 1
    finally:
        await server.close()
    assert server.state.dispatcher is None
    assert dispatcher.tasks == set()


async def test_disabled_subscription(sandbox: Sandbox, owner: Account, receiver: Receiver) -> None:
    sub = (await owner.subscribe(receiver.url, INVITEE_EVENTS)).body["resource"]
    uuid = sub["uri"].rsplit("/", 1)[1]
    disabled = await sandbox.control("POST", f"/webhook_subscriptions/{uuid}/disable")
    assert disabled["resource"]["state"] == "disabled"
    assert disabled["resource"]["retry_started_at"] is not None
    booked = await sandbox.book(await sandbox.default_event_type(), at(0))
    assert booked["deliveries"] == []
    via_api = await sandbox.api(owner.token, sub["uri"])
    assert via_api.body["resource"]["state"] == "disabled"
