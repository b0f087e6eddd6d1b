"""The sandbox answers as Calendly's own spec says: every operation the service relies on,
success and error statuses, validated against the 2023 copy of Calendly's OpenAPI document;
the webhook deliveries against its WebhookPayload schema; what that copy lacks against FACTS.md.

To cover a new sandbox behaviour, add a Case to CASES (an API call and its expected status)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from calendly_spec import CalendlySpec, load_spec, response_schema
from sandbox_helpers import REDIRECT_URI, Receiver, Reply, Sandbox, at, basic_auth, pkce_pair
from yarl import URL

from tests.helpers import shared_calendly_dir

BAD_TOKEN = "not-a-token"
UNKNOWN = "UNKNOWNUUID0000"

# Events documented after the 2023 copy, whose WebhookPayload `event` enum lists only
# invitee.created, invitee.canceled and routing_form_submission.created. FACTS §8 (event_type.*
# joined the subscription enum on 2026-10-23) and §9 (invitee_no_show.* carry the Invitee
# payload, event_type.* the event type object). Value: the components schema of the payload.
NEWER_WEBHOOK_EVENTS = {
    "invitee_no_show.created": "Invitee",
    "invitee_no_show.deleted": "Invitee",
    "event_type.created": "EventType",
    "event_type.updated": "EventType",
    "event_type.deleted": "EventType",
}

# What the 2023 copy does not document, checked against FACTS.md instead (all in one place).
ERROR_BODY = {"$ref": "#/definitions/ErrorResponse"}
FACTS_ONLY_STATUSES = {
    # FACTS §7: over the rate limit -> 429 with the usual error body (the copy has no 429)
    429: ERROR_BODY,
}
# FACTS §13.7: the Scheduling API (2025-10-15) is not in the 2023 copy; its 201 is
# `{"resource": Invitee}` (the 2026 api-evangelist copy agrees), its errors the usual body
INVITEE_RESOURCE = {
    "type": "object",
    "required": ["resource"],
    "properties": {"resource": {"$ref": "#/definitions/Invitee"}},
}
FACTS_ONLY_OPERATIONS = {
    ("POST", "/invitees"): {
        201: INVITEE_RESOURCE,
        **dict.fromkeys((400, 401, 403, 404, 429), ERROR_BODY),
    },
}
# FACTS §7, §13.2: a grant without the route's scope gets 403 (scopes exist since 2026-03-03; the
# copy's 403 messages predate them and the exact InsufficientScopeError body is UNCONFIRMED), so
# these answers are held to the generic error body; Case.newer marks them
SCOPE_403 = ERROR_BODY
# FACTS §9: invitee.* / invitee_no_show.* payloads embed the full scheduled event
FACTS_INVITEE_PAYLOAD_EMBED = {"scheduled_event": "Event"}
# FACTS §6: Invitee fields newer than the copy (values open: strings, URIs or null)
FACTS_INVITEE_FIELDS = ("scheduling_method", "invitee_scheduled_by")
# FACTS §9: the docs' delivery examples (webhook-samples/SOURCE.txt, B); a delivery carries
# at least their keys (they omit some required ones, never add unknown ones)
DOCS_SAMPLES = {
    "invitee.created": "invitee.created.docs.json",
    "invitee.canceled": "invitee.canceled.docs.json",
    "invitee_no_show.created": "invitee_no_show.created.docs.json",
    "invitee_no_show.deleted": "invitee_no_show.deleted.docs.json",
    "event_type.created": "event_type.created.standard.docs.json",
}
# FACTS §7: every API response carries these
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
OAUTH_ERROR = {
    # FACTS §2.2/§2.3: OAuth-style errors
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
OAUTH_TOKEN = {
    # FACTS §2.2: the token endpoint's 200 body (scope optional; created_at is UNIX seconds)
    "type": "object",
    "required": [
        "token_type",
        "access_token",
        "refresh_token",
        "created_at",
        "expires_in",
        "owner",
        "organization",
    ],
    "properties": {
        "token_type": {"enum": ["Bearer"]},
        "access_token": {"type": "string", "minLength": 1},
        "refresh_token": {"type": "string", "minLength": 1},
        "scope": {"type": "string"},
        "created_at": {"type": "integer"},
        "expires_in": {"type": "integer", "minimum": 1},
        "owner": {"type": "string", "format": "uri", "pattern": "/users/[^/]+$"},
        "organization": {"type": "string", "format": "uri", "pattern": "/organizations/[^/]+$"},
    },
}
# FACTS §2.3: revoke answers 200 with an empty object
OAUTH_REVOKE = {"type": "object", "maxProperties": 0}
REVOKE_FORM = {"client_id": "sandbox-client", "client_secret": "sandbox-secret", "token": "x"}
OAUTH_STATUSES = {  # FACTS §2.2: 200, 400 (invalid_grant, also 401), 401, 429
    "authorization_code": 200,
    "code_reused": 400,
    "refresh": 200,
    "refresh_reused": 400,
    "bad_client": 401,
    "bad_grant_type": 400,
    "revoke": 200,
    "rate_limited": 429,
}


@pytest.fixture
def spec() -> CalendlySpec:
    """The 2023 spec copy from the shared folder (skips without it)."""
    shared = shared_calendly_dir()
    if shared is None:
        pytest.skip(
            "Calendly reference folder absent (set CALENDLY_SHARED_DIR, or clone the repository"
            " beside shared/calendly)"
        )
    return allow_newer_events(load_spec(shared))


def allow_newer_events(spec: CalendlySpec) -> CalendlySpec:
    """The spec with NEWER_WEBHOOK_EVENTS accepted wherever it lists subscription events."""
    events = spec.definitions["WebhookSubscription"]["properties"]["events"]["items"]
    events["enum"] = list(dict.fromkeys([*events["enum"], *NEWER_WEBHOOK_EVENTS]))
    return spec


@dataclass
class World:
    """Accounts, bookings and a subscription to drive the sandbox into every status."""

    sandbox: Sandbox
    tokens: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def fill(self, value: Any) -> Any:
        """Replace {name} placeholders in strings (recursively) with refs."""
        if isinstance(value, str):
            return value.format_map(self.refs)
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.fill(item) for item in value]
        return value


async def _account(world: World, name: str, email: str | None, **extra: Any) -> None:
    """A user with a token; refs `{name}` (user URI), `{name}_id`, `{name}_org`."""
    if email is not None:
        await world.sandbox.add_user(email, **extra)
    tokens = await world.sandbox.connect(login_hint=email)
    world.tokens[name] = tokens["access_token"]
    world.refs[name] = tokens["owner"]
    world.refs[f"{name}_id"] = tokens["owner"].rsplit("/", 1)[1]
    world.refs[f"{name}_org"] = tokens["organization"]


async def _event_type(world: World, name: str, user: str, **extra: Any) -> str:
    """A new event type of user; refs `{name}` (URI) and `{name}_id`."""
    body = {"user": world.refs[user], "name": name.title(), "duration": 30, **extra}
    uri: str = (await world.sandbox.control("POST", "/event_types", body))["resource"]["uri"]
    world.refs[name], world.refs[f"{name}_id"] = uri, uri.rsplit("/", 1)[1]
    return uri


async def _booking(
    world: World, name: str, event_type: str, start: str, host: str | None = None, **invitee: Any
) -> str:
    """A booking; refs `{name}_event` / `{name}_invitee` (uuids); returns the invitee URI."""
    person = {"name": "Guest", "email": f"{name}@example.com", **invitee}
    body = {"event_type": world.refs[event_type], "start_time": start, "invitees": [person]}
    body |= {"host": host} if host is not None else {}
    made = await world.sandbox.control("POST", "/bookings", body)
    uri: str = made["invitees"][0]["uri"]
    world.refs[f"{name}_uri"] = uri
    world.refs[f"{name}_event"] = made["event"]["uri"].rsplit("/", 1)[1]
    world.refs[f"{name}_invitee"] = uri.rsplit("/", 1)[1]
    return uri


async def _subscribe(world: World, url: str) -> None:
    """The owner's organization subscription to every event the sandbox emits."""
    body = {
        "url": url,
        "events": [
            "invitee.created",
            "invitee.canceled",
            "routing_form_submission.created",
            *NEWER_WEBHOOK_EVENTS,
        ],
        "organization": world.refs["owner_org"],
        "scope": "organization",
    }
    reply = await world.sandbox.api(
        world.tokens["owner"], "/webhook_subscriptions", "POST", json=body
    )
    assert reply.status == 201, reply
    world.refs["sub_id"] = reply.body["resource"]["uri"].rsplit("/", 1)[1]


