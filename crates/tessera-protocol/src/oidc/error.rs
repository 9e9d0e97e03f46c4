//! OAuth 2.0 error responses (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3; RFC 7009; RFC 7662).

/// An OAuth error: a standard code and an ASCII description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// One of the registered error codes (`invalid_request`, `invalid_grant`, …).
    pub code: &'static str,
    /// What went wrong, for the client's developer: printable ASCII without `"` or `\` (RFC 6749
    /// §5.2), never a secret.
    pub description: String,
    /// HTTP status for endpoint (not redirect) errors: 400, or 401 for `invalid_client`.
    pub status: u16,
}

impl OAuthError {
    /// An error with status 400 (401 for `invalid_client`, `invalid_token`).
    pub fn new(code: &'static str, description: &str) -> Self {
        let status = if matches!(code, "invalid_client" | "invalid_token") {
            401
        } else {
            400
        };
        Self {
            code,
            description: description
                .chars()
                .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
                .collect(),
            status,
        }
    }

    /// The JSON body: `{"error": …, "error_description": …}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.code });
        if !self.description.is_empty() {
            body["error_description"] = self.description.clone().into();
        }
        body
    }
}

/// Shorthand for the endpoints' results.
pub type OAuthResult<T> = Result<T, OAuthError>;
