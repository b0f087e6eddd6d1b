-- name: get_integration
SELECT id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at
FROM integrations WHERE id = $1::bigint;

-- name: get_integration_by_user
SELECT id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at
FROM integrations WHERE user_id = $1::bigint;

-- name: get_integration_by_public_id
SELECT id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at
FROM integrations WHERE public_id = $1::uuid;

-- name: lock_integration
-- Serialises token refreshes across processes; re-read the tokens after taking it.
SELECT id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at
FROM integrations WHERE id = $1::bigint FOR UPDATE;

-- name: upsert_connected_integration
-- Reconnecting keeps the row (id, public id, settings, mapping); a new Calendly account replaces the old.
INSERT INTO integrations AS i (
    user_id, status, calendly_user_uri, calendly_organization_uri, scheduling_url, name, email,
    timezone, access_token_enc, refresh_token_enc, token_expires_at, granted_scopes
) VALUES (
    $1::bigint, 'active', $2::text, $3::text, $4::text, $5::text, $6::text,
    $7::text, $8::bytea, $9::bytea, $10::timestamptz, $11::text[]
)
ON CONFLICT (user_id) DO UPDATE SET
    status = 'active',
    status_reason = NULL,
    calendly_user_uri = EXCLUDED.calendly_user_uri,
    calendly_organization_uri = EXCLUDED.calendly_organization_uri,
    scheduling_url = EXCLUDED.scheduling_url,
    name = EXCLUDED.name,
    email = EXCLUDED.email,
    timezone = EXCLUDED.timezone,
    access_token_enc = EXCLUDED.access_token_enc,
    refresh_token_enc = EXCLUDED.refresh_token_enc,
    token_expires_at = EXCLUDED.token_expires_at,
    granted_scopes = EXCLUDED.granted_scopes,
    refresh_unanswered_at = NULL,
    connected_at = now(),
    disconnected_at = NULL,
    updated_at = now()
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: update_tokens
-- A refresh answers with the grant's current scopes (none named: a legacy full-access grant).
UPDATE integrations
SET access_token_enc = $2::bytea,
    refresh_token_enc = $3::bytea,
    token_expires_at = $4::timestamptz,
    granted_scopes = $5::text[],
    refresh_unanswered_at = NULL,
    updated_at = now()
WHERE id = $1::bigint
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: mark_refresh_unanswered
-- The refresh got no answer: Calendly may have rotated the refresh token all the same.
UPDATE integrations
SET refresh_unanswered_at = now(), updated_at = now()
WHERE id = $1::bigint;

-- name: mark_needs_reauth
-- The tokens are dead; drop them so nothing retries with them.
UPDATE integrations
SET status = 'needs_reauth',
    status_reason = $2::text,
    access_token_enc = NULL,
    refresh_token_enc = NULL,
    token_expires_at = NULL,
    updated_at = now()
WHERE id = $1::bigint AND status = 'active'
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: set_webhook
UPDATE integrations
SET webhook_uri = $2::text,
    webhook_url = $3::text,
    webhook_state = $4::text,
    webhook_signing_key_enc = $5::bytea,
    webhook_error = $6::text,
    updated_at = now()
WHERE id = $1::bigint
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: set_sync_enabled
UPDATE integrations
SET sync_enabled = $2::boolean, updated_at = now()
WHERE user_id = $1::bigint AND status <> 'disconnected'
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: update_sync_settings
-- NULL leaves a field as it is; default_service_id changes only when $7 is true (it may become NULL).
UPDATE integrations
SET sync_past_days = coalesce($2::integer, sync_past_days),
    sync_future_days = coalesce($3::integer, sync_future_days),
    auto_confirm_bookings = coalesce($4::boolean, auto_confirm_bookings),
    create_client_if_not_exists = coalesce($5::boolean, create_client_if_not_exists),
    notification_on_booking = coalesce($6::boolean, notification_on_booking),
    default_service_id = CASE WHEN $7::boolean THEN $8::bigint ELSE default_service_id END,
    updated_at = now()
WHERE user_id = $1::bigint AND status <> 'disconnected'
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: mark_disconnected
UPDATE integrations
SET status = 'disconnected',
    status_reason = NULL,
    access_token_enc = NULL,
    refresh_token_enc = NULL,
    token_expires_at = NULL,
    webhook_uri = NULL,
    webhook_state = NULL,
    webhook_signing_key_enc = NULL,
    webhook_error = NULL,
    disconnected_at = now(),
    updated_at = now()
WHERE id = $1::bigint
RETURNING id, public_id, user_id, status, status_reason, sync_enabled, calendly_user_uri,
    calendly_organization_uri, scheduling_url, name, email, timezone, access_token_enc,
    refresh_token_enc, token_expires_at, granted_scopes, webhook_uri, webhook_url, webhook_state,
    webhook_signing_key_enc, webhook_error, sync_past_days, sync_future_days,
    auto_confirm_bookings, create_client_if_not_exists, default_service_id,
    notification_on_booking, last_sync_at, last_sync_status, connected_at, disconnected_at,
    created_at, updated_at, routing_forms_webhook, next_sync_at, last_full_sync_at,
    refresh_unanswered_at;

-- name: encrypted_secrets
-- Every encrypted column, for re-encryption under a new key.
SELECT id, access_token_enc, refresh_token_enc, webhook_signing_key_enc FROM integrations
WHERE access_token_enc IS NOT NULL OR refresh_token_enc IS NOT NULL
   OR webhook_signing_key_enc IS NOT NULL
ORDER BY id;

-- name: integration_secrets
SELECT id, access_token_enc, refresh_token_enc, webhook_signing_key_enc FROM integrations
WHERE id = $1::bigint;

-- name: replace_secrets
-- Compare-and-set: writes only while the row still holds the ciphertexts that were re-encrypted,
-- so a refresh or a new signing key committed meanwhile is never overwritten with the old value.
UPDATE integrations
SET access_token_enc = $5::bytea, refresh_token_enc = $6::bytea, webhook_signing_key_enc = $7::bytea
WHERE id = $1::bigint
  AND access_token_enc IS NOT DISTINCT FROM $2::bytea
  AND refresh_token_enc IS NOT DISTINCT FROM $3::bytea
  AND webhook_signing_key_enc IS NOT DISTINCT FROM $4::bytea
RETURNING id;

-- name: oauth_state_secrets
SELECT state_hash, code_verifier_enc FROM oauth_states WHERE used_at IS NULL ORDER BY state_hash;

-- name: replace_oauth_state_secret
-- Compare-and-set, as replace_secrets.
UPDATE oauth_states SET code_verifier_enc = $3::bytea
WHERE state_hash = $1::bytea AND code_verifier_enc = $2::bytea
RETURNING state_hash;
