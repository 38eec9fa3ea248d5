-- Webhook endpoints of a server (issue 9). The signing secret is stored
-- sealed (src/sealing.rs) like DKIM keys; after a rotation the previous
-- one keeps signing alongside until previous_secret_expires_at.
CREATE TABLE webhook_endpoints (
    id                          uuid PRIMARY KEY,
    server_id                   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    url                         text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    -- Event types sent; empty: every type.
    event_types                 text[] NOT NULL DEFAULT '{}',
    enabled                     boolean NOT NULL DEFAULT true,
    secret                      bytea NOT NULL,
    previous_secret             bytea,
    previous_secret_expires_at  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_server_idx ON webhook_endpoints (server_id);
