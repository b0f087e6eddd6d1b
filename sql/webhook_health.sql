-- name: claim_webhook_checks
-- Active integrations whose subscription check is due (a new one: one interval after it
-- connected), at most $2, oldest first. Claiming moves the next check $1 seconds on, jittered by
-- +-20 % so checks spread out. A row another replica claimed meanwhile is re-read by ON CONFLICT
-- and is no longer due (the WHERE), so each due check goes to one replica.
INSERT INTO webhook_health AS h (integration_id, next_check_at)
SELECT i.id, now() + make_interval(secs => $1::double precision * (0.8 + 0.4 * random()))
FROM integrations AS i
LEFT JOIN webhook_health AS w ON w.integration_id = i.id
WHERE i.status = 'active'
  AND coalesce(w.next_check_at, i.connected_at + make_interval(secs => $1::double precision))
      <= now()
ORDER BY coalesce(w.next_check_at, i.connected_at)
LIMIT $2::integer
ON CONFLICT (integration_id) DO UPDATE SET next_check_at = EXCLUDED.next_check_at
WHERE h.next_check_at <= now()
RETURNING h.integration_id;

-- name: record_webhook_health
-- What a check saw ($2 state, $3 Calendly's retry_started_at, $4 a note), with what was known
-- before it (the previous_* columns). A row created here (the sync's own check) is next due in
-- $5 seconds.
WITH old AS (
    SELECT state, retry_started_at, healthy_at FROM webhook_health
    WHERE integration_id = $1::bigint
    FOR UPDATE
)
INSERT INTO webhook_health AS h (
    integration_id, state, retry_started_at, checked_at, healthy_at, note, next_check_at
) VALUES (
    $1::bigint, $2::text, $3::timestamptz, now(),
    CASE WHEN $2::text = 'active' THEN now() END, $4::text,
    now() + make_interval(secs => $5::double precision)
)
ON CONFLICT (integration_id) DO UPDATE SET
    state = EXCLUDED.state,
    retry_started_at = EXCLUDED.retry_started_at,
    checked_at = EXCLUDED.checked_at,
    healthy_at = coalesce(EXCLUDED.healthy_at, h.healthy_at),
    note = EXCLUDED.note
RETURNING (SELECT state FROM old) AS previous_state,
    (SELECT retry_started_at FROM old) AS previous_retry_started_at,
    (SELECT healthy_at FROM old) AS previous_healthy_at;

-- name: note_webhook_check
-- A check that could not read the subscription (skipped, or Calendly failed): the note says why;
-- the state last seen stays.
UPDATE webhook_health SET note = $2::text, checked_at = now()
WHERE integration_id = $1::bigint;

-- name: get_webhook_health
SELECT integration_id, state, retry_started_at, checked_at, healthy_at, note, next_check_at
FROM webhook_health WHERE integration_id = $1::bigint;

-- name: last_delivery_received
-- When the integration's newest stored delivery arrived (deliveries worked until then).
SELECT received_at FROM webhook_events WHERE integration_id = $1::bigint ORDER BY id DESC LIMIT 1;

-- name: webhook_health_gauges
-- Active integrations' subscriptions by the state last seen; the oldest retrying one's age.
SELECT h.state, count(*)::bigint AS n,
    extract(epoch FROM now() - min(h.retry_started_at) FILTER (WHERE h.state = 'retrying'))::float8
        AS oldest_retrying_seconds
FROM webhook_health AS h
JOIN integrations AS i ON i.id = h.integration_id
WHERE i.status = 'active' AND h.state IS NOT NULL
GROUP BY h.state;

-- name: request_gap_sync
-- One pending gap sync per integration: a second request widens the pending one to the earlier
-- start (and keeps that start's reason).
INSERT INTO gap_syncs AS g (integration_id, window_start, reason)
VALUES ($1::bigint, $2::timestamptz, $3::text)
ON CONFLICT (integration_id) WHERE sync_job_id IS NULL DO UPDATE SET
    window_start = least(g.window_start, EXCLUDED.window_start),
    reason = CASE WHEN EXCLUDED.window_start < g.window_start THEN EXCLUDED.reason
                  ELSE g.reason END,
    requested_at = now()
RETURNING id;

-- name: enqueue_gap_syncs
-- Pending gap syncs ($1: one integration's, or every one when null; at most $2) become sync jobs
-- with trigger 'gap'. One whose integration already has a queued or running sync waits for the
-- next round (the one-active-job index); every replica may run this (SKIP LOCKED).
WITH pending AS (
    SELECT g.id, g.integration_id
    FROM gap_syncs AS g
    JOIN integrations AS i ON i.id = g.integration_id
    WHERE g.sync_job_id IS NULL AND i.status = 'active' AND i.sync_enabled
      AND ($1::bigint IS NULL OR g.integration_id = $1::bigint)
    ORDER BY g.id
    LIMIT $2::integer
    FOR UPDATE OF g SKIP LOCKED
), queued AS (
    INSERT INTO sync_jobs (integration_id, trigger)
    SELECT integration_id, 'gap' FROM pending
    ON CONFLICT (integration_id) WHERE status IN ('queued', 'running') DO NOTHING
    RETURNING id, integration_id
)
UPDATE gap_syncs AS g SET sync_job_id = q.id
FROM queued AS q, pending AS p
WHERE p.integration_id = q.integration_id AND g.id = p.id
RETURNING g.sync_job_id;

-- name: gap_sync_of_job
SELECT id, integration_id, window_start, reason, requested_at, sync_job_id
FROM gap_syncs WHERE sync_job_id = $1::bigint;

-- name: try_lock_webhook_repair
-- Serialises recreating one integration's subscription (health checks and syncs, every
-- replica) for the caller's transaction. The (int, int) key space is apart from the bigint one
-- lock_integration_apply uses; ids past 2^31 share a key with another, which only serialises.
SELECT pg_try_advisory_xact_lock(19, ($1::bigint % 2147483647)::integer) AS locked;

-- name: mark_webhook_created
-- A subscription just created delivers: whatever a check saw of the one it replaced is over.
UPDATE webhook_health
SET state = 'active', retry_started_at = NULL, checked_at = now(), healthy_at = now(), note = NULL
WHERE integration_id = $1::bigint;
