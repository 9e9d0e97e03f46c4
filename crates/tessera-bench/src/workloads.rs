//! What one iteration of each workload does, request by request, and how it checks the answers.

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::header::{AUTHORIZATION, COOKIE};
use hyper::StatusCode;

use crate::client::{Conn, Reply};
use crate::server::{CLIENT_ID, REDIRECT_URI, SERVICE, USERNAME};

/// The CAS base path and the OpenID Connect issuer path of the default config.
const CAS: &str = "/cas";
const OIDC: &str = "/oidc";
/// The ticket-granting cookie's name.
pub(crate) const TGC: &str = "TGC";
/// What a CAS 3.0 validation success contains.
const SUCCESS: &str = "<cas:authenticationSuccess>";

/// A load workload (`startup` is measured apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// With an SSO cookie: `/login?service=S` → 302 with a ticket → `/p3/serviceValidate`.
    SsoValidate,
    /// `/p3/serviceValidate` of a ticket minted beforehand.
    ValidateOnly,
    /// Mints tickets for [`Kind::ValidateOnly`] (its warm-up).
    Mint,
    /// A cookie-less browser: GET the form, POST the credentials → 302 with a ticket.
    PasswordLogin,
    /// With a session: authorize → code → token (`client_secret_basic`) → userinfo.
    OidcCode,
    /// With a refresh token: token (`grant_type=refresh_token`, `client_secret_basic`), which
    /// rotates it. A worker's first iteration (in the warm-up) gets its first one by a code flow.
    OidcRefresh,
    /// `/p3/serviceValidate` against the in-process ceiling server.
    Ceiling,
}

/// What every worker of a run shares.
pub(crate) struct Shared {
    login_target: String,
    validate_prefix: String,
    login_form_target: String,
    login_body_prefix: String,
    authorize_target: String,
    token_body_prefix: String,
    basic: String,
    ceiling_target: String,
    /// Minted tickets waiting for validation.
    pub(crate) pool: Mutex<Vec<String>>,
    /// When a worker of a validate-only run found the pool empty: the run's measured window
    /// ends there.
    pub(crate) exhausted: OnceLock<Instant>,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Shared {
    pub(crate) fn new(password: &str, client_secret: &str) -> Self {
        let service = enc(SERVICE);
        let authorize_query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid profile email")
            .append_pair("state", "bench-state")
            .append_pair("nonce", "bench-nonce")
            .finish();
        let credentials = format!("{}:{}", enc(CLIENT_ID), enc(client_secret));
        Self {
            login_target: format!("{CAS}/login?service={service}"),
            validate_prefix: format!("{CAS}/p3/serviceValidate?service={service}&ticket="),
            login_form_target: format!("{CAS}/login?service={service}"),
            login_body_prefix: format!(
                "username={}&password={}&service={service}&lt=",
                enc(USERNAME),
                enc(password)
            ),
            authorize_target: format!("{OIDC}/authorize?{authorize_query}"),
            token_body_prefix: format!(
                "grant_type=authorization_code&redirect_uri={}&code=",
                enc(REDIRECT_URI)
            ),
            basic: format!("Basic {}", STANDARD.encode(credentials)),
            ceiling_target: format!(
                "{CAS}/p3/serviceValidate?service={service}&ticket=ST-0123456789abcdefghijklmnopqrs"
            ),
            pool: Mutex::new(Vec::new()),
            exhausted: OnceLock::new(),
        }
    }

    fn take_ticket(&self) -> Option<String> {
        self.pool.lock().ok().and_then(|mut pool| pool.pop())
    }

    fn put_ticket(&self, ticket: String) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(ticket);
        }
    }
}

/// One worker: its connection, its browser's SSO cookie (`TGC=…`), if it has one, and its
/// relying party's current refresh token, once it has one.
pub(crate) struct Worker {
    pub(crate) conn: Conn,
    pub(crate) cookie: Option<String>,
    pub(crate) refresh: Option<String>,
}

