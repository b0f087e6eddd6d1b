-- Webhook subscription health (issue 19). Calendly retries failed deliveries for 24 hours, then
-- disables the subscription without a word (FACTS §8, §9). A periodic check reads each active
-- integration's user-scope subscription and keeps what it saw here (one row per integration;
-- next_check_at is the claim: a replica takes a due row by moving it forward, so one replica
-- checks it). A subscription recreated (or back from disabled) asks for a gap sync: one pending
-- request per integration (the partial unique index), enqueued as a sync job with trigger 'gap'
-- whose window starts where the failure began.
-- depends: 0016_erased_invitees

CREATE TABLE webhook_health (
    integration_id bigint PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    state text,
    retry_started_at timestamptz,
    checked_at timestamptz,
    healthy_at timestamptz,
    note text,
    next_check_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_health_state_check
        CHECK (state IN ('active', 'retrying', 'disabled', 'missing'))
);

CREATE INDEX webhook_health_next_check_idx ON webhook_health (next_check_at);

CREATE TABLE gap_syncs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    reason text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    sync_job_id bigint REFERENCES sync_jobs (id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX gap_syncs_one_pending_key ON gap_syncs (integration_id)
    WHERE sync_job_id IS NULL;
CREATE UNIQUE INDEX gap_syncs_sync_job_key ON gap_syncs (sync_job_id);

ALTER TABLE sync_jobs DROP CONSTRAINT sync_jobs_trigger_check;
ALTER TABLE sync_jobs ADD CONSTRAINT sync_jobs_trigger_check
    CHECK (trigger IN ('initial', 'manual', 'periodic', 'gap'));
ALTER TABLE sync_logs DROP CONSTRAINT sync_logs_trigger_check;
ALTER TABLE sync_logs ADD CONSTRAINT sync_logs_trigger_check
    CHECK (trigger IN ('initial', 'manual', 'periodic', 'gap'));
