-- Autovacuum's ANALYZE of webhook_events holds back the horizon below which deleted rows may be
-- skipped for as long as it runs, and meanwhile every claim walks each queue entry deleted since
-- it began. With the default sample (30,000 rows of a log whose rows are ~3 KB) a throttled
-- ANALYZE took 6-8 s, and the claims of a busy worker slowed to ~130 ms each as it ended. No query
-- plans from the bodies, headers or errors, and 10 is plenty for the rest: a 3,000-row sample
-- (0.45 s for the same table).
-- depends: 0008_sync_job_log_index
ALTER TABLE webhook_events
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN integration_id SET STATISTICS 10,
    ALTER COLUMN event SET STATISTICS 10,
    ALTER COLUMN dedup_key SET STATISTICS 10,
    ALTER COLUMN payload_uri SET STATISTICS 10,
    ALTER COLUMN calendly_created_at SET STATISTICS 10,
    ALTER COLUMN headers SET STATISTICS 0,
    ALTER COLUMN body SET STATISTICS 0,
    ALTER COLUMN status SET STATISTICS 10,
    ALTER COLUMN reason SET STATISTICS 10,
    ALTER COLUMN error SET STATISTICS 0,
    ALTER COLUMN attempts SET STATISTICS 10,
    ALTER COLUMN duplicates SET STATISTICS 10,
    ALTER COLUMN run_after SET STATISTICS 10,
    ALTER COLUMN locked_by SET STATISTICS 10,
    ALTER COLUMN locked_at SET STATISTICS 10,
    ALTER COLUMN received_at SET STATISTICS 10,
    ALTER COLUMN processed_at SET STATISTICS 10,
    ALTER COLUMN updated_at SET STATISTICS 10;
