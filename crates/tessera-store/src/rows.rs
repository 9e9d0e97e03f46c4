//! Rows as every backend reads them, and their conversions to and from domain values.
//!
//! Each backend stores the same columns with types that decode to the same Rust types (`TEXT` to
//! `String`, 64-bit integers to `i64`, booleans to `bool`). Every row type is declared with
//! [`row!`], which reads it by column name for both engines: sqlx's `FromRow` for PostgreSQL, and
//! [`FromSqlite`] for SQLite. Only the SQL differs between backends.

use sqlx::FromRow;
use tessera_protocol::cas::proxy::ProxyGrantingTicket;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::service::{
    AttributeRelease, AttributeRule, LogoutType, RegisteredService, Requirement, ServiceOrigin,
    ServicePattern, ServiceUrl,
};
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::Timestamp;

use crate::{
    EndedSession, LoginFailures, ServiceAccess, SloDelivery, StoreError, StoreResult, UserRecord,
};

/// A row the SQLite engine reads, by column name (as `FromRow` does for sqlx).
pub(crate) trait FromSqlite: Sized {
    /// Reads the row's columns.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

/// A field of a [`FromSqlite`] row: the column of its name, or (for a row type) a group of
/// columns flattened into the row.
pub(crate) trait SqliteField: Sized {
    /// Reads the field `name` of `row`.
    fn field(row: &rusqlite::Row<'_>, name: &str) -> rusqlite::Result<Self>;
}

macro_rules! sqlite_columns {
    ($($t:ty),*) => {$(
        impl SqliteField for $t {
            fn field(row: &rusqlite::Row<'_>, name: &str) -> rusqlite::Result<Self> {
                row.get(name)
            }
        }
    )*};
}
sqlite_columns!(String, Option<String>, i64, Option<i64>, bool);

/// Declares a row type, with its sqlx derives as written and a [`FromSqlite`] reading each field
/// from the column of the same name; a field whose type is itself a row (`#[sqlx(flatten)]`) reads
/// that row's columns.
macro_rules! row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field: $ty,)*
        }

        impl $crate::rows::FromSqlite for $name {
            fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(Self {
                    $($field: $crate::rows::SqliteField::field(row, stringify!($field))?,)*
                })
            }
        }

        impl $crate::rows::SqliteField for $name {
            fn field(row: &rusqlite::Row<'_>, _name: &str) -> rusqlite::Result<Self> {
                <Self as $crate::rows::FromSqlite>::read(row)
            }
        }
    };
}
pub(crate) use row;

/// A timestamp as stored: Unix milliseconds.
pub(crate) fn ts(t: Timestamp) -> i64 {
    t.unix_millis()
}

/// A duration as stored: milliseconds, saturating.
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Reads a JSON column; `what` names it in the [`StoreError::Corrupt`] error.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Writes a JSON column.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Whether the database refused a write for breaking a unique constraint.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Maps a unique violation to [`StoreError::Conflict`] naming `what`, anything else as is.
pub(crate) fn conflict_as(what: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(what())
        } else {
            e.into()
        }
    }
}

row! {
    #[derive(FromRow, PartialEq, Eq)]
    pub(crate) struct UserRow {
        username: String,
        password_hash: String,
        attributes: String,
    }
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;
    fn try_from(r: UserRow) -> StoreResult<Self> {
        Ok(Self {
            attributes: from_json("user attributes", &r.attributes)?,
            username: r.username,
            password_hash: r.password_hash,
        })
    }
}

/// The columns of `services`, in [`ServiceRow`] order.
pub(crate) const SERVICE_COLUMNS: &str = "name, pattern_kind, pattern, enabled, release_mode, \
     release_rules, username_attribute, requirements, sso, logout_url, logout_type, \
     proxy_callback_kind, proxy_callback, proxy_target, theme, description";

