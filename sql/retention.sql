-- Retention: each purge deletes up to $2 finished rows last changed more than $1 days ago, among
-- the $2 oldest of its table, so a pass reads at most $2 rows through the primary key and the
-- tables keep no index on age. Rows still queued or running are never taken. Each returns how
-- many it deleted.

-- name: plan_purge_by_primary_key
-- For the rest of the transaction: once statistics say the window is a large share of a table, a
-- hash join would read the whole table to match the window's ids; the primary key reaches them.
SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
       set_config('enable_mergejoin', 'off', true);

-- name: purge_webhook_events
-- Settled deliveries (processed, ignored, failed); one replayed lately waits until it has aged.
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

-- name: purge_sync_jobs
WITH doomed AS (
    SELECT j.id FROM sync_jobs j
    WHERE j.id IN (SELECT id FROM sync_jobs ORDER BY id LIMIT $2::integer)
      AND j.status IN ('succeeded', 'failed')
      AND coalesce(j.finished_at, j.created_at) < now() - make_interval(days => $1::integer)
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM sync_jobs j USING doomed WHERE j.id = doomed.id RETURNING 1
)
SELECT count(*) FROM deleted;

-- name: purge_sync_logs
WITH doomed AS (
    SELECT s.id FROM sync_logs s
    WHERE s.id IN (SELECT id FROM sync_logs ORDER BY id LIMIT $2::integer)
      AND s.status <> 'running'
      AND coalesce(s.finished_at, s.started_at) < now() - make_interval(days => $1::integer)
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM sync_logs s USING doomed WHERE s.id = doomed.id RETURNING 1
)
SELECT count(*) FROM deleted;

-- name: purge_outbox
-- Notifications delivered, or given up on (failed).
WITH doomed AS (
    SELECT o.id FROM outbox o
    WHERE o.id IN (SELECT id FROM outbox ORDER BY id LIMIT $2::integer)
      AND o.status IN ('delivered', 'failed')
      AND coalesce(o.delivered_at, o.created_at) < now() - make_interval(days => $1::integer)
    FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM outbox o USING doomed WHERE o.id = doomed.id RETURNING 1
)
SELECT count(*) FROM deleted;
