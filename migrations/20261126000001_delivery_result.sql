-- Where the last delivery attempt went and whether it was encrypted, next
-- to the reply already kept in last_reply.
ALTER TABLE recipients
    ADD COLUMN last_host text,
    ADD COLUMN last_tls  boolean;
