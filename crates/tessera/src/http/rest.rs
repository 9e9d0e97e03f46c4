//! The REST ticket API, `{base}/v1/tickets` (Apereo-compatible; protocol digest §1.8): scripts get
//! a ticket-granting ticket for a username and password, service tickets from it, and end it.
//!
//! A REST TGT is a normal SSO session ([`sso::start_session`]) with no cookie: the same expiry,
//! the same ending ([`sso::end_session`], so single logout applies), and the same throttling as the
//! login form ([`throttle::authenticate`]). Service tickets validate at the usual endpoints.
//!
//! The TGT travels in the URL path: it is logged only redacted (its `Debug`), and the request span
//! names the route pattern, not the path. Credentials are read from the form body only, never the
//! query string, which ends up in access logs.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tessera_protocol::cas::is_flag_set;
use tessera_protocol::cas::login::{self, LoginFlags, LoginStep, RequestedService};
use tessera_protocol::cas::rest;
use tessera_protocol::service::ServiceUrl;
use tessera_protocol::session::SsoSession;
use tessera_protocol::ticket::TicketGrantingTicketId;
use tessera_protocol::Timestamp;
use tessera_store::{StoreError, StoreResult};

use crate::app::AppState;
use crate::audit::audit;
use crate::auth::throttle::{self, Verdict};
use crate::auth::{AuthError, AuthenticatedUser, Password};
use crate::http::extract::{is_cross_site_browser_request, ClientAddr, Params};
use crate::http::response::body;
use crate::sso;

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const FORM: &str = "application/x-www-form-urlencoded";

/// `POST {base}/v1/tickets`; `POST`, `GET` and `DELETE {base}/v1/tickets/{tgt}`.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(&app.path("/v1/tickets"), post(grant_ticket_granting_ticket))
        .route(
            &app.path("/v1/tickets/{tgt}"),
            post(grant_service_ticket)
                .get(check_ticket_granting_ticket)
                .delete(destroy_ticket_granting_ticket),
        )
}