async def _routing(world: World) -> None:
    """A submission by the rich booking's invitee; refs `{form_id}` and `{submission_id}`."""
    body = {
        "questions_and_answers": [{"question": "Company", "answer": "Acme"}],
        "submitter": {"name": "Guest", "email": "rich@example.com"},
    }
    made = (await world.sandbox.control("POST", "/routing_form_submissions", body))["resource"]
    world.refs["form_id"] = made["routing_form"].rsplit("/", 1)[1]
    world.refs["form"] = made["routing_form"]
    world.refs["submission_id"] = made["uri"].rsplit("/", 1)[1]


async def _team(world: World) -> None:
    """A round robin type of owner and member, and a collective one; a booking of each."""
    hosts = ["sandbox@example.com", "member@example.com"]
    for name, pooling in (("team", "round_robin"), ("crew", "collective")):
        body = {"name": name.title(), "duration": 30, "pooling_type": pooling, "hosts": hosts}
        uri = (await world.sandbox.control("POST", "/event_types", body))["resource"]["uri"]
        world.refs[f"{name}_id"] = uri.rsplit("/", 1)[1]
        world.refs[name] = uri
    await _booking(world, "robin", "team", at(300), host="member@example.com")
    await _booking(world, "collective", "crew", at(360))


async def _event_type_life(world: World) -> None:
    """event_type.created, .updated and .deleted deliveries."""
    uri = await _event_type(world, "short", "owner", duration=15)
    path = "/event_types/" + uri.rsplit("/", 1)[1]
    await world.sandbox.control("PATCH", path, {"name": "Shorter"})
    await world.sandbox.control("DELETE", path, {})


