-- The webhook outbox (issue 9). A message event (accept, delivery outcome)
-- fans out to one delivery row per enabled endpoint of its server that
-- wants its type, in the same transaction as the event itself: no event is
-- lost when a process dies, none is published for a change rolled back.
-- The event id (webhook-id) is the message event's: the same in every
-- retry and for every endpoint.
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    endpoint_id       uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id          text NOT NULL,
    event_type        text NOT NULL,
    payload           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_status       integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at);

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    id             bigserial PRIMARY KEY,
    delivery_id    uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    http_status    integer,
    latency_ms     integer NOT NULL,
    -- The first KB of the response body.
    response_body  text,
    error          text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

CREATE FUNCTION tern_webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fanned integer;
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
    SELECT w.id, 'evt_' || e.id, 'message.' || e.kind,
           jsonb_build_object(
               'type', 'message.' || e.kind,
               'timestamp', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               'data', jsonb_build_object(
                   'message_id', m.id,
                   'server_id', m.server_id,
                   'recipient_id', r.id,
                   'recipient', r.address,
                   'tag', m.tag,
                   'metadata', m.metadata,
                   'details', e.detail))
    FROM new_events e
    JOIN messages m ON m.id = e.message_id
    LEFT JOIN recipients r ON r.id = e.recipient_id
    JOIN webhook_endpoints w ON w.server_id = m.server_id AND w.enabled
        AND (cardinality(w.event_types) = 0 OR ('message.' || e.kind) = ANY (w.event_types))
    WHERE e.kind IN ('held', 'sent', 'deferred', 'bounced', 'failed', 'suppressed');
    GET DIAGNOSTICS fanned = ROW_COUNT;
    IF fanned > 0 THEN
        PERFORM pg_notify('tern_webhooks', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER message_events_webhooks
    AFTER INSERT ON message_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION tern_webhook_fan_out();
