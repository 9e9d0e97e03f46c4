//! The OpenID Connect provider's endpoints, under the issuer path (`/oidc`): discovery, JWKS,
//! authorization (with consent), token, userinfo, RP-initiated logout, revocation, introspection.
//!
//! The rules are in `tessera_protocol::oidc`; this module reads requests, fetches what the rules need
//! (session, registry, stored codes and tokens), and writes the answers with the headers the specs
//! ask for (`no-store` on anything carrying a token, CORS where relying parties' browsers need it).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tessera_protocol::oidc::authorize::{
    self, AuthorizationResponse, AuthorizeRequest, Next, Rejection, ResponseMode,
};
use tessera_protocol::oidc::claims::{self, user_claims};
use tessera_protocol::oidc::discovery::{self, EndSessionRequest};
use tessera_protocol::oidc::grant::scope_string;
use tessera_protocol::oidc::token::{self, RefreshUse};
use tessera_protocol::oidc::{
    AccessToken, AuthorizationCode, ClientRegistry, Grant, OAuthError, OidcClient, RefreshToken,
};
use tessera_protocol::session::SsoSession;
use tessera_protocol::ticket::{
    time_ordered_id, AccessTokenId, AuthorizationCodeId, LoginTicketId, RefreshTokenId,
    TicketGrantingTicketId, TicketKey,
};
use tessera_protocol::Timestamp;
use tessera_store::{CodeRedemption, GrantRule, NewGrant, StoreError};

use crate::app::AppState;
use crate::audit::audit;
use crate::auth::throttle;
use crate::http::extract::{cookie, ClientAddr};
use crate::http::login::{new_login_ticket, page_view, show};
use crate::http::logout::finish_logout;
use crate::http::response::{redirect, PageFault};
use crate::http::security::clear_tgc;
use crate::metrics::TicketKind;
use crate::oidc::ProviderError;
use crate::sso;
use crate::web::templates::{ConsentPage, EndSessionPage, ErrorPage, FormPostPage, View};

/// The provider's routes.
pub fn router(app: &AppState) -> Router<AppState> {
    let p = &app.oidc.path;
    Router::new()
        .route(
            &format!("{p}/.well-known/openid-configuration"),
            get(discovery_document),
        )
        .route(&format!("{p}/jwks"), get(jwks))
        .route(
            &format!("{p}/authorize"),
            get(authorize_get).post(authorize_post),
        )
        .route(&format!("{p}/consent"), post(consent))
        .route(&format!("{p}/token"), post(token).options(preflight))
        .route(
            &format!("{p}/userinfo"),
            get(userinfo).post(userinfo).options(preflight),
        )
        .route(
            &format!("{p}/logout"),
            get(end_session_get).post(end_session_post),
        )
        .route(&format!("{p}/logout/confirm"), post(end_session_confirm))
        .route(&format!("{p}/revoke"), post(revoke).options(preflight))
        .route(&format!("{p}/introspect"), post(introspect))
}

/// Every name/value pair of a query or form body, repeats included (they are errors here).
fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

// --- discovery and keys ---------------------------------------------------------------------

