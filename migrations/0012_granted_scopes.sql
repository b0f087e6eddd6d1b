-- The OAuth scopes Calendly granted, as a set (NULL = the token response named none: a legacy
-- grant with full access); replaces the raw token_scope string.
-- depends: 0011_apply_tables_statistics
ALTER TABLE integrations RENAME COLUMN token_scope TO granted_scopes;
ALTER TABLE integrations
    ALTER COLUMN granted_scopes TYPE text[]
    USING CASE WHEN btrim(granted_scopes) = '' THEN '{}'::text[]
               ELSE regexp_split_to_array(btrim(granted_scopes), '\s+') END;
-- A refresh that got no answer (5xx, timeout, dropped connection) may still have rotated the
-- refresh token: set until the next successful token exchange.
ALTER TABLE integrations ADD COLUMN refresh_unanswered_at timestamptz;
