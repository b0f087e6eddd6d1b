"""Applying the current state of a Calendly invitee to appointments and clients.

Webhooks and syncs both call `apply_invitee`. It keeps the newest snapshot of every invitee and
recomputes the appointment as a projection of the invitees of one booking (an original booking
and each reschedule of it, linked by old_invitee/new_invitee), so any arrival order converges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from calendly_svc.apply.payloads import appointment_view
from calendly_svc.apply.times import parse_time
from calendly_svc.apply.tombstones import Tombstones
from calendly_svc.deps import Deps
from calendly_svc.store import channels, queries
from calendly_svc.store.queries import Conn

EPOCH = datetime.min.replace(tzinfo=UTC)
# the cancellation reason of an appointment whose booking a reschedule gave to another host
MOVED_REASON = "rescheduled to another host"


class PayloadError(Exception):
    """The invitee payload lacks something an appointment needs; retrying cannot help."""


class Invitee(Protocol):
    """What a stored snapshot and a fresh state have in common."""

    @property
    def uri(self) -> str: ...
    @property
    def event_uri(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def rescheduled(self) -> bool: ...
    @property
    def old_invitee_uri(self) -> str | None: ...
    @property
    def new_invitee_uri(self) -> str | None: ...
    @property
    def cancellation(self) -> dict[str, Any] | None: ...
    @property
    def no_show(self) -> bool: ...
    @property
    def start_time(self) -> datetime | None: ...
    @property
    def end_time(self) -> datetime | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def location(self) -> dict[str, Any] | None: ...
    @property
    def questions_and_answers(self) -> list[Any]: ...
    @property
    def cancel_url(self) -> str | None: ...
    @property
    def reschedule_url(self) -> str | None: ...
    @property
    def calendly_created_at(self) -> datetime | None: ...


@dataclass(slots=True, unsafe_hash=True)  # built per delivery: see queries.RECORDS
class ApplyContext:
    """What applying needs besides the state: the integration, its mapping, notifications."""

    integration: queries.Integration
    event_type: queries.EventType | None
    notify: bool
    tombstones: Tombstones


@dataclass(slots=True, unsafe_hash=True)  # built per delivery: see queries.RECORDS
class ApplyResult:
    """How the inbox row (or sync counter) should record this application."""

    status: str
    reason: str | None = None
    appointment_id: int | None = None
    change: str | None = None
    client_created: bool = False


# an invitee erased by DELETE /clients/{id}: never stored or applied again
ERASED = ApplyResult("ignored", "erased")


# --- reading Calendly payloads ------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A string field, or None."""
    return value if isinstance(value, str) else None


def invitee_state(invitee: dict[str, Any], event: dict[str, Any]) -> queries.InviteeState:
    """An invitee and its scheduled event (embedded in webhooks, listed by syncs)."""
    uri, start, end = invitee.get("uri"), event.get("start_time"), event.get("end_time")
    if not isinstance(uri, str) or not isinstance(start, str) or not isinstance(end, str):
        raise PayloadError("the invitee needs a uri and its scheduled_event start and end times")
    try:
        created = parse_time(_text(invitee.get("created_at")))
        updated = parse_time(_text(invitee.get("updated_at"))) or created or datetime.now(UTC)
        return queries.InviteeState(
            uri=uri,
            event_uri=_text(event.get("uri")) or _text(invitee.get("event")) or "",
            event_type_uri=_text(event.get("event_type")),
            status=_text(invitee.get("status")) or "active",
            rescheduled=invitee.get("rescheduled") is True,
            old_invitee_uri=_text(invitee.get("old_invitee")),
            new_invitee_uri=_text(invitee.get("new_invitee")),
            email=_text(invitee.get("email")),
            name=_text(invitee.get("name")),
            first_name=_text(invitee.get("first_name")),
            last_name=_text(invitee.get("last_name")),
            text_reminder_number=_text(invitee.get("text_reminder_number")),
            timezone=_text(invitee.get("timezone")),
            questions_and_answers=_list(invitee.get("questions_and_answers")),
            cancellation=_dict(invitee.get("cancellation")),
            no_show=bool(invitee.get("no_show")),
            start_time=parse_time(start),
            end_time=parse_time(end),
            location=_dict(event.get("location")),
            cancel_url=_text(invitee.get("cancel_url")),
            reschedule_url=_text(invitee.get("reschedule_url")),
            routing_form_submission_uri=_text(invitee.get("routing_form_submission")),
            calendly_created_at=created,
            calendly_updated_at=updated,
            event_updated_at=parse_time(_text(event.get("updated_at"))),
        )
    except ValueError as exc:
        raise PayloadError(f"unreadable timestamp: {exc}") from None


