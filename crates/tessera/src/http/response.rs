//! Building responses: pages, redirects, protocol bodies, and the fault every page handler can return.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::auth::AuthError;
use crate::http::login::request_view;
use crate::web::templates::{ErrorPage, TemplateError, View};

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A 302 to `location` (CAS 3.0 §2.2.4: 302, never 301/303/307; pycas-sso counts only 302).
pub fn redirect(location: &str) -> Response {
    match HeaderValue::from_bytes(location.as_bytes()) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        // Service URLs are checked for control characters before they get here.
        Err(_) => PageFault::Internal("redirect target is not a valid header value".into())
            .into_response(),
    }
}

/// A body with a content type.
pub fn body(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Something failed on our side while serving a page: logged once with its cause, shown to the user
/// as the fault page in their language ([`localize_faults`]), with the request's reference (the
/// response's `x-request-id` header) that ties the page to the log line.
#[derive(Debug, thiserror::Error)]
pub enum PageFault {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] tessera_store::StoreError),
    /// Authentication could not be decided.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

/// The fault page when the templates cannot show it (a broken theme) or no request was read.
const FAULT_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error · Tessera</title></head>\
<body><h1>Something went wrong</h1><p>Tessera could not complete your request. Please try again in a moment. \
If it keeps happening, tell your administrator the reference in this response's x-request-id header and the time.</p></body></html>\n";

/// Marks the response of a [`PageFault`], for [`localize_faults`] to show in the visitor's language.
#[derive(Debug, Clone, Copy)]
struct Fault;

impl IntoResponse for PageFault {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "request failed");
        let mut response = html(StatusCode::INTERNAL_SERVER_ERROR, FAULT_PAGE.to_owned());
        response.extensions_mut().insert(Fault);
        response
    }
}

/// The fault page (500) in `view`'s language, with the request's reference; the plain English page
/// when even that cannot be rendered.
pub fn fault_page(app: &AppState, view: &View, request_id: Option<&str>) -> Response {
    let page = ErrorPage {
        request_id,
        ..ErrorPage::new(app.chrome(), "error.fault.title", "error.fault.message")
    };
    match app.templates.page(view, &page) {
        Ok(body) => html(StatusCode::INTERNAL_SERVER_ERROR, body),
        Err(e) => {
            tracing::error!(error = %e, "the fault page cannot be rendered");
            html(StatusCode::INTERNAL_SERVER_ERROR, FAULT_PAGE.to_owned())
        }
    }
}

/// Middleware: a [`PageFault`] answer becomes the fault page in the language the request asks for
/// (`lang`, `ui_locales`, the language cookie, `Accept-Language`).
pub async fn localize_faults(app: &AppState, request: Request, next: Next) -> Response {
    // Only what the language and the reference need, kept before the request is consumed.
    let mut kept = HeaderMap::new();
    for name in [header::ACCEPT_LANGUAGE, header::COOKIE] {
        for value in request.headers().get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    let request_id = request
        .headers()
        .get(&super::security::X_REQUEST_ID)
        .cloned();
    let query = request.uri().query().map(str::to_owned);
    let response = next.run(request).await;
    if response.extensions().get::<Fault>().is_none() {
        return response;
    }
    let view = request_view(app, &kept, query.as_deref());
    let request_id = request_id.as_ref().and_then(|v| v.to_str().ok());
    fault_page(app, &view, request_id)
}

/// The 404 page, in the language the request asks for.
pub fn not_found_page(app: &AppState, headers: &HeaderMap, query: Option<&str>) -> Response {
    let view = request_view(app, headers, query);
    let page = ErrorPage::new(
        app.chrome(),
        "error.not_found.title",
        "error.not_found.message",
    );
    match app.templates.page(&view, &page) {
        Ok(body) => html(StatusCode::NOT_FOUND, body),
        Err(e) => {
            tracing::error!(error = %e, "the not-found page cannot be rendered");
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        }
    }
}
