-- name: queue_gauges
-- the inbox's oldest is its lowest id (ids follow arrival): one lookup, not a join of the backlog
SELECT 'webhook_inbox' AS queue, count(*)::bigint AS depth,
       extract(epoch FROM now() - (
           SELECT received_at FROM webhook_events WHERE id = min(q.id)
       ))::float8 AS oldest_seconds
FROM webhook_queue q
UNION ALL
SELECT 'outbox', count(*)::bigint, extract(epoch FROM now() - min(created_at))::float8
FROM outbox WHERE status IN ('pending', 'processing')
UNION ALL
SELECT 'sync_jobs', count(*)::bigint, extract(epoch FROM now() - min(created_at))::float8
FROM sync_jobs WHERE status IN ('queued', 'running')
UNION ALL
SELECT 'reschedule_waits', count(*)::bigint, extract(epoch FROM now() - min(waiting_since))::float8
FROM reschedule_waits WHERE moved_at IS NULL;

-- name: integrations_by_status
SELECT status, count(*)::bigint AS n FROM integrations GROUP BY status;