impl Worker {
    pub(crate) fn new(conn: Conn, cookie: Option<String>) -> Self {
        Self {
            conn,
            cookie,
            refresh: None,
        }
    }
}

/// How an iteration ended.
pub(crate) enum Outcome {
    /// Done, with this many requests.
    Done(u32),
    /// No minted ticket left (validate-only).
    Exhausted,
}

/// Runs one iteration of `kind`.
pub(crate) async fn iterate(kind: Kind, shared: &Shared, w: &mut Worker) -> Result<Outcome> {
    match kind {
        Kind::SsoValidate => {
            let ticket = sso_ticket(shared, w).await?;
            validate(shared, &mut w.conn, &ticket).await?;
            Ok(Outcome::Done(2))
        }
        Kind::Mint => {
            let ticket = sso_ticket(shared, w).await?;
            shared.put_ticket(ticket);
            Ok(Outcome::Done(1))
        }
        Kind::ValidateOnly => {
            let Some(ticket) = shared.take_ticket() else {
                return Ok(Outcome::Exhausted);
            };
            validate(shared, &mut w.conn, &ticket).await?;
            Ok(Outcome::Done(1))
        }
        Kind::PasswordLogin => {
            password_login(shared, &mut w.conn).await?;
            Ok(Outcome::Done(2))
        }
        Kind::OidcCode => {
            oidc_code(shared, w).await?;
            Ok(Outcome::Done(3))
        }
        Kind::OidcRefresh => match w.refresh.take() {
            Some(refresh) => {
                w.refresh = Some(refresh_tokens(shared, &mut w.conn, &refresh).await?);
                Ok(Outcome::Done(1))
            }
            None => {
                let tokens = code_tokens(shared, w).await?;
                let refresh = tokens["refresh_token"]
                    .as_str()
                    .context("token: no refresh_token")?;
                w.refresh = Some(refresh.to_owned());
                Ok(Outcome::Done(2))
            }
        },
        Kind::Ceiling => {
            let reply = w.conn.get(&shared.ceiling_target, &[]).await?;
            reply.expect(StatusCode::OK, "ceiling")?;
            if !reply.text().contains(SUCCESS) {
                bail!("ceiling: not a validation success");
            }
            Ok(Outcome::Done(1))
        }
    }
}

/// `GET /login?service=S` with the SSO cookie → the ticket of the 302.
async fn sso_ticket(shared: &Shared, w: &mut Worker) -> Result<String> {
    let cookie = w
        .cookie
        .as_deref()
        .context("the worker has no SSO session")?;
    let reply = w
        .conn
        .get(&shared.login_target, &[(COOKIE, cookie)])
        .await?;
    reply.expect(StatusCode::FOUND, "GET /login with a session")?;
    ticket_of(&reply)
}

fn ticket_of(reply: &Reply) -> Result<String> {
    let location = reply.location()?;
    let (_, ticket) = location
        .rsplit_once("ticket=")
        .with_context(|| format!("no ticket in {location:?}"))?;
    let ticket = ticket.split(['&', '#']).next().unwrap_or_default();
    if !ticket.starts_with("ST-") {
        bail!("not a service ticket in {location:?}");
    }
    Ok(ticket.to_owned())
}

/// `GET /p3/serviceValidate` → a success; returns the answer.
async fn validate(shared: &Shared, conn: &mut Conn, ticket: &str) -> Result<Reply> {
    let target = format!("{}{ticket}", shared.validate_prefix);
    let reply = conn.get(&target, &[]).await?;
    reply.expect(StatusCode::OK, "serviceValidate")?;
    if !reply.text().contains(SUCCESS) {
        let text = reply.text();
        let start: String = text.chars().take(300).collect();
        bail!("serviceValidate: not a success: {start}");
    }
    Ok(reply)
}

