-- name: list_event_types
SELECT id, integration_id, calendly_event_type_uri, name, slug, duration_minutes, active, kind,
    scheduling_url, service_id, is_active, auto_create_appointment, removed_at,
    calendly_updated_at, created_at, updated_at
FROM event_types
WHERE integration_id = $1::bigint AND removed_at IS NULL
ORDER BY name, id;

-- name: get_event_type
SELECT id, integration_id, calendly_event_type_uri, name, slug, duration_minutes, active, kind,
    scheduling_url, service_id, is_active, auto_create_appointment, removed_at,
    calendly_updated_at, created_at, updated_at
FROM event_types WHERE id = $1::bigint AND integration_id = $2::bigint;

-- name: upsert_event_types
-- Unchanged rows are not touched and not returned; `inserted` tells new rows from updated ones.
-- A state older than the stored one (a late webhook) changes nothing, nor does it revive a row
-- removed after that state was current.
INSERT INTO event_types AS et (
    integration_id, calendly_event_type_uri, name, slug, duration_minutes, active, kind,
    scheduling_url, calendly_updated_at
)
SELECT $1::bigint, u.uri, u.name, u.slug, u.duration, u.active, u.kind, u.scheduling_url, u.updated_at
FROM unnest(
    $2::text[], $3::text[], $4::text[], $5::integer[], $6::boolean[], $7::text[], $8::text[],
    $9::timestamptz[]
) AS u(uri, name, slug, duration, active, kind, scheduling_url, updated_at)
ON CONFLICT (integration_id, calendly_event_type_uri) DO UPDATE SET
    name = EXCLUDED.name,
    slug = EXCLUDED.slug,
    duration_minutes = EXCLUDED.duration_minutes,
    active = EXCLUDED.active,
    kind = EXCLUDED.kind,
    scheduling_url = EXCLUDED.scheduling_url,
    calendly_updated_at = EXCLUDED.calendly_updated_at,
    removed_at = NULL,
    updated_at = now()
WHERE (EXCLUDED.calendly_updated_at IS NULL OR et.calendly_updated_at IS NULL
       OR EXCLUDED.calendly_updated_at >= et.calendly_updated_at)
  AND (et.removed_at IS NULL OR EXCLUDED.calendly_updated_at IS NULL
       OR EXCLUDED.calendly_updated_at > et.removed_at)
  AND (et.name, et.slug, et.duration_minutes, et.active, et.kind, et.scheduling_url, et.removed_at)
    IS DISTINCT FROM
    (EXCLUDED.name, EXCLUDED.slug, EXCLUDED.duration_minutes, EXCLUDED.active, EXCLUDED.kind,
     EXCLUDED.scheduling_url, NULL::timestamptz)
RETURNING et.id, (xmax = 0) AS inserted;

-- name: mark_event_types_removed
UPDATE event_types
SET removed_at = now(), updated_at = now()
WHERE integration_id = $1::bigint
  AND removed_at IS NULL
  AND NOT (calendly_event_type_uri = ANY ($2::text[]))
RETURNING id;

-- name: update_event_type_mapping
-- NULL leaves a flag as it is; service_id changes only when $3 is true (it may become NULL).
UPDATE event_types
SET service_id = CASE WHEN $3::boolean THEN $4::bigint ELSE service_id END,
    is_active = coalesce($5::boolean, is_active),
    auto_create_appointment = coalesce($6::boolean, auto_create_appointment),
    updated_at = now()
WHERE id = $1::bigint AND integration_id = $2::bigint AND removed_at IS NULL
RETURNING id, integration_id, calendly_event_type_uri, name, slug, duration_minutes, active, kind,
    scheduling_url, service_id, is_active, auto_create_appointment, removed_at,
    calendly_updated_at, created_at, updated_at;

-- name: mark_event_type_removed
UPDATE event_types SET removed_at = now(), active = false, updated_at = now()
WHERE integration_id = $1::bigint AND calendly_event_type_uri = $2::text AND removed_at IS NULL;