@pytest.fixture
async def world(sandbox: Sandbox, receiver: Receiver) -> World:
    """Owner (default user), member and an outsider (own organization) with bookings in every
    state, the owner's organization subscription delivering to the receiver."""
    world = World(sandbox)
    world.refs["unknown"] = UNKNOWN
    await _account(world, "owner", None)
    # the owner again, granted only users:read: every other route lacks its scope (403)
    world.tokens["narrow"] = (await sandbox.connect(scope="users:read"))["access_token"]
    await _account(world, "member", "member@example.com", role="user")
    await _account(world, "outsider", "outsider@example.com", new_organization=True)
    await _subscribe(world, receiver.url)
    await _event_type(world, "solo", "owner")
    await _event_type(world, "group", "owner", kind="group", invitee_limit=3)
    await _event_type(world, "theirs", "outsider")
    await _booking(
        world,
        "rich",
        "solo",
        at(0),
        first_name="Rich",
        last_name="Guest",
        text_reminder_number="+1 555 0100",
        questions_and_answers=[{"question": "Why?", "answer": "Line 1\nLine 2"}],
        tracking={"utm_source": "newsletter", "utm_campaign": "fall"},
    )
    canceled = await _booking(world, "canceled", "solo", at(60))
    await sandbox.control("POST", "/invitees/cancel", {"invitee": canceled, "reason": "Conflict"})
    moved = await _booking(world, "moved", "solo", at(120))
    await sandbox.control("POST", "/invitees/reschedule", {"invitee": moved, "start_time": at(180)})
    noshow = await _booking(world, "noshow", "group", at(240))
    await sandbox.control("POST", "/invitees/no_show", {"invitee": noshow})
    await sandbox.control("DELETE", "/invitees/no_show", {"invitee": noshow})
    await sandbox.control("POST", "/invitees/no_show", {"invitee": noshow})
    marked = await sandbox.api(world.tokens["owner"], noshow)
    world.refs["noshow_mark"] = marked.body["resource"]["no_show"]["uri"].rsplit("/", 1)[1]
    await _event_type_life(world)
    await _routing(world)
    await _team(world)
    first = await sandbox.api(
        world.tokens["owner"],
        "/scheduled_events",
        params={"user": world.refs["owner"], "count": "1"},
    )
    world.refs["events_page_2"] = first.body["pagination"]["next_page"]
    return world


@dataclass(frozen=True)
class Case:
    """One API call as a caller makes it and the status the sandbox must answer."""

    id: str
    status: int
    method: str
    path: str
    token: str = "owner"  # an account of World, or BAD_TOKEN
    params: dict[str, str] | None = None
    body: Any = None
    faults: dict[str, int] | None = None  # POSTed to /_sandbox/faults first
    warmup: int = 0  # identical calls made (and not checked) before the checked one
    newer: Any = None  # the FACTS schema of an answer newer than the copy (SCOPE_403)


OWNER_EVENTS = {"user": "{owner}"}
ORG_HOOKS = {"organization": "{owner_org}", "scope": "organization"}
NEW_HOOK = {"url": "https://hooks.example.com/new", "events": ["invitee.created"]}

