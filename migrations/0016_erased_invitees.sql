-- Tombstones of erased people (DELETE /clients/{id}): a keyed hash (HMAC-SHA256, see
-- calendly_svc/erasure.py) of every invitee and routing form submission URI erased, per
-- integration. Applying an invitee (webhooks, syncs, replays, reschedule checks) skips one whose
-- URI hash is here, so nothing erased comes back; the URI itself is not kept.
-- depends: 0014_routing_form_organization
CREATE TABLE erased_invitees (
    integration_id bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    uri_hash bytea NOT NULL,
    erased_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, uri_hash)
);
