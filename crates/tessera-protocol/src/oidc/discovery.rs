//! Provider metadata (OIDC Discovery 1.0 §3, RFC 8414) and RP-initiated logout decisions.

use serde_json::{json, Value};

use super::{ClientRegistry, SigningAlg};
use crate::service::append_query;

/// The endpoints of the provider, as absolute URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The issuer: byte for byte what every `iss` says (trap 1).
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization: String,
    /// Token endpoint.
    pub token: String,
    /// UserInfo endpoint.
    pub userinfo: String,
    /// JWKS.
    pub jwks: String,
    /// RP-initiated logout.
    pub end_session: String,
    /// Token revocation (RFC 7009).
    pub revocation: String,
    /// Token introspection (RFC 7662).
    pub introspection: String,
}

impl Endpoints {
    /// Endpoints under `issuer` (which has no trailing slash).
    pub fn under(issuer: &str) -> Self {
        let at = |path: &str| format!("{issuer}{path}");
        Self {
            issuer: issuer.to_owned(),
            authorization: at("/authorize"),
            token: at("/token"),
            userinfo: at("/userinfo"),
            jwks: at("/jwks"),
            end_session: at("/logout"),
            revocation: at("/revoke"),
            introspection: at("/introspect"),
        }
    }
}

/// The discovery document: only what Tessera implements is advertised.
pub fn metadata(endpoints: &Endpoints, scopes: &[String], claims: &[String]) -> Value {
    let auth_methods = ["client_secret_basic", "client_secret_post"];
    json!({
        "issuer": endpoints.issuer,
        "authorization_endpoint": endpoints.authorization,
        "token_endpoint": endpoints.token,
        "userinfo_endpoint": endpoints.userinfo,
        "jwks_uri": endpoints.jwks,
        "end_session_endpoint": endpoints.end_session,
        "revocation_endpoint": endpoints.revocation,
        "introspection_endpoint": endpoints.introspection,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported":
            SigningAlg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "scopes_supported": scopes,
        "claims_supported": claims,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    })
}

/// Where an RP-initiated logout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSessionPlan {
    /// The client's registered post-logout URI with `state`, when the request earned a redirect.
    pub redirect: Option<String>,
    /// Whether the user must confirm first (no valid `id_token_hint` for the current session:
    /// logout CSRF protection).
    pub confirm: bool,
}

/// The parts of an RP-initiated logout request (RP-Initiated Logout 1.0 §2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndSessionRequest<'a> {
    /// `aud` and `sid` of a verified `id_token_hint` (signature and issuer checked; expiry not).
    pub hint: Option<(&'a str, &'a str)>,
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `post_logout_redirect_uri`.
    pub post_logout_redirect_uri: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
}

/// Decides an RP-initiated logout. `current_sid` is the browser's SSO session id, if any.
pub fn end_session(
    request: &EndSessionRequest<'_>,
    clients: &ClientRegistry,
    current_sid: Option<&str>,
) -> EndSessionPlan {
    let hint_client = request.hint.map(|(aud, _)| aud);
    // A client_id that contradicts the hint identifies nobody.
    let client_id = match (hint_client, request.client_id) {
        (Some(h), Some(c)) if h != c => None,
        (h, c) => h.or(c),
    };
    let redirect = client_id
        .and_then(|id| clients.get(id))
        .zip(request.post_logout_redirect_uri)
        .filter(|(client, uri)| client.has_post_logout_redirect_uri(uri))
        .map(|(_, uri)| match request.state {
            Some(state) => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", state)
                    .finish();
                append_query(uri, &query)
            }
            None => uri.to_owned(),
        });
    let hint_matches =
        matches!((request.hint, current_sid), (Some((_, sid)), Some(cur)) if sid == cur);
    EndSessionPlan {
        redirect,
        confirm: current_sid.is_some() && !hint_matches,
    }
}

#[cfg(test)]
mod tests;
