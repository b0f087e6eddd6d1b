-- name: lock_integration_apply
-- Serialises applying invitee states per integration (webhooks and syncs, every replica).
SELECT pg_advisory_xact_lock($1::bigint);

-- name: upsert_invitees
-- Keeps the newest state only: an older (invitee, event) version never overwrites a newer one.
-- Per state (distinct URIs; $2: the states as one JSON array, see queries._records): whether
-- it was written, and the appointments of every invitee linked to its URI or its old/new
-- invitee, in either direction. That read
-- sees the table as it was before this statement, which is the same answer: the upsert changes
-- no appointment link, and each state's own links are among the URIs it probes.
WITH states AS MATERIALIZED (
    SELECT * FROM json_to_recordset($2::text::json) AS t (
        uri text, event_uri text, event_type_uri text, status text, rescheduled boolean,
        old_invitee_uri text, new_invitee_uri text, email text, name text, first_name text,
        last_name text, text_reminder_number text, timezone text, questions_and_answers jsonb,
        cancellation jsonb, no_show boolean, start_time timestamptz, end_time timestamptz,
        location jsonb, cancel_url text, reschedule_url text, routing_form_submission_uri text,
        calendly_created_at timestamptz, calendly_updated_at timestamptz,
        event_updated_at timestamptz
    )
), written AS (
    INSERT INTO calendly_invitees AS ci (
        integration_id, uri, event_uri, event_type_uri, status, rescheduled, old_invitee_uri,
        new_invitee_uri, email, name, first_name, last_name, text_reminder_number, timezone,
        questions_and_answers, cancellation, no_show, start_time, end_time, location, cancel_url,
        reschedule_url, routing_form_submission_uri, calendly_created_at, calendly_updated_at,
        event_updated_at
    )
    SELECT $1::bigint, t.*
    FROM states AS t
    ON CONFLICT (integration_id, uri) DO UPDATE SET
        event_uri = EXCLUDED.event_uri,
        event_type_uri = EXCLUDED.event_type_uri,
        status = EXCLUDED.status,
        rescheduled = EXCLUDED.rescheduled,
        old_invitee_uri = coalesce(EXCLUDED.old_invitee_uri, ci.old_invitee_uri),
        new_invitee_uri = coalesce(EXCLUDED.new_invitee_uri, ci.new_invitee_uri),
        email = EXCLUDED.email,
        name = EXCLUDED.name,
        first_name = EXCLUDED.first_name,
        last_name = EXCLUDED.last_name,
        text_reminder_number = EXCLUDED.text_reminder_number,
        timezone = EXCLUDED.timezone,
        questions_and_answers = EXCLUDED.questions_and_answers,
        cancellation = EXCLUDED.cancellation,
        no_show = EXCLUDED.no_show,
        start_time = EXCLUDED.start_time,
        end_time = EXCLUDED.end_time,
        location = EXCLUDED.location,
        cancel_url = EXCLUDED.cancel_url,
        reschedule_url = EXCLUDED.reschedule_url,
        routing_form_submission_uri = EXCLUDED.routing_form_submission_uri,
        calendly_created_at = EXCLUDED.calendly_created_at,
        calendly_updated_at = EXCLUDED.calendly_updated_at,
        event_updated_at = EXCLUDED.event_updated_at,
        seen_at = now()
    WHERE (EXCLUDED.calendly_updated_at, coalesce(EXCLUDED.event_updated_at, '-infinity'))
       >= (ci.calendly_updated_at, coalesce(ci.event_updated_at, '-infinity'))
    RETURNING ci.uri
), probes AS (
    SELECT uri, old_invitee_uri AS old_uri, new_invitee_uri AS new_uri FROM states
), links AS (
    SELECT DISTINCT p.uri AS state_uri, l.uri
    FROM probes AS p
    CROSS JOIN LATERAL (VALUES (p.uri), (p.old_uri), (p.new_uri)) AS l (uri)
    WHERE l.uri IS NOT NULL
), linked AS MATERIALIZED (
    -- per link, three index probes (OFFSET 0 keeps them per link: a join planned from missing
    -- or stale statistics scanned every invitee of the integration)
    SELECT l.state_uri, ci.appointment_id FROM links AS l
    CROSS JOIN LATERAL (
        SELECT appointment_id FROM calendly_invitees
        WHERE integration_id = $1::bigint AND uri = l.uri
        UNION ALL
        SELECT appointment_id FROM calendly_invitees
        WHERE integration_id = $1::bigint AND old_invitee_uri = l.uri
        UNION ALL
        SELECT appointment_id FROM calendly_invitees
        WHERE integration_id = $1::bigint AND new_invitee_uri = l.uri
        OFFSET 0
    ) AS ci
)
SELECT p.uri,
       p.uri IN (SELECT uri FROM written) AS written,
       ARRAY(
           SELECT DISTINCT l.appointment_id FROM linked AS l
           WHERE l.state_uri = p.uri AND l.appointment_id IS NOT NULL
           ORDER BY l.appointment_id
       ) AS found
