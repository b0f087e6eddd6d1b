DROP INDEX outbox_processing_idx;
DROP INDEX outbox_due_idx;