fn public_json(body: Value) -> Response {
    (
        [
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(body),
    )
        .into_response()
}

async fn discovery_document(State(app): State<AppState>) -> Result<Response, PageFault> {
    let clients = app.oidc.clients(app.store.as_ref()).await?;
    let mut scopes: Vec<String> = vec!["openid".into(), "profile".into(), "email".into()];
    for c in clients.clients() {
        for s in &c.scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
    }
    let claims: Vec<String> = [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "amr",
        "sid",
        "at_hash",
        "preferred_username",
        "name",
        "given_name",
        "family_name",
        "email",
        "email_verified",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    Ok(public_json(discovery::metadata(
        &app.oidc.endpoints,
        &scopes,
        &claims,
    )))
}

async fn jwks(State(app): State<AppState>) -> Response {
    match app.oidc.keys(app.store.as_ref(), false).await {
        Ok(keys) => public_json(keys.jwks(app.clock.now(), app.settings.oidc.id_token_ttl * 2)),
        Err(e) => server_error(&e),
    }
}

// --- authorization --------------------------------------------------------------------------

async fn authorize_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageFault> {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    authorize(&app, &headers, pairs).await
}

async fn authorize_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageFault> {
    authorize(&app, &headers, pairs(&body)).await
}

/// Checks the request, then issues a code, sends the user to log in or consent, or answers the
/// client with an error.
///
/// The common case, a session given a code, is decided with the clients as last compiled: the
/// code's write checks that they still are. Anything else, or a change since, is decided (again)
/// with the current clients.
async fn authorize(
    app: &AppState,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<Response, PageFault> {
    if let Some((version, kept)) = app.oidc.kept_clients() {
        match authorize_with(app, headers, &pairs, &kept, Some(version)).await {
            Err(PageFault::Store(StoreError::RegistryChanged)) => {}
            answered => return answered,
        }
    }
    let clients = app.oidc.clients(app.store.as_ref()).await?;
    authorize_with(app, headers, &pairs, &clients, None).await
}

/// [`authorize`] with `clients`. With `decided_at`, their version, only a code is issued (its
/// write refuses if the clients have changed since); any other outcome is
/// [`StoreError::RegistryChanged`], to be decided with the current clients.
async fn authorize_with(
    app: &AppState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    clients: &ClientRegistry,
    decided_at: Option<i64>,
) -> Result<Response, PageFault> {
    let undecided = || PageFault::Store(StoreError::RegistryChanged);
    let here = format!("{}/authorize?{}", app.oidc.path, encode_pairs(pairs));
    let view = page_view(
        app,
        headers,
        get_param(pairs, "lang"),
        get_param(pairs, "ui_locales"),
        Some(here),
    );
    let request = match authorize::parse(pairs, clients, app.oidc.issuer()) {
        Ok(request) => request,
        Err(_) if decided_at.is_some() => return Err(undecided()),
        Err(rejection) => return rejected(app, &view, pairs, clients, rejection),
    };
    let Some(client) = clients.get(&request.client_id) else {
        return Err(PageFault::Internal("checked client vanished".into()));
    };
    let now = app.clock.now();
    let current = sso::current_session(app, headers, now).await?;
    let consented = match (&current.session, client.consent) {
        (Some(session), true) => Some(
            app.store
                .get_consent(&session.username, &client.id)
                .await?
                .is_some_and(|given| request.scope.iter().all(|s| given.contains(s))),
        ),
        _ => None,
    };
    let next = authorize::next_step(
        &request,
        current.session.as_ref().map(|s| s.authenticated_at),
        consented,
        now,
    );
    let mut response = match (next, &current.session) {
        (Next::Issue, Some(session)) => {
            issue_code(app, &view, &request, session, now, decided_at).await?
        }
        _ if decided_at.is_some() => return Err(undecided()),
        (Next::Consent, Some(session)) => {
            let raw = encode_pairs(pairs);
            consent_page(app, &view, client, session, &raw, now).await?
        }
        (Next::Fail(code), _) => deliver(
            app,
            &view,
            &request
                .return_to
                .error(&OAuthError::new(code, ""), app.oidc.issuer()),
        )?,
        (Next::Login { .. } | Next::Issue | Next::Consent, _) => {
            let renew = matches!(next, Next::Login { renew: true });
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("authorize", &authorize::resume_query(pairs))
                .finish();
            let login = format!(
                "{}?{query}{}",
                app.path("/login"),
                if renew { "&renew=true" } else { "" }
            );
            redirect(&login)
        }
    };
    if current.stale_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_tgc(app));
    }
    Ok(response)
}

fn encode_pairs(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Answers an authorization request that was refused: on a page when the client cannot be trusted
/// with the answer (in the visitor's language, the OAuth error code as a detail for the
/// application's developer), else back to the client.
fn rejected(
    app: &AppState,
    view: &View,
    pairs: &[(String, String)],
    clients: &ClientRegistry,
    rejection: Rejection,
) -> Result<Response, PageFault> {
    match rejection {
        Rejection::Page { title, message } => {
            tracing::warn!(%message, "authorization request refused");
            let refusal = Refusal::of(title, pairs, clients);
            let page = ErrorPage {
                message_args: refusal.args,
                detail: Some(refusal.detail),
                ..ErrorPage::new(app.chrome(), refusal.title, refusal.message)
            };
            show(app, view, StatusCode::BAD_REQUEST, &page)
        }
        Rejection::Redirect(response) => deliver(app, view, &response),
    }
}

/// What the error page says about an authorization request that cannot go back to its client.
#[derive(Debug)]
struct Refusal {
    /// Message keys.
    title: &'static str,
    message: &'static str,
    /// The message's arguments: the application (`client`), the redirect URI asked for (`uri`).
    args: BTreeMap<&'static str, String>,
    /// The OAuth error code, with the parameter at fault.
    detail: &'static str,
}

impl Refusal {
    /// The page for a rejection titled `title` by the protocol rules (which name the case in
    /// English), its arguments read from the request's `pairs`.
    fn of(title: &str, pairs: &[(String, String)], clients: &ClientRegistry) -> Self {
        let values = |name: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let client_id = values("client_id").first().copied().unwrap_or("");
        let client = clients
            .get(client_id)
            .map_or_else(|| printable(client_id), |c| c.name.clone());
        let refusal = |title, message, detail| Self {
            title,
            message,
            args: BTreeMap::from([("client", client.clone())]),
            detail,
        };
        match title {
            "Missing application" => refusal(
                "error.oidc.missing_client.title",
                "error.oidc.missing_client.message",
                "invalid_request (client_id)",
            ),
            "Unknown application" => refusal(
                "error.oidc.unknown_client.title",
                "error.oidc.unknown_client.message",
                "invalid_request (client_id)",
            ),
            "Invalid redirect URI" => match values("redirect_uri").as_slice() {
                [uri] if !uri.is_empty() => {
                    let mut r = refusal(
                        "error.oidc.redirect_uri.title",
                        "error.oidc.redirect_uri.unregistered",
                        "invalid_request (redirect_uri)",
                    );
                    r.args.insert("uri", printable(uri));
                    r
                }
                _ => refusal(
                    "error.oidc.redirect_uri.title",
                    "error.oidc.redirect_uri.missing",
                    "invalid_request (redirect_uri)",
                ),
            },
            "Invalid request" => refusal(
                "error.oidc.invalid_request.title",
                "error.oidc.invalid_request.message",
                "invalid_request",
            ),
            _ => refusal(
                "error.title",
                "error.oidc.invalid_request.message",
                "invalid_request",
            ),
        }
    }
}

/// `s` without control characters and cut at 200 characters, for an error page.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(200).collect();
    if s.chars().filter(|c| !c.is_control()).count() > 200 {
        out.push('…');
    }
    out
}

/// Sends an authorization response to the client: a redirect, or a self-submitting form.
fn deliver(
    app: &AppState,
    view: &View,
    response: &AuthorizationResponse,
) -> Result<Response, PageFault> {
    let mut out = match response.mode {
        ResponseMode::Query => redirect(&response.location()),
        ResponseMode::FormPost => {
            let page = FormPostPage {
                chrome: app.chrome(),
                action: &response.redirect_uri,
                params: &response.params,
            };
            // No language switcher: the page submits itself, and loading it again is pointless.
            let view = View {
                here: None,
                ..view.clone()
            };
            show(app, &view, StatusCode::OK, &page)?
        }
    };
    no_store(&mut out);
    Ok(out)
}

async fn issue_code(
    app: &AppState,
    view: &View,
    request: &AuthorizeRequest,
    session: &SsoSession,
    now: Timestamp,
    decided_at: Option<i64>,
) -> Result<Response, PageFault> {
    let code_id = AuthorizationCodeId::generate_at(now, &mut rand::rngs::OsRng);
    let code = AuthorizationCode {
        key: code_id.key(),
        client_id: request.client_id.clone(),
        redirect_uri: request.return_to.redirect_uri.clone(),
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        session_id: session.id.clone(),
        username: session.username.clone(),
        attributes: session.attributes.clone(),
        auth_time: session.authenticated_at,
        expires_at: now.plus(app.settings.oidc.code_ttl),
    };
    let touch = sso::used_at(app, session, now);
    app.store
        .put_authorization_code(&code, touch, decided_at)
        .await?;
    app.metrics.issued(TicketKind::AuthorizationCode);
    tracing::info!(user = %session.username, client = %request.client_id, code = ?code_id, "authorization code issued");
    let result = vec![("code".to_owned(), code_id.as_str().to_owned())];
    deliver(
        app,
        view,
        &request.return_to.respond(result, app.oidc.issuer()),
    )
}

/// What the scopes mean, as message keys.
fn scope_descriptions(scope: &[String]) -> Vec<&'static str> {
    let mut out = vec!["consent.scope.openid"];
    for s in scope {
        match s.as_str() {
            "profile" => out.push("consent.scope.profile"),
            "email" => out.push("consent.scope.email"),
            _ => {}
        }
    }
    out
}

