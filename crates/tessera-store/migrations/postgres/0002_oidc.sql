-- OpenID Connect: clients, codes, grants with their tokens, consents, signing keys and deployment
-- settings (as SQLite's 0004_oidc.sql). Codes and tokens are stored only as SHA-256 keys. A grant
-- ends with its SSO session; before it goes, ending the session queues a back-channel logout for
-- its client (slo_queue rows with a client_id).

CREATE TABLE oidc_clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL,
    secret_sha256             TEXT,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    scopes                    TEXT NOT NULL,
    backchannel_logout_uri    TEXT,
    signing_alg               TEXT NOT NULL DEFAULT 'RS256',
    consent                   BOOLEAN NOT NULL DEFAULT FALSE,
    release_mode              TEXT NOT NULL DEFAULT 'none',
    release_rules             TEXT NOT NULL DEFAULT '[]',
    enabled                   BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE oidc_codes (
    code_key       TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    session_id     TEXT NOT NULL,
    username       TEXT NOT NULL,
    attributes     TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    -- Set by the first redemption; a second one revokes this grant.
    grant_id       TEXT
);
CREATE INDEX oidc_codes_expires_at ON oidc_codes (expires_at);

CREATE TABLE oidc_grants (
    id                     TEXT PRIMARY KEY,
    client_id              TEXT NOT NULL,
    session_id             TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    username               TEXT NOT NULL,
    attributes             TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    auth_time              BIGINT NOT NULL,
    backchannel_logout_uri TEXT,
    created_at             BIGINT NOT NULL
);
CREATE INDEX oidc_grants_session_id ON oidc_grants (session_id);
CREATE INDEX oidc_grants_client_id ON oidc_grants (client_id);

CREATE TABLE oidc_access_tokens (
    token_key  TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oidc_access_tokens_grant_id ON oidc_access_tokens (grant_id);
CREATE INDEX oidc_access_tokens_expires_at ON oidc_access_tokens (expires_at);

CREATE TABLE oidc_refresh_tokens (
    token_key  TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX oidc_refresh_tokens_grant_id ON oidc_refresh_tokens (grant_id);
CREATE INDEX oidc_refresh_tokens_expires_at ON oidc_refresh_tokens (expires_at);

CREATE TABLE oidc_consents (
    username   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (username, client_id)
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retired_at  BIGINT
);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

ALTER TABLE slo_queue ADD COLUMN client_id TEXT;
