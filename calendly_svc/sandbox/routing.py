"""Routing forms: submissions made through the control API, read through API v2, delivered as
routing_form_submission.created to the organization's subscriptions.

The sandbox keeps one form per organization unless told otherwise ("Sandbox Routing Form",
made on first use). A submission's `submitter` {name, email} names an invitee the sandbox
already knows: the newest invitee with that email in the form's organization (book first);
the submission then routed to that invitee's event type. Without a submitter nobody booked,
and the result is a custom message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import Field

from .api import query_org, require_member, resource
from .api_events import parse_direction
from .control import missing
from .errors import ControlError, invalid_argument, not_found
from .middleware import caller
from .models import Invitee, RoutingForm, RoutingFormSubmission, iso, new_id, utcnow
from .pagination import offset_page
from .render import TRACKING_KEYS
from .schemas import Body, Delivering, Email, read_body
from .state import SANDBOX_STATE, SandboxState, uri_id
from .webhooks import deliver

Json = dict[str, Any]
EVENT = "routing_form_submission.created"
DEFAULT_FORM = "Sandbox Routing Form"
NO_MEETING = {
    "headline": "Thank you for your interest",
    "body": "We aren't able to offer any meetings at this time.",
}


class Submitter(Body):
    """The person who submitted the form (an invitee the sandbox knows)."""

    name: str = Field(min_length=1)
    email: Email


class Answer(Body):
    """One answered question."""

    question: str = Field(min_length=1)
    answer: str


class NewSubmission(Delivering):
    """POST /_sandbox/routing_form_submissions."""

    questions_and_answers: list[Answer] = Field(min_length=1)
    submitter: Submitter | None = None
    routing_form: str | None = None
    organization: str | None = None
    tracking: dict[str, str | None] | None = None


# --- JSON shapes --------------------------------------------------------------------------------


def routing_form_json(state: SandboxState, form: RoutingForm) -> Json:
    """A RoutingForm resource."""
    return {
        "uri": state.uri("routing_forms", form.uuid),
        "organization": state.uri("organizations", form.org_uuid),
        "name": form.name,
        "status": "published",
        "questions": list(form.questions),
        "created_at": iso(form.created_at),
        "updated_at": iso(form.updated_at),
    }


def submission_json(state: SandboxState, submission: RoutingFormSubmission) -> Json:
    """A RoutingFormSubmission resource (also the webhook payload)."""
    submitter = state.invitee_uri_by_id(submission.submitter_uuid)
    return {
        "uri": state.uri("routing_form_submissions", submission.uuid),
        "routing_form": state.uri("routing_forms", submission.form_uuid),
        "questions_and_answers": list(submission.questions_and_answers),
        "tracking": dict(submission.tracking),
        "result": dict(submission.result),
        "submitter": submitter,
        "submitter_type": "Invitee" if submitter else None,
        "created_at": iso(submission.created_at),
        "updated_at": iso(submission.created_at),
    }


# --- control ------------------------------------------------------------------------------------


def _form(state: SandboxState, body: NewSubmission) -> RoutingForm:
    """The named form, else the organization's default form (made on first use)."""
    if body.routing_form is not None:
        form = state.routing_forms.get(uri_id(body.routing_form, "routing_forms") or "")
        if form is None:
            raise missing("routing form")
        return form
    org = state.find_org(body.organization) if body.organization else state.default_org
    if org is None:
        raise missing("organization")
    for form in state.routing_forms.values():
        if form.org_uuid == org.uuid and form.name == DEFAULT_FORM:
            return form
    now = utcnow()
    form = RoutingForm(new_id(), org.uuid, DEFAULT_FORM, now, now)
    state.routing_forms[form.uuid] = form
    return form


def _question_uuid(form: RoutingForm, question: str) -> str:
    """The uuid of the form's question with this text, adding the question when new."""
    for known in form.questions:
        if known["name"] == question:
            return str(known["uuid"])
    uuid = new_id()
    form.questions.append(
        {"uuid": uuid, "name": question, "type": "text", "required": False,
         "answer_choices": None}
    )  # fmt: skip
    form.updated_at = utcnow()
    return uuid


def _submitter(state: SandboxState, form: RoutingForm, person: Submitter) -> Invitee:
    """The newest invitee with the person's email in the form's organization."""
    email = person.email.lower()
    found = [
        invitee
        for invitee in state.invitees.values()
        if invitee.email.lower() == email
        and state.events[invitee.event_uuid].org_uuid == form.org_uuid
    ]
    if not found:
        raise ControlError(404, "submitter not found: book an invitee with this email first")
    return max(found, key=lambda invitee: invitee.created_at)


