-- name: insert_webhook_events
-- A batch of deliveries in one statement, in arrival order. Keys are distinct within a batch:
-- `repeats` counts the extra copies the edge folded into one row. A redelivery of a stored
-- delivery only bumps its duplicate counter; `inserted` tells the two apart. Bodies are stored
-- as the raw text Calendly signed. No NOTIFY here: see waker.py.
INSERT INTO webhook_events AS w (
    integration_id, event, dedup_key, payload_uri, calendly_created_at, headers, body, duplicates
)
SELECT integration_id, event, dedup_key, payload_uri, calendly_created_at,
       headers::jsonb, body, repeats
FROM unnest(
    $1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
    $8::integer[]
) WITH ORDINALITY AS t (
    integration_id, event, dedup_key, payload_uri, calendly_created_at, headers, body, repeats, n
)
ORDER BY n
ON CONFLICT (integration_id, dedup_key)
    DO UPDATE SET duplicates = w.duplicates + 1 + excluded.duplicates
RETURNING w.id, w.integration_id, w.dedup_key, (xmax = 0) AS inserted;

-- name: notify
SELECT pg_notify($1::text, $2::text);

-- name: lock_inbox_claims
-- Claims run one at a time (across replicas), so the next statement sees every lease. The claim
-- walks the pending index in id order and stops at its limit: before statistics exist (a new
-- deployment's first minute) the planner would rather collect and sort the whole backlog.
SELECT pg_advisory_xact_lock(1, 1), set_config('enable_sort', 'off', true),
       set_config('enable_bitmapscan', 'off', true);

-- name: claim_webhook_events
-- Oldest first; a row whose lease ran out (its worker died) is taken over here. Rows of an
-- integration another worker is processing wait, so each integration's deliveries are applied
-- in arrival order.
WITH busy AS (
    SELECT DISTINCT integration_id FROM webhook_events
    WHERE status = 'processing'
      AND locked_at >= now() - make_interval(secs => $3::double precision)
      AND locked_by <> $1::text
), picked AS (
    SELECT id FROM webhook_events
    WHERE ((status = 'received' AND run_after <= now())
           OR (status = 'processing'
               AND locked_at < now() - make_interval(secs => $3::double precision)))
      AND integration_id NOT IN (SELECT integration_id FROM busy)
    ORDER BY id
    LIMIT $2::integer
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_events w
SET status = 'processing', locked_by = $1::text, locked_at = now(),
    attempts = w.attempts + 1, updated_at = now()
FROM picked
WHERE w.id = picked.id
RETURNING w.id, w.integration_id, w.event, w.body, w.attempts;

-- name: heartbeat_webhook_events
UPDATE webhook_events SET locked_at = now()
WHERE locked_by = $1::text AND status = 'processing' AND id = ANY ($2::bigint[]);

-- name: finish_webhook_event
-- Fenced: only the worker holding the lease may finish the row.
UPDATE webhook_events
SET status = $3::text, reason = $4::text, error = NULL, processed_at = clock_timestamp(),
    locked_by = NULL, locked_at = NULL, updated_at = now()
WHERE id = $1::bigint AND locked_by = $2::text AND status = 'processing';

-- name: finish_webhook_events
-- A group's outcomes in one statement; fenced like finish_webhook_event (returns what it updated).
UPDATE webhook_events AS w
SET status = f.status, reason = f.reason, error = NULL, processed_at = clock_timestamp(),
    locked_by = NULL, locked_at = NULL, updated_at = now()
FROM unnest($2::bigint[], $3::text[], $4::text[]) AS f (id, status, reason)
WHERE w.id = f.id AND w.locked_by = $1::text AND w.status = 'processing'
RETURNING w.id;

-- name: fail_webhook_event
-- Back to the queue after a backoff, or `failed` once the attempts are spent.
UPDATE webhook_events
SET status = CASE WHEN attempts >= $4::integer THEN 'failed' ELSE 'received' END,
    error = $3::text,
    run_after = now() + make_interval(secs => $5::double precision),
    locked_by = NULL, locked_at = NULL, updated_at = now()
WHERE id = $1::bigint AND locked_by = $2::text AND status = 'processing'
RETURNING status;

-- name: release_webhook_events
-- Graceful shutdown: hand unfinished rows back without spending an attempt.
UPDATE webhook_events
SET status = 'received', locked_by = NULL, locked_at = NULL, attempts = greatest(attempts - 1, 0),
    updated_at = now()
WHERE locked_by = $1::text AND status = 'processing';

-- name: list_webhook_events
SELECT * FROM webhook_events
WHERE integration_id = $1::bigint
  AND ($2::text IS NULL OR status = $2::text)
  AND ($3::text IS NULL OR event = $3::text)
  AND ($4::bigint IS NULL OR id < $4::bigint)
ORDER BY id DESC
LIMIT $5::integer;

-- name: get_webhook_event
SELECT * FROM webhook_events WHERE id = $1::bigint AND integration_id = $2::bigint;

-- name: replay_webhook_event
UPDATE webhook_events
SET status = 'received', reason = NULL, error = NULL, attempts = 0, run_after = now(),
    processed_at = NULL, updated_at = now()
WHERE id = $1::bigint AND integration_id = $2::bigint AND status <> 'processing'
RETURNING *;
