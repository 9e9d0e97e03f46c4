-- Tessera schema, PostgreSQL: everything the SQLite migrations build, in one step. Times are Unix
-- milliseconds (BIGINT); JSON is kept as TEXT, as in SQLite, so values round-trip byte for byte.
-- Tickets and TGTs are stored only as SHA-256 keys, never in the clear.

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    attributes    TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL
);

CREATE TABLE services (
    name                TEXT PRIMARY KEY,
    pattern_kind        TEXT NOT NULL,
    pattern             TEXT NOT NULL,
    enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    release_mode        TEXT NOT NULL DEFAULT 'none',
    release_rules       TEXT NOT NULL DEFAULT '[]',
    username_attribute  TEXT,
    requirements        TEXT NOT NULL DEFAULT '[]',
    sso                 BOOLEAN NOT NULL DEFAULT TRUE,
    logout_url          TEXT,
    -- How the service hears of a logout.
    logout_type         TEXT NOT NULL DEFAULT 'back',
    -- Proxy authentication: the callback URLs that may receive proxy-granting tickets, and
    -- whether the service may be the target of proxy tickets.
    proxy_callback_kind TEXT,
    proxy_callback      TEXT,
    proxy_target        BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    tgt_key          TEXT NOT NULL UNIQUE,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    authenticated_at BIGINT NOT NULL,
    last_used_at     BIGINT NOT NULL,
    long_term        BOOLEAN NOT NULL,
    warn             BOOLEAN NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_username ON sessions (username);

CREATE TABLE service_tickets (
    ticket_key       TEXT PRIMARY KEY,
    service          TEXT NOT NULL,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    from_new_login   BOOLEAN NOT NULL,
    long_term        BOOLEAN NOT NULL,
    authenticated_at BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    -- The proxy chain of a proxy ticket (JSON list, most recent proxy first).
    proxies          TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX service_tickets_expires_at ON service_tickets (expires_at);
CREATE INDEX service_tickets_session_id ON service_tickets (session_id);

-- The services a session entered, for single logout: the latest validated ticket per service URL.
-- No cascade: ending a session hands these rows to the caller (take_session) in the same transaction.
CREATE TABLE session_services (
    session_id   TEXT NOT NULL,
    service      TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    validated_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, service)
);

CREATE TABLE login_tickets (
    ticket_key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_tickets_expires_at ON login_tickets (expires_at);

CREATE TABLE login_failures (
    throttle_key TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    first_at     BIGINT NOT NULL,
    last_at      BIGINT NOT NULL
);

-- Single logout: the persisted delivery queue. A session's entered services move into the queue in
-- the same transaction that ends the session, so a crash cannot lose a notification; deliveries
-- are claimed with a lease (FOR UPDATE SKIP LOCKED), so one node sends each.
CREATE TABLE slo_queue (
    id            BIGSERIAL PRIMARY KEY,
    session_id    TEXT NOT NULL,
    username      TEXT NOT NULL,
    service       TEXT NOT NULL,
    ticket        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    due_at        BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX slo_queue_due_at ON slo_queue (due_at);

-- Proxy-granting tickets end with their SSO session.
CREATE TABLE proxy_granting_tickets (
    ticket_key       TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    username         TEXT NOT NULL,
    attributes       TEXT NOT NULL,
    authenticated_at BIGINT NOT NULL,
    long_term        BOOLEAN NOT NULL,
    proxies          TEXT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX proxy_granting_tickets_expires_at ON proxy_granting_tickets (expires_at);
CREATE INDEX proxy_granting_tickets_session_id ON proxy_granting_tickets (session_id);
