DROP INDEX integrations_next_sync_idx;
ALTER TABLE integrations DROP COLUMN last_full_sync_at;
ALTER TABLE integrations DROP COLUMN next_sync_at;
DROP TABLE calendly_events_seen;
DROP TABLE sync_jobs;
DROP TABLE sync_logs;
