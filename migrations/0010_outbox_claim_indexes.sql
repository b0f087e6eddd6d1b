-- Claiming notifications read every undelivered row to find each appointment's oldest, so while
-- the main app was down and a backlog built up, each claim got slower (0.33 s for a claim of 50
-- at 300,000 undelivered) and catching up took time quadratic in the backlog. The claim now reads
-- due rows in run_after order and stale leases by lease time, and checks each due row against
-- its appointment's older rows through outbox_pending_idx.
-- A plain CREATE INDEX (in yoyo's transaction): delivered rows go after OUTBOX_RETENTION_DAYS,
-- so the table stays small unless such a backlog is waiting.
-- depends: 0009_webhook_events_statistics
CREATE INDEX outbox_due_idx ON outbox (run_after, id) WHERE status = 'pending';
CREATE INDEX outbox_processing_idx ON outbox (locked_at) WHERE status = 'processing';
