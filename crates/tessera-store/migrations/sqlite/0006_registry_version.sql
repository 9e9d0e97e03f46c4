-- A counter bumped by every change to the services or OpenID Connect clients, so a node can keep its
-- compiled registries and read them again only when this number moves (whoever made the change: this
-- node, another node, or the `tessera` CLI). Triggers keep it exact for every write path.
CREATE TABLE registry_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);

CREATE TRIGGER services_inserted AFTER INSERT ON services
BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER services_updated AFTER UPDATE ON services
BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER services_deleted AFTER DELETE ON services
BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER oidc_clients_inserted AFTER INSERT ON oidc_clients
BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER oidc_clients_updated AFTER UPDATE ON oidc_clients
BEGIN UPDATE registry_version SET version = version + 1; END;
CREATE TRIGGER oidc_clients_deleted AFTER DELETE ON oidc_clients
BEGIN UPDATE registry_version SET version = version + 1; END;