/// A cookie-less browser logs in: GET the form, POST it → 302 with a ticket. Returns the SSO
/// cookie the login set.
pub(crate) async fn password_login(shared: &Shared, conn: &mut Conn) -> Result<String> {
    let form = conn.get(&shared.login_form_target, &[]).await?;
    form.expect(StatusCode::OK, "GET /login without a session")?;
    let text = form.text();
    let lt = text
        .split_once(r#"name="lt" value=""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(lt, _)| lt.to_owned())
        .context("no lt field in the login form")?;
    let body = format!("{}{}", shared.login_body_prefix, enc(&lt));
    let reply = conn.post_form(&shared.login_form_target, &[], body).await?;
    reply.expect(StatusCode::FOUND, "POST /login")?;
    ticket_of(&reply)?;
    reply.cookie(TGC).context("the login set no TGC cookie")
}

/// Authorize (with the session) → code → token (`client_secret_basic`) → userinfo.
async fn oidc_code(shared: &Shared, w: &mut Worker) -> Result<()> {
    let tokens = code_tokens(shared, w).await?;
    let access = tokens["access_token"]
        .as_str()
        .context("token: no access_token")?;
    let bearer = format!("Bearer {access}");
    let reply = w
        .conn
        .get(
            &format!("{OIDC}/userinfo"),
            &[(AUTHORIZATION, bearer.as_str())],
        )
        .await?;
    reply.expect(StatusCode::OK, "userinfo")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&reply.body).context("userinfo: not JSON")?;
    if !claims["sub"].is_string() {
        bail!("userinfo: no sub");
    }
    Ok(())
}

/// With the SSO cookie: authorize → a code → the token response (checked for an ID token).
async fn code_tokens(shared: &Shared, w: &mut Worker) -> Result<serde_json::Value> {
    let cookie = w
        .cookie
        .as_deref()
        .context("the worker has no SSO session")?;
    let reply = w
        .conn
        .get(&shared.authorize_target, &[(COOKIE, cookie)])
        .await?;
    reply.expect(StatusCode::FOUND, "authorize")?;
    let location = url::Url::parse(reply.location()?).context("authorize: bad Location")?;
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .with_context(|| format!("authorize: no code in {location}"))?;
    let body = format!("{}{}", shared.token_body_prefix, enc(&code));
    let tokens = token_request(shared, &mut w.conn, body).await?;
    if !tokens["id_token"].is_string() {
        bail!("token: no id_token");
    }
    Ok(tokens)
}

/// A refresh: the new refresh token, which must differ from `refresh` (rotation).
async fn refresh_tokens(shared: &Shared, conn: &mut Conn, refresh: &str) -> Result<String> {
    let body = format!("grant_type=refresh_token&refresh_token={}", enc(refresh));
    let tokens = token_request(shared, conn, body).await?;
    if !tokens["access_token"].is_string() {
        bail!("refresh: no access_token");
    }
    match tokens["refresh_token"].as_str() {
        Some(new) if new != refresh => Ok(new.to_owned()),
        _ => bail!("refresh: the refresh token was not rotated"),
    }
}

/// `POST /token` with `client_secret_basic` → the JSON answer of a 200.
async fn token_request(
    shared: &Shared,
    conn: &mut Conn,
    body: String,
) -> Result<serde_json::Value> {
    let reply = conn
        .post_form(
            &format!("{OIDC}/token"),
            &[(AUTHORIZATION, shared.basic.as_str())],
            body,
        )
        .await?;
    reply.expect(StatusCode::OK, "token")?;
    serde_json::from_slice(&reply.body).context("token: not JSON")
}

/// The body and content type of one real validation success (what the ceiling server answers).
pub(crate) async fn sample_validation(
    shared: &Shared,
    w: &mut Worker,
) -> Result<(Vec<u8>, String)> {
    let ticket = sso_ticket(shared, w).await?;
    let reply = validate(shared, &mut w.conn, &ticket).await?;
    let content_type = reply
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/xml; charset=utf-8")
        .to_owned();
    Ok((reply.body.to_vec(), content_type))
}
