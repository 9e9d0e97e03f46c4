use std::time::Duration;

use super::*;
use crate::oidc::{ClientSecret, OidcClient};
use crate::service::ServiceOrigin;

const ISSUER: &str = "https://sso.example.org";
const CALLBACK: &str = "https://app.example.org/oidc/callback";
/// A registered redirect URI that already has a query.
const CALLBACK_WITH_QUERY: &str = "https://app.example.org/cb?tenant=a";
const SPA_CALLBACK: &str = "https://spa.example.org/cb";
/// RFC 7636 Appendix B: the S256 challenge of `dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk`.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const LOGIN: Timestamp = Timestamp::from_unix_millis(1_738_318_530_000);

/// A confidential client with the default scopes `openid profile email`.
fn confidential() -> OidcClient {
    let mut c = OidcClient::new(
        "app",
        ClientSecret::hash("s3cret-s3cret-s3cret-s3cret-s3cret"),
        ServiceOrigin::Database,
    );
    c.name = "The App".into();
    c.redirect_uris = vec![CALLBACK.into(), CALLBACK_WITH_QUERY.into()];
    c
}

fn public() -> OidcClient {
    let mut c = OidcClient::new("spa", ClientSecret::Public, ServiceOrigin::Database);
    c.redirect_uris = vec![SPA_CALLBACK.into()];
    c
}

fn disabled() -> OidcClient {
    let mut c = confidential();
    c.id = "old".into();
    c.enabled = false;
    c
}

fn registry() -> ClientRegistry {
    ClientRegistry::new(vec![confidential(), public(), disabled()], vec![])
}

/// An authorization request as name/value pairs, valid for the confidential client until changed.
#[derive(Clone)]
struct Req(Vec<(String, String)>);

impl Req {
    fn new() -> Self {
        Self(Vec::new())
            .add("response_type", "code")
            .add("client_id", "app")
            .add("redirect_uri", CALLBACK)
            .add("scope", "openid profile")
            .add("state", "st-1")
            .add("nonce", "n-1")
    }

    /// A valid request of the public client (with PKCE).
    fn public() -> Self {
        Self::new()
            .set("client_id", "spa")
            .set("redirect_uri", SPA_CALLBACK)
            .set("code_challenge", CHALLENGE)
            .set("code_challenge_method", "S256")
    }

    /// Replaces every `name` parameter with one `name=value`.
    fn set(self, name: &str, value: &str) -> Self {
        self.without(name).add(name, value)
    }

    /// Appends `name=value`, even if `name` is already there.
    fn add(mut self, name: &str, value: &str) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.0.retain(|(k, _)| k != name);
        self
    }

    fn parse(&self) -> Result<AuthorizeRequest, Rejection> {
        parse(&self.0, &registry(), ISSUER)
    }

    fn ok(&self) -> AuthorizeRequest {
        self.parse().expect("the request is valid")
    }

    /// The page the request is refused with.
    fn page(&self) -> (&'static str, String) {
        match self.parse() {
            Err(Rejection::Page { title, message }) => (title, message),
            other => panic!("expected an error page, got {other:?}"),
        }
    }

    /// The error redirect the request is refused with.
    fn redirect(&self) -> AuthorizationResponse {
        match self.parse() {
            Err(Rejection::Redirect(response)) => response,
            other => panic!("expected an error redirect, got {other:?}"),
        }
    }

    /// The `error` code of the redirect the request is refused with.
    fn error(&self) -> String {
        let response = self.redirect();
        param(&response.location(), "error").expect("the redirect carries an error")
    }
}

