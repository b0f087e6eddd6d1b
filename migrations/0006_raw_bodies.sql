-- A delivery's body is kept as the exact text Calendly signed. The edge has already parsed and
-- checked it; as jsonb, Postgres parsed it again on every insert and printed it on every claim.
-- depends: 0005_drop_invitee_event_index
ALTER TABLE webhook_events ALTER COLUMN body TYPE text USING body::text;
