use super::*;
use crate::oidc::{ClientSecret, OidcClient};
use crate::service::ServiceOrigin;

const ISSUER: &str = "https://sso.example.org";
const LOGGED_OUT: &str = "https://app.example.org/logout";
/// A registered post-logout URI that already has a query.
const LOGGED_OUT_WITH_QUERY: &str = "https://app.example.org/bye?lang=fr";
const OTHER_LOGGED_OUT: &str = "https://other.example.org/logout";
const SID: &str = "s-42";

fn document() -> Value {
    let scopes = ["openid", "profile", "email"].map(str::to_owned);
    let claims = ["sub", "name", "email"].map(str::to_owned);
    metadata(&Endpoints::under(ISSUER), &scopes, &claims)
}

// ---------------------------------------------------------------------------------------------
// Metadata.

#[test]
fn endpoints_are_under_the_issuer() {
    assert_eq!(
        Endpoints::under(ISSUER),
        Endpoints {
            issuer: "https://sso.example.org".into(),
            authorization: "https://sso.example.org/authorize".into(),
            token: "https://sso.example.org/token".into(),
            userinfo: "https://sso.example.org/userinfo".into(),
            jwks: "https://sso.example.org/jwks".into(),
            end_session: "https://sso.example.org/logout".into(),
            revocation: "https://sso.example.org/revoke".into(),
            introspection: "https://sso.example.org/introspect".into(),
        }
    );
}

#[test]
fn endpoints_keep_an_issuer_path() {
    let e = Endpoints::under("https://h.example.org/oidc");
    assert_eq!(e.issuer, "https://h.example.org/oidc");
    assert_eq!(e.token, "https://h.example.org/oidc/token");
    assert_eq!(e.jwks, "https://h.example.org/oidc/jwks");
}

#[test]
fn metadata_has_every_field_the_spec_says_to_emit() {
    let doc = document();
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
        "claims_supported",
        "response_modes_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "code_challenge_methods_supported",
        "end_session_endpoint",
        "revocation_endpoint",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint",
        "introspection_endpoint_auth_methods_supported",
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "authorization_response_iss_parameter_supported",
        "request_parameter_supported",
        "request_uri_parameter_supported",
        "claims_parameter_supported",
    ] {
        assert!(doc.get(field).is_some(), "{field} is missing");
    }
    assert!(
        doc.get("registration_endpoint").is_none(),
        "no dynamic registration"
    );
}

#[test]
fn metadata_issuer_is_byte_exact() {
    assert_eq!(document()["issuer"], json!(ISSUER));
    let with_path = metadata(&Endpoints::under("https://sso.example.org/x"), &[], &[]);
    assert_eq!(with_path["issuer"], json!("https://sso.example.org/x"));
}

#[test]
fn metadata_endpoints_are_the_given_ones() {
    let doc = document();
    let e = Endpoints::under(ISSUER);
    for (field, url) in [
        ("authorization_endpoint", &e.authorization),
        ("token_endpoint", &e.token),
        ("userinfo_endpoint", &e.userinfo),
        ("jwks_uri", &e.jwks),
        ("end_session_endpoint", &e.end_session),
        ("revocation_endpoint", &e.revocation),
        ("introspection_endpoint", &e.introspection),
    ] {
        assert_eq!(doc[field], json!(url), "{field}");
    }
}

