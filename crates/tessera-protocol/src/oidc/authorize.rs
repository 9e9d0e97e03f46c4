//! The authorization endpoint (Core §3.1.2, RFC 6749 §4.1, RFC 7636): reading and checking a
//! request, deciding what the user must do, and shaping the response.
//!
//! The order of the checks decides where an error goes: until the client and its redirect URI are
//! known to be registered, errors are shown on a page and never redirected (an unchecked redirect
//! URI would make Tessera an open redirector); after that, they go back to the client.

use super::error::OAuthError;
use super::grant::parse_scope;
use super::ClientRegistry;
use crate::Timestamp;

/// Longest `nonce` and `state` kept (rule 5: codes stay small).
pub const MAX_NONCE_LEN: usize = 512;

/// How the authorization response travels (OAuth 2.0 Multiple Response Types, Form Post).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (the default for `code`).
    Query,
    /// An auto-submitting HTML form POSTing the parameters.
    FormPost,
}

/// Where an answer goes once the client and redirect URI are trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo {
    /// The registered redirect URI, exactly as requested.
    pub redirect_uri: String,
    /// The request's `state`, echoed verbatim.
    pub state: Option<String>,
    /// How the answer travels.
    pub mode: ResponseMode,
}

/// An answer to deliver to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// The redirect URI.
    pub redirect_uri: String,
    /// How to deliver it.
    pub mode: ResponseMode,
    /// Parameters, in order: the result, then `state`, then `iss` (RFC 9207).
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    /// For [`ResponseMode::Query`]: the redirect URI with the parameters appended, keeping any query
    /// it already has.
    pub fn location(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            query.append_pair(k, v);
        }
        crate::service::append_query(&self.redirect_uri, &query.finish())
    }
}

impl ReturnTo {
    /// A response carrying `result` (a code, or an error), then `state` and `iss`.
    pub fn respond(&self, result: Vec<(String, String)>, issuer: &str) -> AuthorizationResponse {
        let mut params = result;
        if let Some(state) = &self.state {
            params.push(("state".into(), state.clone()));
        }
        params.push(("iss".into(), issuer.to_owned()));
        AuthorizationResponse {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.mode,
            params,
        }
    }

    /// An error response (RFC 6749 §4.1.2.1).
    pub fn error(&self, error: &OAuthError, issuer: &str) -> AuthorizationResponse {
        let mut result = vec![("error".to_owned(), error.code.to_owned())];
        if !error.description.is_empty() {
            result.push(("error_description".into(), error.description.clone()));
        }
        self.respond(result, issuer)
    }
}

/// The `prompt` values Tessera acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No user interface may be shown.
    pub none: bool,
    /// The user must authenticate again.
    pub login: bool,
    /// The user must be asked for consent again.
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// The client.
    pub client_id: String,
    /// Where to answer.
    pub return_to: ReturnTo,
    /// Requested scopes that the client may have, `openid` first among them.
    pub scope: Vec<String>,
    /// Echoed into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The client or its redirect URI cannot be trusted: show this on a page, redirect nowhere.
    Page {
        /// Short title.
        title: &'static str,
        /// What is wrong, for the user and the application's developer.
        message: String,
    },
    /// Send the error back to the client.
    Redirect(AuthorizationResponse),
}

/// Parameters that may appear once only; a repeat is `invalid_request` (Core §3.1.2.2).
const SINGLE: [&str; 13] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
];

