//! The OpenID Connect provider end to end: discovery and keys, the code flow through the CAS login
//! form, the token endpoint's checks, refresh, revocation, introspection, the single SSO session
//! shared with CAS, consent, RP-initiated and back-channel logout, and key rotation.
//!
//! Clients are registered in the database (`store.put_client`): the test server's `Loaded` is
//! built before the settings hook runs, so `[[client]]` entries would not reach it, and database
//! clients are read on every request exactly like file clients.

use std::collections::HashSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, WWW_AUTHENTICATE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tessera::clock::Clock as _;
use tessera::config::ClientSpec;
use tessera_protocol::oidc::{ClientSecret, SigningAlg};
use tessera_protocol::service::{LogoutType, ServiceOrigin};

use crate::support::receiver::{eventually, Receiver};
use crate::support::{enc, service, Browser, Page, TestServer, PASSWORD, SERVICE, USER};

/// The relying party's registered redirect URI (never contacted: the browser stops at redirects).
pub(crate) const REDIRECT: &str = "https://rp.example.org/callback";
/// Its registered post-logout redirect URI.
pub(crate) const POST_LOGOUT: &str = "https://rp.example.org/logged-out";
/// The confidential RS256 client.
pub(crate) const CLIENT: &str = "webapp";
/// What every authorization request sends as `state` and `nonce` unless a test says otherwise.
const STATE: &str = "st-4f2a/9+x";
const NONCE: &str = "n-0S6_WzA2Mj";
/// A PKCE verifier (43+ unreserved characters) and its S256 challenge is computed from it.
const VERIFIER: &str = "pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

/// The secret of client `id`: long, unreserved characters only.
pub(crate) fn secret_of(id: &str) -> String {
    format!("{id}-secret-0123456789-abcdefghijklmnopqrstuvwxyz")
}

/// A confidential client `id` with the test redirect and post-logout URIs.
pub(crate) fn client_spec(id: &str) -> ClientSpec {
    ClientSpec {
        id: id.into(),
        name: Some(format!("Relying Party {id}")),
        secret: Some(ClientSecret::hash(&secret_of(id))),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![POST_LOGOUT.into()],
        ..ClientSpec::default()
    }
}

/// Registers a client in the database.
pub(crate) async fn register(server: &TestServer, spec: ClientSpec) {
    let client = spec.build(ServiceOrigin::Database).unwrap();
    server.store.put_client(&client).await.unwrap();
}

/// A server with the confidential client `webapp`.
async fn op() -> TestServer {
    let server = TestServer::start().await;
    register(&server, client_spec(CLIENT)).await;
    server
}

/// `http://127.0.0.1:PORT/oidc`
pub(crate) fn issuer(server: &TestServer) -> String {
    format!("{}/oidc", server.origin())
}

fn endpoint(server: &TestServer, path: &str) -> String {
    format!("{}{path}", issuer(server))
}

/// The server's clock, in Unix seconds.
fn now(server: &TestServer) -> i64 {
    server.clock.now().unix_seconds()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

// --- authorization requests ------------------------------------------------------------------

/// A code request of `client` with the usual parameters.
fn auth_params(client: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", STATE),
        ("nonce", NONCE),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// `params` with `name` set to `value` (`None`: removed).
fn with(
    mut params: Vec<(String, String)>,
    name: &str,
    value: Option<&str>,
) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != name);
    if let Some(v) = value {
        params.push((name.to_owned(), v.to_owned()));
    }
    params
}

fn query(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// GET the authorization endpoint.
async fn authorize(server: &TestServer, browser: &Browser, params: &[(String, String)]) -> Page {
    browser
        .get_url(&format!(
            "{}?{}",
            endpoint(server, "/authorize"),
            query(params)
        ))
        .await
}

/// A `Location` made absolute.
pub(crate) fn absolute(server: &TestServer, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{}{location}", server.origin())
    }
}

/// Follows the redirect `page` answered with.
pub(crate) async fn follow(server: &TestServer, browser: &Browser, page: &Page) -> Page {
    assert!(
        page.status.is_redirection(),
        "{} {}",
        page.status,
        page.body
    );
    browser.get_url(&absolute(server, page.location())).await
}

/// Splits a redirect to the relying party into its URI (without query) and its parameters, and
/// checks no parameter is repeated.
pub(crate) fn rp_redirect(page: &Page) -> (String, Vec<(String, String)>) {
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    let url = url::Url::parse(page.location()).unwrap();
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let names: HashSet<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names.len(), params.len(), "repeated parameters: {params:?}");
    let mut bare = url;
    bare.set_query(None);
    (bare.to_string(), params)
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts `page` sends the user back to the client with `error` (and `state`, `iss`).
fn assert_error_redirect(server: &TestServer, page: &Page, error: &str, state: Option<&str>) {
    let (uri, params) = rp_redirect(page);
    assert_eq!(uri, REDIRECT);
    assert_eq!(param(&params, "error"), Some(error), "{params:?}");
    assert_eq!(param(&params, "state"), state, "{params:?}");
    assert_eq!(param(&params, "iss"), Some(issuer(server).as_str()));
    assert_eq!(param(&params, "code"), None);
}

/// The login form an authorization request was sent to: asserts it is one.
pub(crate) async fn login_form(server: &TestServer, browser: &Browser, page: &Page) -> Page {
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    assert!(
        page.location().starts_with("/cas/login?authorize="),
        "{}",
        page.location()
    );
    let form = follow(server, browser, page).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains(r#"name="password""#), "{}", form.body);
    assert!(form.input("authorize").is_some(), "{}", form.body);
    form
}

/// Fills in the login form and submits it; returns the answer (a redirect to `/oidc/authorize`).
pub(crate) async fn submit_login(browser: &Browser, form: &Page) -> Page {
    let lt = form.input("lt").unwrap();
    let resume = form.input("authorize").unwrap();
    let mut fields = vec![
        ("username", USER),
        ("password", PASSWORD),
        ("lt", lt.as_str()),
        ("authorize", resume.as_str()),
    ];
    if form.input("renew").is_some() {
        fields.push(("renew", "true"));
    }
    let page = browser.post("/login", &fields).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    assert!(
        page.location().starts_with("/oidc/authorize?"),
        "{}",
        page.location()
    );
    page
}

/// Runs an authorization request to its end at the client (logging in if asked) and returns the
/// parameters the client got; checks `state` and `iss`.
async fn authorized(
    server: &TestServer,
    browser: &Browser,
    params: &[(String, String)],
) -> Vec<(String, String)> {
    let mut page = authorize(server, browser, params).await;
    if page.location().starts_with("/cas/login") {
        let form = login_form(server, browser, &page).await;
        let back = submit_login(browser, &form).await;
        page = follow(server, browser, &back).await;
    }
    let (uri, got) = rp_redirect(&page);
    assert_eq!(uri, REDIRECT);
    assert_eq!(param(&got, "state"), param(params, "state"));
    assert_eq!(param(&got, "iss"), Some(issuer(server).as_str()));
    got
}

/// A code for `params`.
async fn code_for(server: &TestServer, browser: &Browser, params: &[(String, String)]) -> String {
    let got = authorized(server, browser, params).await;
    param(&got, "code")
        .unwrap_or_else(|| panic!("no code: {got:?}"))
        .to_owned()
}

// --- token-style requests --------------------------------------------------------------------

/// How a request authenticates its client.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    Public(&'a str),
    Nothing,
}

