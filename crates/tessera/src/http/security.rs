//! Security headers and the ticket-granting cookie, in one place.

use axum::http::{header, HeaderName, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

/// The security headers every response gets unless its handler set its own: no framing, no
/// referrer (ticket-carrying URLs must not leak), no sniffing, no caching, and a CSP that allows
/// only our stylesheet. The CSP has no `form-action`: browsers apply it to the redirects that follow a
/// form submission, and the login form's 302 goes to the service, which `'self'` would block.
pub fn headers() -> Vec<SetResponseHeaderLayer<HeaderValue>> {
    let fixed: [(HeaderName, &'static str); 6] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ];
    fixed
        .into_iter()
        .map(|(name, value)| {
            SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
        })
        .collect()
}

/// The `Set-Cookie` value that hands the browser its TGT (CAS 3.0 §3.6): HttpOnly, SameSite=Lax,
/// Secure when Tessera is reached over https, scoped to the CAS path. A session cookie, unless the
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

fn cookie_path(app: &AppState) -> &str {
    match app.settings.base_path() {
        "" => "/",
        base => base,
    }
}
