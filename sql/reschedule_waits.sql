-- name: insert_reschedule_wait
-- A canceled half ($2, rescheduled to $3) starts waiting, unless its created half is stored.
INSERT INTO reschedule_waits (integration_id, old_invitee_uri, new_invitee_uri)
SELECT $1::bigint, $2::text, $3::text
WHERE NOT EXISTS (
    SELECT FROM calendly_invitees WHERE integration_id = $1::bigint AND uri = $3::text
)
ON CONFLICT DO NOTHING;

-- name: end_reschedule_wait
-- The created half $2 is applied: its wait is over (one resolved as moved is kept).
DELETE FROM reschedule_waits
WHERE integration_id = $1::bigint AND new_invitee_uri = $2::text AND moved_at IS NULL;

-- name: claim_reschedule_waits
-- Waits older than $1 seconds (and due again after a failure) of active, sync-enabled
-- integrations, oldest first, at most $3; each is leased for $4 seconds under the claim token $2
-- (a lease that runs out makes the wait due again, for any replica).
WITH due AS (
    SELECT w.integration_id, w.old_invitee_uri
    FROM reschedule_waits AS w
    JOIN integrations AS i ON i.id = w.integration_id
    WHERE w.moved_at IS NULL
      AND w.waiting_since <= now() - make_interval(secs => $1::double precision)
      AND (w.retry_at IS NULL OR w.retry_at <= now())
      AND i.status = 'active' AND i.sync_enabled
    ORDER BY w.waiting_since
    LIMIT $3::integer
    FOR UPDATE OF w SKIP LOCKED
)
UPDATE reschedule_waits AS w
SET claim = $2::text,
    retry_at = now() + make_interval(secs => $4::double precision),
    attempts = w.attempts + 1
FROM due
WHERE w.integration_id = due.integration_id AND w.old_invitee_uri = due.old_invitee_uri
RETURNING w.integration_id, w.old_invitee_uri, w.new_invitee_uri, w.attempts;

-- name: retry_reschedule_wait
-- Calendly could not be read: try again after $4 seconds (fenced by the claim token).
UPDATE reschedule_waits
SET claim = NULL, retry_at = now() + make_interval(secs => $4::double precision),
    last_error = $5::text
WHERE integration_id = $1::bigint AND old_invitee_uri = $2::text AND claim = $3::text
  AND moved_at IS NULL;

-- name: finish_reschedule_wait
-- The created half is about to be applied from Calendly's answer (fenced by the claim token).
DELETE FROM reschedule_waits
WHERE integration_id = $1::bigint AND old_invitee_uri = $2::text AND claim = $3::text
  AND moved_at IS NULL
RETURNING old_invitee_uri;

-- name: mark_reschedule_moved
-- The booking is another host's now (fenced by the claim token).
UPDATE reschedule_waits
SET moved_at = now(), claim = NULL, retry_at = NULL, last_error = NULL
WHERE integration_id = $1::bigint AND old_invitee_uri = $2::text AND claim = $3::text
  AND moved_at IS NULL
RETURNING old_invitee_uri;

-- name: moved_invitees
-- Which of these invitees were rescheduled to another host.
SELECT old_invitee_uri FROM reschedule_waits
WHERE integration_id = $1::bigint AND old_invitee_uri = ANY ($2::text[])
  AND moved_at IS NOT NULL;