/// `POST {base}/v1/tickets` with `username` and `password`: 201 and the new TGT's URL. An optional
/// `service` is checked (registered, and the user allowed in) but gets no ticket.
async fn grant_ticket_granting_ticket(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    RestForm(form): RestForm,
) -> Result<Response, RestError> {
    // Browsers have no business here; refusing their cross-site posts keeps other sites from using
    // visitors' browsers to guess passwords, as the login form does.
    if is_cross_site_browser_request(&headers, &app.public_origin()) {
        return Err(RestError::CrossSite);
    }
    let username = form.get("username").unwrap_or("").trim();
    let password = form.non_empty("password").unwrap_or("");
    if username.is_empty() {
        return Err(RestError::MissingParameter("username"));
    }
    if password.is_empty() {
        return Err(RestError::MissingParameter("password"));
    }
    let now = app.clock.now();
    let registry = app.registry().await?;
    let service = form.non_empty("service").map(ServiceUrl::parse);
    let registered = match RequestedService::resolve(&registry, service.as_ref()) {
        RequestedService::Absent => None,
        RequestedService::Registered(_, registered) => Some(registered),
        RequestedService::Unregistered => return Err(RestError::UnauthorizedService),
    };
    let user = check_password(&app, username, password, client, now).await?;
    if registered.is_some_and(|r| !r.allows(&user.attributes)) {
        tracing::warn!(user = %user.username, "rest: access denied: required attributes not met");
        return Err(RestError::AccessDenied);
    }
    let (tgt, session) = sso::start_session(&app, user, false, false, now).await?;
    tracing::info!(user = %session.username, session = %session.id, client = %client, "rest: ticket-granting ticket created");
    audit!("login", user = %session.username, client = %client, session = %session.id, via = "rest");

    let location = format!("{}/v1/tickets/{}", app.public_base(), tgt.as_str());
    let (content_type, text) = if wants_bare_id(&headers) {
        (TEXT, tgt.as_str().to_owned())
    } else {
        (HTML, rest::created_body(&location))
    };
    let mut response = body(StatusCode::CREATED, content_type, text);
    let location = HeaderValue::from_str(&location)
        .map_err(|_| RestError::Internal("the ticket URL is not a valid header value"))?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// `POST {base}/v1/tickets/{tgt}` with `service` (form, or else query): 200 and the service
/// ticket alone. With `renew=true`, `username` and `password` of the session's user are checked
/// again and the ticket is from a new login (it passes `renew=true` validation).
async fn grant_service_ticket(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(tgt): Path<String>,
    RawQuery(query): RawQuery,
    RestForm(form): RestForm,
) -> Result<Response, RestError> {
    let query = Params::from_query(query);
    let raw_service = form
        .non_empty("service")
        .or_else(|| query.non_empty("service"))
        .ok_or(RestError::MissingParameter("service"))?;
    let renew = is_flag_set(form.get("renew").or_else(|| query.get("renew")));
    let now = app.clock.now();
    let (_, session) = live_session(&app, &tgt, now)
        .await?
        .ok_or(RestError::UnknownTicket)?;
    let registry = app.registry().await?;
    let service = Some(ServiceUrl::parse(raw_service));
    let requested = RequestedService::resolve(&registry, service.as_ref());
    let RequestedService::Registered(url, _) = requested else {
        tracing::warn!(service = raw_service, "rest: service not authorized");
        return Err(RestError::UnauthorizedService);
    };
    let step = if renew {
        let username = form.get("username").unwrap_or("").trim();
        let password = form.non_empty("password").unwrap_or("");
        if username.is_empty() || password.is_empty() {
            return Err(RestError::MissingParameter("username and password (renew)"));
        }
        let user = check_password(&app, username, password, client, now).await?;
        if user.username != session.username {
            tracing::warn!(user = %user.username, session = %session.id, "rest: renew with another user's credentials");
            return Err(RestError::OtherUser);
        }
        login::after_authentication(requested, &session)
    } else {
        login::login_page(requested, LoginFlags::default(), Some(&session))
    };
    match step {
        // The warn page is for browsers; a script asking for a ticket has already decided.
        LoginStep::IssueTicket | LoginStep::ConfirmWarning => {
            let ticket = sso::issue_service_ticket(&app, &session, url, renew, now, None).await?;
            Ok(body(StatusCode::OK, TEXT, ticket.as_str().to_owned()))
        }
        LoginStep::AccessDenied => {
            tracing::warn!(user = %session.username, service = %url, "rest: access denied: required attributes not met");
            Err(RestError::AccessDenied)
        }
        LoginStep::UnauthorizedService => Err(RestError::UnauthorizedService),
        // A service that opted out of single sign-on wants the password every time.
        LoginStep::ShowForm | LoginStep::GatewayRedirect | LoginStep::AlreadyLoggedIn => {
            Err(RestError::RenewRequired)
        }
    }
}

/// `GET {base}/v1/tickets/{tgt}`: 200 while the session lives, 404 after. Does not count as use.
async fn check_ticket_granting_ticket(
    State(app): State<AppState>,
    Path(tgt): Path<String>,
) -> Result<Response, RestError> {
    let (tgt, _) = live_session(&app, &tgt, app.clock.now())
        .await?
        .ok_or(RestError::UnknownTicket)?;
    Ok(body(StatusCode::OK, TEXT, tgt.as_str().to_owned()))
}

/// `DELETE {base}/v1/tickets/{tgt}`: ends the session (and so logs out of its services). 200 with
/// the TGT, or 404 if it had already ended.
async fn destroy_ticket_granting_ticket(
    State(app): State<AppState>,
    Path(tgt): Path<String>,
) -> Result<Response, RestError> {
    let (tgt, _) = live_session(&app, &tgt, app.clock.now())
        .await?
        .ok_or(RestError::UnknownTicket)?;
    sso::end_session(&app, &tgt.key(), "rest delete")
        .await?
        .ok_or(RestError::UnknownTicket)?;
    Ok(body(StatusCode::OK, TEXT, tgt.as_str().to_owned()))
}

/// The session `raw` names, if it is a TGT of a live session.
async fn live_session(
    app: &AppState,
    raw: &str,
    now: Timestamp,
) -> StoreResult<Option<(TicketGrantingTicketId, SsoSession)>> {
    let Some(tgt) = TicketGrantingTicketId::parse(raw) else {
        return Ok(None);
    };
    Ok(sso::session_by_tgt(app, &tgt, now).await?.map(|s| (tgt, s)))
}

/// The password check the login form uses, with its throttling, as REST answers.
async fn check_password(
    app: &AppState,
    username: &str,
    password: &str,
    client: IpAddr,
    now: Timestamp,
) -> Result<AuthenticatedUser, RestError> {
    let password = Password::new(password.to_owned());
    let verdict = match throttle::authenticate(app, username, &password, client, now).await {
        Ok(verdict) => verdict,
        Err(e @ AuthError::Unavailable { .. }) => {
            tracing::error!(error = %e, user = %username, client = %client, "rest: login impossible: a login source is unavailable");
            return Err(RestError::Unavailable);
        }
        Err(e) => return Err(e.into()),
    };
    match verdict {
        Verdict::Accepted(user) => Ok(user),
        Verdict::Rejected => Err(RestError::BadCredentials),
        Verdict::Locked(until) => Err(RestError::Locked {
            retry_after: until.since(now).as_secs().max(1),
            wait: throttle::wait_text(until, now),
        }),
    }
}

/// Apereo answers with the bare TGT when the client asks for JSON, with its HTML form otherwise.
fn wants_bare_id(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/json"))
}

/// `path` fit for a log line: a segment that starts like a TGT is cut to its first characters, as
/// [`TicketGrantingTicketId::redacted`] does. For paths no route matched, which the request span
/// would otherwise show whole.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    if !path.contains("TGT-") {
        return Cow::Borrowed(path);
    }
    let segments: Vec<Cow<'_, str>> = path
        .split('/')
        .map(|segment| match segment.get(..8) {
            Some(shown) if segment.starts_with("TGT-") && segment.len() > 8 => {
                Cow::Owned(format!("{shown}…"))
            }
            _ => Cow::Borrowed(segment),
        })
        .collect();
    Cow::Owned(segments.join("/"))
}

