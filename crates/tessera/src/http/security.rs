//! Security headers, request limits and the ticket-granting cookie, in one place.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::app::AppState;

/// What every request passes through, as one middleware ([`frame`]) rather than a layer each (a
/// layer costs a boxed service clone and a future per request): the request's id and log span,
/// the request limits, fault pages in the visitor's language, and the security headers.
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

/// The request's span and id, then: refuses what [`refused`] refuses, shows faults as pages in
/// the visitor's language ([`localize_faults`](crate::http::response::localize_faults)), and adds
/// the security headers a response lacks.
///
/// Every request gets an `x-request-id` (the one a proxy in front set, if it looks like an id, or
/// a new one), which its log lines carry in the `request` span and its response echoes, so that
/// a fault page's reference leads to the lines that explain it.
pub async fn frame(State(frame): State<Frame>, mut request: Request, next: Next) -> Response {
    let id = request_id(&mut request);
    let span = {
        // Unmatched paths are logged as sent, except a TGT in one (a REST client's typo).
        let route = request.extensions().get::<MatchedPath>().map_or_else(
            || crate::http::rest::loggable_path(request.uri().path()),
            |m| m.as_str().into(),
        );
        let id = id.to_str().unwrap_or_default();
        tracing::info_span!("request", method = %request.method(), route = %route, request_id = %id)
    };
    async move {
        let started = Instant::now();
        let mut response = match refused(&frame.app, &request) {
            Some(refusal) => refusal,
            None => crate::http::response::localize_faults(&frame.app, request, next).await,
        };
        let status = response.status();
        if status.is_server_error() {
            tracing::error!(
                status = status.as_u16(),
                latency_us = elapsed_us(started),
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                latency_us = elapsed_us(started),
                "request answered"
            );
        }
        let headers = response.headers_mut();
        // One allocation for all of them, not one per doubling.
        headers.reserve(frame.headers.len() + 1);
        for (name, value) in frame.headers.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        if !headers.contains_key(&X_REQUEST_ID) {
            headers.insert(X_REQUEST_ID, id);
        }
        response
    }
    .instrument(span)
    .await
}

/// The header that carries a request's id, in the request and its response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id: the `x-request-id` it came with if that is a plausible id (1 to 64 letters,
/// digits, `-`, `_`, `.` or `:`; a UUID, say, as load balancers make), or else a new random one,
/// which replaces it. Either way the request carries it from here on, for the handlers' pages.
fn request_id(request: &mut Request) -> HeaderValue {
    if let Some(sent) = request.headers().get(&X_REQUEST_ID) {
        if is_plausible_id(sent.as_bytes()) {
            return sent.clone();
        }
    }
    // Not a secret: the thread's generator (seeded by the OS) spares a system call per request.
    let made = tessera_protocol::ticket::random_base62(&mut rand::thread_rng(), 16);
    let id = HeaderValue::from_str(&made).unwrap_or_else(|_| HeaderValue::from_static("-"));
    request.headers_mut().insert(X_REQUEST_ID, id.clone());
    id
}

/// Whether a request id sent by a client or proxy is kept: short, and nothing in it that could
/// pass for something else in a log line.
fn is_plausible_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Microseconds since `started`, for a log field.
fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
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

#[cfg(test)]
mod tests {
    use super::is_plausible_id;

    #[test]
    fn request_ids_from_proxies_are_kept_only_if_they_look_like_ids() {
        for kept in [
            "0b6f8a3e-5c1d-4e7a-9f2b-3c4d5e6f7a8b",
            "1-67891233-abcdef012345678912345678",
            "req_42.7",
            "x",
        ] {
            assert!(is_plausible_id(kept.as_bytes()), "{kept}");
        }
        let long = "a".repeat(65);
        for refused in ["", "a b", "a\"b", "a=b c=d", "é", "a\tb", long.as_str()] {
            assert!(!is_plausible_id(refused.as_bytes()), "{refused:?}");
        }
    }
}
