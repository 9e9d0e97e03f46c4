//! The PostgreSQL backend: one database shared by several Tessera nodes.
//!
//! Every method is one autocommitted statement or one transaction, so a committed ticket survives a
//! crash of any node. Takes are `DELETE … RETURNING`, so of two nodes taking a ticket one gets it;
//! the single-logout queue is claimed with `FOR UPDATE SKIP LOCKED`, so two nodes never claim the
//! same delivery; ending sessions locks them first, so two nodes ending one session queue its
//! logout once. Migrations run under sqlx's PostgreSQL advisory lock, so nodes starting together
//! apply them once.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{FromRow, Row};
use sqlx_postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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
    conflict_as, ended_sessions, millis, to_json, ts, FailureRow, KeyedFailureRow, PgtRow,
    ServicePolicyColumns, ServiceRow, ServiceTicketRow, SessionAccessRow, SessionClientRow,
    SessionRow, SloRow, UserRow, PGT_COLUMNS, SERVICE_COLUMNS, SERVICE_TICKET_COLUMNS,
    SESSION_COLUMNS, SLO_COLUMNS,
};
use crate::rows::{Cell, Table, MAX_BINDS};
use crate::snapshot::{
    count_rows_sql, refuse_unless_empty, snapshot_tables, ImportCounts, Snapshot,
};
use crate::{
    registry_moved, AccessRule, CodeRedemption, EndedSession, GrantRule, LoginFailures, NewGrant,
    PoolUsage, ServiceAccess, SessionTouch, SigningKeyRecord, SloDelivery, Store, StoreError,
    StoreResult, UserRecord,
};

/// Connections one node keeps open at most.
const MAX_CONNECTIONS: u32 = 10;
/// How long a query waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection is checked before use once it has been idle this long.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A store in a PostgreSQL database, which several nodes may share.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// A service a session entered again replaces its record: single logout names the latest ticket.
const ACCESS_UPSERT: &str = "ON CONFLICT (session_id, service) DO UPDATE \
     SET ticket = excluded.ticket, validated_at = excluded.validated_at";

