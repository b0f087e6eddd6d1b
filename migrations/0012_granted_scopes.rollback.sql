ALTER TABLE integrations DROP COLUMN refresh_unanswered_at;
ALTER TABLE integrations
    ALTER COLUMN granted_scopes TYPE text USING array_to_string(granted_scopes, ' ');
ALTER TABLE integrations RENAME COLUMN granted_scopes TO token_scope;
