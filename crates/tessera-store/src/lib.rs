//! Persistence for Tessera: the [`Store`] trait and one implementation per backend.
//!
//! Methods are named by intent: `get_*` may find nothing, `put_*` writes, `delete_*` removes, `list_*`
//! enumerates, and `take_*` removes and returns a consume-once value in one atomic statement, so a
//! replayed ticket finds nothing by construction. Every write is committed before the method returns,
//! so a ticket handed to a client survives a crash of the process.
//!
//! The store holds no protocol rule: it persists the domain types of `tessera-protocol`.
#![warn(missing_docs)]

mod error;
mod oidc_rows;
mod postgres;
mod rows;
mod sqlite;

use async_trait::async_trait;
use tessera_protocol::cas::proxy::ProxyGrantingTicket;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::oidc::{
    AccessToken, AuthorizationCode, Grant, OidcClient, RefreshToken, SigningAlg,
};
use tessera_protocol::service::RegisteredService;
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::{Attributes, Timestamp};

pub use error::{StoreError, StoreResult};
pub use postgres::PostgresStore;
pub use snapshot::{ImportCounts, Snapshot};
pub use sqlite::SqliteStore;

/// The database URLs [`connect`] accepts, as error messages name them.
pub const SUPPORTED_URLS: &str = "sqlite://PATH or postgres://USER@HOST[:PORT]/DATABASE";

/// The backend a database URL names by its scheme: `"sqlite"` (`sqlite://…`) or `"postgres"`
/// (`postgres://…`, `postgresql://…`); `None` for any other.
pub fn backend_name(url: &str) -> Option<&'static str> {
    if is_sqlite_url(url) {
        Some("sqlite")
    } else if is_postgres_url(url) {
        Some("postgres")
    } else {
        None
    }
}

/// Whether the registry version is no longer `decided_at`, the one a decision was made under.
pub(crate) fn registry_moved(decided_at: Option<i64>, version: i64) -> bool {
    decided_at.is_some_and(|decided| decided != version)
}

pub(crate) fn is_sqlite_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

pub(crate) fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store a database URL names, picking the backend by its scheme, and migrates it:
/// [`SqliteStore`] for `sqlite://PATH` (created on first start), [`PostgresStore`] for
/// `postgres://` and `postgresql://` (the database must exist). Any other scheme is
/// [`StoreError::BadUrl`].
pub async fn connect(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if is_sqlite_url(url) {
        Ok(std::sync::Arc::new(SqliteStore::connect(url).await?))
    } else if is_postgres_url(url) {
        Ok(std::sync::Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::BadUrl {
            url: url.to_owned(),
            reason: format!("unsupported database; use {SUPPORTED_URLS}"),
        })
    }
}

/// A user of the built-in user store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Login name.
    pub username: String,
    /// PHC string of the password hash (`$argon2id$…`).
    pub password_hash: String,
    /// Multi-valued attributes.
    pub attributes: Attributes,
}

/// Decides, from a service ticket being taken, what entering its service to record (`None`: the
/// validation fails, nothing is recorded). Pure: a store may run it on the ticket as read just
/// before the statement that takes it; what it returns is recorded only if that take succeeds.
pub type AccessRule = Box<dyn FnOnce(&ServiceTicket) -> Option<ServiceAccess> + Send>;

/// A service a session entered: where single logout must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccess {
    /// The service URL the ticket was issued for.
    pub service: String,
    /// The service ticket it validated (sent back as the SAML `SessionIndex`).
    pub ticket: String,
    /// When it validated.
    pub validated_at: Timestamp,
}

/// A session that was ended, with the services it had entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// The session as it was.
    pub session: SsoSession,
    /// Services that validated a ticket of it.
    pub services: Vec<ServiceAccess>,
    /// OpenID Connect clients that held a grant of it, by id.
    pub clients: Vec<String>,
}

/// A pending single-logout notification: tell `service` that `username`'s session (which entered it
/// with `ticket`) has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloDelivery {
    /// Queue id.
    pub id: i64,
    /// The session that ended.
    pub session_id: SessionId,
    /// Its user.
    pub username: String,
    /// The service URL the ticket was issued for.
    pub service: String,
    /// The service ticket the service validated (the `SessionIndex`).
    pub ticket: String,
    /// When the session ended.
    pub created_at: Timestamp,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// For an OpenID Connect back-channel logout, the client to send a logout token to (`service`
    /// is then its `backchannel_logout_uri` and `ticket` is empty); `None` for CAS.
    pub client_id: Option<String>,
}