def _list(value: Any) -> list[Any]:
    """A list field, or an empty list."""
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any] | None:
    """An object field, or None."""
    return value if isinstance(value, dict) else None


# --- the projection -----------------------------------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)  # built per delivery: see queries.RECORDS
class Projection:
    """What an appointment shows, derived from the invitees of its booking."""

    current: Invitee
    canceled: bool
    reschedule_count: int
    history: list[dict[str, Any]]
    moved: bool = False


def _age(invitee: Invitee | None, uri: str) -> tuple[datetime, str]:
    """Order invitees by creation (unknown ones first), then URI for determinism."""
    created = invitee.calendly_created_at if invitee is not None else None
    return created or EPOCH, uri


def _iso(value: datetime | None) -> str | None:
    """ISO-8601 for JSON columns."""
    return value.isoformat() if value else None


def _slot(invitee: Invitee | None, uri: str) -> dict[str, Any]:
    """One earlier time of a rescheduled booking."""
    return {
        "calendly_invitee_uri": uri,
        "calendly_event_uri": invitee.event_uri if invitee else None,
        "start_time": _iso(invitee.start_time) if invitee else None,
        "end_time": _iso(invitee.end_time) if invitee else None,
    }


def project(invitees: Sequence[Invitee], moved: frozenset[str] = frozenset()) -> Projection:
    """The current invitee is the newest one no other invitee replaced.

    A reschedule counts once both halves are known (either half names the other); until then a
    rescheduled invitee whose successor is unknown stays current, and is not shown canceled.
    An invitee in `moved` was rescheduled to another host: its chain ends there, canceled, and
    a successor that shows up anyway is another host's booking, not shown.
    """
    present = {i.uri for i in invitees}
    replaced = {
        i.old_invitee_uri for i in invitees if i.old_invitee_uri and i.old_invitee_uri not in moved
    }
    replaced |= {i.uri for i in invitees if i.new_invitee_uri in present and i.uri not in moved}
    moving = {
        i.uri for i in invitees if (i.rescheduled or i.new_invitee_uri) and i.uri not in moved
    }
    live = [i for i in invitees if i.uri not in replaced and i.old_invitee_uri not in moved]
    current = max(live or invitees, key=lambda i: _age(i, i.uri))
    by_uri = {i.uri: i for i in invitees}
    earlier = sorted(replaced, key=lambda uri: _age(by_uri.get(uri), uri))
    return Projection(
        current=current,
        canceled=current.status == "canceled" and current.uri not in replaced | moving,
        reschedule_count=len(replaced),
        history=[_slot(by_uri.get(uri), uri) for uri in earlier],
        moved=current.uri in moved,
    )


def _cancellation(invitee: Invitee, moved: bool = False) -> dict[str, Any]:
    """The cancellation block of a canceled appointment (one that moved to another host says
    so in `reason`; who canceled and when stay the canceled half's)."""
    given = invitee.cancellation or {}
    return {
        "canceled_by": given.get("canceled_by"),
        "reason": MOVED_REASON if moved else given.get("reason"),
        "canceler_type": given.get("canceler_type"),
        "canceled_at": given.get("created_at"),
    }


def _change(
    projection: Projection, confirmation: str, client_id: int | None
) -> queries.AppointmentChange:
    """The appointment columns a projection determines."""
    current = projection.current
    if current.start_time is None or current.end_time is None:
        raise PayloadError("the invitee's scheduled event has no start or end time")
    return queries.AppointmentChange(
        client_id=client_id,
        status="canceled" if projection.canceled else confirmation,
        no_show=current.no_show,
        start_time=current.start_time,
        end_time=current.end_time,
        timezone=current.timezone,
        location=current.location,
        questions_and_answers=current.questions_and_answers,
        cancellation=_cancellation(current, projection.moved) if projection.canceled else None,
        reschedule_count=projection.reschedule_count,
        history=projection.history,
        calendly_event_uri=current.event_uri,
        calendly_invitee_uri=current.uri,
        cancel_url=current.cancel_url,
        reschedule_url=current.reschedule_url,
    )


def change_kind(
    before: queries.Appointment | None, after: queries.Appointment | None
) -> str | None:
    """The notification type of a write (None when nothing changed)."""
    if after is None:
        return None
    if before is None:
        return "created"
    if after.reschedule_count > before.reschedule_count:
        return "rescheduled"
    if after.status == "canceled" and before.status != "canceled":
        return "canceled"
    if after.no_show != before.no_show:
        return "no_show"
    return "updated"


# --- clients ------------------------------------------------------------------------------------