/// The registry version (see [`Store::registry_version`]).
const REGISTRY_VERSION: &str = "SELECT version FROM registry_version WHERE id = 1";

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or
    /// `postgresql://…`, with libpq-style query parameters such as `sslmode`) and migrates it. The
    /// database must exist; its tables are created on first start.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let bad = |reason: String| StoreError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        if !crate::is_postgres_url(url) {
            return Err(bad("expected postgres://USER@HOST/DATABASE".to_owned()));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| bad(e.to_string()))?
            .application_name("tessera");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A connection in steady use is not pinged before each statement (a round trip per
            // store call); one left idle for a while is, so that a restarted server is noticed.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_AFTER_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        // The migrator holds `pg_advisory_lock` (keyed by the database name) while it checks and
        // applies migrations, so nodes starting at once wait for each other instead of racing.
        if let Err(e) = sqlx::migrate!("./migrations/postgres").run(&pool).await {
            // A failed run may leave the session lock on a pooled connection: close them all.
            pool.close().await;
            return Err(e.into());
        }
        Ok(Self { pool })
    }

    /// Answers a redemption of a code that is not (or no longer) unspent: unknown, or a replay,
    /// which revokes the grant made from the code, in one statement.
    async fn redeem_spent(&self, key: &TicketKey) -> StoreResult<(CodeRedemption, bool)> {
        let known: bool = sqlx::query_scalar(
            "WITH spent AS (SELECT grant_id FROM oidc_codes WHERE code_key = $1), \
                  revoked AS (DELETE FROM oidc_grants WHERE id IN (SELECT grant_id FROM spent)) \
             SELECT EXISTS (SELECT 1 FROM spent)",
        )
        .bind(key.as_str())
        .fetch_one(&self.pool)
        .await?;
        let outcome = if known {
            CodeRedemption::Replayed
        } else {
            CodeRedemption::Unknown
        };
        Ok((outcome, false))
    }

    /// Runs `insert`, an INSERT that inserts nothing when the registry version is no longer the
    /// one its row was decided under, and with a `touch` the touch of session `session_id` in the
    /// same transaction: [`StoreError::RegistryChanged`] (nothing written, nothing touched) if it
    /// inserted nothing.
    async fn insert_decided(
        &self,
        insert: sqlx::query::Query<'_, sqlx_postgres::Postgres, sqlx_postgres::PgArguments>,
        session_id: &str,
        touch: Option<SessionTouch>,
    ) -> StoreResult<()> {
        let inserted = match touch {
            None => insert.execute(&self.pool).await?.rows_affected(),
            Some(touch) => {
                let mut tx = self.pool.begin().await?;
                let inserted = insert.execute(&mut *tx).await?.rows_affected();
                if inserted > 0 {
                    touch_in(&mut tx, session_id, touch).await?;
                    tx.commit().await?;
                }
                inserted
            }
        };
        match inserted {
            0 => Err(StoreError::RegistryChanged),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn get_user(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query_as::<_, UserRow>(
            "SELECT username, password_hash, attributes FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await?
        .map(UserRecord::try_from)
        .transpose()
    }

    async fn put_user(&self, user: &UserRecord, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (username, password_hash, attributes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(to_json(&user.attributes))
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(conflict_as(|| format!("user {}", user.username)))?;
        Ok(())
    }

    async fn put_password_hash(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
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
        let done = sqlx::query("UPDATE users SET attributes = $1 WHERE username = $2")
            .bind(to_json(attributes))
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user(&self, username: &str, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        end_sessions(&mut tx, Ended::OfUser(username), now).await?;
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
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
        sqlx::query_as::<_, ServiceRow>(&format!(
            "SELECT {SERVICE_COLUMNS} FROM services ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(RegisteredService::try_from)
        .collect()
    }

    async fn put_service(&self, s: &RegisteredService) -> StoreResult<()> {
        let policy = ServicePolicyColumns::of(s);
        sqlx::query(&format!(
            "INSERT INTO services ({SERVICE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
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
        .bind(s.proxy_callback.as_ref().map(ServicePattern::source))
        .bind(s.proxy_target)
        .bind(&s.theme)
        .bind(&s.description)
        .execute(&self.pool)
        .await
        .map_err(conflict_as(|| format!("service {}", s.name)))?;
        Ok(())
    }

    async fn delete_service(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM services WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_session(&self, s: &SsoSession, expires_at: Timestamp) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
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
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tgt_key = $1"
        ))
        .bind(tgt.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(SsoSession::try_from)
        .transpose()
    }

    async fn renew_session(
        &self,
        old_tgt: &TicketKey,
        s: &SsoSession,
        expires_at: Timestamp,
    ) -> StoreResult<bool> {
        let renewed = sqlx::query(
            "UPDATE sessions SET tgt_key = $1, attributes = $2, authenticated_at = $3, \
             last_used_at = $4, long_term = $5, warn = $6, expires_at = $7 \
             WHERE id = $8 AND tgt_key = $9 AND username = $10",
        )
        .bind(s.tgt.as_str())
        .bind(to_json(&s.attributes))
        .bind(ts(s.authenticated_at))
        .bind(ts(s.last_used_at))
        .bind(s.long_term)
        .bind(s.warn)
        .bind(ts(expires_at))
        .bind(s.id.as_str())
        .bind(old_tgt.as_str())
        .bind(&s.username)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn touch_session(
        &self,
        id: &SessionId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        let touch = SessionTouch {
            at: now,
            expires_at,
        };
        touch_in(&mut conn, id.as_str(), touch).await
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
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE ($1::TEXT IS NULL OR username = $1) \
             ORDER BY authenticated_at"
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
        decided_at: Option<i64>,
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO service_tickets ({SERVICE_TICKET_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE $11::BIGINT IS NULL OR $11 = ({REGISTRY_VERSION})"
        );
        let insert = sqlx::query(&sql)
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
            .bind(decided_at);
        self.insert_decided(insert, t.session_id.as_str(), touch)
            .await
    }

    async fn take_service_ticket_recording(
        &self,
        key: &TicketKey,
        entered: AccessRule,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<ServiceTicket>> {
        // A saved ticket never changes: the rule decides on the ticket as read, and one statement
        // then takes it and records what the rule said, in one commit (a transaction of four
        // statements took five round trips).
        let sql = format!(
            "SELECT registry_version.version, {SERVICE_TICKET_COLUMNS}, \
                    EXISTS (SELECT 1 FROM sessions WHERE sessions.id = session_id) AS live \
             FROM registry_version LEFT JOIN service_tickets ON ticket_key = $1 \
             WHERE registry_version.id = 1"
        );
        let Some(peeked) = read_decided(&self.pool, &sql, key, "ticket_key", decided_at).await?
        else {
            return Ok(None);
        };
        let ticket = ServiceTicket::try_from(ServiceTicketRow::from_row(&peeked)?)?;
        // A ticket whose session has ended is taken and not returned, and nothing is decided.
        let live_when_read: bool = peeked.try_get("live")?;
        let access = live_when_read.then(|| entered(&ticket)).flatten();
        // The ticket goes only under the registry the rule decided with; the access is recorded
        // only if the ticket's session still exists (locked so that it cannot end before this
        // commits: see `insert_access`). A ticket whose session has ended is taken all the same.
        let (taken, live, version): (bool, bool, i64) = sqlx::query_as(&format!(
            "WITH taken AS (DELETE FROM service_tickets WHERE ticket_key = $1 \
                            AND ($2::BIGINT IS NULL OR $2 = ({REGISTRY_VERSION})) \
                            RETURNING session_id), \
                  live AS (SELECT sessions.id FROM sessions JOIN taken ON sessions.id = taken.session_id \
                           FOR KEY SHARE OF sessions), \
                  recorded AS (INSERT INTO session_services (session_id, service, ticket, validated_at) \
                               SELECT id, $3, $4, $5 FROM live WHERE $3::TEXT IS NOT NULL \
                               {ACCESS_UPSERT}) \
             SELECT EXISTS (SELECT 1 FROM taken), EXISTS (SELECT 1 FROM live), ({REGISTRY_VERSION})"
        ))
        .bind(key.as_str())
        .bind(decided_at)
        .bind(access.as_ref().map(|a| a.service.as_str()))
        .bind(access.as_ref().map(|a| a.ticket.as_str()))
        .bind(access.as_ref().map(|a| ts(a.validated_at)))
        .fetch_one(&self.pool)
        .await?;
        match (taken, live) {
            (true, true) if live_when_read => Ok(Some(ticket)),
            (true, _) => Ok(None),
            // Taken meanwhile by another validation, or the services changed since the read.
            (false, _) if registry_moved(decided_at, version) => Err(StoreError::RegistryChanged),
            (false, _) => Ok(None),
        }
    }

    async fn put_service_access(&self, session: &SessionId, a: &ServiceAccess) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_access(&mut conn, session.as_str(), a).await
    }

    async fn put_proxy_granting_ticket(&self, p: &ProxyGrantingTicket) -> StoreResult<()> {
        // As put_service_access: a session ended meanwhile saves nothing (rather than failing
        // the foreign key check).
        sqlx::query(&format!(
            "INSERT INTO proxy_granting_tickets ({PGT_COLUMNS}) \
             SELECT $1, id, $2, $3, $4, $5, $6, $7 FROM sessions WHERE id = $8 FOR KEY SHARE"
        ))
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
        sqlx::query_as::<_, PgtRow>(&format!(
            "SELECT {PGT_COLUMNS} FROM proxy_granting_tickets WHERE ticket_key = $1"
        ))
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(ProxyGrantingTicket::try_from)
        .transpose()
    }

    async fn put_login_ticket(&self, key: &TicketKey, expires_at: Timestamp) -> StoreResult<()> {
        sqlx::query("INSERT INTO login_tickets (ticket_key, expires_at) VALUES ($1, $2)")
            .bind(key.as_str())
            .bind(ts(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn take_login_ticket(&self, key: &TicketKey, now: Timestamp) -> StoreResult<bool> {
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM login_tickets WHERE ticket_key = $1 RETURNING expires_at",
        )
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(expires_at.is_some_and(|e| e > ts(now)))
    }

    async fn get_login_failures_of(
        &self,
        keys: &[&str],
    ) -> StoreResult<Vec<Option<LoginFailures>>> {
        let found = sqlx::query_as::<_, KeyedFailureRow>(
            "SELECT throttle_key, failures, first_at, last_at FROM login_failures \
             WHERE throttle_key = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(KeyedFailureRow::in_order_of(keys, found))
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        window: Duration,
    ) -> StoreResult<LoginFailures> {
        let row = sqlx::query_as::<_, FailureRow>(
            "INSERT INTO login_failures AS f (throttle_key, failures, first_at, last_at) \
             VALUES ($1, 1, $2, $2) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN $2 - f.last_at > $3 THEN 1 ELSE f.failures + 1 END, \
               first_at = CASE WHEN $2 - f.last_at > $3 THEN $2 ELSE f.first_at END, \
               last_at = $2 \
             RETURNING failures, first_at, last_at",
        )
        .bind(key)
        .bind(ts(now))
        .bind(millis(window))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn delete_login_failures(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
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
        // SKIP LOCKED: rows another node is claiming right now are passed over rather than waited
        // for, and a row it has claimed is re-checked against `claimed_until` once its claim
        // commits, so each row goes to one node.
        Ok(sqlx::query_as::<_, SloRow>(&format!(
            "WITH claimed AS ( \
               UPDATE slo_queue SET claimed_until = $1, attempts = attempts + 1 WHERE id IN \
                 (SELECT id FROM slo_queue WHERE due_at <= $2 AND claimed_until <= $2 \
                  ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
               RETURNING {SLO_COLUMNS}) \
             SELECT {SLO_COLUMNS} FROM claimed ORDER BY id"
        ))
        .bind(ts(now.plus(lease)))
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    async fn delete_slo_delivery(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM slo_queue WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn retry_slo_delivery(&self, id: i64, due_at: Timestamp, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE slo_queue SET due_at = $1, claimed_until = 0, last_error = $2 WHERE id = $3",
        )
        .bind(ts(due_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_slo_deliveries(&self) -> StoreResult<Vec<SloDelivery>> {
        Ok(
            sqlx::query_as::<_, SloRow>(&format!(
                "SELECT {SLO_COLUMNS} FROM slo_queue ORDER BY id"
            ))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
        )
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
        let cols = ClientColumns::of(c);
        sqlx::query(&format!(
            "INSERT INTO oidc_clients ({CLIENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
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
        .execute(&self.pool)
        .await
        .map_err(conflict_as(|| format!("client {}", c.id)))?;
        Ok(())
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM oidc_clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for sql in [
            "DELETE FROM oidc_grants WHERE client_id = $1",
            "DELETE FROM oidc_codes WHERE client_id = $1",
            "DELETE FROM oidc_consents WHERE client_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_authorization_code(
        &self,
        c: &AuthorizationCode,
        touch: Option<SessionTouch>,
        decided_at: Option<i64>,
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO oidc_codes ({CODE_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE $12::BIGINT IS NULL OR $12 = ({REGISTRY_VERSION})"
        );
        let insert = sqlx::query(&sql)
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
            .bind(ts(c.expires_at))
            .bind(decided_at);
        self.insert_decided(insert, c.session_id.as_str(), touch)
            .await
    }

    async fn redeem_authorization_code_granting(
        &self,
        key: &TicketKey,
        grant_id: &str,
        issue: GrantRule,
        decided_at: Option<i64>,
    ) -> StoreResult<(CodeRedemption, bool)> {
        // A code changes only when it is redeemed: one not redeemed yet, as read, is what the rule
        // decides on, and one statement then redeems it (the conditional update is the
        // compare-and-set: of two redemptions, the second waits for the first's row lock, then
        // finds `grant_id` set) and saves the grant with its tokens. Two round trips where a
        // transaction took seven.
        let sql = format!(
            "SELECT registry_version.version, {CODE_COLUMNS} \
             FROM registry_version \
             LEFT JOIN oidc_codes ON code_key = $1 AND grant_id IS NULL \
             WHERE registry_version.id = 1"
        );
        let Some(read) = read_decided(&self.pool, &sql, key, "code_key", decided_at).await? else {
            return self.redeem_spent(key).await;
        };
        let code = AuthorizationCode::try_from(CodeRow::from_row(&read)?)?;
        let new = issue(&code);
        match redeem_granting(&self.pool, key, grant_id, new.as_ref(), decided_at).await? {
            Redeemed::Now(granted) => Ok((CodeRedemption::Redeemed(Box::new(code)), granted)),
            Redeemed::Before => self.redeem_spent(key).await,
            Redeemed::NotUnderDecidedVersion => Err(StoreError::RegistryChanged),
        }
    }

    async fn put_grant(
        &self,
        g: &Grant,
        access: &AccessToken,
        refresh: Option<&RefreshToken>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        if !insert_grant(&mut tx, g, access, refresh).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn get_access_token(
        &self,
        key: &TicketKey,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<(AccessToken, Grant)>> {
        let sql = access_token_with_version("$1");
        read_decided(&self.pool, &sql, key, "grant_id", decided_at)
            .await?
            .map(|row| AccessRow::from_row(&row)?.try_into())
            .transpose()
    }

    async fn get_refresh_token(
        &self,
        key: &TicketKey,
        decided_at: Option<i64>,
    ) -> StoreResult<Option<(RefreshToken, Grant)>> {
        let sql = refresh_token_with_version("$1");
        read_decided(&self.pool, &sql, key, "grant_id", decided_at)
            .await?
            .map(|row| RefreshRow::from_row(&row)?.try_into())
            .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old: &TicketKey,
        now: Timestamp,
        access: &AccessToken,
        refresh: &RefreshToken,
        decided_at: Option<i64>,
    ) -> StoreResult<bool> {
        // One statement where a transaction took six round trips. The grant is held first (its
        // scalar subquery runs before the update scans), as the new tokens' foreign keys would
        // hold it: a concurrent revocation either happens before (and this finds nothing) or
        // waits for this to commit, never deadlocking against it. With `decided_at`, the
        // registry version is checked in the same statement and read back to tell a change of
        // the clients from a token that is gone.
        let (rotated, version): (bool, i64) = sqlx::query_as(&format!(
            "WITH held AS (SELECT id FROM oidc_grants WHERE id = $3 FOR KEY SHARE), \
                  rotated AS (UPDATE oidc_refresh_tokens SET rotated_at = COALESCE(rotated_at, $1) \
                              WHERE token_key = $2 AND grant_id = (SELECT id FROM held) \
                              AND ($11::BIGINT IS NULL OR $11 = ({REGISTRY_VERSION})) \
                              RETURNING grant_id), \
                  access AS (INSERT INTO oidc_access_tokens (token_key, grant_id, scope, \
                                 issued_at, expires_at) \
                             SELECT $4, grant_id, $5, $6, $7 FROM rotated), \
                  refresh AS (INSERT INTO oidc_refresh_tokens (token_key, grant_id, expires_at, \
                                  rotated_at) \
                              SELECT $8, grant_id, $9, $10 FROM rotated) \
             SELECT EXISTS (SELECT 1 FROM rotated), ({REGISTRY_VERSION})"
        ))
        .bind(ts(now))
        .bind(old.as_str())
        .bind(&refresh.grant_id)
        .bind(access.key.as_str())
        .bind(scope_string(&access.scope))
        .bind(ts(access.issued_at))
        .bind(ts(access.expires_at))
        .bind(refresh.key.as_str())
        .bind(ts(refresh.expires_at))
        .bind(ts_opt(refresh.rotated_at))
        .bind(decided_at)
        .fetch_one(&self.pool)
        .await?;
        if !rotated && registry_moved(decided_at, version) {
            return Err(StoreError::RegistryChanged);
        }
        Ok(rotated)
    }

    async fn delete_access_token(&self, key: &TicketKey) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM oidc_access_tokens WHERE token_key = $1")
            .bind(key.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_grant(&self, grant_id: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM oidc_grants WHERE id = $1")
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_consent(
        &self,
        username: &str,
        client_id: &str,
    ) -> StoreResult<Option<Vec<String>>> {
        let scope: Option<String> = sqlx::query_scalar(
            "SELECT scope FROM oidc_consents WHERE username = $1 AND client_id = $2",
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
        sqlx::query(
            "INSERT INTO oidc_consents (username, client_id, scope, granted_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (username, client_id) DO UPDATE \
             SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(username)
        .bind(client_id)
        .bind(scope_string(scope))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
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
        let mut tx = self.pool.begin().await?;
        // Two nodes rotating at once would each retire only the keys they saw and both leave
        // theirs unretired; this lock (which readers ignore) makes them take turns, as SQLite's
        // single writer does.
        sqlx::query("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND (retired_at IS NULL OR retired_at > $1)",
        )
        .bind(ts(k.active_from))
        .bind(k.alg.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
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

    async fn delete_retired_signing_keys(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM signing_keys WHERE retired_at < $1")
            .bind(ts(before))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn registry_version(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(REGISTRY_VERSION)
            .fetch_one(&self.pool)
            .await?)
    }

    async fn get_or_put_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        // Of two nodes racing, the second waits for the first's insert and then keeps its value.
        let stored: String = sqlx::query_scalar(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = settings.value RETURNING value",
        )
        .bind(name)
        .bind(value)
        .fetch_one(&self.pool)
        .await?;
        Ok(stored)
    }

    async fn export_all(&self) -> StoreResult<Snapshot> {
        // One snapshot for every table, whatever other nodes write meanwhile.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
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
        let mut tx = self.pool.begin().await?;
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
        // The queue kept its ids: the next one comes after them.
        sqlx::query(
            "SELECT setval(pg_get_serial_sequence('slo_queue', 'id'), COALESCE(MAX(id), 0) + 1, false) \
             FROM slo_queue",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ImportCounts { tables })
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            connections: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
        }
    }

    async fn delete_expired(&self, now: Timestamp, failure_window: Duration) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = u64::try_from(
            end_sessions(&mut tx, Ended::ExpiredBy(ts(now)), now)
                .await?
                .len(),
        )
        .unwrap_or(u64::MAX);
        for (sql, cutoff) in [
            (
                "DELETE FROM service_tickets WHERE expires_at <= $1",
                ts(now),
            ),
            (
                "DELETE FROM proxy_granting_tickets WHERE expires_at <= $1",
                ts(now),
            ),
            ("DELETE FROM login_tickets WHERE expires_at <= $1", ts(now)),
            ("DELETE FROM oidc_codes WHERE expires_at <= $1", ts(now)),
            (
                "DELETE FROM oidc_access_tokens WHERE expires_at <= $1",
                ts(now),
            ),
            (
                "DELETE FROM oidc_refresh_tokens WHERE expires_at <= $1",
                ts(now),
            ),
            (
                "DELETE FROM login_failures WHERE last_at <= $1",
                ts(now).saturating_sub(millis(failure_window)),
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

/// Ends the selected sessions inside `tx`: their services move to the single-logout queue (due
/// `now`), their unvalidated tickets and proxy-granting tickets go with them (foreign key
/// cascade), and they are returned.
///
/// The sessions are locked first (in id order, so two transactions ending overlapping sets cannot
/// deadlock), and every later statement is confined to the locked ids: of two nodes ending the
/// same session, the second waits for the first and then finds it gone, so its logout is queued
/// once.
async fn end_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx_postgres::Postgres>,
    which: Ended<'_>,
    now: Timestamp,
) -> StoreResult<Vec<EndedSession>> {
    let lock = |cond: &str| format!("SELECT id FROM sessions WHERE {cond} ORDER BY id FOR UPDATE");
    let query = match which {
        Ended::Tgt(_) => lock("tgt_key = $1"),
        Ended::Id(_) => lock("id = $1"),
        Ended::OfUser(_) => lock("username = $1"),
        Ended::ExpiredBy(_) => lock("expires_at <= $1"),
    };
    let query = sqlx::query_scalar::<_, String>(&query);
    let query = match which {
        Ended::Tgt(v) | Ended::Id(v) | Ended::OfUser(v) => query.bind(v),
        Ended::ExpiredBy(t) => query.bind(t),
    };
    let ids: Vec<String> = query.fetch_all(&mut **tx).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "INSERT INTO slo_queue (session_id, username, service, ticket, created_at, due_at) \
         SELECT ss.session_id, s.username, ss.service, ss.ticket, $2, $2 \
         FROM session_services ss JOIN sessions s ON s.id = ss.session_id \
         WHERE s.id = ANY($1) ORDER BY ss.session_id, ss.validated_at, ss.service",
    )
    .bind(&ids)
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    // One back-channel logout per client of the session that registered a logout URI.
    sqlx::query(
        "INSERT INTO slo_queue (session_id, username, service, ticket, created_at, due_at, client_id) \
         SELECT g.session_id, s.username, MIN(g.backchannel_logout_uri), '', $2, $2, g.client_id \
         FROM oidc_grants g JOIN sessions s ON s.id = g.session_id \
         WHERE s.id = ANY($1) AND g.backchannel_logout_uri IS NOT NULL \
         GROUP BY g.session_id, s.username, g.client_id ORDER BY g.session_id, g.client_id",
    )
    .bind(&ids)
    .bind(ts(now))
    .execute(&mut **tx)
    .await?;
    let clients: Vec<SessionClientRow> = sqlx::query_as(
        "DELETE FROM oidc_grants WHERE session_id = ANY($1) RETURNING session_id, client_id",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let accesses: Vec<SessionAccessRow> = sqlx::query_as(
        "DELETE FROM session_services WHERE session_id = ANY($1) \
         RETURNING session_id, service, ticket, validated_at",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let sessions: Vec<SessionRow> = sqlx::query_as(&format!(
        "DELETE FROM sessions WHERE id = ANY($1) RETURNING {SESSION_COLUMNS}"
    ))
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    ended_sessions(sessions, &accesses, &clients)
}

/// Every row of table `T`, in primary-key order.
async fn export_rows<T>(
    tx: &mut sqlx::Transaction<'_, sqlx_postgres::Postgres>,
) -> StoreResult<Vec<T>>
where
    T: Table + for<'r> sqlx::FromRow<'r, sqlx_postgres::PgRow> + Send + Unpin,
{
    Ok(sqlx::query_as::<_, T>(&T::select_all())
        .fetch_all(&mut **tx)
        .await?)
}

/// Inserts `rows` into table `T`, many per statement; returns how many were written.
async fn import_rows<T: Table>(
    tx: &mut sqlx::Transaction<'_, sqlx_postgres::Postgres>,
    rows: &[T],
) -> StoreResult<u64> {
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let per_statement = (MAX_BINDS / first.cells().len().max(1)).max(1);
    let mut written = 0;
    for chunk in rows.chunks(per_statement) {
        let mut insert = sqlx::QueryBuilder::<sqlx_postgres::Postgres>::new(T::insert_into());
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
    tx: &mut sqlx::Transaction<'_, sqlx_postgres::Postgres>,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_access_tokens (token_key, grant_id, scope, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
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
            "INSERT INTO oidc_refresh_tokens (token_key, grant_id, expires_at, rotated_at) \
             VALUES ($1, $2, $3, $4)",
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
    conn: &mut sqlx_postgres::PgConnection,
    id: &str,
    touch: SessionTouch,
) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3")
        .bind(ts(touch.at))
        .bind(ts(touch.expires_at))
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that session `session` entered a service.
///
/// INSERT … SELECT: nothing is written for a session that has ended meanwhile. FOR KEY SHARE
/// orders this write with a concurrent end of the session (which locks it FOR UPDATE) and lets
/// touch_session through: either this row is in place before the session ends, and is queued for
/// logout, or the session is found gone.
async fn insert_access(
    conn: &mut sqlx_postgres::PgConnection,
    session: &str,
    a: &ServiceAccess,
) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO session_services (session_id, service, ticket, validated_at) \
         SELECT id, $1, $2, $3 FROM sessions WHERE id = $4 FOR KEY SHARE {ACCESS_UPSERT}"
    ))
    .bind(&a.service)
    .bind(&a.ticket)
    .bind(ts(a.validated_at))
    .bind(session)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `sql`, a read of the row with `key` (bound as `$1`) left-joined to the registry version
/// (as `version`): [`StoreError::RegistryChanged`] if the version has moved from `decided_at`,
/// `None` if there is no such row (its `key_column` is NULL).
async fn read_decided(
    pool: &PgPool,
    sql: &str,
    key: &TicketKey,
    key_column: &str,
    decided_at: Option<i64>,
) -> StoreResult<Option<sqlx_postgres::PgRow>> {
    let row = sqlx::query(sql).bind(key.as_str()).fetch_one(pool).await?;
    if registry_moved(decided_at, row.try_get("version")?) {
        return Err(StoreError::RegistryChanged);
    }
    Ok(row
        .try_get::<Option<String>, _>(key_column)?
        .is_some()
        .then_some(row))
}

/// What [`redeem_granting`] did.
enum Redeemed {
    /// Redeemed now; whether the grant was saved.
    Now(bool),
    /// Redeemed before (by a request that won the race): nothing written.
    Before,
    /// Not redeemed: the registry version has moved from `decided_at`.
    NotUnderDecidedVersion,
}

/// Redeems the unspent code with this key (binding it to `grant_id`) under registry version
/// `decided_at` (if given) and saves `new`, its grant and first tokens, in one statement: whether
/// the grant was saved (not without one, nor for a session that has ended: the code is redeemed
/// all the same). The session is locked as in `insert_grant`.
async fn redeem_granting(
    pool: &PgPool,
    key: &TicketKey,
    grant_id: &str,
    new: Option<&NewGrant>,
    decided_at: Option<i64>,
) -> StoreResult<Redeemed> {
    let grant = new.map(|n| &n.grant);
    let access = new.map(|n| &n.access);
    let refresh = new.and_then(|n| n.refresh.as_ref());
    let (redeemed, granted, version): (bool, bool, i64) = sqlx::query_as(&format!(
        "WITH redeemed AS (UPDATE oidc_codes SET grant_id = $1 \
                           WHERE code_key = $2 AND grant_id IS NULL \
                           AND ($19::BIGINT IS NULL OR $19 = ({REGISTRY_VERSION})) \
                           RETURNING code_key), \
              live AS (SELECT sessions.id FROM sessions, redeemed \
                       WHERE sessions.id = $3 FOR KEY SHARE OF sessions), \
              granted AS (INSERT INTO oidc_grants (id, client_id, session_id, username, attributes, \
                              scope, auth_time, backchannel_logout_uri, created_at) \
                          SELECT $4, $5, id, $6, $7, $8, $9, $10, $11 FROM live RETURNING id), \
              access AS (INSERT INTO oidc_access_tokens (token_key, grant_id, scope, issued_at, \
                             expires_at) \
                         SELECT $12, id, $13, $14, $15 FROM granted), \
              refresh AS (INSERT INTO oidc_refresh_tokens (token_key, grant_id, expires_at, \
                              rotated_at) \
                          SELECT $16, id, $17, $18 FROM granted WHERE $16::TEXT IS NOT NULL) \
         SELECT EXISTS (SELECT 1 FROM redeemed), EXISTS (SELECT 1 FROM granted), \
                ({REGISTRY_VERSION})"
    ))
    .bind(grant_id)
    .bind(key.as_str())
    .bind(grant.map(|g| g.session_id.as_str()))
    .bind(grant.map(|g| g.id.as_str()))
    .bind(grant.map(|g| g.client_id.as_str()))
    .bind(grant.map(|g| g.username.as_str()))
    .bind(grant.map(|g| to_json(&g.attributes)))
    .bind(grant.map(|g| scope_string(&g.scope)))
    .bind(grant.map(|g| ts(g.auth_time)))
    .bind(grant.and_then(|g| g.backchannel_logout_uri.as_deref()))
    .bind(grant.map(|g| ts(g.created_at)))
    .bind(access.map(|a| a.key.as_str()))
    .bind(access.map(|a| scope_string(&a.scope)))
    .bind(access.map(|a| ts(a.issued_at)))
    .bind(access.map(|a| ts(a.expires_at)))
    .bind(refresh.map(|r| r.key.as_str()))
    .bind(refresh.map(|r| ts(r.expires_at)))
    .bind(refresh.and_then(|r| ts_opt(r.rotated_at)))
    .bind(decided_at)
    .fetch_one(pool)
    .await?;
    Ok(match (redeemed, decided_at) {
        (true, _) => Redeemed::Now(granted),
        (false, _) if registry_moved(decided_at, version) => Redeemed::NotUnderDecidedVersion,
        (false, _) => Redeemed::Before,
    })
}

/// Saves a grant with its first tokens; false (and nothing saved) if its session has ended.
///
/// INSERT … SELECT … FOR KEY SHARE: nothing is written for a session that has ended meanwhile,
/// and the session cannot end before this commits (see `insert_access`).
async fn insert_grant(
    tx: &mut sqlx::Transaction<'_, sqlx_postgres::Postgres>,
    g: &Grant,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO oidc_grants (id, client_id, session_id, username, attributes, scope, \
         auth_time, backchannel_logout_uri, created_at) \
         SELECT $1, $2, id, $3, $4, $5, $6, $7, $8 FROM sessions WHERE id = $9 FOR KEY SHARE",
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
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    insert_tokens(tx, access, refresh).await?;
    Ok(true)
}
