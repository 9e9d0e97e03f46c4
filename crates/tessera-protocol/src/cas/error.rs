//! Validation failure codes (CAS 3.0 §2.5.3, §2.6.3), each an answer, not a fault.

/// Why a ticket validation failed. The variant is the spec's error code; the text is the message
/// sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required parameter is missing, or `format` is unsupported.
    #[error("{0}")]
    InvalidRequest(String),
    /// The ticket does not satisfy the validation spec (a proxy ticket where only service tickets
    /// are accepted, or `renew` asked for a ticket issued from single sign-on).
    #[error("{0}")]
    InvalidTicketSpec(String),
    /// Unknown, expired or already used ticket.
    #[error("{0}")]
    InvalidTicket(String),
    /// The ticket was issued for another service.
    #[error("{0}")]
    InvalidService(String),
    /// The service is not (or no longer) allowed to use Tessera.
    #[error("{0}")]
    UnauthorizedService(String),
    /// `pgtUrl` was given, but the service may not obtain proxy-granting tickets.
    #[error("{0}")]
    UnauthorizedServiceProxy(String),
    /// `pgtUrl` is not https, or not a callback registered for the service.
    #[error("{0}")]
    InvalidProxyCallback(String),
    /// Something failed on our side.
    #[error("{0}")]
    InternalError(String),
}

impl ValidationError {
    /// The code clients see in `<cas:authenticationFailure code="…">`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "INVALID_REQUEST",
            Self::InvalidTicketSpec(_) => "INVALID_TICKET_SPEC",
            Self::InvalidTicket(_) => "INVALID_TICKET",
            Self::InvalidService(_) => "INVALID_SERVICE",
            Self::UnauthorizedService(_) => "UNAUTHORIZED_SERVICE",
            Self::UnauthorizedServiceProxy(_) => "UNAUTHORIZED_SERVICE_PROXY",
            Self::InvalidProxyCallback(_) => "INVALID_PROXY_CALLBACK",
            Self::InternalError(_) => "INTERNAL_ERROR",
        }
    }
}