/// The query parameters of a URL, decoded.
fn query(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .expect("an absolute URL")
        .query_pairs()
        .into_owned()
        .collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    let values: Vec<String> = query(location)
        .into_iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect();
    assert!(values.len() <= 1, "{name} appears twice in {location}");
    values.into_iter().next()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Step 1 and 2: the client and its redirect URI. Errors here are pages, never redirects.

#[test]
fn a_valid_request_is_accepted() {
    let r = Req::new().ok();
    assert_eq!(r.client_id, "app");
    assert_eq!(
        r.return_to,
        ReturnTo {
            redirect_uri: CALLBACK.into(),
            state: Some("st-1".into()),
            mode: ResponseMode::Query,
        }
    );
    assert_eq!(r.scope, ["openid", "profile"]);
    assert_eq!(r.nonce.as_deref(), Some("n-1"));
    assert_eq!(r.code_challenge, None);
    assert_eq!(r.prompt, Prompt::default());
    assert_eq!(r.max_age, None);
}

#[test]
fn an_unknown_client_gets_a_page() {
    let (title, message) = Req::new().set("client_id", "nobody").page();
    assert_eq!(title, "Unknown application");
    assert!(message.contains("nobody"), "{message}");
}

#[test]
fn a_disabled_client_is_unknown() {
    let (title, _) = Req::new().set("client_id", "old").page();
    assert_eq!(title, "Unknown application");
}

#[test]
fn a_missing_or_empty_client_id_gets_a_page() {
    assert_eq!(
        Req::new().without("client_id").page().0,
        "Missing application"
    );
    assert_eq!(
        Req::new().set("client_id", "").page().0,
        "Missing application"
    );
}

#[test]
fn a_duplicated_client_id_gets_a_page_even_when_both_agree() {
    let (title, _) = Req::new().add("client_id", "app").page();
    assert_eq!(title, "Invalid request");
    let (title, _) = Req::new().add("client_id", "spa").page();
    assert_eq!(title, "Invalid request");
}

#[test]
fn an_unknown_client_is_a_page_even_when_later_parameters_are_also_wrong() {
    let r = Req::new()
        .set("client_id", "nobody")
        .set("redirect_uri", "https://evil.example.net/")
        .without("response_type")
        .set("scope", "profile");
    assert_eq!(r.page().0, "Unknown application");
}

#[test]
fn page_messages_strip_control_characters_and_shorten() {
    let (_, message) = Req::new().set("client_id", "evil\r\nX-Injected: 1").page();
    assert!(
        !message.contains('\r') && !message.contains('\n'),
        "{message}"
    );
    assert!(message.contains("evilX-Injected: 1"), "{message}");

    let long = "a".repeat(1000);
    let (_, message) = Req::new().set("client_id", &long).page();
    assert!(
        message.contains(&format!("{}…", "a".repeat(200))),
        "{message}"
    );
    assert!(!message.contains(&"a".repeat(201)), "{message}");
}

#[test]
fn every_near_miss_of_the_redirect_uri_gets_a_page() {
    for near in [
        "https://app.example.org/oidc/callback/",
        "https://app.example.org:443/oidc/callback",
        "https://app.example.org:8443/oidc/callback",
        "https://APP.example.org/oidc/callback",
        "https://app.example.org/oidc/Callback",
        "http://app.example.org/oidc/callback",
        "https://app.example.org/oidc/callback?x=1",
        "https://app.example.org/oidc/callback#frag",
        "https://app.example.org/oidc/callback%2F",
        " https://app.example.org/oidc/callback",
        "https://app.example.org/oidc",
        "https://app.example.org/cb",
        "https://app.example.org/cb?tenant=b",
        "https://app.example.org/cb?tenant=a&x=1",
        SPA_CALLBACK,
    ] {
        let (title, message) = Req::new().set("redirect_uri", near).page();
        assert_eq!(title, "Invalid redirect URI", "{near}");
        assert!(message.contains("The App"), "{message}");
    }
}

#[test]
fn a_missing_empty_or_duplicated_redirect_uri_gets_a_page() {
    for r in [
        Req::new().without("redirect_uri"),
        Req::new().set("redirect_uri", ""),
        Req::new().add("redirect_uri", CALLBACK),
        Req::new().add("redirect_uri", "https://evil.example.net/"),
    ] {
        assert_eq!(r.page().0, "Invalid redirect URI");
    }
}

#[test]
fn a_bad_redirect_uri_is_a_page_even_when_later_parameters_are_also_wrong() {
    let r = Req::new()
        .set("redirect_uri", "https://evil.example.net/")
        .set("response_type", "token")
        .set("scope", "profile")
        .add("state", "again");
    assert_eq!(r.page().0, "Invalid redirect URI");
}

// ---------------------------------------------------------------------------------------------
// Step 3: errors redirect to the client, with `error`, `state` and `iss`.

#[test]
fn errors_redirect_with_error_state_and_iss() {
    let response = Req::new().set("response_type", "token").redirect();
    assert_eq!(response.redirect_uri, CALLBACK);
    assert_eq!(response.mode, ResponseMode::Query);
    let location = response.location();
    assert!(
        location.starts_with(&format!("{CALLBACK}?error=")),
        "{location}"
    );
    let q = query(&location);
    assert_eq!(q[0], ("error".into(), "unsupported_response_type".into()));
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
    assert_eq!(
        q.last().map(|(k, _)| k.as_str()),
        Some("iss"),
        "iss comes last"
    );
    assert!(param(&location, "error_description").is_some());
}

#[test]
fn error_redirects_keep_the_query_of_the_registered_uri() {
    let location = Req::new()
        .set("redirect_uri", CALLBACK_WITH_QUERY)
        .set("scope", "profile")
        .redirect()
        .location();
    assert!(
        location.starts_with("https://app.example.org/cb?tenant=a&error=invalid_scope&"),
        "{location}"
    );
    assert_eq!(param(&location, "tenant").as_deref(), Some("a"));
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
}

#[test]
fn state_is_echoed_verbatim() {
    let state = "a b+c/d?e=f&g=%41é~";
    let location = Req::new()
        .set("state", state)
        .set("response_type", "token")
        .redirect()
        .location();
    assert_eq!(param(&location, "state").as_deref(), Some(state));
    assert!(
        !location.contains(' ') && !location.contains('é'),
        "the state is percent-encoded: {location}"
    );
}

#[test]
fn without_state_the_error_has_no_state() {
    let location = Req::new()
        .without("state")
        .set("response_type", "token")
        .redirect()
        .location();
    assert_eq!(param(&location, "state"), None);
    assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
}

#[test]
fn error_descriptions_are_plain_ascii() {
    for r in [
        Req::new().set("response_type", "token"),
        Req::new().add("scope", "openid"),
        Req::new()
            .set("code_challenge", "x")
            .set("code_challenge_method", "S256"),
        Req::new().set("max_age", "soon"),
    ] {
        let response = r.redirect();
        let (_, description) = response
            .params
            .iter()
            .find(|(k, _)| k == "error_description")
            .expect("a description");
        assert!(
            description
                .chars()
                .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
            "{description}"
        );
    }
}

#[test]
fn a_duplicated_parameter_is_invalid_request() {
    for name in [
        "response_type",
        "response_mode",
        "scope",
        "nonce",
        "prompt",
        "max_age",
        "code_challenge",
        "code_challenge_method",
        "request",
        "request_uri",
    ] {
        let location = Req::new()
            .add(name, "x")
            .add(name, "y")
            .redirect()
            .location();
        assert_eq!(
            param(&location, "error").as_deref(),
            Some("invalid_request"),
            "{name}: {location}"
        );
        assert_eq!(param(&location, "state").as_deref(), Some("st-1"), "{name}");
    }
}

#[test]
fn a_duplicated_state_is_invalid_request_and_not_echoed() {
    let location = Req::new().add("state", "st-2").redirect().location();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(param(&location, "state"), None);
}

#[test]
fn unknown_parameters_are_ignored_even_when_repeated() {
    let r = Req::new()
        .add("ui_locales", "fr")
        .add("ui_locales", "en")
        .add("login_hint", "jdoe")
        .add("display", "page");
    assert_eq!(r.ok().client_id, "app");
}

#[test]
fn response_type_must_be_code() {
    assert_eq!(
        Req::new().without("response_type").error(),
        "invalid_request"
    );
    assert_eq!(
        Req::new().set("response_type", "").error(),
        "invalid_request"
    );
    for unsupported in [
        "token",
        "id_token",
        "code id_token",
        "id_token token",
        "CODE",
    ] {
        assert_eq!(
            Req::new().set("response_type", unsupported).error(),
            "unsupported_response_type",
            "{unsupported}"
        );
    }
}

#[test]
fn response_mode_query_and_form_post_are_supported() {
    assert_eq!(
        Req::new().set("response_mode", "query").ok().return_to.mode,
        ResponseMode::Query
    );
    let r = Req::new().set("response_mode", "form_post").ok();
    assert_eq!(r.return_to.mode, ResponseMode::FormPost);
    assert_eq!(r.return_to.redirect_uri, CALLBACK);
}

#[test]
fn errors_travel_in_the_requested_response_mode() {
    let response = Req::new()
        .set("response_mode", "form_post")
        .set("scope", "email")
        .redirect();
    assert_eq!(response.mode, ResponseMode::FormPost);
    assert_eq!(response.params[0], ("error".into(), "invalid_scope".into()));
}

#[test]
fn an_unknown_response_mode_is_invalid_request_sent_in_the_query() {
    for mode in ["fragment", "jwt", "FORM_POST", ""] {
        let response = Req::new().set("response_mode", mode).redirect();
        assert_eq!(response.mode, ResponseMode::Query, "{mode}");
        assert_eq!(
            param(&response.location(), "error").as_deref(),
            Some("invalid_request"),
            "{mode}"
        );
    }
}

#[test]
fn scope_without_openid_is_invalid_scope() {
    for scope in ["profile email", "", "OPENID", "openid2"] {
        assert_eq!(
            Req::new().set("scope", scope).error(),
            "invalid_scope",
            "{scope:?}"
        );
    }
    assert_eq!(Req::new().without("scope").error(), "invalid_scope");
}

#[test]
fn unknown_and_unallowed_scopes_are_dropped_and_openid_comes_first() {
    let r = Req::new()
        .set(
            "scope",
            "email unknown  offline_access openid profile email",
        )
        .ok();
    assert_eq!(r.scope, ["openid", "email", "profile"]);

    // Scopes the client may not have are dropped as well.
    let r = Req::public().set("scope", "profile email openid").ok();
    assert_eq!(r.scope, ["openid", "profile", "email"]);
    let mut narrow = confidential();
    narrow.scopes = vec!["openid".into()];
    let clients = ClientRegistry::new(vec![narrow], vec![]);
    let r = parse(
        &Req::new().set("scope", "profile openid email").0,
        &clients,
        ISSUER,
    )
    .unwrap();
    assert_eq!(r.scope, ["openid"]);
}

#[test]
fn request_objects_are_not_supported() {
    assert_eq!(
        Req::new()
            .add("request", "eyJhbGciOiJub25lIn0.e30.")
            .error(),
        "request_not_supported"
    );
    assert_eq!(
        Req::new()
            .add("request_uri", "https://app.example.org/req.jwt")
            .error(),
        "request_uri_not_supported"
    );
}

// PKCE (RFC 7636).

#[test]
fn s256_with_a_valid_challenge_is_kept() {
    let r = Req::new()
        .set("code_challenge", CHALLENGE)
        .set("code_challenge_method", "S256")
        .ok();
    assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));

    let longest = "A-._~z9".repeat(19)[..128].to_owned();
    let r = Req::new()
        .set("code_challenge", &longest)
        .set("code_challenge_method", "S256")
        .ok();
    assert_eq!(r.code_challenge, Some(longest));
}

