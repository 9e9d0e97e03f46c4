//! OpenID Connect rows as every backend reads them, and their conversions to and from domain values
//! (see `rows.rs` for the conventions).

use sqlx::FromRow;
use tessera_protocol::oidc::grant::{parse_scope, scope_string};
use tessera_protocol::oidc::{
    AccessToken, AuthorizationCode, ClientSecret, Grant, OidcClient, RefreshToken, SigningAlg,
};
use tessera_protocol::service::ServiceOrigin;
use tessera_protocol::session::SessionId;
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::Timestamp;

use crate::rows::{
    from_json, release_columns, release_from_columns, row, to_json, ts, Cell, Columns, Table,
};
use crate::{SigningKeyRecord, StoreError, StoreResult};

/// The columns of `oidc_clients`, in [`ClientRow`] order.
pub(crate) const CLIENT_COLUMNS: &str = "id, name, secret_sha256, redirect_uris, \
     post_logout_redirect_uris, scopes, backchannel_logout_uri, signing_alg, consent, release_mode, \
     release_rules, enabled";

row! {
    /// A row of `oidc_clients`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct ClientRow {
        id: String,
        name: String,
        secret_sha256: Option<String>,
        redirect_uris: String,
        post_logout_redirect_uris: String,
        scopes: String,
        backchannel_logout_uri: Option<String>,
        signing_alg: String,
        consent: bool,
        release_mode: String,
        release_rules: String,
        enabled: bool,
    }
}

impl TryFrom<ClientRow> for OidcClient {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> StoreResult<Self> {
        let owner = format!("client {}", r.id);
        let secret = r
            .secret_sha256
            .map_or(ClientSecret::Public, ClientSecret::Sha256);
        let mut client = OidcClient::new(r.id, secret, ServiceOrigin::Database);
        client.name = r.name;
        client.redirect_uris = from_json("redirect uris", &r.redirect_uris)?;
        client.post_logout_redirect_uris =
            from_json("post-logout redirect uris", &r.post_logout_redirect_uris)?;
        client.scopes = parse_scope(&r.scopes);
        client.backchannel_logout_uri = r.backchannel_logout_uri;
        client.signing_alg = SigningAlg::parse(&r.signing_alg).ok_or_else(|| {
            StoreError::Corrupt(format!("{owner}: signing alg {}", r.signing_alg))
        })?;
        client.consent = r.consent;
        client.release = release_from_columns(&owner, &r.release_mode, &r.release_rules)?;
        client.enabled = r.enabled;
        Ok(client)
    }
}

/// The values of a client's columns, in [`CLIENT_COLUMNS`] order where they are not plain fields.
pub(crate) struct ClientColumns {
    pub(crate) secret_sha256: Option<String>,
    pub(crate) redirect_uris: String,
    pub(crate) post_logout_redirect_uris: String,
    pub(crate) scopes: String,
    pub(crate) release_mode: &'static str,
    pub(crate) release_rules: String,
}

impl ClientColumns {
    pub(crate) fn of(c: &OidcClient) -> Self {
        let (release_mode, release_rules) = release_columns(&c.release);
        Self {
            secret_sha256: match &c.secret {
                ClientSecret::Public => None,
                ClientSecret::Sha256(hex) => Some(hex.clone()),
            },
            redirect_uris: to_json(&c.redirect_uris),
            post_logout_redirect_uris: to_json(&c.post_logout_redirect_uris),
            scopes: scope_string(&c.scopes),
            release_mode,
            release_rules,
        }
    }
}

/// The columns of `oidc_codes` a redemption returns, in [`CodeRow`] order.
pub(crate) const CODE_COLUMNS: &str = "code_key, client_id, redirect_uri, scope, nonce, \
     code_challenge, session_id, username, attributes, auth_time, expires_at";

