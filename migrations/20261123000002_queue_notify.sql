-- Wake delivery workers (LISTEN tern_queue) when recipients are inserted.
-- Once per statement; PostgreSQL folds duplicate notifications of one
-- transaction and delivers them at commit.
CREATE FUNCTION tern_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tern_queue', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER recipients_notify_queue
    AFTER INSERT ON recipients
    FOR EACH STATEMENT EXECUTE FUNCTION tern_notify_queue();
