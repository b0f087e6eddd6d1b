DELETE FROM sync_logs WHERE trigger = 'gap';
DELETE FROM sync_jobs WHERE trigger = 'gap';
ALTER TABLE sync_logs DROP CONSTRAINT sync_logs_trigger_check;
ALTER TABLE sync_logs ADD CONSTRAINT sync_logs_trigger_check
    CHECK (trigger IN ('initial', 'manual', 'periodic'));
ALTER TABLE sync_jobs DROP CONSTRAINT sync_jobs_trigger_check;
ALTER TABLE sync_jobs ADD CONSTRAINT sync_jobs_trigger_check
    CHECK (trigger IN ('initial', 'manual', 'periodic'));
DROP TABLE gap_syncs;
DROP TABLE webhook_health;
