"""Routing form submissions: made through the control API, delivered to organization-scope
subscriptions like Calendly's sample, and read back through API v2."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sandbox_helpers import Receiver, Sandbox, at
from test_sandbox_webhooks import Account, member_account, verify

from tests.helpers import shared_calendly_dir

EVENT = "routing_form_submission.created"
PAYLOAD_KEYS = {
    "uri", "routing_form", "questions_and_answers", "tracking", "result", "submitter",
    "submitter_type", "created_at", "updated_at",
}  # fmt: skip
ANSWERS = [{"question": "What is your industry?", "answer": "IT & Software"}]


async def _submit(sandbox: Sandbox, **body: Any) -> Any:
    """POST /_sandbox/routing_form_submissions."""
    return await sandbox.control(
        "POST", "/routing_form_submissions", {"questions_and_answers": ANSWERS, **body}
    )


async def test_submission_is_delivered_like_calendly_sends_it(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    owner = Account(sandbox, await sandbox.connect())
    await owner.subscribe(receiver.url, [EVENT])
    booking = await sandbox.book(await sandbox.default_event_type(), at(60), "lead@example.com")
    made = await _submit(
        sandbox, submitter={"name": "Lead", "email": "LEAD@example.com"},
        tracking={"utm_source": "newsletter"},
    )  # fmt: skip
    await receiver.wait_for(1)
    delivered = verify(receiver.received[0])
    payload = delivered["payload"]
    [answer] = payload["questions_and_answers"]
    assert (delivered["event"], payload) == (EVENT, made["resource"])
    assert set(payload) == PAYLOAD_KEYS
    assert (payload["submitter"], payload["submitter_type"]) == (
        booking["invitees"][0]["uri"],
        "Invitee",
    )
    assert payload["result"] == {"type": "event_type", "value": booking["event"]["event_type"]}
    assert (answer["question"], answer["answer"]) == ("What is your industry?", "IT & Software")
    assert payload["tracking"]["utm_source"] == "newsletter"
    assert payload["tracking"]["utm_campaign"] is None
    assert made["deliveries"][0]["status"] == 200


async def test_payload_has_the_keys_of_the_docs_sample(sandbox: Sandbox) -> None:
    shared = shared_calendly_dir()
    if shared is None:
        pytest.skip("../shared/calendly (or CALENDLY_SHARED_DIR) is absent")
    sample = json.loads(
        (shared / "webhook-samples" / "routing_form_submission.created.docs.json").read_text()
    )
    made = (await _submit(sandbox))["resource"]
    assert set(made) == set(sample["payload"])
    assert set(made["questions_and_answers"][0]) == set(
        sample["payload"]["questions_and_answers"][0]
    )
    assert set(made["tracking"]) == set(sample["payload"]["tracking"])


async def test_without_submitter_nobody_booked(sandbox: Sandbox) -> None:
    first = (await _submit(sandbox))["resource"]
    second = (await _submit(sandbox))["resource"]
    assert (first["submitter"], first["submitter_type"], first["result"]["type"]) == (
        None,
        None,
        "custom_message",
    )
    assert first["routing_form"] == second["routing_form"]
    assert (
        first["questions_and_answers"][0]["question_uuid"]
        == second["questions_and_answers"][0]["question_uuid"]
    )


async def test_unknown_submitter_or_form_is_refused(sandbox: Sandbox) -> None:
    person = {"name": "Nobody", "email": "nobody@example.com"}
    unknown = await sandbox.control(
        "POST", "/routing_form_submissions",
        {"questions_and_answers": ANSWERS, "submitter": person}, status=404,
    )  # fmt: skip
    no_form = await sandbox.control(
        "POST", "/routing_form_submissions",
        {"questions_and_answers": ANSWERS, "routing_form": f"{sandbox.url}/routing_forms/X"},
        status=404,
    )  # fmt: skip
    empty = await sandbox.control(
        "POST", "/routing_form_submissions", {"questions_and_answers": []}, status=400
    )
    assert unknown["error"] == "submitter not found: book an invitee with this email first"
    assert no_form["error"] == "routing form not found"
    assert empty["error"] == "invalid request body"


async def test_forms_and_submissions_are_read_by_members_only(sandbox: Sandbox) -> None:
    owner = Account(sandbox, await sandbox.connect())
    made = (await _submit(sandbox))["resource"]
    await _submit(sandbox)
    member = await member_account(sandbox)
    await sandbox.add_user("outsider@example.com", new_organization=True)
    outsider = Account(sandbox, await sandbox.connect(login_hint="outsider@example.com"))
    forms = await sandbox.api(owner.token, "/routing_forms", params={"organization": owner.org})
    form_uri = made["routing_form"]
    listed = await sandbox.api(
        member.token, "/routing_form_submissions", params={"form": form_uri, "count": "1"}
    )
    one = await sandbox.api(member.token, made["uri"])
    form = await sandbox.api(member.token, form_uri)
    refused = await sandbox.api(outsider.token, made["uri"])
    missing = await sandbox.api(owner.token, "/routing_form_submissions")
    assert [f["uri"] for f in forms.body["collection"]] == [form_uri]
    assert (listed.body["collection"], listed.body["pagination"]["count"]) == ([made], 1)
    assert listed.body["pagination"]["next_page"] is not None
    assert (one.status, one.body["resource"]) == (200, made)
    assert form.body["resource"]["questions"][0]["name"] == "What is your industry?"
    assert refused.status == 403
    assert (missing.status, missing.body["details"][0]["parameter"]) == (400, "form")
