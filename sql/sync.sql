-- name: enqueue_sync
-- The partial unique index turns a second request into a no-op; the caller then reads the
-- active job.
INSERT INTO sync_jobs (integration_id, trigger, past_days, future_days, full_pass)
VALUES ($1::bigint, $2::text, $3::integer, $4::integer, $5::boolean)
ON CONFLICT (integration_id) WHERE status IN ('queued', 'running') DO NOTHING
RETURNING id, integration_id, trigger, status, past_days, future_days, full_pass, attempts,
    run_after, locked_by, locked_at, sync_log_id, error, created_at, started_at, finished_at;

-- name: active_sync_job
SELECT id, integration_id, trigger, status, past_days, future_days, full_pass, attempts,
    run_after, locked_by, locked_at, sync_log_id, error, created_at, started_at, finished_at
FROM sync_jobs WHERE integration_id = $1::bigint AND status IN ('queued', 'running');

-- name: get_sync_job
SELECT id, integration_id, trigger, status, past_days, future_days, full_pass, attempts,
    run_after, locked_by, locked_at, sync_log_id, error, created_at, started_at, finished_at
FROM sync_jobs WHERE id = $1::bigint AND integration_id = $2::bigint;

-- name: enqueue_due_syncs
-- Every replica may run this: SKIP LOCKED and the one-active-job index keep it to one job.
WITH due AS (
    SELECT id FROM integrations
    WHERE status = 'active' AND sync_enabled AND next_sync_at <= now()
    ORDER BY next_sync_at
    LIMIT 100
    FOR UPDATE SKIP LOCKED
), scheduled AS (
    UPDATE integrations i
    SET next_sync_at = now() + make_interval(secs => $1::double precision)
    FROM due
    WHERE i.id = due.id
    RETURNING i.id
)
INSERT INTO sync_jobs (integration_id, trigger)
SELECT id, 'periodic' FROM scheduled
ON CONFLICT (integration_id) WHERE status IN ('queued', 'running') DO NOTHING
RETURNING id;

-- name: schedule_next_sync
UPDATE integrations SET next_sync_at = now() + make_interval(secs => $2::double precision)
WHERE id = $1::bigint;

-- name: claim_sync_jobs
-- A running job whose lease ran out (its worker died) is taken over here.
WITH picked AS (
    SELECT id FROM sync_jobs
    WHERE (status = 'queued' AND run_after <= now())
       OR (status = 'running' AND locked_at < now() - make_interval(secs => $3::double precision))
    ORDER BY id
    LIMIT $2::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE sync_jobs j
SET status = 'running', locked_by = $1::text, locked_at = now(), attempts = j.attempts + 1,
    started_at = coalesce(j.started_at, now())
FROM picked
WHERE j.id = picked.id
RETURNING j.id, j.integration_id, j.trigger, j.status, j.past_days, j.future_days, j.full_pass,
    j.attempts, j.run_after, j.locked_by, j.locked_at, j.sync_log_id, j.error, j.created_at,
    j.started_at, j.finished_at;

-- name: heartbeat_sync_jobs
UPDATE sync_jobs SET locked_at = now()
WHERE locked_by = $1::text AND status = 'running' AND id = ANY ($2::bigint[]);

-- name: finish_sync_job
-- Fenced: a worker that lost its lease cannot overwrite the new owner's outcome.
UPDATE sync_jobs
SET status = $3::text, error = $4::text, sync_log_id = coalesce($5::bigint, sync_log_id),
    finished_at = now(), locked_by = NULL, locked_at = NULL
WHERE id = $1::bigint AND locked_by = $2::text AND status = 'running';

-- name: release_sync_jobs
UPDATE sync_jobs
SET status = 'queued', locked_by = NULL, locked_at = NULL, attempts = greatest(attempts - 1, 0)
WHERE locked_by = $1::text AND status = 'running';

-- name: insert_sync_log
INSERT INTO sync_logs (integration_id, trigger, full_pass, window_start, window_end)
VALUES ($1::bigint, $2::text, $3::boolean, $4::timestamptz, $5::timestamptz)
RETURNING id, integration_id, trigger, status, full_pass, started_at, finished_at, window_start,
    window_end, events_seen, invitees_fetched, appointments_created, appointments_updated,
    appointments_canceled, clients_created, repaired, api_calls, rate_limited_waits, notes, error;

-- name: finish_sync_log
UPDATE sync_logs
SET status = $2::text, finished_at = now(), events_seen = $3::integer,
    invitees_fetched = $4::integer, appointments_created = $5::integer,
    appointments_updated = $6::integer, appointments_canceled = $7::integer,
    clients_created = $8::integer, repaired = $9::integer, api_calls = $10::integer,
    rate_limited_waits = $11::integer, notes = $12::jsonb, error = $13::text
WHERE id = $1::bigint
RETURNING id, integration_id, trigger, status, full_pass, started_at, finished_at, window_start,
    window_end, events_seen, invitees_fetched, appointments_created, appointments_updated,
    appointments_canceled, clients_created, repaired, api_calls, rate_limited_waits, notes, error;

-- name: list_sync_logs
SELECT id, integration_id, trigger, status, full_pass, started_at, finished_at, window_start,
    window_end, events_seen, invitees_fetched, appointments_created, appointments_updated,
    appointments_canceled, clients_created, repaired, api_calls, rate_limited_waits, notes, error
FROM sync_logs
WHERE integration_id = $1::bigint AND ($2::bigint IS NULL OR id < $2::bigint)
ORDER BY id DESC
LIMIT $3::integer;

-- name: record_sync_result
UPDATE integrations
SET last_sync_at = now(), last_sync_status = $2::text,
    last_full_sync_at = CASE WHEN $3::boolean THEN now() ELSE last_full_sync_at END,
    updated_at = now()
WHERE id = $1::bigint;

-- name: events_seen
SELECT event_uri, calendly_updated_at, invitees_total, invitees_active
FROM calendly_events_seen
WHERE integration_id = $1::bigint AND event_uri = ANY ($2::text[]);

-- name: mark_events_seen
INSERT INTO calendly_events_seen AS s (
    integration_id, event_uri, calendly_updated_at, invitees_total, invitees_active
)
SELECT $1::bigint, u.uri, u.updated_at, u.total, u.active
FROM unnest($2::text[], $3::timestamptz[], $4::integer[], $5::integer[])
    AS u(uri, updated_at, total, active)
ON CONFLICT (integration_id, event_uri) DO UPDATE SET
    calendly_updated_at = EXCLUDED.calendly_updated_at,
    invitees_total = EXCLUDED.invitees_total,
    invitees_active = EXCLUDED.invitees_active,
    seen_at = now();

-- name: attach_sync_log
UPDATE sync_jobs SET sync_log_id = $3::bigint
WHERE id = $1::bigint AND locked_by = $2::text AND status = 'running';

-- name: abandon_sync_log
-- A log left `running` by a worker that died is closed when its job is taken over.
UPDATE sync_logs SET status = 'failed', finished_at = now(), error = $2::text
WHERE id = $1::bigint AND status = 'running';