/// A JSON endpoint's answer.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) json: Value,
}

impl Reply {
    fn header(&self, name: reqwest::header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn str(&self, field: &str) -> String {
        self.json[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.json))
            .to_owned()
    }

    /// Asserts a token-style error: only 400 or 401, `error` as given, never cached.
    fn assert_error(&self, status: StatusCode, error: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert!(
            self.status == StatusCode::BAD_REQUEST || self.status == StatusCode::UNAUTHORIZED,
            "OAuth errors are 400 or 401"
        );
        assert_eq!(self.json["error"], error, "{}", self.json);
        self.assert_no_store();
    }

    fn assert_no_store(&self) {
        assert_eq!(self.header(CACHE_CONTROL), "no-store");
        assert_eq!(self.header(PRAGMA), "no-cache");
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    Reply {
        status,
        headers,
        json,
    }
}

/// POSTs a form to `path` under the issuer, authenticated as `auth` says.
pub(crate) async fn post_form(
    server: &TestServer,
    path: &str,
    auth: Auth<'_>,
    form: &[(&str, &str)],
) -> Reply {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut request = http().post(endpoint(server, path));
    match auth {
        Auth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => {
            fields.push(("client_id", id));
            fields.push(("client_secret", secret));
        }
        Auth::Public(id) => fields.push(("client_id", id)),
        Auth::Nothing => {}
    }
    reply(request.form(&fields).send().await.unwrap()).await
}

/// The usual authentication of client `id`.
fn basic(id: &str) -> (String, String) {
    (id.to_owned(), secret_of(id))
}

/// Exchanges `code` for tokens as `webapp` (Basic); asserts success.
async fn exchange(server: &TestServer, code: &str) -> Reply {
    let (id, secret) = basic(CLIENT);
    let r = post_form(
        server,
        "/token",
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r
}

async fn refresh(server: &TestServer, client: &str, token: &str, extra: &[(&str, &str)]) -> Reply {
    let (id, secret) = basic(client);
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    form.extend_from_slice(extra);
    post_form(server, "/token", Auth::Basic(&id, &secret), &form).await
}

async fn userinfo(server: &TestServer, access_token: &str) -> Reply {
    reply(
        http()
            .get(endpoint(server, "/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A fresh login and token response for `webapp`, with the usual request.
async fn logged_in_tokens(server: &TestServer, browser: &Browser) -> Reply {
    let code = code_for(server, browser, &auth_params(CLIENT)).await;
    exchange(server, &code).await
}

// --- JWTs ------------------------------------------------------------------------------------

pub(crate) async fn jwks(server: &TestServer) -> JwkSet {
    let r = http().get(endpoint(server, "/jwks")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

/// Verifies `token` against the published JWKS (key by `kid`, algorithm `alg`, issuer, audience);
/// expiry is checked by the callers against the server's clock, not the real one.
pub(crate) async fn verify(
    server: &TestServer,
    token: &str,
    alg: Algorithm,
    audience: &str,
) -> (Header, Value) {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    let kid = header.kid.clone().expect("every JWT names its key");
    let set = jwks(server).await;
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.required_spec_claims = HashSet::new();
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer(server)]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("{token} does not verify: {e}"));
    (header, data.claims)
}

/// The raw signature of a compact JWS.
fn signature(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap()
}

fn at_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(access_token.as_bytes())[..16])
}

// =============================================================================================
// Discovery and keys
// =============================================================================================

#[tokio::test]
async fn discovery_advertises_every_endpoint_under_the_exact_issuer() {
    let server = op().await;
    let issuer = issuer(&server);
    assert_eq!(issuer, format!("{}/oidc", server.origin()));
    assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'));
    let r = http()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    let d = reply(r).await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(
        d.header(CONTENT_TYPE).starts_with("application/json"),
        "{}",
        d.header(CONTENT_TYPE)
    );
    assert_eq!(d.header(ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    let j = &d.json;
    assert_eq!(j["issuer"], issuer.as_str(), "byte for byte");
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/logout"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
    ] {
        assert_eq!(j[field], format!("{issuer}{path}"), "{field}");
    }
    assert_eq!(j["response_types_supported"], json!(["code"]));
    assert_eq!(j["subject_types_supported"], json!(["public"]));
    let algs = j["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("RS256")) && algs.contains(&json!("ES256")));
    assert!(!algs
        .iter()
        .any(|a| a == "none" || a.as_str().unwrap().starts_with("HS")));
    let scopes = j["scopes_supported"].as_array().unwrap();
    for s in ["openid", "profile", "email"] {
        assert!(scopes.contains(&json!(s)), "{s}");
    }
    let claims = j["claims_supported"].as_array().unwrap();
    for c in [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "sid",
        "email",
    ] {
        assert!(claims.contains(&json!(c)), "{c}");
    }
    let modes = j["response_modes_supported"].as_array().unwrap();
    assert!(modes.contains(&json!("query")));
    assert_eq!(
        j["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        let methods = j[field].as_array().unwrap_or_else(|| panic!("{field}"));
        assert!(methods.iter().all(Value::is_string));
        for m in ["client_secret_basic", "client_secret_post"] {
            assert!(methods.contains(&json!(m)), "{field} {m}");
        }
    }
    assert_eq!(j["code_challenge_methods_supported"], json!(["S256"]));
    for (field, value) in [
        ("backchannel_logout_supported", true),
        ("backchannel_logout_session_supported", true),
        ("frontchannel_logout_supported", false),
        ("authorization_response_iss_parameter_supported", true),
        ("request_parameter_supported", false),
        ("request_uri_parameter_supported", false),
        ("claims_parameter_supported", false),
    ] {
        assert_eq!(j[field], value, "{field}");
    }
    assert!(j.get("registration_endpoint").is_none());

    // The RFC 8414 location is not where the RPs look; the OIDC one is, and no redirect is needed.
    let slash = http()
        .get(format!("{issuer}/.well-known/openid-configuration/"))
        .send()
        .await
        .unwrap();
    assert_ne!(slash.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn jwks_publishes_public_rs256_and_es256_keys() {
    let server = op().await;
    let r = reply(http().get(endpoint(&server, "/jwks")).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header(CONTENT_TYPE).starts_with("application/json"));
    assert_eq!(r.header(ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    let keys = r.json["keys"].as_array().unwrap();
    let mut kids = HashSet::new();
    for key in keys {
        assert!(
            kids.insert(key["kid"].as_str().unwrap().to_owned()),
            "unique kid"
        );
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(key.get(private).is_none(), "{private} published: {key}");
        }
        let b64 = |field: &str| {
            let v = key[field].as_str().unwrap();
            assert!(!v.contains('=') && !v.contains('+') && !v.contains('/'));
            URL_SAFE_NO_PAD.decode(v).unwrap()
        };
        match key["kty"].as_str().unwrap() {
            "RSA" => {
                assert_eq!(key["alg"], "RS256");
                let n = b64("n");
                assert!(n.len() >= 256 && n[0] != 0, "2048 bits, no leading zero");
                assert_eq!(b64("e"), [1, 0, 1]);
            }
            "EC" => {
                assert_eq!(key["alg"], "ES256");
                assert_eq!(key["crv"], "P-256");
                assert_eq!(b64("x").len(), 32);
                assert_eq!(b64("y").len(), 32);
            }
            other => panic!("unexpected key type {other}"),
        }
    }
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert!(
        algs.contains(&"RS256") && algs.contains(&"ES256"),
        "{algs:?}"
    );
    // And the keys parse as JWKs an independent library can use.
    let set: JwkSet = serde_json::from_value(r.json.clone()).unwrap();
    for jwk in &set.keys {
        DecodingKey::from_jwk(jwk).unwrap();
    }
}

// =============================================================================================
// The code flow
// =============================================================================================

#[tokio::test]
async fn code_flow_through_the_login_form_gives_a_verified_id_token() {
    let server = op().await;
    let browser = server.browser();
    let login_time = now(&server);

    // No session: the login form, naming the client.
    let page = authorize(&server, &browser, &auth_params(CLIENT)).await;
    let form = login_form(&server, &browser, &page).await;
    assert!(
        form.body.contains("Relying Party webapp"),
        "the form names the client: {}",
        form.body
    );
    let back = submit_login(&browser, &form).await;
    assert!(
        back.set_cookies()
            .iter()
            .any(|c| c.starts_with("TGC=") && c.contains("Path=/;")),
        "{:?}",
        back.set_cookies()
    );
    let done = follow(&server, &browser, &back).await;
    let (uri, params) = rp_redirect(&done);
    assert_eq!(uri, REDIRECT);
    assert_eq!(param(&params, "state"), Some(STATE), "state verbatim");
    assert_eq!(param(&params, "iss"), Some(issuer(&server).as_str()));
    let code = param(&params, "code").unwrap().to_owned();
    assert!(code.len() >= 22, "{code}");
    assert_eq!(done.headers.get(CACHE_CONTROL).unwrap(), "no-store");

    // The token request comes a little later than the login.
    server.advance(Duration::from_secs(7));
    let tokens = exchange(&server, &code).await;
    tokens.assert_no_store();
    assert!(tokens.header(CONTENT_TYPE).starts_with("application/json"));
    let t = &tokens.json;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], json!(3600), "an integer");
    assert_eq!(t["scope"], "openid profile email");
    let access = tokens.str("access_token");
    assert!(!tokens.str("refresh_token").is_empty());
    let id_token = tokens.str("id_token");

    let (header, claims) = verify(&server, &id_token, Algorithm::RS256, CLIENT).await;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(claims["iss"], issuer(&server).as_str());
    assert_eq!(claims["aud"], CLIENT, "a single string");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(iat <= now(&server), "iat is never in the future");
    assert_eq!(iat, login_time + 7);
    assert!(exp - iat >= 300, "lifetime {}", exp - iat);
    assert!(exp > now(&server));
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["auth_time"], json!(login_time), "the login time");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(claims["at_hash"], at_hash(&access).as_str());
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims.get("azp").is_none_or(|a| a == CLIENT));
    let sub = claims["sub"].as_str().unwrap().to_owned();
    assert!(!sub.is_empty() && sub != USER, "{sub}");
    assert_eq!(claims["email"], "alice@example.org");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["preferred_username"], USER);

    // Userinfo: GET and POST, token in the header or the body, always the same subject.
    let get = userinfo(&server, &access).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.json);
    assert!(get.header(CONTENT_TYPE).starts_with("application/json"));
    get.assert_no_store();
    assert_eq!(get.json["sub"], sub.as_str());
    assert_eq!(get.json["email"], "alice@example.org");
    assert_eq!(get.json["name"], "Alice <Example> & Co");
    let post_header = reply(
        http()
            .post(endpoint(&server, "/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(post_header.status, StatusCode::OK, "{}", post_header.json);
    assert_eq!(post_header.json["sub"], sub.as_str());
    let post_body = reply(
        http()
            .post(endpoint(&server, "/userinfo"))
            .form(&[("access_token", access.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(post_body.status, StatusCode::OK, "{}", post_body.json);
    assert_eq!(post_body.json["sub"], sub.as_str());
    assert_eq!(post_body.json, get.json);
}

#[tokio::test]
async fn an_es256_client_gets_es256_id_tokens() {
    let server = op().await;
    register(
        &server,
        ClientSpec {
            signing_alg: Some("ES256".into()),
            ..client_spec("ecapp")
        },
    )
    .await;
    let browser = server.browser();
    let code = code_for(&server, &browser, &auth_params("ecapp")).await;
    let (id, secret) = basic("ecapp");
    let tokens = post_form(
        &server,
        "/token",
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.json);
    let id_token = tokens.str("id_token");
    assert_eq!(signature(&id_token).len(), 64, "R || S, not DER");
    let (header, claims) = verify(&server, &id_token, Algorithm::ES256, "ecapp").await;
    let set = jwks(&server).await;
    let jwk = set.find(header.kid.as_deref().unwrap()).unwrap();
    assert!(matches!(
        jwk.algorithm,
        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)
    ));
    assert_eq!(claims["aud"], "ecapp");
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(
        claims["at_hash"],
        at_hash(&tokens.str("access_token")).as_str()
    );
}

// =============================================================================================
// Authorization errors
// =============================================================================================

#[tokio::test]
async fn unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect() {
    let server = op().await;
    let browser = server.browser();
    let unknown = authorize(&server, &browser, &auth_params("nobody")).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.headers.get(LOCATION).is_none());
    assert!(unknown.headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(unknown.body.contains("nobody"), "{}", unknown.body);

    for bad in [
        "https://rp.example.org/callback/",
        "https://rp.example.org:8443/callback",
        "https://RP.example.org/callback",
        "https://rp.example.org/Callback",
        "https://rp.example.org/callback?x=1",
        "http://rp.example.org/callback",
        "https://evil.example.net/callback",
    ] {
        let params = with(auth_params(CLIENT), "redirect_uri", Some(bad));
        let page = authorize(&server, &browser, &params).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.headers.get(LOCATION).is_none(), "{bad}");
        assert!(page.body.contains("redirect"), "{}", page.body);
    }
    let missing = authorize(
        &server,
        &browser,
        &with(auth_params(CLIENT), "redirect_uri", None),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.headers.get(LOCATION).is_none());
}

#[tokio::test]
async fn a_client_changed_or_removed_after_a_flow_gets_no_more_codes_or_tokens() {
    let server = op().await;
    let browser = server.browser();
    let (id, secret) = basic(CLIENT);
    let redeem = |code: String| {
        let (id, secret) = (id.clone(), secret.clone());
        let server = &server;
        async move {
            let grant = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ];
            post_form(server, "/token", Auth::Basic(&id, &secret), &grant).await
        }
    };
    // A first flow compiles the clients: the next ones are decided with them as compiled, and
    // decided again when the clients have changed since.
    let first = logged_in_tokens(&server, &browser).await;
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    register(&server, client_spec("another")).await;
    let ok = redeem(code).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    // Userinfo reads a token with the clients' version too: a token from before the change
    // still answers, judged by the current clients.
    for access in [first.str("access_token"), ok.str("access_token")] {
        let info = userinfo(&server, &access).await;
        assert_eq!(info.status, StatusCode::OK, "{}", info.json);
        assert_eq!(info.json["email"], "alice@example.org");
    }

    // A refresh is decided the same way: with the clients as compiled, and again after a change.
    register(&server, client_spec("a-third")).await;
    let refreshed = refresh(&server, CLIENT, &ok.str("refresh_token"), &[]).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    let refreshed = refresh(&server, CLIENT, &refreshed.str("refresh_token"), &[]).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);

    // Removed between its code and the token request: the client is unknown, not the code (nor
    // its refresh token).
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    assert!(server.store.delete_client(CLIENT).await.unwrap());
    redeem(code)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    refresh(&server, CLIENT, &refreshed.str("refresh_token"), &[])
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(
        userinfo(&server, &ok.str("access_token")).await.status,
        StatusCode::UNAUTHORIZED,
        "a removed client's tokens die with it"
    );

    // Its redirect URI changed since the clients were compiled: an error page, no code sent to
    // the old one.
    register(&server, client_spec(CLIENT)).await;
    code_for(&server, &browser, &auth_params(CLIENT)).await;
    assert!(server.store.delete_client(CLIENT).await.unwrap());
    register(
        &server,
        ClientSpec {
            redirect_uris: vec!["https://rp.example.org/elsewhere".into()],
            ..client_spec(CLIENT)
        },
    )
    .await;
    let page = authorize(&server, &browser, &auth_params(CLIENT)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.headers.get(LOCATION).is_none());
}

#[tokio::test]
async fn later_authorization_errors_go_back_to_the_client_with_state_and_iss() {
    let server = op().await;
    let browser = server.browser();
    let base = auth_params(CLIENT);
    for (params, error) in [
        (
            with(base.clone(), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            with(base.clone(), "response_type", Some("code id_token")),
            "unsupported_response_type",
        ),
        (with(base.clone(), "response_type", None), "invalid_request"),
        (
            with(base.clone(), "scope", Some("profile email")),
            "invalid_scope",
        ),
        (
            with(base.clone(), "code_challenge_method", Some("plain"))
                .into_iter()
                .chain([("code_challenge".to_owned(), s256(VERIFIER))])
                .collect(),
            "invalid_request",
        ),
        (
            with(
                base.clone(),
                "request_uri",
                Some("https://rp.example.org/r"),
            ),
            "request_uri_not_supported",
        ),
        (
            base.iter()
                .cloned()
                .chain([("scope".to_owned(), "openid".to_owned())])
                .collect(),
            "invalid_request",
        ),
    ] {
        let page = authorize(&server, &browser, &params).await;
        assert_error_redirect(&server, &page, error, Some(STATE));
    }
    // Without a state, none comes back.
    let page = authorize(
        &server,
        &browser,
        &with(with(base, "state", None), "scope", Some("email")),
    )
    .await;
    assert_error_redirect(&server, &page, "invalid_scope", None);
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_at_the_client() {
    let server = op().await;
    let browser = server.browser();
    let params = with(auth_params(CLIENT), "prompt", Some("none"));
    let page = authorize(&server, &browser, &params).await;
    assert_error_redirect(&server, &page, "login_required", Some(STATE));
    let mixed = with(auth_params(CLIENT), "prompt", Some("none login"));
    let page = authorize(&server, &browser, &mixed).await;
    assert_error_redirect(&server, &page, "invalid_request", Some(STATE));
}

// =============================================================================================
// The token endpoint
// =============================================================================================

#[tokio::test]
async fn token_endpoint_authenticates_clients() {
    let server = op().await;
    let browser = server.browser();
    let (id, secret) = basic(CLIENT);
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];

    let wrong = post_form(
        &server,
        "/token",
        Auth::Basic(&id, "not-the-secret"),
        &grant,
    )
    .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        wrong.header(WWW_AUTHENTICATE).starts_with("Basic"),
        "{}",
        wrong.header(WWW_AUTHENTICATE)
    );
    let wrong_post = post_form(&server, "/token", Auth::Post(&id, "not-the-secret"), &grant).await;
    wrong_post.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let nobody = post_form(&server, "/token", Auth::Nothing, &grant).await;
    nobody.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // A confidential client cannot pass for a public one.
    let public = post_form(&server, "/token", Auth::Public(&id), &grant).await;
    public.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // Client authentication is throttled like passwords: a third failure makes the client wait.
    let throttled = post_form(&server, "/token", Auth::Basic(&id, &secret), &grant).await;
    throttled.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        throttled.json["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("try again in 1 second"),
        "{}",
        throttled.json
    );
    server.advance(Duration::from_secs(1));

    // Basic and a body secret at once.
    let mut both = grant.to_vec();
    both.push(("client_secret", secret.as_str()));
    let two = post_form(&server, "/token", Auth::Basic(&id, &secret), &both).await;
    two.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    // Basic with a body client_id naming someone else.
    let mut other = grant.to_vec();
    other.push(("client_id", "someone-else"));
    let mismatch = post_form(&server, "/token", Auth::Basic(&id, &secret), &other).await;
    mismatch.assert_error(StatusCode::BAD_REQUEST, "invalid_request");

    // None of those spent the code: client_secret_post redeems it.
    let client_key = format!("client:{id}");
    let failures = server.store.get_login_failures(&client_key).await.unwrap();
    assert_eq!(failures.map(|f| f.failures), Some(3));
    let ok = post_form(&server, "/token", Auth::Post(&id, &secret), &grant).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    assert!(ok.json["id_token"].is_string());
    // The client's failures are forgotten; the address keeps its own.
    let failures = server.store.get_login_failures(&client_key).await.unwrap();
    assert_eq!(failures, None);
    let address = tessera::auth::throttle::address_key("127.0.0.1".parse().unwrap());
    assert!(server
        .store
        .get_login_failures(&address)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn token_endpoint_headers_statuses_and_methods() {
    let server = op().await;
    let (id, secret) = basic(CLIENT);
    let get = http()
        .get(endpoint(&server, "/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);

    let unknown = post_form(
        &server,
        "/token",
        Auth::Basic(&id, &secret),
        &[("grant_type", "password"), ("username", USER)],
    )
    .await;
    unknown.assert_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let none = post_form(&server, "/token", Auth::Basic(&id, &secret), &[]).await;
    none.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let bogus = post_form(
        &server,
        "/token",
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", "OC-not-a-real-code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    bogus.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let json_body = reply(
        http()
            .post(endpoint(&server, "/token"))
            .basic_auth(&id, Some(&secret))
            .header(CONTENT_TYPE, "application/json")
            .body(json!({"grant_type": "authorization_code"}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    json_body.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
    let repeated = reply(
        http()
            .post(endpoint(&server, "/token"))
            .basic_auth(&id, Some(&secret))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token&grant_type=refresh_token&refresh_token=x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    repeated.assert_error(StatusCode::BAD_REQUEST, "invalid_request");

    let browser = server.browser();
    let ok = logged_in_tokens(&server, &browser).await;
    ok.assert_no_store();
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_the_first_exchange_gave() {
    let server = op().await;
    let browser = server.browser();
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    let first = exchange(&server, &code).await;
    let (access, refresh_token) = (first.str("access_token"), first.str("refresh_token"));
    assert_eq!(userinfo(&server, &access).await.status, StatusCode::OK);

    let (id, secret) = basic(CLIENT);
    let again = post_form(
        &server,
        "/token",
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    again.assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    let info = userinfo(&server, &access).await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED, "{}", info.json);
    assert!(info.header(WWW_AUTHENTICATE).contains("invalid_token"));
    refresh(&server, CLIENT, &refresh_token, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_lifetime() {
    let server = op().await;
    register(&server, client_spec("second")).await;
    let browser = server.browser();
    let redeem = |client: &'static str, code: String, redirect: &'static str| {
        let server = &server;
        async move {
            let (id, secret) = basic(client);
            post_form(
                server,
                "/token",
                Auth::Basic(&id, &secret),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                ],
            )
            .await
        }
    };

    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    redeem("second", code, REDIRECT)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    redeem(CLIENT, code, "https://rp.example.org/callback/")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    let ttl = server.state().settings.oidc.code_ttl;
    server.advance(ttl + Duration::from_secs(1));
    redeem(CLIENT, code, REDIRECT)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // A code within its lifetime works (the session is still there).
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    server.advance(ttl - Duration::from_secs(5));
    let ok = redeem(CLIENT, code, REDIRECT).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
}

#[tokio::test]
async fn pkce_is_required_for_public_clients_and_checked() {
    let server = op().await;
    register(
        &server,
        ClientSpec {
            secret: None,
            ..client_spec("spa")
        },
    )
    .await;
    let browser = server.browser();
    let plain = auth_params("spa");
    let page = authorize(&server, &browser, &plain).await;
    assert_error_redirect(&server, &page, "invalid_request", Some(STATE));

    let challenge = s256(VERIFIER);
    let pkce = with(
        with(plain, "code_challenge", Some(challenge.as_str())),
        "code_challenge_method",
        Some("S256"),
    );
    let redeem = |code: String, verifier: Option<&'static str>| {
        let server = &server;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            }
            post_form(server, "/token", Auth::Public("spa"), &form).await
        }
    };
    let code = code_for(&server, &browser, &pkce).await;
    let ok = redeem(code, Some(VERIFIER)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.json);
    let (_, claims) = verify(&server, &ok.str("id_token"), Algorithm::RS256, "spa").await;
    assert_eq!(claims["nonce"], NONCE);

    let code = code_for(&server, &browser, &pkce).await;
    redeem(
        code,
        Some("pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyZ"),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let code = code_for(&server, &browser, &pkce).await;
    redeem(code, None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // A confidential client may use PKCE; a verifier without a challenge is a downgrade.
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    let (id, secret) = basic(CLIENT);
    post_form(
        &server,
        "/token",
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

// =============================================================================================
// Refresh
// =============================================================================================

#[tokio::test]
async fn refresh_rotates_and_keeps_the_identity() {
    let server = op().await;
    let browser = server.browser();
    let first = logged_in_tokens(&server, &browser).await;
    let (_, original) = verify(&server, &first.str("id_token"), Algorithm::RS256, CLIENT).await;
    let old = first.str("refresh_token");

    server.advance(Duration::from_secs(120));
    let r = refresh(&server, CLIENT, &old, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.assert_no_store();
    let new = r.str("refresh_token");
    assert_ne!(new, old, "rotated");
    assert_ne!(r.str("access_token"), first.str("access_token"));
    assert_eq!(r.json["scope"], "openid profile email");
    let (_, claims) = verify(&server, &r.str("id_token"), Algorithm::RS256, CLIENT).await;
    for same in ["sub", "aud", "auth_time", "iss", "sid"] {
        assert_eq!(claims[same], original[same], "{same}");
    }
    assert!(
        claims.get("nonce").is_none(),
        "no nonce after refresh: {claims}"
    );
    assert_eq!(claims["iat"], json!(now(&server)));
    assert_eq!(claims["at_hash"], at_hash(&r.str("access_token")).as_str());
    assert_eq!(
        userinfo(&server, &r.str("access_token")).await.json["sub"],
        original["sub"]
    );

    // The new one works in turn.
    let again = refresh(&server, CLIENT, &new, &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json);
}

#[tokio::test]
async fn a_rotated_refresh_token_repeats_within_the_grace_window_and_kills_the_family_after() {
    let server = op().await;
    let browser = server.browser();
    let first = logged_in_tokens(&server, &browser).await;
    let old = first.str("refresh_token");
    let rotated = refresh(&server, CLIENT, &old, &[]).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);

    // A parallel worker presents the old token again at once: fine.
    server.advance(Duration::from_secs(2));
    let repeat = refresh(&server, CLIENT, &old, &[]).await;
    assert_eq!(repeat.status, StatusCode::OK, "{}", repeat.json);

    let grace = server.state().settings.oidc.refresh_grace;
    server.advance(grace);
    refresh(&server, CLIENT, &old, &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    for newer in [rotated.str("refresh_token"), repeat.str("refresh_token")] {
        refresh(&server, CLIENT, &newer, &[])
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let info = userinfo(&server, &repeat.str("access_token")).await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED, "the grant is gone");
}

#[tokio::test]
async fn refresh_cannot_widen_the_scope_and_ignores_a_redirect_uri() {
    let server = op().await;
    let browser = server.browser();
    let params = with(auth_params(CLIENT), "scope", Some("openid profile"));
    let code = code_for(&server, &browser, &params).await;
    let first = exchange(&server, &code).await;
    assert_eq!(first.json["scope"], "openid profile");

    refresh(
        &server,
        CLIENT,
        &first.str("refresh_token"),
        &[("scope", "openid profile email")],
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "invalid_scope");
    // The failed attempt did not spend the token.
    let narrower = refresh(
        &server,
        CLIENT,
        &first.str("refresh_token"),
        &[
            ("scope", "openid"),
            ("redirect_uri", "https://unrelated.example.org/"),
        ],
    )
    .await;
    assert_eq!(narrower.status, StatusCode::OK, "{}", narrower.json);
    assert_eq!(narrower.json["scope"], "openid");

    // Another client cannot use it.
    register(&server, client_spec("second")).await;
    refresh(&server, "second", &narrower.str("refresh_token"), &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

// =============================================================================================
// Userinfo, revocation, introspection
// =============================================================================================

#[tokio::test]
async fn userinfo_refuses_missing_and_unknown_tokens() {
    let server = op().await;
    let missing = reply(
        http()
            .get(endpoint(&server, "/userinfo"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing
            .header(WWW_AUTHENTICATE)
            .starts_with("Bearer realm="),
        "{}",
        missing.header(WWW_AUTHENTICATE)
    );
    let unknown = userinfo(&server, "AT-not-a-token").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown
        .header(WWW_AUTHENTICATE)
        .contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn revocation_always_answers_200_and_a_refresh_token_takes_its_access_token() {
    let server = op().await;
    let browser = server.browser();
    let (id, secret) = basic(CLIENT);
    let auth = Auth::Basic(&id, &secret);
    let first = logged_in_tokens(&server, &browser).await;
    let access = first.str("access_token");

    let r = post_form(&server, "/revoke", auth, &[("token", &access)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        userinfo(&server, &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = post_form(
        &server,
        "/revoke",
        auth,
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "already revoked");
    let unknown = post_form(&server, "/revoke", auth, &[("token", "no-such-token")]).await;
    assert_eq!(unknown.status, StatusCode::OK, "unknown");
    // The access token alone went: the refresh token still works.
    let refreshed = refresh(&server, CLIENT, &first.str("refresh_token"), &[]).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);

    // Revoking the refresh token ends its access tokens too.
    let access = refreshed.str("access_token");
    assert_eq!(userinfo(&server, &access).await.status, StatusCode::OK);
    let r = post_form(
        &server,
        "/revoke",
        auth,
        &[
            ("token", &refreshed.str("refresh_token")),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        userinfo(&server, &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    refresh(&server, CLIENT, &refreshed.str("refresh_token"), &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // Client authentication is required.
    let anonymous = post_form(&server, "/revoke", Auth::Nothing, &[("token", "x")]).await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn introspection_describes_live_tokens_and_nothing_else() {
    let server = op().await;
    let browser = server.browser();
    let (id, secret) = basic(CLIENT);
    let auth = Auth::Basic(&id, &secret);
    let tokens = logged_in_tokens(&server, &browser).await;
    let (_, claims) = verify(&server, &tokens.str("id_token"), Algorithm::RS256, CLIENT).await;
    let access = tokens.str("access_token");

    let r = post_form(&server, "/introspect", auth, &[("token", &access)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.assert_no_store();
    let j = &r.json;
    assert_eq!(j["active"], true);
    assert_eq!(
        j["scope"], "openid profile email",
        "a space-separated string"
    );
    assert_eq!(j["client_id"], CLIENT);
    assert_eq!(j["aud"], json!([CLIENT]));
    assert_eq!(j["sub"], claims["sub"]);
    assert_eq!(j["iss"], issuer(&server).as_str());
    assert_eq!(j["exp"], json!(now(&server) + 3600));
    assert_eq!(j["token_type"], "Bearer");

    // A resource server (another client) asking is named in aud too.
    register(&server, client_spec("api")).await;
    let (api, api_secret) = basic("api");
    let by_api = post_form(
        &server,
        "/introspect",
        Auth::Post(&api, &api_secret),
        &[("token", &access)],
    )
    .await;
    assert_eq!(by_api.json["active"], true);
    let aud = by_api.json["aud"].as_array().unwrap();
    assert!(
        aud.contains(&json!(CLIENT)) && aud.contains(&json!("api")),
        "{aud:?}"
    );

    let refresh_info = post_form(
        &server,
        "/introspect",
        auth,
        &[("token", &tokens.str("refresh_token"))],
    )
    .await;
    assert_eq!(refresh_info.json["active"], true);

    for token in ["AT-unknown", "garbage"] {
        let r = post_form(&server, "/introspect", auth, &[("token", token)]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json, json!({"active": false}), "exactly");
    }
    post_form(&server, "/revoke", auth, &[("token", &access)]).await;
    let revoked = post_form(&server, "/introspect", auth, &[("token", &access)]).await;
    assert_eq!(revoked.json, json!({"active": false}));
    // Expired (the refresh token lives 8 h, its access token 1 h).
    let refreshed = refresh(&server, CLIENT, &tokens.str("refresh_token"), &[]).await;
    server.advance(Duration::from_secs(3601));
    let expired = post_form(
        &server,
        "/introspect",
        auth,
        &[("token", &refreshed.str("access_token"))],
    )
    .await;
    assert_eq!(expired.json, json!({"active": false}));

    let anonymous = post_form(&server, "/introspect", Auth::Nothing, &[("token", &access)]).await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let wrong = post_form(
        &server,
        "/introspect",
        Auth::Basic(&id, "wrong"),
        &[("token", &access)],
    )
    .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid_client");
}

// =============================================================================================
// One SSO session
// =============================================================================================

#[tokio::test]
async fn a_cas_login_lets_oidc_clients_in_without_a_password() {
    let server = op().await;
    let browser = server.browser();
    let login_time = now(&server);
    browser.cas_login(SERVICE).await;
    server.advance(Duration::from_secs(100));

    let page = authorize(&server, &browser, &auth_params(CLIENT)).await;
    let (uri, params) = rp_redirect(&page);
    assert_eq!(uri, REDIRECT, "straight back, no form");
    let code = param(&params, "code").unwrap();
    let tokens = exchange(&server, code).await;
    let (_, claims) = verify(&server, &tokens.str("id_token"), Algorithm::RS256, CLIENT).await;
    assert_eq!(
        claims["auth_time"],
        json!(login_time),
        "the CAS login's time"
    );

    // And the other way round: CAS services get in with the OIDC-started session.
    let other = server.browser();
    code_for(&server, &other, &auth_params(CLIENT)).await;
    let page = other.get(&format!("/login?service={}", enc(SERVICE))).await;
    page.ticket();
}

#[tokio::test]
async fn prompt_login_and_max_age_zero_ask_for_the_password_again() {
    let server = op().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    let session = server.store.list_sessions(Some(USER)).await.unwrap()[0]
        .id
        .clone();
    for (name, value) in [("prompt", "login"), ("max_age", "0")] {
        server.advance(Duration::from_secs(60));
        let relogin_time = now(&server);
        let params = with(auth_params(CLIENT), name, Some(value));
        let page = authorize(&server, &browser, &params).await;
        let form = login_form(&server, &browser, &page).await;
        let back = submit_login(&browser, &form).await;
        let done = follow(&server, &browser, &back).await;
        let (uri, got) = rp_redirect(&done);
        assert_eq!(uri, REDIRECT, "{name}");
        assert_eq!(param(&got, "state"), Some(STATE));
        let tokens = exchange(&server, param(&got, "code").unwrap()).await;
        let (_, claims) = verify(&server, &tokens.str("id_token"), Algorithm::RS256, CLIENT).await;
        assert_eq!(
            claims["auth_time"],
            json!(relogin_time),
            "{name}: a new login"
        );
        // The same user: the session is renewed, not replaced, and nobody is logged out.
        assert_eq!(claims["sid"], json!(session.as_str()), "{name}");
        assert!(server.store.list_slo_deliveries().await.unwrap().is_empty());
    }
    // A max_age the session satisfies does not ask.
    let page = authorize(
        &server,
        &browser,
        &with(auth_params(CLIENT), "max_age", Some("3600")),
    )
    .await;
    assert_eq!(rp_redirect(&page).0, REDIRECT);
}

// =============================================================================================
// Consent
// =============================================================================================

async fn consent_server() -> TestServer {
    let server = op().await;
    register(
        &server,
        ClientSpec {
            consent: true,
            ..client_spec("asking")
        },
    )
    .await;
    server
}

/// Logs in through an authorization request of `asking` and returns the consent page.
async fn consent_page(server: &TestServer, browser: &Browser) -> Page {
    let page = authorize(server, browser, &auth_params("asking")).await;
    let form = login_form(server, browser, &page).await;
    let back = submit_login(browser, &form).await;
    let consent = follow(server, browser, &back).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(
        consent.body.contains("Relying Party asking"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("e-mail"), "{}", consent.body);
    assert!(consent.headers.get(LOCATION).is_none());
    consent
}

async fn decide(server: &TestServer, browser: &Browser, consent: &Page, decision: &str) -> Page {
    let lt = consent.input("lt").unwrap();
    let request = consent.input("request").unwrap();
    browser
        .post_url(
            &endpoint(server, "/consent"),
            &[
                ("lt", lt.as_str()),
                ("request", request.as_str()),
                ("decision", decision),
            ],
        )
        .await
}

#[tokio::test]
async fn consent_is_asked_once_and_remembered() {
    let server = consent_server().await;
    let browser = server.browser();
    let consent = consent_page(&server, &browser).await;
    let page = decide(&server, &browser, &consent, "allow").await;
    let (uri, params) = rp_redirect(&page);
    assert_eq!(uri, REDIRECT);
    assert_eq!(param(&params, "state"), Some(STATE));
    assert_eq!(param(&params, "iss"), Some(issuer(&server).as_str()));
    let code = param(&params, "code").unwrap();
    let (id, secret) = basic("asking");
    let tokens = post_form(
        &server,
        "/token",
        Auth::Basic(&id, &secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.json);

    // Remembered: straight through next time.
    let again = authorize(&server, &browser, &auth_params("asking")).await;
    let (uri, params) = rp_redirect(&again);
    assert_eq!(uri, REDIRECT);
    assert!(param(&params, "code").is_some(), "{params:?}");
    // A client without consent never shows the page.
    let plain = authorize(&server, &browser, &auth_params(CLIENT)).await;
    assert!(param(&rp_redirect(&plain).1, "code").is_some());
}

#[tokio::test]
async fn refused_consent_is_access_denied_at_the_client() {
    let server = consent_server().await;
    let browser = server.browser();
    let consent = consent_page(&server, &browser).await;
    let page = decide(&server, &browser, &consent, "deny").await;
    assert_error_redirect(&server, &page, "access_denied", Some(STATE));
    // Not remembered as given: asked again.
    let again = authorize(&server, &browser, &auth_params("asking")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.body.contains(r#"value="allow""#));
    // prompt=none cannot show it.
    let silent = authorize(
        &server,
        &browser,
        &with(auth_params("asking"), "prompt", Some("none")),
    )
    .await;
    assert_error_redirect(&server, &silent, "consent_required", Some(STATE));
}

// =============================================================================================
// RP-initiated logout
// =============================================================================================

async fn end_session(server: &TestServer, browser: &Browser, params: &[(&str, &str)]) -> Page {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    browser
        .get_url(&format!("{}?{}", endpoint(server, "/logout"), q.finish()))
        .await
}

/// Asserts the browser has no SSO session any more: the CAS login page shows the form.
async fn assert_logged_out(browser: &Browser) {
    let page = browser.get("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"name="password""#), "{}", page.body);
}

#[tokio::test]
async fn end_session_with_an_expired_hint_returns_to_the_registered_uri_with_state() {
    let server = op().await;
    let browser = server.browser();
    let tokens = logged_in_tokens(&server, &browser).await;
    let id_token = tokens.str("id_token");
    let ttl = server.state().settings.oidc.id_token_ttl;
    server.advance(ttl + Duration::from_secs(60));
    assert_eq!(
        userinfo(&server, &tokens.str("access_token")).await.status,
        StatusCode::OK
    );

    let page = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "bye/42 x"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    let target = url::Url::parse(page.location()).unwrap();
    assert_eq!(
        format!(
            "{}://{}{}",
            target.scheme(),
            target.host_str().unwrap(),
            target.path()
        ),
        POST_LOGOUT
    );
    let params: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    assert_eq!(params, [("state".to_owned(), "bye/42 x".to_owned())]);
    assert!(page
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("TGC=;") && c.contains("Max-Age=0")));

    assert_logged_out(&browser).await;
    let info = userinfo(&server, &tokens.str("access_token")).await;
    assert_eq!(
        info.status,
        StatusCode::UNAUTHORIZED,
        "the grant ended with the session"
    );
    refresh(&server, CLIENT, &tokens.str("refresh_token"), &[])
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

#[tokio::test]
async fn end_session_to_an_unregistered_uri_shows_the_logged_out_page() {
    let server = op().await;
    let browser = server.browser();
    let tokens = logged_in_tokens(&server, &browser).await;
    let page = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", &tokens.str("id_token")),
            ("post_logout_redirect_uri", "https://evil.example.net/"),
            ("state", "s"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.headers.get(LOCATION).is_none());
    assert!(page.body.contains("You are logged out"), "{}", page.body);
    assert!(!page.body.contains("evil.example.net"), "{}", page.body);
    assert_logged_out(&browser).await;
}

#[tokio::test]
async fn end_session_without_a_hint_asks_first() {
    let server = op().await;
    let browser = server.browser();
    let tokens = logged_in_tokens(&server, &browser).await;
    let page = end_session(
        &server,
        &browser,
        &[
            ("client_id", CLIENT),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.headers.get(LOCATION).is_none());
    assert!(page.body.contains("/oidc/logout/confirm"), "{}", page.body);
    assert!(page.body.contains("Relying Party webapp"), "{}", page.body);
    // Not logged out yet.
    assert_eq!(
        userinfo(&server, &tokens.str("access_token")).await.status,
        StatusCode::OK
    );
    let cas = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await;
    cas.ticket();

    let lt = page.input("lt").unwrap();
    let request = page.input("request").unwrap();
    let confirmed = browser
        .post_url(
            &endpoint(&server, "/logout/confirm"),
            &[
                ("lt", lt.as_str()),
                ("request", request.as_str()),
                ("decision", "logout"),
            ],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::FOUND, "{}", confirmed.body);
    assert_eq!(confirmed.location(), format!("{POST_LOGOUT}?state=s1"));
    assert_logged_out(&browser).await;
    assert_eq!(
        userinfo(&server, &tokens.str("access_token")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn end_session_with_a_client_id_contradicting_the_hint_does_not_redirect() {
    let server = op().await;
    register(&server, client_spec("second")).await;
    let browser = server.browser();
    let tokens = logged_in_tokens(&server, &browser).await;
    let page = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", &tokens.str("id_token")),
            ("client_id", "second"),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "s"),
        ],
    )
    .await;
    assert!(page.headers.get(LOCATION).is_none(), "{:?}", page.headers);
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

// =============================================================================================
// Back-channel logout
// =============================================================================================

#[tokio::test]
async fn cas_logout_sends_back_channel_logout_tokens_and_cas_slo_once() {
    let receiver = Receiver::start().await;
    let server = TestServer::start_with(|s| s.slo.poll_interval = Duration::from_millis(50)).await;
    register(
        &server,
        ClientSpec {
            backchannel_logout_uri: Some(format!("{}/bcl/webapp", receiver.url)),
            ..client_spec(CLIENT)
        },
    )
    .await;
    let cas_service = format!("{}/cas-app/", receiver.url);
    let mut s = service(
        "cas-app",
        &format!("{}/cas-app/.*", regex::escape(&receiver.url)),
        true,
    );
    s.logout_type = LogoutType::BackChannel;
    server.store.put_service(&s).await.unwrap();

    let browser = server.browser();
    let ticket = browser.cas_login(&cas_service).await;
    let (_, body) = server
        .validate("/serviceValidate", &ticket, &cas_service, "")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    let tokens = exchange(&server, &code).await;
    let (id_header, id_claims) =
        verify(&server, &tokens.str("id_token"), Algorithm::RS256, CLIENT).await;

    let page = browser.get("/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Relying Party webapp"), "{}", page.body);

    let mut got = [receiver.next().await, receiver.next().await];
    got.sort_by(|a, b| a.uri.cmp(&b.uri));
    let [bcl, cas] = got;
    assert_eq!(cas.uri, "/cas-app/");
    assert_eq!(cas.session_index(), ticket);

    assert_eq!(bcl.method, "POST");
    assert_eq!(bcl.uri, "/bcl/webapp");
    assert!(
        bcl.content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        bcl.content_type
    );
    let fields: Vec<(String, String)> = form_urlencoded::parse(bcl.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].0, "logout_token");
    let (header, claims) = verify(&server, &fields[0].1, Algorithm::RS256, CLIENT).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(header.kid, id_header.kid, "signed like the ID tokens");
    assert_eq!(claims["iss"], issuer(&server).as_str());
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["iat"], json!(now(&server)));
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none());

    eventually("the queue is empty", || async {
        server.store.list_slo_deliveries().await.unwrap().is_empty()
    })
    .await;
    assert!(receiver.pending().await.is_empty(), "one logout each");
    assert_eq!(
        userinfo(&server, &tokens.str("access_token")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

// =============================================================================================
// Key rotation
// =============================================================================================

#[tokio::test]
async fn after_a_key_rotation_new_tokens_use_the_new_key_and_old_ones_still_verify() {
    let server = op().await;
    let browser = server.browser();
    let before = logged_in_tokens(&server, &browser).await;
    let old_token = before.str("id_token");
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();

    server.advance(Duration::from_secs(5));
    let at = server.clock.now();
    let new_kid = tessera::oidc::add_key(server.store.as_ref(), SigningAlg::Rs256, at, at)
        .await
        .unwrap();
    assert_ne!(new_kid, old_kid);
    server
        .state()
        .oidc
        .keys(server.store.as_ref(), true)
        .await
        .unwrap();

    let kids: Vec<String> = jwks(&server)
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );

    let code = code_for(&server, &browser, &auth_params(CLIENT)).await;
    let after = exchange(&server, &code).await;
    let (header, _) = verify(&server, &after.str("id_token"), Algorithm::RS256, CLIENT).await;
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    // Tokens signed before still verify against the published set.
    verify(&server, &old_token, Algorithm::RS256, CLIENT).await;

    // And the old ID token is still a good id_token_hint.
    let page = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", &old_token),
            ("post_logout_redirect_uri", POST_LOGOUT),
            ("state", "rotated"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    assert_eq!(page.location(), format!("{POST_LOGOUT}?state=rotated"));
}
