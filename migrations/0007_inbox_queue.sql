-- The inbox's queue moves to a narrow table of its own. A delivery's row is still updated when
-- it is claimed and when it is settled, but no index of webhook_events covers a column those
-- updates change, so they are HOT: no new index entries, and (with half-empty pages) the new
-- version stays on the row's page. Before, each update added five or three index entries and
-- rewrote the whole row, body included, on another page.
-- A row is in webhook_queue exactly while its delivery is received or processing; the queue's
-- lease columns repeat the row's, for the claim's indexes.
-- depends: 0006_raw_bodies
CREATE TABLE webhook_queue (
    id bigint PRIMARY KEY REFERENCES webhook_events (id) ON DELETE CASCADE,
    integration_id bigint NOT NULL,
    run_after timestamptz NOT NULL DEFAULT now(),
    locked_by text,
    locked_at timestamptz
);

-- the leased rows: few (what the workers hold), looked up by worker or by integration
CREATE INDEX webhook_queue_leased_idx ON webhook_queue (locked_by, integration_id, locked_at)
    WHERE locked_by IS NOT NULL;

INSERT INTO webhook_queue (id, integration_id, run_after, locked_by, locked_at)
SELECT id, integration_id, run_after, locked_by, locked_at
FROM webhook_events WHERE status IN ('received', 'processing');

DROP INDEX webhook_events_pending_idx;
DROP INDEX webhook_events_processing_idx;
ALTER TABLE webhook_events SET (fillfactor = 50);