DAY_TIMES = {
    "event_type": "{solo}",
    "start_time": "2030-01-01T00:00:00Z",
    "end_time": "2030-01-02T00:00:00Z",
}
SINGLE_USE = {"max_event_count": 1, "owner": "{solo}", "owner_type": "EventType"}
NEW_INVITEE = {
    "event_type": "{solo}",
    "start_time": "2030-01-01T16:00:00Z",  # the world's bookings end at 15:30
    "invitee": {"name": "Pat Doe", "email": "pat@example.com", "timezone": "Europe/Paris"},
}

# The operations the service relies on (and their siblings), answered with success.
SUCCESS = [
    Case("users-me", 200, "GET", "/users/me"),
    Case("user", 200, "GET", "/users/{member_id}"),
    Case("event-types", 200, "GET", "/event_types", params=OWNER_EVENTS),
    Case("event-types-org", 200, "GET", "/event_types", params={"organization": "{owner_org}"}),
    Case("event-type", 200, "GET", "/event_types/{group_id}"),
    Case("events", 200, "GET", "/scheduled_events", params=OWNER_EVENTS),
    Case("events-page-2", 200, "GET", "{events_page_2}"),
    Case(
        "events-org",
        200,
        "GET",
        "/scheduled_events",
        params={"organization": "{owner_org}", "status": "canceled", "sort": "start_time:desc"},
    ),
    Case("event-canceled", 200, "GET", "/scheduled_events/{canceled_event}"),
    Case("event-group", 200, "GET", "/scheduled_events/{noshow_event}"),
    Case("invitees", 200, "GET", "/scheduled_events/{rich_event}/invitees"),
    Case("invitees-canceled", 200, "GET", "/scheduled_events/{canceled_event}/invitees"),
    Case("invitees-rescheduled", 200, "GET", "/scheduled_events/{moved_event}/invitees"),
    Case("invitees-no-show", 200, "GET", "/scheduled_events/{noshow_event}/invitees"),
    Case("invitee", 200, "GET", "/scheduled_events/{rich_event}/invitees/{rich_invitee}"),
    Case(
        "memberships",
        200,
        "GET",
        "/organization_memberships",
        params={"organization": "{owner_org}"},
    ),
    Case("memberships-user", 200, "GET", "/organization_memberships", params={"user": "{member}"}),
    Case(
        "hook-create",
        201,
        "POST",
        "/webhook_subscriptions",
        body={**NEW_HOOK, "organization": "{owner_org}", "scope": "user", "user": "{owner}"},
    ),
    Case("event-type-round-robin", 200, "GET", "/event_types/{team_id}"),
    Case("event-type-collective", 200, "GET", "/event_types/{crew_id}"),
    Case("event-round-robin", 200, "GET", "/scheduled_events/{robin_event}"),
    Case("event-collective", 200, "GET", "/scheduled_events/{collective_event}"),
    Case("events-as-team-host", 200, "GET", "/scheduled_events", "member", {"user": "{member}"}),
    Case("routing-forms", 200, "GET", "/routing_forms", params={"organization": "{owner_org}"}),
    Case("routing-form", 200, "GET", "/routing_forms/{form_id}"),
    Case("routing-submissions", 200, "GET", "/routing_form_submissions", params={"form": "{form}"}),
    Case("routing-submission", 200, "GET", "/routing_form_submissions/{submission_id}"),
    Case("hooks", 200, "GET", "/webhook_subscriptions", params=ORG_HOOKS),
    Case("hook", 200, "GET", "/webhook_subscriptions/{sub_id}"),
    Case("hook-delete", 204, "DELETE", "/webhook_subscriptions/{sub_id}"),
    # acting on Calendly (FACTS §13)
    Case(
        "cancel", 201, "POST", "/scheduled_events/{rich_event}/cancellation", body={"reason": "Ill"}
    ),
    Case("cancel-no-body", 201, "POST", "/scheduled_events/{rich_event}/cancellation"),
    Case("cancel-group", 201, "POST", "/scheduled_events/{noshow_event}/cancellation", body={}),
    Case("no-show-create", 201, "POST", "/invitee_no_shows", body={"invitee": "{rich_uri}"}),
    Case("no-show", 200, "GET", "/invitee_no_shows/{noshow_mark}"),
    Case("no-show-delete", 204, "DELETE", "/invitee_no_shows/{noshow_mark}"),
    Case("available-times", 200, "GET", "/event_type_available_times", params=DAY_TIMES),
    Case(
        "available-times-group",
        200,
        "GET",
        "/event_type_available_times",
        params={**DAY_TIMES, "event_type": "{group}"},
    ),
    Case("scheduling-link", 201, "POST", "/scheduling_links", body=SINGLE_USE),
    Case("invitee-create", 201, "POST", "/invitees", body=NEW_INVITEE),
]

