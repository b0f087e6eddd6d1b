ALTER TABLE webhook_events ALTER COLUMN body TYPE jsonb USING body::jsonb;
