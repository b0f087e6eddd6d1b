-- Integrations (one per main-app user), single-use OAuth states, and event types.
-- depends:

CREATE TABLE integrations (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id bigint NOT NULL,
    status text NOT NULL DEFAULT 'active',
    status_reason text,
    sync_enabled boolean NOT NULL DEFAULT true,
    calendly_user_uri text NOT NULL,
    calendly_organization_uri text,
    scheduling_url text,
    name text,
    email text,
    timezone text,
    access_token_enc bytea,
    refresh_token_enc bytea,
    token_expires_at timestamptz,
    token_scope text,
    webhook_uri text,
    webhook_url text,
    webhook_state text,
    webhook_signing_key_enc bytea,
    webhook_error text,
    sync_past_days integer NOT NULL DEFAULT 7,
    sync_future_days integer NOT NULL DEFAULT 60,
    auto_confirm_bookings boolean NOT NULL DEFAULT true,
    create_client_if_not_exists boolean NOT NULL DEFAULT true,
    default_service_id bigint,
    notification_on_booking boolean NOT NULL DEFAULT true,
    last_sync_at timestamptz,
    last_sync_status text,
    connected_at timestamptz NOT NULL DEFAULT now(),
    disconnected_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_public_id_key UNIQUE (public_id),
    CONSTRAINT integrations_user_id_key UNIQUE (user_id),
    CONSTRAINT integrations_status_check
        CHECK (status IN ('active', 'needs_reauth', 'disconnected')),
    CONSTRAINT integrations_sync_past_days_check CHECK (sync_past_days BETWEEN 0 AND 365),
    CONSTRAINT integrations_sync_future_days_check CHECK (sync_future_days BETWEEN 1 AND 365),
    CONSTRAINT integrations_active_tokens_check
        CHECK (status <> 'active' OR (access_token_enc IS NOT NULL AND refresh_token_enc IS NOT NULL)),
    CONSTRAINT integrations_disconnected_tokens_check
        CHECK (status <> 'disconnected' OR (access_token_enc IS NULL AND refresh_token_enc IS NULL))
);

-- One main-app user per Calendly account among live connections.
CREATE UNIQUE INDEX integrations_calendly_user_uri_key
    ON integrations (calendly_user_uri) WHERE status <> 'disconnected';

CREATE TABLE oauth_states (
    state_hash bytea PRIMARY KEY,
    user_id bigint NOT NULL,
    code_verifier_enc bytea NOT NULL,
    redirect_uri text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX oauth_states_expires_at_idx ON oauth_states (expires_at);

CREATE TABLE event_types (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    calendly_event_type_uri text NOT NULL,
    name text NOT NULL,
    slug text,
    duration_minutes integer,
    active boolean NOT NULL,
    kind text,
    scheduling_url text,
    service_id bigint,
    is_active boolean NOT NULL DEFAULT true,
    auto_create_appointment boolean NOT NULL DEFAULT true,
    removed_at timestamptz,
    calendly_updated_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT event_types_integration_uri_key UNIQUE (integration_id, calendly_event_type_uri)
);
