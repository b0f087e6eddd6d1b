-- name: insert_oauth_state
INSERT INTO oauth_states (state_hash, user_id, code_verifier_enc, redirect_uri, expires_at)
VALUES ($1::bytea, $2::bigint, $3::bytea, $4::text, now() + make_interval(secs => $5::integer));

-- name: consume_oauth_state
-- Single use: only the first caller gets the row, and only the user the state was made for
-- (the main app completes the flow for its signed-in user; nothing completes it for "any user").
UPDATE oauth_states
SET used_at = now()
WHERE state_hash = $1::bytea
  AND used_at IS NULL
  AND expires_at > now()
  AND user_id = $2::bigint
RETURNING state_hash, user_id, code_verifier_enc, redirect_uri, expires_at, used_at, created_at;

-- name: delete_stale_oauth_states
DELETE FROM oauth_states WHERE expires_at < now() - interval '1 day';
