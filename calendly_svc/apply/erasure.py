"""Erasing one client's personal data within the caller's integration (LGPD, GDPR).

Runs in one transaction under the integration's apply lock, so no webhook, sync or reschedule
check applies anything of the person meanwhile; afterwards the tombstones of their invitee and
submission URIs make every apply skip them (`ignored` / `erased`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import structlog

from calendly_svc.apply.tombstones import Tombstones
from calendly_svc.store import queries
from calendly_svc.store.queries import Conn

log = structlog.get_logger(__name__)
# what an erased appointment's calendly_invitee_uri says (anonymize_appointments in sql/)
ERASED_URI = "erased"
# the kinds of rows DELETE /clients/{id} counts
ERASED_KINDS = (
    "clients", "appointments", "invitees", "reschedule_waits", "events_seen",
    "routing_form_submissions", "webhook_events", "outbox", "tombstones", "actions",
    "scheduling_links",
)  # fmt: skip


def email_pattern(email: str) -> str:
    """A Postgres regular expression matching a lower-case email as a whole address, not as
    part of a longer one (`ana@example.org` in `joana@example.org` or `ana@example.org.br`)."""
    return rf"(?<![a-z0-9._%+-]){re.escape(email)}(?![a-z0-9_-])(?!\.[a-z0-9])"


@dataclass(slots=True)
class _Person:
    """What identifies the person in one integration: invitee URIs, appointments, events."""

    uris: set[str] = field(default_factory=set)
    appointment_ids: set[int] = field(default_factory=set)
    event_uris: set[str] = field(default_factory=set)


async def _find(conn: Conn, integration_id: int, client: queries.Client) -> _Person:
    """Every invitee and appointment of the person: the client's appointments, the invitees
    with their email, and whatever those link to (reschedule chains, merged appointments)."""
    person = _Person()
    while True:
        invitees = await queries.erasure_invitees(
            conn, integration_id, sorted(person.appointment_ids), client.email_normalized
        )
        for invitee in invitees:
            person.uris |= {u for u in (invitee.uri, invitee.old_invitee_uri,
                                        invitee.new_invitee_uri) if u}  # fmt: skip
            person.event_uris.add(invitee.event_uri)
            if invitee.appointment_id is not None:
                person.appointment_ids.add(invitee.appointment_id)
        found = await queries.erasure_appointments(
            conn, client.user_id, client.id, sorted(person.appointment_ids), sorted(person.uris)
        )
        before = (len(person.uris), len(person.appointment_ids))
        for appointment in found:
            person.appointment_ids.add(appointment.id)
            if appointment.calendly_invitee_uri != ERASED_URI:
                person.uris.add(appointment.calendly_invitee_uri)
            person.event_uris.add(appointment.calendly_event_uri)
            for slot in appointment.history:
                if isinstance(slot, dict) and isinstance(slot.get("calendly_invitee_uri"), str):
                    person.uris.add(slot["calendly_invitee_uri"])
        if (len(person.uris), len(person.appointment_ids)) == before:
            return person


async def erase_client(
    conn: Conn, tombstones: Tombstones, client: queries.Client,
    integration: queries.Integration | None,
) -> dict[str, int]:  # fmt: skip
    """Erase the client and everything stored of them; counts per kind. The caller's
    transaction holds the integration's apply lock."""
    erased = dict.fromkeys(ERASED_KINDS, 0)
    uris: set[str] = set()
    appointment_ids: list[int] = []
    if integration is not None:
        person = await _find(conn, integration.id, client)
        appointment_ids = sorted(person.appointment_ids)
        erased |= await _erase_integration(conn, tombstones, integration, client, person)
        uris = {uri.lower() for uri in person.uris}
    erased["outbox"] = await queries.delete_erased_outbox(
        conn, client.user_id, appointment_ids, sorted(uris), email_pattern(client.email_normalized)
    )
    erased["clients"] = await queries.delete_client(conn, client.id, client.user_id)
    log.info("client_erased", client_id=client.id, **erased)
    return erased


async def _erase_integration(
    conn: Conn, tombstones: Tombstones, integration: queries.Integration,
    client: queries.Client, person: _Person,
) -> dict[str, int]:  # fmt: skip
    """Tombstones, appointments, invitees, sync bookkeeping, submissions and deliveries."""
    uris, email = sorted(person.uris), email_pattern(client.email_normalized)
    submissions = await queries.delete_erased_submissions(
        conn, integration.id, integration.calendly_organization_uri, uris, email
    )
    marks = [(integration.id, tombstones.mark(uri)) for uri in uris]
    marks += [(owner, tombstones.mark(uri)) for owner, uri in submissions]
    await queries.insert_tombstones(conn, [m[0] for m in marks], [m[1] for m in marks])
    owners = sorted({integration.id} | {owner for owner, _ in submissions})
    named = sorted({uri.lower() for uri in uris} | {uri.lower() for _, uri in submissions})
    return {
        "appointments": await queries.anonymize_appointments(conn, sorted(person.appointment_ids)),
        "invitees": await queries.delete_erased_invitees(conn, integration.id, uris),
        "reschedule_waits": await queries.delete_erased_reschedule_waits(
            conn, integration.id, uris
        ),
        "events_seen": await queries.delete_erased_events_seen(
            conn, integration.id, sorted(person.event_uris)
        ),
        "routing_form_submissions": len(submissions),
        "webhook_events": await queries.delete_erased_webhook_events(conn, owners, named, email),
        "tombstones": len(marks),
        "actions": await queries.scrub_erased_actions(
            conn, integration.id, tombstones.probes("email:" + client.email_normalized), named
        ),
        "scheduling_links": await queries.erase_link_prefills(conn, integration.id, email),
    }
