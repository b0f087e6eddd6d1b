-- Actions on Calendly (migration 0017): see calendly_svc/integrations/actions.py.

-- name: insert_action
-- Insert-or-get by (integration, Idempotency-Key): the no-op update returns (and locks) a row a
-- concurrent request committed after this statement began, which DO NOTHING would not show.
INSERT INTO actions AS a (
    integration_id, kind, actor_user_id, appointment_id, event_type_id, idempotency_key,
    request_hash, start_time, invitee_email_hash
)
VALUES ($1::bigint, $2::text, $3::bigint, $4::bigint, $5::bigint, $6::text, $7::bytea,
        $8::timestamptz, $9::bytea)
ON CONFLICT (integration_id, idempotency_key) WHERE idempotency_key IS NOT NULL
DO UPDATE SET idempotency_key = a.idempotency_key
RETURNING id, integration_id, kind, actor_user_id, appointment_id, event_type_id,
    idempotency_key, request_hash, start_time, invitee_email_hash, state, calendly_response,
    error, created_at, updated_at, sent_at, finished_at, (xmax = 0) AS inserted;

-- name: get_action
SELECT id, integration_id, kind, actor_user_id, appointment_id, event_type_id, idempotency_key,
    request_hash, start_time, invitee_email_hash, state, calendly_response, error, created_at,
    updated_at, sent_at, finished_at
FROM actions WHERE id = $1::bigint;

-- name: claim_action
-- Take an action over to (re)send it: a new one, one whose outcome is unknown or that failed
-- (nothing was done), or one left in flight longer than $2 seconds (its request died).
UPDATE actions SET state = 'requested', updated_at = now(), error = NULL
WHERE id = $1::bigint
  AND (state IN ('unknown', 'failed')
       OR (state IN ('requested', 'sent')
           AND updated_at < now() - make_interval(secs => $2::double precision)))
RETURNING id;

-- name: mark_action_sent
UPDATE actions SET state = 'sent', sent_at = now(), updated_at = now() WHERE id = $1::bigint;

-- name: finish_action
-- The outcome: succeeded (with Calendly's answer and the appointment), failed or unknown.
UPDATE actions SET state = $2::text, calendly_response = $3::jsonb, error = $4::jsonb,
    appointment_id = coalesce($5::bigint, appointment_id), updated_at = now(),
    finished_at = CASE WHEN $2::text IN ('succeeded', 'failed') THEN now() END
WHERE id = $1::bigint;

-- name: unsettled_bookings
-- Earlier bookings of this slot and person whose outcome is unknown or still in flight: before
-- sending another, Calendly must be asked whether one of them went through.
SELECT id FROM actions
WHERE integration_id = $1::bigint AND kind = 'book' AND event_type_id = $2::bigint
  AND start_time = $3::timestamptz AND invitee_email_hash = $4::bytea
  AND state IN ('unknown', 'sent') AND id <> $5::bigint;

-- name: settle_bookings
-- The booking those earlier attempts made was found at Calendly: they succeeded with it.
UPDATE actions SET state = 'succeeded', calendly_response = $3::jsonb,
    appointment_id = $4::bigint, updated_at = now(), finished_at = now()
WHERE integration_id = $1::bigint AND id = ANY($2::bigint[]) AND state IN ('unknown', 'sent');

-- name: last_no_show_uri
-- The no-show mark this service last made on the appointment's invitee (Calendly's answer keeps
-- its URI; the invitee's own URI is not kept here, see erasure). A mark since deleted answers 404
-- and the caller reads the invitee instead.
SELECT calendly_response ->> 'uri' AS uri FROM actions
WHERE appointment_id = $1::bigint AND kind = 'no_show' AND state = 'succeeded'
ORDER BY id DESC LIMIT 1;

-- name: insert_scheduling_link
INSERT INTO scheduling_links (
    integration_id, event_type_id, requested_by, booking_url, max_event_count, prefill
)
VALUES ($1::bigint, $2::bigint, $3::bigint, $4::text, $5::integer, $6::jsonb)
RETURNING id, integration_id, event_type_id, requested_by, booking_url, max_event_count, prefill,
    created_at;

-- name: purge_actions
-- Settled actions (idempotency keys included) last changed more than $1 hours ago, among the $2
-- oldest; in-flight ones stay.
WITH doomed AS (
    SELECT a.id FROM actions a
    WHERE a.id IN (SELECT id FROM actions ORDER BY id LIMIT $2::integer)
      AND a.state IN ('succeeded', 'failed', 'unknown')
      AND a.updated_at < now() - make_interval(hours => $1::integer)
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM actions a USING doomed WHERE a.id = doomed.id RETURNING 1
)
SELECT count(*) FROM deleted;