row! {
    #[derive(FromRow, PartialEq, Eq)]
    pub(crate) struct CodeRow {
        code_key: String,
        client_id: String,
        redirect_uri: String,
        scope: String,
        nonce: Option<String>,
        code_challenge: Option<String>,
        session_id: String,
        username: String,
        attributes: String,
        auth_time: i64,
        expires_at: i64,
    }
}

impl TryFrom<CodeRow> for AuthorizationCode {
    type Error = StoreError;
    fn try_from(r: CodeRow) -> StoreResult<Self> {
        Ok(Self {
            key: TicketKey::from_stored(r.code_key),
            client_id: r.client_id,
            redirect_uri: r.redirect_uri,
            scope: parse_scope(&r.scope),
            nonce: r.nonce,
            code_challenge: r.code_challenge,
            session_id: SessionId::from_stored(r.session_id),
            username: r.username,
            attributes: from_json("code attributes", &r.attributes)?,
            auth_time: Timestamp::from_unix_millis(r.auth_time),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
        })
    }
}

/// The columns of `oidc_grants` (as `g.`), in [`GrantRow`] order.
pub(crate) const GRANT_COLUMNS: &str = "g.id AS grant_id, g.client_id, g.session_id, g.username, \
     g.attributes, g.scope AS grant_scope, g.auth_time, g.backchannel_logout_uri, g.created_at";

/// The read of the access token whose key is bound at `placeholder`, with its grant, left-joined
/// to the registry version (as `version`; the token's and grant's columns are NULL when there is
/// no such token).
pub(crate) fn access_token_with_version(placeholder: &str) -> String {
    format!(
        "SELECT registry_version.version, t.token_key, t.scope, t.issued_at, t.expires_at, \
         {GRANT_COLUMNS} FROM registry_version \
         LEFT JOIN (oidc_access_tokens t JOIN oidc_grants g ON g.id = t.grant_id) \
         ON t.token_key = {placeholder} WHERE registry_version.id = 1"
    )
}

/// The registry version, and the refresh token with key `placeholder` with its grant (NULLs
/// when there is none): one row whatever the key.
pub(crate) fn refresh_token_with_version(placeholder: &str) -> String {
    format!(
        "SELECT registry_version.version, t.token_key, t.expires_at, t.rotated_at, \
         {GRANT_COLUMNS} FROM registry_version \
         LEFT JOIN (oidc_refresh_tokens t JOIN oidc_grants g ON g.id = t.grant_id) \
         ON t.token_key = {placeholder} WHERE registry_version.id = 1"
    )
}

row! {
    /// A row of `oidc_grants`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct GrantRow {
        grant_id: String,
        client_id: String,
        session_id: String,
        username: String,
        attributes: String,
        grant_scope: String,
        auth_time: i64,
        backchannel_logout_uri: Option<String>,
        created_at: i64,
    }
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> StoreResult<Self> {
        Ok(Self {
            id: r.grant_id,
            client_id: r.client_id,
            session_id: SessionId::from_stored(r.session_id),
            username: r.username,
            attributes: from_json("grant attributes", &r.attributes)?,
            scope: parse_scope(&r.grant_scope),
            auth_time: Timestamp::from_unix_millis(r.auth_time),
            backchannel_logout_uri: r.backchannel_logout_uri,
            created_at: Timestamp::from_unix_millis(r.created_at),
        })
    }
}

row! {
    /// An access token joined with its grant.
    #[derive(FromRow)]
    pub(crate) struct AccessRow {
        token_key: String,
        scope: String,
        issued_at: i64,
        expires_at: i64,
        #[sqlx(flatten)]
        grant: GrantRow,
    }
}

impl TryFrom<AccessRow> for (AccessToken, Grant) {
    type Error = StoreError;
    fn try_from(r: AccessRow) -> StoreResult<Self> {
        let grant = Grant::try_from(r.grant)?;
        Ok((
            AccessToken {
                key: TicketKey::from_stored(r.token_key),
                grant_id: grant.id.clone(),
                scope: parse_scope(&r.scope),
                issued_at: Timestamp::from_unix_millis(r.issued_at),
                expires_at: Timestamp::from_unix_millis(r.expires_at),
            },
            grant,
        ))
    }
}