#[test]
fn a_confidential_client_may_skip_pkce() {
    assert_eq!(Req::new().ok().code_challenge, None);
}

#[test]
fn the_plain_method_is_invalid_request() {
    let r = Req::new()
        .set("code_challenge", CHALLENGE)
        .set("code_challenge_method", "plain");
    assert_eq!(r.error(), "invalid_request");
}

#[test]
fn an_unknown_or_miscased_method_is_invalid_request() {
    for method in ["s256", "S512", ""] {
        let r = Req::new()
            .set("code_challenge", CHALLENGE)
            .set("code_challenge_method", method);
        assert_eq!(r.error(), "invalid_request", "{method:?}");
    }
}

#[test]
fn a_challenge_without_method_is_invalid_request() {
    // RFC 7636 §4.3: the method would default to `plain`.
    let r = Req::new().set("code_challenge", CHALLENGE);
    assert_eq!(r.error(), "invalid_request");
    let r = Req::public().without("code_challenge_method");
    assert_eq!(r.error(), "invalid_request");
}

#[test]
fn a_method_without_challenge_is_invalid_request() {
    let r = Req::new().set("code_challenge_method", "S256");
    assert_eq!(r.error(), "invalid_request");
    let r = Req::public().without("code_challenge");
    assert_eq!(r.error(), "invalid_request");
}

