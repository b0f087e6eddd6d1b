-- name: upsert_client
-- Creates the client or fills the fields it is missing; never overwrites what the main app has.
INSERT INTO clients AS c (user_id, email, email_normalized, name, first_name, last_name, phone, timezone)
VALUES ($1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text)
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
RETURNING c.*, (xmax = 0) AS inserted;

-- name: fill_client
-- Without permission to create clients: complete an existing one, if any.
UPDATE clients AS c SET
    name = coalesce(c.name, $4::text),
    first_name = coalesce(c.first_name, $5::text),
    last_name = coalesce(c.last_name, $6::text),
    phone = coalesce(c.phone, $7::text),
    timezone = coalesce(c.timezone, $8::text)
WHERE c.user_id = $1::bigint AND c.email_normalized = $3::text AND $2::text IS NOT NULL
RETURNING c.*, false AS inserted;

-- name: get_client
SELECT * FROM clients WHERE id = $1::bigint;

-- name: get_clients
SELECT * FROM clients WHERE id = ANY ($1::bigint[]);

-- name: list_clients
SELECT * FROM clients
WHERE user_id = $1::bigint
  AND ($2::text IS NULL OR email_normalized = $2::text)
  AND ($3::bigint IS NULL OR id > $3::bigint)
ORDER BY id
LIMIT $4::integer;
