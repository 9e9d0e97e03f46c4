//! Ticket validation endpoints: `/validate` (CAS 1.0), `/serviceValidate` and `/proxyValidate`
//! (CAS 2.0), `/p3/serviceValidate` and `/p3/proxyValidate` (CAS 3.0), each also answering
//! `format=JSON`. Protocol failures are HTTP 200 answers (trap T8); only our own faults are 500.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tessera_protocol::cas::validate::{
    validate_service_ticket, Endpoint, ResponseFormat, ValidateParams, ValidateRequest, Validation,
};
use tessera_protocol::cas::{xml, ValidationError};
use tessera_store::ServiceAccess;

use crate::app::AppState;
use crate::http::extract::Params;
use crate::http::response::body;

const TEXT: &str = "text/plain; charset=utf-8";
const XML: &str = "application/xml; charset=utf-8";
const JSON: &str = "application/json";

/// The validation endpoints under `{base}`.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(&app.path("/validate"), get(validate))
        .route(&app.path("/serviceValidate"), get(service_validate))
        .route(&app.path("/proxyValidate"), get(proxy_validate))
        .route(&app.path("/p3/serviceValidate"), get(service_validate))
        .route(&app.path("/p3/proxyValidate"), get(proxy_validate))
}

/// CAS 1.0 §2.4.
async fn validate(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let (result, status) = run(&app, Endpoint::Validate, &Params::from_query(query)).await;
    body(status, TEXT, xml::cas1(&result))
}

/// CAS 3.0 §2.5 and §2.7.
async fn service_validate(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    answer(&app, Endpoint::ServiceValidate, &Params::from_query(query)).await
}

/// CAS 3.0 §2.6 and §2.8.
async fn proxy_validate(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    answer(&app, Endpoint::ProxyValidate, &Params::from_query(query)).await
}

async fn answer(app: &AppState, endpoint: Endpoint, params: &Params) -> Response {
    let format = match ResponseFormat::parse(params.get("format")) {
        Ok(format) => format,
        Err(e) => return body(StatusCode::OK, XML, xml::service_response_xml(&Err(e))),
    };
    let (result, status) = run(app, endpoint, params).await;
    match format {
        ResponseFormat::Xml => body(status, XML, xml::service_response_xml(&result)),
        ResponseFormat::Json => body(status, JSON, xml::service_response_json(&result)),
    }
}

/// Takes the ticket and decides. Whatever the outcome, the ticket is gone (CAS 3.0 §3.1.1).
async fn run(
    app: &AppState,
    endpoint: Endpoint,
    params: &Params,
) -> (Result<Validation, ValidationError>, StatusCode) {
    let raw = ValidateParams {
        service: params.get("service").map(str::to_owned),
        ticket: params.get("ticket").map(str::to_owned),
        renew: params.get("renew").map(str::to_owned),
    };
    let req = match ValidateRequest::parse(endpoint, &raw) {
        Ok(req) => req,
        Err(e) => {
            tracing::info!(code = e.code(), "ticket validation refused");
            return (Err(e), StatusCode::OK);
        }
    };
    let now = app.clock.now();
    let fetched = async {
        let ticket = app.store.take_service_ticket(&req.ticket.key()).await?;
        let registry = app.registry().await?;
        let service = ticket
            .as_ref()
            .and_then(|t| registry.find(t.service.as_str()))
            .cloned();
        Ok::<_, tessera_store::StoreError>((ticket, service))
    }
    .await;
    let (ticket, service) = match fetched {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "ticket validation failed: store error");
            return (
                Err(ValidationError::InternalError(
                    "the server could not validate the ticket; try again".into(),
                )),
                StatusCode::INTERNAL_SERVER_ERROR,
            );
        }
    };
    let result = validate_service_ticket(&req, ticket, service.as_ref(), now);
    match &result {
        Ok(v) => {
            let access = ServiceAccess {
                service: v.service.as_str().to_owned(),
                ticket: req.ticket.as_str().to_owned(),
                validated_at: now,
            };
            if let Err(e) = app.store.put_service_access(&v.session_id, &access).await {
                // The ticket is valid; only single logout for this service is at risk.
                tracing::error!(error = %e, session = %v.session_id, "could not record the service for single logout");
            }
            tracing::info!(user = %v.username, service = %v.service, ticket = ?req.ticket, "service ticket validated");
            tracing::debug!(
                user = %v.username,
                service = %v.service,
                attributes = ?v.attributes,
                "attributes released"
            );
        }
        Err(e) => tracing::info!(code = e.code(), ticket = ?req.ticket, "ticket validation failed"),
    }
    (result, StatusCode::OK)
}
