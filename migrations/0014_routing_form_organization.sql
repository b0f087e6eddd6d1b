-- depends: 0013_reschedule_waits
-- Every connected member of a Calendly organization reads the routing form submissions its
-- organization-scope subscription received (held by one admin's integration), newest first:
-- each submission keeps the organization it was received for, and the list walks this index.
ALTER TABLE routing_form_submissions ADD COLUMN organization_uri text;

UPDATE routing_form_submissions r
SET organization_uri = i.calendly_organization_uri
FROM integrations i
WHERE i.id = r.integration_id;

CREATE INDEX routing_form_submissions_organization_idx
    ON routing_form_submissions (organization_uri, id);
