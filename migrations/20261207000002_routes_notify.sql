-- The SMTP server keeps route lookups in memory (a recipient no longer
-- costs a query) and forgets them when this channel says that routes, or
-- the domains they are on, changed. A route lookup reads a domain's name,
-- whether it is verified and how old it is (`db::routes::lookup`); a DNS
-- check that leaves those alone does not notify. PostgreSQL folds the
-- notifications of one transaction into one.
CREATE FUNCTION tern_routes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tern_routes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER routes_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON routes
    FOR EACH STATEMENT EXECUTE FUNCTION tern_routes_changed();

CREATE TRIGGER domains_added_or_removed
    AFTER INSERT OR DELETE OR TRUNCATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION tern_routes_changed();

CREATE TRIGGER domains_renamed_or_verified
    AFTER UPDATE ON domains
    FOR EACH ROW
    WHEN ((OLD.name, OLD.verified_at IS NULL, OLD.created_at)
          IS DISTINCT FROM (NEW.name, NEW.verified_at IS NULL, NEW.created_at))
    EXECUTE FUNCTION tern_routes_changed();
