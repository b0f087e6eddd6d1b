DROP INDEX sync_jobs_sync_log_idx;