FROM probes AS p;

-- name: lock_appointments
SELECT client_id, status, no_show, start_time, end_time, timezone, location,
    questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
    calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
    service_id, confirmation, id, merged_into, created_at, updated_at
FROM appointments WHERE id = ANY ($1::bigint[]) ORDER BY id FOR UPDATE;

-- name: attach_invitees
-- The invitee joins the appointment, and so do the invitees of appointments merged into it.
UPDATE calendly_invitees
SET appointment_id = $3::bigint
WHERE integration_id = $1::bigint
  AND (uri = $2::text OR appointment_id = ANY ($4::bigint[]));

-- name: mark_appointments_merged
UPDATE appointments
SET merged_into = $2::bigint,
    status = 'canceled',
    cancellation = jsonb_build_object('reason', 'merged', 'merged_into', $2::bigint),
    updated_at = now()
WHERE id = ANY ($1::bigint[])
RETURNING client_id, status, no_show, start_time, end_time, timezone, location,
    questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
    calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
    service_id, confirmation, id, merged_into, created_at, updated_at;

-- name: chain_invitees
SELECT uri, event_uri, event_type_uri, status, rescheduled, old_invitee_uri, new_invitee_uri,
    email, name, first_name, last_name, text_reminder_number, timezone, questions_and_answers,
    cancellation, no_show, start_time, end_time, location, cancel_url, reschedule_url,
    routing_form_submission_uri, calendly_created_at, calendly_updated_at, event_updated_at,
    integration_id, appointment_id, seen_at
FROM calendly_invitees WHERE appointment_id = $1::bigint ORDER BY calendly_created_at, uri;

-- name: known_invitees
-- Which of these URIs a stored invitee has, or names as its old or new invitee: up to three
-- index probes per URI (a join planned from missing or stale statistics scanned every invitee
-- of the integration).
SELECT p.uri FROM unnest($2::text[]) AS p (uri)
WHERE EXISTS (
    SELECT FROM calendly_invitees WHERE integration_id = $1::bigint AND uri = p.uri
    UNION ALL
    SELECT FROM calendly_invitees WHERE integration_id = $1::bigint AND old_invitee_uri = p.uri
    UNION ALL
    SELECT FROM calendly_invitees WHERE integration_id = $1::bigint AND new_invitee_uri = p.uri
);

-- name: insert_bookings
-- Bookings seen for the first time (no appointment has their invitees; the caller holds the
-- apply lock): each appointment, and its invitee's snapshot attached to it, in one statement.
-- A snapshot the caller already stored is only attached. $1: the queries.NewAppointment rows,
-- $2: the queries.InviteeState rows, each as one JSON array (see queries._records). Returns only
-- the new ids: the full rows are read back only when notifications need them. Each row is
-- stamped with clock_timestamp(), as update_appointment does: appointments created in one
-- transaction still get their own created_at/updated_at.
WITH created AS (
    INSERT INTO appointments (
        client_id, status, no_show, start_time, end_time, timezone, location,
        questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
        calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
        service_id, confirmation, created_at, updated_at
    )
    SELECT a.*, stamp.now, stamp.now
    FROM json_to_recordset($1::text::json) AS a (
        client_id bigint, status text, no_show boolean, start_time timestamptz,
        end_time timestamptz, timezone text, location jsonb, questions_and_answers jsonb,
        cancellation jsonb, reschedule_count integer, history jsonb, calendly_event_uri text,
        calendly_invitee_uri text, cancel_url text, reschedule_url text, user_id bigint,
        integration_id bigint, event_type_id bigint, service_id bigint, confirmation text
    )
    CROSS JOIN LATERAL (SELECT clock_timestamp() AS now) AS stamp
    RETURNING id, integration_id, calendly_invitee_uri
), stored AS (
    INSERT INTO calendly_invitees (
        integration_id, uri, event_uri, event_type_uri, status, rescheduled, old_invitee_uri,
        new_invitee_uri, email, name, first_name, last_name, text_reminder_number, timezone,
        questions_and_answers, cancellation, no_show, start_time, end_time, location, cancel_url,
        reschedule_url, routing_form_submission_uri, calendly_created_at, calendly_updated_at,
        event_updated_at, appointment_id
    )
    SELECT created.integration_id, s.*, created.id
    FROM json_to_recordset($2::text::json) AS s (
        uri text, event_uri text, event_type_uri text, status text, rescheduled boolean,
        old_invitee_uri text, new_invitee_uri text, email text, name text, first_name text,
        last_name text, text_reminder_number text, timezone text, questions_and_answers jsonb,
        cancellation jsonb, no_show boolean, start_time timestamptz, end_time timestamptz,
        location jsonb, cancel_url text, reschedule_url text, routing_form_submission_uri text,
        calendly_created_at timestamptz, calendly_updated_at timestamptz,
        event_updated_at timestamptz
    )
    JOIN created ON created.calendly_invitee_uri = s.uri
    ON CONFLICT (integration_id, uri) DO UPDATE SET appointment_id = EXCLUDED.appointment_id
)
SELECT created.id, created.calendly_invitee_uri FROM created;