# Every one of those with a token Calendly does not know.
UNAUTHENTICATED = [
    Case(f"{case.id}-bad-token", 401, case.method, case.path, BAD_TOKEN, case.params, case.body)
    for case in SUCCESS
]

ERRORS = [
    # 400: bad parameters
    Case("event-types-no-filter", 400, "GET", "/event_types"),
    Case("events-count-0", 400, "GET", "/scheduled_events", params={**OWNER_EVENTS, "count": "0"}),
    Case(
        "events-bad-status", 400, "GET", "/scheduled_events", params={**OWNER_EVENTS, "status": "x"}
    ),
    Case(
        "invitees-bad-sort",
        400,
        "GET",
        "/scheduled_events/{rich_event}/invitees",
        params={"sort": "x"},
    ),
    Case("memberships-no-filter", 400, "GET", "/organization_memberships"),
    Case(
        "hook-no-url", 400, "POST", "/webhook_subscriptions", body={"events": ["invitee.created"]}
    ),
    Case(
        "hooks-no-scope",
        400,
        "GET",
        "/webhook_subscriptions",
        params={"organization": "{owner_org}"},
    ),
    Case(
        "cancel-reason-too-long",
        400,
        "POST",
        "/scheduled_events/{rich_event}/cancellation",
        body={"reason": "x" * 10_001},
    ),
    Case("no-show-no-invitee", 400, "POST", "/invitee_no_shows", body={}),
    Case(
        "no-show-twice", 400, "POST", "/invitee_no_shows", body={"invitee": "{rich_uri}"}, warmup=1
    ),
    Case(
        "available-times-too-long",
        400,
        "GET",
        "/event_type_available_times",
        params={**DAY_TIMES, "end_time": "2030-02-02T00:00:00Z"},
    ),
    Case(
        "available-times-past",
        400,
        "GET",
        "/event_type_available_times",
        params={**DAY_TIMES, "start_time": "2020-01-01T00:00:00Z"},
    ),
    Case(
        "scheduling-link-count-2",
        400,
        "POST",
        "/scheduling_links",
        body={**SINGLE_USE, "max_event_count": 2},
    ),
    Case(
        "invitee-create-no-email",
        400,
        "POST",
        "/invitees",
        body={**NEW_INVITEE, "invitee": {"name": "Pat", "timezone": "UTC"}},
    ),
    Case(
        "invitee-create-slot-taken",
        400,
        "POST",
        "/invitees",
        body=NEW_INVITEE,
        warmup=1,
    ),
    # 403: allowed to call, not to see this
    Case(
        "cancel-canceled",
        403,
        "POST",
        "/scheduled_events/{canceled_event}/cancellation",
    ),
    Case("cancel-as-member", 403, "POST", "/scheduled_events/{rich_event}/cancellation", "member"),
    Case("no-show-canceled", 403, "POST", "/invitee_no_shows", body={"invitee": "{canceled_uri}"}),
    Case(
        "available-times-other-org",
        403,
        "GET",
        "/event_type_available_times",
        params={**DAY_TIMES, "event_type": "{theirs}"},
    ),
    Case(
        "scheduling-link-other-org",
        403,
        "POST",
        "/scheduling_links",
        body={**SINGLE_USE, "owner": "{theirs}"},
    ),
    Case(
        "cancel-ungranted",
        403,
        "POST",
        "/scheduled_events/{rich_event}/cancellation",
        "narrow",
        newer=SCOPE_403,
    ),
    Case("invitee-create-ungranted", 403, "POST", "/invitees", "narrow", body=NEW_INVITEE),
    Case("user-other-org", 403, "GET", "/users/{outsider_id}"),
    Case("event-types-other-org", 403, "GET", "/event_types", params={"user": "{outsider}"}),
    Case("event-type-other-org", 403, "GET", "/event_types/{theirs_id}"),
    Case("events-other-user-alone", 403, "GET", "/scheduled_events", "member", OWNER_EVENTS),
    Case(
        "events-org-as-member",
        403,
        "GET",
        "/scheduled_events",
        "member",
        {"organization": "{owner_org}"},
    ),
    Case("event-as-member", 403, "GET", "/scheduled_events/{rich_event}", "member"),
    Case("invitees-as-member", 403, "GET", "/scheduled_events/{rich_event}/invitees", "member"),
    Case(
        "invitee-as-member",
        403,
        "GET",
        "/scheduled_events/{rich_event}/invitees/{rich_invitee}",
        "member",
    ),
    Case(
        "memberships-other-org",
        403,
        "GET",
        "/organization_memberships",
        params={"organization": "{outsider_org}"},
    ),
    Case(
        "hook-org-scope-as-member",
        403,
        "POST",
        "/webhook_subscriptions",
        "member",
        body={**NEW_HOOK, "organization": "{owner_org}", "scope": "organization"},
    ),
    Case("hooks-org-scope-as-member", 403, "GET", "/webhook_subscriptions", "member", ORG_HOOKS),
    Case("hook-as-member", 403, "GET", "/webhook_subscriptions/{sub_id}", "member"),
    Case("hook-delete-as-member", 403, "DELETE", "/webhook_subscriptions/{sub_id}", "member"),
    # a grant without the route's scope (FACTS §2.4, §13.2)
    Case(
        "event-types-ungranted", 403, "GET", "/event_types", "narrow", OWNER_EVENTS, newer=SCOPE_403
    ),
    Case(
        "events-ungranted", 403, "GET", "/scheduled_events", "narrow", OWNER_EVENTS, newer=SCOPE_403
    ),
    Case(
        "invitees-ungranted",
        403,
        "GET",
        "/scheduled_events/{rich_event}/invitees",
        "narrow",
        newer=SCOPE_403,
    ),
    Case(
        "hooks-ungranted",
        403,
        "GET",
        "/webhook_subscriptions",
        "narrow",
        ORG_HOOKS,
        newer=SCOPE_403,
    ),
    Case(
        "hook-create-ungranted",
        403,
        "POST",
        "/webhook_subscriptions",
        "narrow",
        body={**NEW_HOOK, "organization": "{owner_org}", "scope": "organization"},
        newer=SCOPE_403,
    ),
    Case(
        "memberships-ungranted",
        403,
        "GET",
        "/organization_memberships",
        "narrow",
        {"user": "{owner}"},
        newer=SCOPE_403,
    ),
    Case(
        "routing-form-ungranted", 403, "GET", "/routing_forms/{form_id}", "narrow", newer=SCOPE_403
    ),
    Case("routing-form-other-org", 403, "GET", "/routing_forms/{form_id}", "outsider"),
    Case(
        "routing-submission-other-org",
        403,
        "GET",
        "/routing_form_submissions/{submission_id}",
        "outsider",
    ),
    # 404: unknown resources
    Case("cancel-unknown", 404, "POST", "/scheduled_events/{unknown}/cancellation"),
    Case(
        "cancel-other-org", 404, "POST", "/scheduled_events/{rich_event}/cancellation", "outsider"
    ),
    Case("no-show-unknown", 404, "GET", "/invitee_no_shows/{unknown}"),
    Case("no-show-delete-unknown", 404, "DELETE", "/invitee_no_shows/{unknown}"),
    Case(
        "no-show-create-unknown",
        404,
        "POST",
        "/invitee_no_shows",
        body={"invitee": "{rich_uri}X"},
    ),
    Case(
        "available-times-unknown",
        404,
        "GET",
        "/event_type_available_times",
        params={**DAY_TIMES, "event_type": "{solo}X"},
    ),
    Case(
        "scheduling-link-unknown",
        404,
        "POST",
        "/scheduling_links",
        body={**SINGLE_USE, "owner": "{solo}X"},
    ),
    Case(
        "invitee-create-unknown-type",
        404,
        "POST",
        "/invitees",
        body={**NEW_INVITEE, "event_type": "{solo}X"},
    ),
    Case("routing-form-unknown", 404, "GET", "/routing_forms/{unknown}"),
    Case("routing-submission-unknown", 404, "GET", "/routing_form_submissions/{unknown}"),
    Case("user-unknown", 404, "GET", "/users/{unknown}"),
    Case("event-type-unknown", 404, "GET", "/event_types/{unknown}"),
    Case("event-types-unknown-user", 404, "GET", "/event_types", params={"user": "{owner}X"}),
    Case(
        "events-unknown-org",
        404,
        "GET",
        "/scheduled_events",
        params={"organization": "{owner_org}X"},
    ),
    Case("event-unknown", 404, "GET", "/scheduled_events/{unknown}"),
    Case("invitees-unknown-event", 404, "GET", "/scheduled_events/{unknown}/invitees"),
    Case("invitee-unknown", 404, "GET", "/scheduled_events/{rich_event}/invitees/{unknown}"),
    Case(
        "memberships-unknown-org",
        404,
        "GET",
        "/organization_memberships",
        params={"organization": "{owner_org}X"},
    ),
    Case(
        "hook-unknown-org",
        404,
        "POST",
        "/webhook_subscriptions",
        body={**NEW_HOOK, "organization": "{owner_org}X", "scope": "organization"},
    ),
    Case(
        "hooks-unknown-org",
        404,
        "GET",
        "/webhook_subscriptions",
        params={**ORG_HOOKS, "organization": "{owner_org}X"},
    ),
    Case("hook-unknown", 404, "GET", "/webhook_subscriptions/{unknown}"),
    Case("hook-delete-unknown", 404, "DELETE", "/webhook_subscriptions/{unknown}"),
    # 409: the subscription URL is taken in the organization
    Case(
        "hook-duplicate-url",
        409,
        "POST",
        "/webhook_subscriptions",
        body={**NEW_HOOK, "organization": "{owner_org}", "scope": "organization"},
        warmup=1,
    ),
    # 429 (FACTS §7) and an injected 500
    Case(
        "users-me-rate-limited",
        429,
        "GET",
        "/users/me",
        faults={"rate_limit_per_minute": 1},
        warmup=1,
    ),
    Case(
        "events-rate-limited",
        429,
        "GET",
        "/scheduled_events",
        params=OWNER_EVENTS,
        faults={"rate_limit_per_minute": 1},
        warmup=1,
    ),
    Case(
        "invitee-create-over-plan-limit",
        429,
        "POST",
        "/invitees",
        body=NEW_INVITEE,
        faults={"scheduling_limits": [[1, 60]]},
        warmup=1,
    ),
    Case(
        "cancel-server-error",
        500,
        "POST",
        "/scheduled_events/{rich_event}/cancellation",
        faults={"fail_next": 1, "fail_status": 500},
    ),
    Case(
        "users-me-server-error",
        500,
        "GET",
        "/users/me",
        faults={"fail_next": 1, "fail_status": 500},
    ),
]

