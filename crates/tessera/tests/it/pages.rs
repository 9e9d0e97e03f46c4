//! What every response carries, static assets, unknown paths and oversized requests.

use reqwest::StatusCode;

use crate::support::{enc, TestServer, SERVICE};

#[tokio::test]
async fn pages_carry_security_headers() {
    let server = TestServer::start().await;
    let page = server.browser().login_page(Some(SERVICE)).await;
    for (name, value) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.headers[name], value, "{name}");
    }
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.headers.contains_key("x-request-id"));
    assert!(
        !page.body.contains("<script"),
        "pages work without JavaScript"
    );
}

/// A proxy's request id is kept and echoed, so the proxy's log and Tessera's tie up; one that
/// could pass for something else in a log line is replaced by a fresh id.
#[tokio::test]
async fn a_request_id_from_a_proxy_is_echoed_if_it_looks_like_one() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let answered_id = |sent: String| {
        let request = browser.client.get(format!("{}/login", server.base));
        async move {
            let response = request.header("x-request-id", sent).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    let uuid = "0b6f8a3e-5c1d-4e7a-9f2b-3c4d5e6f7a8b";
    assert_eq!(answered_id(uuid.into()).await, uuid);
    for forged in ["a b".to_owned(), "id\"=1".to_owned(), "x".repeat(65)] {
        let id = answered_id(forged.clone()).await;
        assert_ne!(id, forged);
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{id}"
        );
    }
    let own = browser.get("/login").await.headers["x-request-id"].clone();
    let again = browser.get("/login").await.headers["x-request-id"].clone();
    assert_ne!(own, again, "each request gets its own id");
}

#[tokio::test]
async fn the_stylesheet_is_served_and_cacheable() {
    let server = TestServer::start().await;
    let page = server.browser().get("/static/style.css").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "public, max-age=3600");
    assert_eq!(
        server.browser().get("/static/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_paths_get_a_404_page() {
    let server = TestServer::start().await;
    let page = server.browser().get("/nope").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Not found"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_nothing_breaks() {
    let server = TestServer::start().await;
    let big = "x".repeat(70 * 1024);
    let page = server
        .browser()
        .post(
            "/login",
            &[("username", "alice"), ("password", big.as_str())],
        )
        .await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.browser().cas_login(SERVICE).await;
}

#[tokio::test]
async fn pages_follow_accept_language_and_the_lang_parameter_sticks_in_a_cookie() {
    let server = TestServer::start().await;
    let url = server.url(&format!("/login?service={}", enc(SERVICE)));
    let get = |accept: &'static str, cookie: Option<String>| {
        let url = url.clone();
        async move {
            let mut request = reqwest::Client::new()
                .get(url)
                .header("accept-language", accept);
            if let Some(c) = cookie {
                request = request.header("cookie", c);
            }
            let r = request.send().await.unwrap();
            let cookies: Vec<String> = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
            (r.text().await.unwrap(), cookies)
        }
    };
    let (de, _) = get("it, de-AT;q=0.9, en;q=0.5", None).await;
    assert!(
        de.contains(r#"<html lang="de">"#) && de.contains("Passwort"),
        "{de}"
    );
    let (en, _) = get("ja", None).await;
    assert!(en.contains(r#"<html lang="en">"#), "{en}");

    let chosen = server
        .browser()
        .get(&format!("/login?service={}&lang=es", enc(SERVICE)))
        .await;
    assert!(chosen.body.contains(r#"<html lang="es">"#));
    let cookie = chosen
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("tessera_lang=es;"))
        .expect("the chosen language is remembered");
    assert!(
        cookie.contains("Path=/") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let (es, again) = get("de", Some("tessera_lang=es".into())).await;
    assert!(
        es.contains(r#"<html lang="es">"#),
        "the cookie beats Accept-Language"
    );
    assert!(again.iter().all(|c| !c.starts_with("tessera_lang")));
    // The switcher keeps the service and replaces the language.
    assert!(
        es.contains(&format!(
            r#"href="/cas/login?service={}&amp;lang=fr""#,
            enc(SERVICE)
        )),
        "{es}"
    );
}

#[tokio::test]
async fn failed_logins_answer_alike_for_unknown_users_in_every_language() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let wrong = browser
        .log_in_as(Some(SERVICE), "alice", "wrong", &[])
        .await;
    let unknown = browser
        .log_in_as(Some(SERVICE), "nobody-here", "wrong", &[])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    let message = |body: &str| {
        let start = body.find(r#"<div class="error""#).unwrap();
        body[start..start + body[start..].find("</div>").unwrap()].to_owned()
    };
    assert_eq!(message(&wrong.body), message(&unknown.body));
    assert!(wrong.body.contains("Invalid username or password."));
    assert!(
        !wrong.body.contains("wrong"),
        "the password is never echoed"
    );

    let french = server.browser();
    french.get("/login?lang=fr").await;
    let page = french.log_in_as(Some(SERVICE), "alice", "wrong", &[]).await;
    assert!(
        page.body.contains("Identifiant ou mot de passe incorrect."),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_theme_overrides_the_logo_and_a_service_theme_gets_its_own_assets() {
    let theme = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(theme.path().join("static")).unwrap();
    std::fs::create_dir_all(theme.path().join("themes/campus/static")).unwrap();
    std::fs::write(theme.path().join("static/logo.svg"), "<svg id=\"uni\"/>").unwrap();
    std::fs::write(
        theme.path().join("themes/campus/static/style.css"),
        "body{}",
    )
    .unwrap();
    let dir = theme.path().to_path_buf();
    let server = TestServer::start_with(move |s| {
        s.theme.dir = Some(dir);
        s.login.password_reset_url = Some("https://id.example.org/reset".parse().unwrap());
    })
    .await;
    let mut campus = crate::support::service("campus", r"https://campus\.example\.org/.*", true);
    campus.theme = Some("campus".into());
    campus.description = Some("Course <materials>".into());
    server.store.put_service(&campus).await.unwrap();
    let browser = server.browser();

    let logo = browser.get("/static/logo.svg").await;
    assert_eq!(logo.headers["content-type"], "image/svg+xml");
    assert_eq!(logo.body, "<svg id=\"uni\"/>");
    let page = browser
        .login_page(Some("https://campus.example.org/"))
        .await;
    assert!(
        page.body
            .contains(r#"href="/cas/static/themes/campus/style.css""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Course &lt;materials&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"href="https://id.example.org/reset""#));
    let css = browser.get("/static/themes/campus/style.css").await;
    assert_eq!((css.status, css.body.as_str()), (StatusCode::OK, "body{}"));
    let logo = browser.get("/static/themes/campus/logo.svg").await;
    assert_eq!(
        logo.body, "<svg id=\"uni\"/>",
        "the theme's logo, under the service theme"
    );
    for missing in [
        "/static/themes/nope/style.css",
        "/static/themes/campus/x.css",
    ] {
        assert_eq!(browser.get(missing).await.status, StatusCode::NOT_FOUND);
    }
    let other = browser.login_page(Some(SERVICE)).await;
    assert!(other.body.contains(r#"href="/cas/static/style.css""#));
}