row! {
    /// A row of `services`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct ServiceRow {
        name: String,
        pattern_kind: String,
        pattern: String,
        enabled: bool,
        release_mode: String,
        release_rules: String,
        username_attribute: Option<String>,
        requirements: String,
        sso: bool,
        logout_url: Option<String>,
        logout_type: String,
        proxy_callback_kind: Option<String>,
        proxy_callback: Option<String>,
        proxy_target: bool,
        theme: Option<String>,
        description: Option<String>,
    }
}

impl TryFrom<ServiceRow> for RegisteredService {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> StoreResult<Self> {
        let corrupt = |e: tessera_protocol::service::PatternError| {
            StoreError::Corrupt(format!("service {}: {e}", r.name))
        };
        let pattern = ServicePattern::from_parts(&r.pattern_kind, &r.pattern).map_err(corrupt)?;
        let release = release_from_columns(
            &format!("service {}", r.name),
            &r.release_mode,
            &r.release_rules,
        )?;
        let requirements: Vec<String> = from_json("requirements", &r.requirements)?;
        let mut service = RegisteredService::new(r.name.clone(), pattern, ServiceOrigin::Database);
        service.enabled = r.enabled;
        service.release = release;
        service.username_attribute = r.username_attribute;
        service.requirements = requirements
            .iter()
            .map(|s| Requirement::parse(s))
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        service.sso = r.sso;
        service.logout_url = r.logout_url;
        service.logout_type = LogoutType::parse(&r.logout_type).map_err(corrupt)?;
        service.proxy_callback = match (&r.proxy_callback_kind, &r.proxy_callback) {
            (Some(kind), Some(source)) => {
                Some(ServicePattern::from_parts(kind, source).map_err(corrupt)?)
            }
            _ => None,
        };
        service.proxy_target = r.proxy_target;
        service.theme = r.theme;
        service.description = r.description;
        Ok(service)
    }
}

/// The `release_mode` (`none`, `all`, `only`) and `release_rules` (JSON list) columns of an
/// attribute release policy, for services and clients alike.
pub(crate) fn release_columns(release: &AttributeRelease) -> (&'static str, String) {
    match release {
        AttributeRelease::Nothing => ("none", "[]".to_owned()),
        AttributeRelease::All => ("all", "[]".to_owned()),
        AttributeRelease::Only(rules) => (
            "only",
            to_json(&rules.iter().map(ToString::to_string).collect::<Vec<_>>()),
        ),
    }
}

/// Reads back what [`release_columns`] wrote; `owner` names the row in errors.
pub(crate) fn release_from_columns(
    owner: &str,
    mode: &str,
    rules: &str,
) -> StoreResult<AttributeRelease> {
    let corrupt = |e: String| StoreError::Corrupt(format!("{owner}: {e}"));
    Ok(match mode {
        "none" => AttributeRelease::Nothing,
        "all" => AttributeRelease::All,
        "only" => {
            let rules: Vec<String> = from_json("release rules", rules)?;
            AttributeRelease::Only(
                rules
                    .iter()
                    .map(|s| AttributeRule::parse(s))
                    .collect::<Result<_, _>>()
                    .map_err(|e| corrupt(e.to_string()))?,
            )
        }
        other => return Err(corrupt(format!("release mode {other}"))),
    })
}

/// The columns of a service that are not stored as they are: its release policy as a mode and a
/// JSON list of rules, and its requirements as a JSON list.
pub(crate) struct ServicePolicyColumns {
    /// `none`, `all` or `only`.
    pub(crate) release_mode: &'static str,
    /// JSON list of the `only` rules.
    pub(crate) release_rules: String,
    /// JSON list of the requirements.
    pub(crate) requirements: String,
}

impl ServicePolicyColumns {
    /// The policy columns of `s`.
    pub(crate) fn of(s: &RegisteredService) -> Self {
        let (release_mode, release_rules) = release_columns(&s.release);
        let requirements: Vec<String> = s.requirements.iter().map(ToString::to_string).collect();
        Self {
            release_mode,
            release_rules,
            requirements: to_json(&requirements),
        }
    }
}