row! {
    /// A refresh token joined with its grant.
    #[derive(FromRow)]
    pub(crate) struct RefreshRow {
        token_key: String,
        expires_at: i64,
        rotated_at: Option<i64>,
        #[sqlx(flatten)]
        grant: GrantRow,
    }
}

impl TryFrom<RefreshRow> for (RefreshToken, Grant) {
    type Error = StoreError;
    fn try_from(r: RefreshRow) -> StoreResult<Self> {
        let grant = Grant::try_from(r.grant)?;
        Ok((
            RefreshToken {
                key: TicketKey::from_stored(r.token_key),
                grant_id: grant.id.clone(),
                expires_at: Timestamp::from_unix_millis(r.expires_at),
                rotated_at: r.rotated_at.map(Timestamp::from_unix_millis),
            },
            grant,
        ))
    }
}

/// The columns of `signing_keys`, in [`KeyRow`] order.
pub(crate) const KEY_COLUMNS: &str = "kid, alg, private_pem, created_at, active_from, retired_at";

row! {
    /// A row of `signing_keys`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct KeyRow {
        kid: String,
        alg: String,
        private_pem: String,
        created_at: i64,
        active_from: i64,
        retired_at: Option<i64>,
    }
}

impl TryFrom<KeyRow> for SigningKeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> StoreResult<Self> {
        Ok(Self {
            alg: SigningAlg::parse(&r.alg)
                .ok_or_else(|| StoreError::Corrupt(format!("key {}: alg {}", r.kid, r.alg)))?,
            kid: r.kid,
            private_pem: r.private_pem,
            created_at: Timestamp::from_unix_millis(r.created_at),
            active_from: Timestamp::from_unix_millis(r.active_from),
            retired_at: r.retired_at.map(Timestamp::from_unix_millis),
        })
    }
}

/// A stored optional time.
pub(crate) fn ts_opt(t: Option<Timestamp>) -> Option<i64> {
    t.map(ts)
}

// --- snapshots (see `rows::Table`) --------------------------------------------------------------

impl Columns for ClientRow {
    fn select() -> String {
        CLIENT_COLUMNS.into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.id),
            Cell::Text(&self.name),
            Cell::OptText(self.secret_sha256.as_deref()),
            Cell::Text(&self.redirect_uris),
            Cell::Text(&self.post_logout_redirect_uris),
            Cell::Text(&self.scopes),
            Cell::OptText(self.backchannel_logout_uri.as_deref()),
            Cell::Text(&self.signing_alg),
            Cell::Bool(self.consent),
            Cell::Text(&self.release_mode),
            Cell::Text(&self.release_rules),
            Cell::Bool(self.enabled),
        ]);
    }
}

impl Table for ClientRow {
    const NAME: &'static str = "oidc_clients";
    const ORDER: &'static str = "id";
}

row! {
    /// A row of `oidc_codes`, as stored (with the grant a redemption bound it to).
    #[derive(FromRow, PartialEq, Eq)]
    pub struct StoredCode {
        #[sqlx(flatten)]
        code: CodeRow,
        grant_id: Option<String>,
    }
}

impl Columns for StoredCode {
    fn select() -> String {
        format!("{CODE_COLUMNS}, grant_id")
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        let c = &self.code;
        out.extend([
            Cell::Text(&c.code_key),
            Cell::Text(&c.client_id),
            Cell::Text(&c.redirect_uri),
            Cell::Text(&c.scope),
            Cell::OptText(c.nonce.as_deref()),
            Cell::OptText(c.code_challenge.as_deref()),
            Cell::Text(&c.session_id),
            Cell::Text(&c.username),
            Cell::Text(&c.attributes),
            Cell::Int(c.auth_time),
            Cell::Int(c.expires_at),
            Cell::OptText(self.grant_id.as_deref()),
        ]);
    }
}

