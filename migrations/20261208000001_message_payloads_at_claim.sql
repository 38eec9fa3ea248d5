-- Message event payloads are built by the dispatcher when it sends them,
-- from the stored event, instead of in SQL by the fan-out trigger (issue
-- 9's benchmark: the dispatcher may cost the send rate at most 15%).
--
-- The fan-out runs inside the worker's transaction for each outcome it
-- records. Building the payload there (tern_message_event_payload) cost
-- 60 to 100 µs of the server's CPU per event, most of it setting up the
-- function's expressions again in every transaction: about a third of
-- what an endpoint added to each message sent. The trigger now writes
-- which event a delivery reports (`message_event_id`); the claim joins
-- the event, its message and recipient, and the dispatcher builds the
-- JSON (src/webhooks/message_payload.rs), the same fields as before. The
-- rows it reads do not change once written, so every attempt of a
-- delivery sends the same payload.
--
-- Deliveries with a payload of their own (inbound.received, webhook.test,
-- webhook.disabled, and message events queued before this migration) keep
-- it and are sent as stored.
ALTER TABLE webhook_deliveries
    ADD COLUMN message_event_id bigint,
    ALTER COLUMN payload DROP NOT NULL,
    ADD CONSTRAINT webhook_deliveries_body CHECK (payload IS NOT NULL OR message_event_id IS NOT NULL);

CREATE OR REPLACE FUNCTION tern_webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, message_event_id)
    SELECT w.id, 'evt_' || NEW.id, 'message.' || NEW.kind, NEW.id
    FROM messages m
    JOIN webhook_endpoints w ON w.server_id = m.server_id AND w.enabled AND w.purpose = 'events'
        AND (cardinality(w.event_types) = 0 OR ('message.' || NEW.kind) = ANY (w.event_types))
    WHERE m.id = NEW.message_id;
    RETURN NULL;
END;
$$;

DROP FUNCTION tern_message_event_payload(text, timestamptz, jsonb, messages, recipients);

-- The claim as before (20261206000002), returning the reported event's
-- parts along with a delivery that has no payload of its own.
DROP FUNCTION tern_claim_webhook_deliveries(text, bigint, float8, uuid[], bigint[], bigint);
CREATE FUNCTION tern_claim_webhook_deliveries(
    p_owner text, p_batch bigint, p_lease_secs float8, p_hand_endpoints uuid[],
    p_hand_counts bigint[], p_per_endpoint bigint)
RETURNS TABLE (id uuid, endpoint_id uuid, event_id text, payload text, attempts integer, url text,
               signing text, secret bytea, purpose text, previous_secret bytea,
               event_kind text, event_at timestamptz, event_detail jsonb, message_id uuid,
               server_id uuid, tag text, metadata jsonb, recipient_id uuid, recipient text)
LANGUAGE plpgsql
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH hand AS (
        SELECT * FROM unnest(p_hand_endpoints, p_hand_counts) AS h(endpoint_id, n)
    ), candidates AS (
        SELECT d.id, d.endpoint_id, d.next_attempt_at FROM webhook_deliveries d
        JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
          AND d.endpoint_id NOT IN (SELECT h.endpoint_id FROM hand h WHERE h.n >= p_per_endpoint)
        ORDER BY d.next_attempt_at
        LIMIT p_batch * 4
    ), allowed AS (
        SELECT c.id, c.next_attempt_at FROM (
            SELECT c.*, row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.next_attempt_at) AS turn
            FROM candidates c
        ) c
        LEFT JOIN hand h ON h.endpoint_id = c.endpoint_id
        WHERE c.turn <= p_per_endpoint - coalesce(h.n, 0)
        ORDER BY c.next_attempt_at
        LIMIT p_batch
    ), due AS (
        SELECT d.id FROM webhook_deliveries d
        JOIN allowed a ON a.id = d.id
        JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
        WHERE d.status = 'pending'
          AND (d.lease_expires_at IS NULL OR d.lease_expires_at < now())
        FOR UPDATE OF d SKIP LOCKED
    ), claimed AS (
        UPDATE webhook_deliveries d
        SET lease_owner = p_owner, lease_expires_at = now() + make_interval(secs => p_lease_secs),
            attempts = d.attempts + 1
        FROM due, webhook_endpoints w
        WHERE d.id = due.id AND w.id = d.endpoint_id
        RETURNING d.id, d.endpoint_id, d.event_id, d.payload::text AS payload, d.attempts, w.url,
                  w.signing, w.secret, w.purpose,
                  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
                      AS previous_secret,
                  d.message_event_id
    )
    SELECT c.id, c.endpoint_id, c.event_id, c.payload, c.attempts, c.url, c.signing, c.secret,
           c.purpose, c.previous_secret,
           e.kind, e.created_at, e.detail, m.id, m.server_id, m.tag, m.metadata, r.id, r.address
    FROM claimed c
    LEFT JOIN message_events e ON c.payload IS NULL AND e.id = c.message_event_id
    LEFT JOIN messages m ON m.id = e.message_id
    LEFT JOIN recipients r ON r.id = e.recipient_id;
END
$$;
