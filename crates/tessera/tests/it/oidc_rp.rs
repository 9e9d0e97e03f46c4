//! A real relying party against Tessera: the Rust `openidconnect` crate (4.x), the strictest of the
//! four studied (issuer equality, no exp leeway, algorithm allow-list from discovery, key choice by
//! `kid`). It discovers the provider, runs the code flow with PKCE S256 and a nonce (the test
//! browser plays the user at the login form), verifies the ID token with its own verifier, calls
//! userinfo with the expected subject, and logs out with a `LogoutRequest`.

use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    LogoutRequest, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, SubjectIdentifier, TokenResponse as _,
};
use reqwest::StatusCode;
use tessera::clock::Clock as _;
use tessera::config::ClientSpec;

use crate::oidc::{
    client_spec, follow, issuer, login_form, param, register, rp_redirect, secret_of, submit_login,
    POST_LOGOUT, REDIRECT,
};
use crate::support::TestServer;

/// Sets the server's clock to the real time: the crate checks `exp` against the system clock, with
/// no leeway, as a deployed relying party would.
fn to_real_time(server: &TestServer) {
    let real = tessera::clock::SystemClock.now().unix_millis();
    let behind = real - server.clock.now().unix_millis();
    let behind = u64::try_from(behind).expect("the test clock starts in the past");
    server.advance(Duration::from_millis(behind));
}

/// The crate's HTTP client; it must not follow redirects.
fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The whole relying-party round trip for a client signing with `alg`.
async fn round_trip(client_id: &str, alg: Option<&str>, expected: CoreJwsSigningAlgorithm) {
    let server = TestServer::start().await;
    to_real_time(&server);
    register(
        &server,
        ClientSpec {
            signing_alg: alg.map(str::to_owned),
            ..client_spec(client_id)
        },
    )
    .await;
    let http = rp_http();

    // Discovery from the exact issuer string (string-compared by the crate).
    let issuer_url = IssuerUrl::new(issuer(&server)).unwrap();
    let metadata = ProviderMetadataWithLogout::discover_async(issuer_url.clone(), &http)
        .await
        .unwrap_or_else(|e| panic!("discovery failed: {e:?}"));
    assert_eq!(metadata.issuer(), &issuer_url);
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("end_session_endpoint is published");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        Some(ClientSecret::new(secret_of(client_id))),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());

    // The authorization request, with PKCE S256 and a nonce.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(auth_url
        .as_str()
        .starts_with(&format!("{}/authorize?", issuer(&server))));

    // The user's part, in the test browser.
    let browser = server.browser();
    let page = browser.get_url(auth_url.as_str()).await;
    let form = login_form(&server, &browser, &page).await;
    assert!(form.body.contains(&format!("Relying Party {client_id}")));
    let back = submit_login(&browser, &form).await;
    let done = follow(&server, &browser, &back).await;
    let (uri, params) = rp_redirect(&done);
    assert_eq!(uri, REDIRECT);
    assert_eq!(param(&params, "state"), Some(csrf.secret().as_str()));
    assert_eq!(param(&params, "iss"), Some(issuer(&server).as_str()));
    let code = param(&params, "code").unwrap().to_owned();

    // The code exchange (client_secret_basic, form-encoded credentials) and the ID token checks.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("token request failed: {e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .unwrap_or_else(|e| panic!("the ID token does not verify: {e:?}"));
    assert_eq!(id_token.signing_alg().unwrap(), &expected);
    assert_eq!(claims.issuer(), &issuer_url);
    assert_eq!(claims.audiences().len(), 1);
    assert_eq!(claims.audiences()[0].as_str(), client_id);
    assert_eq!(claims.nonce().map(Nonce::secret), Some(nonce.secret()));
    assert_eq!(
        claims.email().map(|e| e.as_str().to_owned()),
        Some("alice@example.org".to_owned())
    );
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    // A nonce the RP did not send is refused: the check is real.
    assert!(id_token
        .claims(&id_verifier, &Nonce::new("another".to_owned()))
        .is_err());
    let subject = claims.subject().clone();

    // Userinfo with the expected subject; another subject is refused by the crate.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(subject.clone()))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap_or_else(|e| panic!("userinfo failed: {e:?}"));
    assert_eq!(info.subject(), &subject);
    assert_eq!(
        info.preferred_username().map(|u| u.as_str().to_owned()),
        Some("alice".to_owned())
    );
    let wrong: Result<CoreUserInfoClaims, _> = client
        .user_info(
            tokens.access_token().clone(),
            Some(SubjectIdentifier::new("someone-else".to_owned())),
        )
        .unwrap()
        .request_async(&http)
        .await;
    assert!(wrong.is_err());

    // RP-initiated logout with every parameter.
    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_client_id(ClientId::new(client_id.to_owned()))
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(POST_LOGOUT.to_owned()).unwrap())
        .set_state(CsrfToken::new("logout-state-7".to_owned()))
        .http_get_url();
    let page = browser.get_url(logout_url.as_str()).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    assert_eq!(
        page.location(),
        format!("{POST_LOGOUT}?state=logout-state-7")
    );
    // The session is gone: the access token no longer works.
    let after: Result<CoreUserInfoClaims, _> = client
        .user_info(tokens.access_token().clone(), Some(subject))
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after.is_err(), "{after:?}");
}

#[tokio::test]
async fn openidconnect_crate_logs_in_with_an_rs256_client() {
    round_trip(
        "rust-rp",
        None,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

#[tokio::test]
async fn openidconnect_crate_logs_in_with_an_es256_client() {
    round_trip(
        "rust-rp-ec",
        Some("ES256"),
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    )
    .await;
}