#[test]
fn a_malformed_challenge_is_invalid_request() {
    for challenge in [
        &CHALLENGE[..42],
        &"a".repeat(129),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSst w-cM",
        "",
    ] {
        let r = Req::new()
            .set("code_challenge", challenge)
            .set("code_challenge_method", "S256");
        assert_eq!(r.error(), "invalid_request", "{challenge:?}");
    }
}

#[test]
fn a_public_client_must_use_pkce() {
    let r = Req::public()
        .without("code_challenge")
        .without("code_challenge_method");
    let location = r.redirect().location();
    assert!(location.starts_with(SPA_CALLBACK), "{location}");
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_request")
    );
}

#[test]
fn a_public_client_with_s256_is_accepted() {
    let r = Req::public().ok();
    assert_eq!(r.client_id, "spa");
    assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
}

#[test]
fn pkce_values_are_43_to_128_unreserved_characters() {
    assert!(is_pkce_value(CHALLENGE));
    assert!(is_pkce_value(&"a".repeat(43)));
    assert!(is_pkce_value(&"~".repeat(128)));
    assert!(!is_pkce_value(&"a".repeat(42)));
    assert!(!is_pkce_value(&"a".repeat(129)));
    assert!(!is_pkce_value(&format!("{}é", "a".repeat(42))));
    for bad in ['+', '/', '=', ' ', '%', '*'] {
        assert!(!is_pkce_value(&format!("{}{bad}", "a".repeat(42))), "{bad}");
    }
}