/// The columns of `sessions`, in [`SessionRow`] order.
pub(crate) const SESSION_COLUMNS: &str =
    "id, tgt_key, username, attributes, authenticated_at, last_used_at, long_term, warn";

row! {
    #[derive(FromRow, PartialEq, Eq)]
    pub(crate) struct SessionRow {
        id: String,
        tgt_key: String,
        username: String,
        attributes: String,
        authenticated_at: i64,
        last_used_at: i64,
        long_term: bool,
        warn: bool,
    }
}

impl TryFrom<SessionRow> for SsoSession {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> StoreResult<Self> {
        Ok(Self {
            id: SessionId::from_stored(r.id),
            tgt: TicketKey::from_stored(r.tgt_key),
            username: r.username,
            attributes: from_json("session attributes", &r.attributes)?,
            authenticated_at: Timestamp::from_unix_millis(r.authenticated_at),
            last_used_at: Timestamp::from_unix_millis(r.last_used_at),
            long_term: r.long_term,
            warn: r.warn,
        })
    }
}

/// The columns of `service_tickets`, in [`ServiceTicketRow`] order.
pub(crate) const SERVICE_TICKET_COLUMNS: &str = "ticket_key, service, session_id, username, \
     attributes, from_new_login, long_term, authenticated_at, expires_at, proxies";

row! {
    /// A row of `service_tickets`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct ServiceTicketRow {
        ticket_key: String,
        service: String,
        session_id: String,
        username: String,
        attributes: String,
        from_new_login: bool,
        long_term: bool,
        authenticated_at: i64,
        expires_at: i64,
        proxies: String,
    }
}

impl TryFrom<ServiceTicketRow> for ServiceTicket {
    type Error = StoreError;
    fn try_from(r: ServiceTicketRow) -> StoreResult<Self> {
        Ok(Self {
            key: TicketKey::from_stored(r.ticket_key),
            service: ServiceUrl::parse(&r.service)
                .map_err(|e| StoreError::Corrupt(format!("ticket service: {e}")))?,
            session_id: SessionId::from_stored(r.session_id),
            username: r.username,
            attributes: from_json("ticket attributes", &r.attributes)?,
            from_new_login: r.from_new_login,
            long_term: r.long_term,
            authenticated_at: Timestamp::from_unix_millis(r.authenticated_at),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            proxies: from_json("ticket proxies", &r.proxies)?,
        })
    }
}

/// The columns of `proxy_granting_tickets`, in [`PgtRow`] order.
pub(crate) const PGT_COLUMNS: &str =
    "ticket_key, session_id, username, attributes, authenticated_at, long_term, proxies, expires_at";

row! {
    /// A row of `proxy_granting_tickets`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct PgtRow {
        ticket_key: String,
        session_id: String,
        username: String,
        attributes: String,
        authenticated_at: i64,
        long_term: bool,
        proxies: String,
        expires_at: i64,
    }
}

impl TryFrom<PgtRow> for ProxyGrantingTicket {
    type Error = StoreError;
    fn try_from(r: PgtRow) -> StoreResult<Self> {
        Ok(Self {
            key: TicketKey::from_stored(r.ticket_key),
            session_id: SessionId::from_stored(r.session_id),
            username: r.username,
            attributes: from_json("pgt attributes", &r.attributes)?,
            authenticated_at: Timestamp::from_unix_millis(r.authenticated_at),
            long_term: r.long_term,
            proxies: from_json("pgt proxies", &r.proxies)?,
            expires_at: Timestamp::from_unix_millis(r.expires_at),
        })
    }
}

row! {
    #[derive(FromRow, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct FailureRow {
        failures: i64,
        first_at: i64,
        last_at: i64,
    }
}

