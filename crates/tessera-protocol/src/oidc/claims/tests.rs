use std::collections::BTreeSet;
use std::time::Duration;

use rand::distributions::{Alphanumeric, DistString};
use serde_json::json;

use super::*;
use crate::oidc::ClientSecret;
use crate::service::{AttributeRelease, AttributeRule, ServiceOrigin};
use crate::session::SessionId;

const ISSUER: &str = "https://sso.example.org";
/// The SSO login, with a millisecond part that must be truncated, not rounded.
const LOGIN: Timestamp = Timestamp::from_unix_millis(1_738_318_530_999);
const NOW: Timestamp = Timestamp::from_unix_millis(1_738_319_000_750);

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    let mut a = Attributes::new();
    for (k, v) in pairs {
        a.entry((*k).to_owned()).or_default().push((*v).to_owned());
    }
    a
}

fn scope(s: &str) -> Vec<String> {
    s.split(' ').map(str::to_owned).collect()
}

fn client(release: AttributeRelease) -> OidcClient {
    let mut c = OidcClient::new(
        "app",
        ClientSecret::hash("s3cret-s3cret-s3cret-s3cret-s3cret"),
        ServiceOrigin::Database,
    );
    c.release = release;
    c
}

fn rule(spec: &str) -> AttributeRule {
    AttributeRule::parse(spec).unwrap()
}

/// A typical directory entry.
fn jdoe() -> Attributes {
    attrs(&[
        ("displayName", "John Doe"),
        ("cn", "J. Doe"),
        ("givenName", "John"),
        ("sn", "Doe"),
        ("mail", "jdoe@example.org"),
        ("mail", "john.doe@example.org"),
        ("department", "IT"),
        ("eduPersonAffiliation", "staff"),
        ("eduPersonAffiliation", "member"),
    ])
}

