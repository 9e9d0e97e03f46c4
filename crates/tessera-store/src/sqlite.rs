//! The SQLite backend: the embedded default. WAL mode, and every write is on disk (the WAL file
//! `fsync`ed) before the call returns, so a ticket that was handed out survives a crash of the
//! process or the machine; `DELETE … RETURNING` makes every take atomic. The one exception is the
//! single-logout record of a validation ([`Store::put_service_access`]), committed before the call
//! returns and `fsync`ed just after.
//!
//! Durability is a group commit: SQLite commits without syncing (`synchronous = NORMAL`, which in
//! WAL mode keeps the database consistent but not durable), and each write then waits for an
//! `fsync` of the WAL file that started after its commit. One `fsync` covers every commit made
//! before it began, so under load many writes share one, where `synchronous = FULL` paid one per
//! commit, one commit at a time.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tessera_protocol::cas::proxy::ProxyGrantingTicket;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::oidc::grant::{parse_scope, scope_string};
use tessera_protocol::oidc::{AccessToken, AuthorizationCode, Grant, OidcClient, RefreshToken};
use tessera_protocol::service::{RegisteredService, ServicePattern};
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::{Attributes, Timestamp};

use crate::oidc_rows::{
    ts_opt, AccessRow, ClientColumns, ClientRow, CodeRow, KeyRow, RefreshRow, CLIENT_COLUMNS,
    CODE_COLUMNS, GRANT_COLUMNS, KEY_COLUMNS,
};
use crate::rows::{
    conflict_as, ended_sessions, is_unique_violation, to_json, ts, FailureRow, PgtRow,
    ServicePolicyColumns, ServiceRow, ServiceTicketRow, SessionAccessRow, SessionClientRow,
    SessionRow, SloRow, UserRow, SESSION_COLUMNS, SLO_COLUMNS,
};
use crate::rows::{Cell, Table, MAX_BINDS};
use crate::snapshot::{
    count_rows_sql, refuse_unless_empty, snapshot_tables, ImportCounts, Snapshot,
};
use crate::{
    CodeRedemption, EndedSession, LoginFailures, PoolUsage, ServiceAccess, SessionTouch,
    SigningKeyRecord, SloDelivery, Store, StoreError, StoreResult, UserRecord,
};

/// A store in one SQLite database file.
///
/// Reads go to a pool of connections; every write goes through one writer connection. SQLite lets
/// one writer in at a time anyway: with writes spread over the pool, the losers of that race slept
/// in SQLite's busy handler (a millisecond and more each time), while queueing for the one writer
/// connection costs nothing but the wait for the commit in front.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// `pool` and `writer` are the same pool (an in-memory database).
    shared: bool,
    wal: Arc<WalSync>,
}

/// The group commit of the WAL file (see the module documentation).
#[derive(Debug)]
struct WalSync {
    /// The `-wal` file; `None` for an in-memory database, which has nothing to make durable.
    path: Option<PathBuf>,
    /// Writes finished (committed or failed), numbered from 1.
    finished: AtomicU64,
    /// Every write numbered up to this one is on disk.
    synced: AtomicU64,
    /// `fsync`s made (fewer than writes under load: that is the point).
    fsyncs: AtomicU64,
    /// One `fsync` at a time; the writes waiting here are those the running one may not cover.
    turn: tokio::sync::Mutex<()>,
}

impl WalSync {
    fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            finished: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns once everything committed before this call is on disk.
    async fn after_write(&self) -> StoreResult<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mine = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.turn.lock().await;
        if self.synced.load(Ordering::SeqCst) >= mine {
            return Ok(()); // an fsync that began after our commit has finished
        }
        // Every write numbered up to `upto` has committed: the fsync below covers them all.
        let upto = self.finished.load(Ordering::SeqCst);
        let path = path.clone();
        tokio::task::spawn_blocking(move || sync_wal(&path))
            .await
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(e)))?
            .map_err(sqlx::Error::Io)?;
        self.synced.fetch_max(upto, Ordering::SeqCst);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// `fsync`s the WAL file, opened anew each time: SQLite deletes it when its last connection closes
