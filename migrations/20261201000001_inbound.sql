-- Inbound mail (issue 10): routes, incoming messages and what the SMTP
-- server learnt about them. Route endpoints are webhook endpoints of their
-- own (purpose 'route'): they use the dispatcher's outbox, signing, retries
-- and log, but they are not listed with the server's webhooks, take no
-- message events and are never turned off for failing.

ALTER TABLE webhook_endpoints
    ADD COLUMN purpose text NOT NULL DEFAULT 'events' CHECK (purpose IN ('events', 'route'));

-- Inbound payloads carry whole messages: lz4 compresses them at a fraction
-- of pglz's cost (new values only; nothing is rewritten).
ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION lz4;

CREATE TABLE routes (
    id              uuid PRIMARY KEY,
    server_id       uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    domain_id       uuid NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    -- Lower case; '*' is the domain's catch-all.
    local_part      text NOT NULL,
    action          text NOT NULL CHECK (action IN ('endpoint', 'hold', 'reject')),
    endpoint_id     uuid REFERENCES webhook_endpoints (id) ON DELETE RESTRICT,
    format          text NOT NULL DEFAULT 'parsed' CHECK (format IN ('raw', 'parsed')),
    reject_code     smallint,
    reject_message  text,
    -- A DMARC failure under p=reject: refuse at end of DATA, or accept and flag.
    dmarc_reject    text NOT NULL DEFAULT 'reject' CHECK (dmarc_reject IN ('reject', 'flag')),
    -- A spam score at or over the threshold: refuse, or accept and flag.
    spam_threshold  real,
    spam_action     text NOT NULL DEFAULT 'flag' CHECK (spam_action IN ('reject', 'flag')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain_id, local_part),
    CHECK ((action = 'endpoint') = (endpoint_id IS NOT NULL)),
    CHECK ((action = 'reject') = (reject_code IS NOT NULL))
);
CREATE INDEX routes_server_idx ON routes (server_id);
CREATE INDEX domains_name_idx ON domains (lower(name));

ALTER TABLE messages
    ADD COLUMN direction text NOT NULL DEFAULT 'outgoing' CHECK (direction IN ('outgoing', 'incoming'));

CREATE TABLE inbound_messages (
    message_id         uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    -- 'route': mail for a route; 'return_path': a bounce or feedback report
    -- sent to a VERP address, stored for the bounce processor.
    kind               text NOT NULL CHECK (kind IN ('route', 'return_path')),
    route_id           uuid REFERENCES routes (id) ON DELETE SET NULL,
    -- What the route did with it: 'endpoint' (an inbound.received delivery
    -- was queued), 'hold', or for return-path mail 'pending' until processed.
    action             text NOT NULL,
    -- The VERP token's target, for return-path mail.
    about_recipient_id uuid,
    about_message_id   uuid,
    client_ip          inet NOT NULL,
    helo               text NOT NULL,
    tls                boolean NOT NULL,
    mail_from          text NOT NULL,
    rcpt_to            text[] NOT NULL,
    checks             jsonb NOT NULL DEFAULT '{}',
    -- The inbound.received delivery to the route's endpoint, if any.
    delivery_id        uuid,
    flagged            boolean NOT NULL DEFAULT false,
    processed_at       timestamptz
);
CREATE INDEX inbound_messages_pending_idx ON inbound_messages (message_id)
    WHERE kind = 'return_path' AND processed_at IS NULL;
CREATE INDEX messages_server_direction_idx ON messages (server_id, direction, created_at DESC, id DESC)
    WHERE direction = 'incoming';

-- Route endpoints take no message events.
CREATE OR REPLACE FUNCTION tern_webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
    SELECT w.id, 'evt_' || NEW.id, 'message.' || NEW.kind,
           tern_message_event_payload(NEW.kind, NEW.created_at, NEW.detail, m, r)
    FROM messages m
    JOIN webhook_endpoints w ON w.server_id = m.server_id AND w.enabled AND w.purpose = 'events'
        AND (cardinality(w.event_types) = 0 OR ('message.' || NEW.kind) = ANY (w.event_types))
    LEFT JOIN recipients r ON r.id = NEW.recipient_id
    WHERE m.id = NEW.message_id;
    IF FOUND THEN
        PERFORM pg_notify('tern_webhooks', '');
    END IF;
    RETURN NULL;
END;
$$;

-- Admin IP lists for the SMTP server: 'block' refuses a client at connect,
-- 'allow' exempts it from blocks and from the DNSBL lookups. Managed by
-- instance administrators only: they apply to every tenant.
ALTER TABLE users ADD COLUMN instance_admin boolean NOT NULL DEFAULT false;
CREATE TABLE smtp_ip_rules (
    id          uuid PRIMARY KEY,
    network     cidr NOT NULL UNIQUE,
    action      text NOT NULL CHECK (action IN ('block', 'allow')),
    note        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