// prompt, max_age, nonce, state.

#[test]
fn prompt_values_are_read() {
    assert_eq!(
        Req::new().set("prompt", "login consent").ok().prompt,
        Prompt {
            none: false,
            login: true,
            consent: true
        }
    );
    assert_eq!(
        Req::new().set("prompt", "none").ok().prompt,
        Prompt {
            none: true,
            login: false,
            consent: false
        }
    );
    // select_account is accepted but not acted on.
    assert_eq!(
        Req::new().set("prompt", "select_account").ok().prompt,
        Prompt::default()
    );
}

#[test]
fn prompt_none_with_other_values_is_invalid_request() {
    for prompt in [
        "none login",
        "login none",
        "none consent",
        "none select_account",
    ] {
        assert_eq!(
            Req::new().set("prompt", prompt).error(),
            "invalid_request",
            "{prompt}"
        );
    }
}

#[test]
fn max_age_must_be_a_non_negative_integer() {
    for bad in ["soon", "-1", "1.5", "1e3", " 60", "99999999999999999999999"] {
        assert_eq!(
            Req::new().set("max_age", bad).error(),
            "invalid_request",
            "{bad:?}"
        );
    }
    assert_eq!(Req::new().set("max_age", "0").ok().max_age, Some(0));
    assert_eq!(Req::new().set("max_age", "3600").ok().max_age, Some(3600));
    assert_eq!(Req::new().set("max_age", "").ok().max_age, None);
}

#[test]
fn an_empty_nonce_is_no_nonce() {
    assert_eq!(Req::new().set("nonce", "").ok().nonce, None);
    assert_eq!(Req::new().without("nonce").ok().nonce, None);
}

#[test]
fn an_overlong_nonce_is_invalid_request() {
    let longest = "n".repeat(MAX_NONCE_LEN);
    assert_eq!(Req::new().set("nonce", &longest).ok().nonce, Some(longest));
    let overlong = "n".repeat(MAX_NONCE_LEN + 1);
    assert_eq!(
        Req::new().set("nonce", &overlong).error(),
        "invalid_request"
    );
}

#[test]
fn an_overlong_state_is_invalid_request() {
    let longest = "s".repeat(MAX_NONCE_LEN);
    assert_eq!(
        Req::new().set("state", &longest).ok().return_to.state,
        Some(longest)
    );
    let overlong = "s".repeat(MAX_NONCE_LEN + 1);
    assert_eq!(
        Req::new().set("state", &overlong).error(),
        "invalid_request"
    );
}

// ---------------------------------------------------------------------------------------------
// Step 4: what the user must do.

fn with_prompt(prompt: &str) -> AuthorizeRequest {
    Req::new().set("prompt", prompt).ok()
}

fn with_max_age(max_age: u64) -> AuthorizeRequest {
    Req::new().set("max_age", &max_age.to_string()).ok()
}

fn after(secs: u64) -> Timestamp {
    LOGIN.plus(Duration::from_secs(secs))
}