CASES = SUCCESS + UNAUTHENTICATED + ERRORS


async def _call(world: World, case: Case) -> Reply:
    """Make the case's call (after its faults and warm-up calls)."""
    if case.faults is not None:
        await world.sandbox.control("POST", "/faults", case.faults)
    token = world.tokens.get(case.token, case.token)
    kwargs: dict[str, Any] = {"method": case.method}
    if case.params is not None:
        kwargs["params"] = world.fill(case.params)
    if case.body is not None:
        kwargs["json"] = world.fill(case.body)
    for _ in range(case.warmup):
        await world.sandbox.api(token, world.fill(case.path), **kwargs)
    return await world.sandbox.api(token, world.fill(case.path), **kwargs)


def _expected_schema(spec: CalendlySpec, method: str, path: str, status: int) -> Any:
    """The body schema the spec (or FACTS, for what it lacks) gives this answer; None: no body."""
    operation = spec.operation(method, path)
    facts_only = FACTS_ONLY_OPERATIONS.get((method, path))
    if operation is None and facts_only is not None:
        assert status in facts_only, f"{method} {path}: {status} not in FACTS"
        return facts_only[status]
    assert operation is not None, f"{method} {path} is not in the 2023 spec copy"
    response = spec.response(operation, status)
    if response is None:
        assert status in FACTS_ONLY_STATUSES, (
            f"{method} {operation.template}: {status} undocumented"
        )
        return FACTS_ONLY_STATUSES[status]
    return response_schema(response)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.status}-{case.method}-{case.id}")