row! {
    /// A [`FailureRow`] with its throttle key, for a read of several keys.
    #[derive(FromRow)]
    pub(crate) struct KeyedFailureRow {
        throttle_key: String,
        #[sqlx(flatten)]
        failures: FailureRow,
    }
}

impl KeyedFailureRow {
    /// The failures of each of `keys`, in their order, from the rows found for them.
    pub(crate) fn in_order_of(
        keys: &[impl AsRef<str>],
        found: Vec<Self>,
    ) -> Vec<Option<LoginFailures>> {
        keys.iter()
            .map(|key| {
                found
                    .iter()
                    .find(|row| row.throttle_key == key.as_ref())
                    .map(|row| row.failures.into())
            })
            .collect()
    }
}

impl From<FailureRow> for LoginFailures {
    fn from(r: FailureRow) -> Self {
        Self {
            failures: u32::try_from(r.failures).unwrap_or(u32::MAX),
            first_at: Timestamp::from_unix_millis(r.first_at),
            last_at: Timestamp::from_unix_millis(r.last_at),
        }
    }
}

row! {
    /// A `session_services` row, as ending a session removes it.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct SessionAccessRow {
        session_id: String,
        service: String,
        ticket: String,
        validated_at: i64,
    }
}

row! {
    /// A client that held a grant of an ending session.
    #[derive(FromRow)]
    pub(crate) struct SessionClientRow {
        session_id: String,
        client_id: String,
    }
}

/// The ended sessions, each with the services it entered (by validation time) and the clients that
/// held a grant of it (by id).
pub(crate) fn ended_sessions(
    sessions: Vec<SessionRow>,
    accesses: &[SessionAccessRow],
    clients: &[SessionClientRow],
) -> StoreResult<Vec<EndedSession>> {
    sessions
        .into_iter()
        .map(|row| {
            let mut services: Vec<ServiceAccess> = accesses
                .iter()
                .filter(|a| a.session_id == row.id)
                .map(|a| ServiceAccess {
                    service: a.service.clone(),
                    ticket: a.ticket.clone(),
                    validated_at: Timestamp::from_unix_millis(a.validated_at),
                })
                .collect();
            services.sort_by_key(|a| a.validated_at);
            let mut clients: Vec<String> = clients
                .iter()
                .filter(|c| c.session_id == row.id)
                .map(|c| c.client_id.clone())
                .collect();
            clients.sort();
            clients.dedup();
            Ok(EndedSession {
                session: row.try_into()?,
                services,
                clients,
            })
        })
        .collect()
}

/// The columns of `slo_queue`, in [`SloRow`] order.
pub(crate) const SLO_COLUMNS: &str =
    "id, session_id, username, service, ticket, created_at, attempts, last_error, client_id";

row! {
    #[derive(FromRow, PartialEq, Eq)]
    pub(crate) struct SloRow {
        id: i64,
        session_id: String,
        username: String,
        service: String,
        ticket: String,
        created_at: i64,
        attempts: i64,
        last_error: Option<String>,
        client_id: Option<String>,
    }
}

impl From<SloRow> for SloDelivery {
    fn from(r: SloRow) -> Self {
        Self {
            id: r.id,
            session_id: SessionId::from_stored(r.session_id),
            username: r.username,
            service: r.service,
            ticket: r.ticket,
            created_at: Timestamp::from_unix_millis(r.created_at),
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            last_error: r.last_error,
            client_id: r.client_id,
        }
    }
}

// --- snapshots (`Store::export_all`, `Store::import_all`) -------------------------------------

/// Values an import binds in one statement at most (SQLite allows 32766, PostgreSQL 65535).
pub(crate) const MAX_BINDS: usize = 10_000;

/// One column value of a row, as an import binds it.
pub(crate) enum Cell<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
}

