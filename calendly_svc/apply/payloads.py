"""The appointment as the main app receives it: the outbox payload of every applied delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calendly_svc.store.queries import Appointment, Client


def iso(value: datetime | None) -> str | None:
    """UTC ISO-8601, or None."""
    return value.isoformat() if value else None


def _client_summary(client: Client | None) -> dict[str, Any] | None:
    """The client block embedded in an appointment."""
    if client is None:
        return None
    return {"id": client.id, "name": client.name, "email": client.email, "phone": client.phone}


def appointment_view(appointment: Appointment, client: Client | None) -> dict[str, Any]:
    """An appointment with its client, JSON-ready: the outbox payload of every applied delivery.

    The worker's hot path builds this dict directly (no model); its keys are the fields of
    responses.Appointment, which tests/test_response_models.py checks recursively.
    """
    return {
        "id": appointment.id,
        "status": appointment.status,
        "no_show": appointment.no_show,
        "start_time": iso(appointment.start_time),
        "end_time": iso(appointment.end_time),
        "timezone": appointment.timezone,
        "service_id": appointment.service_id,
        "event_type_id": appointment.event_type_id,
        "client": _client_summary(client),
        "location": appointment.location,
        "questions_and_answers": appointment.questions_and_answers,
        "cancellation": appointment.cancellation,
        "reschedule_count": appointment.reschedule_count,
        "history": appointment.history,
        "calendly_event_uri": appointment.calendly_event_uri,
        "calendly_invitee_uri": appointment.calendly_invitee_uri,
        "cancel_url": appointment.cancel_url,
        "reschedule_url": appointment.reschedule_url,
        "created_at": iso(appointment.created_at),
        "updated_at": iso(appointment.updated_at),
    }
