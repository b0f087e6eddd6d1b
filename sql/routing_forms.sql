-- name: insert_routing_form_submission
INSERT INTO routing_form_submissions (
    integration_id, uri, routing_form_uri, submitter_uri, submitter_type, questions_and_answers,
    tracking, result, calendly_created_at, calendly_updated_at, organization_uri
) VALUES (
    $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::jsonb, $7::jsonb, $8::jsonb,
    $9::timestamptz, $10::timestamptz,
    (SELECT calendly_organization_uri FROM integrations WHERE id = $1::bigint)
)
ON CONFLICT (integration_id, uri) DO UPDATE SET
    submitter_uri = coalesce(EXCLUDED.submitter_uri, routing_form_submissions.submitter_uri),
    submitter_type = coalesce(EXCLUDED.submitter_type, routing_form_submissions.submitter_type),
    calendly_updated_at = EXCLUDED.calendly_updated_at;

-- name: get_organization_webhook
SELECT organization_uri, integration_id, webhook_uri, webhook_url, state, error, created_at,
    updated_at
FROM organization_webhooks WHERE organization_uri = $1::text;

-- name: claim_organization_webhook
-- The first integration of an organization to get here creates its subscription.
INSERT INTO organization_webhooks (organization_uri, integration_id, state)
VALUES ($1::text, $2::bigint, 'creating')
ON CONFLICT (organization_uri) DO UPDATE SET
    integration_id = EXCLUDED.integration_id, state = 'creating', updated_at = now()
WHERE organization_webhooks.state <> 'active'
RETURNING organization_uri, integration_id, webhook_uri, webhook_url, state, error, created_at,
    updated_at;

-- name: set_organization_webhook
UPDATE organization_webhooks
SET webhook_uri = $2::text, webhook_url = $3::text, state = $4::text, error = $5::text,
    updated_at = now()
WHERE organization_uri = $1::text;

-- name: set_routing_forms_webhook
UPDATE integrations SET routing_forms_webhook = $2::text, updated_at = now()
WHERE id = $1::bigint;

-- name: list_routing_form_submissions
-- What the organization's subscription received, newest first (keyset on id).
SELECT id, uri, routing_form_uri, submitter_uri, questions_and_answers, result,
       calendly_created_at, created_at
FROM routing_form_submissions
WHERE organization_uri = $1::text AND ($2::bigint IS NULL OR id < $2::bigint)
ORDER BY id DESC
LIMIT $3::integer;

-- name: organization_webhook_candidates
-- Active integrations of the organization that may hold its subscription (known admins first).
SELECT id FROM integrations
WHERE calendly_organization_uri = $1::text AND status = 'active'
  AND id IS DISTINCT FROM $2::bigint
ORDER BY routing_forms_webhook = 'active' DESC NULLS LAST, id;

-- name: move_organization_webhook
-- Compare-and-set: replaces only the holder and subscription the caller read, so concurrent
-- hand-overs and checks cannot both win (the loser deletes what it created).
UPDATE organization_webhooks
SET integration_id = $4::bigint, webhook_uri = $5::text, webhook_url = $6::text,
    state = $7::text, error = $8::text, updated_at = now()
WHERE organization_uri = $1::text
  AND integration_id IS NOT DISTINCT FROM $2::bigint
  AND webhook_uri IS NOT DISTINCT FROM $3::text
RETURNING organization_uri;
