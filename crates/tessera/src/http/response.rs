//! Building responses: pages, redirects, protocol bodies, and the fault every page handler can return.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::web::templates::TemplateError;

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
/// as a plain page (the response's `x-request-id` header ties the two together).
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

const FAULT_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error · Tessera</title></head>\
<body><h1>Something went wrong</h1><p>Tessera could not complete your request. Please try again in a moment. \
If it keeps happening, tell your administrator the reference in this response's x-request-id header and the time.</p></body></html>\n";

impl IntoResponse for PageFault {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "request failed");
        html(StatusCode::INTERNAL_SERVER_ERROR, FAULT_PAGE.to_owned())
    }
}
