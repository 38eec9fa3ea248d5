-- Every accepted message, every recipient, every webhook delivery and every
-- received message referenced a handful of parent rows (its server, its
-- domain, its endpoint, its route) through foreign keys. Checking a foreign
-- key locks the parent row (SELECT ... FOR KEY SHARE): the lock is written
-- into the row and WAL-logged, and with concurrent writers, all of them
-- locking the same server row, PostgreSQL creates a new MultiXact for each.
-- Four such locks cost a received message about a fifth of its store
-- (pgbench, 20 clients: 2,860 stores/s with them, 3,640 without).
--
-- The parents are only ever deleted through the API, so their deletions
-- cascade by trigger instead, as the foreign keys did. What is given up: a
-- row written in the moment its parent is deleted (a send racing the
-- deletion of its server) can outlive the parent. Such a row is unreachable
-- (every read goes through the tenant's server), and nothing is delivered
-- for it that would not have been had the send come a moment earlier.
ALTER TABLE messages
    DROP CONSTRAINT messages_server_id_fkey,
    DROP CONSTRAINT messages_domain_id_fkey;
ALTER TABLE recipients DROP CONSTRAINT recipients_server_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_endpoint_id_fkey;
ALTER TABLE inbound_messages DROP CONSTRAINT inbound_messages_route_id_fkey;

-- A server's messages go with it (their recipients, events, sources and
-- inbound records by their own foreign keys on the message).
CREATE FUNCTION tern_server_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages WHERE server_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER servers_cascade AFTER DELETE ON servers
    FOR EACH ROW EXECUTE FUNCTION tern_server_deleted();

-- Messages keep their history when their domain goes.
CREATE FUNCTION tern_domain_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE messages SET domain_id = NULL WHERE domain_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER domains_cascade AFTER DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION tern_domain_deleted();

-- An endpoint's outbox and log go with it.
CREATE FUNCTION tern_webhook_endpoint_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM webhook_deliveries WHERE endpoint_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_endpoints_cascade AFTER DELETE ON webhook_endpoints
    FOR EACH ROW EXECUTE FUNCTION tern_webhook_endpoint_deleted();

-- Received messages keep their history when their route goes.
CREATE FUNCTION tern_route_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inbound_messages SET route_id = NULL WHERE route_id = OLD.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER routes_cascade AFTER DELETE ON routes
    FOR EACH ROW EXECUTE FUNCTION tern_route_deleted();

-- Outbox payloads (an inbound.received one holds the whole message) are
-- compressed with lz4 rather than pglz, as message sources already are:
-- several times faster to compress for about the same size. A server built
-- without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE webhook_deliveries ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'PostgreSQL has no lz4: webhook payloads stay pglz-compressed';
END
$$;
