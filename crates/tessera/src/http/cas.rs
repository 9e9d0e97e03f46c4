//! Ticket validation endpoints: `/validate` (CAS 1.0), `/serviceValidate` and `/proxyValidate`
//! (CAS 2.0), `/p3/serviceValidate` and `/p3/proxyValidate` (CAS 3.0), each also answering
//! `format=JSON`, and `POST /samlValidate` (SAML 1.1, CAS 3.0 §4.2). Protocol failures are HTTP 200
//! answers (trap T8); only our own faults are 500.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tessera_protocol::cas::proxy;
use tessera_protocol::cas::saml11::{self, ResponseContext};
use tessera_protocol::cas::validate::{
    check_service_ticket, validate_service_ticket, Endpoint, ResponseFormat, ServiceTicket,
    ValidateParams, ValidateRequest, Validation,
};
use tessera_protocol::cas::{xml, ValidationError};
use tessera_protocol::service::ServiceRegistry;
use tessera_protocol::Timestamp;
use tessera_store::{AccessRule, ServiceAccess, StoreError};

use crate::app::{AppState, StartError};
use crate::audit::audit;
use crate::config::ProxySettings;
use crate::http::extract::Params;
use crate::http::response::body;
use crate::metrics::{TicketKind, ValidationOutcome};

const TEXT: &str = "text/plain; charset=utf-8";
const XML: &str = "application/xml; charset=utf-8";
const JSON: &str = "application/json";
const SOAP: &str = "text/xml; charset=utf-8";

/// The validation endpoints under `{base}`.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(&app.path("/validate"), get(validate))
        .route(&app.path("/serviceValidate"), get(service_validate))
        .route(&app.path("/proxyValidate"), get(proxy_validate))
        .route(&app.path("/p3/serviceValidate"), get(service_validate))
        .route(&app.path("/p3/proxyValidate"), get(proxy_validate))
        .route(&app.path("/samlValidate"), post(saml_validate))
        .route(&app.path("/proxy"), get(proxy))
}