/// A group of columns a row type reads and writes back: its select list (matching its `FromRow`
/// derive, aliases allowed), the column names it writes, and its values in that order.
pub(crate) trait Columns {
    /// The select list.
    fn select() -> String;
    /// The column names, in [`Columns::values`] order (by default the select list).
    fn columns() -> String {
        Self::select()
    }
    /// Appends the row's values, in [`Columns::columns`] order.
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>);
}

/// A table a snapshot copies whole, with the row type of [`Columns`].
pub(crate) trait Table: Columns {
    /// The table.
    const NAME: &'static str;
    /// What the select reads from: the table, with the alias its select list uses if any.
    const FROM: &'static str = Self::NAME;
    /// The order of an export: the primary key.
    const ORDER: &'static str;

    /// `SELECT … FROM … ORDER BY …`
    fn select_all() -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            Self::select(),
            Self::FROM,
            Self::ORDER
        )
    }

    /// `INSERT INTO table (columns) ` (the VALUES follow).
    fn insert_into() -> String {
        format!("INSERT INTO {} ({}) ", Self::NAME, Self::columns())
    }

    /// The row's values, in column order.
    fn cells(&self) -> Vec<Cell<'_>> {
        let mut out = Vec::new();
        self.values(&mut out);
        out
    }
}

row! {
    /// A row of `users`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct StoredUser {
        #[sqlx(flatten)]
        user: UserRow,
        created_at: i64,
    }
}

impl Columns for UserRow {
    fn select() -> String {
        "username, password_hash, attributes".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.username),
            Cell::Text(&self.password_hash),
            Cell::Text(&self.attributes),
        ]);
    }
}

impl Columns for StoredUser {
    fn select() -> String {
        format!("{}, created_at", UserRow::select())
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        self.user.values(out);
        out.push(Cell::Int(self.created_at));
    }
}

impl Table for StoredUser {
    const NAME: &'static str = "users";
    const ORDER: &'static str = "username";
}

impl Columns for ServiceRow {
    fn select() -> String {
        SERVICE_COLUMNS.into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.name),
            Cell::Text(&self.pattern_kind),
            Cell::Text(&self.pattern),
            Cell::Bool(self.enabled),
            Cell::Text(&self.release_mode),
            Cell::Text(&self.release_rules),
            Cell::OptText(self.username_attribute.as_deref()),
            Cell::Text(&self.requirements),
            Cell::Bool(self.sso),
            Cell::OptText(self.logout_url.as_deref()),
            Cell::Text(&self.logout_type),
            Cell::OptText(self.proxy_callback_kind.as_deref()),
            Cell::OptText(self.proxy_callback.as_deref()),
            Cell::Bool(self.proxy_target),
            Cell::OptText(self.theme.as_deref()),
            Cell::OptText(self.description.as_deref()),
        ]);
    }
}

impl Table for ServiceRow {
    const NAME: &'static str = "services";
    const ORDER: &'static str = "name";
}

row! {
    /// A row of `sessions`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct StoredSession {
        #[sqlx(flatten)]
        session: SessionRow,
        expires_at: i64,
    }
}

impl Columns for SessionRow {
    fn select() -> String {
        SESSION_COLUMNS.into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.id),
            Cell::Text(&self.tgt_key),
            Cell::Text(&self.username),
            Cell::Text(&self.attributes),
            Cell::Int(self.authenticated_at),
            Cell::Int(self.last_used_at),
            Cell::Bool(self.long_term),
            Cell::Bool(self.warn),
        ]);
    }
}

impl Columns for StoredSession {
    fn select() -> String {
        format!("{}, expires_at", SessionRow::select())
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        self.session.values(out);
        out.push(Cell::Int(self.expires_at));
    }
}

impl Table for StoredSession {
    const NAME: &'static str = "sessions";
    const ORDER: &'static str = "id";
}

