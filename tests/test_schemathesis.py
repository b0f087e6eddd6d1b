"""Property-based contract run: schemathesis against the running service and its own document.

The service runs on its real port with a real Postgres and the sandbox; user 1 is connected and
has appointments first, and is connected again whenever the run disconnects it, so authenticated
routes answer with data. Schemathesis's engine is synchronous and makes real HTTP requests, so it
runs in a thread while the event loop keeps serving. Checks: no 5xx, documented status codes,
content types, response bodies and response headers (X-Request-Id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import schemathesis
from schemathesis.engine import Status, events, from_schema

from calendly_svc.http.openapi import build_document
from calendly_svc.sandbox import SandboxConfig, start_sandbox
from tests.conftest import SERVICE_TOKEN, SIGNING_KEY, Api, Sandbox
from tests.helpers import book, default_event_type, settled
from tests.test_openapi import documented

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
PREFIX = "/api/v1/calendly"
USER = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-User-Id": "1"}
MAX_EXAMPLES = 12
SEED = 20260601
# aiohttp's HTTP parser answers a request line or header line longer than 8190 bytes itself, with
# a plain-text 400, before the application (routing, middlewares, this contract) sees the request.
HTTP_LINE_LIMIT = 8190 - len("DELETE  HTTP/1.1")


@pytest.fixture
async def sandbox() -> AsyncIterator[Any]:
    """The sandbox without Calendly's rate limit: the run reconnects user 1 dozens of times."""
    # at 500 calls a minute the service would wait out X-RateLimit-Reset inside a request (up to
    # CALENDLY_MAX_RESET_WAIT_SECONDS) and the client would time out
    config = SandboxConfig(webhook_signing_key=SIGNING_KEY, rate_limit_per_minute=1_000_000)
    server = await start_sandbox(config, "127.0.0.1", 0)
    yield server
    await server.close()


def config(base_url: str) -> schemathesis.Config:
    """Credentials for user 1, the contract checks only, bounded generation."""
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "max-time": 25,
            "base-url": base_url,
            "workers": 1,
            "auth": {
                "openapi": {
                    "bearerAuth": {"bearer": SERVICE_TOKEN},
                    "userId": {"api_key": "1"},
                }
            },
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"stateful": {"enabled": False}},
        }
    )


def filter_case(context: Any, case: schemathesis.Case) -> bool:
    """Only requests the HTTP server can parse, i.e. that reach the application at all."""
    query = urlencode(case.query or {}, doseq=True)
    target = f"{case.formatted_path}?{query}".encode()
    headers = [f"{name}: {value}".encode() for name, value in (case.headers or {}).items()]
    return max([len(target), *map(len, headers)]) <= HTTP_LINE_LIMIT


def reconnect(base_url: str) -> None:
    """Connect user 1 again through the whole OAuth round trip (the sandbox approves at once)."""
    auth = requests.get(f"{base_url}{PREFIX}/auth-url", headers=USER, timeout=10).json()
    approved = requests.get(auth["auth_url"], allow_redirects=False, timeout=10)
    query = parse_qs(urlsplit(approved.headers["Location"]).query)
    body = {"code": query["code"][0], "state": query["state"][0]}
    answer = requests.post(
        f"{base_url}{PREFIX}/oauth-callback", json=body, headers=USER, timeout=10
    )
    assert answer.status_code == 200, answer.text


def reconnecting(base_url: str) -> Callable[..., None]:
    """An after_call hook that keeps user 1 connected, so every operation sees live data."""

    def after_call(context: Any, case: schemathesis.Case, response: Any) -> None:
        """Reconnect after a successful DELETE /integration."""
        if (case.method, case.path, response.status_code) == (
            "DELETE",
            f"{PREFIX}/integration",
            204,
        ):
            reconnect(base_url)

    return after_call


def describe(recorder: Any, case_id: str, node: Any) -> tuple[str, str]:
    """(kind of failure, a request that reproduces it) for one failed check."""
    case = recorder.cases[case_id].value
    response = recorder.find_response(case_id=case_id)
    status = response.status_code if response is not None else None
    mode = case._meta.generation.mode.value if case._meta is not None else "?"
    failure = node.failure_info.failure
    kind = f"{node.name} [{status}] {case.operation.label} ({mode}): {failure.title}"
    sample = node.failure_info.code_sample
    return kind, f"{failure.message}\n    {sample[:500]}"


@dataclass
class Outcome:
    """What the run found: one sample per kind of failure, engine errors, operations exercised."""

    failures: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)

    def record(self, event: events.EngineEvent) -> None:
        """Fold one engine event in."""
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            self.operations.add(event.recorder.label)
            for case_id, nodes in event.recorder.checks.items():
                for node in nodes:
                    if node.status == Status.FAILURE:
                        kind, sample = describe(event.recorder, case_id, node)
                        self.failures.setdefault(kind, sample)
        elif isinstance(event, events.NonFatalError):
            self.errors.append(f"{event.label}: {event.value!r}\n{event.info.traceback[-3000:]}")
        elif isinstance(event, events.FatalError):
            self.errors.append(repr(event.exception))


def run(base_url: str) -> Outcome:
    """Every phase against the service, with the document it serves."""
    # from_dict, not from_url: schemathesis leaves out the operation that served the document
    served = requests.get(f"{base_url}/api/v1/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(served, config=config(base_url))
    schema.hook(filter_case)
    schema.hook(reconnecting(base_url))
    outcome = Outcome()
    for event in from_schema(schema).execute():
        outcome.record(event)
    return outcome


async def seed(api: Api, control: Sandbox) -> None:
    """User 1 connected, with a booked, a canceled and a rescheduled appointment."""
    await api.connect()
    event_type = await default_event_type(control)
    booked = [
        await book(control, event_type, f"2030-01-0{day}T10:00:00Z", {"name": f"C{day}",
                   "email": f"c{day}@example.com", "text_reminder_number": "+1 555 0100"})
        for day in (1, 2, 3)
    ]  # fmt: skip
    invitees = [booking["invitees"][0]["uri"] for booking in booked]
    await control.call("POST", "/_sandbox/invitees/cancel", {"invitee": invitees[1]})
    await control.call(
        "POST",
        "/_sandbox/invitees/reschedule",
        {"invitee": invitees[2], "start_time": "2030-01-09T15:00:00Z"},
    )
    await settled(api)


@pytest.mark.timeout(90)
# hypothesis warns when a generated value's repr is large; it is noise, not a contract failure
@pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
async def test_the_service_honours_its_openapi_contract(api: Api, control: Sandbox) -> None:
    # every generated disconnect is followed by a reconnect (a token request), far more often
    # than Calendly's 8 per user per minute; the limit itself is tested elsewhere
    await control.call("POST", "/_sandbox/faults", {"token_requests_per_minute": 10_000})
    await seed(api, control)
    base_url = str(api.client.make_url("")).rstrip("/")
    outcome = await asyncio.to_thread(run, base_url)
    report = "\n".join(f"{kind}\n  {sample}" for kind, sample in sorted(outcome.failures.items()))
    assert (sorted(outcome.failures), outcome.errors) == ([], []), report
    assert sorted(outcome.operations) == sorted(f"{m} {p}" for m, p in documented(build_document()))