/// (after checkpointing it into the database file, synced) and makes a new one later. No WAL file
/// means every commit is already in the synced database file.
fn sync_wal(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
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
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // A connection to a local file cannot go stale: sqlx's default check before handing one
        // out (a round trip to the connection's thread on every acquire) buys nothing here.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // An in-memory database lives in its connections: readers and writer must share them.
        let shared = path == ":memory:";
        let pool = if shared {
            writer.clone()
        } else {
            // A few readers: more only added threads for the two cores to switch between.
            SqlitePoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_with(options)
                .await?
        };
        let wal = WalSync::new((!shared).then(|| PathBuf::from(format!("{path}-wal"))));
        Ok(Self {
            pool,
            writer,
            shared,
            wal: Arc::new(wal),
        })
    }
}

impl SqliteStore {
    /// `result` of a write, returned once the write is on disk (whether it succeeded or not:
    /// a failed call may still have committed part of its work).
    async fn durable<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        self.wal.after_write().await?;
        result
    }

    /// Runs `write` (one statement, in a transaction of its own), or with a `touch`, runs it and
    /// the touch of session `session_id` in one transaction.
    async fn execute_touching<'q>(
        &self,
        write: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        session_id: &str,
        touch: Option<SessionTouch>,
    ) -> StoreResult<()> {
        let Some(touch) = touch else {
            write.execute(&self.writer).await?;
            return Ok(());
        };
        let mut tx = self.writer.begin().await?;
        write.execute(&mut *tx).await?;
        touch_in(&mut tx, session_id, touch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `result` of a write that no client is handed anything for, returned as soon as it is
    /// committed: it survives the process being killed at once, and the `fsync` that makes it
    /// survive a power cut too runs in the background (milliseconds later) instead of on the
    /// caller's time.
    fn durable_soon<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        let wal = self.wal.clone();
        tokio::spawn(async move {
            if let Err(e) = wal.after_write().await {
                tracing::error!(error = %e, "could not sync the SQLite write-ahead log");
            }
        });
        result
    }

    /// [`durable`](Self::durable), except that a call which `wrote_nothing` (a take that found no
    /// row, a claim that matched none) returns at once: a guessed ticket or an idle poll costs no
    /// `fsync`.
    async fn durable_unless<T>(
        &self,
        result: StoreResult<T>,
        wrote_nothing: impl FnOnce(&T) -> bool,
    ) -> StoreResult<T> {
        if result.as_ref().is_ok_and(wrote_nothing) {
            return result;
        }
        self.durable(result).await
    }
}

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
        let result: StoreResult<()> = async {
            sqlx::query("INSERT INTO users (username, password_hash, attributes, created_at) VALUES (?, ?, ?, ?)")
                .bind(&user.username)
                .bind(&user.password_hash)
                .bind(to_json(&user.attributes))
                .bind(ts(now))
                .execute(&self.writer)
                .await
                .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(format!("user {}", user.username)) } else { e.into() })?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn put_password_hash(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let done = sqlx::query("UPDATE users SET password_hash = ? WHERE username = ?")
                .bind(password_hash)
                .bind(username)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
    }

    async fn put_user_attributes(
        &self,
        username: &str,
        attributes: &Attributes,
    ) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let done = sqlx::query("UPDATE users SET attributes = ? WHERE username = ?")
                .bind(to_json(attributes))
                .bind(username)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
    }

    async fn delete_user(&self, username: &str, now: Timestamp) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let mut tx = self.writer.begin().await?;
            end_sessions(&mut tx, Ended::OfUser(username), now).await?;
            let done = sqlx::query("DELETE FROM users WHERE username = ?")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
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
             requirements, sso, logout_url, logout_type, proxy_callback_kind, proxy_callback, proxy_target, theme, description \
             FROM services ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(RegisteredService::try_from)
        .collect()
    }

    async fn put_service(&self, s: &RegisteredService) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            let policy = ServicePolicyColumns::of(s);
            sqlx::query(
                "INSERT INTO services (name, pattern_kind, pattern, enabled, release_mode, release_rules, \
                 username_attribute, requirements, sso, logout_url, logout_type, proxy_callback_kind, proxy_callback, proxy_target, \
                 theme, description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.name)
            .bind(s.pattern.kind())
            .bind(s.pattern.source())
            .bind(s.enabled)
            .bind(policy.release_mode)
            .bind(&policy.release_rules)
            .bind(&s.username_attribute)
            .bind(&policy.requirements)
            .bind(s.sso)
            .bind(&s.logout_url)
            .bind(s.logout_type.as_str())
            .bind(s.proxy_callback.as_ref().map(ServicePattern::kind))
            .bind(s.proxy_callback.as_ref().map(|p| p.source().to_owned()))
            .bind(s.proxy_target)
            .bind(&s.theme)
            .bind(&s.description)
            .execute(&self.writer)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(format!("service {}", s.name)) } else { e.into() })?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn delete_service(&self, name: &str) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let done = sqlx::query("DELETE FROM services WHERE name = ?")
                .bind(name)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
    }

    async fn put_session(&self, s: &SsoSession, expires_at: Timestamp) -> StoreResult<()> {
        let result: StoreResult<()> = async {
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
            .execute(&self.writer)
            .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
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
        let result: StoreResult<()> = async {
            let mut conn = self.writer.acquire().await?;
            let touch = SessionTouch {
                at: now,
                expires_at,
            };
            touch_in(&mut conn, id.as_str(), touch).await
        }
        .await;
        self.durable(result).await
    }

    async fn take_session(
        &self,
        tgt: &TicketKey,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>> {
        let result: StoreResult<Option<EndedSession>> = async {
            let mut tx = self.writer.begin().await?;
            let ended = end_sessions(&mut tx, Ended::Tgt(tgt.as_str()), now).await?;
            tx.commit().await?;
            Ok(ended.into_iter().next())
        }
        .await;
        self.durable(result).await
    }

    async fn take_session_by_id(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>> {
        let result: StoreResult<Option<EndedSession>> = async {
            let mut tx = self.writer.begin().await?;
            let ended = end_sessions(&mut tx, Ended::Id(id.as_str()), now).await?;
            tx.commit().await?;
            Ok(ended.into_iter().next())
        }
        .await;
        self.durable(result).await
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

    async fn put_service_ticket(
        &self,
        t: &ServiceTicket,
        touch: Option<SessionTouch>,
    ) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            let insert = sqlx::query(
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
            .bind(to_json(&t.proxies));
            self.execute_touching(insert, t.session_id.as_str(), touch).await
        }
        .await;
        self.durable(result).await
    }

    async fn take_service_ticket(&self, key: &TicketKey) -> StoreResult<Option<ServiceTicket>> {
        let result: StoreResult<Option<ServiceTicket>> = async {
            sqlx::query_as::<_, ServiceTicketRow>(
                "DELETE FROM service_tickets WHERE ticket_key = ? RETURNING ticket_key, service, session_id, username, \
                 attributes, from_new_login, long_term, authenticated_at, expires_at, proxies",
            )
            .bind(key.as_str())
            .fetch_optional(&self.writer)
            .await?
            .map(ServiceTicket::try_from)
            .transpose()
        }
        .await;
        self.durable_unless(result, Option::is_none).await
    }

    async fn put_service_access(&self, session: &SessionId, a: &ServiceAccess) -> StoreResult<()> {
        let result: StoreResult<()> = async {
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
            .execute(&self.writer)
            .await?;
            Ok(())
        }
        .await;
        // What single logout needs; the ticket's holder was answered by then either way.
        self.durable_soon(result)
    }

    async fn put_proxy_granting_ticket(&self, p: &ProxyGrantingTicket) -> StoreResult<()> {
        let result: StoreResult<()> = async {
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
            .execute(&self.writer)
            .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
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
        let result: StoreResult<()> = async {
            sqlx::query("INSERT INTO login_tickets (ticket_key, expires_at) VALUES (?, ?)")
                .bind(key.as_str())
                .bind(ts(expires_at))
                .execute(&self.writer)
                .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn take_login_ticket(&self, key: &TicketKey, now: Timestamp) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let expires_at: Option<i64> = sqlx::query_scalar(
                "DELETE FROM login_tickets WHERE ticket_key = ? RETURNING expires_at",
            )
            .bind(key.as_str())
            .fetch_optional(&self.writer)
            .await?;
            Ok(expires_at.is_some_and(|e| e > ts(now)))
        }
        .await;
        self.durable(result).await
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
        let result: StoreResult<LoginFailures> = async {
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
            .fetch_one(&self.writer)
            .await?;
            Ok(row.into())
        }
        .await;
        self.durable(result).await
    }

    async fn delete_login_failures(&self, key: &str) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            sqlx::query("DELETE FROM login_failures WHERE throttle_key = ?")
                .bind(key)
                .execute(&self.writer)
                .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn claim_slo_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<SloDelivery>> {
        let result: StoreResult<Vec<SloDelivery>> = async {
            // One statement: of two nodes claiming at once, each row goes to one of them.
            sqlx::query_as::<_, SloRow>(&format!(
                "UPDATE slo_queue SET claimed_until = ?1, attempts = attempts + 1 WHERE id IN \
                 (SELECT id FROM slo_queue WHERE due_at <= ?2 AND claimed_until <= ?2 ORDER BY due_at, id LIMIT ?3) \
                 RETURNING {SLO_COLUMNS}",
            ))
            .bind(ts(now.plus(lease)))
            .bind(ts(now))
            .bind(i64::from(limit))
            .fetch_all(&self.writer)
            .await
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .map_err(Into::into)
        }
        .await;
        self.durable_unless(result, Vec::is_empty).await
    }

    async fn delete_slo_delivery(&self, id: i64) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            sqlx::query("DELETE FROM slo_queue WHERE id = ?")
                .bind(id)
                .execute(&self.writer)
                .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn retry_slo_delivery(&self, id: i64, due_at: Timestamp, error: &str) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            sqlx::query(
                "UPDATE slo_queue SET due_at = ?, claimed_until = 0, last_error = ? WHERE id = ?",
            )
            .bind(ts(due_at))
            .bind(error)
            .bind(id)
            .execute(&self.writer)
            .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn list_slo_deliveries(&self) -> StoreResult<Vec<SloDelivery>> {
        Ok(sqlx::query_as::<_, SloRow>(
            &format!("SELECT {SLO_COLUMNS} FROM slo_queue ORDER BY id",),
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>> {
        sqlx::query_as::<_, ClientRow>(&format!(
            "SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(OidcClient::try_from)
        .collect()
    }

    async fn put_client(&self, c: &OidcClient) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            let cols = ClientColumns::of(c);
            sqlx::query(&format!(
                "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&c.id)
            .bind(&c.name)
            .bind(cols.secret_sha256)
            .bind(cols.redirect_uris)
            .bind(cols.post_logout_redirect_uris)
            .bind(cols.scopes)
            .bind(&c.backchannel_logout_uri)
            .bind(c.signing_alg.as_str())
            .bind(c.consent)
            .bind(cols.release_mode)
            .bind(cols.release_rules)
            .bind(c.enabled)
            .execute(&self.writer)
            .await
            .map_err(conflict_as(|| format!("client {}", c.id)))?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let mut tx = self.writer.begin().await?;
            let done = sqlx::query("DELETE FROM oidc_clients WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for sql in [
                "DELETE FROM oidc_grants WHERE client_id = ?",
                "DELETE FROM oidc_codes WHERE client_id = ?",
                "DELETE FROM oidc_consents WHERE client_id = ?",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
    }

    async fn put_authorization_code(
        &self,
        c: &AuthorizationCode,
        touch: Option<SessionTouch>,
    ) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            let insert = sqlx::query(
                "INSERT INTO oidc_codes (code_key, client_id, redirect_uri, scope, nonce, code_challenge, \
                 session_id, username, attributes, auth_time, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.key.as_str())
            .bind(&c.client_id)
            .bind(&c.redirect_uri)
            .bind(scope_string(&c.scope))
            .bind(&c.nonce)
            .bind(&c.code_challenge)
            .bind(c.session_id.as_str())
            .bind(&c.username)
            .bind(to_json(&c.attributes))
            .bind(ts(c.auth_time))
            .bind(ts(c.expires_at));
            self.execute_touching(insert, c.session_id.as_str(), touch).await
        }
        .await;
        self.durable(result).await
    }

    async fn redeem_authorization_code(
        &self,
        key: &TicketKey,
        grant_id: &str,
    ) -> StoreResult<CodeRedemption> {
        let result: StoreResult<CodeRedemption> = async {
            // The conditional update is the compare-and-set: of two redemptions, one binds the code.
            let mut tx = self.writer.begin().await?;
            let fresh = sqlx::query_as::<_, CodeRow>(&format!(
                "UPDATE oidc_codes SET grant_id = ? WHERE code_key = ? AND grant_id IS NULL RETURNING {CODE_COLUMNS}"
            ))
            .bind(grant_id)
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = if let Some(row) = fresh {
                CodeRedemption::Redeemed(Box::new(row.try_into()?))
            } else {
                let earlier: Option<Option<String>> =
                    sqlx::query_scalar("SELECT grant_id FROM oidc_codes WHERE code_key = ?")
                        .bind(key.as_str())
                        .fetch_optional(&mut *tx)
                        .await?;
                match earlier {
                    None => CodeRedemption::Unknown,
                    Some(earlier) => {
                        if let Some(earlier) = earlier {
                            sqlx::query("DELETE FROM oidc_grants WHERE id = ?")
                                .bind(earlier)
                                .execute(&mut *tx)
                                .await?;
                        }
                        CodeRedemption::Replayed
                    }
                }
            };
            tx.commit().await?;
            Ok(outcome)
        }
        .await;
        self.durable(result).await
    }

    async fn put_grant(
        &self,
        g: &Grant,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let mut tx = self.writer.begin().await?;
            // INSERT … SELECT: nothing is written for a session that has ended meanwhile.
            let done = sqlx::query(
                "INSERT INTO oidc_grants (id, client_id, session_id, username, attributes, scope, auth_time, \
                 backchannel_logout_uri, created_at) SELECT ?, ?, id, ?, ?, ?, ?, ?, ? FROM sessions WHERE id = ?",
            )
            .bind(&g.id)
            .bind(&g.client_id)
            .bind(&g.username)
            .bind(to_json(&g.attributes))
            .bind(scope_string(&g.scope))
            .bind(ts(g.auth_time))
            .bind(&g.backchannel_logout_uri)
            .bind(ts(g.created_at))
            .bind(g.session_id.as_str())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_tokens(&mut tx, access, refresh).await?;
            tx.commit().await?;
            Ok(true)
        }
        .await;
        self.durable(result).await
    }

    async fn get_access_token(&self, key: &TicketKey) -> StoreResult<Option<(AccessToken, Grant)>> {
        sqlx::query_as::<_, AccessRow>(&format!(
            "SELECT t.token_key, t.scope, t.issued_at, t.expires_at, {GRANT_COLUMNS} \
             FROM oidc_access_tokens t JOIN oidc_grants g ON g.id = t.grant_id WHERE t.token_key = ?"
        ))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    async fn get_refresh_token(
        &self,
        key: &TicketKey,
    ) -> StoreResult<Option<(RefreshToken, Grant)>> {
        sqlx::query_as::<_, RefreshRow>(&format!(
            "SELECT t.token_key, t.expires_at, t.rotated_at, {GRANT_COLUMNS} \
             FROM oidc_refresh_tokens t JOIN oidc_grants g ON g.id = t.grant_id WHERE t.token_key = ?"
        ))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(TryInto::try_into)
        .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old: &TicketKey,
        now: Timestamp,
        access: &AccessToken,
        refresh: &RefreshToken,
    ) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let mut tx = self.writer.begin().await?;
            let done = sqlx::query(
                "UPDATE oidc_refresh_tokens SET rotated_at = COALESCE(rotated_at, ?) \
                 WHERE token_key = ? AND grant_id = ?",
            )
            .bind(ts(now))
            .bind(old.as_str())
            .bind(&refresh.grant_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(false);
            }
            insert_tokens(&mut tx, access, Some(refresh)).await?;
            tx.commit().await?;
            Ok(true)
        }
        .await;
        self.durable(result).await
    }

    async fn delete_access_token(&self, key: &TicketKey) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let done = sqlx::query("DELETE FROM oidc_access_tokens WHERE token_key = ?")
                .bind(key.as_str())
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
    }

    async fn delete_grant(&self, grant_id: &str) -> StoreResult<bool> {
        let result: StoreResult<bool> = async {
            let done = sqlx::query("DELETE FROM oidc_grants WHERE id = ?")
                .bind(grant_id)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected() == 1)
        }
        .await;
        self.durable(result).await
    }

    async fn get_consent(
        &self,
        username: &str,
        client_id: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        let scope: Option<String> = sqlx::query_scalar(
            "SELECT scope FROM oidc_consents WHERE username = ? AND client_id = ?",
        )
        .bind(username)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(scope.as_deref().map(parse_scope))
    }

    async fn put_consent(
        &self,
        username: &str,
        client_id: &str,
        scope: &[String],
        now: Timestamp,
    ) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            sqlx::query(
                "INSERT INTO oidc_consents (username, client_id, scope, granted_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (username, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
            )
            .bind(username)
            .bind(client_id)
            .bind(scope_string(scope))
            .bind(ts(now))
            .execute(&self.writer)
            .await?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query_as::<_, KeyRow>(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"
        ))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(SigningKeyRecord::try_from)
        .collect()
    }

    async fn put_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        let result: StoreResult<()> = async {
            let mut tx = self.writer.begin().await?;
            sqlx::query("UPDATE signing_keys SET retired_at = ?1 WHERE alg = ?2 AND (retired_at IS NULL OR retired_at > ?1)")
                .bind(ts(k.active_from))
                .bind(k.alg.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
            ))
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_pem)
            .bind(ts(k.created_at))
            .bind(ts(k.active_from))
            .bind(ts_opt(k.retired_at))
            .execute(&mut *tx)
            .await
            .map_err(conflict_as(|| format!("signing key {}", k.kid)))?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.durable(result).await
    }

    async fn delete_retired_signing_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let result: StoreResult<u64> = async {
            let done = sqlx::query("DELETE FROM signing_keys WHERE retired_at < ?")
                .bind(ts(before))
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        }
        .await;
        self.durable(result).await
    }

    async fn registry_version(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT version FROM registry_version WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn get_or_put_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        let result: StoreResult<String> = async {
            let stored: String = sqlx::query_scalar(
                "INSERT INTO settings (name, value) VALUES (?, ?) \
                 ON CONFLICT (name) DO UPDATE SET value = settings.value RETURNING value",
            )
            .bind(name)
            .bind(value)
            .fetch_one(&self.writer)
            .await?;
            Ok(stored)
        }
        .await;
        self.durable(result).await
    }

    async fn export_all(&self) -> StoreResult<Snapshot> {
        // One read transaction: in WAL mode it sees every table as of its first read.
        let mut tx = self.pool.begin().await?;
        macro_rules! export_tables {
            ($tx:ident; $($table:ident),*) => {
                Snapshot { $($table: export_rows(&mut $tx).await?,)* }
            };
        }
        let snapshot = snapshot_tables!(export_tables!(tx));
        tx.commit().await?;
        Ok(snapshot)
    }

    async fn import_all(&self, snapshot: &Snapshot) -> StoreResult<ImportCounts> {
        let result: StoreResult<ImportCounts> = async {
            let mut tx = self.writer.begin().await?;
            let held: Vec<(String, i64)> = sqlx::query_as(&count_rows_sql())
                .fetch_all(&mut *tx)
                .await?;
            refuse_unless_empty(&held)?;
            macro_rules! import_tables {
                ($tx:ident, $snapshot:ident; $($table:ident),*) => {
                    vec![$((stringify!($table), import_rows(&mut $tx, &$snapshot.$table).await?)),*]
                };
            }
            let tables = snapshot_tables!(import_tables!(tx, snapshot));
            tx.commit().await?;
            Ok(ImportCounts { tables })
        }
        .await;
        self.durable(result).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_usage(&self) -> PoolUsage {
        let pools: &[&SqlitePool] = if self.shared {
            &[&self.pool]
        } else {
            &[&self.pool, &self.writer]
        };
        PoolUsage {
            connections: pools.iter().map(|p| p.size()).sum(),
            idle: u32::try_from(pools.iter().map(|p| p.num_idle()).sum::<usize>())
                .unwrap_or(u32::MAX),
        }
    }

    async fn delete_expired(&self, now: Timestamp, failure_window: Duration) -> StoreResult<u64> {
        let result: StoreResult<u64> = async {
            let window_ms = i64::try_from(failure_window.as_millis()).unwrap_or(i64::MAX);
            let mut tx = self.writer.begin().await?;
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
                ("DELETE FROM oidc_codes WHERE expires_at <= ?", ts(now)),
                (
                    "DELETE FROM oidc_access_tokens WHERE expires_at <= ?",
                    ts(now),
                ),
                (
                    "DELETE FROM oidc_refresh_tokens WHERE expires_at <= ?",
                    ts(now),
                ),
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
        .await;
        self.durable(result).await
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

/// Ends the selected sessions inside `tx`: their services, and their OpenID Connect clients with a
/// back-channel logout URI, move to the single-logout queue (due `now`), their grants (with their
/// tokens) and unvalidated tickets go with them, and they are returned.
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
    // One back-channel logout per client of the session that registered a logout URI.
    let queued_clients = format!(
        "INSERT INTO slo_queue (session_id, username, service, ticket, created_at, due_at, client_id) \
         SELECT g.session_id, s.username, MIN(g.backchannel_logout_uri), '', ?, ?, g.client_id \
         FROM oidc_grants g JOIN sessions s ON s.id = g.session_id \
         WHERE s.{cond} AND g.backchannel_logout_uri IS NOT NULL \
         GROUP BY g.session_id, g.client_id RETURNING id"
    );
    which
        .bind(
            sqlx::query_as::<_, (i64,)>(&queued_clients)
                .bind(ts(now))
                .bind(ts(now)),
        )
        .fetch_all(&mut **tx)
        .await?;
    let clients = format!(
        "DELETE FROM oidc_grants WHERE session_id IN (SELECT id FROM sessions WHERE {cond}) \
         RETURNING session_id, client_id"
    );
    let clients: Vec<SessionClientRow> = which
        .bind(sqlx::query_as(&clients))
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
    ended_sessions(sessions, &accesses, &clients)
}

/// Every row of table `T`, in primary-key order.
async fn export_rows<T>(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> StoreResult<Vec<T>>
where
    T: Table + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    Ok(sqlx::query_as::<_, T>(&T::select_all())
        .fetch_all(&mut **tx)
        .await?)
}

/// Inserts `rows` into table `T`, many per statement; returns how many were written.
async fn import_rows<T: Table>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    rows: &[T],
) -> StoreResult<u64> {
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let per_statement = (MAX_BINDS / first.cells().len().max(1)).max(1);
    let mut written = 0;
    for chunk in rows.chunks(per_statement) {
        let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(T::insert_into());
        insert.push_values(chunk, |mut values, row| {
            for cell in row.cells() {
                match cell {
                    Cell::Text(v) => values.push_bind(v),
                    Cell::OptText(v) => values.push_bind(v),
                    Cell::Int(v) => values.push_bind(v),
                    Cell::OptInt(v) => values.push_bind(v),
                    Cell::Bool(v) => values.push_bind(v),
                };
            }
        });
        written += insert.build().execute(&mut **tx).await?.rows_affected();
    }
    Ok(written)
}

/// Saves the tokens of a grant inside `tx`.
async fn insert_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_access_tokens (token_key, grant_id, scope, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(access.key.as_str())
    .bind(&access.grant_id)
    .bind(scope_string(&access.scope))
    .bind(ts(access.issued_at))
    .bind(ts(access.expires_at))
    .execute(&mut **tx)
    .await?;
    if let Some(r) = refresh {
        sqlx::query(
            "INSERT INTO oidc_refresh_tokens (token_key, grant_id, expires_at, rotated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(r.key.as_str())
        .bind(&r.grant_id)
        .bind(ts(r.expires_at))
        .bind(ts_opt(r.rotated_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Marks the session with id `id` used (`touch.at`) and moves its expiry.
async fn touch_in(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    touch: SessionTouch,
) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE id = ?")
        .bind(ts(touch.at))
        .bind(ts(touch.expires_at))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn writes_waiting_for_an_fsync_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        let wal = Arc::new(WalSync::new(Some(path)));

        // One write alone: its own fsync.
        wal.after_write().await.unwrap();
        assert_eq!(wal.fsyncs.load(Ordering::SeqCst), 1);

        // Twenty writes commit while an fsync is running (the turn is held): when it ends, one
        // more fsync covers all of them.
        let running = wal.turn.lock().await;
        let writers: Vec<_> = (0..20)
            .map(|_| {
                let wal = wal.clone();
                tokio::spawn(async move { wal.after_write().await })
            })
            .collect();
        while wal.finished.load(Ordering::SeqCst) < 21 {
            tokio::task::yield_now().await;
        }
        drop(running);
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        assert_eq!(wal.fsyncs.load(Ordering::SeqCst), 2);
        assert_eq!(wal.synced.load(Ordering::SeqCst), 21);
    }

    #[tokio::test]
    async fn no_wal_file_or_no_file_at_all_is_nothing_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let checkpointed = WalSync::new(Some(dir.path().join("gone.db-wal")));
        checkpointed.after_write().await.unwrap();
        let memory = WalSync::new(None);
        memory.after_write().await.unwrap();
        assert_eq!(memory.fsyncs.load(Ordering::SeqCst), 0);
    }
}
