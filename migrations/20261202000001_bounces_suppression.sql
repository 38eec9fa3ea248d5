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

-- One entry per folded address (the folded spelling, else the newest),
-- then every address folded.
DELETE FROM suppressions s
USING (SELECT server_id, address,
              row_number() OVER (PARTITION BY server_id, tern_fold(address)
                                 ORDER BY address = tern_fold(address) DESC, created_at DESC) AS n
       FROM suppressions) d
WHERE s.server_id = d.server_id AND s.address = d.address AND d.n > 1;
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

-- 4. The new message events (`complained`, `unsubscribed`) reach webhooks
--    once 20261203000001_tracking.sql has redefined the payload function
--    and the trigger for them and for `opened`/`clicked`: one definition
--    for both issues.
