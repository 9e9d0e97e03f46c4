//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6; RFC 7636 §4.6) and the client authentication it
//! shares with revocation and introspection.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::is_pkce_value;
use super::error::{OAuthError, OAuthResult};
use super::{AuthorizationCode, ClientRegistry, OidcClient};
use crate::Timestamp;

/// How a client presented itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the body (`client_secret_post`).
    Post,
    /// `client_id` alone: a public client (`none`).
    None,
}

/// The credentials of a request, before they are checked.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentedClient {
    /// The client id.
    pub client_id: String,
    /// Candidate secrets: the form-decoded value and, for HTTP Basic, the raw one too (trap 2).
    secrets: Vec<String>,
    /// The method used.
    pub method: ClientAuthMethod,
}

impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedClient")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Reads the client credentials from the `Authorization` header (if any) and the body's
/// `client_id` / `client_secret`. Using two methods at once, or a body `client_id` that differs from
/// the Basic one, is `invalid_request`; no credentials at all is `invalid_client`.
pub fn presented_client(
    authorization: Option<&str>,
    body_client_id: Option<&str>,
    body_secret: Option<&str>,
) -> OAuthResult<PresentedClient> {
    let basic = authorization
        .map(str::trim)
        .and_then(|h| {
            h.get(..6)
                .filter(|scheme| scheme.eq_ignore_ascii_case("basic "))
                .and(h.get(6..))
        })
        .map(str::trim);
    if let Some(encoded) = basic {
        if body_secret.is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                "use one client authentication method, not two",
            ));
        }
        let bad = || OAuthError::new("invalid_client", "malformed HTTP Basic credentials");
        let decoded = STANDARD.decode(encoded).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (raw_id, raw_secret) = decoded.split_once(':').ok_or_else(bad)?;
        let client_id = form_decode(raw_id);
        if body_client_id.is_some_and(|b| b != client_id && b != raw_id) {
            return Err(OAuthError::new(
                "invalid_request",
                "client_id in the body differs from the authenticated client",
            ));
        }
        let mut secrets = vec![form_decode(raw_secret)];
        if secrets[0] != raw_secret {
            secrets.push(raw_secret.to_owned());
        }
        return Ok(PresentedClient {
            client_id,
            secrets,
            method: ClientAuthMethod::Basic,
        });
    }
    match (body_client_id, body_secret) {
        (Some(id), Some(secret)) => Ok(PresentedClient {
            client_id: id.to_owned(),
            secrets: vec![secret.to_owned()],
            method: ClientAuthMethod::Post,
        }),
        (Some(id), None) => Ok(PresentedClient {
            client_id: id.to_owned(),
            secrets: Vec::new(),
            method: ClientAuthMethod::None,
        }),
        (None, _) => Err(OAuthError::new(
            "invalid_client",
            "client authentication is required",
        )),
    }
}

fn form_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Checks presented credentials against the registry: a confidential client must prove its secret,
/// a public client must not pretend to have one.
pub fn authenticate<'r>(
    presented: &PresentedClient,
    clients: &'r ClientRegistry,
) -> OAuthResult<&'r OidcClient> {
    let denied = || OAuthError::new("invalid_client", "client authentication failed");
    let client = clients.get(&presented.client_id).ok_or_else(denied)?;
    let ok = if client.secret.is_public() {
        presented.method == ClientAuthMethod::None
    } else {
        // Every candidate is checked, so timing does not tell which one matched.
        presented
            .secrets
            .iter()
            .fold(false, |ok, s| client.secret.verify(s) | ok)
    };
    if ok {
        Ok(client)
    } else {
        Err(denied())
    }
}

/// Checks a redeemed code against the token request (rule 3, rule 4). Any failure is
/// `invalid_grant`, with a description that tells the developer which binding failed.
pub fn check_code(
    code: &AuthorizationCode,
    client: &OidcClient,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    now: Timestamp,
) -> OAuthResult<()> {
    let fail = |why: &str| Err(OAuthError::new("invalid_grant", why));
    if code.expires_at <= now {
        return fail("the authorization code has expired");
    }
    if code.client_id != client.id {
        return fail("the authorization code was issued to another client");
    }
    if redirect_uri != Some(code.redirect_uri.as_str()) {
        return fail("redirect_uri does not match the authorization request");
    }
    match (&code.code_challenge, code_verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => fail("code_verifier sent but the request had no code_challenge"),
        (Some(_), None) => fail("code_verifier is required"),
        (Some(challenge), Some(verifier)) => {
            if is_pkce_value(verifier) && pkce_matches(challenge, verifier) {
                Ok(())
            } else {
                fail("code_verifier does not match the code_challenge")
            }
        }
    }
}

/// `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// The scopes of a refreshed token: `requested` must be a subset of what was granted.
pub fn refresh_scope(granted: &[String], requested: Option<&str>) -> OAuthResult<Vec<String>> {
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
        return Ok(granted.to_vec());
    };
    let requested = super::grant::parse_scope(requested);
    if requested.iter().all(|s| granted.contains(s)) {
        Ok(requested)
    } else {
        Err(OAuthError::new(
            "invalid_scope",
            "the requested scope exceeds the original grant",
        ))
    }
}

/// What presenting a refresh token means (rule 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshUse {
    /// Fresh: rotate it.
    Rotate,
    /// Just rotated, presented again within the grace window (parallel workers): issue another
    /// pair without ending the grant.
    GraceRepeat,
    /// Rotated earlier than the grace window allows: a stolen token is being replayed; end the grant.
    Reuse,
    /// Expired.
    Expired,
}

/// Classifies the use of a refresh token.
pub fn refresh_use(
    rotated_at: Option<Timestamp>,
    expires_at: Timestamp,
    grace: std::time::Duration,
    now: Timestamp,
) -> RefreshUse {
    match rotated_at {
        _ if expires_at <= now => RefreshUse::Expired,
        None => RefreshUse::Rotate,
        Some(at) if now < at.plus(grace) => RefreshUse::GraceRepeat,
        Some(_) => RefreshUse::Reuse,
    }
}

#[cfg(test)]
mod tests;
