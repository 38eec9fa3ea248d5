-- Webhooks, third part (issue 9).
--
-- 1. Typed payloads: each event type has its documented fields (the
--    OpenAPI document's `webhooks` section); one function builds them, for
--    the outbox trigger and for replays.
-- 2. Ed25519 (`v1a`) signing per endpoint: `secret` then holds the sealed
--    32-byte seed, `public_key` the public key receivers verify with.
-- 3. Endpoint health: `failing_since` (the first failure since the last
--    success); an endpoint failing for `webhooks.disable_after_secs` is
--    disabled (`disabled_at`, `disabled_reason`), as is one answering 410.

ALTER TABLE webhook_endpoints
    ADD COLUMN signing text NOT NULL DEFAULT 'hmac' CHECK (signing IN ('hmac', 'ed25519')),
    ADD COLUMN public_key bytea,
    ADD COLUMN failing_since timestamptz,
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('gone', 'failing')),
    ADD CONSTRAINT webhook_endpoints_public_key CHECK ((signing = 'ed25519') = (public_key IS NOT NULL));

-- A message event as its webhook payload. `detail` is the event's detail
-- (the delivery attempt's host, TLS, reply, attempt number...).
CREATE FUNCTION tern_message_event_payload(
    kind text, at timestamptz, detail jsonb, m messages, r recipients
) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'type', 'message.' || kind,
        'timestamp', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', jsonb_build_object(
                'message_id', m.id,
                'server_id', m.server_id,
                'recipient_id', r.id,
                'recipient', r.address,
                'tag', m.tag,
                'metadata', m.metadata)
            || CASE kind
                WHEN 'held' THEN jsonb_build_object('reason', 'development_mode')
                WHEN 'suppressed' THEN
                    jsonb_build_object('reason', coalesce(detail ->> 'reason', 'suppression_list'))
                WHEN 'sent' THEN attempt
                WHEN 'deferred' THEN attempt
                    || jsonb_build_object('next_attempt_at', detail -> 'next_attempt_at')
                WHEN 'bounced' THEN attempt
                    || jsonb_build_object('bounce_type', coalesce(detail ->> 'bounce_type', 'hard'))
                WHEN 'failed' THEN attempt
                    || jsonb_build_object('reason', coalesce(detail ->> 'reason', 'undeliverable'))
                ELSE '{}'::jsonb
            END)
    FROM (SELECT jsonb_build_object(
            'attempt', detail -> 'attempt',
            'host', detail -> 'host',
            'tls', detail -> 'tls',
            'reply', CASE WHEN jsonb_typeof(detail -> 'code') = 'number' THEN jsonb_build_object(
                'code', detail -> 'code',
                'enhanced_code', detail -> 'enhanced_code',
                'text', detail -> 'reply') END) AS attempt) a
$$;

CREATE OR REPLACE FUNCTION tern_webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fanned integer;
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload)
    SELECT w.id, 'evt_' || e.id, 'message.' || e.kind,
           tern_message_event_payload(e.kind, e.created_at, e.detail, m, r)
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

-- Replays find events by time; a BRIN index costs the append-only table
-- next to nothing per insert.
CREATE INDEX message_events_created_brin ON message_events USING brin (created_at);
