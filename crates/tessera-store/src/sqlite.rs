//! The SQLite backend: the embedded default. WAL mode, and every write is on disk (committed, the
//! WAL file `fsync`ed) before the call returns, so a ticket that was handed out survives a crash of
//! the process or the machine; `DELETE … RETURNING` makes every take atomic.
//!
//! Writes queue for one writer thread, which commits all those waiting in one transaction (a
//! savepoint each) and one `fsync`: see [`engine`].

mod engine;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use tessera_protocol::cas::proxy::ProxyGrantingTicket;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::oidc::grant::{parse_scope, scope_string};
use tessera_protocol::oidc::{AccessToken, AuthorizationCode, Grant, OidcClient, RefreshToken};
use tessera_protocol::service::{RegisteredService, ServicePattern};
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::TicketKey;
use tessera_protocol::{Attributes, Timestamp};

use crate::oidc_rows::{
    access_token_with_version, refresh_token_with_version, ts_opt, AccessRow, ClientColumns,
    ClientRow, CodeRow, KeyRow, RefreshRow, CLIENT_COLUMNS, CODE_COLUMNS, KEY_COLUMNS,
};
use crate::rows::{
    ended_sessions, millis, to_json, ts, FailureRow, FromSqlite, KeyedFailureRow, PgtRow,
    ServicePolicyColumns, ServiceRow, ServiceTicketRow, SessionAccessRow, SessionClientRow,
    SessionRow, SloRow, UserRow, PGT_COLUMNS, SERVICE_COLUMNS, SERVICE_TICKET_COLUMNS,
    SESSION_COLUMNS, SLO_COLUMNS,
};
use crate::rows::{Cell, Table, MAX_BINDS};
use crate::snapshot::{
    count_rows_sql, refuse_unless_empty, snapshot_tables, ImportCounts, Snapshot,
};
use crate::{
    registry_moved, AccessRule, CodeRedemption, EndedSession, GrantRule, LoginFailures, PoolUsage,
    ServiceAccess, SessionTouch, SigningKeyRecord, SloDelivery, Store, StoreError, StoreResult,
    UserRecord,
};
use engine::Engine;

/// A store in one SQLite database file (see the module documentation).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    engine: Arc<Engine>,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) and migrates the database at `url`
    /// (`sqlite://path/to/file.db`, or `sqlite::memory:` for one that lives in the process).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let bad = |reason: &str| StoreError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| bad("expected sqlite://PATH"))?;
        let (path, options) = path.split_once('?').unwrap_or((path, ""));
        // Tessera sets SQLite's options itself; an option it would ignore is refused rather than
        // silently dropped. `mode=rwc` (read, write, create: what it does anyway) is accepted, as
        // sqlx's URLs, which earlier versions read, often carry it.
        if let Some(option) = options
            .split('&')
            .find(|o| !o.is_empty() && *o != "mode=rwc")
        {
            return Err(bad(&format!(
                "unknown option `{option}`: Tessera sets SQLite's options itself (WAL, \
                 synchronous = FULL, the file created if missing); remove `?{options}`"
            )));
        }
        let path = path.to_owned();
        if path.is_empty() {
            return Err(bad("no file path after sqlite://"));
        }
        if path != ":memory:" {
            if let Some(dir) = Path::new(&path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| bad(&format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let engine = tokio::task::spawn_blocking(move || Engine::open(&path))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the database stopped: {e}")))??;
        Ok(Self {
            engine: Arc::new(engine),
        })
    }

    /// Runs `work` as one write: committed and on disk before this returns, undone if it fails.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.engine.write(Box::new(work)).await
    }

    /// Runs `slice`, which deletes at most [`SWEEP_SLICE`] rows and says how many, as a job of its
    /// own until a slice comes back short; the rows deleted in all. Other writes wait for one
    /// slice at most, and the copy of the pages a job changes (its savepoint's journal, kept in
    /// memory) stays small.
    async fn sweep(
        &self,
        slice: impl Fn(&Connection) -> StoreResult<usize> + Copy + Send + 'static,
    ) -> StoreResult<u64> {
        let mut n = 0u64;
        loop {
            let deleted = self.write(slice).await?;
            n = n.saturating_add(u64::try_from(deleted).unwrap_or(u64::MAX));
            if deleted < SWEEP_SLICE {
                return Ok(n);
            }
        }
    }

    /// Runs `work`, a lookup of a few rows by key, on a reader connection.
    async fn lookup<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.engine.lookup(Box::new(work)).await
    }

    /// Runs `work`, a read of any size, on a reader connection.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.engine.read(Box::new(work)).await
    }
}

/// The registry version (see [`Store::registry_version`]).
const REGISTRY_VERSION: &str = "SELECT version FROM registry_version WHERE id = 1";

/// Runs one statement; the number of rows it changed.
fn exec(c: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
    Ok(c.prepare_cached(sql)?.execute(params)?)
}

/// The first row a statement returns, if any.
fn one<T: FromSqlite>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<T>> {
    Ok(c.prepare_cached(sql)?
        .query_row(params, |row| T::read(row))
        .optional()?)
}

