"""Stored rows as response models (calendly_svc/http/responses.py; never a secret).

Enum columns are text in store/queries.py; the models check them when built, hence the
`type: ignore[arg-type]` on those arguments. mypy checks every other field name and type.
"""

from __future__ import annotations

from datetime import datetime

from calendly_svc.apply.payloads import appointment_view
from calendly_svc.calendly.scopes import NEEDED_SCOPES, missing_scopes
from calendly_svc.http import responses as out
from calendly_svc.store.queries import (
    Appointment,
    Client,
    EventType,
    Integration,
    SyncJob,
    SyncLog,
    WebhookEvent,
)


def public_status(integration: Integration | None) -> out.PublicStatus:
    """not_connected | active | disabled | needs_reauth."""
    if integration is None or integration.status == "disconnected":
        return "not_connected"
    if integration.status == "needs_reauth":
        return "needs_reauth"
    return "active" if integration.sync_enabled else "disabled"


def webhook_active(integration: Integration) -> bool:
    """A live subscription that Calendly reports as active."""
    return integration.webhook_uri is not None and integration.webhook_state == "active"


def sync_settings(integration: Integration) -> out.SyncSettings:
    """The sync settings block."""
    return out.SyncSettings(
        sync_past_days=integration.sync_past_days,
        sync_future_days=integration.sync_future_days,
        auto_confirm_bookings=integration.auto_confirm_bookings,
        create_client_if_not_exists=integration.create_client_if_not_exists,
        default_service_id=integration.default_service_id,
        notification_on_booking=integration.notification_on_booking,
    )


def status_view(
    integration: Integration | None, retrying_since: datetime | None = None
) -> out.Status:
    """GET /status (`retrying_since`: the webhook health check's retry_started_at)."""
    if public_status(integration) == "not_connected" or integration is None:
        return out.Status(connected=False, status="not_connected", sync_enabled=False,
                          scheduling_url=None, webhook_active=False, last_sync_at=None,
                          last_sync_status=None, routing_forms_webhook=None, granted_scopes=None,
                          missing_scopes=missing_scopes(NEEDED_SCOPES, None),
                          webhook_retrying_since=None)  # fmt: skip
    return out.Status(
        connected=True,
        status=public_status(integration),
        sync_enabled=integration.sync_enabled,
        scheduling_url=integration.scheduling_url,
        webhook_active=webhook_active(integration),
        last_sync_at=integration.last_sync_at,
        last_sync_status=integration.last_sync_status,  # type: ignore[arg-type]
        routing_forms_webhook=integration.routing_forms_webhook,  # type: ignore[arg-type]
        granted_scopes=integration.granted_scopes,
        missing_scopes=missing_scopes(NEEDED_SCOPES, integration.granted_scopes),
        webhook_retrying_since=retrying_since,
    )


def integration_view(
    integration: Integration, retrying_since: datetime | None = None
) -> out.Integration:
    """The integration without secrets (`retrying_since`: as in status_view)."""
    return out.Integration(
        id=integration.id,
        public_id=integration.public_id,
        user_id=integration.user_id,
        status=public_status(integration),
        status_reason=integration.status_reason,
        sync_enabled=integration.sync_enabled,
        calendly_user_uri=integration.calendly_user_uri,
        calendly_organization_uri=integration.calendly_organization_uri,
        scheduling_url=integration.scheduling_url,
        name=integration.name,
        email=integration.email,
        timezone=integration.timezone,
        webhook_url=integration.webhook_url,
        webhook_uri=integration.webhook_uri,
        webhook_active=webhook_active(integration),
        webhook_error=integration.webhook_error,
        routing_forms_webhook=integration.routing_forms_webhook,  # type: ignore[arg-type]
        granted_scopes=integration.granted_scopes,
        missing_scopes=missing_scopes(NEEDED_SCOPES, integration.granted_scopes),
        sync_settings=sync_settings(integration),
        last_sync_at=integration.last_sync_at,
        last_sync_status=integration.last_sync_status,  # type: ignore[arg-type]
        connected_at=integration.connected_at,
        created_at=integration.created_at,
        updated_at=integration.updated_at,
        webhook_retrying_since=retrying_since,
    )


def event_type_view(event_type: EventType) -> out.EventType:
    """One event type and its mapping."""
    return out.EventType(
        id=event_type.id,
        calendly_event_type_uri=event_type.calendly_event_type_uri,
        name=event_type.name,
        slug=event_type.slug,
        duration_minutes=event_type.duration_minutes,
        active=event_type.active,
        scheduling_url=event_type.scheduling_url,
        service_id=event_type.service_id,
        is_active=event_type.is_active,
        auto_create_appointment=event_type.auto_create_appointment,
        updated_at=event_type.updated_at,
    )


def client_view(client: Client) -> out.Client:
    """A client."""
    return out.Client(
        id=client.id,
        name=client.name,
        email=client.email,
        phone=client.phone,
        first_name=client.first_name,
        last_name=client.last_name,
        timezone=client.timezone,
        created_at=client.created_at,
        updated_at=client.updated_at,
    )


def appointment_model(appointment: Appointment, client: Client | None) -> out.Appointment:
    """An appointment as the API answers it: the outbox's payload, checked by the model."""
    return out.Appointment.model_validate(appointment_view(appointment, client))


def webhook_event_view(event: WebhookEvent) -> out.WebhookEvent:
    """One entry of the webhook log."""
    return out.WebhookEvent(
        id=event.id,
        event=event.event,
        status=event.status,  # type: ignore[arg-type]
        reason=event.reason,
        error=event.error,
        attempts=event.attempts,
        duplicates=event.duplicates,
        payload_uri=event.payload_uri,
        calendly_created_at=event.calendly_created_at,
        received_at=event.received_at,
        processed_at=event.processed_at,
    )


def job_view(job: SyncJob) -> out.SyncJob:
    """A sync job."""
    return out.SyncJob(
        job_id=job.id,
        status=job.status,  # type: ignore[arg-type]
        trigger=job.trigger,  # type: ignore[arg-type]
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        sync_log_id=job.sync_log_id,
        error=job.error,
    )


def sync_log_view(entry: SyncLog) -> out.SyncLog:
    """One sync log."""
    return out.SyncLog(
        id=entry.id,
        trigger=entry.trigger,  # type: ignore[arg-type]
        status=entry.status,  # type: ignore[arg-type]
        full_pass=entry.full_pass,
        started_at=entry.started_at,
        finished_at=entry.finished_at,
        window_start=entry.window_start,
        window_end=entry.window_end,
        events_seen=entry.events_seen,
        invitees_fetched=entry.invitees_fetched,
        appointments_created=entry.appointments_created,
        appointments_updated=entry.appointments_updated,
        appointments_canceled=entry.appointments_canceled,
        clients_created=entry.clients_created,
        repaired=entry.repaired,
        api_calls=entry.api_calls,
        rate_limited_waits=entry.rate_limited_waits,
        notes=entry.notes,
        error=entry.error,
    )