async fn consent_page(
    app: &AppState,
    view: &View,
    client: &OidcClient,
    session: &SsoSession,
    request: &str,
    now: Timestamp,
) -> Result<Response, PageFault> {
    let scope = tessera_protocol::oidc::grant::parse_scope(
        form_urlencoded::parse(request.as_bytes())
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
            .as_str(),
    );
    let page = ConsentPage {
        chrome: app.chrome(),
        action: format!("{}/consent", app.oidc.path),
        lt: new_login_ticket(app, now).await?,
        request,
        client_name: &client.name,
        username: &session.username,
        scopes: scope_descriptions(&scope),
    };
    let mut response = show(app, view, StatusCode::OK, &page)?;
    no_store(&mut response);
    Ok(response)
}

/// The consent form's answer: remembers an "allow" and issues the code, or tells the client
/// `access_denied`.
async fn consent(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageFault> {
    let form = pairs(&body);
    let now = app.clock.now();
    let token_ok = match get_param(&form, "lt").and_then(LoginTicketId::parse) {
        Some(lt) => app.store.take_login_ticket(&lt.key(), now).await?,
        None => false,
    };
    let request_pairs = pairs(get_param(&form, "request").unwrap_or("").as_bytes());
    let view = page_view(
        &app,
        &headers,
        None,
        get_param(&request_pairs, "ui_locales"),
        None,
    );
    let clients = app.oidc.clients(app.store.as_ref()).await?;
    let request = match authorize::parse(&request_pairs, &clients, app.oidc.issuer()) {
        Ok(request) => request,
        Err(rejection) => return rejected(&app, &view, &request_pairs, &clients, rejection),
    };
    let current = sso::current_session(&app, &headers, now).await?;
    let Some(session) = current.session.filter(|_| token_ok) else {
        // An expired form or a lost session: start the request again.
        return authorize(&app, &headers, request_pairs).await;
    };
    if get_param(&form, "decision") != Some("allow") {
        tracing::info!(user = %session.username, client = %request.client_id, "consent refused");
        let error = OAuthError::new("access_denied", "the user refused");
        return deliver(
            &app,
            &view,
            &request.return_to.error(&error, app.oidc.issuer()),
        );
    }
    app.store
        .put_consent(&session.username, &request.client_id, &request.scope, now)
        .await?;
    tracing::info!(user = %session.username, client = %request.client_id, "consent given");
    issue_code(&app, &view, &request, &session, now, None).await
}

// --- token endpoint -------------------------------------------------------------------------

/// A failure of a JSON endpoint: an OAuth error for the client, or our own fault.
enum Fault {
    OAuth(OAuthError),
    Server(String),
}

impl From<OAuthError> for Fault {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}
impl From<tessera_store::StoreError> for Fault {
    fn from(e: tessera_store::StoreError) -> Self {
        Self::Server(e.to_string())
    }
}
impl From<ProviderError> for Fault {
    fn from(e: ProviderError) -> Self {
        Self::Server(e.to_string())
    }
}

fn no_store(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON answer of an API endpoint: no caching, CORS open (bearer tokens, never cookies).
fn api_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (
        status,
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        Json(body),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn server_error(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "oidc request failed");
    api_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({"error": "server_error", "error_description": "the server failed; try again"}),
    )
}

fn fault_response(fault: Fault, used_basic: bool) -> Response {
    match fault {
        Fault::OAuth(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            tracing::info!(error = e.code, description = %e.description, "oauth request refused");
            let mut response = api_json(status, &e.to_json());
            if status == StatusCode::UNAUTHORIZED {
                let challenge = if used_basic || e.code == "invalid_client" {
                    "Basic realm=\"tessera\""
                } else {
                    "Bearer realm=\"tessera\""
                };
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            response
        }
        Fault::Server(e) => server_error(&e),
    }
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

/// The form body of a token-style request: urlencoded, no repeated parameter.
fn form_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = pairs(body);
    for (i, (k, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(seen, _)| seen == k) {
            return Err(OAuthError::new(
                "invalid_request",
                &format!("parameter {k} appears more than once"),
            ));
        }
    }
    Ok(form)
}

fn authorization_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// Authenticates the client of a token, revocation or introspection request, throttled like
/// password logins: failures count per client id and per source address.
async fn client_of(
    app: &AppState,
    headers: &HeaderMap,
    form: &[(String, String)],
    from: IpAddr,
) -> Result<(Arc<ClientRegistry>, String), Fault> {
    let presented = presented_client(headers, form)?;
    let keys = client_throttle_keys(app, &presented.client_id, from);
    let now = app.clock.now();
    let standing = throttle::standing(app, &keys, now).await?;
    if let Some(until) = standing.blocked_until {
        audit!("client_auth_throttled", client_id = %presented.client_id, client = %from);
        return Err(OAuthError::new(
            "invalid_client",
            &format!(
                "too many failed attempts; try again in {}",
                throttle::wait_text(until, now)
            ),
        )
        .into());
    }
    let clients = app.oidc.clients(app.store.as_ref()).await?;
    match token::authenticate(&presented, &clients) {
        Ok(client) => {
            let id = client.id.clone();
            standing.forgive_first(app, &keys).await?;
            Ok((clients, id))
        }
        Err(e) => {
            throttle::record_failure(app, &keys, now).await?;
            audit!("client_auth_failed", client_id = %presented.client_id, client = %from);
            Err(e.into())
        }
    }
}

/// The client credentials a request presents (HTTP Basic or the form).
fn presented_client(
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<token::PresentedClient, OAuthError> {
    token::presented_client(
        authorization_header(headers),
        get_param(form, "client_id"),
        get_param(form, "client_secret"),
    )
}

/// The throttle keys a client's authentication counts against: the client id and the address.
fn client_throttle_keys(app: &AppState, client_id: &str, from: IpAddr) -> [(String, u32); 2] {
    let login = &app.settings.login;
    [
        (format!("client:{client_id}"), login.max_failures_per_user),
        (throttle::address_key(from), login.max_failures_per_address),
    ]
}

/// The client of a request authenticated with `clients` as last compiled (possibly stale), when
/// that decides it: `None` if its credentials do not check out against them, or the client or
/// the address has failures on record; [`client_of`] then decides with the current clients (and
/// counts a failure). Writes nothing.
async fn kept_client_of(
    app: &AppState,
    headers: &HeaderMap,
    form: &[(String, String)],
    from: IpAddr,
    clients: &ClientRegistry,
) -> Result<Option<String>, Fault> {
    let presented = presented_client(headers, form)?;
    let keys = client_throttle_keys(app, &presented.client_id, from);
    let standing = throttle::standing(app, &keys, app.clock.now()).await?;
    if standing.blocked_until.is_some() || standing.first_failed() {
        return Ok(None);
    }
    Ok(token::authenticate(&presented, clients)
        .ok()
        .map(|client| client.id.clone()))
}

async fn token(
    State(app): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let used_basic = authorization_header(&headers).is_some();
    match token_inner(&app, &headers, &body, from).await {
        Ok(body) => api_json(StatusCode::OK, &body),
        Err(fault) => fault_response(fault, used_basic),
    }
}

async fn token_inner(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    from: IpAddr,
) -> Result<Value, Fault> {
    let form = form_body(headers, body)?;
    // The common cases, a client with a clean record redeeming a code or a refresh token, are
    // decided with the clients as last compiled: the write checks that they still are. Anything
    // else, or a change since, is decided (again) with the current clients.
    let grant_type = get_param(&form, "grant_type");
    if let (Some("authorization_code" | "refresh_token"), Some((version, kept))) =
        (grant_type, app.oidc.kept_clients())
    {
        if let Some(client_id) = kept_client_of(app, headers, &form, from, &kept).await? {
            if let Some(client) = kept.get(&client_id) {
                let answer = if grant_type == Some("refresh_token") {
                    refresh_grant(app, client, &form, Some(version)).await?
                } else {
                    code_grant(app, client, &form, Some(version)).await?
                };
                if let Some(answer) = answer {
                    return Ok(answer);
                }
            }
        }
    }
    let (clients, client_id) = client_of(app, headers, &form, from).await?;
    let Some(client) = clients.get(&client_id) else {
        return Err(Fault::Server("authenticated client vanished".into()));
    };
    let undecided = || Fault::Server("a write with no registry version was refused".into());
    match grant_type {
        Some("authorization_code") => code_grant(app, client, &form, None)
            .await?
            .ok_or_else(undecided),
        Some("refresh_token") => refresh_grant(app, client, &form, None)
            .await?
            .ok_or_else(undecided),
        Some(_) => Err(OAuthError::new("unsupported_grant_type", "unsupported grant_type").into()),
        None => Err(OAuthError::new("invalid_request", "grant_type is missing").into()),
    }
}

/// Fresh tokens for a grant, with the scopes they carry.
struct Issued {
    access_id: AccessTokenId,
    access: AccessToken,
    refresh_id: RefreshTokenId,
    refresh: RefreshToken,
}

/// The ids of a grant's next tokens, drawn before the grant is known.
struct TokenIds {
    access: AccessTokenId,
    refresh: RefreshTokenId,
}

impl TokenIds {
    fn generate(now: Timestamp) -> Self {
        let mut rng = rand::rngs::OsRng;
        Self {
            access: AccessTokenId::generate_at(now, &mut rng),
            refresh: RefreshTokenId::generate_at(now, &mut rng),
        }
    }
}

/// How long the tokens of a grant live.
#[derive(Clone, Copy)]
struct TokenLifetimes {
    access: std::time::Duration,
    refresh: std::time::Duration,
}

impl TokenLifetimes {
    fn of(app: &AppState) -> Self {
        Self {
            access: app.settings.oidc.access_token_ttl,
            refresh: app.settings.oidc.refresh_token_ttl,
        }
    }

    /// The tokens with these ids for grant `grant_id`, carrying `scope`. Pure.
    fn tokens(
        self,
        ids: (TicketKey, TicketKey),
        grant_id: &str,
        scope: &[String],
        now: Timestamp,
    ) -> (AccessToken, RefreshToken) {
        let (access, refresh) = ids;
        (
            AccessToken {
                key: access,
                grant_id: grant_id.to_owned(),
                scope: scope.to_vec(),
                issued_at: now,
                expires_at: now.plus(self.access),
            },
            RefreshToken {
                key: refresh,
                grant_id: grant_id.to_owned(),
                expires_at: now.plus(self.refresh),
                rotated_at: None,
            },
        )
    }
}

fn new_tokens(app: &AppState, grant_id: &str, scope: &[String], now: Timestamp) -> Issued {
    let ids = TokenIds::generate(now);
    let (access, refresh) =
        TokenLifetimes::of(app).tokens((ids.access.key(), ids.refresh.key()), grant_id, scope, now);
    Issued {
        access_id: ids.access,
        access,
        refresh_id: ids.refresh,
        refresh,
    }
}

/// What a token request for an authorization code decides, once the code is found: the checks of
/// the request against the code, then the grant made from it with its first tokens. Pure; the
/// store runs it in the transaction that redeems the code, and the handler again for the answer.
struct CodeExchange {
    client: OidcClient,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    grant_id: String,
    token_keys: (TicketKey, TicketKey),
    lifetimes: TokenLifetimes,
    now: Timestamp,
}

impl CodeExchange {
    fn decide(
        &self,
        code: &AuthorizationCode,
    ) -> Result<(Grant, AccessToken, RefreshToken), OAuthError> {
        token::check_code(
            code,
            &self.client,
            self.redirect_uri.as_deref(),
            self.code_verifier.as_deref(),
            self.now,
        )?;
        let grant = Grant {
            id: self.grant_id.clone(),
            client_id: self.client.id.clone(),
            session_id: code.session_id.clone(),
            username: code.username.clone(),
            attributes: code.attributes.clone(),
            scope: code.scope.clone(),
            auth_time: code.auth_time,
            backchannel_logout_uri: self.client.backchannel_logout_uri.clone(),
            created_at: self.now,
        };
        let (access, refresh) =
            self.lifetimes
                .tokens(self.token_keys.clone(), &grant.id, &grant.scope, self.now);
        Ok((grant, access, refresh))
    }
}

/// Redeems a code for `client`, decided with the clients at version `decided_at` if given: `None`
/// if they have changed since (nothing was written).
async fn code_grant(
    app: &AppState,
    client: &OidcClient,
    form: &[(String, String)],
    decided_at: Option<i64>,
) -> Result<Option<Value>, Fault> {
    let invalid = |why: &str| Fault::OAuth(OAuthError::new("invalid_grant", why));
    let code_id = get_param(form, "code")
        .and_then(AuthorizationCodeId::parse)
        .ok_or_else(|| invalid("unknown authorization code"))?;
    let now = app.clock.now();
    let ids = TokenIds::generate(now);
    let exchange = Arc::new(CodeExchange {
        client: client.clone(),
        redirect_uri: get_param(form, "redirect_uri").map(str::to_owned),
        code_verifier: get_param(form, "code_verifier").map(str::to_owned),
        grant_id: time_ordered_id(now, &mut rand::rngs::OsRng, 22),
        token_keys: (ids.access.key(), ids.refresh.key()),
        lifetimes: TokenLifetimes::of(app),
        now,
    });
    // The grant is saved in the same write that redeems the code, decided there as below.
    let issue: GrantRule = {
        let exchange = exchange.clone();
        Box::new(move |code: &AuthorizationCode| {
            let (grant, access, refresh) = exchange.decide(code).ok()?;
            Some(NewGrant {
                grant,
                access,
                refresh: Some(refresh),
            })
        })
    };
    let redeemed = app
        .store
        .redeem_authorization_code_granting(&code_id.key(), &exchange.grant_id, issue, decided_at)
        .await;
    let (redemption, granted) = match redeemed {
        Err(StoreError::RegistryChanged) => return Ok(None),
        redeemed => redeemed?,
    };
    let code = match redemption {
        CodeRedemption::Redeemed(code) => code,
        CodeRedemption::Replayed => {
            tracing::warn!(client = %client.id, code = ?code_id, "authorization code replayed: its tokens are revoked");
            return Err(invalid("authorization code already used"));
        }
        CodeRedemption::Unknown => return Err(invalid("unknown authorization code")),
    };
    let (grant, access, refresh) = exchange.decide(&code)?;
    if !granted {
        return Err(invalid("the login session has ended"));
    }
    let issued = Issued {
        access_id: ids.access,
        access,
        refresh_id: ids.refresh,
        refresh,
    };
    app.metrics.issued(TicketKind::AccessToken);
    tracing::info!(user = %grant.username, client = %client.id, "tokens issued for an authorization code");
    audit!("tokens_issued", user = %grant.username, client_id = %client.id, scope = %scope_string(&grant.scope));
    token_response(app, client, &grant, &issued, code.nonce, exchange.now)
        .await
        .map(Some)
}

/// A refresh (RFC 6749 §6). With `decided_at`, the registry version `client` was taken from:
/// `None` when the clients have changed since (nothing is written; decide again).
async fn refresh_grant(
    app: &AppState,
    client: &OidcClient,
    form: &[(String, String)],
    decided_at: Option<i64>,
) -> Result<Option<Value>, Fault> {
    let invalid = |why: &str| Fault::OAuth(OAuthError::new("invalid_grant", why));
    let refresh_id = get_param(form, "refresh_token")
        .and_then(RefreshTokenId::parse)
        .ok_or_else(|| invalid("unknown refresh token"))?;
    let found = app
        .store
        .get_refresh_token(&refresh_id.key(), decided_at)
        .await;
    let (old, grant) = match found {
        Err(StoreError::RegistryChanged) => return Ok(None),
        found => found?.ok_or_else(|| invalid("unknown refresh token"))?,
    };
    if grant.client_id != client.id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    let now = app.clock.now();
    match token::refresh_use(
        old.rotated_at,
        old.expires_at,
        app.settings.oidc.refresh_grace,
        now,
    ) {
        RefreshUse::Expired => return Err(invalid("the refresh token has expired")),
        RefreshUse::Reuse => {
            app.store.delete_grant(&grant.id).await?;
            tracing::warn!(user = %grant.username, client = %client.id, "refresh token reused: the grant is revoked");
            return Err(invalid("the refresh token was already used"));
        }
        RefreshUse::Rotate | RefreshUse::GraceRepeat => {}
    }
    let scope = token::refresh_scope(&grant.scope, get_param(form, "scope"))?;
    let issued = new_tokens(app, &grant.id, &scope, now);
    let rotated = app
        .store
        .rotate_refresh_token(&old.key, now, &issued.access, &issued.refresh, decided_at)
        .await;
    match rotated {
        Ok(true) => {}
        Ok(false) => return Err(invalid("the grant has ended")),
        Err(StoreError::RegistryChanged) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    app.metrics.issued(TicketKind::AccessToken);
    let mut narrowed = grant.clone();
    narrowed.scope = scope;
    token_response(app, client, &narrowed, &issued, None, now)
        .await
        .map(Some)
}

/// The token response (RFC 6749 §5.1, Core §3.1.3.3): a new ID token when `openid` was granted.
async fn token_response(
    app: &AppState,
    client: &OidcClient,
    grant: &Grant,
    issued: &Issued,
    nonce: Option<String>,
    now: Timestamp,
) -> Result<Value, Fault> {
    let mut body = json!({
        "access_token": issued.access_id.as_str(),
        "token_type": "Bearer",
        "expires_in": app.settings.oidc.access_token_ttl.as_secs(),
        "refresh_token": issued.refresh_id.as_str(),
        "scope": scope_string(&grant.scope),
    });
    if grant.scope.iter().any(|s| s == "openid") {
        let store = app.store.as_ref();
        let subject = app.oidc.subject(store, &grant.username).await?;
        let user = user_claims(
            &grant.scope,
            &grant.username,
            &grant.attributes,
            client,
            &app.settings.oidc.claim_sources(),
        );
        let claims = claims::id_token(
            app.oidc.issuer(),
            &subject,
            grant,
            nonce,
            Some(issued.access_id.as_str()),
            user,
            now,
            app.settings.oidc.id_token_ttl,
        );
        let id_token = app
            .oidc
            .sign(store, client.signing_alg, "JWT", &claims, now)
            .await?;
        body["id_token"] = id_token.into();
    }
    Ok(body)
}

// --- userinfo -------------------------------------------------------------------------------

async fn userinfo(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match userinfo_inner(&app, &method, &headers, &body).await {
        Ok(body) => api_json(StatusCode::OK, &body),
        Err(Fault::OAuth(e)) => bearer_error(&e),
        Err(fault) => fault_response(fault, false),
    }
}

/// An RFC 6750 §3 error: the `WWW-Authenticate` header says it all.
fn bearer_error(e: &OAuthError) -> Response {
    let (status, challenge) = match e.code {
        "" => (
            StatusCode::UNAUTHORIZED,
            "Bearer realm=\"tessera\"".to_owned(),
        ),
        "insufficient_scope" => (
            StatusCode::FORBIDDEN,
            "Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"openid\"".to_owned(),
        ),
        "invalid_request" => (
            StatusCode::BAD_REQUEST,
            "Bearer realm=\"tessera\", error=\"invalid_request\"".to_owned(),
        ),
        code => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"tessera\", error=\"{code}\", error_description=\"{}\"",
                e.description
            ),
        ),
    };
    let body = if e.code.is_empty() {
        json!({"error": "invalid_request", "error_description": "no access token"})
    } else {
        e.to_json()
    };
    let mut response = api_json(status, &body);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

async fn userinfo_inner(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Fault> {
    let header_token = authorization_header(headers)
        .map(str::trim)
        .and_then(|h| {
            h.get(..7)
                .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
                .and(h.get(7..))
        })
        .map(|t| t.trim().to_owned());
    let body_token = if *method == Method::POST && !body.is_empty() {
        pairs(body)
            .into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v)
    } else {
        None
    };
    let presented = match (header_token, body_token) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new("invalid_request", "send the token once").into())
        }
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => {
            return Err(Fault::OAuth(OAuthError {
                code: "",
                description: String::new(),
                status: 401,
            }))
        }
    };
    let invalid = || {
        Fault::OAuth(OAuthError::new(
            "invalid_token",
            "the access token is not valid",
        ))
    };
    let access_id = AccessTokenId::parse(&presented).ok_or_else(invalid)?;
    let now = app.clock.now();
    let key = access_id.key();
    // The token is read with the clients' version: with the clients as last compiled while it
    // has not moved (no read of its own), else with the current clients.
    let kept = match app.oidc.kept_clients() {
        Some((version, clients)) => match app.store.get_access_token(&key, Some(version)).await {
            Err(StoreError::RegistryChanged) => None,
            read => Some((read?, clients)),
        },
        None => None,
    };
    let (found, clients) = match kept {
        Some(read) => read,
        None => {
            let clients = app.oidc.clients(app.store.as_ref()).await?;
            (app.store.get_access_token(&key, None).await?, clients)
        }
    };
    let (access, grant) = found
        .filter(|(a, _)| a.expires_at > now)
        .ok_or_else(invalid)?;
    if !access.scope.iter().any(|s| s == "openid") {
        return Err(OAuthError::new("insufficient_scope", "").into());
    }
    let client = clients.get(&grant.client_id).ok_or_else(invalid)?;
    let mut claims = user_claims(
        &access.scope,
        &grant.username,
        &grant.attributes,
        client,
        &app.settings.oidc.claim_sources(),
    );
    claims.insert(
        "sub".into(),
        app.oidc
            .subject(app.store.as_ref(), &grant.username)
            .await?
            .into(),
    );
    Ok(Value::Object(claims))
}