fn claims_for(scopes: &str, attributes: &Attributes, release: AttributeRelease) -> Value {
    Value::Object(user_claims(
        &scope(scopes),
        "jdoe",
        attributes,
        &client(release),
        &ClaimSources::default(),
    ))
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

fn key_set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------------
// The subject.

#[test]
fn the_subject_is_stable() {
    assert_eq!(subject("pepper", "jdoe"), subject("pepper", "jdoe"));
    // BASE64URL(SHA256("pepper:jdoe")), computed independently.
    assert_eq!(
        subject("pepper", "jdoe"),
        "qerX5Lut1AKV6ZGBwi9igbjpyJGOhpmeJJNfQ_2OWcE"
    );
}

#[test]
fn the_subject_differs_per_salt_and_per_user() {
    let s = subject("pepper", "jdoe");
    assert_ne!(s, subject("salt", "jdoe"));
    assert_ne!(s, subject("pepper", "jdoe2"));
    assert_ne!(s, subject("pepper", "JDOE"));
    assert_ne!(s, subject("", "jdoe"));
}

#[test]
fn the_subject_is_43_base64url_characters_revealing_nothing() {
    for user in ["jdoe", "", "a-very-long-user-name@example.org", "é"] {
        let s = subject("pepper", user);
        assert_eq!(s.len(), 43, "{user}");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{s}"
        );
        if !user.is_empty() {
            assert!(!s.contains(user), "{s}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// User claims per scope.

#[test]
fn openid_alone_gives_no_user_claims() {
    assert_eq!(
        claims_for("openid", &jdoe(), AttributeRelease::Nothing),
        json!({})
    );
}

#[test]
fn profile_gives_the_name_claims_from_the_first_source_the_user_has() {
    assert_eq!(
        claims_for("openid profile", &jdoe(), AttributeRelease::Nothing),
        json!({
            "preferred_username": "jdoe",
            "name": "John Doe",
            "given_name": "John",
            "family_name": "Doe",
        })
    );
    // Without displayName, cn is next.
    let a = attrs(&[("cn", "J. Doe"), ("name", "Johnny")]);
    assert_eq!(
        claims_for("openid profile", &a, AttributeRelease::Nothing)["name"],
        "J. Doe"
    );
    // Empty values are skipped.
    let a = attrs(&[("displayName", ""), ("cn", "J. Doe")]);
    assert_eq!(
        claims_for("openid profile", &a, AttributeRelease::Nothing)["name"],
        "J. Doe"
    );
}

#[test]
fn profile_uses_the_configured_sources() {
    let sources = ClaimSources {
        name: vec!["fullName".into()],
        given_name: vec!["first".into()],
        family_name: vec!["last".into()],
        email: vec!["address".into()],
        email_verified: false,
    };
    let a = attrs(&[
        ("fullName", "Jane Roe"),
        ("first", "Jane"),
        ("last", "Roe"),
        ("displayName", "ignored"),
        ("address", "jane@example.org"),
        ("mail", "ignored@example.org"),
    ]);
    let claims = user_claims(
        &scope("openid profile email"),
        "jroe",
        &a,
        &client(AttributeRelease::Nothing),
        &sources,
    );
    assert_eq!(
        Value::Object(claims),
        json!({
            "preferred_username": "jroe",
            "name": "Jane Roe",
            "given_name": "Jane",
            "family_name": "Roe",
            "email": "jane@example.org",
            "email_verified": false,
        })
    );
}

#[test]
fn missing_attributes_give_no_claim_rather_than_an_empty_one() {
    let claims = claims_for(
        "openid profile email",
        &attrs(&[("displayName", "")]),
        AttributeRelease::Nothing,
    );
    assert_eq!(claims, json!({ "preferred_username": "jdoe" }));
}

#[test]
fn email_gives_the_first_address_and_a_boolean_email_verified() {
    let claims = claims_for("openid email", &jdoe(), AttributeRelease::Nothing);
    assert_eq!(
        claims,
        json!({ "email": "jdoe@example.org", "email_verified": true })
    );
    assert!(claims["email_verified"].is_boolean());
}

#[test]
fn email_verified_follows_the_configuration() {
    let sources = ClaimSources {
        email_verified: false,
        ..ClaimSources::default()
    };
    let claims = user_claims(
        &scope("openid email"),
        "jdoe",
        &jdoe(),
        &client(AttributeRelease::Nothing),
        &sources,
    );
    assert_eq!(claims["email_verified"], Value::Bool(false));
}

#[test]
fn without_an_address_there_is_no_email_verified_either() {
    let claims = claims_for("openid email", &attrs(&[]), AttributeRelease::Nothing);
    assert_eq!(claims, json!({}));
}

#[test]
fn nothing_is_released_by_default() {
    let c = OidcClient::new("app", ClientSecret::Public, ServiceOrigin::ConfigFile);
    assert_eq!(c.release, AttributeRelease::Nothing);
    let claims = user_claims(
        &scope("openid"),
        "jdoe",
        &jdoe(),
        &c,
        &ClaimSources::default(),
    );
    assert!(claims.is_empty(), "{claims:?}");
}

#[test]
fn released_attributes_are_strings_or_arrays() {
    let claims = claims_for("openid", &jdoe(), AttributeRelease::All);
    assert_eq!(claims["department"], json!("IT"));
    assert_eq!(claims["eduPersonAffiliation"], json!(["staff", "member"]));
    assert_eq!(
        claims["mail"],
        json!(["jdoe@example.org", "john.doe@example.org"])
    );
    assert_eq!(claims["displayName"], json!("John Doe"));
}

#[test]
fn released_attributes_may_be_renamed() {
    let release =
        AttributeRelease::Only(vec![rule("department=dept"), rule("eduPersonAffiliation")]);
    let claims = claims_for("openid", &jdoe(), release);
    assert_eq!(
        claims,
        json!({ "dept": "IT", "eduPersonAffiliation": ["staff", "member"] })
    );
}

#[test]
fn released_empty_values_are_left_out() {
    let a = attrs(&[("department", ""), ("room", ""), ("room", "B12")]);
    let claims = claims_for("openid", &a, AttributeRelease::All);
    assert_eq!(claims, json!({ "room": "B12" }));
}

#[test]
fn released_attributes_never_take_a_reserved_name() {
    let reserved = [
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
        "email",
        "email_verified",
    ];
    // Attributes that really have those names…
    let mut a = Attributes::new();
    for name in reserved {
        a.insert(name.to_owned(), vec![format!("spoofed-{name}")]);
    }
    let claims = claims_for("openid", &a, AttributeRelease::All);
    assert_eq!(claims, json!({}), "released under their own names");
    // …or renamed to them.
    let rules = reserved
        .iter()
        .map(|name| rule(&format!("department={name}")))
        .collect();
    let claims = claims_for("openid", &jdoe(), AttributeRelease::Only(rules));
    assert_eq!(claims, json!({}), "released under a new name");
}

#[test]
fn released_attributes_never_override_scope_claims() {
    let release = AttributeRelease::Only(vec![
        rule("department=email"),
        rule("department=email_verified"),
        rule("department=name"),
        rule("department=preferred_username"),
        rule("department=given_name"),
        rule("department=family_name"),
    ]);
    let claims = claims_for("openid profile email", &jdoe(), release);
    assert_eq!(
        claims,
        json!({
            "preferred_username": "jdoe",
            "name": "John Doe",
            "given_name": "John",
            "family_name": "Doe",
            "email": "jdoe@example.org",
            "email_verified": true,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// at_hash.

#[test]
fn at_hash_matches_the_openid_connect_core_example() {
    // OIDC Core 1.0 Appendix A.3/A.4: the access token and the at_hash of its ID token.
    assert_eq!(
        at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
        "77QmUPtjPfzWtF2AnpK9RQ"
    );
    // Computed with Python's hashlib + base64.
    assert_eq!(at_hash("at-0123456789"), "3v9gW1rCo-aD_DbK8KwTrQ");
}

#[test]
fn at_hash_is_the_left_half_of_sha256_base64url() {
    let token = Alphanumeric.sample_string(&mut rand::thread_rng(), 43);
    let digest = Sha256::digest(token.as_bytes());
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
    assert_eq!(at_hash(&token), expected);
    assert_eq!(expected.len(), 22);
    assert!(!expected.contains('='));
}

// ---------------------------------------------------------------------------------------------
// ID tokens.

fn grant() -> Grant {
    Grant {
        id: "g-1".into(),
        client_id: "app".into(),
        session_id: SessionId::from_stored("s-42".into()),
        username: "jdoe".into(),
        attributes: jdoe(),
        scope: scope("openid profile email"),
        auth_time: LOGIN,
        backchannel_logout_uri: None,
        created_at: LOGIN.plus(Duration::from_secs(2)),
    }
}

const LIFETIME: Duration = Duration::from_secs(600);

fn id_token_json(
    nonce: Option<&str>,
    access_token: Option<&str>,
    user: Map<String, Value>,
) -> Value {
    let claims = id_token(
        ISSUER,
        "sub-1",
        &grant(),
        nonce.map(str::to_owned),
        access_token,
        user,
        NOW,
        LIFETIME,
    );
    serde_json::to_value(claims).unwrap()
}

#[test]
fn id_token_has_the_core_claims() {
    let t = id_token_json(Some("n-1"), Some("at-0123456789"), Map::new());
    assert_eq!(
        t,
        json!({
            "iss": ISSUER,
            "sub": "sub-1",
            "aud": "app",
            "exp": 1_738_319_600,
            "iat": 1_738_319_000,
            "auth_time": 1_738_318_530,
            "nonce": "n-1",
            "amr": ["pwd"],
            "sid": "s-42",
            "at_hash": "3v9gW1rCo-aD_DbK8KwTrQ",
        })
    );
}

#[test]
fn id_token_audience_is_the_client_id_as_a_single_string() {
    let t = id_token_json(None, None, Map::new());
    assert_eq!(t["aud"], json!("app"));
    // azp is optional, but must equal the client id when present (trap 8).
    assert!(t.get("azp").is_none_or(|azp| azp == "app"));
}

#[test]
fn id_token_lifetime_is_exp_minus_iat() {
    let t = id_token_json(None, None, Map::new());
    let (exp, iat) = (t["exp"].as_i64().unwrap(), t["iat"].as_i64().unwrap());
    assert_eq!(exp - iat, 600);
}

#[test]
fn id_token_iat_is_now_truncated_never_in_the_future() {
    let t = id_token_json(None, None, Map::new());
    let iat = t["iat"].as_i64().unwrap();
    assert_eq!(iat, NOW.unix_seconds());
    assert!(iat * 1000 <= NOW.unix_millis());
}

#[test]
fn id_token_auth_time_is_the_grants_login_time_in_seconds() {
    let t = id_token_json(None, None, Map::new());
    assert_eq!(t["auth_time"], json!(LOGIN.unix_seconds()));
    assert_eq!(t["auth_time"], json!(1_738_318_530));
}

#[test]
fn id_token_times_are_json_integers() {
    let t = id_token_json(None, None, Map::new());
    for claim in ["exp", "iat", "auth_time"] {
        assert!(t[claim].is_i64(), "{claim}: {}", t[claim]);
    }
}

#[test]
fn id_token_without_nonce_has_no_nonce_key() {
    let t = id_token_json(None, Some("at"), Map::new());
    assert!(!keys(&t).contains("nonce"), "{t}");
    let text = serde_json::to_string(&t).unwrap();
    assert!(!text.contains("nonce"), "{text}");
}

#[test]
fn id_token_without_access_token_has_no_at_hash() {
    let t = id_token_json(Some("n"), None, Map::new());
    assert!(!keys(&t).contains("at_hash"), "{t}");
    let t = id_token_json(Some("n"), Some("x"), Map::new());
    assert_eq!(t["at_hash"], json!(at_hash("x")));
}

#[test]
fn id_token_nonce_is_echoed_verbatim() {
    let nonce = "n+/=é \"quoted\"";
    assert_eq!(id_token_json(Some(nonce), None, Map::new())["nonce"], nonce);
}

#[test]
fn id_token_amr_is_an_array_of_strings() {
    let t = id_token_json(None, None, Map::new());
    let amr = t["amr"].as_array().expect("amr is an array");
    assert!(!amr.is_empty());
    assert!(amr.iter().all(Value::is_string));
}

#[test]
fn id_token_sid_is_the_session_id() {
    assert_eq!(id_token_json(None, None, Map::new())["sid"], "s-42");
}

#[test]
fn id_token_user_claims_are_top_level_and_appear_once() {
    let user = user_claims(
        &scope("openid profile email"),
        "jdoe",
        &jdoe(),
        &client(AttributeRelease::All),
        &ClaimSources::default(),
    );
    let claims = id_token(
        ISSUER,
        "sub-1",
        &grant(),
        Some("n".into()),
        None,
        user,
        NOW,
        LIFETIME,
    );
    let t = serde_json::to_value(&claims).unwrap();
    assert_eq!(t["email"], "jdoe@example.org");
    assert_eq!(t["given_name"], "John");
    assert_eq!(t["department"], "IT");
    assert_eq!(t["sub"], "sub-1");
    // Serialised text: every member once (no flattened user claim repeats a token claim).
    let text = serde_json::to_string(&claims).unwrap();
    for k in keys(&t) {
        assert_eq!(
            text.matches(&format!("\"{k}\":")).count(),
            1,
            "{k} in {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Logout tokens.

fn logout() -> Value {
    logout_token(ISSUER, "app", "sub-1", "s-42", "jti-1", NOW)
}

#[test]
fn logout_token_has_exactly_the_back_channel_claims() {
    assert_eq!(
        keys(&logout()),
        key_set(&["iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"])
    );
}

#[test]
fn logout_token_events_has_the_exact_member_with_an_object() {
    let t = logout();
    let events = t["events"].as_object().expect("events is an object");
    assert_eq!(events.len(), 1);
    assert_eq!(
        events.get("http://schemas.openid.net/event/backchannel-logout"),
        Some(&json!({}))
    );
    assert_eq!(
        BACKCHANNEL_LOGOUT_EVENT,
        "http://schemas.openid.net/event/backchannel-logout"
    );
}

#[test]
fn logout_token_has_no_nonce() {
    assert!(logout().get("nonce").is_none());
}

#[test]
fn logout_token_identifies_the_client_user_and_session() {
    let t = logout();
    assert_eq!(t["iss"], ISSUER);
    assert_eq!(t["aud"], "app");
    assert_eq!(t["sub"], "sub-1");
    assert_eq!(t["sid"], "s-42");
    assert_eq!(t["jti"], "jti-1");
}

#[test]
fn logout_token_is_short_lived_from_now() {
    let t = logout();
    let (iat, exp) = (t["iat"].as_i64().unwrap(), t["exp"].as_i64().unwrap());
    assert_eq!(iat, NOW.unix_seconds());
    assert!(exp > iat && exp - iat <= 600, "{iat} {exp}");
}

#[test]
fn logout_token_sid_matches_the_id_token_sid() {
    let g = grant();
    let id = id_token_json(None, None, Map::new());
    let lt = logout_token(ISSUER, "app", "sub-1", g.session_id.as_str(), "j", NOW);
    assert_eq!(id["sid"], lt["sid"]);
}

// ---------------------------------------------------------------------------------------------
// Introspection.

fn introspect(token_type: Option<&str>) -> Value {
    let scopes = scope("openid profile");
    let facts = TokenFacts {
        scope: &scopes,
        issued_at: NOW,
        expires_at: NOW.plus(Duration::from_secs(3600)),
        token_type,
    };
    introspection_active(ISSUER, "sub-1", &grant(), &facts)
}

#[test]
fn an_active_token_is_described() {
    assert_eq!(
        introspect(Some("Bearer")),
        json!({
            "active": true,
            "scope": "openid profile",
            "client_id": "app",
            "sub": "sub-1",
            "username": "jdoe",
            "aud": ["app"],
            "iss": ISSUER,
            "exp": 1_738_322_600,
            "iat": 1_738_319_000,
            "sid": "s-42",
            "token_type": "Bearer",
        })
    );
}

#[test]
fn introspection_aud_is_an_array_with_the_client_id() {
    let t = introspect(Some("Bearer"));
    let aud = t["aud"].as_array().expect("aud is an array");
    assert!(aud.contains(&json!("app")));
}

#[test]
fn introspection_scope_is_a_space_separated_string() {
    assert_eq!(introspect(None)["scope"], json!("openid profile"));
}

#[test]
fn introspection_active_is_true() {
    assert_eq!(introspect(None)["active"], json!(true));
}

#[test]
fn a_refresh_token_has_no_token_type() {
    assert!(introspect(None).get("token_type").is_none());
}