def _result(state: SandboxState, invitee: Invitee | None) -> dict[str, object]:
    """Where the form routed: the submitter's event type, or a message when nobody booked."""
    if invitee is None:
        return {"type": "custom_message", "value": dict(NO_MEETING)}
    event_type = state.events[invitee.event_uuid].event_type_uuid
    return {"type": "event_type", "value": state.uri("event_types", event_type)}


async def create_submission(request: web.Request) -> web.StreamResponse:
    """POST /_sandbox/routing_form_submissions -> {"resource", "deliveries"}."""
    state = request.app[SANDBOX_STATE]
    body = await read_body(request, NewSubmission)
    form = _form(state, body)
    invitee = _submitter(state, form, body.submitter) if body.submitter else None
    answers: list[dict[str, object]] = [
        {"question_uuid": _question_uuid(form, qa.question), "question": qa.question,
         "answer": qa.answer}
        for qa in body.questions_and_answers
    ]  # fmt: skip
    tracking = dict.fromkeys(TRACKING_KEYS) | (body.tracking or {})
    submission = RoutingFormSubmission(
        new_id(), form.uuid, answers, tracking, _result(state, invitee),
        invitee.uuid if invitee else None, utcnow(),
    )  # fmt: skip
    state.submissions[submission.uuid] = submission
    payload = submission_json(state, submission)
    deliveries = await deliver(state, EVENT, payload, (), form.org_uuid) if body.deliver else []
    return web.json_response({"resource": payload, "deliveries": deliveries})


# --- API v2 -------------------------------------------------------------------------------------


def _readable_form(request: web.Request, ref: str | None) -> RoutingForm:
    """A form the caller's organization owns; 404 when unknown, 403 for other organizations."""
    state = request.app[SANDBOX_STATE]
    form = state.routing_forms.get(uri_id(ref, "routing_forms") or "") if ref else None
    if form is None:
        raise not_found("Routing form not found")
    require_member(state, caller(request), form.org_uuid)
    return form


def _newest_first(query: Mapping[str, str]) -> bool:
    """The sort: created_at:asc (default) or created_at:desc."""
    return not parse_direction(query, "created_at")


async def list_forms(request: web.Request) -> web.StreamResponse:
    """GET /routing_forms?organization= (required)."""
    state, query = request.app[SANDBOX_STATE], request.query
    org = query_org(state, query)
    if org is None:
        raise invalid_argument("organization", "is required")
    require_member(state, caller(request), org.uuid)
    forms = sorted(
        (f for f in state.routing_forms.values() if f.org_uuid == org.uuid),
        key=lambda f: (f.created_at, f.uuid), reverse=_newest_first(query),
    )  # fmt: skip
    return offset_page(request, forms, lambda form: routing_form_json(state, form))


async def get_form(request: web.Request) -> web.StreamResponse:
    """GET /routing_forms/{uuid}."""
    state = request.app[SANDBOX_STATE]
    form = _readable_form(request, state.uri("routing_forms", request.match_info["uuid"]))
    return resource(routing_form_json(state, form))


async def list_submissions(request: web.Request) -> web.StreamResponse:
    """GET /routing_form_submissions?form= (required)."""
    state, query = request.app[SANDBOX_STATE], request.query
    if query.get("form") is None:
        raise invalid_argument("form", "is required")
    form = _readable_form(request, query["form"])
    items = sorted(
        (s for s in state.submissions.values() if s.form_uuid == form.uuid),
        key=lambda s: (s.created_at, s.uuid), reverse=_newest_first(query),
    )  # fmt: skip
    return offset_page(request, items, lambda item: submission_json(state, item))


async def get_submission(request: web.Request) -> web.StreamResponse:
    """GET /routing_form_submissions/{uuid}."""
    state = request.app[SANDBOX_STATE]
    submission = state.submissions.get(request.match_info["uuid"])
    if submission is None:
        raise not_found("Routing form submission not found")
    _readable_form(request, state.uri("routing_forms", submission.form_uuid))
    return resource(submission_json(state, submission))


def add_routes(app: web.Application) -> None:
    """Register the routing form API and control routes."""
    router = app.router
    router.add_get("/routing_forms", list_forms)
    router.add_get("/routing_forms/{uuid}", get_form)
    router.add_get("/routing_form_submissions", list_submissions)
    router.add_get("/routing_form_submissions/{uuid}", get_submission)
    router.add_post("/_sandbox/routing_form_submissions", create_submission)
