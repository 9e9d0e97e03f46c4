//! `/logout` (CAS 3.0 §2.3): ends the SSO session server-side, deletes the cookie, and goes back to
//! a registered service when asked to.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tessera_protocol::cas::logout::logout_redirect;
use tessera_protocol::ticket::TicketGrantingTicketId;

use crate::app::AppState;
use crate::http::extract::{cookie, Params};
use crate::http::response::{html, redirect, PageFault};
use crate::http::security::clear_tgc;
use crate::sso;
use crate::web::templates::LoggedOutPage;

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
    );
    let mut response = match target {
        Some(url) => redirect(url.as_str()),
        None => {
            let page = LoggedOutPage {
                chrome: app.chrome(),
                had_session: ended.is_some(),
            };
            html(StatusCode::OK, app.templates.logged_out(&page)?)
        }
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_tgc(app));
    Ok(response)
}
