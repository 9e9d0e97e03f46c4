-- Tessera schema, SQLite. Times are Unix milliseconds. Tickets and TGTs are stored only as SHA-256
-- keys, never in the clear.

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    attributes    TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL
);

CREATE TABLE services (
    name               TEXT PRIMARY KEY NOT NULL,
    pattern_kind       TEXT NOT NULL,
    pattern            TEXT NOT NULL,
    enabled            INTEGER NOT NULL DEFAULT 1,
    release_mode       TEXT NOT NULL DEFAULT 'none',
    release_rules      TEXT NOT NULL DEFAULT '[]',
    username_attribute TEXT,
    requirements       TEXT NOT NULL DEFAULT '[]',
    sso                INTEGER NOT NULL DEFAULT 1,
    logout_url         TEXT
);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY NOT NULL,
    tgt_key          TEXT NOT NULL UNIQUE,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    authenticated_at INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL,
    long_term        INTEGER NOT NULL,
    warn             INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_username ON sessions (username);

CREATE TABLE service_tickets (
    ticket_key       TEXT PRIMARY KEY NOT NULL,
    service          TEXT NOT NULL,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    from_new_login   INTEGER NOT NULL,
    long_term        INTEGER NOT NULL,
    authenticated_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);
CREATE INDEX service_tickets_expires_at ON service_tickets (expires_at);
CREATE INDEX service_tickets_session_id ON service_tickets (session_id);

-- The services a session entered, for single logout: the latest validated ticket per service URL.
-- No cascade: ending a session hands these rows to the caller (take_session) in the same transaction.
CREATE TABLE session_services (
    session_id   TEXT NOT NULL,
    service      TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    validated_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, service)
);

CREATE TABLE login_tickets (
    ticket_key TEXT PRIMARY KEY NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_tickets_expires_at ON login_tickets (expires_at);

CREATE TABLE login_failures (
    throttle_key TEXT PRIMARY KEY NOT NULL,
    failures     INTEGER NOT NULL,
    first_at     INTEGER NOT NULL,
    last_at      INTEGER NOT NULL
);