#[test]
fn without_a_session_the_user_logs_in() {
    assert_eq!(
        next_step(&Req::new().ok(), None, None, after(0)),
        Next::Login { renew: false }
    );
    assert_eq!(
        next_step(&Req::new().ok(), None, Some(true), after(0)),
        Next::Login { renew: false }
    );
}

#[test]
fn without_a_session_prompt_none_is_login_required() {
    assert_eq!(
        next_step(&with_prompt("none"), None, None, after(0)),
        Next::Fail("login_required")
    );
}

#[test]
fn prompt_login_renews_an_existing_session() {
    assert_eq!(
        next_step(&with_prompt("login"), Some(LOGIN), None, after(1)),
        Next::Login { renew: true }
    );
}

#[test]
fn an_exceeded_max_age_renews_the_session() {
    let r = with_max_age(60);
    assert_eq!(next_step(&r, Some(LOGIN), None, after(59)), Next::Issue);
    assert_eq!(next_step(&r, Some(LOGIN), None, after(60)), Next::Issue);
    assert_eq!(
        next_step(&r, Some(LOGIN), None, after(61)),
        Next::Login { renew: true }
    );
}

#[test]
fn max_age_zero_always_renews() {
    assert_eq!(
        next_step(&with_max_age(0), Some(LOGIN), None, LOGIN),
        Next::Login { renew: true }
    );
}

#[test]
fn an_exceeded_max_age_under_prompt_none_is_login_required() {
    let r = Req::new().set("prompt", "none").set("max_age", "60").ok();
    assert_eq!(
        next_step(&r, Some(LOGIN), None, after(61)),
        Next::Fail("login_required")
    );
    let r = Req::new().set("prompt", "none").set("max_age", "0").ok();
    assert_eq!(
        next_step(&r, Some(LOGIN), None, LOGIN),
        Next::Fail("login_required")
    );
}

#[test]
fn missing_consent_is_asked_for() {
    assert_eq!(
        next_step(&Req::new().ok(), Some(LOGIN), Some(false), after(1)),
        Next::Consent
    );
}

#[test]
fn missing_consent_under_prompt_none_is_consent_required() {
    assert_eq!(
        next_step(&with_prompt("none"), Some(LOGIN), Some(false), after(1)),
        Next::Fail("consent_required")
    );
}

#[test]
fn prompt_consent_asks_again_despite_remembered_consent() {
    assert_eq!(
        next_step(&with_prompt("consent"), Some(LOGIN), Some(true), after(1)),
        Next::Consent
    );
}

#[test]
fn login_comes_before_consent() {
    assert_eq!(
        next_step(
            &with_prompt("login consent"),
            Some(LOGIN),
            Some(false),
            after(1)
        ),
        Next::Login { renew: true }
    );
}

#[test]
fn remembered_consent_issues_a_code() {
    assert_eq!(
        next_step(&Req::new().ok(), Some(LOGIN), Some(true), after(1)),
        Next::Issue
    );
    assert_eq!(
        next_step(&with_prompt("none"), Some(LOGIN), Some(true), after(1)),
        Next::Issue
    );
}

#[test]
fn a_client_without_consent_issues_a_code() {
    assert_eq!(
        next_step(&Req::new().ok(), Some(LOGIN), None, after(1)),
        Next::Issue
    );
    assert_eq!(
        next_step(&with_prompt("none"), Some(LOGIN), None, after(1)),
        Next::Issue
    );
}

// ---------------------------------------------------------------------------------------------
// Resuming after login.

#[test]
fn resume_query_drops_max_age_and_prompt_login() {
    let q = resume_query(&pairs(&[
        ("client_id", "app"),
        ("max_age", "0"),
        ("prompt", "login"),
        ("state", "st"),
    ]));
    assert_eq!(q, "client_id=app&state=st");
}

#[test]
fn resume_query_keeps_other_prompt_values() {
    let q = resume_query(&pairs(&[("prompt", "login consent"), ("scope", "openid")]));
    assert_eq!(q, "prompt=consent&scope=openid");
    let q = resume_query(&pairs(&[("prompt", "consent  login select_account")]));
    assert_eq!(q, "prompt=consent+select_account");
    assert_eq!(resume_query(&pairs(&[("prompt", "none")])), "prompt=none");
}