/// A REST request's form body (`application/x-www-form-urlencoded`). Any other declared content
/// type, or a body without one, is refused with 415; no body at all is an empty form.
struct RestForm(Params);

impl<S: Send + Sync> FromRequest<S> for RestForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let is_form = match &content_type {
            Some(value) => value
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM)),
            None => raw.is_empty(),
        };
        if !is_form {
            return Err(RestError::UnsupportedMediaType.into_response());
        }
        Ok(Self(Params::parse(&raw)))
    }
}

/// Why a REST request got no ticket: an answer the client can act on (4xx, or 503 while a login
/// source cannot be asked; a one-line text/plain body), or, for the last three variants, our own
/// fault (500, logged once).
#[derive(Debug, thiserror::Error)]
enum RestError {
    #[error("send the parameters as application/x-www-form-urlencoded")]
    UnsupportedMediaType,
    #[error("missing parameter: {0}")]
    MissingParameter(&'static str),
    #[error("cross-site browser requests are not accepted")]
    CrossSite,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many failed attempts; try again in {wait}")]
    Locked { retry_after: u64, wait: String },
    #[error("ticket-granting ticket not found or expired")]
    UnknownTicket,
    #[error("service not authorized: it is not registered with this server")]
    UnauthorizedService,
    #[error("access denied: this user may not use this service")]
    AccessDenied,
    #[error("this service requires a new login: send renew=true with username and password")]
    RenewRequired,
    #[error("the credentials are not those of this ticket-granting ticket's user")]
    OtherUser,
    #[error("login is temporarily unavailable; try again in a few minutes")]
    Unavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Internal(&'static str),
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MissingParameter(_) => StatusCode::BAD_REQUEST,
            Self::BadCredentials => StatusCode::UNAUTHORIZED,
            Self::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UnknownTicket => StatusCode::NOT_FOUND,
            Self::CrossSite
            | Self::UnauthorizedService
            | Self::AccessDenied
            | Self::RenewRequired
            | Self::OtherUser => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Auth(_) | Self::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                return body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT,
                    "internal error; quote this response's x-request-id header to your administrator".into(),
                );
            }
        };
        let mut response = body(status, TEXT, self.to_string());
        if let Self::Locked { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tgts_in_unmatched_paths_are_cut_short_for_the_log() {
        assert_eq!(loggable_path("/cas/login"), "/cas/login");
        assert_eq!(
            loggable_path("/cas/v1/tickets/TGT-abcdefghij/extra"),
            "/cas/v1/tickets/TGT-abcd…/extra"
        );
        assert_eq!(loggable_path("/x/TGT-ab"), "/x/TGT-ab");
        assert_eq!(loggable_path("/x/aTGT-abcdefgh"), "/x/aTGT-abcdefgh");
    }

    #[test]
    fn json_clients_get_the_bare_ticket() {
        let mut headers = HeaderMap::new();
        assert!(!wants_bare_id(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_bare_id(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("Application/JSON"));
        assert!(wants_bare_id(&headers));
    }
}
