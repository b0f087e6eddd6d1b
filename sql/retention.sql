-- name: purge_webhook_events
-- Deliveries settled (processed, ignored, failed) and unchanged for more than $1 days, among the
-- $2 oldest of the log: each pass reads at most $2 rows through the primary key, with no index
-- on age to keep up at every insert. A delivery still queued is never taken; one replayed lately
-- waits until it has aged again. Returns how many were deleted.
WITH doomed AS (
    SELECT w.id FROM webhook_events w
    WHERE w.id IN (SELECT id FROM webhook_events ORDER BY id LIMIT $2::integer)
      AND w.status IN ('processed', 'ignored', 'failed')
      AND w.updated_at < now() - make_interval(days => $1::integer)
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM webhook_events w USING doomed WHERE w.id = doomed.id RETURNING 1
)
SELECT count(*) FROM deleted;

-- name: plan_purge_by_primary_key
-- For the rest of the transaction: once statistics say the window is a large share of the log, a
-- hash join would read the whole log to match the window's ids; the primary key reaches them.
SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
       set_config('enable_mergejoin', 'off', true);
