-- name: insert_outbox
-- Notifications in the order given: their ids, and so their delivery, keep it.
INSERT INTO outbox (user_id, appointment_id, type, payload)
SELECT user_id, appointment_id, type, payload::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY
    AS t (user_id, appointment_id, type, payload, n)
ORDER BY n;

-- name: claim_outbox
-- A notification is taken when its lease ran out, or when it is due and nothing older of its
-- appointment is undelivered, so delivery is in order per appointment. Due rows are read in
-- run_after order (outbox_due_idx), each checked against its appointment's older rows
-- (outbox_pending_idx); stale leases by lease time (outbox_processing_idx): a claim reads about
-- as many rows as it takes, however large the backlog.
WITH stale AS (
    SELECT id FROM outbox
    WHERE status = 'processing'
      AND locked_at < now() - make_interval(secs => $3::double precision)
    ORDER BY locked_at
    LIMIT $2::integer
    FOR UPDATE SKIP LOCKED
), due AS (
    SELECT o.id FROM outbox o
    WHERE o.status = 'pending' AND o.run_after <= now()
      AND NOT EXISTS (
          SELECT FROM outbox older
          WHERE older.appointment_id = o.appointment_id AND older.id < o.id
            AND older.status IN ('pending', 'processing')
      )
    ORDER BY o.run_after, o.id
    LIMIT $2::integer
    FOR UPDATE OF o SKIP LOCKED
), picked AS (
    SELECT id FROM stale
    UNION ALL
    SELECT id FROM due
    LIMIT $2::integer
)
UPDATE outbox o
SET status = 'processing', locked_by = $1::text, locked_at = now(), attempts = o.attempts + 1
FROM picked
WHERE o.id = picked.id
RETURNING o.id, o.user_id, o.appointment_id, o.type, o.payload, o.status, o.attempts, o.last_error,
    o.run_after, o.locked_by, o.locked_at, o.created_at, o.delivered_at;

-- name: heartbeat_outbox
UPDATE outbox SET locked_at = now()
WHERE locked_by = $1::text AND status = 'processing' AND id = ANY ($2::bigint[]);

-- name: finish_outbox
UPDATE outbox
SET status = 'delivered', delivered_at = now(), last_error = NULL, locked_by = NULL, locked_at = NULL
WHERE id = $1::bigint AND locked_by = $2::text AND status = 'processing';

-- name: fail_outbox
UPDATE outbox
SET status = CASE WHEN attempts >= $4::integer THEN 'failed' ELSE 'pending' END,
    last_error = $3::text,
    run_after = now() + make_interval(secs => $5::double precision),
    locked_by = NULL, locked_at = NULL
WHERE id = $1::bigint AND locked_by = $2::text AND status = 'processing'
RETURNING status;

-- name: release_outbox
UPDATE outbox
SET status = 'pending', locked_by = NULL, locked_at = NULL, attempts = greatest(attempts - 1, 0)
WHERE locked_by = $1::text AND status = 'processing';
