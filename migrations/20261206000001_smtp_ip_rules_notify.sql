-- The SMTP server keeps the IP rules in memory (a connection no longer
-- costs a query) and reloads them when this channel says they changed.
-- A statement-level trigger, so every change notifies, whoever makes it;
-- PostgreSQL folds the notifications of one transaction into one.
CREATE FUNCTION tern_smtp_ip_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tern_smtp_ip_rules', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER smtp_ip_rules_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smtp_ip_rules
    FOR EACH STATEMENT EXECUTE FUNCTION tern_smtp_ip_rules_changed();
