//! The SQLite backend: the embedded default. WAL mode with `synchronous = FULL`, so a committed ticket
//! survives a crash of the process or the machine; `DELETE … RETURNING` makes every take atomic.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};
use tessera_protocol::cas::proxy::ProxyGrantingTicket;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::service::{
    AttributeRelease, AttributeRule, LogoutType, RegisteredService, Requirement, ServiceOrigin,
    ServicePattern, ServiceUrl,
};
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::{Attributes, Timestamp};

use crate::{
    EndedSession, LoginFailures, ServiceAccess, SloDelivery, Store, StoreError, StoreResult,
    UserRecord,
};

/// A store in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) and migrates the database at `url`
    /// (`sqlite://path/to/file.db`).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| bad("expected sqlite://PATH"))?;
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(bad("no file path after sqlite://"));
        }
        if path != ":memory:" {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| bad(&format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| bad(&e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

fn ts(t: Timestamp) -> i64 {
    t.unix_millis()
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[derive(FromRow)]
struct UserRow {
    username: String,
    password_hash: String,
    attributes: String,
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

#[derive(FromRow)]
struct ServiceRow {
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
}

impl TryFrom<ServiceRow> for RegisteredService {
    type Error = StoreError;
    fn try_from(r: ServiceRow) -> StoreResult<Self> {
        let corrupt = |e: tessera_protocol::service::PatternError| {
            StoreError::Corrupt(format!("service {}: {e}", r.name))
        };
        let pattern = ServicePattern::from_parts(&r.pattern_kind, &r.pattern).map_err(corrupt)?;
        let rules: Vec<String> = from_json("release rules", &r.release_rules)?;
        let release = match r.release_mode.as_str() {
            "none" => AttributeRelease::Nothing,
            "all" => AttributeRelease::All,
            "only" => AttributeRelease::Only(
                rules
                    .iter()
                    .map(|s| AttributeRule::parse(s))
                    .collect::<Result<_, _>>()
                    .map_err(corrupt)?,
            ),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "service {}: release mode {other}",
                    r.name
                )))
            }
        };
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
        Ok(service)
    }
}

#[derive(FromRow)]
struct SessionRow {
    id: String,
    tgt_key: String,
    username: String,
    attributes: String,
    authenticated_at: i64,
    last_used_at: i64,
    long_term: bool,
    warn: bool,
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

#[derive(FromRow)]
struct ServiceTicketRow {
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

#[derive(FromRow)]
struct PgtRow {
    ticket_key: String,
    session_id: String,
    username: String,
    attributes: String,
    authenticated_at: i64,
    long_term: bool,
    proxies: String,
    expires_at: i64,
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

#[derive(FromRow)]
struct AccessRow {
    service: String,
    ticket: String,
    validated_at: i64,
}

impl From<AccessRow> for ServiceAccess {
    fn from(r: AccessRow) -> Self {
        Self {
            service: r.service,
            ticket: r.ticket,
            validated_at: Timestamp::from_unix_millis(r.validated_at),
        }
    }
}

#[derive(FromRow)]
struct FailureRow {
    failures: i64,
    first_at: i64,
    last_at: i64,
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

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

const SESSION_COLUMNS: &str =
    "id, tgt_key, username, attributes, authenticated_at, last_used_at, long_term, warn";

#[async_trait]
impl Store for SqliteStore {
    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query_as::<_, UserRow>(
            "SELECT username, password_hash, attributes FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .map(UserRecord::try_from)
        .transpose()
    }

    async fn put_user(&self, user: &UserRecord, now: Timestamp) -> StoreResult<()> {
        sqlx::query("INSERT INTO users (username, password_hash, attributes, created_at) VALUES (?, ?, ?, ?)")
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(to_json(&user.attributes))
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(format!("user {}", user.username)) } else { e.into() })?;
        Ok(())
    }

    async fn put_password_hash(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE username = ?")
            .bind(password_hash)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_user_attributes(
        &self,
        username: &str,
        attributes: &Attributes,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET attributes = ? WHERE username = ?")
            .bind(to_json(attributes))
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, username: &str, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        end_sessions(&mut tx, Ended::OfUser(username), now).await?;
        let done = sqlx::query("DELETE FROM users WHERE username = ?")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        sqlx::query_as::<_, UserRow>(
            "SELECT username, password_hash, attributes FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(UserRecord::try_from)
        .collect()
    }

    async fn list_services(&self) -> StoreResult<Vec<RegisteredService>> {
        sqlx::query_as::<_, ServiceRow>(
            "SELECT name, pattern_kind, pattern, enabled, release_mode, release_rules, username_attribute, \
             requirements, sso, logout_url, logout_type, proxy_callback_kind, proxy_callback, proxy_target FROM services ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(RegisteredService::try_from)
        .collect()
    }

    async fn put_service(&self, s: &RegisteredService) -> StoreResult<()> {
        let (mode, rules): (&str, Vec<String>) = match &s.release {
            AttributeRelease::Nothing => ("none", vec![]),
            AttributeRelease::All => ("all", vec![]),
            AttributeRelease::Only(rules) => {
                ("only", rules.iter().map(ToString::to_string).collect())
            }
        };
        let requirements: Vec<String> = s.requirements.iter().map(ToString::to_string).collect();
        sqlx::query(
            "INSERT INTO services (name, pattern_kind, pattern, enabled, release_mode, release_rules, \
             username_attribute, requirements, sso, logout_url, logout_type, proxy_callback_kind, proxy_callback, proxy_target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.name)
        .bind(s.pattern.kind())
        .bind(s.pattern.source())
        .bind(s.enabled)
        .bind(mode)
        .bind(to_json(&rules))
        .bind(&s.username_attribute)
        .bind(to_json(&requirements))
        .bind(s.sso)
        .bind(&s.logout_url)
        .bind(s.logout_type.as_str())
        .bind(s.proxy_callback.as_ref().map(ServicePattern::kind))
        .bind(s.proxy_callback.as_ref().map(|p| p.source().to_owned()))
        .bind(s.proxy_target)
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(format!("service {}", s.name)) } else { e.into() })?;
        Ok(())
    }

    async fn delete_service(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM services WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_session(&self, s: &SsoSession, expires_at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, tgt_key, username, attributes, authenticated_at, last_used_at, long_term, \
             warn, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id.as_str())
        .bind(s.tgt.as_str())
        .bind(&s.username)
        .bind(to_json(&s.attributes))
        .bind(ts(s.authenticated_at))
        .bind(ts(s.last_used_at))
        .bind(s.long_term)
        .bind(s.warn)
        .bind(ts(expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(&self, tgt: &TicketKey) -> StoreResult<Option<SsoSession>> {
        sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tgt_key = ?"
        ))
        .bind(tgt.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(SsoSession::try_from)
        .transpose()
    }

    async fn touch_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE id = ?")
            .bind(ts(now))
            .bind(ts(expires_at))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_session(
        &self,
        tgt: &TicketKey,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>> {
        let mut tx = self.pool.begin().await?;
        let ended = end_sessions(&mut tx, Ended::Tgt(tgt.as_str()), now).await?;
        tx.commit().await?;
        Ok(ended.into_iter().next())
    }

    async fn take_session_by_id(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>> {
        let mut tx = self.pool.begin().await?;
        let ended = end_sessions(&mut tx, Ended::Id(id.as_str()), now).await?;
        tx.commit().await?;
        Ok(ended.into_iter().next())
    }

    async fn list_sessions(&self, username: Option<&str>) -> StoreResult<Vec<SsoSession>> {
        sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE (?1 IS NULL OR username = ?1) ORDER BY authenticated_at"
        ))
        .bind(username)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(SsoSession::try_from)
        .collect()
    }

    async fn put_service_ticket(&self, t: &ServiceTicket) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO service_tickets (ticket_key, service, session_id, username, attributes, from_new_login, \
             long_term, authenticated_at, expires_at, proxies) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(t.key.as_str())
        .bind(t.service.as_str())
        .bind(t.session_id.as_str())
        .bind(&t.username)
        .bind(to_json(&t.attributes))
        .bind(t.from_new_login)
        .bind(t.long_term)
        .bind(ts(t.authenticated_at))
        .bind(ts(t.expires_at))
        .bind(to_json(&t.proxies))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_service_ticket(&self, key: &TicketKey) -> StoreResult<Option<ServiceTicket>> {
        sqlx::query_as::<_, ServiceTicketRow>(
            "DELETE FROM service_tickets WHERE ticket_key = ? RETURNING ticket_key, service, session_id, username, \
             attributes, from_new_login, long_term, authenticated_at, expires_at, proxies",
        )
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(ServiceTicket::try_from)
        .transpose()
    }

    async fn put_service_access(&self, session: &SessionId, a: &ServiceAccess) -> StoreResult<()> {
        // INSERT … SELECT: nothing is written for a session that has ended meanwhile.
        sqlx::query(
            "INSERT INTO session_services (session_id, service, ticket, validated_at) \
             SELECT id, ?, ?, ? FROM sessions WHERE id = ? \
             ON CONFLICT (session_id, service) DO UPDATE SET ticket = excluded.ticket, validated_at = excluded.validated_at",
        )
        .bind(&a.service)
        .bind(&a.ticket)
        .bind(ts(a.validated_at))
        .bind(session.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn put_proxy_granting_ticket(&self, p: &ProxyGrantingTicket) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO proxy_granting_tickets (ticket_key, session_id, username, attributes, authenticated_at, \
             long_term, proxies, expires_at) SELECT ?, id, ?, ?, ?, ?, ?, ? FROM sessions WHERE id = ?",
        )
        .bind(p.key.as_str())
        .bind(&p.username)
        .bind(to_json(&p.attributes))
        .bind(ts(p.authenticated_at))
        .bind(p.long_term)
        .bind(to_json(&p.proxies))
        .bind(ts(p.expires_at))
        .bind(p.session_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_proxy_granting_ticket(
        &self,
        key: &TicketKey,
    ) -> StoreResult<Option<ProxyGrantingTicket>> {
        sqlx::query_as::<_, PgtRow>(
            "SELECT ticket_key, session_id, username, attributes, authenticated_at, long_term, proxies, expires_at \
             FROM proxy_granting_tickets WHERE ticket_key = ?",
        )
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(ProxyGrantingTicket::try_from)
        .transpose()
    }

    async fn put_login_ticket(&self, key: &TicketKey, expires_at: Timestamp) -> StoreResult<()> {
        sqlx::query("INSERT INTO login_tickets (ticket_key, expires_at) VALUES (?, ?)")
            .bind(key.as_str())
            .bind(ts(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_login_ticket(&self, key: &TicketKey, now: Timestamp) -> StoreResult<bool> {
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM login_tickets WHERE ticket_key = ? RETURNING expires_at",
        )
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(expires_at.is_some_and(|e| e > ts(now)))
    }

    async fn get_login_failures(&self, key: &str) -> StoreResult<Option<LoginFailures>> {
        Ok(sqlx::query_as::<_, FailureRow>(
            "SELECT failures, first_at, last_at FROM login_failures WHERE throttle_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .map(Into::into))
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<LoginFailures> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let row = sqlx::query_as::<_, FailureRow>(
            "INSERT INTO login_failures (throttle_key, failures, first_at, last_at) VALUES (?1, 1, ?2, ?2) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN ?2 - last_at > ?3 THEN 1 ELSE failures + 1 END, \
               first_at = CASE WHEN ?2 - last_at > ?3 THEN ?2 ELSE first_at END, \
               last_at = ?2 \
             RETURNING failures, first_at, last_at",
        )
        .bind(key)
        .bind(ts(now))
        .bind(window_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn delete_login_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE throttle_key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_slo_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<SloDelivery>> {
        // One statement: of two nodes claiming at once, each row goes to one of them.
        sqlx::query_as::<_, SloRow>(
            "UPDATE slo_queue SET claimed_until = ?1, attempts = attempts + 1 WHERE id IN \
             (SELECT id FROM slo_queue WHERE due_at <= ?2 AND claimed_until <= ?2 ORDER BY due_at, id LIMIT ?3) \
             RETURNING id, session_id, username, service, ticket, created_at, attempts, last_error",
        )
        .bind(ts(now.plus(lease)))
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map(|rows| rows.into_iter().map(Into::into).collect())
        .map_err(Into::into)
    }

    async fn delete_slo_delivery(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM slo_queue WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn retry_slo_delivery(&self, id: i64, due_at: Timestamp, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE slo_queue SET due_at = ?, claimed_until = 0, last_error = ? WHERE id = ?",
        )
        .bind(ts(due_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_slo_deliveries(&self) -> StoreResult<Vec<SloDelivery>> {
        Ok(sqlx::query_as::<_, SloRow>(
            "SELECT id, session_id, username, service, ticket, created_at, attempts, last_error FROM slo_queue ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    async fn delete_expired(&self, now: Timestamp, failure_window: Duration) -> StoreResult<u64> {
        let window_ms = i64::try_from(failure_window.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        let mut n = u64::try_from(
            end_sessions(&mut tx, Ended::ExpiredBy(ts(now)), now)
                .await?
                .len(),
        )
        .unwrap_or(u64::MAX);
        for (sql, cutoff) in [
            ("DELETE FROM service_tickets WHERE expires_at <= ?", ts(now)),
            (
                "DELETE FROM proxy_granting_tickets WHERE expires_at <= ?",
                ts(now),
            ),
            ("DELETE FROM login_tickets WHERE expires_at <= ?", ts(now)),
            (
                "DELETE FROM login_failures WHERE last_at <= ?",
                ts(now).saturating_sub(window_ms),
            ),
        ] {
            n += sqlx::query(sql)
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// Which sessions [`end_sessions`] ends.
#[derive(Clone, Copy)]
enum Ended<'a> {
    Tgt(&'a str),
    Id(&'a str),
    OfUser(&'a str),
    ExpiredBy(i64),
}

impl Ended<'_> {
    /// The condition on `sessions`, with one `?` parameter.
    fn condition(self) -> &'static str {
        match self {
            Self::Tgt(_) => "tgt_key = ?",
            Self::Id(_) => "id = ?",
            Self::OfUser(_) => "username = ?",
            Self::ExpiredBy(_) => "expires_at <= ?",
        }
    }

    fn bind<'q, O>(
        self,
        q: sqlx::query::QueryAs<'q, sqlx::Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, O, sqlx::sqlite::SqliteArguments<'q>>
    where
        Self: 'q,
    {
        match self {
            Self::Tgt(v) | Self::Id(v) | Self::OfUser(v) => q.bind(v),
            Self::ExpiredBy(t) => q.bind(t),
        }
    }
}

/// Ends the selected sessions inside `tx`: their services move to the single-logout queue (due
/// `now`), their unvalidated tickets go with them (foreign key cascade), and they are returned.
/// The first statement writes, so SQLite takes the write lock before anything is read.
async fn end_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    which: Ended<'_>,
    now: Timestamp,
) -> StoreResult<Vec<EndedSession>> {
    let cond = which.condition();
    let queued = format!(
        "INSERT INTO slo_queue (session_id, username, service, ticket, created_at, due_at) \
         SELECT ss.session_id, s.username, ss.service, ss.ticket, ?, ? \
         FROM session_services ss JOIN sessions s ON s.id = ss.session_id WHERE s.{cond} RETURNING id"
    );
    which
        .bind(
            sqlx::query_as::<_, (i64,)>(&queued)
                .bind(ts(now))
                .bind(ts(now)),
        )
        .fetch_all(&mut **tx)
        .await?;
    let accesses = format!(
        "DELETE FROM session_services WHERE session_id IN (SELECT id FROM sessions WHERE {cond}) \
         RETURNING session_id, service, ticket, validated_at"
    );
    let accesses: Vec<SessionAccessRow> = which
        .bind(sqlx::query_as(&accesses))
        .fetch_all(&mut **tx)
        .await?;
    let sessions = format!("DELETE FROM sessions WHERE {cond} RETURNING {SESSION_COLUMNS}");
    let sessions: Vec<SessionRow> = which
        .bind(sqlx::query_as(&sessions))
        .fetch_all(&mut **tx)
        .await?;
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
            Ok(EndedSession {
                session: row.try_into()?,
                services,
            })
        })
        .collect()
}

#[derive(FromRow)]
struct SessionAccessRow {
    session_id: String,
    service: String,
    ticket: String,
    validated_at: i64,
}

#[derive(FromRow)]
struct SloRow {
    id: i64,
    session_id: String,
    username: String,
    service: String,
    ticket: String,
    created_at: i64,
    attempts: i64,
    last_error: Option<String>,
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
        }
    }
}
