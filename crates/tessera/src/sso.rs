//! The SSO session flows every protocol shares: find the browser's session, start one after a
//! login, end one, and issue a service ticket from one. Handlers call these; they hold no protocol
//! rule themselves (those are in `tessera-protocol`) and no SQL (that is in `tessera-store`).

use axum::http::HeaderMap;
use tessera_protocol::cas::validate::ServiceTicket;
use tessera_protocol::service::ServiceUrl;
use tessera_protocol::session::{SessionId, SsoSession};
use tessera_protocol::ticket::{ServiceTicketId, TicketGrantingTicketId, TicketKey};
use tessera_protocol::Timestamp;
use tessera_store::{EndedSession, SessionTouch, StoreResult};

use crate::app::AppState;
use crate::audit::audit;
use crate::auth::AuthenticatedUser;
use crate::http::extract::cookie;

/// The browser's session, as found from its TGC cookie.
#[derive(Debug, Default)]
pub struct CurrentSession {
    /// The live session, if any.
    pub session: Option<SsoSession>,
    /// The browser sent a cookie that names no live session: it should be cleared.
    pub stale_cookie: bool,
}

/// Looks up the session named by the request's TGC cookie. An unknown, malformed or expired cookie
/// counts as no session (CAS 3.0 §2.1.1) and is reported as stale.
pub async fn current_session(
    app: &AppState,
    headers: &HeaderMap,
    now: Timestamp,
) -> StoreResult<CurrentSession> {
    let Some(value) = cookie(headers, &app.settings.session.cookie_name) else {
        return Ok(CurrentSession::default());
    };
    let session = match TicketGrantingTicketId::parse(&value) {
        Some(tgt) => session_by_tgt(app, &tgt, now).await?,
        None => None,
    };
    let stale_cookie = session.is_none();
    Ok(CurrentSession {
        session,
        stale_cookie,
    })
}

/// The live session whose TGT is `tgt` (from a cookie or a REST URL): unknown and expired
/// sessions are `None`.
pub async fn session_by_tgt(
    app: &AppState,
    tgt: &TicketGrantingTicketId,
    now: Timestamp,
) -> StoreResult<Option<SsoSession>> {
    let policy = app.settings.session.policy();
    Ok(app
        .store
        .get_session(&tgt.key())
        .await?
        .filter(|s| !s.is_expired(&policy, now)))
}

/// Starts a session for a user who just proved who they are. Returns its TGT (for the cookie).
pub async fn start_session(
    app: &AppState,
    user: AuthenticatedUser,
    long_term: bool,
    warn: bool,
    now: Timestamp,
) -> StoreResult<(TicketGrantingTicketId, SsoSession)> {
    let LoggedIn { tgt, session, .. } = log_in(app, None, user, long_term, warn, now).await?;
    Ok((tgt, session))
}

/// A browser's session after a login with its login form.
#[derive(Debug)]
pub struct LoggedIn {
    /// The session's new TGT, for the cookie.
    pub tgt: TicketGrantingTicketId,
    pub session: SsoSession,
    /// The browser's session was the same user's, and was renewed rather than replaced.
    pub renewed: bool,
}

/// The session of a browser whose user just proved who they are, `previous` being the TGT of
/// its cookie. A browser has one session. If `previous` names the same user's live session (a
/// login asked for again: CAS `renew`, OpenID Connect `prompt=login` or `max_age`), that session
/// is renewed: its login time, attributes and flags are new, its TGT too (the cookie changes),
/// and the applications it entered stay logged in. Otherwise the previous session, if any, ends
/// (with single logout: another user logged in) and a new one starts.
pub async fn log_in(
    app: &AppState,
    previous: Option<&TicketGrantingTicketId>,
    user: AuthenticatedUser,
    long_term: bool,
    warn: bool,
    now: Timestamp,
) -> StoreResult<LoggedIn> {
    let (tgt, session) = new_session(user, long_term, warn, now);
    let expires_at = session.expires_at(&app.settings.session.policy());
    if let Some(previous) = previous {
        let current = session_by_tgt(app, previous, now).await?;
        if let Some(current) = current.filter(|c| c.username == session.username) {
            let renewed = SsoSession {
                id: current.id,
                ..session.clone()
            };
            if app
                .store
                .renew_session(&current.tgt, &renewed, expires_at)
                .await?
            {
                return Ok(LoggedIn {
                    tgt,
                    session: renewed,
                    renewed: true,
                });
            }
        }
        end_session(app, &previous.key(), "replaced by a new login").await?;
    }
    app.store.put_session(&session, expires_at).await?;
    Ok(LoggedIn {
        tgt,
        session,
        renewed: false,
    })
}