def normalize_email(email: str | None) -> str | None:
    """Case- and space-insensitive email identity."""
    cleaned = (email or "").strip().lower()
    return cleaned or None


def _client_data(user_id: int, state: queries.InviteeState, email: str) -> queries.ClientData:
    """Client fields from an invitee; the name falls back to `name` without first/last."""
    split = " ".join(part for part in (state.first_name, state.last_name) if part)
    return queries.ClientData(
        user_id=user_id,
        email=(state.email or "").strip(),
        email_normalized=email,
        name=split or state.name,
        first_name=state.first_name,
        last_name=state.last_name,
        phone=state.text_reminder_number,
        timezone=state.timezone,
    )


async def ensure_clients(
    conn: Conn, integration: queries.Integration, states: Sequence[queries.InviteeState]
) -> dict[str, queries.ClientWrite]:
    """The invitees' clients (created when allowed), by normalized email; emails are distinct."""
    data = [
        _client_data(integration.user_id, state, email)
        for state in states
        if (email := normalize_email(state.email)) is not None
    ]
    if not data:
        return {}
    write = (
        queries.upsert_clients if integration.create_client_if_not_exists else queries.fill_clients
    )
    return {row.email_normalized: row for row in await write(conn, data)}


async def ensure_client(
    conn: Conn, integration: queries.Integration, state: queries.InviteeState
) -> tuple[int | None, bool]:
    """The invitee's client (created when allowed): (client id, newly created)."""
    row = _client_of(state, await ensure_clients(conn, integration, [state]))
    return (row.id, row.inserted) if row else (None, False)


def _client_of(
    state: queries.InviteeState, clients: dict[str, queries.ClientWrite]
) -> queries.ClientWrite | None:
    """The invitee's client among those ensure_clients returned."""
    return clients.get(normalize_email(state.email) or "")


# --- applying -----------------------------------------------------------------------------------


def creation_refusal(event_type: queries.EventType | None) -> str | None:
    """Why no appointment may be created for a booking of this event type."""
    if event_type is None:
        return "event_type_unknown"
    if not event_type.is_active:
        return "event_type_inactive"
    if not event_type.auto_create_appointment:
        return "auto_create_disabled"
    return None


async def apply_invitee(
    conn: Conn, ctx: ApplyContext, state: queries.InviteeState, *, locked: bool = False
) -> ApplyResult:
    """Apply one invitee state; idempotent, and an older state never overwrites a newer one.

    Runs under the integration's apply lock; `locked` says the caller's transaction holds it.
    """
    if not locked:
        await queries.lock_integration_apply(conn, ctx.integration.id)
    erased = await erased_uris(conn, ctx.tombstones, ctx.integration.id, _uris([state]))
    if state.uri in erased:
        return ERASED
    return await _apply(conn, ctx, _unlinked(state, erased))


def _uris(states: Sequence[queries.InviteeState]) -> list[str]:
    """The invitee URIs these states name (their own, and their old and new invitees)."""
    named = (uri for s in states for uri in (s.uri, s.old_invitee_uri, s.new_invitee_uri))
    return sorted({uri for uri in named if uri})


def _unlinked(state: queries.InviteeState, erased: set[str]) -> queries.InviteeState:
    """A state that no longer names erased invitees: a reschedule of an erased booking is a
    new booking (its history does not name the erased invitee)."""
    old = None if state.old_invitee_uri in erased else state.old_invitee_uri
    new = None if state.new_invitee_uri in erased else state.new_invitee_uri
    if (old, new) == (state.old_invitee_uri, state.new_invitee_uri):
        return state
    return replace(state, old_invitee_uri=old, new_invitee_uri=new)


async def erased_uris(
    conn: Conn, tombstones: Tombstones, integration_id: int, uris: Sequence[str]
) -> set[str]:
    """Which of these URIs were erased from the integration (DELETE /clients/{id})."""
    probes = {probe: uri for uri in uris for probe in tombstones.probes(uri)}
    found = await queries.erased_uri_hashes(conn, integration_id, list(probes))
    return {probes[probe] for probe in found}


async def _apply(conn: Conn, ctx: ApplyContext, state: queries.InviteeState) -> ApplyResult:
    """Apply one state of an invitee that was not erased, under the apply lock."""
    write = (await queries.upsert_invitees(conn, ctx.integration.id, [state]))[state.uri]
    if not write.written:
        return ApplyResult("ignored", "stale_state")
    await _track_reschedule(conn, ctx.integration.id, state)
    if not write.found:
        return await _create(conn, ctx, state)
    return await _update(conn, ctx, state, write.found)


