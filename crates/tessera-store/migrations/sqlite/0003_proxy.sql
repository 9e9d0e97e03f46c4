-- Proxy authentication: which services may obtain proxy-granting tickets (and through which
-- callback URLs) or receive proxy tickets; the proxy chain of a proxy ticket (stored with service
-- tickets); and proxy-granting tickets, which end with their SSO session.

ALTER TABLE services ADD COLUMN proxy_callback_kind TEXT;
ALTER TABLE services ADD COLUMN proxy_callback TEXT;
ALTER TABLE services ADD COLUMN proxy_target INTEGER NOT NULL DEFAULT 0;

ALTER TABLE service_tickets ADD COLUMN proxies TEXT NOT NULL DEFAULT '[]';

CREATE TABLE proxy_granting_tickets (
    ticket_key       TEXT PRIMARY KEY NOT NULL,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    authenticated_at INTEGER NOT NULL,
    long_term        INTEGER NOT NULL,
    proxies          TEXT NOT NULL,
    expires_at       INTEGER NOT NULL
);
CREATE INDEX proxy_granting_tickets_expires_at ON proxy_granting_tickets (expires_at);
CREATE INDEX proxy_granting_tickets_session_id ON proxy_granting_tickets (session_id);
