//! Service ticket validation: `/validate` (CAS 3.0 §2.4), `/serviceValidate` and `/proxyValidate`
//! (§2.5, §2.6), and their `/p3/` twins (§2.7, §2.8).
//!
//! The handler parses the request with [`ValidateRequest::parse`], *takes* the ticket from the store
//! (so a replay finds nothing), looks up the ticket's service, and passes all of it to
//! [`validate_service_ticket`]. Whatever the outcome, the ticket is gone: CAS 3.0 §3.1.1 burns a
//! ticket on any validation attempt.

use rand_core::{CryptoRng, RngCore};

use crate::attributes::Attributes;
use crate::cas::{is_flag_set, ValidationError};
use crate::service::{RegisteredService, ServiceUrl};
use crate::session::{SessionId, SsoSession};
use crate::ticket::{ProxyTicketId, ServiceTicketId, TicketKey};
use crate::time::Timestamp;

/// Which validation endpoint was called; decides which tickets are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate`, CAS 1.0: service tickets only, plain-text answer.
    Validate,
    /// `/serviceValidate` or `/p3/serviceValidate`: service tickets only.
    ServiceValidate,
    /// `/proxyValidate` or `/p3/proxyValidate`: service or proxy tickets.
    ProxyValidate,
}

/// The body format asked for with `format` (CAS 3.0 §2.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// CAS XML (the default).
    #[default]
    Xml,
    /// CAS JSON.
    Json,
}

impl ResponseFormat {
    /// `XML` or `JSON`, any case; absent means XML. Anything else is `INVALID_REQUEST`, answered in XML.
    pub fn parse(format: Option<&str>) -> Result<Self, ValidationError> {
        match format {
            None => Ok(Self::Xml),
            Some(f) if f.eq_ignore_ascii_case("xml") => Ok(Self::Xml),
            Some(f) if f.eq_ignore_ascii_case("json") => Ok(Self::Json),
            Some(_) => Err(ValidationError::InvalidRequest(
                "format must be XML or JSON".into(),
            )),
        }
    }
}

/// The raw parameters of a validation request, as sent.
#[derive(Debug, Clone, Default)]
pub struct ValidateParams {
    /// `service`
    pub service: Option<String>,
    /// `ticket`
    pub ticket: Option<String>,
    /// `renew`
    pub renew: Option<String>,
    /// `pgtUrl`
    pub pgt_url: Option<String>,
}

/// The ticket a validation request names: a service ticket anywhere, a proxy ticket only at
/// `/proxyValidate` (CAS 3.0 §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationTicket {
    /// `ST-…`
    Service(ServiceTicketId),
    /// `PT-…`
    Proxy(ProxyTicketId),
}

impl ValidationTicket {
    /// The store key.
    pub fn key(&self) -> TicketKey {
        match self {
            Self::Service(t) => t.key(),
            Self::Proxy(t) => t.key(),
        }
    }

    /// The ticket as sent. Never log it; log the `Debug` form.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Service(t) => t.as_str(),
            Self::Proxy(t) => t.as_str(),
        }
    }
}

/// A validation request whose parameters are present and whose ticket is well formed.
#[derive(Debug, Clone)]
pub struct ValidateRequest {
    /// The service as presented now; compared with the one the ticket was issued for.
    pub service: String,
    /// The ticket to take.
    pub ticket: ValidationTicket,
    /// Only tickets from a fresh password login are acceptable.
    pub renew: bool,
    /// Where to send a proxy-granting ticket, if the service asks for one (CAS 3.0 §2.5.4).
    pub pgt_url: Option<String>,
}

