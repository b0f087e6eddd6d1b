-- name: upsert_clients
-- Creates each client or fills the fields it is missing; never overwrites what the main app
-- has. Emails are distinct within a call; $1: the queries.ClientData rows as one JSON array.
INSERT INTO clients AS c (user_id, email, email_normalized, name, first_name, last_name, phone, timezone)
SELECT * FROM json_to_recordset($1::text::json) AS d (
    user_id bigint, email text, email_normalized text, name text, first_name text,
    last_name text, phone text, timezone text
)
ON CONFLICT (user_id, email_normalized) DO UPDATE SET
    name = coalesce(c.name, EXCLUDED.name),
    first_name = coalesce(c.first_name, EXCLUDED.first_name),
    last_name = coalesce(c.last_name, EXCLUDED.last_name),
    phone = coalesce(c.phone, EXCLUDED.phone),
    timezone = coalesce(c.timezone, EXCLUDED.timezone),
    updated_at = CASE
        WHEN (c.name, c.first_name, c.last_name, c.phone, c.timezone) IS NOT DISTINCT FROM
             (coalesce(c.name, EXCLUDED.name), coalesce(c.first_name, EXCLUDED.first_name),
              coalesce(c.last_name, EXCLUDED.last_name), coalesce(c.phone, EXCLUDED.phone),
              coalesce(c.timezone, EXCLUDED.timezone))
        THEN c.updated_at ELSE now() END
RETURNING c.id, c.user_id, c.email, c.email_normalized, c.name, c.first_name, c.last_name, c.phone,
    c.timezone, c.created_at, c.updated_at, (xmax = 0) AS inserted;

-- name: fill_clients
-- Without permission to create clients: complete the existing ones, if any.
UPDATE clients AS c SET
    name = coalesce(c.name, d.name),
    first_name = coalesce(c.first_name, d.first_name),
    last_name = coalesce(c.last_name, d.last_name),
    phone = coalesce(c.phone, d.phone),
    timezone = coalesce(c.timezone, d.timezone)
FROM json_to_recordset($1::text::json) AS d (
    user_id bigint, email text, email_normalized text, name text, first_name text,
    last_name text, phone text, timezone text
)
WHERE c.user_id = d.user_id AND c.email_normalized = d.email_normalized AND d.email IS NOT NULL
RETURNING c.id, c.user_id, c.email, c.email_normalized, c.name, c.first_name, c.last_name, c.phone,
    c.timezone, c.created_at, c.updated_at, false AS inserted;

-- name: get_client
SELECT id, user_id, email, email_normalized, name, first_name, last_name, phone, timezone,
    created_at, updated_at
FROM clients WHERE id = $1::bigint;

-- name: get_clients
SELECT id, user_id, email, email_normalized, name, first_name, last_name, phone, timezone,
    created_at, updated_at
FROM clients WHERE id = ANY ($1::bigint[]);

-- name: list_clients
SELECT id, user_id, email, email_normalized, name, first_name, last_name, phone, timezone,
    created_at, updated_at
FROM clients
WHERE user_id = $1::bigint
  AND ($2::text IS NULL OR email_normalized = $2::text)
  AND ($3::bigint IS NULL OR id > $3::bigint)
ORDER BY id
LIMIT $4::integer;
