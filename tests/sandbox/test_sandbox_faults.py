"""Rate limits, injected faults, latency, stats, control API validation and base URLs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web
from sandbox_helpers import Sandbox, at

from calendly_svc.sandbox import SANDBOX_STATE, SandboxConfig, create_sandbox_app

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def rate_headers(headers: dict[str, str]) -> tuple[str, ...]:
    """The three rate-limit header values."""
    return tuple(headers[name] for name in RATE_HEADERS)


async def test_rate_limit_window(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    faults = await sandbox.control(
        "POST", "/faults", {"rate_limit_per_minute": 3, "rate_limit_window_seconds": 2}
    )
    assert (faults["rate_limit_per_minute"], faults["rate_limit_window_seconds"]) == (3, 2)
    replies = [await sandbox.api(tokens["access_token"], "/users/me") for _ in range(4)]
    assert [r.status for r in replies] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["2", "1", "0", "0"]
    limited = replies[-1]
    assert limited.headers["X-RateLimit-Limit"] == "3"
    reset = int(limited.headers["X-RateLimit-Reset"])
    assert 1 <= reset <= 2
    assert limited.body["title"] == "Too Many Requests"
    assert set(limited.body) >= {"title", "message"}

    await sandbox.add_user("other@example.com")
    other = await sandbox.connect(login_hint="other@example.com")
    assert (await sandbox.api(other["access_token"], "/users/me")).status == 200

    await asyncio.sleep(reset)
    after = await sandbox.api(tokens["access_token"], "/users/me")
    assert (after.status, after.headers["X-RateLimit-Remaining"]) == (200, "2")
    assert (await sandbox.control("GET", "/stats"))["rate_limited"] == 1


async def test_fail_next(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    faults = await sandbox.control("POST", "/faults", {"fail_next": 2, "fail_status": 503})
    assert (faults["fail_next"], faults["fail_status"]) == (2, 503)
    replies = [await sandbox.api(tokens["access_token"], "/users/me") for _ in range(3)]
    assert [r.status for r in replies] == [503, 503, 200]
    assert set(replies[0].body) == {"title", "message"}
    assert all(name in replies[0].headers for name in RATE_HEADERS)
    assert (await sandbox.control("GET", "/faults"))["fail_next"] == 0


async def test_fail_next_429(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.control("POST", "/faults", {"fail_next": 1, "fail_status": 429})
    limited = await sandbox.api(tokens["access_token"], "/users/me")
    assert (limited.status, rate_headers(limited.headers)) == (429, ("500", "0", "1"))
    assert (await sandbox.api(tokens["access_token"], "/users/me")).status == 200
    assert (await sandbox.control("GET", "/stats"))["rate_limited"] == 1


async def test_fail_next_500_default(sandbox: Sandbox) -> None:
    await sandbox.control("POST", "/faults", {"fail_next": 1})
    reply = await sandbox.api("whatever", "/users/me")
    assert (reply.status, reply.body["title"]) == (500, "Internal Server Error")


async def test_latency_and_clear(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.control("POST", "/faults", {"latency_ms": 200})
    started = time.perf_counter()
    await sandbox.api(tokens["access_token"], "/users/me")
    await sandbox.token_request({"grant_type": "refresh_token", "refresh_token": "x"})
    assert time.perf_counter() - started >= 0.4
    cleared = await sandbox.control("DELETE", "/faults")
    expected = {
        "latency_ms": 0,
        "rate_limit_per_minute": 500,
        "rate_limit_window_seconds": 60,
        "token_requests_per_minute": 8,
        "fail_next": 0,
        "fail_status": 500,
        "fail_target": "api",
        "invalid_grant_status": 400,
        "refresh_answers_lost": 0,
        "lost_answer_as": "error",
        "legacy_grants": False,
        "page_token_ttl_seconds": None,
        "next_page_override": None,
        "scheduling_limits": None,
        "drop_response_after_apply": None,
    }
    assert expected == cleared


async def test_stats(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    booked = await sandbox.book(await sandbox.default_event_type(), at(0), deliver=False)
    await sandbox.control("DELETE", "/stats")
    token = tokens["access_token"]
    await sandbox.api(token, booked["event"]["uri"] + "/invitees")
    await sandbox.api(token, booked["event"]["uri"] + "/invitees")
    await sandbox.api(token, booked["invitees"][0]["uri"])
    await sandbox.api(token, "/users/me")
    stats = await sandbox.control("GET", "/stats")
    expected = {
        "requests": [
            {"method": "GET", "path": "/scheduled_events/{uuid}/invitees", "count": 2},
            {
                "method": "GET",
                "path": "/scheduled_events/{uuid}/invitees/{invitee_uuid}",
                "count": 1,
            },
            {"method": "GET", "path": "/users/me", "count": 1},
        ],
        "rate_limited": 0,
        "token_grants": {"authorization_code": 0, "refresh_token": 0},
        "tokens_revoked": 0,
        "token_rate_limited": 0,
    }
    assert expected == stats


async def test_control_validation(sandbox: Sandbox) -> None:
    invitee = "http://x/scheduled_events/a/invitees/b"
    event_type = {"user": "nobody@example.com", "name": "X", "duration": 5}
    cases: list[tuple[str, str, Any, int]] = [
        ("POST", "/_sandbox/faults", {"latency_ms": -1}, 400),
        ("POST", "/_sandbox/faults", {"unknown": 1}, 400),
        ("POST", "/_sandbox/users", {"email": "not-an-email", "name": "X"}, 400),
        ("POST", "/_sandbox/users", {"email": "sandbox@example.com", "name": "Dup"}, 409),
        ("POST", "/_sandbox/invitees/cancel", {"invitee": invitee}, 404),
        ("POST", "/_sandbox/event_types", event_type, 404),
    ]  # fmt: skip
    for method, path, body, status in cases:
        reply = await sandbox.request(method, path, json=body)
        assert (reply.status, set(reply.body)) == (status, {"error", "details"}), (path, body)
    bad_json = await sandbox.request("POST", "/_sandbox/faults", data=b"{nope")
    assert (bad_json.status, bad_json.body["error"]) == (400, "body is not valid JSON")


async def test_solo_booking_rules(sandbox: Sandbox) -> None:
    event_type = await sandbox.default_event_type()
    two = await sandbox.request(
        "POST",
        "/_sandbox/bookings",
        json={
            "event_type": event_type,
            "start_time": at(0),
            "invitees": [{"name": "A", "email": "a@example.com"}] * 2,
        },
    )
    assert two.status == 400
    unknown = await sandbox.request(
        "POST", "/_sandbox/bookings/bulk", json={"event_type": "x", "count": 1, "start_time": at(0)}
    )
    assert unknown.status == 404


async def test_control_users(sandbox: Sandbox) -> None:
    made = await sandbox.add_user("admin@example.com", role="admin")
    listed = (await sandbox.control("GET", "/users"))["collection"]
    roles = {user["email"]: user["role"] for user in listed}
    assert roles == {"sandbox@example.com": "owner", "admin@example.com": "admin"}
    assert made["current_organization"] == listed[0]["current_organization"]


async def test_base_url_given_and_changed(http: aiohttp.ClientSession) -> None:
    app = create_sandbox_app(SandboxConfig(), base_url="https://api.sandbox.test/")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with http.get(url + "/_sandbox/users") as response:
            user = (await response.json())["collection"][0]
        assert user["uri"].startswith("https://api.sandbox.test/users/")
        app[SANDBOX_STATE].base_url = "http://elsewhere:1"
        async with http.get(url + "/_sandbox/users") as response:
            user = (await response.json())["collection"][0]
        assert user["uri"].startswith("http://elsewhere:1/users/")
    finally:
        await runner.cleanup()


async def test_unknown_routes_answer_json(sandbox: Sandbox) -> None:
    control = await sandbox.request("GET", "/_sandbox/nope")
    oauth = await sandbox.request("GET", "/oauth/nope")
    assert (control.status, control.body["error"]) == (404, "Not Found")
    assert (oauth.status, oauth.body["error"]) == (404, "invalid_request")
    tokens = await sandbox.connect()
    wrong_method = await sandbox.api(tokens["access_token"], "/users/me", "DELETE")
    assert (wrong_method.status, wrong_method.body["title"]) == (405, "Method Not Allowed")


def refresh_form(refresh_token: str) -> dict[str, str]:
    """A refresh_token grant."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