#[test]
fn resume_query_keeps_every_other_parameter_in_order() {
    let original = pairs(&[
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", CALLBACK_WITH_QUERY),
        ("scope", "openid profile"),
        ("state", "a&b=c d+e%f/é"),
        ("nonce", "n"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("max_age", "60"),
        ("ui_locales", "fr en"),
    ]);
    let q = resume_query(&original);
    let back: Vec<(String, String)> = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    let expected: Vec<(String, String)> = original
        .iter()
        .filter(|(k, _)| k != "max_age")
        .cloned()
        .collect();
    assert_eq!(back, expected);
}

#[test]
fn resume_query_percent_encodes() {
    let q = resume_query(&pairs(&[
        ("redirect_uri", "https://app.example.org/cb?tenant=a"),
        ("state", "a&b=c d+é"),
    ]));
    assert_eq!(
        q,
        "redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb%3Ftenant%3Da&state=a%26b%3Dc+d%2B%C3%A9"
    );
}

#[test]
fn a_resumed_request_parses_like_the_original_without_forcing_login() {
    let original = Req::new()
        .set("prompt", "login")
        .set("max_age", "0")
        .set("state", "x y&z");
    let resumed: Vec<(String, String)> =
        form_urlencoded::parse(resume_query(&original.0).as_bytes())
            .into_owned()
            .collect();
    let r = parse(&resumed, &registry(), ISSUER).unwrap();
    assert_eq!(r.prompt, Prompt::default());
    assert_eq!(r.max_age, None);
    assert_eq!(r.return_to.state.as_deref(), Some("x y&z"));
    assert_eq!(next_step(&r, Some(LOGIN), None, LOGIN), Next::Issue);
}

// ---------------------------------------------------------------------------------------------
// Step 5: the response.

fn code() -> Vec<(String, String)> {
    vec![("code".to_owned(), "c0de".to_owned())]
}

#[test]
fn a_code_response_has_code_state_and_iss_in_order() {
    let return_to = Req::new().ok().return_to;
    let response = return_to.respond(code(), ISSUER);
    assert_eq!(response.mode, ResponseMode::Query);
    assert_eq!(
        response.location(),
        "https://app.example.org/oidc/callback?code=c0de&state=st-1&iss=https%3A%2F%2Fsso.example.org"
    );
}

#[test]
fn a_code_response_keeps_the_registered_query() {
    let return_to = Req::new()
        .set("redirect_uri", CALLBACK_WITH_QUERY)
        .ok()
        .return_to;
    assert_eq!(
        return_to.respond(code(), ISSUER).location(),
        "https://app.example.org/cb?tenant=a&code=c0de&state=st-1&iss=https%3A%2F%2Fsso.example.org"
    );
}

#[test]
fn a_code_response_without_state_has_no_state() {
    let return_to = Req::new().without("state").ok().return_to;
    assert_eq!(
        return_to.respond(code(), ISSUER).location(),
        "https://app.example.org/oidc/callback?code=c0de&iss=https%3A%2F%2Fsso.example.org"
    );
}

#[test]
fn a_form_post_response_keeps_the_parameters_for_the_form() {
    let return_to = Req::new().set("response_mode", "form_post").ok().return_to;
    let response = return_to.respond(code(), ISSUER);
    assert_eq!(response.mode, ResponseMode::FormPost);
    assert_eq!(response.redirect_uri, CALLBACK);
    assert_eq!(
        response.params,
        pairs(&[("code", "c0de"), ("state", "st-1"), ("iss", ISSUER)])
    );
}

#[test]
fn an_error_response_leaves_out_an_empty_description() {
    let return_to = Req::new().ok().return_to;
    let response = return_to.error(&OAuthError::new("access_denied", ""), ISSUER);
    assert_eq!(
        response.params,
        pairs(&[
            ("error", "access_denied"),
            ("state", "st-1"),
            ("iss", ISSUER)
        ])
    );
    let response = return_to.error(
        &OAuthError::new("access_denied", "the user said no"),
        ISSUER,
    );
    assert_eq!(
        response.params,
        pairs(&[
            ("error", "access_denied"),
            ("error_description", "the user said no"),
            ("state", "st-1"),
            ("iss", ISSUER)
        ])
    );
}
