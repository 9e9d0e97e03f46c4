//! `/logout` (CAS 3.0 §2.3): ends the SSO session server-side (which queues back-channel single
//! logout), deletes the cookie, loads front-channel logout URLs in the page, and goes back to a
//! registered service when asked to.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tessera_protocol::cas::logout::{front_channel_url, logout_redirect, logout_request_xml};
use tessera_protocol::service::{LogoutType, ServiceRegistry};
use tessera_protocol::ticket::{random_base62, TicketGrantingTicketId};
use tessera_store::EndedSession;

use crate::app::AppState;
use crate::http::extract::{cookie, Params};
use crate::http::login::{page_view, show};
use crate::http::response::{redirect, PageFault};
use crate::http::security::clear_tgc;
use crate::sso;
use crate::web::templates::{LoggedOutPage, View};

/// `GET` and `POST {base}/logout`.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new().route(&app.path("/logout"), get(logout_get).post(logout_post))
}

async fn logout_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageFault> {
    logout(&app, &headers, &Params::from_query(query)).await
}

async fn logout_post(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageFault> {
    let form = Params::parse(&body);
    let query = Params::from_query(query);
    let params = if form.get("service").is_some() || form.get("url").is_some() {
        form
    } else {
        query
    };
    logout(&app, &headers, &params).await
}

/// Who hears of this logout: names of the applications told (either way), and the front-channel
/// URLs the browser must load.
#[derive(Default)]
struct Notifications {
    names: Vec<String>,
    frames: Vec<String>,
}

fn notifications(
    app: &AppState,
    registry: &ServiceRegistry,
    ended: &EndedSession,
) -> Notifications {
    let mut n = Notifications::default();
    for access in &ended.services {
        let Some(service) = registry.find(&access.service) else {
            continue;
        };
        match service.logout_type {
            LogoutType::None => continue,
            LogoutType::BackChannel => {}
            LogoutType::FrontChannel => {
                let id = format!("LR-{}", random_base62(&mut rand::rngs::OsRng, 29));
                let xml = logout_request_xml(
                    &id,
                    &ended.session.username,
                    &access.ticket,
                    app.clock.now(),
                );
                n.frames.push(front_channel_url(
                    service.logout_target(&access.service),
                    &xml,
                ));
            }
        }
        if !n.names.contains(&service.name) {
            n.names.push(service.name.clone());
        }
    }
    n
}

/// The page's CSP, allowing frames from exactly the front-channel logout origins.
fn csp_with_frames(frames: &[String]) -> Option<HeaderValue> {
    let mut origins: Vec<String> = frames
        .iter()
        .filter_map(|f| url::Url::parse(f).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    origins.sort();
    origins.dedup();
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-src {}; frame-ancestors 'none'; base-uri 'none'",
        origins.join(" ")
    ))
    .ok()
}

async fn logout(
    app: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, PageFault> {
    let tgt = cookie(headers, &app.settings.session.cookie_name)
        .and_then(|v| TicketGrantingTicketId::parse(&v));
    let ended = match tgt {
        Some(tgt) => sso::end_session(app, &tgt.key(), "logout").await?,
        None => None,
    };
    let registry = app.registry().await?;
    let target = logout_redirect(
        params.get("service"),
        params.get("url"),
        app.settings.logout.follow_url_parameter,
        &registry,
    )
    .map(|t| t.as_str().to_owned());
    // No language switcher here: loading a logout again is not the same page.
    let view = page_view(app, headers, params.get("lang"), None, None);
    finish_logout(app, &view, &registry, ended.as_ref(), target).await
}

/// The answer to a logout, whichever protocol asked: a redirect to `target` (or the login page, if so
/// configured), or the logged-out page naming the applications told and loading front-channel
/// logouts, which is shown even when a redirect was asked for. Clears the cookie.
pub(crate) async fn finish_logout(
    app: &AppState,
    view: &View,
    registry: &ServiceRegistry,
    ended: Option<&EndedSession>,
    target: Option<String>,
) -> Result<Response, PageFault> {
    let mut told = ended
        .map(|e| notifications(app, registry, e))
        .unwrap_or_default();
    if let Some(e) = ended.filter(|e| !e.clients.is_empty()) {
        let clients = app.oidc.clients(app.store.as_ref()).await?;
        for id in &e.clients {
            if let Some(client) = clients.get(id) {
                if !told.names.contains(&client.name) {
                    told.names.push(client.name.clone());
                }
            }
        }
    }
    let mut response = match (target, told.frames.is_empty()) {
        (Some(url), true) => redirect(&url),
        (None, true) if app.settings.logout.redirect_to_login => redirect(&app.path("/login")),
        (target, _) => {
            let csp = (!told.frames.is_empty())
                .then(|| csp_with_frames(&told.frames))
                .flatten();
            let page = LoggedOutPage {
                chrome: app.chrome(),
                had_session: ended.is_some(),
                notified: told.names,
                frames: told.frames,
                continue_url: target,
            };
            let mut response = show(app, view, StatusCode::OK, &page)?;
            if let Some(csp) = csp {
                response
                    .headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            response
        }
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_tgc(app));
    Ok(response)
}
