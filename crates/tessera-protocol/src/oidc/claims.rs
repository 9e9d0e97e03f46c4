//! What tokens say: the subject, user claims per scope, ID tokens (Core §2), logout tokens
//! (Back-Channel Logout §2.4) and introspection answers (RFC 7662).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::grant::scope_string;
use super::{Grant, OidcClient};
use crate::{Attributes, Timestamp};

/// The `events` member of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Claims Tessera defines itself; released attributes never override them.
const RESERVED: [&str; 22] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
    "events",
    "preferred_username",
    "name",
    "given_name",
    "family_name",
    "email",
    "email_verified",
];

/// The subject of `username` in this deployment: `BASE64URL(SHA256(salt ":" username))`, stable,
/// the same for every client, and revealing neither the login name nor how many users there are.
pub fn subject(salt: &str, username: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(b":");
    hasher.update(username.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
}

/// Which user attributes the standard claims come from (the first one the user has wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSources {
    /// `name`.
    pub name: Vec<String>,
    /// `given_name`.
    pub given_name: Vec<String>,
    /// `family_name`.
    pub family_name: Vec<String>,
    /// `email`.
    pub email: Vec<String>,
    /// Whether e-mail addresses from the user store are verified (`email_verified`).
    pub email_verified: bool,
}

impl Default for ClaimSources {
    fn default() -> Self {
        let v = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
        Self {
            name: v(&["displayName", "cn", "name"]),
            given_name: v(&["givenName", "given_name"]),
            family_name: v(&["sn", "familyName", "family_name"]),
            email: v(&["mail", "email"]),
            email_verified: true,
        }
    }
}

fn first_value<'a>(attributes: &'a Attributes, sources: &[String]) -> Option<&'a str> {
    sources
        .iter()
        .filter_map(|name| attributes.get(name))
        .flat_map(|values| values.iter())
        .map(String::as_str)
        .find(|v| !v.is_empty())
}

/// The user's claims for `scope` (Core §5.4), without `sub`: `profile` gives `preferred_username`,
/// `name`, `given_name`, `family_name`; `email` gives `email` and `email_verified`; attributes the
/// client's release policy allows come as extra claims (one value as a string, several as an
/// array). Empty claims are left out (trap 15).
pub fn user_claims(
    scope: &[String],
    username: &str,
    attributes: &Attributes,
    client: &OidcClient,
    sources: &ClaimSources,
) -> Map<String, Value> {
    let mut claims = Map::new();
    let has = |s: &str| scope.iter().any(|x| x == s);
    if has("profile") {
        claims.insert("preferred_username".into(), username.into());
        for (claim, from) in [
            ("name", &sources.name),
            ("given_name", &sources.given_name),
            ("family_name", &sources.family_name),
        ] {
            if let Some(v) = first_value(attributes, from) {
                claims.insert(claim.into(), v.into());
            }
        }
    }
    if has("email") {
        if let Some(v) = first_value(attributes, &sources.email) {
            claims.insert("email".into(), v.into());
            claims.insert("email_verified".into(), sources.email_verified.into());
        }
    }
    for (name, mut values) in client.release.apply(attributes) {
        if RESERVED.contains(&name.as_str()) || claims.contains_key(&name) {
            continue;
        }
        let value = if values.len() == 1 {
            Value::String(values.remove(0))
        } else {
            Value::Array(values.into_iter().map(Value::String).collect())
        };
        claims.insert(name, value);
    }
    claims
}

/// `at_hash`: the left half of SHA-256 of the access token, base64url (Core §3.1.3.6; trap 10).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// An ID token's claims.
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// The client id, a single string (trap 7).
    pub aud: String,
    /// Expiry, seconds.
    pub exp: i64,
    /// Issued at, seconds; never in the future (trap 3).
    pub iat: i64,
    /// The SSO login time, seconds.
    pub auth_time: i64,
    /// The request's nonce; never in refreshed tokens (trap 9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Authentication methods.
    pub amr: Vec<String>,
    /// The SSO session id (same as in logout tokens; trap 20).
    pub sid: String,
    /// Hash of the access token issued with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// User claims.
    #[serde(flatten)]
    pub user: Map<String, Value>,
}

/// Builds an ID token's claims for `grant`.
#[allow(clippy::too_many_arguments)]
pub fn id_token(
    issuer: &str,
    subject: &str,
    grant: &Grant,
    nonce: Option<String>,
    access_token: Option<&str>,
    user: Map<String, Value>,
    now: Timestamp,
    lifetime: std::time::Duration,
) -> IdTokenClaims {
    let iat = now.unix_seconds();
    IdTokenClaims {
        iss: issuer.to_owned(),
        sub: subject.to_owned(),
        aud: grant.client_id.clone(),
        exp: iat + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
        iat,
        auth_time: grant.auth_time.unix_seconds(),
        nonce,
        amr: vec!["pwd".to_owned()],
        sid: grant.session_id.as_str().to_owned(),
        at_hash: access_token.map(at_hash),
        user,
    }
}

/// A logout token's claims (Back-Channel Logout §2.4): no `nonce`, an `events` object, a unique
/// `jti`, both `sub` and `sid`.
pub fn logout_token(
    issuer: &str,
    client_id: &str,
    subject: &str,
    sid: &str,
    jti: &str,
    now: Timestamp,
) -> Value {
    let iat = now.unix_seconds();
    serde_json::json!({
        "iss": issuer,
        "aud": client_id,
        "iat": iat,
        "exp": iat + 120,
        "jti": jti,
        "sub": subject,
        "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

/// What introspection reports about one live token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts<'a> {
    /// Its scopes.
    pub scope: &'a [String],
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
    /// `Bearer` for access tokens; none for refresh tokens.
    pub token_type: Option<&'a str>,
}

/// The answer about an active token (RFC 7662 §2.2); `aud` holds the client it was issued to
/// (trap 28).
pub fn introspection_active(
    issuer: &str,
    subject: &str,
    grant: &Grant,
    token: &TokenFacts<'_>,
) -> Value {
    let mut body = serde_json::json!({
        "active": true,
        "scope": scope_string(token.scope),
        "client_id": grant.client_id,
        "sub": subject,
        "username": grant.username,
        "aud": [grant.client_id],
        "iss": issuer,
        "exp": token.expires_at.unix_seconds(),
        "iat": token.issued_at.unix_seconds(),
        "sid": grant.session_id.as_str(),
    });
    if let Some(t) = token.token_type {
        body["token_type"] = t.into();
    }
    body
}

#[cfg(test)]
mod tests;
