-- No query looks invitee snapshots up by event; the index only cost every snapshot write.
-- depends: 0004_inbox_claims
DROP INDEX calendly_invitees_event_idx;