/// The client for `pgtUrl` callbacks (CAS 3.0 §2.5.4): TLS verified against the web roots and the
/// configured CA bundle, a few redirects followed, no cookies, a short timeout.
pub fn proxy_callback_client(settings: &ProxySettings) -> Result<reqwest::Client, StartError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(settings.callback_timeout)
        .user_agent(concat!("Tessera/", env!("CARGO_PKG_VERSION")));
    if let Some(file) = &settings.ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| StartError::CaFile(format!("{}: {e}", file.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| StartError::CaFile(format!("{}: {e}", file.display())))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

/// CAS 3.0 §2.7: a proxy ticket for `targetService` from a proxy-granting ticket.
async fn proxy(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = Params::from_query(query);
    let format = match ResponseFormat::parse(params.get("format")) {
        Ok(format) => format,
        Err(e) => return body(StatusCode::OK, XML, xml::proxy_response_xml(&Err(e))),
    };
    let (result, status) = issue_proxy(&app, &params).await;
    match format {
        ResponseFormat::Xml => body(status, XML, xml::proxy_response_xml(&result)),
        ResponseFormat::Json => body(status, JSON, xml::proxy_response_json(&result)),
    }
}

async fn issue_proxy(
    app: &AppState,
    params: &Params,
) -> (Result<String, ValidationError>, StatusCode) {
    let req = match proxy::ProxyRequest::parse(params.get("pgt"), params.get("targetService")) {
        Ok(req) => req,
        Err(e) => {
            tracing::info!(code = e.code(), "proxy ticket refused");
            return (Err(e), StatusCode::OK);
        }
    };
    let now = app.clock.now();
    let issued = async {
        let pgt = app.store.get_proxy_granting_ticket(&req.pgt.key()).await?;
        let registry = app.registry().await?;
        let target = registry.find(req.target_service.as_str());
        let ttl = app.settings.tickets.service_ticket_ttl;
        match proxy::issue_proxy_ticket(&req, pgt, target, ttl, now, &mut rand::rngs::OsRng) {
            Ok((id, ticket)) => {
                app.store.put_service_ticket(&ticket, None, None).await?;
                app.metrics.issued(TicketKind::Proxy);
                tracing::info!(user = %ticket.username, service = %ticket.service, ticket = ?id, proxies = ?ticket.proxies, "proxy ticket issued");
                Ok(Ok(id.as_str().to_owned()))
            }
            Err(e) => Ok::<_, tessera_store::StoreError>(Err(e)),
        }
    }
    .await;
    match issued {
        Ok(Ok(pt)) => (Ok(pt), StatusCode::OK),
        Ok(Err(e)) => {
            tracing::info!(code = e.code(), pgt = ?req.pgt, target = %req.target_service, "proxy ticket refused");
            (Err(e), StatusCode::OK)
        }
        Err(e) => {
            tracing::error!(error = %e, "proxy ticket failed: store error");
            (
                Err(ValidationError::InternalError(
                    "the server could not issue a proxy ticket; try again".into(),
                )),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
    }
}

/// CAS 3.0 §2.5.4 steps 3–5: makes a PGT for a successful validation, delivers it with its IOU to
/// `pgt_url` before the answer is sent, and keeps it only if the callback answered 200. A failed
/// callback means no PGT, not a failed validation. Returns the IOU to put in the answer.
async fn deliver_pgt(
    app: &AppState,
    v: &Validation,
    pgt_url: &str,
    now: Timestamp,
) -> Option<String> {
    let ttl = app.settings.proxy.proxy_granting_ticket_ttl;
    let (id, iou, pgt) = proxy::grant(v, pgt_url, ttl, now, &mut rand::rngs::OsRng);
    let outcome = app
        .proxy_http
        .get(proxy::callback_url(pgt_url, &iou, &id))
        .send()
        .await;
    match outcome {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            match app.store.put_proxy_granting_ticket(&pgt).await {
                Ok(()) => {
                    app.metrics.issued(TicketKind::ProxyGranting);
                    tracing::info!(user = %v.username, service = %v.service, pgt_url, pgt = ?id, "proxy-granting ticket delivered");
                    Some(iou.as_str().to_owned())
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not store the proxy-granting ticket");
                    None
                }
            }
        }
        Ok(response) => {
            tracing::warn!(
                pgt_url,
                status = response.status().as_u16(),
                "proxy callback did not answer 200: no proxy-granting ticket"
            );
            None
        }
        Err(e) => {
            tracing::warn!(pgt_url, error = %crate::slo::describe(&e), "proxy callback failed: no proxy-granting ticket");
            None
        }
    }
}

/// CAS 1.0 §2.4.
async fn validate(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let params = Params::from_query(query);
    let (result, status) = run(
        &app,
        cas_request(Endpoint::Validate, &params),
        app.clock.now(),
    )
    .await;
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
    let (result, status) = run(app, cas_request(endpoint, params), app.clock.now()).await;
    match format {
        ResponseFormat::Xml => body(status, XML, xml::service_response_xml(&result)),
        ResponseFormat::Json => body(status, JSON, xml::service_response_json(&result)),
    }
}

/// CAS 3.0 §4.2, protocol digest §1.7: SAML 1.1 validation. `TARGET` (and `renew`) come in the
/// query, the ticket in the SOAP body; neither `SOAPAction` nor `Content-Type` is required. Every
/// protocol outcome is a 200 SOAP answer; a store failure is a 500 with a `samlp:Responder` body.
async fn saml_validate(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    soap: Result<Bytes, BytesRejection>,
) -> Response {
    let params = Params::from_query(query);
    let target = params.non_empty("TARGET");
    let req = match &soap {
        Ok(soap) => saml11::parse_validate_request(target, params.get("renew"), soap),
        Err(e) => Err(ValidationError::InvalidRequest(format!(
            "the request body could not be read: {e}"
        ))),
    };
    let now = app.clock.now();
    let (mut result, status) = run(&app, req, now).await;
    if let (Ok(v), Some(target)) = (&mut result, target) {
        let require_https = app.settings.saml.attributes_require_https;
        if !v.attributes.is_empty() && !saml11::releases_attributes_to(target, require_https) {
            tracing::info!(user = %v.username, service = %v.service, "attributes withheld: SAML target is not https");
            v.attributes.clear();
        }
    }
    let issuer = saml_issuer(&app);
    let ctx = ResponseContext {
        target,
        issuer: &issuer,
        now,
    };
    let answer = saml11::response(&result, &ctx, &mut rand::rngs::OsRng);
    body(status, SOAP, answer)
}

/// The assertion's `Issuer`: the host name users reach us at.
fn saml_issuer(app: &AppState) -> String {
    url::Url::parse(&app.public_base())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The request of a CAS 1.0/2.0/3.0 validation endpoint, from its query parameters.
fn cas_request(endpoint: Endpoint, params: &Params) -> Result<ValidateRequest, ValidationError> {
    let raw = ValidateParams {
        service: params.get("service").map(str::to_owned),
        ticket: params.get("ticket").map(str::to_owned),
        renew: params.get("renew").map(str::to_owned),
        // CAS 1.0 has no proxying.
        pgt_url: (endpoint != Endpoint::Validate)
            .then(|| params.get("pgtUrl").map(str::to_owned))
            .flatten(),
    };
    ValidateRequest::parse(endpoint, &raw)
}

/// The verdict on a taken ticket (`None`: there was none), before any proxy-granting ticket is
/// delivered: the protocol's checks against the ticket's service, and for a `pgtUrl` the service's
/// callback policy. Pure.
fn verdict(
    req: &ValidateRequest,
    ticket: Option<ServiceTicket>,
    registry: &ServiceRegistry,
    allow_http_callbacks: bool,
    now: Timestamp,
) -> Result<Validation, ValidationError> {
    let service = ticket
        .as_ref()
        .and_then(|t| registry.find(t.service.as_str()));
    let validation = validate_service_ticket(req, ticket, service, now)?;
    if let (Some(pgt_url), Some(service)) = (req.pgt_url.as_deref(), service) {
        proxy::check_callback(service, pgt_url, allow_http_callbacks)?;
    }
    Ok(validation)
}

/// Whether [`verdict`] on `ticket` is a success, without building the answer (no attribute is
/// released or copied): what the store's write decides with while other writes wait. Pure.
fn admitted(
    req: &ValidateRequest,
    ticket: &ServiceTicket,
    registry: &ServiceRegistry,
    allow_http_callbacks: bool,
    now: Timestamp,
) -> bool {
    let service = registry.find(ticket.service.as_str());
    check_service_ticket(req, ticket, service, now).is_ok_and(|service| {
        req.pgt_url.as_deref().is_none_or(|pgt_url| {
            proxy::check_callback(service, pgt_url, allow_http_callbacks).is_ok()
        })
    })
}

/// Takes the ticket and decides. Whatever the outcome, the ticket is gone (CAS 3.0 §3.1.1).
async fn run(
    app: &AppState,
    req: Result<ValidateRequest, ValidationError>,
    now: Timestamp,
) -> (Result<Validation, ValidationError>, StatusCode) {
    let started = std::time::Instant::now();
    let (result, status) = decide(app, req, now).await;
    let outcome = match &result {
        _ if status.is_server_error() => ValidationOutcome::Error,
        Ok(_) => ValidationOutcome::Success,
        Err(_) => ValidationOutcome::Failure,
    };
    app.metrics.validated(outcome, started.elapsed());
    (result, status)
}

async fn decide(
    app: &AppState,
    req: Result<ValidateRequest, ValidationError>,
    now: Timestamp,
) -> (Result<Validation, ValidationError>, StatusCode) {
    let req = match req {
        Ok(req) => req,
        Err(e) => {
            tracing::info!(code = e.code(), "ticket validation refused");
            return (Err(e), StatusCode::OK);
        }
    };
    let allow_http = app.settings.proxy.allow_http_callbacks;
    let fetched = async {
        // Decided with the registry as last compiled; the take refuses if the services have
        // changed since, and then the current registry decides (a change cannot be missed).
        let mut decided = app.kept_registry().await?;
        for _ in 0..crate::app::DECISION_TRIES {
            let (version, registry) = decided;
            // The service the ticket's session enters is recorded (for single logout) in the
            // same write that takes the ticket, decided there by the same checks as the answer's.
            let entered: AccessRule = {
                let (req, registry) = (req.clone(), registry.clone());
                Box::new(move |ticket: &ServiceTicket| {
                    // Only web applications can be told of a logout (a proxy target may be
                    // `imap://…`).
                    let service = ticket.service.as_str();
                    let told = service.starts_with("http")
                        && admitted(&req, ticket, &registry, allow_http, now);
                    told.then(|| ServiceAccess {
                        service: service.to_owned(),
                        ticket: req.ticket.as_str().to_owned(),
                        validated_at: now,
                    })
                })
            };
            match app
                .store
                .take_service_ticket_recording(&req.ticket.key(), entered, Some(version))
                .await
            {
                Err(StoreError::RegistryChanged) => decided = app.current_registry().await?,
                taken => return Ok((taken?, registry)),
            }
        }
        Err(StoreError::RegistryChanged)
    }
    .await;
    let (ticket, registry) = match fetched {
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
    let mut result = verdict(&req, ticket, &registry, allow_http, now);
    if let (Ok(v), Some(pgt_url)) = (&result, req.pgt_url.as_deref()) {
        let iou = deliver_pgt(app, v, pgt_url, now).await;
        result = result.map(|v| Validation {
            proxy_granting_ticket: iou,
            ..v
        });
    }
    match &result {
        Ok(v) => {
            // The audit event is the log line of a validation (one line per request: logging
            // is a measurable part of a validation's cost); the ticket itself only at debug.
            let released: Vec<&str> = v.attributes.keys().map(String::as_str).collect();
            audit!("ticket_validated", user = %v.username, service = %v.service, attributes = ?released);
            tracing::debug!(ticket = ?req.ticket, proxies = v.proxies.len(), "ticket validated");
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
