-- name: queue_gauges
SELECT 'webhook_inbox' AS queue, count(*)::bigint AS depth,
       extract(epoch FROM now() - min(w.received_at))::float8 AS oldest_seconds
FROM webhook_queue q JOIN webhook_events w USING (id)
UNION ALL
SELECT 'outbox', count(*)::bigint, extract(epoch FROM now() - min(created_at))::float8
FROM outbox WHERE status IN ('pending', 'processing')
UNION ALL
SELECT 'sync_jobs', count(*)::bigint, extract(epoch FROM now() - min(created_at))::float8
FROM sync_jobs WHERE status IN ('queued', 'running');

-- name: integrations_by_status
SELECT status, count(*)::bigint AS n FROM integrations GROUP BY status;
