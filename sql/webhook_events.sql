-- name: insert_webhook_events
-- A batch of deliveries in one statement, in arrival order. Keys are distinct within a batch:
-- `repeats` counts the extra copies the edge folded into one row. A redelivery of a stored
-- delivery only bumps its duplicate counter; `inserted` tells the two apart. Bodies are stored
-- as the raw text Calendly signed; each new one joins the queue. No NOTIFY here: see waker.py.
WITH written AS (
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
RETURNING w.id, w.integration_id, w.dedup_key, (xmax = 0) AS inserted
), queued AS (
    INSERT INTO webhook_queue (id, integration_id)
    SELECT id, integration_id FROM written WHERE inserted
)
SELECT id, integration_id, dedup_key, inserted FROM written;

-- name: notify
SELECT pg_notify($1::text, $2::text);

-- name: lock_inbox_claims
-- Claims run one at a time (across replicas), so the next statement sees every lease. The claim
-- walks the queue's primary key in id order, stops at its limit and reaches each delivery's row
-- through its primary key: before statistics exist (a new deployment's first minute) the
-- planner would rather collect and sort the whole backlog, or hash all of webhook_events.
SELECT pg_advisory_xact_lock(1, 1), set_config('enable_sort', 'off', true),
       set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true),
       set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);

-- name: claim_webhook_events
-- Oldest first; a row whose lease ran out (its worker died) is taken over here. Rows of an
-- integration another worker is processing wait, so each integration's deliveries are applied
-- in arrival order. The queue row and the delivery's row get the same lease; both are locked
-- with SKIP LOCKED, so a claim never waits for the edge counting a duplicate of a delivery.
WITH busy AS (
    SELECT DISTINCT integration_id FROM webhook_queue
    WHERE locked_by IS NOT NULL
      AND locked_at >= now() - make_interval(secs => $3::double precision)
      AND locked_by <> $1::text
), picked AS (
    SELECT q.id FROM webhook_queue q JOIN webhook_events w ON w.id = q.id
    WHERE ((q.locked_by IS NULL AND q.run_after <= now())
           OR (q.locked_by IS NOT NULL
               AND q.locked_at < now() - make_interval(secs => $3::double precision)))
      AND q.integration_id NOT IN (SELECT integration_id FROM busy)
    ORDER BY q.id
    LIMIT $2::integer
    FOR NO KEY UPDATE OF q, w SKIP LOCKED
), leased AS (
    UPDATE webhook_queue q SET locked_by = $1::text, locked_at = now()
    FROM picked WHERE q.id = picked.id
    RETURNING q.id
)
UPDATE webhook_events w
SET status = 'processing', locked_by = $1::text, locked_at = now(),
    attempts = w.attempts + 1, updated_at = now()
FROM leased
WHERE w.id = leased.id
RETURNING w.id, w.integration_id, w.event, w.body, w.attempts;

-- name: heartbeat_webhook_events
WITH beat AS (
    UPDATE webhook_events SET locked_at = now()
    WHERE locked_by = $1::text AND status = 'processing' AND id = ANY ($2::bigint[])
    RETURNING id
)
UPDATE webhook_queue q SET locked_at = now() FROM beat WHERE q.id = beat.id;

-- name: finish_webhook_event
-- Fenced: only the worker holding the lease may finish the row; it leaves the queue.
WITH done AS (
    UPDATE webhook_events
    SET status = $3::text, reason = $4::text, error = NULL, processed_at = clock_timestamp(),
        locked_by = NULL, locked_at = NULL, updated_at = now()
    WHERE id = $1::bigint AND locked_by = $2::text AND status = 'processing'
    RETURNING id
), dequeued AS (
    DELETE FROM webhook_queue q USING done WHERE q.id = done.id
)
SELECT count(*) FROM done;

-- name: finish_webhook_events
-- A group's outcomes in one statement; fenced like finish_webhook_event (returns what it updated).
WITH done AS (
    UPDATE webhook_events AS w
    SET status = f.status, reason = f.reason, error = NULL, processed_at = clock_timestamp(),
        locked_by = NULL, locked_at = NULL, updated_at = now()
    FROM unnest($2::bigint[], $3::text[], $4::text[]) AS f (id, status, reason)
    WHERE w.id = f.id AND w.locked_by = $1::text AND w.status = 'processing'
    RETURNING w.id
), dequeued AS (
    DELETE FROM webhook_queue q USING done WHERE q.id = done.id
)
SELECT id FROM done;

-- name: fail_webhook_event
-- Back to the queue after a backoff, or `failed` (and out of the queue) once the attempts are
-- spent.
WITH failed AS (
    UPDATE webhook_events
    SET status = CASE WHEN attempts >= $4::integer THEN 'failed' ELSE 'received' END,
        error = $3::text,
        run_after = now() + make_interval(secs => $5::double precision),
        locked_by = NULL, locked_at = NULL, updated_at = now()
    WHERE id = $1::bigint AND locked_by = $2::text AND status = 'processing'
    RETURNING id, status, run_after
), requeued AS (
    UPDATE webhook_queue q SET run_after = failed.run_after, locked_by = NULL, locked_at = NULL
    FROM failed WHERE q.id = failed.id AND failed.status = 'received'
), dequeued AS (
    DELETE FROM webhook_queue q USING failed WHERE q.id = failed.id AND failed.status = 'failed'
)
SELECT status FROM failed;

-- name: release_webhook_events
-- Graceful shutdown: hand unfinished rows back without spending an attempt.
WITH released AS (
    UPDATE webhook_events
    SET status = 'received', locked_by = NULL, locked_at = NULL,
        attempts = greatest(attempts - 1, 0), updated_at = now()
    WHERE id IN (SELECT id FROM webhook_queue WHERE locked_by = $1::text)
      AND locked_by = $1::text AND status = 'processing'
    RETURNING id
)
UPDATE webhook_queue q SET locked_by = NULL, locked_at = NULL
FROM released WHERE q.id = released.id;

-- name: list_webhook_events
SELECT id, integration_id, event, dedup_key, payload_uri, calendly_created_at, headers, body,
    status, reason, error, attempts, duplicates, run_after, locked_by, locked_at, received_at,
    processed_at, updated_at
FROM webhook_events
WHERE integration_id = $1::bigint
  AND ($2::text IS NULL OR status = $2::text)
  AND ($3::text IS NULL OR event = $3::text)
  AND ($4::bigint IS NULL OR id < $4::bigint)
ORDER BY id DESC
LIMIT $5::integer;

-- name: get_webhook_event
SELECT id, integration_id, event, dedup_key, payload_uri, calendly_created_at, headers, body,
    status, reason, error, attempts, duplicates, run_after, locked_by, locked_at, received_at,
    processed_at, updated_at
FROM webhook_events WHERE id = $1::bigint AND integration_id = $2::bigint;

-- name: replay_webhook_event
-- Back into the queue (a row still waiting there is only made due now).
WITH replayed AS (
    UPDATE webhook_events
    SET status = 'received', reason = NULL, error = NULL, attempts = 0, run_after = now(),
        processed_at = NULL, updated_at = now()
    WHERE id = $1::bigint AND integration_id = $2::bigint AND status <> 'processing'
    RETURNING id, integration_id, event, dedup_key, payload_uri, calendly_created_at, headers,
        body, status, reason, error, attempts, duplicates, run_after, locked_by, locked_at,
        received_at, processed_at, updated_at
), queued AS (
    INSERT INTO webhook_queue (id, integration_id)
    SELECT id, integration_id FROM replayed
    ON CONFLICT (id) DO UPDATE SET run_after = now()
)
SELECT * FROM replayed;
