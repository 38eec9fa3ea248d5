-- Bounces, complaints, unsubscribes and the suppression list (issue 11).

-- 1. Suppression entries. Addresses are kept with ASCII letters in lower
--    case and matched whole (`Jane@Example.org` and `jane@example.org` are
--    one entry), as hosted services do: suppressing too much is safer than
--    mailing a complainer again. Only ASCII is folded, here and in Rust
--    (`to_ascii_lowercase`): `tern_fold()` depends on the database's locale,
--    and both sides must fold alike.
CREATE FUNCTION tern_fold(address text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT translate(address, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
$$;

DELETE FROM suppressions s
WHERE s.address <> tern_fold(s.address)
  AND EXISTS (SELECT 1 FROM suppressions t WHERE t.server_id = s.server_id AND t.address = tern_fold(s.address));
UPDATE suppressions SET address = tern_fold(address) WHERE address <> tern_fold(address);
UPDATE suppressions SET reason = 'manual'
WHERE reason NOT IN ('hard_bounce', 'complaint', 'unsubscribe', 'manual');

ALTER TABLE suppressions
    ADD CONSTRAINT suppressions_address_folded CHECK (address = tern_fold(address)),
    ADD CONSTRAINT suppressions_reason CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'manual')),
    -- The message whose bounce, complaint or unsubscribe added it.
    ADD COLUMN source_message_id uuid REFERENCES messages (id) ON DELETE SET NULL,
    -- What the receiver said (a DSN's status and diagnostic), or a note.
    ADD COLUMN detail text NOT NULL DEFAULT '',
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX suppressions_server_created_idx ON suppressions (server_id, created_at DESC, address);
CREATE INDEX suppressions_expires_idx ON suppressions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX suppressions_source_idx ON suppressions (source_message_id) WHERE source_message_id IS NOT NULL;

-- Entries that went, and why: 'expired' (removed by the periodic job at
-- their expiry) or 'deleted' (through the API).
CREATE TABLE suppression_removals (
    id          bigserial PRIMARY KEY,
    server_id   uuid NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    address     text NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    cause       text NOT NULL CHECK (cause IN ('expired', 'deleted')),
    removed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX suppression_removals_server_idx ON suppression_removals (server_id, removed_at DESC);

-- 2. What a report to the return path was found to be (a DSN's
--    per-recipient fields, a feedback report, an auto-reply...).
--    `inbound_messages.action` says what Tern did with it: 'hard_bounce',
--    'soft_bounce', 'complaint', 'unsubscribe', 'auto_reply', 'delivery_report'
--    or 'unrecognized'.
ALTER TABLE inbound_messages ADD COLUMN report jsonb;

-- 3. List-Unsubscribe (RFC 8058, RFC 2369) on the server's messages.
ALTER TABLE servers ADD COLUMN list_unsubscribe boolean NOT NULL DEFAULT false;

-- 4. The new message events reach webhooks: complaints and unsubscribes.
CREATE OR REPLACE FUNCTION tern_message_event_payload(
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
                    || jsonb_build_object(
                        'bounce_type', coalesce(detail ->> 'bounce_type', 'hard'),
                        'source', coalesce(detail ->> 'source', 'smtp'),
                        'category', coalesce(detail ->> 'category', 'other'),
                        'suppressed', coalesce((detail ->> 'suppressed')::boolean, false),
                        'report_id', detail -> 'report_id',
                        'remote_mta', detail -> 'remote_mta')
                WHEN 'failed' THEN attempt
                    || jsonb_build_object('reason', coalesce(detail ->> 'reason', 'undeliverable'))
                WHEN 'complained' THEN jsonb_build_object(
                        'feedback_type', coalesce(detail ->> 'feedback_type', 'abuse'),
                        'user_agent', detail -> 'user_agent',
                        'report_id', detail -> 'report_id',
                        'suppressed', coalesce((detail ->> 'suppressed')::boolean, false))
                WHEN 'unsubscribed' THEN jsonb_build_object(
                        'method', coalesce(detail ->> 'method', 'one_click'),
                        'report_id', detail -> 'report_id')
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

DROP TRIGGER message_events_webhooks ON message_events;
CREATE TRIGGER message_events_webhooks
    AFTER INSERT ON message_events
    FOR EACH ROW
    WHEN (NEW.kind IN ('held', 'sent', 'deferred', 'bounced', 'failed', 'suppressed',
                       'complained', 'unsubscribed'))
    EXECUTE FUNCTION tern_webhook_fan_out();
