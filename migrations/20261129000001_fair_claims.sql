-- Claims take due recipients server by server (issue 8, item 10): one
-- tenant's backlog must not hold another's mail. The server is copied onto
-- each recipient so that a server's due rows are one index range.
ALTER TABLE recipients ADD COLUMN server_id uuid REFERENCES servers (id) ON DELETE CASCADE;
UPDATE recipients r SET server_id = m.server_id FROM messages m WHERE m.id = r.message_id;
ALTER TABLE recipients ALTER COLUMN server_id SET NOT NULL;
CREATE INDEX recipients_server_due_idx ON recipients (server_id, next_attempt_at)
    WHERE status IN ('queued', 'deferred');
