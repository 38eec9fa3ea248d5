-- Tern core schema: tenancy, sending domains, API keys, messages and their
-- per-recipient delivery rows (the delivery queue), events, idempotency.

-- Instance-wide secrets (JWT signing key, later the VERP HMAC key), generated
-- once so that every API and worker process sharing this database agrees.
CREATE TABLE instance_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    name           text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role             text NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE servers (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             text NOT NULL,
    mode             text NOT NULL CHECK (mode IN ('live', 'development')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX servers_org_idx ON servers (organization_id);

CREATE TABLE domains (
    id                  uuid PRIMARY KEY,
    server_id           uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name                text NOT NULL,
    dkim_algorithm      text NOT NULL CHECK (dkim_algorithm IN ('rsa', 'ed25519')),
    dkim_selector       text NOT NULL,
    -- PKCS#8 DER. Only ever read by the signer; never returned by the API.
    dkim_private_key    bytea NOT NULL,
    -- The base64 value of the p= tag of the DKIM TXT record.
    dkim_public_key     text NOT NULL,
    return_path_host    text NOT NULL,
    spf_status          text NOT NULL DEFAULT 'pending',
    dkim_status         text NOT NULL DEFAULT 'pending',
    return_path_status  text NOT NULL DEFAULT 'pending',
    dmarc_status        text NOT NULL DEFAULT 'pending',
    mx_status           text NOT NULL DEFAULT 'pending',
    verified_at         timestamptz,
    last_checked_at     timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (server_id, name)
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    server_id     uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name          text NOT NULL,
    -- The visible start of the key, for people to tell keys apart.
    prefix        text NOT NULL,
    -- SHA-256 of the whole key. Keys are 256-bit random, so a fast hash is
    -- enough (no dictionary to attack) and keeps per-request checks cheap.
    key_hash      bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_server_idx ON api_keys (server_id);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    server_id       uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    domain_id       uuid REFERENCES domains (id) ON DELETE SET NULL,
    message_id      text NOT NULL,
    mail_from       text NOT NULL,
    from_header     text NOT NULL,
    subject         text NOT NULL DEFAULT '',
    tag             text,
    metadata        jsonb NOT NULL DEFAULT '{}',
    size            integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_server_created_idx ON messages (server_id, created_at DESC, id DESC);
CREATE INDEX messages_server_tag_idx ON messages (server_id, tag, created_at DESC) WHERE tag IS NOT NULL;

-- The signed source, apart from the row so that listings stay small.
CREATE TABLE message_sources (
    message_id  uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    -- lz4: several times cheaper than the default pglz on every insert.
    raw         bytea COMPRESSION lz4 NOT NULL
);

-- One row per envelope recipient: its own status is the delivery queue.
CREATE TABLE recipients (
    id                uuid PRIMARY KEY,
    message_id        uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    address           text NOT NULL,
    domain            text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('to', 'cc', 'bcc', 'envelope')),
    status            text NOT NULL CHECK (status IN
                        ('queued', 'held', 'sent', 'deferred', 'bounced', 'failed', 'suppressed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_reply        text,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recipients_message_idx ON recipients (message_id);
CREATE INDEX recipients_address_idx ON recipients (lower(address));
-- Due work only: the index stays as small as the queue, not the history.
CREATE INDEX recipients_due_idx ON recipients (next_attempt_at)
    WHERE status IN ('queued', 'deferred');

CREATE TABLE message_events (
    id            bigserial PRIMARY KEY,
    message_id    uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    recipient_id  uuid REFERENCES recipients (id) ON DELETE CASCADE,
    kind          text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_events_message_idx ON message_events (message_id, id);

CREATE TABLE idempotency_keys (
    server_id        uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    key              text NOT NULL,
    request_hash     bytea NOT NULL,
    response_status  smallint NOT NULL,
    response_body    jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- Addresses a server must not send to (bounces, complaints, manual).
CREATE TABLE suppressions (
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    address     text NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    PRIMARY KEY (server_id, address)
);