impl Columns for ServiceTicketRow {
    fn select() -> String {
        SERVICE_TICKET_COLUMNS.into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.ticket_key),
            Cell::Text(&self.service),
            Cell::Text(&self.session_id),
            Cell::Text(&self.username),
            Cell::Text(&self.attributes),
            Cell::Bool(self.from_new_login),
            Cell::Bool(self.long_term),
            Cell::Int(self.authenticated_at),
            Cell::Int(self.expires_at),
            Cell::Text(&self.proxies),
        ]);
    }
}

impl Table for ServiceTicketRow {
    const NAME: &'static str = "service_tickets";
    const ORDER: &'static str = "ticket_key";
}

impl Columns for SessionAccessRow {
    fn select() -> String {
        "session_id, service, ticket, validated_at".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.session_id),
            Cell::Text(&self.service),
            Cell::Text(&self.ticket),
            Cell::Int(self.validated_at),
        ]);
    }
}

impl Table for SessionAccessRow {
    const NAME: &'static str = "session_services";
    const ORDER: &'static str = "session_id, service";
}

impl Columns for PgtRow {
    fn select() -> String {
        PGT_COLUMNS.into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([
            Cell::Text(&self.ticket_key),
            Cell::Text(&self.session_id),
            Cell::Text(&self.username),
            Cell::Text(&self.attributes),
            Cell::Int(self.authenticated_at),
            Cell::Bool(self.long_term),
            Cell::Text(&self.proxies),
            Cell::Int(self.expires_at),
        ]);
    }
}

impl Table for PgtRow {
    const NAME: &'static str = "proxy_granting_tickets";
    const ORDER: &'static str = "ticket_key";
}

row! {
    /// A row of `login_tickets`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct LoginTicketRow {
        ticket_key: String,
        expires_at: i64,
    }
}

impl Columns for LoginTicketRow {
    fn select() -> String {
        "ticket_key, expires_at".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        out.extend([Cell::Text(&self.ticket_key), Cell::Int(self.expires_at)]);
    }
}

impl Table for LoginTicketRow {
    const NAME: &'static str = "login_tickets";
    const ORDER: &'static str = "ticket_key";
}

row! {
    /// A row of `login_failures`, as stored.
    #[derive(FromRow, PartialEq, Eq)]
    pub struct StoredLoginFailures {
        throttle_key: String,
        #[sqlx(flatten)]
        failures: FailureRow,
    }
}

impl Columns for StoredLoginFailures {
    fn select() -> String {
        "throttle_key, failures, first_at, last_at".into()
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        let f = &self.failures;
        out.extend([
            Cell::Text(&self.throttle_key),
            Cell::Int(f.failures),
            Cell::Int(f.first_at),
            Cell::Int(f.last_at),
        ]);
    }
}

impl Table for StoredLoginFailures {
    const NAME: &'static str = "login_failures";
    const ORDER: &'static str = "throttle_key";
}

row! {
    /// A row of `slo_queue`, as stored (its id included).
    #[derive(FromRow, PartialEq, Eq)]
    pub struct StoredSloDelivery {
        #[sqlx(flatten)]
        delivery: SloRow,
        due_at: i64,
        claimed_until: i64,
    }
}

impl Columns for StoredSloDelivery {
    fn select() -> String {
        format!("{SLO_COLUMNS}, due_at, claimed_until")
    }
    fn values<'a>(&'a self, out: &mut Vec<Cell<'a>>) {
        let d = &self.delivery;
        out.extend([
            Cell::Int(d.id),
            Cell::Text(&d.session_id),
            Cell::Text(&d.username),
            Cell::Text(&d.service),
            Cell::Text(&d.ticket),
            Cell::Int(d.created_at),
            Cell::Int(d.attempts),
            Cell::OptText(d.last_error.as_deref()),
            Cell::OptText(d.client_id.as_deref()),
            Cell::Int(self.due_at),
            Cell::Int(self.claimed_until),
        ]);
    }
}

impl Table for StoredSloDelivery {
    const NAME: &'static str = "slo_queue";
    const ORDER: &'static str = "id";
}
