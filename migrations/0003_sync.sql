-- Sync jobs (a Postgres queue), sync logs, and what the last sync saw of each scheduled event.
-- depends: 0002_webhooks_appointments

CREATE TABLE sync_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    trigger text NOT NULL,
    status text NOT NULL DEFAULT 'running',
    full_pass boolean NOT NULL DEFAULT false,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    events_seen integer NOT NULL DEFAULT 0,
    invitees_fetched integer NOT NULL DEFAULT 0,
    appointments_created integer NOT NULL DEFAULT 0,
    appointments_updated integer NOT NULL DEFAULT 0,
    appointments_canceled integer NOT NULL DEFAULT 0,
    clients_created integer NOT NULL DEFAULT 0,
    repaired integer NOT NULL DEFAULT 0,
    api_calls integer NOT NULL DEFAULT 0,
    rate_limited_waits integer NOT NULL DEFAULT 0,
    notes jsonb NOT NULL DEFAULT '[]',
    error text,
    CONSTRAINT sync_logs_trigger_check CHECK (trigger IN ('initial', 'manual', 'periodic')),
    CONSTRAINT sync_logs_status_check
        CHECK (status IN ('running', 'succeeded', 'partial', 'failed'))
);

CREATE INDEX sync_logs_integration_idx ON sync_logs (integration_id, id DESC);

CREATE TABLE sync_jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    trigger text NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    past_days integer,
    future_days integer,
    full_pass boolean NOT NULL DEFAULT false,
    attempts integer NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now(),
    locked_by text,
    locked_at timestamptz,
    sync_log_id bigint REFERENCES sync_logs (id) ON DELETE SET NULL,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT sync_jobs_trigger_check CHECK (trigger IN ('initial', 'manual', 'periodic')),
    CONSTRAINT sync_jobs_status_check
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    CONSTRAINT sync_jobs_past_days_check CHECK (past_days BETWEEN 0 AND 365),
    CONSTRAINT sync_jobs_future_days_check CHECK (future_days BETWEEN 1 AND 365)
);

-- At most one queued-or-running sync per integration, whoever asks and however often.
CREATE UNIQUE INDEX sync_jobs_one_active_key ON sync_jobs (integration_id)
    WHERE status IN ('queued', 'running');
CREATE INDEX sync_jobs_due_idx ON sync_jobs (id) WHERE status IN ('queued', 'running');

CREATE TABLE calendly_events_seen (
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_uri text NOT NULL,
    calendly_updated_at timestamptz,
    invitees_total integer,
    invitees_active integer,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, event_uri)
);

ALTER TABLE integrations ADD COLUMN next_sync_at timestamptz;
ALTER TABLE integrations ADD COLUMN last_full_sync_at timestamptz;
CREATE INDEX integrations_next_sync_idx ON integrations (next_sync_at)
    WHERE status = 'active' AND sync_enabled;