impl ValidateRequest {
    /// Checks what can be checked without the store.
    ///
    /// A missing `service` or `ticket` is `INVALID_REQUEST`. A proxy ticket at an endpoint that takes
    /// only service tickets is `INVALID_TICKET_SPEC` (CAS 3.0 §2.5: "MUST NOT" accept proxy tickets);
    /// anything else that is not a service or (at `/proxyValidate`) proxy ticket — a TGT, a PGT,
    /// garbage — is `INVALID_TICKET`.
    pub fn parse(endpoint: Endpoint, params: &ValidateParams) -> Result<Self, ValidationError> {
        let (Some(service), Some(ticket)) = (non_empty(&params.service), non_empty(&params.ticket))
        else {
            return Err(ValidationError::InvalidRequest(
                "both service and ticket parameters are required".into(),
            ));
        };
        let shown = printable_prefix(ticket);
        let parsed = match (ServiceTicketId::parse(ticket), ProxyTicketId::parse(ticket)) {
            (Some(st), _) => ValidationTicket::Service(st),
            (None, Some(pt)) if endpoint == Endpoint::ProxyValidate => ValidationTicket::Proxy(pt),
            (None, Some(_)) => {
                return Err(ValidationError::InvalidTicketSpec(format!(
                    "ticket {shown} is a proxy ticket; use proxyValidate"
                )))
            }
            (None, None) => {
                return Err(ValidationError::InvalidTicket(format!(
                    "ticket {shown} not recognized"
                )))
            }
        };
        Ok(Self {
            service: service.to_owned(),
            ticket: parsed,
            renew: is_flag_set(params.renew.as_deref()),
            pgt_url: non_empty(&params.pgt_url).map(str::to_owned),
        })
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// At most 64 characters of a client-supplied ticket, for echoing in a failure message.
fn printable_prefix(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// A stored service ticket: everything validation needs, so it takes one store round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTicket {
    /// The store key of the ticket id.
    pub key: TicketKey,
    /// The service it was issued for, exactly as given at `/login`.
    pub service: ServiceUrl,
    /// The SSO session it came from.
    pub session_id: SessionId,
    /// The login name.
    pub username: String,
    /// The user's attributes at login.
    pub attributes: Attributes,
    /// Issued right after the password was checked, not from single sign-on.
    pub from_new_login: bool,
    /// Issued from a "remember me" session.
    pub long_term: bool,
    /// When the password was checked.
    pub authenticated_at: Timestamp,
    /// When the ticket stops being valid.
    pub expires_at: Timestamp,
    /// For a proxy ticket, the proxies it went through, most recent first (each the `pgtUrl` it
    /// used); empty for a service ticket.
    pub proxies: Vec<String>,
}

impl ServiceTicket {
    /// A new ticket for `service` from `session`, valid for `ttl` (CAS 3.0 §3.1).
    pub fn issue(
        session: &SsoSession,
        service: ServiceUrl,
        from_new_login: bool,
        ttl: std::time::Duration,
        now: Timestamp,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> (ServiceTicketId, Self) {
        let id = ServiceTicketId::generate_at(now, rng);
        let ticket = Self {
            key: id.key(),
            service,
            session_id: session.id.clone(),
            username: session.username.clone(),
            attributes: session.attributes.clone(),
            from_new_login,
            long_term: session.long_term,
            authenticated_at: session.authenticated_at,
            expires_at: now.plus(ttl),
            proxies: Vec::new(),
        };
        (id, ticket)
    }
}

/// The three CAS 3.0 protocol attributes (§2.5.2 CAS 3.0 schema, §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolAttributes {
    /// When the user authenticated.
    pub authentication_date: Timestamp,
    /// A "remember me" session was used.
    pub long_term_authentication_request_token_used: bool,
    /// The ticket came from a password login, not from single sign-on.
    pub is_from_new_login: bool,
}

impl ProtocolAttributes {
    /// Names reserved for these attributes; user attributes of the same names are not released.
    pub const NAMES: [&'static str; 3] = [
        "authenticationDate",
        "longTermAuthenticationRequestTokenUsed",
        "isFromNewLogin",
    ];
}

/// A successful validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The user id as this service sees it.
    pub user: String,
    /// The login name (for logs and single logout).
    pub username: String,
    /// The ticket's session.
    pub session_id: SessionId,
    /// The service URL the ticket was issued for.
    pub service: ServiceUrl,
    /// Released attributes, renamed per policy.
    pub attributes: Attributes,
    /// All the user's attributes, for a proxy-granting ticket's later tickets; never sent.
    pub user_attributes: Attributes,
    /// The protocol attributes.
    pub protocol: ProtocolAttributes,
    /// For a proxy ticket, the proxy chain, most recent first.
    pub proxies: Vec<String>,
    /// The PGTIOU, when a proxy-granting ticket was delivered to the `pgtUrl`.
    pub proxy_granting_ticket: Option<String>,
}

/// The checks of [`validate_service_ticket`] on a ticket taken, without building the answer:
/// the service it is registered under when the ticket validates. Cheap (nothing is copied), for
/// deciding inside the store's write; `validate_service_ticket` succeeds exactly when this does.
pub fn check_service_ticket<'s>(
    req: &ValidateRequest,
    ticket: &ServiceTicket,
    service: Option<&'s RegisteredService>,
    now: Timestamp,
) -> Result<&'s RegisteredService, ValidationError> {
    let shown = req.ticket.as_str();
    if now >= ticket.expires_at {
        return Err(ValidationError::InvalidTicket(format!(
            "ticket {shown} has expired"
        )));
    }
    if !ticket.service.matches_presented(&req.service) {
        return Err(ValidationError::InvalidService(format!(
            "ticket {shown} was not issued for this service"
        )));
    }
    if req.renew && !ticket.from_new_login {
        return Err(ValidationError::InvalidTicketSpec(format!(
            "ticket {shown} was issued from single sign-on, but renew was requested"
        )));
    }
    service.ok_or_else(|| {
        ValidationError::UnauthorizedService(
            "the service is not authorized to use this server".into(),
        )
    })
}

/// CAS 3.0 §2.5: decides a validation. `ticket` is what the store *took* for the request's ticket
/// (`None` when unknown or already used); `service` is the registered service the ticket's URL belongs
/// to now.
pub fn validate_service_ticket(
    req: &ValidateRequest,
    ticket: Option<ServiceTicket>,
    service: Option<&RegisteredService>,
    now: Timestamp,
) -> Result<Validation, ValidationError> {
    let shown = req.ticket.as_str();
    let ticket = ticket
        .ok_or_else(|| ValidationError::InvalidTicket(format!("ticket {shown} not recognized")))?;
    let service = check_service_ticket(req, &ticket, service, now)?;
    let mut attributes = service.released(&ticket.attributes);
    let user_attributes = ticket.attributes.clone();
    attributes.retain(|name, _| !ProtocolAttributes::NAMES.contains(&name.as_str()));
    Ok(Validation {
        user: service.principal_for(&ticket.username, &ticket.attributes),
        username: ticket.username,
        session_id: ticket.session_id,
        service: ticket.service,
        attributes,
        user_attributes,
        protocol: ProtocolAttributes {
            authentication_date: ticket.authenticated_at,
            long_term_authentication_request_token_used: ticket.long_term,
            is_from_new_login: ticket.from_new_login,
        },
        proxies: ticket.proxies,
        proxy_granting_ticket: None,
    })
}

#[cfg(test)]
mod tests;
