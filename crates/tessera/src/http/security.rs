//! Security headers, request limits and the ticket-granting cookie, in one place.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// What every request passes through, as one middleware ([`frame`]) rather than a layer each (a
/// layer costs a boxed service clone and a future per request): the request limits, fault pages
/// in the visitor's language, and the security headers.
#[derive(Clone)]
pub struct Frame {
    app: AppState,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl Frame {
    /// The frame of `app`'s requests, its headers computed once.
    pub fn new(app: &AppState) -> Self {
        Self {
            app: app.clone(),
            headers: headers(app).into(),
        }
    }
}

/// Refuses what [`refused`] refuses, shows faults as pages in the visitor's language
/// ([`localize_faults`](crate::http::response::localize_faults)), and adds the security headers
/// a response lacks.
pub async fn frame(State(frame): State<Frame>, request: Request, next: Next) -> Response {
    let mut response = match refused(&frame.app, &request) {
        Some(refusal) => refusal,
        None => crate::http::response::localize_faults(&frame.app, request, next).await,
    };
    let headers = response.headers_mut();
    // One allocation for all of them (and the request id added outside), not one per doubling.
    headers.reserve(frame.headers.len() + 1);
    for (name, value) in frame.headers.iter() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
}

/// The security headers every response gets unless its handler set its own: no framing, no
/// referrer (ticket-carrying URLs must not leak), no sniffing, no caching, a CSP that allows only
/// our own stylesheet and scripts (no inline script anywhere), and HSTS when served over https.
/// The CSP has no `form-action`: browsers apply it to the redirects that follow a form
/// submission, and the login form's 302 goes to the service, which `'self'` would block.
fn headers(app: &AppState) -> Vec<(HeaderName, HeaderValue)> {
    let fixed: [(HeaderName, &'static str); 6] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ];
    let mut headers: Vec<_> = fixed
        .into_iter()
        .map(|(name, value)| (name, HeaderValue::from_static(value)))
        .collect();
    let max_age = app.settings.server.hsts_max_age.as_secs();
    if app.is_https() && max_age > 0 {
        if let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}")) {
            headers.push((header::STRICT_TRANSPORT_SECURITY, value));
        }
    }
    headers
}

/// The answer to a request target longer than `[server] max_uri_bytes` (414) or a header section
/// larger than `[server] max_header_bytes` (431), which no handler sees.
fn refused(app: &AppState, request: &Request) -> Option<Response> {
    let limits = &app.settings.server;
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > limits.max_uri_bytes {
        tracing::info!(bytes = target, "request refused: URI too long");
        return Some((StatusCode::URI_TOO_LONG, "the request URI is too long\n").into_response());
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > limits.max_header_bytes {
        tracing::info!(bytes = headers, "request refused: headers too large");
        return Some(
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request headers are too large\n",
            )
                .into_response(),
        );
    }
    None
}

/// The `Set-Cookie` value that hands the browser its TGT (CAS 3.0 §3.6): HttpOnly, SameSite=Lax,
/// Secure when Tessera is reached over https, scoped to the paths that use the session. A session cookie, unless the
/// session is long-term ("remember me"), which persists for its lifetime.
pub fn set_tgc(app: &AppState, tgt: &str, long_term: bool) -> HeaderValue {
    let mut value = format!(
        "{}={tgt}; Path={}; HttpOnly; SameSite=Lax",
        app.settings.session.cookie_name,
        cookie_path(app)
    );
    if long_term {
        value.push_str(&format!(
            "; Max-Age={}",
            app.settings.session.remember_me_timeout.as_secs()
        ));
    }
    if app.is_https() {
        value.push_str("; Secure");
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that deletes the TGC: same name and path, `Max-Age=0` and the epoch date
/// that simple cookie jars look for (trap T31).
pub fn clear_tgc(app: &AppState) -> HeaderValue {
    let mut value = format!(
        "{}=; Path={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax",
        app.settings.session.cookie_name,
        cookie_path(app)
    );
    if app.is_https() {
        value.push_str("; Secure");
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CAS base path, unless the OpenID Connect endpoints (which share the SSO session) live
/// outside it: then the whole site.
fn cookie_path(app: &AppState) -> &str {
    let base = app.settings.base_path();
    let oidc_inside = app
        .oidc
        .path
        .strip_prefix(base)
        .is_some_and(|rest| rest.starts_with('/'));
    if base.is_empty() || (app.settings.oidc.enabled && !oidc_inside) {
        "/"
    } else {
        base
    }
}