async def test_api_answers_match_calendlys_spec(
    spec: CalendlySpec, world: World, case: Case
) -> None:
    reply = await _call(world, case)
    path = URL(world.fill(case.path)).path
    newer = case.newer is not None and reply.status == case.status
    schema = case.newer if newer else _expected_schema(spec, case.method, path, reply.status)
    errors = spec.errors(schema, reply.body) if schema is not None else []
    assert (reply.status, errors) == (case.status, []), reply.body
    if schema is None:
        assert reply.body is None
    assert [name for name in RATE_LIMIT_HEADERS if name not in reply.headers] == []


async def test_webhook_deliveries_match_calendlys_spec(
    spec: CalendlySpec, world: World, receiver: Receiver
) -> None:
    # five solo/group bookings and the reschedule's new half, plus the two team bookings
    expected = ["invitee.created"] * 7 + ["invitee.canceled"] * 2
    expected += ["routing_form_submission.created"]
    expected += ["invitee_no_show.created"] * 2 + ["invitee_no_show.deleted"]
    # the solo, group, short and two team types are the owner's organization's (the outsider's
    # is another organization's)
    expected += ["event_type.created"] * 5 + ["event_type.updated", "event_type.deleted"]
    await receiver.wait_for(len(expected))
    bodies = [json.loads(item.body) for item in receiver.received]
    errors = {
        f"{index}:{body['event']}": _delivery_errors(spec, body)
        for index, body in enumerate(bodies)
    }
    assert sorted(body["event"] for body in bodies) == sorted(expected)
    assert errors == {key: [] for key in errors}