async def test_fail_next_can_target_the_token_endpoint(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.control("POST", "/faults", {"fail_next": 1, "fail_status": 503,
                                               "fail_target": "token"})  # fmt: skip
    assert (await sandbox.api(tokens["access_token"], "/users/me")).status == 200
    failed = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    assert (failed.status, failed.body["error"]) == (503, "server_error")
    # nothing was redeemed: the same refresh token still works
    retried = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    assert retried.status == 200


async def test_fail_next_all_hits_api_and_token(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.control("POST", "/faults", {"fail_next": 2, "fail_target": "all"})
    api = await sandbox.api(tokens["access_token"], "/users/me")
    token = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    assert (
        api.status, token.status, (await sandbox.control("GET", "/faults"))["fail_next"]
    ) == (500, 500, 0)  # fmt: skip


async def test_invalid_grant_status_is_configurable(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    assert (await sandbox.token_request(refresh_form(tokens["refresh_token"]))).status == 200
    reused = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    await sandbox.control("POST", "/faults", {"invalid_grant_status": 401})
    reused_401 = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    expected = [(400, "invalid_grant"), (401, "invalid_grant")]
    assert expected == [(r.status, r.body["error"]) for r in (reused, reused_401)]


async def test_lost_refresh_answer_rotates_anyway(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.control("POST", "/faults", {"refresh_answers_lost": 1})
    lost = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    again = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    expected = [(500, "server_error"), (400, "invalid_grant")]
    assert expected == [(r.status, r.body["error"]) for r in (lost, again)]
    assert (await sandbox.control("GET", "/stats"))["token_grants"]["refresh_token"] == 1


async def test_lost_refresh_answer_as_dropped_connection(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    await sandbox.control("POST", "/faults", {"refresh_answers_lost": 1, "lost_answer_as": "drop"})
    try:
        reply = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    except aiohttp.ClientError as exc:
        outcome = type(exc).__name__
    else:
        outcome = str(reply.status)
    assert outcome == "ServerDisconnectedError"
    again = await sandbox.token_request(refresh_form(tokens["refresh_token"]))
    assert (again.status, again.body["error"]) == (400, "invalid_grant")


EXPIRED = {
    "title": "Invalid Argument",
    "message": "The supplied parameters are invalid.",
    "details": [{"parameter": "page_token", "message": "has expired"}],
}


async def test_page_tokens_expire_after_the_ttl(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    token, owner, org = tokens["access_token"], tokens["owner"], tokens["organization"]
    event_type = await sandbox.default_event_type()
    for minutes in (0, 60, 120):
        await sandbox.book(event_type, at(minutes), deliver=False)
    await sandbox.add_user("second@example.com")
    faults = await sandbox.control("POST", "/faults", {"page_token_ttl_seconds": 0.5})
    events = await sandbox.api(token, "/scheduled_events", params={"user": owner, "count": "1"})
    members = await sandbox.api(
        token, "/organization_memberships", params={"organization": org, "count": "1"}
    )
    fresh = await sandbox.api(token, events.body["pagination"]["next_page"])
    await asyncio.sleep(0.6)
    stale_events = await sandbox.api(token, fresh.body["pagination"]["next_page"])
    stale_members = await sandbox.api(token, members.body["pagination"]["next_page"])
    first_again = await sandbox.api(token, "/scheduled_events", params={"user": owner})
    cleared = await sandbox.control("DELETE", "/faults")
    after = await sandbox.api(token, fresh.body["pagination"]["next_page"])
    assert faults["page_token_ttl_seconds"] == 0.5
    assert (fresh.status, first_again.status, len(first_again.body["collection"])) == (200, 200, 3)
    assert (stale_events.status, stale_events.body) == (400, EXPIRED)
    assert (stale_members.status, stale_members.body) == (400, EXPIRED)
    assert (cleared["page_token_ttl_seconds"], after.status) == (None, 200)


async def test_next_page_override(sandbox: Sandbox) -> None:
    tokens = await sandbox.connect()
    token, owner = tokens["access_token"], tokens["owner"]
    await sandbox.control("POST", "/faults", {"next_page_override": "//evil.example/x"})
    overridden = await sandbox.api(token, "/event_types", params={"user": owner})
    await sandbox.control("DELETE", "/faults")
    normal = await sandbox.api(token, "/event_types", params={"user": owner})
    assert overridden.body["pagination"]["next_page"] == "//evil.example/x"
    assert normal.body["pagination"]["next_page"] is None