/// Failed logins recorded under one throttle key (a username or a source address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    /// Failures since `first_at`.
    pub failures: u32,
    /// The first failure counted.
    pub first_at: Timestamp,
    /// The latest failure.
    pub last_at: Timestamp,
}

/// A JOSE signing key as stored. Private keys never leave the server.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (the JWK thumbprint).
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it starts signing (it is published before).
    pub active_from: Timestamp,
    /// When a newer key replaced it; it stays published while its tokens live.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Decides, from an authorization code being redeemed, the grant and first tokens to save for it
/// (`None`: the token request fails, nothing is saved). Pure: a store may run it on the code as
/// read just before the statement that redeems it; what it returns is saved only with that
/// redemption.
pub type GrantRule = Box<dyn FnOnce(&AuthorizationCode) -> Option<NewGrant> + Send>;

/// A grant with its first tokens, as a token request saves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// The grant.
    pub grant: Grant,
    /// Its first access token.
    pub access: AccessToken,
    /// Its first refresh token, if any.
    pub refresh: Option<RefreshToken>,
}

/// What redeeming an authorization code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code, now spent: it is bound to the grant id given, whether or not the grant is created.
    Redeemed(Box<AuthorizationCode>),
    /// The code had been redeemed before: the grant made from it has been revoked with its tokens
    /// (RFC 6749 §4.1.2).
    Replayed,
    /// No such code.
    Unknown,
}

/// A session's use: an application entered with it, which extends its idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch {
    /// When the session was used (its new `last_used_at`).
    pub at: Timestamp,
    /// Its new expiry.
    pub expires_at: Timestamp,
}

/// How busy the connection pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolUsage {
    /// Open connections.
    pub connections: u32,
    /// Of which idle.
    pub idle: u32,
}