// --- revocation and introspection -----------------------------------------------------------

/// A token found by value: access or refresh, with its grant.
enum Found {
    Access(AccessToken, Grant),
    Refresh(RefreshToken, Grant),
}

async fn find_token(app: &AppState, value: &str) -> Result<Option<Found>, Fault> {
    if let Some(id) = AccessTokenId::parse(value) {
        return Ok(app
            .store
            .get_access_token(&id.key(), None)
            .await?
            .map(|(a, g)| Found::Access(a, g)));
    }
    if let Some(id) = RefreshTokenId::parse(value) {
        return Ok(app
            .store
            .get_refresh_token(&id.key(), None)
            .await?
            .map(|(r, g)| Found::Refresh(r, g)));
    }
    Ok(None)
}

async fn revoke(
    State(app): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let used_basic = authorization_header(&headers).is_some();
    match revoke_inner(&app, &headers, &body, from).await {
        Ok(()) => {
            let mut response =
                (StatusCode::OK, [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")]).into_response();
            no_store(&mut response);
            response
        }
        Err(fault) => fault_response(fault, used_basic),
    }
}

/// RFC 7009: revoking a refresh token ends its grant (and its access tokens); an access token goes
/// alone. Unknown tokens are fine (200).
async fn revoke_inner(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    from: IpAddr,
) -> Result<(), Fault> {
    let form = form_body(headers, body)?;
    let (_, client_id) = client_of(app, headers, &form, from).await?;
    let value = get_param(&form, "token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
    let other_client = || {
        Fault::OAuth(OAuthError::new(
            "unauthorized_client",
            "the token was issued to another client",
        ))
    };
    match find_token(app, value).await? {
        Some(Found::Refresh(_, grant)) => {
            if grant.client_id != client_id {
                return Err(other_client());
            }
            app.store.delete_grant(&grant.id).await?;
            tracing::info!(client = %client_id, user = %grant.username, "refresh token revoked with its grant");
        }
        Some(Found::Access(access, grant)) => {
            if grant.client_id != client_id {
                return Err(other_client());
            }
            app.store.delete_access_token(&access.key).await?;
            tracing::info!(client = %client_id, user = %grant.username, "access token revoked");
        }
        None => {}
    }
    Ok(())
}

async fn introspect(
    State(app): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let used_basic = authorization_header(&headers).is_some();
    match introspect_inner(&app, &headers, &body, from).await {
        Ok(body) => api_json(StatusCode::OK, &body),
        Err(fault) => fault_response(fault, used_basic),
    }
}

/// RFC 7662: any authenticated client (a resource server) may ask; the answer's `aud` names the
/// client the token was issued to and the asking one.
async fn introspect_inner(
    app: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    from: IpAddr,
) -> Result<Value, Fault> {
    let form = form_body(headers, body)?;
    let (_, asking) = client_of(app, headers, &form, from).await?;
    let value = get_param(&form, "token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
    let now = app.clock.now();
    let (scope, issued_at, expires_at, grant, token_type) = match find_token(app, value).await? {
        Some(Found::Access(a, g)) => (a.scope, a.issued_at, a.expires_at, g, Some("Bearer")),
        Some(Found::Refresh(r, g)) if r.rotated_at.is_none() => {
            (g.scope.clone(), g.created_at, r.expires_at, g, None)
        }
        _ => return Ok(json!({"active": false})),
    };
    if expires_at <= now {
        return Ok(json!({"active": false}));
    }
    let subject = app
        .oidc
        .subject(app.store.as_ref(), &grant.username)
        .await?;
    let facts = claims::TokenFacts {
        scope: &scope,
        issued_at,
        expires_at,
        token_type,
    };
    let mut body = claims::introspection_active(app.oidc.issuer(), &subject, &grant, &facts);
    if asking != grant.client_id {
        if let Some(aud) = body["aud"].as_array_mut() {
            aud.push(asking.into());
        }
    }
    Ok(body)
}

// --- RP-initiated logout --------------------------------------------------------------------

async fn end_session_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageFault> {
    let raw = query.unwrap_or_default();
    end_session(&app, &headers, &raw, false).await
}

async fn end_session_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageFault> {
    let raw = String::from_utf8_lossy(&body).into_owned();
    end_session(&app, &headers, &raw, false).await
}

/// The confirmation form's answer.
async fn end_session_confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageFault> {
    let form = pairs(&body);
    let now = app.clock.now();
    let token_ok = match get_param(&form, "lt").and_then(LoginTicketId::parse) {
        Some(lt) => app.store.take_login_ticket(&lt.key(), now).await?,
        None => false,
    };
    let raw = get_param(&form, "request").unwrap_or("").to_owned();
    if !token_ok {
        // An expired or replayed form: ask again.
        return end_session(&app, &headers, &raw, false).await;
    }
    if get_param(&form, "decision") != Some("logout") {
        return Ok(redirect(&app.path("/login")));
    }
    end_session(&app, &headers, &raw, true).await
}

/// RP-Initiated Logout 1.0: ends the SSO session (CAS single logout and OIDC back-channel logout
/// follow) once the request is known to come from the session's client or the user confirmed, then
/// returns to a registered post-logout URI or shows the logged-out page.
async fn end_session(
    app: &AppState,
    headers: &HeaderMap,
    raw: &str,
    confirmed: bool,
) -> Result<Response, PageFault> {
    let params = pairs(raw.as_bytes());
    let here = format!("{}/logout?{raw}", app.oidc.path);
    let view = page_view(
        app,
        headers,
        get_param(&params, "lang"),
        get_param(&params, "ui_locales"),
        Some(here),
    );
    let now = app.clock.now();
    let store = app.store.as_ref();
    let hint = match get_param(&params, "id_token_hint") {
        Some(token) => match app.oidc.verify_own(store, token).await {
            Ok(claims) => {
                let aud = match claims.get("aud") {
                    Some(Value::String(a)) => Some(a.clone()),
                    Some(Value::Array(a)) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
                    _ => None,
                };
                let sid = claims
                    .get("sid")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                aud.zip(sid)
            }
            Err(e) => {
                tracing::info!(error = %e, "end session: id_token_hint ignored");
                None
            }
        },
        None => None,
    };
    let clients = app.oidc.clients(store).await?;
    let current = sso::current_session(app, headers, now).await?;
    let request = EndSessionRequest {
        hint: hint.as_ref().map(|(a, s)| (a.as_str(), s.as_str())),
        client_id: get_param(&params, "client_id"),
        post_logout_redirect_uri: get_param(&params, "post_logout_redirect_uri"),
        state: get_param(&params, "state"),
    };
    let current_sid = current.session.as_ref().map(|s| s.id.as_str());
    let plan = discovery::end_session(&request, &clients, current_sid);
    if plan.confirm && !confirmed {
        let client_name = request
            .hint
            .map(|(aud, _)| aud)
            .or(request.client_id)
            .and_then(|id| clients.get(id))
            .map(|c| c.name.as_str());
        let page = EndSessionPage {
            chrome: app.chrome(),
            action: format!("{}/logout/confirm", app.oidc.path),
            lt: new_login_ticket(app, now).await?,
            request: raw,
            client_name,
            username: current.session.as_ref().map(|s| s.username.as_str()),
        };
        let mut response = show(app, &view, StatusCode::OK, &page)?;
        no_store(&mut response);
        return Ok(response);
    }
    let tgt = cookie(headers, &app.settings.session.cookie_name)
        .and_then(|v| TicketGrantingTicketId::parse(&v));
    let ended = match tgt {
        Some(tgt) => sso::end_session(app, &tgt.key(), "oidc logout").await?,
        None => None,
    };
    let registry = app.registry().await?;
    let view = View { here: None, ..view };
    finish_logout(app, &view, &registry, ended.as_ref(), plan.redirect).await
}

#[cfg(test)]
mod tests {
    use tessera_protocol::service::ServiceOrigin;

    use super::*;
    use crate::config::ClientSpec;

    fn refusal(query: &str) -> Refusal {
        let client = ClientSpec {
            id: "rp".into(),
            name: Some("The RP".into()),
            redirect_uris: vec!["https://rp/cb".into()],
            ..ClientSpec::default()
        }
        .build(ServiceOrigin::Database)
        .unwrap();
        let clients = ClientRegistry::new(vec![client], Vec::new());
        let pairs = pairs(query.as_bytes());
        match authorize::parse(&pairs, &clients, "https://op") {
            Err(Rejection::Page { title, .. }) => Refusal::of(title, &pairs, &clients),
            _ => panic!("{query}: not refused on a page"),
        }
    }

    #[test]
    fn every_page_rejection_gets_its_own_translated_explanation() {
        let r = refusal("response_type=code&redirect_uri=https://rp/cb");
        assert_eq!(r.message, "error.oidc.missing_client.message");
        let r = refusal("client_id=rp&client_id=rp&redirect_uri=https://rp/cb");
        assert_eq!(r.message, "error.oidc.invalid_request.message");
        let r = refusal("client_id=no%0Abody&redirect_uri=https://rp/cb");
        assert_eq!(r.message, "error.oidc.unknown_client.message");
        assert_eq!(r.args["client"], "nobody");
        let r = refusal("client_id=rp&redirect_uri=https://evil/cb");
        assert_eq!(r.message, "error.oidc.redirect_uri.unregistered");
        assert_eq!(
            (r.args["client"].as_str(), r.args["uri"].as_str()),
            ("The RP", "https://evil/cb")
        );
        assert_eq!(r.detail, "invalid_request (redirect_uri)");
        let r = refusal("client_id=rp");
        assert_eq!(r.message, "error.oidc.redirect_uri.missing");
        assert_eq!(printable(&"x".repeat(300)).chars().count(), 201);
    }

    #[test]
    fn every_refusal_is_in_every_catalog() {
        let catalogs = crate::web::i18n::Catalogs::load(None).unwrap();
        let clients = ClientRegistry::new(Vec::new(), Vec::new());
        let pairs = pairs(b"client_id=x&redirect_uri=https://rp/cb");
        for title in [
            "Missing application",
            "Invalid request",
            "Unknown application",
            "Invalid redirect URI",
            "Something new",
        ] {
            let r = Refusal::of(title, &pairs, &clients);
            for lang in ["en", "fr", "de", "es"] {
                for key in [r.title, r.message, "error.detail"] {
                    assert!(catalogs.text(lang, key).is_some(), "{lang}: no {key}");
                }
            }
        }
    }
}
