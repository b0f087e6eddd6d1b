-- A rescheduled invitee's canceled half waits here for its created half. After a round robin
-- host change Calendly sends the created half to the new host's subscription only, so when it
-- has not come within RESCHEDULE_HALF_WAIT_SECONDS the worker reads the new invitee and its event
-- from Calendly. A wait is inserted in the transaction that applies the canceled half (only
-- while the new invitee is unknown), deleted in the one that applies the created half (webhook,
-- sync or that read), and claimed under a lease (claim token, retry_at) so that replicas never
-- resolve one twice. A wait whose booking turned out to be another host's is kept with moved_at
-- set: its old invitee's appointment stays canceled whatever arrives later.
-- depends: 0012_granted_scopes
CREATE TABLE reschedule_waits (
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    old_invitee_uri text NOT NULL,
    new_invitee_uri text NOT NULL,
    waiting_since timestamptz NOT NULL DEFAULT now(),
    retry_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    claim text,
    last_error text,
    moved_at timestamptz,
    PRIMARY KEY (integration_id, old_invitee_uri)
);

CREATE UNIQUE INDEX reschedule_waits_new_key ON reschedule_waits (integration_id, new_invitee_uri);
CREATE INDEX reschedule_waits_pending_idx ON reschedule_waits (waiting_since)
    WHERE moved_at IS NULL;
