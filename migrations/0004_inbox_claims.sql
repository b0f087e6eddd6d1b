-- Claims skip integrations another worker is processing; find those without walking the
-- whole backlog of received rows.
-- depends: 0003_sync
CREATE INDEX webhook_events_processing_idx ON webhook_events (integration_id, locked_at)
    WHERE status = 'processing';
