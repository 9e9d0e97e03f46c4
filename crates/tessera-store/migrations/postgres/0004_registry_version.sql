-- A counter bumped by every change to the services or OpenID Connect clients (as SQLite's
-- 0006_registry_version.sql), so each node re-reads its compiled registries only when it moves.
CREATE TABLE registry_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1;
    RETURN NULL;
END
$$;

-- Per row, so a statement that changes nothing (deleting a name that is not there) leaves it alone.
CREATE TRIGGER services_changed AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH ROW EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER services_truncated AFTER TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER oidc_clients_changed AFTER INSERT OR UPDATE OR DELETE ON oidc_clients
    FOR EACH ROW EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER oidc_clients_truncated AFTER TRUNCATE ON oidc_clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