async def test_webhook_deliveries_carry_every_key_of_calendlys_samples(
    spec: CalendlySpec, world: World, receiver: Receiver
) -> None:
    samples = _docs_samples()
    missing: dict[str, set[str]] = {event: set() for event in samples}
    for item in receiver.received:
        body = json.loads(item.body)
        if body["event"] in samples:
            missing[body["event"]] |= _missing_keys(samples[body["event"]], body)
    assert missing == {event: set() for event in samples}


def _docs_samples() -> dict[str, Any]:
    """Calendly's published delivery examples (FACTS §9, webhook-samples/), by event."""
    shared = shared_calendly_dir()
    assert shared is not None
    return {
        event: json.loads((shared / "webhook-samples" / name).read_text(encoding="utf-8"))
        for event, name in DOCS_SAMPLES.items()
    }


def _missing_keys(sample: dict[str, Any], body: dict[str, Any]) -> set[str]:
    """Keys of the sample's envelope, payload and embedded event the delivery lacks."""
    missing = {key for key in sample if key not in body}
    payload, delivered = sample["payload"], body["payload"]
    missing |= {f"payload.{key}" for key in payload if key not in delivered}
    embedded = delivered.get("scheduled_event") or {}
    missing |= {
        f"payload.scheduled_event.{key}"
        for key in payload.get("scheduled_event", {})
        if key not in embedded
    }
    return missing


def _delivery_errors(spec: CalendlySpec, body: dict[str, Any]) -> list[str]:
    """Violations of WebhookPayload (widened only for NEWER_WEBHOOK_EVENTS) and of FACTS §9."""
    envelope = spec.definitions["WebhookPayload"]
    newer = NEWER_WEBHOOK_EVENTS.get(body["event"])
    if newer is not None:
        properties = {
            **envelope["properties"],
            "event": {"enum": [body["event"]]},
            "payload": spec.component(newer),
        }
        envelope = {**envelope, "properties": properties}
    errors = spec.errors(envelope, body)
    if body["event"].startswith("invitee"):
        for name, component in FACTS_INVITEE_PAYLOAD_EMBED.items():
            found = body["payload"].get(name)
            errors += [
                f"payload/{name}: {e}" for e in spec.errors(spec.component(component), found)
            ]
        errors += [
            f"payload: no {key}" for key in FACTS_INVITEE_FIELDS if key not in body["payload"]
        ]
    return errors


async def test_oauth_answers_match_facts(spec: CalendlySpec, sandbox: Sandbox) -> None:
    verifier, challenge = pkce_pair()
    code = await sandbox.authorize(challenge)
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    replies = {"authorization_code": await sandbox.token_request(grant)}
    replies["code_reused"] = await sandbox.token_request(grant)
    refresh = {"grant_type": "refresh_token", "refresh_token": _refresh(replies)}
    replies["refresh"] = await sandbox.token_request(refresh)
    replies["refresh_reused"] = await sandbox.token_request(refresh)
    replies["bad_client"] = await sandbox.token_request(refresh, basic_auth("x", "y"))
    replies["bad_grant_type"] = await sandbox.token_request({"grant_type": "password"})
    replies["revoke"] = await sandbox.request("POST", "/oauth/revoke", data=REVOKE_FORM)
    await sandbox.control("POST", "/faults", {"token_requests_per_minute": 1})
    allowed = await sandbox.token_request({**refresh, "refresh_token": _refresh(replies)})
    replies["rate_limited"] = await sandbox.token_request(
        {**refresh, "refresh_token": allowed.body["refresh_token"]}
    )
    checked = {
        name: (reply.status, spec.errors(_oauth_schema(name, reply.status), reply.body))
        for name, reply in replies.items()
    }
    assert checked == {name: (status, []) for name, status in OAUTH_STATUSES.items()}


def _refresh(replies: dict[str, Reply]) -> str:
    """The refresh token of the newest successful grant."""
    granted = [reply for reply in replies.values() if "refresh_token" in (reply.body or {})]
    return str(granted[-1].body["refresh_token"])


def _oauth_schema(name: str, status: int) -> dict[str, Any]:
    """FACTS §2.2/§2.3 body of an OAuth answer."""
    if status != 200:
        return OAUTH_ERROR
    return OAUTH_REVOKE if name == "revoke" else OAUTH_TOKEN