#[test]
fn metadata_advertises_only_what_is_implemented() {
    let doc = document();
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(
        doc["response_modes_supported"],
        json!(["query", "form_post"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    for field in [
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        let methods = doc[field].as_array().unwrap();
        assert!(methods.contains(&json!("client_secret_basic")), "{field}");
        assert!(methods.iter().all(Value::is_string), "{field}");
    }
}

#[test]
fn metadata_lists_rs256_and_never_none_or_hmac() {
    let algs = document()["id_token_signing_alg_values_supported"].clone();
    let algs = algs.as_array().unwrap();
    assert_eq!(algs.first(), Some(&json!("RS256")));
    assert!(algs.contains(&json!("ES256")));
    assert!(algs.iter().all(|a| a
        .as_str()
        .is_some_and(|a| a != "none" && !a.starts_with("HS"))));
}

#[test]
fn metadata_turns_off_the_request_parameters_explicitly() {
    let doc = document();
    // request_uri_parameter_supported defaults to true when omitted (trap 24).
    assert_eq!(doc["request_uri_parameter_supported"], json!(false));
    assert_eq!(doc["request_parameter_supported"], json!(false));
    assert_eq!(doc["claims_parameter_supported"], json!(false));
}

#[test]
fn metadata_advertises_iss_and_logout_support() {
    let doc = document();
    assert_eq!(
        doc["authorization_response_iss_parameter_supported"],
        json!(true)
    );
    assert_eq!(doc["backchannel_logout_supported"], json!(true));
    assert_eq!(doc["backchannel_logout_session_supported"], json!(true));
    assert_eq!(doc["frontchannel_logout_supported"], json!(false));
}

#[test]
fn metadata_lists_the_given_scopes_and_claims() {
    let doc = document();
    assert_eq!(
        doc["scopes_supported"],
        json!(["openid", "profile", "email"])
    );
    assert_eq!(doc["claims_supported"], json!(["sub", "name", "email"]));
}

// ---------------------------------------------------------------------------------------------
// RP-initiated logout.

fn client(id: &str, post_logout: &[&str]) -> OidcClient {
    let mut c = OidcClient::new(
        id,
        ClientSecret::hash("s3cret-s3cret-s3cret-s3cret-s3cret"),
        ServiceOrigin::Database,
    );
    c.redirect_uris = vec![format!("https://{id}.example.org/cb")];
    c.post_logout_redirect_uris = post_logout.iter().map(|s| (*s).to_owned()).collect();
    c
}

fn registry() -> ClientRegistry {
    let mut disabled = client("old", &[LOGGED_OUT]);
    disabled.enabled = false;
    ClientRegistry::new(
        vec![
            client("app", &[LOGGED_OUT, LOGGED_OUT_WITH_QUERY]),
            client("other", &[OTHER_LOGGED_OUT]),
            disabled,
        ],
        vec![],
    )
}

/// A request with a hint for `app` in the current session, the registered URI and a state.
fn request() -> EndSessionRequest<'static> {
    EndSessionRequest {
        hint: Some(("app", SID)),
        client_id: None,
        post_logout_redirect_uri: Some(LOGGED_OUT),
        state: Some("st-1"),
    }
}

fn plan(request: &EndSessionRequest<'_>, current_sid: Option<&str>) -> EndSessionPlan {
    end_session(request, &registry(), current_sid)
}

#[test]
fn a_valid_hint_for_the_current_session_redirects_without_confirmation() {
    assert_eq!(
        plan(&request(), Some(SID)),
        EndSessionPlan {
            redirect: Some(format!("{LOGGED_OUT}?state=st-1")),
            confirm: false,
        }
    );
}

#[test]
fn the_redirect_keeps_the_registered_query() {
    let r = EndSessionRequest {
        post_logout_redirect_uri: Some(LOGGED_OUT_WITH_QUERY),
        ..request()
    };
    assert_eq!(
        plan(&r, Some(SID)).redirect.as_deref(),
        Some("https://app.example.org/bye?lang=fr&state=st-1")
    );
}

#[test]
fn the_state_is_percent_encoded_and_round_trips() {
    let state = "a b&c=d+é/?";
    let r = EndSessionRequest {
        state: Some(state),
        ..request()
    };
    let redirect = plan(&r, Some(SID)).redirect.unwrap();
    let url = url::Url::parse(&redirect).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs, [("state".to_owned(), state.to_owned())]);
    assert!(
        redirect.starts_with(&format!("{LOGGED_OUT}?state=")),
        "{redirect}"
    );
}

#[test]
fn without_state_the_registered_uri_is_used_as_is() {
    let r = EndSessionRequest {
        state: None,
        ..request()
    };
    assert_eq!(plan(&r, Some(SID)).redirect.as_deref(), Some(LOGGED_OUT));
    let r = EndSessionRequest {
        state: None,
        post_logout_redirect_uri: Some(LOGGED_OUT_WITH_QUERY),
        ..request()
    };
    assert_eq!(
        plan(&r, Some(SID)).redirect.as_deref(),
        Some(LOGGED_OUT_WITH_QUERY)
    );
}

#[test]
fn an_expired_hint_is_as_good_as_a_fresh_one() {
    // The caller verified signature and issuer, not expiry; the plan only sees aud and sid.
    let p = plan(&request(), Some(SID));
    assert!(p.redirect.is_some());
    assert!(!p.confirm);
}

#[test]
fn without_hint_a_session_needs_confirmation() {
    let r = EndSessionRequest {
        hint: None,
        ..request()
    };
    let p = plan(&r, Some(SID));
    assert!(p.confirm);
    assert_eq!(p.redirect, None, "no client identified, no redirect");
}

#[test]
fn a_hint_for_another_session_needs_confirmation() {
    let r = EndSessionRequest {
        hint: Some(("app", "s-other")),
        ..request()
    };
    let p = plan(&r, Some(SID));
    assert!(p.confirm);
    // The hint still identifies the client, so its registered URI is honoured.
    assert_eq!(p.redirect, Some(format!("{LOGGED_OUT}?state=st-1")));
}

#[test]
fn a_client_id_contradicting_the_hint_prevents_the_redirect() {
    for uri in [LOGGED_OUT, OTHER_LOGGED_OUT] {
        let r = EndSessionRequest {
            client_id: Some("other"),
            post_logout_redirect_uri: Some(uri),
            ..request()
        };
        assert_eq!(plan(&r, Some(SID)).redirect, None, "{uri}");
    }
}

#[test]
fn a_client_id_agreeing_with_the_hint_is_fine() {
    let r = EndSessionRequest {
        client_id: Some("app"),
        ..request()
    };
    assert_eq!(
        plan(&r, Some(SID)),
        EndSessionPlan {
            redirect: Some(format!("{LOGGED_OUT}?state=st-1")),
            confirm: false,
        }
    );
}

#[test]
fn an_unregistered_uri_is_never_redirected_to() {
    for uri in [
        "https://evil.example.net/",
        "https://app.example.org/logout/",
        "https://app.example.org/logout?x=1",
        "https://APP.example.org/logout",
        "https://app.example.org/bye",
        OTHER_LOGGED_OUT,
        "",
    ] {
        let r = EndSessionRequest {
            post_logout_redirect_uri: Some(uri),
            ..request()
        };
        let p = plan(&r, Some(SID));
        assert_eq!(p.redirect, None, "{uri}");
        assert!(!p.confirm, "{uri}: the hint is still valid");
    }
}

#[test]
fn no_redirect_uri_means_no_redirect() {
    let r = EndSessionRequest {
        post_logout_redirect_uri: None,
        ..request()
    };
    assert_eq!(
        plan(&r, Some(SID)),
        EndSessionPlan {
            redirect: None,
            confirm: false,
        }
    );
}

#[test]
fn client_id_alone_allows_the_redirect_but_needs_confirmation() {
    let r = EndSessionRequest {
        hint: None,
        client_id: Some("app"),
        ..request()
    };
    assert_eq!(
        plan(&r, Some(SID)),
        EndSessionPlan {
            redirect: Some(format!("{LOGGED_OUT}?state=st-1")),
            confirm: true,
        }
    );
}

#[test]
fn an_unknown_or_disabled_client_gets_no_redirect() {
    for id in ["nobody", "old"] {
        let r = EndSessionRequest {
            hint: None,
            client_id: Some(id),
            ..request()
        };
        assert_eq!(plan(&r, Some(SID)).redirect, None, "{id}");
        let r = EndSessionRequest {
            hint: Some((id, SID)),
            ..request()
        };
        assert_eq!(plan(&r, Some(SID)).redirect, None, "{id}");
    }
}

#[test]
fn without_a_session_there_is_nothing_to_confirm() {
    for r in [
        request(),
        EndSessionRequest::default(),
        EndSessionRequest {
            hint: None,
            client_id: Some("app"),
            ..request()
        },
    ] {
        assert!(!plan(&r, None).confirm, "{r:?}");
    }
    // The redirect is still honoured for an identified client.
    assert_eq!(
        plan(&request(), None).redirect,
        Some(format!("{LOGGED_OUT}?state=st-1"))
    );
}
