//! The authorization endpoint: the input is the query string (or form body) of an authorization
//! request, checked against a fixed client registry, then the resume-after-login query and the
//! next-step decision.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{clients, first, has_control, pairs, ISSUER};
use tessera_protocol::oidc::authorize::{self, is_pkce_value, Next, Rejection, MAX_NONCE_LEN};
use tessera_protocol::Timestamp;

fuzz_target!(|data: &[u8]| {
    let pairs = pairs(data);
    let clients = clients();
    match authorize::parse(&pairs, clients, ISSUER) {
        Ok(req) => {
            let client = clients
                .get(&req.client_id)
                .expect("an accepted request names an enabled client");
            assert!(
                client.has_redirect_uri(&req.return_to.redirect_uri),
                "accepted an unregistered redirect URI {:?}",
                req.return_to.redirect_uri
            );
            assert_eq!(req.scope.first().map(String::as_str), Some("openid"));
            for (i, s) in req.scope.iter().enumerate() {
                assert!(
                    !s.is_empty() && !req.scope[..i].contains(s),
                    "bad scope list {:?}",
                    req.scope
                );
                assert!(
                    s == "openid" || client.scopes.contains(s),
                    "scope {s:?} not allowed"
                );
            }
            for v in [&req.nonce, &req.return_to.state].into_iter().flatten() {
                assert!(!v.is_empty() && v.len() <= MAX_NONCE_LEN);
            }
            if let Some(c) = &req.code_challenge {
                assert!(is_pkce_value(c));
            }
            if client.secret.is_public() {
                assert!(req.code_challenge.is_some(), "a public client without PKCE");
            }
            if req.prompt.none {
                assert!(!req.prompt.login && !req.prompt.consent);
            }
            let now = Timestamp::from_unix_millis(1_738_318_530_000);
            let login = Timestamp::from_unix_millis(1_738_318_000_000);
            for (auth_time, consented) in [
                (None, None),
                (Some(login), Some(false)),
                (Some(login), Some(true)),
            ] {
                let next = authorize::next_step(&req, auth_time, consented, now);
                if req.prompt.none {
                    assert!(
                        matches!(next, Next::Issue | Next::Fail(_)),
                        "prompt=none shows a page: {next:?}"
                    );
                }
                if auth_time.is_none() {
                    assert!(!matches!(next, Next::Issue | Next::Consent));
                }
            }
        }
        Err(Rejection::Redirect(resp)) => {
            // Errors are redirected only to a redirect URI registered for the named, enabled client.
            let client_id = first(&pairs, "client_id").unwrap_or_default();
            let client = clients
                .get(client_id)
                .expect("an error redirected for an unknown client");
            assert!(
                client.has_redirect_uri(&resp.redirect_uri),
                "an error redirected to an unregistered URI {:?}",
                resp.redirect_uri
            );
            assert_eq!(resp.params.first().map(|(k, _)| k.as_str()), Some("error"));
            assert_eq!(
                resp.params.last(),
                Some(&("iss".to_owned(), ISSUER.to_owned()))
            );
            assert!(resp.location().starts_with(&resp.redirect_uri));
        }
        Err(Rejection::Page { message, .. }) => {
            assert!(
                !has_control(&message),
                "control character on the error page: {message:?}"
            );
        }
    }

    // The request resumed after login never asks for login again nor keeps max_age.
    let resumed = tessera_fuzz::pairs(authorize::resume_query(&pairs).as_bytes());
    assert!(resumed.len() <= pairs.len());
    for (k, v) in &resumed {
        assert_ne!(k, "max_age");
        if k == "prompt" {
            assert!(
                !v.split(' ').any(|p| p == "login" || p.is_empty()),
                "resumed prompt {v:?}"
            );
        }
    }
});
