-- The webhook inbox, invitee snapshots, appointments, clients, routing form submissions and the
-- outbox of notifications to the main app.
-- depends: 0001_integrations

CREATE TABLE webhook_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event text NOT NULL,
    dedup_key text NOT NULL,
    payload_uri text,
    calendly_created_at timestamptz,
    headers jsonb NOT NULL DEFAULT '{}',
    body jsonb NOT NULL,
    status text NOT NULL DEFAULT 'received',
    reason text,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    duplicates integer NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now(),
    locked_by text,
    locked_at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Calendly sends no delivery id: the same event, subject and version is the same delivery
    CONSTRAINT webhook_events_dedup_key UNIQUE (integration_id, dedup_key),
    CONSTRAINT webhook_events_status_check
        CHECK (status IN ('received', 'processing', 'processed', 'ignored', 'failed'))
);

CREATE INDEX webhook_events_pending_idx ON webhook_events (id)
    WHERE status IN ('received', 'processing');
CREATE INDEX webhook_events_integration_idx ON webhook_events (integration_id, id DESC);

CREATE TABLE clients (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL,
    email text NOT NULL,
    email_normalized text NOT NULL,
    name text,
    first_name text,
    last_name text,
    phone text,
    timezone text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT clients_user_email_key UNIQUE (user_id, email_normalized)
);

CREATE TABLE appointments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_type_id bigint REFERENCES event_types (id) ON DELETE SET NULL,
    service_id bigint,
    client_id bigint REFERENCES clients (id) ON DELETE SET NULL,
    -- what a live booking shows: chosen once, from auto_confirm_bookings, when it is created
    confirmation text NOT NULL,
    status text NOT NULL,
    no_show boolean NOT NULL DEFAULT false,
    start_time timestamptz NOT NULL,
    end_time timestamptz NOT NULL,
    timezone text,
    location jsonb,
    questions_and_answers jsonb NOT NULL DEFAULT '[]',
    cancellation jsonb,
    reschedule_count integer NOT NULL DEFAULT 0,
    history jsonb NOT NULL DEFAULT '[]',
    calendly_event_uri text NOT NULL,
    calendly_invitee_uri text NOT NULL,
    cancel_url text,
    reschedule_url text,
    merged_into bigint REFERENCES appointments (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT appointments_confirmation_check CHECK (confirmation IN ('pending', 'confirmed')),
    CONSTRAINT appointments_status_check CHECK (status IN ('pending', 'confirmed', 'canceled'))
);

CREATE INDEX appointments_user_updated_idx ON appointments (user_id, updated_at DESC, id DESC);
CREATE INDEX appointments_user_start_idx ON appointments (user_id, start_time);

-- The latest state seen of every Calendly invitee; an appointment is a projection of the
-- invitees of one booking (several after reschedules, linked by old_invitee/new_invitee).
CREATE TABLE calendly_invitees (
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    uri text NOT NULL,
    appointment_id bigint REFERENCES appointments (id) ON DELETE SET NULL,
    event_uri text NOT NULL,
    event_type_uri text,
    status text NOT NULL,
    rescheduled boolean NOT NULL DEFAULT false,
    old_invitee_uri text,
    new_invitee_uri text,
    email text,
    name text,
    first_name text,
    last_name text,
    text_reminder_number text,
    timezone text,
    questions_and_answers jsonb NOT NULL DEFAULT '[]',
    cancellation jsonb,
    no_show boolean NOT NULL DEFAULT false,
    start_time timestamptz,
    end_time timestamptz,
    location jsonb,
    cancel_url text,
    reschedule_url text,
    routing_form_submission_uri text,
    calendly_created_at timestamptz,
    calendly_updated_at timestamptz NOT NULL,
    event_updated_at timestamptz,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, uri)
);

CREATE INDEX calendly_invitees_old_idx ON calendly_invitees (integration_id, old_invitee_uri)
    WHERE old_invitee_uri IS NOT NULL;
CREATE INDEX calendly_invitees_new_idx ON calendly_invitees (integration_id, new_invitee_uri)
    WHERE new_invitee_uri IS NOT NULL;
CREATE INDEX calendly_invitees_appointment_idx ON calendly_invitees (appointment_id);
CREATE INDEX calendly_invitees_event_idx ON calendly_invitees (integration_id, event_uri);

CREATE TABLE routing_form_submissions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    uri text NOT NULL,
    routing_form_uri text,
    submitter_uri text,
    submitter_type text,
    questions_and_answers jsonb NOT NULL DEFAULT '[]',
    tracking jsonb,
    result jsonb,
    calendly_created_at timestamptz,
    calendly_updated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT routing_form_submissions_uri_key UNIQUE (integration_id, uri)
);

-- One organization-scope subscription (routing forms) per Calendly organization.
CREATE TABLE organization_webhooks (
    organization_uri text PRIMARY KEY,
    integration_id bigint REFERENCES integrations (id) ON DELETE SET NULL,
    webhook_uri text,
    webhook_url text,
    state text NOT NULL,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE integrations ADD COLUMN routing_forms_webhook text;

CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL,
    appointment_id bigint NOT NULL,
    type text NOT NULL,
    payload jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    run_after timestamptz NOT NULL DEFAULT now(),
    locked_by text,
    locked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    CONSTRAINT outbox_status_check
        CHECK (status IN ('pending', 'processing', 'delivered', 'failed'))
);

CREATE INDEX outbox_pending_idx ON outbox (appointment_id, id)
    WHERE status IN ('pending', 'processing');