impl Table for StoredCode {
    const NAME: &'static str = "oidc_codes";
    const ORDER: &'static str = "code_key";
}

impl Columns for GrantRow {
    fn select() -> String {
        GRANT_COLUMNS.into()
    }
    fn columns() -> String {
        "id, client_id, session_id, username, attributes, scope, auth_time, \
         backchannel_logout_uri, created_at"
            .into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.grant_id),
            Cell::Text(&self.client_id),
            Cell::Text(&self.session_id),
            Cell::Text(&self.username),
            Cell::Text(&self.attributes),
            Cell::Text(&self.grant_scope),
            Cell::Int(self.auth_time),
            Cell::OptText(self.backchannel_logout_uri.as_deref()),
            Cell::Int(self.created_at),
        ]);
    }
}

impl Table for GrantRow {
    const NAME: &'static str = "oidc_grants";
    const FROM: &'static str = "oidc_grants g";
    const ORDER: &'static str = "g.id";
}

row! {
    /// A row of `oidc_access_tokens`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct AccessTokenRow {
        token_key: String,
        grant_id: String,
        scope: String,
        issued_at: i64,
        expires_at: i64,
    }
}

impl Columns for AccessTokenRow {
    fn select() -> String {
        "token_key, grant_id, scope, issued_at, expires_at".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.token_key),
            Cell::Text(&self.grant_id),
            Cell::Text(&self.scope),
            Cell::Int(self.issued_at),
            Cell::Int(self.expires_at),
        ]);
    }
}

impl Table for AccessTokenRow {
    const NAME: &'static str = "oidc_access_tokens";
    const ORDER: &'static str = "token_key";
}

row! {
    /// A row of `oidc_refresh_tokens`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct RefreshTokenRow {
        token_key: String,
        grant_id: String,
        expires_at: i64,
        rotated_at: Option<i64>,
    }
}

impl Columns for RefreshTokenRow {
    fn select() -> String {
        "token_key, grant_id, expires_at, rotated_at".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.token_key),
            Cell::Text(&self.grant_id),
            Cell::Int(self.expires_at),
            Cell::OptInt(self.rotated_at),
        ]);
    }
}

impl Table for RefreshTokenRow {
    const NAME: &'static str = "oidc_refresh_tokens";
    const ORDER: &'static str = "token_key";
}

row! {
    /// A row of `oidc_consents`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct ConsentRow {
        username: String,
        client_id: String,
        scope: String,
        granted_at: i64,
    }
}

impl Columns for ConsentRow {
    fn select() -> String {
        "username, client_id, scope, granted_at".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.username),
            Cell::Text(&self.client_id),
            Cell::Text(&self.scope),
            Cell::Int(self.granted_at),
        ]);
    }
}

impl Table for ConsentRow {
    const NAME: &'static str = "oidc_consents";
    const ORDER: &'static str = "username, client_id";
}

impl Columns for KeyRow {
    fn select() -> String {
        KEY_COLUMNS.into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.kid),
            Cell::Text(&self.alg),
            Cell::Text(&self.private_pem),
            Cell::Int(self.created_at),
            Cell::Int(self.active_from),
            Cell::OptInt(self.retired_at),
        ]);
    }
}

impl Table for KeyRow {
    const NAME: &'static str = "signing_keys";
    const ORDER: &'static str = "kid";
}

row! {
    /// A row of `settings`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct SettingRow {
        name: String,
        value: String,
    }
}

impl Columns for SettingRow {
    fn select() -> String {
        "name, value".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([Cell::Text(&self.name), Cell::Text(&self.value)]);
    }
}

impl Table for SettingRow {
    const NAME: &'static str = "settings";
    const ORDER: &'static str = "name";
}