/// A session of `user` logged in at `now`, with a new id and TGT.
fn new_session(
    user: AuthenticatedUser,
    long_term: bool,
    warn: bool,
    now: Timestamp,
) -> (TicketGrantingTicketId, SsoSession) {
    let mut rng = rand::rngs::OsRng;
    let tgt = TicketGrantingTicketId::generate(&mut rng);
    let session = SsoSession {
        id: SessionId::generate(&mut rng),
        tgt: tgt.key(),
        username: user.username,
        attributes: user.attributes,
        authenticated_at: now,
        last_used_at: now,
        long_term,
        warn,
    };
    (tgt, session)
}

/// Ends the session whose TGT has `tgt`: its tickets stop working at once, and every service it
/// entered is queued for single logout (the dispatcher is woken; nothing waits for delivery).
/// Returns what ended, with the services it had entered, or `None` if it was already gone.
pub async fn end_session(
    app: &AppState,
    tgt: &TicketKey,
    reason: &'static str,
) -> StoreResult<Option<EndedSession>> {
    let ended = app.store.take_session(tgt, app.clock.now()).await?;
    log_ended(app, ended.as_ref(), reason);
    Ok(ended)
}

/// [`end_session`] by the session's public id, for administrators.
pub async fn revoke_session(app: &AppState, id: &SessionId) -> StoreResult<Option<EndedSession>> {
    let ended = app.store.take_session_by_id(id, app.clock.now()).await?;
    log_ended(app, ended.as_ref(), "revoked");
    Ok(ended)
}

fn log_ended(app: &AppState, ended: Option<&EndedSession>, reason: &'static str) {
    let Some(e) = ended else { return };
    if !e.services.is_empty() || !e.clients.is_empty() {
        app.slo.wake();
    }
    tracing::info!(
        user = %e.session.username,
        session = %e.session.id,
        reason,
        services = e.services.len(),
        clients = e.clients.len(),
        "sso session ended"
    );
    audit!(
        "logout",
        user = %e.session.username,
        session = %e.session.id,
        reason,
        services = e.services.len(),
        clients = e.clients.len()
    );
}

/// Issues a service ticket for `service` from `session`, commits it, and marks the session used.
/// The ticket is durable before this returns, so it can be handed to the browser. With
/// `decided_at`, the registry version the issuing was decided under, nothing is issued if the
/// services have changed since ([`tessera_store::StoreError::RegistryChanged`]).
pub async fn issue_service_ticket(
    app: &AppState,
    session: &SsoSession,
    service: &ServiceUrl,
    from_new_login: bool,
    now: Timestamp,
    decided_at: Option<i64>,
) -> StoreResult<ServiceTicketId> {
    let (id, ticket) = ServiceTicket::issue(
        session,
        service.clone(),
        from_new_login,
        app.settings.tickets.service_ticket_ttl,
        now,
        &mut rand::rngs::OsRng,
    );
    // A new login has just written the session; otherwise entering the application is a use of
    // it, committed with the ticket.
    let touch = if from_new_login {
        None
    } else {
        used_at(app, session, now)
    };
    app.store
        .put_service_ticket(&ticket, touch, decided_at)
        .await?;
    app.metrics.issued(crate::metrics::TicketKind::Service);
    // At debug: the validation's audit event records the entry (see `http::cas`).
    tracing::debug!(user = %session.username, service = %service, ticket = ?id, from_new_login, "service ticket issued");
    Ok(id)
}

/// `session` used at `now` (an application entered with it): its new last use and expiry, which
/// the store commits with the ticket or code handed out; `None` when the recorded use is recent
/// enough to stand ([`SsoSession::used_at`]).
pub fn used_at(app: &AppState, session: &SsoSession, now: Timestamp) -> Option<SessionTouch> {
    let (at, expires_at) = session.used_at(&app.settings.session.policy(), now)?;
    Some(SessionTouch { at, expires_at })
}