async def apply_invitees(
    conn: Conn, items: Sequence[tuple[queries.InviteeState, ApplyContext]]
) -> list[ApplyResult]:
    """Apply a run of states of one integration, under the apply lock the caller holds.

    Same outcome as apply_invitee on each in order: states that touch no other state of the run
    and create no chain are written together, the rest one by one in their order.
    """
    if not items:
        return []
    ctx = items[0][1]
    erased = await erased_uris(
        conn, ctx.tombstones, ctx.integration.id, _uris([state for state, _ in items])
    )
    kept = [index for index, (state, _) in enumerate(items) if state.uri not in erased]
    live = [(_unlinked(items[index][0], erased), items[index][1]) for index in kept]
    created = await _create_together(conn, live, _independent(live))
    results = dict.fromkeys(range(len(items)), ERASED)
    for position, (state, ctx) in enumerate(live):
        index = kept[position]
        found = created.get(position)
        results[index] = found if found is not None else await _apply(conn, ctx, state)
    return [results[index] for index in range(len(items))]


def _independent(items: Sequence[tuple[queries.InviteeState, ApplyContext]]) -> list[int]:
    """Positions of states without reschedule links whose URI and email no other state uses,
    and whose booking may be created."""
    uris = Counter(
        uri for state, _ in items
        for uri in (state.uri, state.old_invitee_uri, state.new_invitee_uri) if uri
    )  # fmt: skip
    emails = Counter(normalize_email(state.email) for state, _ in items)
    return [
        index for index, (state, ctx) in enumerate(items)
        if state.old_invitee_uri is None and state.new_invitee_uri is None
        and uris[state.uri] == 1 and creation_refusal(ctx.event_type) is None
        and (state.email is None or emails[normalize_email(state.email)] == 1)
    ]  # fmt: skip


async def _create_together(
    conn: Conn, items: Sequence[tuple[queries.InviteeState, ApplyContext]], picked: list[int]
) -> dict[int, ApplyResult]:
    """Create at once the picked bookings no stored invitee knows of (what apply_invitee would
    do for each: its state is new, so written, and has no chain). The others are left out of
    the result, for the caller to apply one by one."""
    if not picked:
        return {}
    integration = items[picked[0]][1].integration
    states = {i: items[i][0] for i in picked}
    known = await queries.known_invitees(conn, integration.id, [s.uri for s in states.values()])
    new = [i for i in picked if states[i].uri not in known]
    if not new:
        return {}
    results = await _book(conn, [items[i] for i in new])
    return dict(zip(new, results, strict=True))


async def _book(
    conn: Conn, items: Sequence[tuple[queries.InviteeState, ApplyContext]]
) -> list[ApplyResult]:
    """Create the appointments (and clients) of bookings seen for the first time, in order."""
    integration, notify = items[0][1].integration, items[0][1].notify
    states = [state for state, _ in items]
    clients = await ensure_clients(conn, integration, states)
    plans = [_new_appointment(ctx, state, clients) for state, ctx in items]
    created = await queries.insert_bookings(conn, plans, states)
    if notify:
        appointments = await queries.get_appointments(conn, list(created.values()))
        await _notify_all(conn, items[0][1], [(None, a) for a in appointments])
    return [_creation(state, created[state.uri], clients) for state in states]


def _creation(
    state: queries.InviteeState, appointment_id: int, clients: dict[str, queries.ClientWrite]
) -> ApplyResult:
    """The result of creating a booking's appointment."""
    client = _client_of(state, clients)
    inserted = client.inserted if client else False
    return ApplyResult("processed", None, appointment_id, "created", inserted)


def _new_appointment(
    ctx: ApplyContext, state: queries.InviteeState, clients: dict[str, queries.ClientWrite]
) -> queries.NewAppointment:
    """The appointment for a booking seen for the first time."""
    assert ctx.event_type is not None
    client = _client_of(state, clients)
    confirmation = "confirmed" if ctx.integration.auto_confirm_bookings else "pending"
    change = _change(project([state]), confirmation, client.id if client else None)
    return queries.NewAppointment(
        user_id=ctx.integration.user_id, integration_id=ctx.integration.id,
        event_type_id=ctx.event_type.id,
        service_id=ctx.event_type.service_id or ctx.integration.default_service_id,
        confirmation=confirmation, **_fields(change),
    )  # fmt: skip


async def _create(conn: Conn, ctx: ApplyContext, state: queries.InviteeState) -> ApplyResult:
    """A booking seen for the first time."""
    refusal = creation_refusal(ctx.event_type)
    if refusal is not None:
        return ApplyResult("ignored", refusal)
    return (await _book(conn, [(state, ctx)]))[0]