/// What the server persists. One implementation per backend; `AppState` holds an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- users -------------------------------------------------------------------------------
    /// The user named `username`.
    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Adds a user; [`StoreError::Conflict`] if the name is taken.
    async fn put_user(&self, user: &UserRecord, now: Timestamp) -> StoreResult<()>;
    /// Replaces a user's password hash; false if there is no such user.
    async fn put_password_hash(&self, username: &str, password_hash: &str) -> StoreResult<bool>;
    /// Replaces a user's attributes; false if there is no such user.
    async fn put_user_attributes(
        &self,
        username: &str,
        attributes: &Attributes,
    ) -> StoreResult<bool>;
    /// Removes a user and ends their sessions (queueing single logout for them); false if there was
    /// no such user.
    async fn delete_user(&self, username: &str, now: Timestamp) -> StoreResult<bool>;
    /// All users, by name.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;

    // --- services ----------------------------------------------------------------------------
    /// All services of the database, by name.
    async fn list_services(&self) -> StoreResult<Vec<RegisteredService>>;
    /// Adds a service; [`StoreError::Conflict`] if the name is taken.
    async fn put_service(&self, service: &RegisteredService) -> StoreResult<()>;
    /// Removes a service; false if there was none of that name.
    async fn delete_service(&self, name: &str) -> StoreResult<bool>;
    /// A number that changes whenever a service or an OpenID Connect client is added, changed or
    /// removed, by anyone (kept by database triggers). Callers cache what they build from
    /// [`list_services`](Self::list_services) and [`list_clients`](Self::list_clients) under it.
    async fn registry_version(&self) -> StoreResult<i64>;

    // --- SSO sessions ------------------------------------------------------------------------
    /// Saves a new session that lasts until `expires_at` unless touched.
    async fn put_session(&self, session: &SsoSession, expires_at: Timestamp) -> StoreResult<()>;
    /// The session whose TGT has this key, if it has not been swept. The caller checks expiry.
    async fn get_session(&self, tgt: &TicketKey) -> StoreResult<Option<SsoSession>>;
    /// Renews the live session whose TGT has the key `old_tgt` after its user authenticated again
    /// (CAS `renew`, OpenID Connect `prompt=login` or `max_age`): it becomes `session`, which has
    /// the same id and user and a new TGT, attributes, login time and flags, lasting until
    /// `expires_at`. What it entered, its tickets and its grants stay with it. Nothing changes
    /// and `false` is returned if that session has ended meanwhile or is another user's.
    async fn renew_session(
        &self,
        old_tgt: &TicketKey,
        session: &SsoSession,
        expires_at: Timestamp,
    ) -> StoreResult<bool>;
    /// Marks a session used at `now`, now lasting until `expires_at`.
    async fn touch_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Ends the session whose TGT has this key, with its unvalidated tickets and its OpenID Connect
    /// grants, queues a single-logout delivery (due `now`) for every service it entered and every
    /// client with a back-channel logout URI that held a grant, and returns it with those services
    /// and clients, all in one transaction. `None` if it was already gone.
    async fn take_session(
        &self,
        tgt: &TicketKey,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>>;
    /// [`Store::take_session`] by the session's public id (administrative revocation).
    async fn take_session_by_id(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>>;
    /// Live sessions (by login time), optionally of one user.
    async fn list_sessions(&self, username: Option<&str>) -> StoreResult<Vec<SsoSession>>;

    // --- service tickets ---------------------------------------------------------------------
    /// Saves a newly issued service ticket and, in the same transaction (one commit), marks its
    /// session used when `touch` says so. With `decided_at` (the [`registry_version`] the
    /// issuing was decided under), nothing is saved if the services or clients have changed since:
    /// [`StoreError::RegistryChanged`].
    ///
    /// [`registry_version`]: Store::registry_version
    async fn put_service_ticket(
        &self,
        ticket: &ServiceTicket,
        touch: Option<SessionTouch>,
        decided_at: Option<i64>,
    ) -> StoreResult<()>;
    /// Removes and returns the ticket with this key, atomically: of two concurrent takes, one
    /// gets the ticket and the other `None`. Expired tickets are returned too; the caller decides.
    /// A ticket whose session has ended is removed and not returned.
    async fn take_service_ticket(&self, key: &TicketKey) -> StoreResult<Option<ServiceTicket>> {
        self.take_service_ticket_recording(key, Box::new(|_| None), None)
            .await
    }
    /// [`take_service_ticket`](Store::take_service_ticket), and in the same transaction the
    /// access `entered` returns for the ticket taken (if any): the service the ticket's session
    /// entered by validating it, as [`put_service_access`](Store::put_service_access) records it.
    /// One write where a validation made two. With `decided_at` (the [`registry_version`] that
    /// `entered` decides with), nothing is taken if the services or clients have changed since:
    /// [`StoreError::RegistryChanged`].
    ///
    /// [`registry_version`]: Store::registry_version
    async fn take_service_ticket_recording(
        &self,
        key: &TicketKey,
        entered: AccessRule,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<ServiceTicket>>;
    /// Records that `session` entered `service` by validating `ticket` (only the latest ticket per
    /// service URL is kept). Nothing is recorded if the session has ended meanwhile.
    async fn put_service_access(
        &self,
        session: &SessionId,
        access: &ServiceAccess,
    ) -> StoreResult<()>;

    // --- proxy-granting tickets --------------------------------------------------------------
    /// Saves a proxy-granting ticket; nothing is saved if its session has ended meanwhile.
    async fn put_proxy_granting_ticket(&self, pgt: &ProxyGrantingTicket) -> StoreResult<()>;
    /// The proxy-granting ticket with this key (it is reusable: not taken). The caller checks expiry.
    async fn get_proxy_granting_ticket(
        &self,
        key: &TicketKey,
    ) -> StoreResult<Option<ProxyGrantingTicket>>;

    // --- login tickets (one-time form tokens) ------------------------------------------------
    /// Saves the key of a rendered form's login ticket.
    async fn put_login_ticket(&self, key: &TicketKey, expires_at: Timestamp) -> StoreResult<()>;
    /// Consumes a login ticket: true if it existed and had not expired at `now`.
    async fn take_login_ticket(&self, key: &TicketKey, now: Timestamp) -> StoreResult<bool>;

    // --- login throttling --------------------------------------------------------------------
    /// Failures recorded under `key`.
    async fn get_login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>> {
        Ok(self.get_login_failures_of(&[key]).await?.pop().flatten())
    }
    /// Failures recorded under each of `keys` (a user or client and an address: one read, not
    /// one per key), in the order of `keys`.
    async fn get_login_failures_of(&self, keys: &[&str])
        -> StoreResult<Vec<Option<LoginFailures>>>;
    /// Counts one more failure under `key`; a count whose latest failure is older than `window`
    /// starts again from one. Returns the new state.
    async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        window: std::time::Duration,
    ) -> StoreResult<LoginFailures>;
    /// Forgets the failures under `key`.
    async fn delete_login_failures(&self, key: &str) -> StoreResult<()>;

    // --- single logout -----------------------------------------------------------------------
    /// Claims up to `limit` deliveries that are due at `now` and not claimed by anyone, for
    /// `lease` (after which another node may claim them again), counting an attempt on each.
    async fn claim_slo_deliveries(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
        limit: u32,
    ) -> StoreResult<Vec<SloDelivery>>;
    /// Removes a delivery: sent, or given up.
    async fn delete_slo_delivery(&self, id: i64) -> StoreResult<()>;
    /// Releases a failed delivery to be tried again at `due_at`.
    async fn retry_slo_delivery(&self, id: i64, due_at: Timestamp, error: &str) -> StoreResult<()>;
    /// Every pending delivery, oldest first.
    async fn list_slo_deliveries(&self) -> StoreResult<Vec<SloDelivery>>;

    // --- OpenID Connect clients -------------------------------------------------------------
    /// All clients of the database, by id.
    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>>;
    /// Adds a client; [`StoreError::Conflict`] if the id is taken.
    async fn put_client(&self, client: &OidcClient) -> StoreResult<()>;
    /// Removes a client with its grants (their tokens die; no logout is sent) and consents; false
    /// if there was none of that id.
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;

    // --- OpenID Connect codes, grants and tokens --------------------------------------------
    /// Saves a new authorization code and, in the same transaction, marks its session used when
    /// `touch` says so. With `decided_at` (the [`registry_version`] the issuing was decided
    /// under), nothing is saved if the services or clients have changed since:
    /// [`StoreError::RegistryChanged`].
    ///
    /// [`registry_version`]: Store::registry_version
    async fn put_authorization_code(
        &self,
        code: &AuthorizationCode,
        touch: Option<SessionTouch>,
        decided_at: Option<i64>,
    ) -> StoreResult<()>;
    /// Spends the code with this key, atomically: the first redemption gets it (and binds it to
    /// `grant_id`); a later one revokes the grant made from it. Expired codes are returned too;
    /// the caller decides.
    async fn redeem_authorization_code(
        &self,
        key: &TicketKey,
        grant_id: &str,
    ) -> StoreResult<CodeRedemption> {
        let (redemption, _) = self
            .redeem_authorization_code_granting(key, grant_id, Box::new(|_| None), None)
            .await?;
        Ok(redemption)
    }
    /// [`redeem_authorization_code`](Store::redeem_authorization_code), and in the same
    /// transaction, for a code redeemed, the grant `issue` returns for it, saved as
    /// [`put_grant`](Store::put_grant) saves it. One write where a token request made two.
    /// Whether a grant was saved comes with the redemption (not when `issue` returned none, nor
    /// when the SSO session has ended meanwhile); the code stays redeemed either way. With
    /// `decided_at` (the [`registry_version`] that `issue` and the client's authentication
    /// decided with), nothing is redeemed if the services or clients have changed since:
    /// [`StoreError::RegistryChanged`].
    ///
    /// [`registry_version`]: Store::registry_version
    async fn redeem_authorization_code_granting(
        &self,
        key: &TicketKey,
        grant_id: &str,
        issue: GrantRule,
        decided_at: Option<i64>,
    ) -> StoreResult<(CodeRedemption, bool)>;
    /// Saves a grant with its first tokens, in one transaction; false (and nothing saved) if its
    /// SSO session has ended meanwhile.
    async fn put_grant(
        &self,
        grant: &Grant,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool>;
    /// The access token with this key and its grant. The caller checks expiry. With
    /// `decided_at` (the [`registry_version`] of the clients the caller will judge it with),
    /// [`StoreError::RegistryChanged`] if the clients have changed since: the token is read with
    /// the version, in one statement.
    ///
    /// [`registry_version`]: Store::registry_version
    async fn get_access_token(
        &self,
        key: &TicketKey,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<(AccessToken, Grant)>>;
    /// The refresh token with this key and its grant. The caller checks expiry and rotation.
    /// With `decided_at`, as [`get_access_token`](Store::get_access_token).
    async fn get_refresh_token(
        &self,
        key: &TicketKey,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<(RefreshToken, Grant)>>;
    /// Marks the refresh token `old` rotated at `now` (keeping an earlier rotation time) and saves
    /// the new pair of its grant, in one transaction; false if the grant is gone. With
    /// `decided_at` (the [`registry_version`] of the clients the refresh was judged with),
    /// nothing is written if they have changed since: [`StoreError::RegistryChanged`].
    ///
    /// [`registry_version`]: Store::registry_version
    async fn rotate_refresh_token(
        &self,
        old: &TicketKey,
        now: Timestamp,
        access: &AccessToken,
        refresh: &RefreshToken,
        decided_at: Option<i64>,
    ) -> StoreResult<bool>;
    /// Revokes one access token; false if it did not exist.
    async fn delete_access_token(&self, key: &TicketKey) -> StoreResult<bool>;
    /// Revokes a grant with all its tokens; false if it did not exist.
    async fn delete_grant(&self, grant_id: &str) -> StoreResult<bool>;

    // --- OpenID Connect consent --------------------------------------------------------------
    /// The scopes `username` consented to for `client_id`.
    async fn get_consent(
        &self,
        username: &str,
        client_id: &str,
    ) -> StoreResult<Option<Vec<String>>>;
    /// Records (replacing) the scopes `username` consented to for `client_id`.
    async fn put_consent(
        &self,
        username: &str,
        client_id: &str,
        scope: &[String],
        now: Timestamp,
    ) -> StoreResult<()>;

    // --- signing keys and deployment settings -----------------------------------------------
    /// Every stored signing key, oldest first.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a signing key and retires, at its `active_from` (or earlier, if already scheduled), every
    /// other key of its algorithm, in one transaction.
    async fn put_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Forgets keys retired before `before`; returns how many.
    async fn delete_retired_signing_keys(&self, before: Timestamp) -> StoreResult<u64>;
    /// The deployment setting `name`: its stored value, or `value` after storing it if there was
    /// none (the first writer wins when several nodes race).
    async fn get_or_put_setting(&self, name: &str, value: &str) -> StoreResult<String>;

    // --- whole-database copies (`tessera migrate`) ---------------------------------------------
    /// Every row of every table, read in one transaction: a consistent snapshot even while
    /// servers keep writing.
    async fn export_all(&self) -> StoreResult<Snapshot>;
    /// Writes `snapshot` into this database in one transaction, keeping every key, id and time
    /// as they were. Refuses ([`StoreError::NotEmpty`], nothing written) if any table holds a row
    /// already, so nothing is ever merged. Returns how many rows each table received.
    async fn import_all(&self, snapshot: &Snapshot) -> StoreResult<ImportCounts>;

    // --- operations --------------------------------------------------------------------------
    /// Checks the database answers (a trivial query).
    async fn ping(&self) -> StoreResult<()>;
    /// The connection pool's current size and idle connections.
    fn pool_usage(&self) -> PoolUsage;

    // --- housekeeping ------------------------------------------------------------------------
    /// Removes sessions (with their grants), tickets, codes, tokens and throttle entries that ended
    /// before `now` (throttle entries whose latest failure is older than `failure_window`), queueing
    /// single logout for the sessions' services and clients. Returns how many sessions, tickets and throttle entries went.
    async fn delete_expired(
        &self,
        now: Timestamp,
        failure_window: std::time::Duration,
    ) -> StoreResult<u64>;
}

pub mod snapshot {
    //! A whole deployment as rows, for copying it between databases (`tessera migrate`):
    //! [`Store::export_all`](crate::Store::export_all) reads every table in one transaction and
    //! [`Store::import_all`](crate::Store::import_all) writes them into an empty database of
    //! either backend. Rows hold their columns as stored (JSON as text, times as Unix
    //! milliseconds), which both schemas share, so nothing is reinterpreted on the way.

    pub use crate::oidc_rows::{
        AccessTokenRow, ClientRow, ConsentRow, GrantRow, KeyRow, RefreshTokenRow, SettingRow,
        StoredCode,
    };
    pub use crate::rows::{
        LoginTicketRow, PgtRow, ServiceRow, ServiceTicketRow, SessionAccessRow,
        StoredLoginFailures, StoredSession, StoredSloDelivery, StoredUser,
    };

    /// Calls `$callback!($($args)*; table, …)` with every table of a [`Snapshot`] (whose fields
    /// are named after them), parents first: a session before its tickets, a grant before its
    /// tokens, so an import satisfies every foreign key as it goes.
    macro_rules! snapshot_tables {
        ($callback:ident!($($args:tt)*)) => {
            $callback!($($args)*; users, services, oidc_clients, sessions, service_tickets,
                session_services, proxy_granting_tickets, login_tickets, login_failures,
                slo_queue, oidc_codes, oidc_grants, oidc_access_tokens, oidc_refresh_tokens,
                oidc_consents, signing_keys, settings)
        };
    }
    pub(crate) use snapshot_tables;

    /// Every row of a deployment, one list per table, each in primary-key order. Its `Debug`
    /// shows row counts only: rows hold password hashes and private keys.
    #[derive(Default, PartialEq, Eq)]
    pub struct Snapshot {
        /// `users`
        pub users: Vec<StoredUser>,
        /// `services`
        pub services: Vec<ServiceRow>,
        /// `oidc_clients`
        pub oidc_clients: Vec<ClientRow>,
        /// `sessions`, with their expiry.
        pub sessions: Vec<StoredSession>,
        /// `service_tickets` (and proxy tickets)
        pub service_tickets: Vec<ServiceTicketRow>,
        /// `session_services`: the services each session entered, for single logout.
        pub session_services: Vec<SessionAccessRow>,
        /// `proxy_granting_tickets`
        pub proxy_granting_tickets: Vec<PgtRow>,
        /// `login_tickets`
        pub login_tickets: Vec<LoginTicketRow>,
        /// `login_failures`
        pub login_failures: Vec<StoredLoginFailures>,
        /// `slo_queue`, ids and leases included.
        pub slo_queue: Vec<StoredSloDelivery>,
        /// `oidc_codes`
        pub oidc_codes: Vec<StoredCode>,
        /// `oidc_grants`
        pub oidc_grants: Vec<GrantRow>,
        /// `oidc_access_tokens`
        pub oidc_access_tokens: Vec<AccessTokenRow>,
        /// `oidc_refresh_tokens`
        pub oidc_refresh_tokens: Vec<RefreshTokenRow>,
        /// `oidc_consents`
        pub oidc_consents: Vec<ConsentRow>,
        /// `signing_keys`
        pub signing_keys: Vec<KeyRow>,
        /// `settings` (the OpenID Connect subject salt among them)
        pub settings: Vec<SettingRow>,
    }

    macro_rules! table_counts {
        ($snapshot:ident; $($table:ident),*) => {
            vec![$((stringify!($table), $snapshot.$table.len())),*]
        };
    }

    macro_rules! table_names {
        (; $($table:ident),*) => {
            &[$(stringify!($table)),*]
        };
    }

    /// The tables a snapshot copies, in import order.
    pub(crate) const TABLES: &[&str] = snapshot_tables!(table_names!());

    impl Snapshot {
        /// Rows per table, in import order.
        pub fn counts(&self) -> Vec<(&'static str, usize)> {
            snapshot_tables!(table_counts!(self))
        }

        /// Whether it holds no row at all.
        pub fn is_empty(&self) -> bool {
            self.counts().iter().all(|(_, n)| *n == 0)
        }
    }

    impl std::fmt::Debug for Snapshot {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let mut map = f.debug_map();
            for (table, n) in self.counts() {
                map.entry(&table, &n);
            }
            map.finish()
        }
    }

    /// What an import wrote: rows per table, in import order.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ImportCounts {
        /// `(table, rows)`
        pub tables: Vec<(&'static str, u64)>,
    }

    impl ImportCounts {
        /// The rows `table` received (`None` for a table a snapshot does not copy).
        pub fn rows(&self, table: &str) -> Option<u64> {
            self.tables
                .iter()
                .find(|(t, _)| *t == table)
                .map(|(_, n)| *n)
        }

        /// All rows written.
        pub fn total(&self) -> u64 {
            self.tables.iter().map(|(_, n)| n).sum()
        }
    }

    /// `SELECT name, COUNT(*)` for every table, as one statement for either backend.
    pub(crate) fn count_rows_sql() -> String {
        TABLES
            .iter()
            .map(|t| format!("SELECT '{t}', COUNT(*) FROM {t}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// [`StoreError::NotEmpty`](crate::StoreError::NotEmpty) naming the tables that hold rows, if
    /// any does.
    pub(crate) fn refuse_unless_empty(counts: &[(String, i64)]) -> crate::StoreResult<()> {
        let held: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        if held.is_empty() {
            Ok(())
        } else {
            Err(crate::StoreError::NotEmpty(held.join(", ")))
        }
    }
}
