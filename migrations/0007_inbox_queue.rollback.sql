ALTER TABLE webhook_events RESET (fillfactor);
CREATE INDEX webhook_events_processing_idx ON webhook_events (integration_id, locked_at)
    WHERE status = 'processing';
CREATE INDEX webhook_events_pending_idx ON webhook_events (id)
    WHERE status IN ('received', 'processing');
DROP TABLE webhook_queue;