/// Reads and checks an authorization request given as name/value pairs (query or form).
pub fn parse(
    pairs: &[(String, String)],
    clients: &ClientRegistry,
    issuer: &str,
) -> Result<AuthorizeRequest, Rejection> {
    let count = |name: &str| pairs.iter().filter(|(k, _)| k == name).count();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let page = |title, message: String| Rejection::Page { title, message };

    // 1. The client.
    let client_id = match (count("client_id"), get("client_id")) {
        (1, Some(id)) if !id.is_empty() => id,
        (0, _) | (1, _) => {
            return Err(page(
                "Missing application",
                "The application that sent you here did not say who it is (no client_id).".into(),
            ))
        }
        _ => {
            return Err(page(
                "Invalid request",
                "The request names its application more than once.".into(),
            ))
        }
    };
    let Some(client) = clients.get(client_id) else {
        return Err(page(
            "Unknown application",
            format!(
                "The application \u{201c}{}\u{201d} is not registered with this login service.",
                printable(client_id)
            ),
        ));
    };

    // 2. The redirect URI, compared byte for byte.
    let redirect_uri = match (count("redirect_uri"), get("redirect_uri")) {
        (1, Some(uri)) if client.has_redirect_uri(uri) => uri,
        (1, Some(uri)) if !uri.is_empty() => {
            return Err(page(
                "Invalid redirect URI",
                format!(
                    "The application \u{201c}{}\u{201d} asked to return you to \u{201c}{}\u{201d}, which is not one of its registered redirect URIs. Its developer must register that exact URI.",
                    client.name,
                    printable(uri)
                ),
            ))
        }
        _ => {
            return Err(page(
                "Invalid redirect URI",
                format!(
                    "The application \u{201c}{}\u{201d} did not send exactly one redirect_uri.",
                    client.name
                ),
            ))
        }
    };

    // 3. From here on, errors go back to the client.
    let mode = match get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => ResponseMode::Query,
    };
    // A state too long to keep is not echoed (the request is refused below).
    let state = (count("state") == 1)
        .then(|| get("state"))
        .flatten()
        .filter(|s| !s.is_empty() && s.len() <= MAX_NONCE_LEN)
        .map(str::to_owned);
    let state_too_long = get("state").is_some_and(|s| s.len() > MAX_NONCE_LEN);
    let return_to = ReturnTo {
        redirect_uri: redirect_uri.to_owned(),
        state,
        mode,
    };
    let fail = |code: &'static str, description: &str| {
        Rejection::Redirect(return_to.error(&OAuthError::new(code, description), issuer))
    };

    if let Some(name) = SINGLE.iter().find(|n| count(n) > 1) {
        return Err(fail(
            "invalid_request",
            &format!("parameter {name} appears more than once"),
        ));
    }
    if let Some(m) = get("response_mode") {
        if !matches!(m, "query" | "form_post") {
            return Err(fail("invalid_request", "unsupported response_mode"));
        }
    }
    if get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match get("response_type") {
        None | Some("") => return Err(fail("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only the code response type is supported",
            ))
        }
    }
    let requested = parse_scope(get("scope").unwrap_or(""));
    if !requested.iter().any(|s| s == "openid") {
        return Err(fail("invalid_scope", "the openid scope is required"));
    }
    // Unknown scopes, and scopes the client may not have, are dropped (Core §3.1.2.1).
    let mut scope = vec!["openid".to_owned()];
    scope.extend(
        requested
            .into_iter()
            .filter(|s| s != "openid" && client.scopes.contains(s)),
    );
    let nonce = get("nonce").filter(|n| !n.is_empty());
    if nonce.is_some_and(|n| n.len() > MAX_NONCE_LEN) || state_too_long {
        return Err(fail("invalid_request", "nonce or state is too long"));
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) if client.secret.is_public() => {
            return Err(fail(
                "invalid_request",
                "public clients must use PKCE (code_challenge with S256)",
            ))
        }
        (None, None) => None,
        (Some(c), Some("S256")) if is_pkce_value(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge must be 43 to 128 unreserved characters",
            ))
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ))
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
    };
    let mut prompt = Prompt::default();
    for value in get("prompt").unwrap_or("").split(' ') {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => {}
        }
    }
    let others = get("prompt")
        .unwrap_or("")
        .split(' ')
        .any(|v| !v.is_empty() && v != "none");
    if prompt.none && others {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match get("max_age") {
        None | Some("") => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative integer",
                ))
            }
        },
    };

    Ok(AuthorizeRequest {
        client_id: client.id.clone(),
        return_to,
        scope,
        nonce: nonce.map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
    })
}

/// A PKCE verifier or S256 challenge: 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `s` shortened and stripped of control characters, for an error page.
fn printable(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// What must happen before a code can be issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Show the login page (`renew`: even though there is a session).
    Login {
        /// Authenticate again although a session exists.
        renew: bool,
    },
    /// Ask the user to consent.
    Consent,
    /// Issue the code.
    Issue,
    /// Answer the client with this error (only under `prompt=none`).
    Fail(&'static str),
}

/// Decides the next step for a checked request. `auth_time` is the SSO session's login time, if
/// there is a session; `consented` is whether the user's remembered consent covers the scopes, or
/// `None` when the client asks for no consent.
pub fn next_step(
    request: &AuthorizeRequest,
    auth_time: Option<Timestamp>,
    consented: Option<bool>,
    now: Timestamp,
) -> Next {
    let none = request.prompt.none;
    let Some(auth_time) = auth_time else {
        return if none {
            Next::Fail("login_required")
        } else {
            Next::Login { renew: false }
        };
    };
    let too_old = request.max_age.is_some_and(|max_age| {
        let limit = auth_time.plus(std::time::Duration::from_secs(max_age));
        // max_age=0 always asks again (Core §3.1.2.1).
        max_age == 0 || limit < now
    });
    if request.prompt.login || too_old {
        return if none {
            Next::Fail("login_required")
        } else {
            Next::Login { renew: true }
        };
    }
    if request.prompt.consent || consented == Some(false) {
        return if none {
            Next::Fail("consent_required")
        } else {
            Next::Consent
        };
    }
    Next::Issue
}

/// The query of an authorization request to resume after login: the original parameters without
/// `max_age` and `prompt=login`, which the login just satisfied (so the resumed request cannot
/// loop); other prompt values stay.
pub fn resume_query(pairs: &[(String, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        match k.as_str() {
            "max_age" => {}
            "prompt" => {
                let rest: Vec<&str> = v
                    .split(' ')
                    .filter(|p| !p.is_empty() && *p != "login")
                    .collect();
                if !rest.is_empty() {
                    query.append_pair(k, &rest.join(" "));
                }
            }
            _ => {
                query.append_pair(k, v);
            }
        }
    }
    query.finish()
}

#[cfg(test)]
mod tests;