def _fields(change: queries.AppointmentChange) -> dict[str, Any]:
    """A change's columns as keyword arguments."""
    return {name: getattr(change, name) for name in change.__dataclass_fields__}


async def _update(
    conn: Conn, ctx: ApplyContext, state: queries.InviteeState, found: list[int]
) -> ApplyResult:
    """A booking already known (possibly as several appointments that turn out to be one)."""
    target, merged = found[0], found[1:]
    locked = await queries.lock_appointments(conn, found)
    before = next(a for a in locked if a.id == target)
    if merged:
        for retired in await queries.mark_appointments_merged(conn, merged, target):
            await _notify(conn, ctx, _prior(locked, retired.id), retired)
    await queries.attach_invitees(conn, ctx.integration.id, state.uri, target, merged)
    projection = await _project_chain(conn, ctx.integration.id, target)
    client_id, client_created = before.client_id, False
    if client_id is None and projection.current.uri == state.uri:
        client_id, client_created = await ensure_client(conn, ctx.integration, state)
    after = await queries.update_appointment(
        conn, target, _change(projection, before.confirmation, client_id)
    )
    await _notify(conn, ctx, before, after)
    return ApplyResult("processed", None, target, change_kind(before, after), client_created)


async def _track_reschedule(conn: Conn, integration_id: int, state: queries.InviteeState) -> None:
    """A canceled half waits for its created half (see worker/reschedules.py); a created half ends
    the wait for it."""
    if state.rescheduled and state.new_invitee_uri:
        await queries.insert_reschedule_wait(conn, integration_id, state.uri, state.new_invitee_uri)
    if state.old_invitee_uri:
        await queries.end_reschedule_wait(conn, integration_id, state.uri)


async def _project_chain(conn: Conn, integration_id: int, appointment_id: int) -> Projection:
    """The projection of an appointment's invitees, knowing which moved to another host."""
    chain = await queries.chain_invitees(conn, appointment_id)
    rescheduled = [i.uri for i in chain if i.new_invitee_uri]
    moved = await queries.moved_invitees(conn, integration_id, rescheduled) if rescheduled else None
    return project(chain, moved or frozenset())


async def end_moved_booking(conn: Conn, ctx: ApplyContext, old_invitee_uri: str) -> ApplyResult:
    """The booking of a rescheduled invitee went to another host: project its appointment
    again (it ends canceled), under the apply lock the caller holds."""
    found = await queries.appointment_by_invitee(conn, ctx.integration.id, old_invitee_uri)
    if found is None:
        return ApplyResult("ignored", "no_appointment")
    [before] = await queries.lock_appointments(conn, [found.id])
    projection = await _project_chain(conn, ctx.integration.id, before.id)
    after = await queries.update_appointment(
        conn, before.id, _change(projection, before.confirmation, before.client_id)
    )
    await _notify(conn, ctx, before, after)
    return ApplyResult("processed", None, before.id, change_kind(before, after))


def _prior(locked: list[queries.Appointment], appointment_id: int) -> queries.Appointment:
    """The locked (pre-change) row of an appointment."""
    return next(a for a in locked if a.id == appointment_id)


async def _notify(
    conn: Conn, ctx: ApplyContext, before: queries.Appointment | None,
    after: queries.Appointment | None,
) -> None:  # fmt: skip
    """Queue a notification to the main app in the same transaction as the change."""
    await _notify_all(conn, ctx, [(before, after)])


async def _notify_all(
    conn: Conn, ctx: ApplyContext,
    changes: Sequence[tuple[queries.Appointment | None, queries.Appointment | None]],
) -> None:  # fmt: skip
    """Queue the notifications of several writes, in order, with one read of their clients."""
    if not ctx.notify:
        return
    writes = []
    for before, after in changes:
        kind = change_kind(before, after)
        if kind is not None and after is not None:
            writes.append((kind, after))
    if not writes:
        return
    client_ids = sorted({after.client_id for _, after in writes if after.client_id})
    clients = {c.id: c for c in await queries.get_clients(conn, client_ids)} if client_ids else {}
    await queries.insert_outbox(conn, [
        queries.Notification(after.user_id, after.id, f"appointment.{kind}",
                             appointment_view(after, clients.get(after.client_id or 0)))
        for kind, after in writes
    ])  # fmt: skip
    await queries.notify(conn, channels.OUTBOX)


def notifications_on(deps: Deps, integration: queries.Integration) -> bool:
    """Whether changes of this integration are sent to the main app."""
    return bool(deps.settings.main_app_webhook_url) and integration.notification_on_booking
