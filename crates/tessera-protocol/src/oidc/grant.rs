//! What an authorization produces: the one-time code, the grant it becomes at the token endpoint,
//! and the access and refresh tokens of that grant. All are stored by [`TicketKey`] only.

use crate::session::SessionId;
use crate::ticket::TicketKey;
use crate::{Attributes, Timestamp};

/// An authorization code (Core §3.1.2.5) and everything it is bound to (rule 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// Store key of the code.
    pub key: TicketKey,
    /// The client it was issued to.
    pub client_id: String,
    /// The exact redirect URI of the request; the token request must repeat it.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// The request's `nonce`, echoed into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge, when the request had one.
    pub code_challenge: Option<String>,
    /// The SSO session (its id is the `sid` claim).
    pub session_id: SessionId,
    /// The user.
    pub username: String,
    /// The user's attributes at login.
    pub attributes: Attributes,
    /// When the user authenticated (the `auth_time` claim).
    pub auth_time: Timestamp,
    /// When the code stops being redeemable.
    pub expires_at: Timestamp,
}

/// What a redeemed code becomes: the client's standing access to the user for one SSO session.
/// Its access and refresh tokens die with it; it dies with the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Random id (not secret, not a credential).
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The SSO session.
    pub session_id: SessionId,
    /// The user.
    pub username: String,
    /// The user's attributes at login.
    pub attributes: Attributes,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// Where the client hears of the session's end, copied from its registration when granted.
    pub backchannel_logout_uri: Option<String>,
    /// When the code was redeemed.
    pub created_at: Timestamp,
}

/// An access token of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// Store key.
    pub key: TicketKey,
    /// Its grant.
    pub grant_id: String,
    /// Its scopes (those of the grant, or fewer after a narrowing refresh).
    pub scope: Vec<String>,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A refresh token of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Store key.
    pub key: TicketKey,
    /// Its grant.
    pub grant_id: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was exchanged for a new one, if it was: presenting it again after the grace window
    /// is reuse, and ends the grant (rule 6).
    pub rotated_at: Option<Timestamp>,
}

/// Scopes as they travel: space-separated.
pub fn scope_string(scope: &[String]) -> String {
    scope.join(" ")
}

/// Splits a `scope` parameter, dropping empty tokens and repeats, keeping order.
pub fn parse_scope(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for token in s.split(' ').filter(|t| !t.is_empty()) {
        if !out.iter().any(|o| o == token) {
            out.push(token.to_owned());
        }
    }
    out
}
