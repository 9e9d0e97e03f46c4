//! RP-initiated logout (`end_session`): the input is a query string with `client_id`,
//! `post_logout_redirect_uri` and `state`, plus `hint_aud` / `hint_sid` standing for a verified
//! `id_token_hint` and `sid` for the browser's session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{clients, first, pairs};
use tessera_protocol::oidc::discovery::{end_session, EndSessionRequest};

fuzz_target!(|data: &[u8]| {
    let pairs = pairs(data);
    let get = |name: &str| first(&pairs, name);
    let hint = get("hint_aud").map(|aud| (aud, get("hint_sid").unwrap_or_default()));
    let request = EndSessionRequest {
        hint,
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
    };
    let current = get("sid");
    let plan = end_session(&request, clients(), current);

    if let Some(redirect) = &plan.redirect {
        // Only to a registered post-logout URI of the one client the request identifies.
        let uri = request
            .post_logout_redirect_uri
            .expect("a redirect without a requested URI");
        let client_id = match (hint.map(|(aud, _)| aud), request.client_id) {
            (Some(h), Some(c)) => {
                assert_eq!(h, c, "redirected although the hint and client_id disagree");
                h
            }
            (h, c) => h.or(c).expect("a redirect without a client"),
        };
        let client = clients()
            .get(client_id)
            .expect("a redirect for an unknown client");
        assert!(
            client.has_post_logout_redirect_uri(uri),
            "unregistered post-logout URI {uri:?}"
        );
        assert!(redirect.starts_with(uri));
        match request.state {
            None => assert_eq!(redirect, uri),
            Some(state) => {
                let query = redirect.split_once('?').map_or("", |(_, q)| q);
                let echoed = tessera_fuzz::pairs(query.as_bytes());
                assert_eq!(
                    echoed.last().map(|(k, v)| (k.as_str(), v.as_str())),
                    Some(("state", state))
                );
            }
        }
    }
    let hint_matches = matches!((hint, current), (Some((_, sid)), Some(cur)) if sid == cur);
    assert_eq!(plan.confirm, current.is_some() && !hint_matches);
});
