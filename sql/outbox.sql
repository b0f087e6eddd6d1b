-- name: insert_outbox
-- Notifications in the order given: their ids, and so their delivery, keep it.
INSERT INTO outbox (user_id, appointment_id, type, payload)
SELECT user_id, appointment_id, type, payload::jsonb
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY
    AS t (user_id, appointment_id, type, payload, n)
ORDER BY n;

-- name: claim_outbox
-- Only the oldest undelivered notification of each appointment is eligible, so delivery is in
-- order per appointment; a lease that ran out is taken over.
WITH heads AS (
    SELECT DISTINCT ON (appointment_id) id
    FROM outbox
    WHERE status IN ('pending', 'processing')
    ORDER BY appointment_id, id
), picked AS (
    SELECT o.id FROM outbox o JOIN heads h ON h.id = o.id
    WHERE (o.status = 'pending' AND o.run_after <= now())
       OR (o.status = 'processing' AND o.locked_at < now() - make_interval(secs => $3::double precision))
    ORDER BY o.id
    LIMIT $2::integer
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o
SET status = 'processing', locked_by = $1::text, locked_at = now(), attempts = o.attempts + 1
FROM picked
WHERE o.id = picked.id
RETURNING o.*;

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