-- name: get_appointments
SELECT client_id, status, no_show, start_time, end_time, timezone, location,
    questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
    calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
    service_id, confirmation, id, merged_into, created_at, updated_at
FROM appointments WHERE id = ANY ($1::bigint[]) ORDER BY id;

-- name: update_appointment
-- Writes (and bumps updated_at) only when the projection differs from what is stored.
UPDATE appointments AS a
SET client_id = $2::bigint, status = $3::text, no_show = $4::boolean,
    start_time = $5::timestamptz, end_time = $6::timestamptz, timezone = $7::text,
    location = $8::jsonb, questions_and_answers = $9::jsonb, cancellation = $10::jsonb,
    reschedule_count = $11::integer, history = $12::jsonb, calendly_event_uri = $13::text,
    calendly_invitee_uri = $14::text, cancel_url = $15::text, reschedule_url = $16::text,
    updated_at = clock_timestamp()
WHERE a.id = $1::bigint
  AND (a.client_id, a.status, a.no_show, a.start_time, a.end_time, a.timezone, a.location,
       a.questions_and_answers, a.cancellation, a.reschedule_count, a.history,
       a.calendly_event_uri, a.calendly_invitee_uri, a.cancel_url, a.reschedule_url)
      IS DISTINCT FROM
      ($2::bigint, $3::text, $4::boolean, $5::timestamptz, $6::timestamptz, $7::text, $8::jsonb,
       $9::jsonb, $10::jsonb, $11::integer, $12::jsonb, $13::text, $14::text, $15::text, $16::text)
RETURNING client_id, status, no_show, start_time, end_time, timezone, location,
    questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
    calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
    service_id, confirmation, id, merged_into, created_at, updated_at;

-- name: get_appointment
SELECT client_id, status, no_show, start_time, end_time, timezone, location,
    questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
    calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
    service_id, confirmation, id, merged_into, created_at, updated_at
FROM appointments WHERE id = $1::bigint AND user_id = $2::bigint AND merged_into IS NULL;

-- name: list_appointments
-- Newest change first; the cursor is the (updated_at, id) of the last row already returned.
SELECT client_id, status, no_show, start_time, end_time, timezone, location,
    questions_and_answers, cancellation, reschedule_count, history, calendly_event_uri,
    calendly_invitee_uri, cancel_url, reschedule_url, user_id, integration_id, event_type_id,
    service_id, confirmation, id, merged_into, created_at, updated_at
FROM appointments
WHERE user_id = $1::bigint
  AND merged_into IS NULL
  AND ($2::text IS NULL OR status = $2::text)
  AND ($3::timestamptz IS NULL OR start_time >= $3::timestamptz)
  AND ($4::timestamptz IS NULL OR start_time < $4::timestamptz)
  AND ($5::timestamptz IS NULL OR updated_at > $5::timestamptz)
  AND ($6::timestamptz IS NULL OR (updated_at, id) < ($6::timestamptz, $7::bigint))
ORDER BY updated_at DESC, id DESC
LIMIT $8::integer;

-- name: appointment_by_invitee
SELECT a.client_id, a.status, a.no_show, a.start_time, a.end_time, a.timezone, a.location,
    a.questions_and_answers, a.cancellation, a.reschedule_count, a.history, a.calendly_event_uri,
    a.calendly_invitee_uri, a.cancel_url, a.reschedule_url, a.user_id, a.integration_id,
    a.event_type_id, a.service_id, a.confirmation, a.id, a.merged_into, a.created_at, a.updated_at
FROM calendly_invitees ci JOIN appointments a ON a.id = ci.appointment_id
WHERE ci.integration_id = $1::bigint AND ci.uri = $2::text;

-- name: get_event_type_by_uri
SELECT id, integration_id, calendly_event_type_uri, name, slug, duration_minutes, active, kind,
    scheduling_url, service_id, is_active, auto_create_appointment, removed_at,
    calendly_updated_at, created_at, updated_at
FROM event_types WHERE integration_id = $1::bigint AND calendly_event_type_uri = $2::text;
