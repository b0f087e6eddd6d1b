-- name: erased_uri_hashes
-- Which of these URI hashes are tombstones of the integration (one index probe each).
SELECT e.uri_hash FROM erased_invitees AS e
WHERE e.integration_id = $1::bigint AND e.uri_hash = ANY ($2::bytea[]);

-- name: get_user_client
SELECT id, user_id, email, email_normalized, name, first_name, last_name, phone, timezone,
       created_at, updated_at
FROM clients WHERE id = $1::bigint AND user_id = $2::bigint;

-- name: erasure_invitees
-- The invitees of these appointments, or with this (normalised) email, in the integration.
SELECT uri, old_invitee_uri, new_invitee_uri, appointment_id, event_uri
FROM calendly_invitees
WHERE integration_id = $1::bigint
  AND (appointment_id = ANY ($2::bigint[]) OR lower(btrim(email)) = $3::text);

-- name: erasure_appointments
-- The user's appointments of this client, of these invitees, or merged into these appointments.
SELECT id, calendly_event_uri, calendly_invitee_uri, history
FROM appointments
WHERE user_id = $1::bigint
  AND (client_id = $2::bigint OR id = ANY ($3::bigint[]) OR merged_into = ANY ($3::bigint[])
       OR calendly_invitee_uri = ANY ($4::text[]));

-- name: insert_tombstones
INSERT INTO erased_invitees (integration_id, uri_hash)
SELECT * FROM unnest($1::bigint[], $2::bytea[])
ON CONFLICT DO NOTHING;

-- name: anonymize_appointments
-- Times, status, service, event type, no-show and reschedule count stay; what identifies the
-- invitee goes: the client, answers, the invitee's time zone, the location's details (only its
-- type stays), who canceled and why (null; a reason the service wrote stays), links, and invitee
-- URIs (here and in history: 'erased').
UPDATE appointments SET
    client_id = NULL,
    timezone = NULL,
    location = CASE WHEN location IS NULL THEN NULL
                    ELSE jsonb_build_object('type', location -> 'type') END,
    questions_and_answers = '[]',
    cancellation = CASE
        WHEN cancellation IS NULL THEN NULL
        WHEN cancellation ->> 'reason' IN ('merged', 'rescheduled to another host')
            THEN cancellation || jsonb_build_object('canceled_by', NULL)
        ELSE cancellation || jsonb_build_object('canceled_by', NULL, 'reason', NULL) END,
    history = (
        SELECT coalesce(jsonb_agg(
                   h.slot || jsonb_build_object('calendly_invitee_uri', 'erased') ORDER BY h.n),
               '[]')
        FROM jsonb_array_elements(history) WITH ORDINALITY AS h (slot, n)
    ),
    calendly_invitee_uri = 'erased',
    cancel_url = NULL,
    reschedule_url = NULL,
    updated_at = clock_timestamp()
WHERE id = ANY ($1::bigint[])
RETURNING id;

-- name: delete_erased_invitees
DELETE FROM calendly_invitees WHERE integration_id = $1::bigint AND uri = ANY ($2::text[])
RETURNING uri;

-- name: delete_erased_reschedule_waits
DELETE FROM reschedule_waits
WHERE integration_id = $1::bigint
  AND (old_invitee_uri = ANY ($2::text[]) OR new_invitee_uri = ANY ($2::text[]))
RETURNING old_invitee_uri;

-- name: delete_erased_events_seen
-- Sync bookkeeping of the erased bookings' events (a later sync reads them again, and skips the
-- erased invitees).
DELETE FROM calendly_events_seen WHERE integration_id = $1::bigint AND event_uri = ANY ($2::text[])
RETURNING event_uri;

-- name: delete_erased_submissions
-- The routing form submissions of the integration or its organization submitted by one of these
-- invitees or naming the email anywhere ($4: a regular expression matching the lower-case email
-- as a whole address, see erasure.py).
DELETE FROM routing_form_submissions AS r
WHERE (r.integration_id = $1::bigint OR r.organization_uri = $2::text)
  AND (r.submitter_uri = ANY ($3::text[])
       OR lower(r.questions_and_answers::text) ~ $4::text
       OR lower(coalesce(r.tracking::text, '')) ~ $4::text
       OR lower(coalesce(r.result::text, '')) ~ $4::text)
RETURNING r.integration_id, r.uri;

-- name: delete_erased_webhook_events
-- Stored deliveries of these integrations whose raw body names one of the URIs ($2, lower case)
-- or the email ($3, as in delete_erased_submissions); their queue rows go with them (ON DELETE
-- CASCADE).
DELETE FROM webhook_events AS w
WHERE w.integration_id = ANY ($1::bigint[])
  AND (EXISTS (SELECT FROM unnest($2::text[]) AS n (uri) WHERE strpos(lower(w.body), n.uri) > 0)
       OR lower(w.body) ~ $3::text)
RETURNING w.id;

-- name: delete_erased_outbox
-- Notifications about the erased appointments, or whose payload names one of the URIs or the
-- email (as in delete_erased_webhook_events).
DELETE FROM outbox AS o
WHERE o.user_id = $1::bigint
  AND (o.appointment_id = ANY ($2::bigint[])
       OR EXISTS (SELECT FROM unnest($3::text[]) AS n (uri)
                  WHERE strpos(lower(o.payload::text), n.uri) > 0)
       OR lower(o.payload::text) ~ $4::text)
RETURNING o.id;

-- name: erase_link_prefills
-- Single-use links prefilled for the erased person (the email, as in delete_erased_submissions):
-- the prefill goes, and so does the booking URL's query, which carries it.
UPDATE scheduling_links
SET prefill = NULL, booking_url = split_part(booking_url, '?', 1)
WHERE integration_id = $1::bigint AND lower(coalesce(prefill::text, '')) ~ $2::text
RETURNING id;

-- name: scrub_erased_actions
-- Actions about the erased person: their email's keyed hashes ($2, under every key) or a
-- booked invitee's URI ($3, lower case) kept before an appointment held it. The request's
-- keyed hash goes too (its key can no longer be replayed: 422 idempotency_key_reused).
UPDATE actions
SET invitee_email_hash = NULL, request_hash = NULL,
    calendly_response = calendly_response - 'uri'
WHERE integration_id = $1::bigint
  AND (invitee_email_hash = ANY ($2::bytea[])
       OR lower(calendly_response ->> 'uri') = ANY ($3::text[]))
RETURNING id;

-- name: delete_client
DELETE FROM clients WHERE id = $1::bigint AND user_id = $2::bigint RETURNING id;

-- name: scrub_webhook_events
-- Deliveries of erased invitees that arrived after the erasure (a Calendly retry, a replay):
-- nothing of the body, headers or dedup key (it names the invitee URI) is kept.
UPDATE webhook_events
SET body = '{"erased": true}', headers = '{}', payload_uri = NULL, dedup_key = 'erased:' || id
WHERE id = ANY ($1::bigint[]);
