-- Service and proxy tickets no longer reference their session through a cascading foreign key: the
-- session index that the cascade needs cost a page write at a random place for every ticket issued
-- and every ticket validated. Taking a ticket checks that its session still exists instead, and a
-- ticket whose session ended goes with the expiry sweep. The table is keyed by the ticket key alone
-- (WITHOUT ROWID): one b-tree where there were two.
CREATE TABLE service_tickets_by_key (
    ticket_key       TEXT PRIMARY KEY NOT NULL,
    service          TEXT NOT NULL,
    session_id       TEXT NOT NULL,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    from_new_login   INTEGER NOT NULL,
    long_term        INTEGER NOT NULL,
    authenticated_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    proxies          TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
INSERT INTO service_tickets_by_key
    (ticket_key, service, session_id, username, attributes, from_new_login, long_term,
     authenticated_at, expires_at, proxies)
SELECT ticket_key, service, session_id, username, attributes, from_new_login, long_term,
       authenticated_at, expires_at, proxies
FROM service_tickets;
DROP TABLE service_tickets;
ALTER TABLE service_tickets_by_key RENAME TO service_tickets;
CREATE INDEX service_tickets_expires_at ON service_tickets (expires_at);
