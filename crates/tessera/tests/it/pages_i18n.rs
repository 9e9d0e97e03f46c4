//! The pages that are not the login form, and the login form's "try again later", in the visitor's
//! language: the 404 page, the fault page, the OpenID Connect error page, and the answer when a
//! login source is down (the form again with 503, or a 503 for the REST API).

use std::time::Duration;

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION};
use reqwest::StatusCode;
use tessera::config::{AuthenticatorSettings, BuiltinSettings, LdapSettings, Secret};

use crate::oidc::{client_spec, register, CLIENT};
use crate::support::{enc, Page, TestServer, PASSWORD, SERVICE, USER};

/// GET `url` with no cookies and these extra headers.
async fn get(url: &str, headers: &[(reqwest::header::HeaderName, &str)]) -> Page {
    let mut request = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let r = request.send().await.unwrap();
    Page {
        status: r.status(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

#[tokio::test]
async fn the_404_page_follows_accept_language_the_parameter_and_the_cookie() {
    let server = TestServer::start().await;
    let fr = get(&server.url("/nope"), &[(ACCEPT_LANGUAGE, "fr")]).await;
    assert_eq!(fr.status, StatusCode::NOT_FOUND);
    assert!(fr.body.contains(r#"<html lang="fr">"#), "{}", fr.body);
    assert!(
        fr.body.contains("<h1>Page introuvable</h1>")
            && fr.body.contains("Il n’y a rien à cette adresse."),
        "{}",
        fr.body
    );
    assert!(!fr.body.contains("Not found"), "{}", fr.body);

    // Outside the CAS base path, and for an unknown static file, too.
    let de = get(
        &format!("{}/nowhere?lang=de", server.origin()),
        &[(ACCEPT_LANGUAGE, "fr")],
    )
    .await;
    assert_eq!(de.status, StatusCode::NOT_FOUND);
    assert!(
        de.body.contains(r#"<html lang="de">"#) && de.body.contains("Nicht gefunden"),
        "{}",
        de.body
    );
    let es = get(
        &server.url("/static/missing.css"),
        &[(COOKIE, "tessera_lang=es")],
    )
    .await;
    assert_eq!(es.status, StatusCode::NOT_FOUND);
    assert!(
        es.body.contains(r#"<html lang="es">"#) && es.body.contains("No encontrado"),
        "{}",
        es.body
    );
    let theme = get(
        &server.url("/static/themes/none/style.css"),
        &[(ACCEPT_LANGUAGE, "de-CH, fr;q=0.5")],
    )
    .await;
    assert_eq!(theme.status, StatusCode::NOT_FOUND);
    assert!(theme.body.contains(r#"<html lang="de">"#), "{}", theme.body);
    let en = get(&server.url("/nope"), &[]).await;
    assert!(
        en.body.contains(r#"<html lang="en">"#) && en.body.contains("Not found"),
        "{}",
        en.body
    );
}

#[tokio::test]
async fn the_fault_page_speaks_the_visitors_language_and_gives_the_reference() {
    // An operator's theme whose login page names a variable that does not exist: every login page
    // fails to render, which is our fault, not the visitor's.
    let theme = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(theme.path().join("templates")).unwrap();
    std::fs::write(
        theme.path().join("templates/login.html"),
        "{% extends \"base.html\" %}{% block title %}x{% endblock %}\
         {% block content %}{{ no_such_variable }}{% endblock %}",
    )
    .unwrap();
    let dir = theme.path().to_path_buf();
    let server = TestServer::start_with(move |s| s.theme.dir = Some(dir)).await;
    let login = server.url(&format!("/login?service={}", enc(SERVICE)));

    let fr = get(&login, &[(ACCEPT_LANGUAGE, "fr-FR, en;q=0.5")]).await;
    assert_eq!(fr.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(fr.headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(fr.body.contains(r#"<html lang="fr">"#), "{}", fr.body);
    assert!(
        fr.body.contains("<h1>Une erreur s’est produite</h1>")
            && fr.body.contains("Veuillez réessayer dans un instant."),
        "{}",
        fr.body
    );
    let reference = fr.headers["x-request-id"].to_str().unwrap();
    assert!(
        fr.body.contains(&format!(
            "Référence pour votre administrateur : <code>{reference}</code>"
        )),
        "{}",
        fr.body
    );
    assert!(
        !fr.body.contains("no_such_variable") && !fr.body.contains("login.html"),
        "the cause is for the log, not the page: {}",
        fr.body
    );
    // Security headers still apply to the fault page.
    assert_eq!(fr.headers["x-frame-options"], "DENY");

    let es = get(&format!("{login}&lang=es"), &[(ACCEPT_LANGUAGE, "fr")]).await;
    assert_eq!(es.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        es.body.contains(r#"<html lang="es">"#) && es.body.contains("Algo ha salido mal"),
        "{}",
        es.body
    );
    let en = get(&login, &[]).await;
    assert!(
        en.body.contains(r#"<html lang="en">"#) && en.body.contains("Something went wrong"),
        "{}",
        en.body
    );
}

#[tokio::test]
async fn the_oidc_error_page_for_an_unregistered_redirect_uri_speaks_german() {
    let server = TestServer::start().await;
    register(&server, client_spec(CLIENT)).await;
    let evil = "https://evil.example.net/callback?x=<1>";
    let query = |extra: &str| {
        format!(
            "{}/oidc/authorize?response_type=code&client_id={CLIENT}&redirect_uri={}&scope=openid&state=s{extra}",
            server.origin(),
            enc(evil)
        )
    };
    let de = get(
        &query(""),
        &[(ACCEPT_LANGUAGE, "de-DE, de;q=0.9, en;q=0.5")],
    )
    .await;
    assert_eq!(de.status, StatusCode::BAD_REQUEST);
    assert!(de.headers.get(LOCATION).is_none(), "never a redirect");
    assert!(de.body.contains(r#"<html lang="de">"#), "{}", de.body);
    assert!(
        de.body.contains("<h1>Ungültige Rückleitungsadresse</h1>"),
        "{}",
        de.body
    );
    assert!(
        de.body.contains(
            "Die Anwendung <strong>Relying Party webapp</strong> möchte Sie zu \
             <code>https://evil.example.net/callback?x=&lt;1&gt;</code> zurückschicken"
        ),
        "{}",
        de.body
    );
    // The OAuth error code, for the application's developer, stays as it is.
    assert!(
        de.body
            .contains("Technisches Detail: <code>invalid_request (redirect_uri)</code>"),
        "{}",
        de.body
    );
    assert!(!de.body.contains("<1>"), "{}", de.body);

    // ui_locales, sent by the application, wins over Accept-Language.
    let es = get(&query("&ui_locales=es-MX"), &[(ACCEPT_LANGUAGE, "de")]).await;
    assert_eq!(es.status, StatusCode::BAD_REQUEST);
    assert!(
        es.body.contains(r#"<html lang="es">"#)
            && es.body.contains("Dirección de retorno no válida"),
        "{}",
        es.body
    );
    // An unknown application, in French.
    let unknown = get(
        &format!(
            "{}/oidc/authorize?response_type=code&client_id=nobody&redirect_uri={}&scope=openid",
            server.origin(),
            enc(evil)
        ),
        &[(ACCEPT_LANGUAGE, "fr")],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown.body.contains("<h1>Application inconnue</h1>")
            && unknown
                .body
                .contains("L’application <strong>nobody</strong> n’est pas enregistrée"),
        "{}",
        unknown.body
    );
}

/// A directory on a port nothing listens on, after the built-in users: users the built-in source
/// knows log in; anyone else would need the directory.
fn builtin_then_directory_down() -> Vec<AuthenticatorSettings> {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let ldap = LdapSettings {
        name: Some("directory".into()),
        url: format!("ldap://127.0.0.1:{closed}"),
        bind_dn: Some("cn=tessera,dc=example,dc=org".into()),
        bind_password: Some(Secret::new("tessera-service")),
        base_dn: Some("ou=people,dc=example,dc=org".into()),
        timeout: Duration::from_secs(2),
        ..LdapSettings::default()
    };
    vec![
        AuthenticatorSettings::Builtin(BuiltinSettings::default()),
        AuthenticatorSettings::Ldap(Box::new(ldap)),
    ]
}

#[tokio::test]
async fn a_login_source_that_is_down_shows_the_form_again_with_503_and_changes_no_session() {
    let chain = builtin_then_directory_down();
    let server = TestServer::start_with(move |s| s.authenticators = chain).await;
    let browser = server.browser();
    let chosen = browser.get("/login?lang=fr").await;
    assert!(chosen.body.contains(r#"<html lang="fr">"#));
    // A session first, from the built-in users.
    browser.cas_login(SERVICE).await;
    let before = server.store.list_sessions(None).await.unwrap();
    assert_eq!(before.len(), 1);

    // Logging in again as bob, who is not a built-in user: the directory would decide, and it
    // cannot be reached.
    let form = browser
        .get(&format!("/login?service={}&renew=true", enc(SERVICE)))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let lt = form.input("lt").unwrap();
    let page = browser
        .post(
            "/login",
            &[
                ("username", "bob"),
                ("password", "bob-password"),
                ("lt", &lt),
                ("service", SERVICE),
                ("renew", "true"),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "La connexion est momentanément indisponible : votre mot de passe n’a pas pu être \
             vérifié. Veuillez réessayer dans quelques minutes."
        ),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(r#"name="username" id="username" value="bob""#),
        "the username is kept: {}",
        page.body
    );
    assert!(!page.body.contains("bob-password"), "{}", page.body);
    assert!(!page.body.contains("127.0.0.1"), "{}", page.body);
    assert!(
        !page.body.contains("Identifiant ou mot de passe incorrect."),
        "not a wrong password: {}",
        page.body
    );
    assert_eq!(page.input("service").as_deref(), Some(SERVICE));
    assert!(
        page.input("lt").is_some_and(|t| t != lt),
        "a fresh form token"
    );
    assert!(page.set_cookies().is_empty(), "{:?}", page.set_cookies());
    // No session started or ended, no failure counted: the browser's session still works.
    let after = server.store.list_sessions(None).await.unwrap();
    assert_eq!(
        after.iter().map(|s| &s.id).collect::<Vec<_>>(),
        before.iter().map(|s| &s.id).collect::<Vec<_>>()
    );
    let key = tessera::auth::throttle::user_key("bob");
    assert!(server
        .store
        .get_login_failures(&key)
        .await
        .unwrap()
        .is_none());
    browser.login_page(Some(SERVICE)).await.ticket();

    // In English for a browser that asks for nothing.
    let other = server.browser();
    let english = other
        .log_in_as(Some(SERVICE), "bob", "bob-password", &[])
        .await;
    assert_eq!(english.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        english
            .body
            .contains("Logging in is temporarily unavailable"),
        "{}",
        english.body
    );

    // A built-in user's wrong password is still the usual answer, and the right one works.
    let wrong = other.log_in_as(Some(SERVICE), USER, "wrong", &[]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Invalid username or password."));
    let ticket = other
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[])
        .await
        .ticket();
    let (status, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");
}

#[tokio::test]
async fn the_rest_api_answers_503_while_a_login_source_is_down() {
    let chain = builtin_then_directory_down();
    let server = TestServer::start_with(move |s| s.authenticators = chain).await;
    let client = reqwest::Client::new();
    let post = |username: &'static str, password: &'static str| {
        client
            .post(server.url("/v1/tickets"))
            .form(&[("username", username), ("password", password)])
            .send()
    };
    let down = post("bob", "bob-password").await.unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    let text = down.text().await.unwrap();
    assert_eq!(
        text,
        "login is temporarily unavailable; try again in a few minutes"
    );
    assert!(server.store.list_sessions(None).await.unwrap().is_empty());
    let key = tessera::auth::throttle::user_key("bob");
    assert!(server
        .store
        .get_login_failures(&key)
        .await
        .unwrap()
        .is_none());
    let ok = post(USER, PASSWORD).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
}
