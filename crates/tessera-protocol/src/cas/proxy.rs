//! Proxy authentication (CAS 3.0 §2.5.4, §2.7, §2.9, §3.3–§3.4): a service that validates a ticket
//! with a `pgtUrl` gets a proxy-granting ticket (PGT), delivered to that URL with its IOU; with the
//! PGT it obtains proxy tickets (PT) for back-end services at `/proxy`, which validate at
//! `/proxyValidate` with the chain of proxies they went through.
//!
//! The handler does the I/O in between (the callback request and the store); this module decides.

use std::time::Duration;

use rand_core::{CryptoRng, RngCore};

use crate::attributes::Attributes;
use crate::cas::validate::{ServiceTicket, Validation};
use crate::cas::ValidationError;
use crate::service::{append_query, RegisteredService, ServiceUrl};
use crate::session::SessionId;
use crate::ticket::{PgtIou, ProxyGrantingTicketId, ProxyTicketId, TicketKey};
use crate::time::Timestamp;

/// A stored proxy-granting ticket: reusable until it expires or its SSO session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyGrantingTicket {
    /// Store key of the PGT.
    pub key: TicketKey,
    /// The SSO session it belongs to.
    pub session_id: SessionId,
    /// The login name.
    pub username: String,
    /// The user's attributes at login (each target's release policy applies at validation).
    pub attributes: Attributes,
    /// When the user authenticated.
    pub authenticated_at: Timestamp,
    /// From a "remember me" session.
    pub long_term: bool,
    /// The proxies so far, most recent (this PGT's `pgtUrl`) first.
    pub proxies: Vec<String>,
    /// When it stops being valid.
    pub expires_at: Timestamp,
}

/// CAS 3.0 §2.5.4 steps 1–2: whether `service` may have a PGT delivered to `pgt_url`. The service
/// must be allowed to proxy (`UNAUTHORIZED_SERVICE_PROXY`), and the callback must be https (plain
/// http only when `allow_http` is set, for tests) and match the service's registered callbacks
/// (`INVALID_PROXY_CALLBACK`).
pub fn check_callback(
    service: &RegisteredService,
    pgt_url: &str,
    allow_http: bool,
) -> Result<(), ValidationError> {
    let Some(allowed) = &service.proxy_callback else {
        return Err(ValidationError::UnauthorizedServiceProxy(
            "the service is not allowed to obtain proxy-granting tickets".into(),
        ));
    };
    let url = ServiceUrl::parse(pgt_url).map_err(|e| {
        ValidationError::InvalidProxyCallback(format!("the proxy callback URL is refused: {e}"))
    })?;
    let scheme = url.as_str().split_once(':').map_or("", |(s, _)| s);
    let secure =
        scheme.eq_ignore_ascii_case("https") || (allow_http && scheme.eq_ignore_ascii_case("http"));
    if !secure {
        return Err(ValidationError::InvalidProxyCallback(
            "the proxy callback must be an https URL".into(),
        ));
    }
    if !allowed.matches(url.as_str()) {
        return Err(ValidationError::InvalidProxyCallback(
            "the proxy callback is not registered for this service".into(),
        ));
    }
    Ok(())
}

/// A new PGT and its independent IOU for a successful validation whose `pgtUrl` passed
/// [`check_callback`]; the PGT's chain is `pgt_url` followed by the validated ticket's own proxies.
pub fn grant(
    validation: &Validation,
    pgt_url: &str,
    ttl: Duration,
    now: Timestamp,
    rng: &mut (impl RngCore + CryptoRng),
) -> (ProxyGrantingTicketId, PgtIou, ProxyGrantingTicket) {
    let id = ProxyGrantingTicketId::generate(rng);
    let iou = PgtIou::generate(rng);
    let mut proxies = Vec::with_capacity(validation.proxies.len() + 1);
    proxies.push(pgt_url.to_owned());
    proxies.extend(validation.proxies.iter().cloned());
    let pgt = ProxyGrantingTicket {
        key: id.key(),
        session_id: validation.session_id.clone(),
        username: validation.username.clone(),
        attributes: validation.user_attributes.clone(),
        authenticated_at: validation.protocol.authentication_date,
        long_term: validation
            .protocol
            .long_term_authentication_request_token_used,
        proxies,
        expires_at: now.plus(ttl),
    };
    (id, iou, pgt)
}

/// The callback request: `pgtUrl` with `pgtIou` and `pgtId` appended, its own query kept verbatim
/// (trap T5).
pub fn callback_url(pgt_url: &str, iou: &PgtIou, pgt: &ProxyGrantingTicketId) -> String {
    append_query(
        pgt_url,
        &format!("pgtIou={}&pgtId={}", iou.as_str(), pgt.as_str()),
    )
}

/// A `/proxy` request whose parameters are present and well formed (CAS 3.0 §2.7.1).
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// The PGT to use.
    pub pgt: ProxyGrantingTicketId,
    /// The back-end service the PT is for (any scheme: `imap://…` too, trap T29).
    pub target_service: ServiceUrl,
}

impl ProxyRequest {
    /// `pgt` and `targetService` as sent.
    pub fn parse(pgt: Option<&str>, target_service: Option<&str>) -> Result<Self, ValidationError> {
        let (Some(pgt), Some(target)) = (
            pgt.filter(|s| !s.is_empty()),
            target_service.filter(|s| !s.is_empty()),
        ) else {
            return Err(ValidationError::InvalidRequest(
                "both pgt and targetService parameters are required".into(),
            ));
        };
        let pgt = ProxyGrantingTicketId::parse(pgt).ok_or_else(|| {
            ValidationError::InvalidTicket("the proxy-granting ticket is not recognized".into())
        })?;
        let target_service = ServiceUrl::parse(target).map_err(|e| {
            ValidationError::UnauthorizedService(format!("the target service is refused: {e}"))
        })?;
        Ok(Self {
            pgt,
            target_service,
        })
    }
}

/// CAS 3.0 §2.7: a proxy ticket for `req.target_service` from the stored `pgt` (`None` when
/// unknown), if the target is registered (`target`), accepts proxy tickets and admits the user.
pub fn issue_proxy_ticket(
    req: &ProxyRequest,
    pgt: Option<ProxyGrantingTicket>,
    target: Option<&RegisteredService>,
    ttl: Duration,
    now: Timestamp,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(ProxyTicketId, ServiceTicket), ValidationError> {
    let pgt = pgt.filter(|p| now < p.expires_at).ok_or_else(|| {
        ValidationError::InvalidTicket(
            "the proxy-granting ticket is not recognized or has expired".into(),
        )
    })?;
    let target = target.filter(|t| t.proxy_target).ok_or_else(|| {
        ValidationError::UnauthorizedService(
            "the target service does not accept proxy tickets".into(),
        )
    })?;
    if !target.allows(&pgt.attributes) {
        return Err(ValidationError::UnauthorizedService(
            "the user is not allowed to use the target service".into(),
        ));
    }
    let id = ProxyTicketId::generate_at(now, rng);
    let ticket = ServiceTicket {
        key: id.key(),
        service: req.target_service.clone(),
        session_id: pgt.session_id,
        username: pgt.username,
        attributes: pgt.attributes,
        from_new_login: false,
        long_term: pgt.long_term,
        authenticated_at: pgt.authenticated_at,
        expires_at: now.plus(ttl),
        proxies: pgt.proxies,
    };
    Ok((id, ticket))
}

#[cfg(test)]
mod tests;