/// Every row a statement returns.
fn all<T: FromSqlite>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| T::read(row))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The first column of the first row a statement returns, if any.
fn scalar<T: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Option<T>> {
    Ok(c.prepare_cached(sql)?
        .query_row(params, |row| row.get(0))
        .optional()?)
}

/// Maps a unique violation to [`StoreError::Conflict`] naming `what`, anything else as is.
fn conflict_as(what: impl FnOnce() -> String) -> impl FnOnce(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, _))
            if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            StoreError::Conflict(what())
        }
        other => other,
    }
}

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Cell::Text(v) => v.to_sql(),
            Cell::OptText(v) => v.to_sql(),
            Cell::Int(v) => v.to_sql(),
            Cell::OptInt(v) => v.to_sql(),
            Cell::Bool(v) => v.to_sql(),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let username = username.to_owned();
        self.lookup(move |c| {
            one::<UserRow>(
                c,
                "SELECT username, password_hash, attributes FROM users WHERE username = ?",
                [&username],
            )?
            .map(UserRecord::try_from)
            .transpose()
        })
        .await
    }

    async fn put_user(&self, user: &UserRecord, now: Timestamp) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO users (username, password_hash, attributes, created_at) VALUES (?, ?, ?, ?)",
                params![user.username, user.password_hash, to_json(&user.attributes), ts(now)],
            )
            .map_err(conflict_as(|| format!("user {}", user.username)))?;
            Ok(())
        })
        .await
    }

    async fn put_password_hash(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let (username, password_hash) = (username.to_owned(), password_hash.to_owned());
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE users SET password_hash = ? WHERE username = ?",
                [&password_hash, &username],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_user_attributes(
        &self,
        username: &str,
        attributes: &Attributes,
    ) -> StoreResult<bool> {
        let (username, attributes) = (username.to_owned(), to_json(attributes));
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE users SET attributes = ? WHERE username = ?",
                [&attributes, &username],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_user(&self, username: &str, now: Timestamp) -> StoreResult<bool> {
        let username = username.to_owned();
        self.write(move |c| {
            end_sessions(c, &Ended::OfUser(username.clone()), now)?;
            Ok(exec(c, "DELETE FROM users WHERE username = ?", [&username])? == 1)
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.read(|c| {
            all::<UserRow>(
                c,
                "SELECT username, password_hash, attributes FROM users ORDER BY username",
                [],
            )?
            .into_iter()
            .map(UserRecord::try_from)
            .collect()
        })
        .await
    }

    async fn list_services(&self) -> StoreResult<Vec<RegisteredService>> {
        self.read(|c| {
            all::<ServiceRow>(
                c,
                &format!("SELECT {SERVICE_COLUMNS} FROM services ORDER BY name"),
                [],
            )?
            .into_iter()
            .map(RegisteredService::try_from)
            .collect()
        })
        .await
    }

    async fn put_service(&self, s: &RegisteredService) -> StoreResult<()> {
        let s = s.clone();
        self.write(move |c| {
            let policy = ServicePolicyColumns::of(&s);
            exec(
                c,
                &format!(
                    "INSERT INTO services ({SERVICE_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                params![
                    s.name,
                    s.pattern.kind(),
                    s.pattern.source(),
                    s.enabled,
                    policy.release_mode,
                    policy.release_rules,
                    s.username_attribute,
                    policy.requirements,
                    s.sso,
                    s.logout_url,
                    s.logout_type.as_str(),
                    s.proxy_callback.as_ref().map(ServicePattern::kind),
                    s.proxy_callback.as_ref().map(ServicePattern::source),
                    s.proxy_target,
                    s.theme,
                    s.description,
                ],
            )
            .map_err(conflict_as(|| format!("service {}", s.name)))?;
            Ok(())
        })
        .await
    }

    async fn delete_service(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.write(move |c| Ok(exec(c, "DELETE FROM services WHERE name = ?", [&name])? == 1))
            .await
    }

    async fn put_session(&self, s: &SsoSession, expires_at: Timestamp) -> StoreResult<()> {
        let s = s.clone();
        self.write(move |c| {
            exec(
                c,
                &format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}, expires_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                params![
                    s.id.as_str(),
                    s.tgt.as_str(),
                    s.username,
                    to_json(&s.attributes),
                    ts(s.authenticated_at),
                    ts(s.last_used_at),
                    s.long_term,
                    s.warn,
                    ts(expires_at),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, tgt: &TicketKey) -> StoreResult<Option<SsoSession>> {
        let tgt = tgt.as_str().to_owned();
        self.lookup(move |c| {
            one::<SessionRow>(
                c,
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE tgt_key = ?"),
                [&tgt],
            )?
            .map(SsoSession::try_from)
            .transpose()
        })
        .await
    }

    async fn renew_session(
        &self,
        old_tgt: &TicketKey,
        s: &SsoSession,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let old_tgt = old_tgt.as_str().to_owned();
        let s = s.clone();
        self.write(move |c| {
            let renewed = exec(
                c,
                "UPDATE sessions SET tgt_key = ?, attributes = ?, authenticated_at = ?, \
                 last_used_at = ?, long_term = ?, warn = ?, expires_at = ? \
                 WHERE id = ? AND tgt_key = ? AND username = ?",
                params![
                    s.tgt.as_str(),
                    to_json(&s.attributes),
                    ts(s.authenticated_at),
                    ts(s.last_used_at),
                    s.long_term,
                    s.warn,
                    ts(expires_at),
                    s.id.as_str(),
                    old_tgt,
                    s.username,
                ],
            )?;
            Ok(renewed == 1)
        })
        .await
    }

    async fn touch_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        let touch = SessionTouch {
            at: now,
            expires_at,
        };
        self.write(move |c| touch_in(c, &id, touch)).await
    }

    async fn take_session(
        &self,
        tgt: &TicketKey,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>> {
        let which = Ended::Tgt(tgt.as_str().to_owned());
        self.write(move |c| Ok(end_sessions(c, &which, now)?.into_iter().next()))
            .await
    }

    async fn take_session_by_id(
        &self,
        id: &SessionId,
        now: Timestamp,
    ) -> StoreResult<Option<EndedSession>> {
        let which = Ended::Id(id.as_str().to_owned());
        self.write(move |c| Ok(end_sessions(c, &which, now)?.into_iter().next()))
            .await
    }

    async fn list_sessions(&self, username: Option<&str>) -> StoreResult<Vec<SsoSession>> {
        let username = username.map(str::to_owned);
        self.read(move |c| {
            all::<SessionRow>(
                c,
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions \
                     WHERE (?1 IS NULL OR username = ?1) ORDER BY authenticated_at"
                ),
                [&username],
            )?
            .into_iter()
            .map(SsoSession::try_from)
            .collect()
        })
        .await
    }

    async fn put_service_ticket(
        &self,
        t: &ServiceTicket,
        touch: Option<SessionTouch>,
        decided_at: Option<i64>,
    ) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            still_current(c, decided_at)?;
            exec(
                c,
                &format!(
                    "INSERT INTO service_tickets ({SERVICE_TICKET_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                params![
                    t.key.as_str(),
                    t.service.as_str(),
                    t.session_id.as_str(),
                    t.username,
                    to_json(&t.attributes),
                    t.from_new_login,
                    t.long_term,
                    ts(t.authenticated_at),
                    ts(t.expires_at),
                    to_json(&t.proxies),
                ],
            )?;
            touch.map_or(Ok(()), |touch| touch_in(c, t.session_id.as_str(), touch))
        })
        .await
    }

    async fn take_service_ticket_recording(
        &self,
        key: &TicketKey,
        entered: AccessRule,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<ServiceTicket>> {
        let key = key.as_str().to_owned();
        self.write(move |c| {
            still_current(c, decided_at)?;
            let Some(ticket) = one::<ServiceTicketRow>(
                c,
                &format!(
                    "DELETE FROM service_tickets WHERE ticket_key = ? \
                     RETURNING {SERVICE_TICKET_COLUMNS}"
                ),
                [&key],
            )?
            .map(ServiceTicket::try_from)
            .transpose()?
            else {
                return Ok(None);
            };
            if !session_exists(c, ticket.session_id.as_str())? {
                return Ok(None);
            }
            if let Some(access) = entered(&ticket) {
                insert_access(c, ticket.session_id.as_str(), &access)?;
            }
            Ok(Some(ticket))
        })
        .await
    }

    async fn put_service_access(&self, session: &SessionId, a: &ServiceAccess) -> StoreResult<()> {
        let (session, a) = (session.as_str().to_owned(), a.clone());
        self.write(move |c| insert_access(c, &session, &a)).await
    }

    async fn put_proxy_granting_ticket(&self, p: &ProxyGrantingTicket) -> StoreResult<()> {
        let p = p.clone();
        self.write(move |c| {
            exec(
                c,
                &format!(
                    "INSERT INTO proxy_granting_tickets ({PGT_COLUMNS}) \
                     SELECT ?, id, ?, ?, ?, ?, ?, ? FROM sessions WHERE id = ?"
                ),
                params![
                    p.key.as_str(),
                    p.username,
                    to_json(&p.attributes),
                    ts(p.authenticated_at),
                    p.long_term,
                    to_json(&p.proxies),
                    ts(p.expires_at),
                    p.session_id.as_str(),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_proxy_granting_ticket(
        &self,
        key: &TicketKey,
    ) -> StoreResult<Option<ProxyGrantingTicket>> {
        let key = key.as_str().to_owned();
        self.lookup(move |c| {
            one::<PgtRow>(
                c,
                &format!("SELECT {PGT_COLUMNS} FROM proxy_granting_tickets WHERE ticket_key = ?"),
                [&key],
            )?
            .map(ProxyGrantingTicket::try_from)
            .transpose()
        })
        .await
    }

    async fn put_login_ticket(&self, key: &TicketKey, expires_at: Timestamp) -> StoreResult<()> {
        let key = key.as_str().to_owned();
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO login_tickets (ticket_key, expires_at) VALUES (?, ?)",
                params![key, ts(expires_at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn take_login_ticket(&self, key: &TicketKey, now: Timestamp) -> StoreResult<bool> {
        let key = key.as_str().to_owned();
        self.write(move |c| {
            let expires_at: Option<i64> = scalar(
                c,
                "DELETE FROM login_tickets WHERE ticket_key = ? RETURNING expires_at",
                [&key],
            )?;
            Ok(expires_at.is_some_and(|e| e > ts(now)))
        })
        .await
    }

    async fn get_login_failures_of(
        &self,
        keys: &[&str],
    ) -> StoreResult<Vec<Option<LoginFailures>>> {
        let keys: Vec<String> = keys.iter().map(|&k| k.to_owned()).collect();
        self.lookup(move |c| {
            let places = vec!["?"; keys.len()].join(", ");
            let found = all::<KeyedFailureRow>(
                c,
                &format!(
                    "SELECT throttle_key, failures, first_at, last_at FROM login_failures \
                     WHERE throttle_key IN ({places})"
                ),
                rusqlite::params_from_iter(&keys),
            )?;
            Ok(KeyedFailureRow::in_order_of(&keys, found))
        })
        .await
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<LoginFailures> {
        let key = key.to_owned();
        self.write(move |c| {
            let row = one::<FailureRow>(
                c,
                "INSERT INTO login_failures (throttle_key, failures, first_at, last_at) VALUES (?1, 1, ?2, ?2) \
                 ON CONFLICT (throttle_key) DO UPDATE SET \
                   failures = CASE WHEN ?2 - last_at > ?3 THEN 1 ELSE failures + 1 END, \
                   first_at = CASE WHEN ?2 - last_at > ?3 THEN ?2 ELSE first_at END, \
                   last_at = ?2 \
                 RETURNING failures, first_at, last_at",
                params![key, ts(now), millis(window)],
            )?
            .ok_or_else(|| StoreError::Corrupt("login failure upsert returned no row".into()))?;
            Ok(row.into())
        })
        .await
    }

    async fn delete_login_failures(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |c| {
            exec(
                c,
                "DELETE FROM login_failures WHERE throttle_key = ?",
                [&key],
            )?;
            Ok(())
        })
        .await
    }

    async fn claim_slo_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> StoreResult<Vec<SloDelivery>> {
        self.write(move |c| {
            // One statement: of two nodes claiming at once, each row goes to one of them.
            let rows = all::<SloRow>(
                c,
                &format!(
                    "UPDATE slo_queue SET claimed_until = ?1, attempts = attempts + 1 WHERE id IN \
                     (SELECT id FROM slo_queue WHERE due_at <= ?2 AND claimed_until <= ?2 \
                      ORDER BY due_at, id LIMIT ?3) \
                     RETURNING {SLO_COLUMNS}"
                ),
                params![ts(now.plus(lease)), ts(now), i64::from(limit)],
            )?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    async fn delete_slo_delivery(&self, id: i64) -> StoreResult<()> {
        self.write(move |c| {
            exec(c, "DELETE FROM slo_queue WHERE id = ?", [id])?;
            Ok(())
        })
        .await
    }

    async fn retry_slo_delivery(&self, id: i64, due_at: Timestamp, error: &str) -> StoreResult<()> {
        let error = error.to_owned();
        self.write(move |c| {
            exec(
                c,
                "UPDATE slo_queue SET due_at = ?, claimed_until = 0, last_error = ? WHERE id = ?",
                params![ts(due_at), error, id],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_slo_deliveries(&self) -> StoreResult<Vec<SloDelivery>> {
        self.read(|c| {
            let rows = all::<SloRow>(
                c,
                &format!("SELECT {SLO_COLUMNS} FROM slo_queue ORDER BY id"),
                [],
            )?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>> {
        self.read(|c| {
            all::<ClientRow>(
                c,
                &format!("SELECT {CLIENT_COLUMNS} FROM oidc_clients ORDER BY id"),
                [],
            )?
            .into_iter()
            .map(OidcClient::try_from)
            .collect()
        })
        .await
    }

    async fn put_client(&self, client: &OidcClient) -> StoreResult<()> {
        let client = client.clone();
        self.write(move |c| {
            let cols = ClientColumns::of(&client);
            exec(
                c,
                &format!(
                    "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                params![
                    client.id,
                    client.name,
                    cols.secret_sha256,
                    cols.redirect_uris,
                    cols.post_logout_redirect_uris,
                    cols.scopes,
                    client.backchannel_logout_uri,
                    client.signing_alg.as_str(),
                    client.consent,
                    cols.release_mode,
                    cols.release_rules,
                    client.enabled,
                ],
            )
            .map_err(conflict_as(|| format!("client {}", client.id)))?;
            Ok(())
        })
        .await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |c| {
            let n = exec(c, "DELETE FROM oidc_clients WHERE id = ?", [&id])?;
            for sql in [
                "DELETE FROM oidc_grants WHERE client_id = ?",
                "DELETE FROM oidc_codes WHERE client_id = ?",
                "DELETE FROM oidc_consents WHERE client_id = ?",
            ] {
                exec(c, sql, [&id])?;
            }
            Ok(n == 1)
        })
        .await
    }

    async fn put_authorization_code(
        &self,
        code: &AuthorizationCode,
        touch: Option<SessionTouch>,
        decided_at: Option<i64>,
    ) -> StoreResult<()> {
        let code = code.clone();
        self.write(move |c| {
            still_current(c, decided_at)?;
            exec(
                c,
                &format!("INSERT INTO oidc_codes ({CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                params![
                    code.key.as_str(),
                    code.client_id,
                    code.redirect_uri,
                    scope_string(&code.scope),
                    code.nonce,
                    code.code_challenge,
                    code.session_id.as_str(),
                    code.username,
                    to_json(&code.attributes),
                    ts(code.auth_time),
                    ts(code.expires_at),
                ],
            )?;
            touch.map_or(Ok(()), |touch| touch_in(c, code.session_id.as_str(), touch))
        })
        .await
    }

    async fn redeem_authorization_code_granting(
        &self,
        key: &TicketKey,
        grant_id: &str,
        issue: GrantRule,
        decided_at: Option<i64>,
    ) -> StoreResult<(CodeRedemption, bool)> {
        let (key, grant_id) = (key.as_str().to_owned(), grant_id.to_owned());
        self.write(move |c| {
            still_current(c, decided_at)?;
            // The conditional update is the compare-and-set: of two redemptions, one binds the code.
            let fresh = one::<CodeRow>(
                c,
                &format!(
                    "UPDATE oidc_codes SET grant_id = ? WHERE code_key = ? AND grant_id IS NULL \
                     RETURNING {CODE_COLUMNS}"
                ),
                [&grant_id, &key],
            )?;
            if let Some(row) = fresh {
                let code = AuthorizationCode::try_from(row)?;
                let granted = match issue(&code) {
                    Some(new) => insert_grant(c, &new.grant, &new.access, new.refresh.as_ref())?,
                    None => false,
                };
                return Ok((CodeRedemption::Redeemed(Box::new(code)), granted));
            }
            let earlier: Option<Option<String>> = scalar(
                c,
                "SELECT grant_id FROM oidc_codes WHERE code_key = ?",
                [&key],
            )?;
            let redemption = match earlier {
                None => CodeRedemption::Unknown,
                Some(earlier) => {
                    if let Some(earlier) = earlier {
                        exec(c, "DELETE FROM oidc_grants WHERE id = ?", [&earlier])?;
                    }
                    CodeRedemption::Replayed
                }
            };
            Ok((redemption, false))
        })
        .await
    }

    async fn put_grant(
        &self,
        g: &Grant,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool> {
        let (g, access, refresh) = (g.clone(), access.clone(), refresh.cloned());
        self.write(move |c| insert_grant(c, &g, &access, refresh.as_ref()))
            .await
    }

    async fn get_access_token(
        &self,
        key: &TicketKey,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<(AccessToken, Grant)>> {
        let key = key.as_str().to_owned();
        self.lookup(move |c| {
            read_decided::<AccessRow>(c, &access_token_with_version("?"), &key, decided_at)?
                .map(TryInto::try_into)
                .transpose()
        })
        .await
    }

    async fn get_refresh_token(
        &self,
        key: &TicketKey,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<(RefreshToken, Grant)>> {
        let key = key.as_str().to_owned();
        self.lookup(move |c| {
            read_decided::<RefreshRow>(c, &refresh_token_with_version("?"), &key, decided_at)?
                .map(TryInto::try_into)
                .transpose()
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        old: &TicketKey,
        now: Timestamp,
        access: &AccessToken,
        refresh: &RefreshToken,
        decided_at: Option<i64>,
    ) -> StoreResult<bool> {
        let (old, access, refresh) = (old.as_str().to_owned(), access.clone(), refresh.clone());
        self.write(move |c| {
            still_current(c, decided_at)?;
            let n = exec(
                c,
                "UPDATE oidc_refresh_tokens SET rotated_at = COALESCE(rotated_at, ?) \
                 WHERE token_key = ? AND grant_id = ?",
                params![ts(now), old, refresh.grant_id],
            )?;
            if n == 0 {
                return Ok(false);
            }
            insert_tokens(c, &access, Some(&refresh))?;
            Ok(true)
        })
        .await
    }

    async fn delete_access_token(&self, key: &TicketKey) -> StoreResult<bool> {
        let key = key.as_str().to_owned();
        self.write(move |c| {
            Ok(exec(
                c,
                "DELETE FROM oidc_access_tokens WHERE token_key = ?",
                [&key],
            )? == 1)
        })
        .await
    }

    async fn delete_grant(&self, grant_id: &str) -> StoreResult<bool> {
        let grant_id = grant_id.to_owned();
        self.write(move |c| Ok(exec(c, "DELETE FROM oidc_grants WHERE id = ?", [&grant_id])? == 1))
            .await
    }

    async fn get_consent(
        &self,
        username: &str,
        client_id: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        let (username, client_id) = (username.to_owned(), client_id.to_owned());
        self.lookup(move |c| {
            let scope: Option<String> = scalar(
                c,
                "SELECT scope FROM oidc_consents WHERE username = ? AND client_id = ?",
                [&username, &client_id],
            )?;
            Ok(scope.as_deref().map(parse_scope))
        })
        .await
    }

    async fn put_consent(
        &self,
        username: &str,
        client_id: &str,
        scope: &[String],
        now: Timestamp,
    ) -> StoreResult<()> {
        let (username, client_id, scope) = (
            username.to_owned(),
            client_id.to_owned(),
            scope_string(scope),
        );
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO oidc_consents (username, client_id, scope, granted_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (username, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                params![username, client_id, scope, ts(now)],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.read(|c| {
            all::<KeyRow>(
                c,
                &format!("SELECT {KEY_COLUMNS} FROM signing_keys ORDER BY created_at, kid"),
                [],
            )?
            .into_iter()
            .map(SigningKeyRecord::try_from)
            .collect()
        })
        .await
    }

    async fn put_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        let k = k.clone();
        self.write(move |c| {
            exec(
                c,
                "UPDATE signing_keys SET retired_at = ?1 \
                 WHERE alg = ?2 AND (retired_at IS NULL OR retired_at > ?1)",
                params![ts(k.active_from), k.alg.as_str()],
            )?;
            exec(
                c,
                &format!("INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
                params![
                    k.kid,
                    k.alg.as_str(),
                    k.private_pem,
                    ts(k.created_at),
                    ts(k.active_from),
                    ts_opt(k.retired_at),
                ],
            )
            .map_err(conflict_as(|| format!("signing key {}", k.kid)))?;
            Ok(())
        })
        .await
    }

    async fn delete_retired_signing_keys(&self, before: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            let n = exec(
                c,
                "DELETE FROM signing_keys WHERE retired_at < ?",
                [ts(before)],
            )?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn registry_version(&self) -> StoreResult<i64> {
        self.lookup(|c| {
            scalar(c, REGISTRY_VERSION, [])?
                .ok_or_else(|| StoreError::Corrupt("registry_version has no row".into()))
        })
        .await
    }

    async fn get_or_put_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |c| {
            scalar(
                c,
                "INSERT INTO settings (name, value) VALUES (?, ?) \
                 ON CONFLICT (name) DO UPDATE SET value = settings.value RETURNING value",
                [&name, &value],
            )?
            .ok_or_else(|| StoreError::Corrupt(format!("setting {name} was not stored")))
        })
        .await
    }

    async fn export_all(&self) -> StoreResult<Snapshot> {
        self.read(|c| {
            // One read transaction: in WAL mode it sees every table as of its first read.
            c.execute_batch("BEGIN")?;
            let snapshot = (|| {
                macro_rules! export_tables {
                    ($c:ident; $($table:ident),*) => {
                        Snapshot { $($table: export_rows($c)?,)* }
                    };
                }
                Ok::<_, StoreError>(snapshot_tables!(export_tables!(c)))
            })();
            c.execute_batch("COMMIT")?;
            snapshot
        })
        .await
    }

    async fn import_all(&self, snapshot: &Snapshot) -> StoreResult<ImportCounts> {
        macro_rules! plan_tables {
            ($snapshot:ident; $($table:ident),*) => {
                vec![$((stringify!($table), insert_plan(&$snapshot.$table))),*]
            };
        }
        let plans: Vec<(&'static str, Vec<Insert>)> = snapshot_tables!(plan_tables!(snapshot));
        self.write(move |c| {
            let mut stmt = c.prepare(&count_rows_sql())?;
            let held = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            refuse_unless_empty(&held)?;
            let mut tables = Vec::with_capacity(plans.len());
            for (table, inserts) in plans {
                let mut written = 0;
                for insert in inserts {
                    let n = c
                        .prepare(&insert.sql)?
                        .execute(rusqlite::params_from_iter(insert.values))?;
                    written += u64::try_from(n).unwrap_or(u64::MAX);
                }
                tables.push((table, written));
            }
            Ok(ImportCounts { tables })
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        if !self.engine.writer_alive() {
            return Err(StoreError::Unavailable(
                "the SQLite writer has stopped".into(),
            ));
        }
        self.lookup(|c| {
            scalar::<i64>(c, "SELECT 1", [])?;
            Ok(())
        })
        .await
    }

    fn pool_usage(&self) -> PoolUsage {
        self.engine.usage()
    }

    async fn delete_expired(&self, now: Timestamp, failure_window: Duration) -> StoreResult<u64> {
        let expired_by = ts(now);
        let mut n = self
            .sweep(move |c| Ok(end_sessions(c, &Ended::ExpiredBy(expired_by), now)?.len()))
            .await?;
        let failures_before = expired_by.saturating_sub(millis(failure_window));
        for (sql, cutoff) in [
            (SWEEP_SERVICE_TICKETS, expired_by),
            (SWEEP_PROXY_GRANTING_TICKETS, expired_by),
            (SWEEP_LOGIN_TICKETS, expired_by),
            (SWEEP_OIDC_CODES, expired_by),
            (SWEEP_OIDC_ACCESS_TOKENS, expired_by),
            (SWEEP_OIDC_REFRESH_TOKENS, expired_by),
            (SWEEP_LOGIN_FAILURES, failures_before),
        ] {
            let deleted = self
                .sweep(move |c| exec(c, sql, params![cutoff, SWEEP_SLICE]))
                .await?;
            n = n.saturating_add(deleted);
        }
        Ok(n)
    }
}

/// Rows of a table (sessions with all they hold) one job of the sweep deletes at most.
const SWEEP_SLICE: usize = 1000;

/// The sweep's statements: at most `?2` rows of the table whose time is at or before `?1`.
const SWEEP_SERVICE_TICKETS: &str = "DELETE FROM service_tickets WHERE ticket_key IN \
     (SELECT ticket_key FROM service_tickets WHERE expires_at <= ?1 LIMIT ?2)";
const SWEEP_PROXY_GRANTING_TICKETS: &str =
    "DELETE FROM proxy_granting_tickets WHERE ticket_key IN \
     (SELECT ticket_key FROM proxy_granting_tickets WHERE expires_at <= ?1 LIMIT ?2)";
const SWEEP_LOGIN_TICKETS: &str = "DELETE FROM login_tickets WHERE ticket_key IN \
     (SELECT ticket_key FROM login_tickets WHERE expires_at <= ?1 LIMIT ?2)";
const SWEEP_OIDC_CODES: &str = "DELETE FROM oidc_codes WHERE code_key IN \
     (SELECT code_key FROM oidc_codes WHERE expires_at <= ?1 LIMIT ?2)";
const SWEEP_OIDC_ACCESS_TOKENS: &str = "DELETE FROM oidc_access_tokens WHERE token_key IN \
     (SELECT token_key FROM oidc_access_tokens WHERE expires_at <= ?1 LIMIT ?2)";
const SWEEP_OIDC_REFRESH_TOKENS: &str = "DELETE FROM oidc_refresh_tokens WHERE token_key IN \
     (SELECT token_key FROM oidc_refresh_tokens WHERE expires_at <= ?1 LIMIT ?2)";
const SWEEP_LOGIN_FAILURES: &str = "DELETE FROM login_failures WHERE throttle_key IN \
     (SELECT throttle_key FROM login_failures WHERE last_at <= ?1 LIMIT ?2)";

/// Which sessions [`end_sessions`] ends.
enum Ended {
    Tgt(String),
    Id(String),
    OfUser(String),
    /// A slice of the sessions expired by then: at most [`SWEEP_SLICE`].
    ExpiredBy(i64),
}

impl Ended {
    /// The condition on `sessions`, with one `?` parameter.
    fn condition(&self) -> Cow<'static, str> {
        match self {
            Self::Tgt(_) => "tgt_key = ?".into(),
            Self::Id(_) => "id = ?".into(),
            Self::OfUser(_) => "username = ?".into(),
            // The first in the index's order: the same sessions for every statement of the job.
            Self::ExpiredBy(_) => format!(
                "id IN (SELECT id FROM sessions WHERE expires_at <= ? \
                 ORDER BY expires_at, rowid LIMIT {SWEEP_SLICE})"
            )
            .into(),
        }
    }

    /// The value of the condition's parameter.
    fn value(&self) -> &dyn ToSql {
        match self {
            Self::Tgt(v) | Self::Id(v) | Self::OfUser(v) => v,
            Self::ExpiredBy(t) => t,
        }
    }
}

/// Ends the selected sessions: their services, and their OpenID Connect clients with a back-channel
/// logout URI, move to the single-logout queue (due `now`), their grants (with their tokens) and
/// unvalidated tickets go with them, and they are returned.
fn end_sessions(c: &Connection, which: &Ended, now: Timestamp) -> StoreResult<Vec<EndedSession>> {
    let cond = which.condition();
    let at = ts(now);
    exec(
        c,
        &format!(
            "INSERT INTO slo_queue (session_id, username, service, ticket, created_at, due_at) \
             SELECT ss.session_id, s.username, ss.service, ss.ticket, ?, ? \
             FROM session_services ss JOIN sessions s ON s.id = ss.session_id WHERE s.{cond}"
        ),
        params![at, at, which.value()],
    )?;
    // One back-channel logout per client of the session that registered a logout URI.
    exec(
        c,
        &format!(
            "INSERT INTO slo_queue (session_id, username, service, ticket, created_at, due_at, client_id) \
             SELECT g.session_id, s.username, MIN(g.backchannel_logout_uri), '', ?, ?, g.client_id \
             FROM oidc_grants g JOIN sessions s ON s.id = g.session_id \
             WHERE s.{cond} AND g.backchannel_logout_uri IS NOT NULL \
             GROUP BY g.session_id, g.client_id"
        ),
        params![at, at, which.value()],
    )?;
    let clients: Vec<SessionClientRow> = all(
        c,
        &format!(
            "DELETE FROM oidc_grants WHERE session_id IN (SELECT id FROM sessions WHERE {cond}) \
             RETURNING session_id, client_id"
        ),
        [which.value()],
    )?;
    let accesses: Vec<SessionAccessRow> = all(
        c,
        &format!(
            "DELETE FROM session_services WHERE session_id IN (SELECT id FROM sessions WHERE {cond}) \
             RETURNING session_id, service, ticket, validated_at"
        ),
        [which.value()],
    )?;
    let sessions: Vec<SessionRow> = all(
        c,
        &format!("DELETE FROM sessions WHERE {cond} RETURNING {SESSION_COLUMNS}"),
        [which.value()],
    )?;
    ended_sessions(sessions, &accesses, &clients)
}

/// Every row of table `T`, in primary-key order.
fn export_rows<T: Table + FromSqlite>(c: &Connection) -> StoreResult<Vec<T>> {
    all(c, &T::select_all(), [])
}

/// One `INSERT` of an import, with its values.
struct Insert {
    sql: String,
    values: Vec<Value>,
}

/// The inserts that write `rows` into table `T`, many rows per statement.
fn insert_plan<T: Table>(rows: &[T]) -> Vec<Insert> {
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let width = first.cells().len().max(1);
    let tuple = format!("({})", vec!["?"; width].join(", "));
    rows.chunks((MAX_BINDS / width).max(1))
        .map(|chunk| Insert {
            sql: format!(
                "{}VALUES {}",
                T::insert_into(),
                vec![tuple.as_str(); chunk.len()].join(", ")
            ),
            values: chunk
                .iter()
                .flat_map(|row| row.cells().into_iter().map(owned_value))
                .collect(),
        })
        .collect()
}

/// A cell as an owned SQLite value.
fn owned_value(cell: Cell<'_>) -> Value {
    match cell {
        Cell::Text(v) => Value::Text(v.to_owned()),
        Cell::OptText(v) => v.map_or(Value::Null, |v| Value::Text(v.to_owned())),
        Cell::Int(v) => Value::Integer(v),
        Cell::OptInt(v) => v.map_or(Value::Null, Value::Integer),
        Cell::Bool(v) => Value::Integer(i64::from(v)),
    }
}

/// Saves a grant with its first tokens; false (and nothing saved) if its session has ended.
/// INSERT … SELECT: nothing is written for a session that has ended meanwhile.
fn insert_grant(
    c: &Connection,
    g: &Grant,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<bool> {
    let n = exec(
        c,
        "INSERT INTO oidc_grants (id, client_id, session_id, username, attributes, scope, auth_time, \
         backchannel_logout_uri, created_at) SELECT ?, ?, id, ?, ?, ?, ?, ?, ? FROM sessions WHERE id = ?",
        params![
            g.id,
            g.client_id,
            g.username,
            to_json(&g.attributes),
            scope_string(&g.scope),
            ts(g.auth_time),
            g.backchannel_logout_uri,
            ts(g.created_at),
            g.session_id.as_str(),
        ],
    )?;
    if n == 0 {
        return Ok(false);
    }
    insert_tokens(c, access, refresh)?;
    Ok(true)
}

/// Saves the tokens of a grant.
fn insert_tokens(
    c: &Connection,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO oidc_access_tokens (token_key, grant_id, scope, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        params![
            access.key.as_str(),
            access.grant_id,
            scope_string(&access.scope),
            ts(access.issued_at),
            ts(access.expires_at),
        ],
    )?;
    if let Some(r) = refresh {
        exec(
            c,
            "INSERT INTO oidc_refresh_tokens (token_key, grant_id, expires_at, rotated_at) VALUES (?, ?, ?, ?)",
            params![r.key.as_str(), r.grant_id, ts(r.expires_at), ts_opt(r.rotated_at)],
        )?;
    }
    Ok(())
}

/// Records that session `session` entered a service. INSERT … SELECT: nothing is written for a
/// session that has ended meanwhile.
fn insert_access(c: &Connection, session: &str, a: &ServiceAccess) -> StoreResult<()> {
    exec(
        c,
        "INSERT INTO session_services (session_id, service, ticket, validated_at) \
         SELECT id, ?, ?, ? FROM sessions WHERE id = ? \
         ON CONFLICT (session_id, service) DO UPDATE SET ticket = excluded.ticket, \
         validated_at = excluded.validated_at",
        params![a.service, a.ticket, ts(a.validated_at), session],
    )?;
    Ok(())
}

/// The row `sql` finds for `key` (a token's, read with the registry version: one row whatever
/// the key, its `grant_id` NULL when there is none), unless the registry version has moved from
/// `decided_at` (if given): [`StoreError::RegistryChanged`].
fn read_decided<R: FromSqlite>(
    c: &Connection,
    sql: &str,
    key: &str,
    decided_at: Option<i64>,
) -> StoreResult<Option<R>> {
    let (version, row) = c.prepare_cached(sql)?.query_row([key], |row| {
        let version: i64 = row.get("version")?;
        let found = row.get::<_, Option<String>>("grant_id")?.is_some();
        Ok((version, found.then(|| R::read(row)).transpose()?))
    })?;
    if registry_moved(decided_at, version) {
        return Err(StoreError::RegistryChanged);
    }
    Ok(row)
}

/// [`StoreError::RegistryChanged`] unless the registry version is still `decided_at` (if given).
fn still_current(c: &Connection, decided_at: Option<i64>) -> StoreResult<()> {
    let Some(decided_at) = decided_at else {
        return Ok(());
    };
    match scalar::<i64>(c, REGISTRY_VERSION, [])? {
        Some(version) if version == decided_at => Ok(()),
        _ => Err(StoreError::RegistryChanged),
    }
}

/// Whether the session `id` has not ended (tickets outlive their session until the sweep).
fn session_exists(c: &Connection, id: &str) -> StoreResult<bool> {
    let found = scalar::<bool>(
        c,
        "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?)",
        [id],
    )?;
    Ok(found.unwrap_or(false))
}

/// Marks the session with id `id` used (`touch.at`) and moves its expiry.
fn touch_in(c: &Connection, id: &str, touch: SessionTouch) -> StoreResult<()> {
    exec(
        c,
        "UPDATE sessions SET last_used_at = ?, expires_at = ? WHERE id = ?",
        params![ts(touch.at), ts(touch.expires_at), id],
    )?;
    Ok(())
}
