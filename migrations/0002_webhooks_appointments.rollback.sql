DROP TABLE outbox;
ALTER TABLE integrations DROP COLUMN routing_forms_webhook;
DROP TABLE organization_webhooks;
DROP TABLE routing_form_submissions;
DROP TABLE calendly_invitees;
DROP TABLE appointments;
DROP TABLE clients;
DROP TABLE webhook_events;
