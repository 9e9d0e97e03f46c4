//! Client authentication at the token, revocation and introspection endpoints. Line 1 is the
//! `Authorization` header value (absent when the line is empty), line 2 the form body with
//! `client_id`, `client_secret`, `scope` (a refresh request's scope) and `code_verifier` /
//! `code_challenge`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{clients, first, lines, pairs, text};
use tessera_protocol::oidc::authorize::is_pkce_value;
use tessera_protocol::oidc::token::{self, ClientAuthMethod};

fuzz_target!(|data: &[u8]| {
    let parts = lines(data, 2);
    let header = text(parts[0]);
    let authorization = Some(header.as_str()).filter(|h| !h.is_empty());
    let body = pairs(parts[1]);
    let body_id = first(&body, "client_id");
    let body_secret = first(&body, "client_secret");

    match token::presented_client(authorization, body_id, body_secret) {
        Ok(presented) => {
            match presented.method {
                ClientAuthMethod::Basic => {
                    let h = authorization.expect("Basic without a header").trim();
                    assert!(h.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")));
                    assert!(body_secret.is_none(), "two authentication methods accepted");
                }
                ClientAuthMethod::Post => {
                    assert_eq!(body_id, Some(presented.client_id.as_str()));
                    assert!(body_secret.is_some());
                }
                ClientAuthMethod::None => {
                    assert_eq!(body_id, Some(presented.client_id.as_str()));
                    assert!(body_secret.is_none());
                }
            }
            if let Ok(client) = token::authenticate(&presented, clients()) {
                assert_eq!(client.id, presented.client_id);
                assert!(client.enabled);
                if client.secret.is_public() {
                    assert_eq!(presented.method, ClientAuthMethod::None);
                } else {
                    assert_ne!(
                        presented.method,
                        ClientAuthMethod::None,
                        "a confidential client without a secret"
                    );
                }
            }
        }
        Err(e) => assert!(
            matches!(e.code, "invalid_request" | "invalid_client"),
            "{e:?}"
        ),
    }

    let granted: Vec<String> = ["openid", "profile", "offline_access"]
        .map(str::to_owned)
        .to_vec();
    if let Ok(scope) = token::refresh_scope(&granted, first(&body, "scope")) {
        assert!(
            scope.iter().all(|s| granted.contains(s)),
            "refresh widened the scope: {scope:?}"
        );
    }
    if let (Some(challenge), Some(verifier)) = (
        first(&body, "code_challenge"),
        first(&body, "code_verifier"),
    ) {
        if token::pkce_matches(challenge, verifier) {
            assert!(
                is_pkce_value(challenge),
                "matched a challenge that is not a PKCE value"
            );
        }
    }
});
