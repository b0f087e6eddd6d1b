-- Retention deletes old sync logs; each deletion looks for the jobs that point at the log (to
-- set their sync_log_id to NULL), which without this index reads every sync job.
-- depends: 0007_inbox_queue
CREATE INDEX sync_jobs_sync_log_idx ON sync_jobs (sync_log_id);
