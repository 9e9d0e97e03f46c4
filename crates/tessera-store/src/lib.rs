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
mod sqlite;

use async_trait::async_trait;
use tessera_protocol::cas::proxy::ProxyGrantingTicket;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::service::RegisteredService;
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::{Attributes, Timestamp};

pub use error::{StoreError, StoreResult};
pub use sqlite::SqliteStore;

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

    // --- SSO sessions ------------------------------------------------------------------------
    /// Saves a new session that lasts until `expires_at` unless touched.
    async fn put_session(&self, session: &SsoSession, expires_at: Timestamp) -> StoreResult<()>;
    /// The session whose TGT has this key, if it has not been swept. The caller checks expiry.
    async fn get_session(&self, tgt: &TicketKey) -> StoreResult<Option<SsoSession>>;
    /// Marks a session used at `now`, now lasting until `expires_at`.
    async fn touch_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// Ends the session whose TGT has this key, with its unvalidated tickets, queues a single-logout
    /// delivery (due `now`) for every service it entered, and returns it with those services, all in
    /// one transaction. `None` if it was already gone.
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
    /// Saves a newly issued service ticket.
    async fn put_service_ticket(&self, ticket: &ServiceTicket) -> StoreResult<()>;
    /// Removes and returns the ticket with this key, atomically: of two concurrent takes, one
    /// gets the ticket and the other `None`. Expired tickets are returned too; the caller decides.
    async fn take_service_ticket(&self, key: &TicketKey) -> StoreResult<Option<ServiceTicket>>;
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
    async fn get_login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>>;
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

    // --- housekeeping ------------------------------------------------------------------------
    /// Removes sessions, tickets and throttle entries that ended before `now` (throttle entries
    /// whose latest failure is older than `failure_window`), queueing single logout for the
    /// sessions' services. Returns how many sessions, tickets and throttle entries went.
    async fn delete_expired(
        &self,
        now: Timestamp,
        failure_window: std::time::Duration,
    ) -> StoreResult<u64>;
}
