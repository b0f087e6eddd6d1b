DROP TABLE event_types;
DROP TABLE oauth_states;
DROP TABLE integrations;
