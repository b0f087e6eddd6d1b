CREATE INDEX calendly_invitees_event_idx ON calendly_invitees (integration_id, event_uri);
