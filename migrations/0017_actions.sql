-- Actions the main app asks the service to take on Calendly (cancel, no-show marks, bookings,
-- single-use links): one row each, with who asked, the request's hash, how far it got and what
-- Calendly answered. A booking's Idempotency-Key is unique per integration; a booking whose
-- answer was lost ('unknown') is looked up at Calendly before anything is sent again.
-- depends: 0016_erased_invitees
CREATE TABLE actions (
    id bigserial PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind text NOT NULL
        CHECK (kind IN ('cancel', 'no_show', 'no_show_undo', 'book', 'scheduling_link')),
    actor_user_id bigint NOT NULL,
    appointment_id bigint REFERENCES appointments (id) ON DELETE SET NULL,
    event_type_id bigint REFERENCES event_types (id) ON DELETE SET NULL,
    idempotency_key text,
    request_hash bytea,
    start_time timestamptz,
    invitee_email_hash bytea,
    state text NOT NULL DEFAULT 'requested'
        CHECK (state IN ('requested', 'sent', 'succeeded', 'failed', 'unknown')),
    calendly_response jsonb,
    error jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    finished_at timestamptz
);
CREATE UNIQUE INDEX actions_idempotency_key ON actions (integration_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- earlier bookings of the same slot and person whose outcome is not known
CREATE INDEX actions_booking_slot ON actions (integration_id, event_type_id, start_time)
    WHERE kind = 'book';
CREATE INDEX actions_appointment ON actions (appointment_id) WHERE appointment_id IS NOT NULL;

-- Single-use booking links (POST /scheduling_links), with who asked for them and the prefill.
CREATE TABLE scheduling_links (
    id bigserial PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_type_id bigint REFERENCES event_types (id) ON DELETE SET NULL,
    requested_by bigint NOT NULL,
    booking_url text NOT NULL,
    max_event_count integer NOT NULL,
    prefill jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduling_links_integration ON scheduling_links (integration_id);
