//! OpenID Connect provider rules (OIDC Core 1.0, RFC 6749, RFC 7636, RP-Initiated and Back-Channel
//! Logout 1.0), free of I/O: clients, authorization requests, token requests, claims and discovery.

use std::fmt;

/// The JWS algorithm a client's ID tokens (and logout tokens) are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default every relying party supports (Core §15.1).
    #[default]
    Rs256,
    /// ECDSA on P-256 with SHA-256 (64-byte `R || S` signatures).
    Es256,
}

impl SigningAlg {
    /// Every algorithm Tessera signs with, RS256 first.
    pub const ALL: [Self; 2] = [Self::Rs256, Self::Es256];

    /// The JOSE name: `RS256` or `ES256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    /// Reads `RS256` or `ES256`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub mod client;
pub mod grant;

pub use client::{ClientRegistry, ClientSecret, OidcClient};
pub use grant::{AccessToken, AuthorizationCode, Grant, RefreshToken};
pub mod authorize;
pub mod error;

pub use error::{OAuthError, OAuthResult};
pub mod claims;
pub mod discovery;
pub mod token;
