//! `/logout`: the session ends on the server, the cookie is deleted, and the browser goes back only
//! to registered services.

use reqwest::StatusCode;

use crate::support::{enc, TestServer, SERVICE};

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let page = browser
        .log_in_as(Some(SERVICE), "alice", crate::support::PASSWORD, &[])
        .await;
    let cookie = page.set_cookies()[0].split(';').next().unwrap().to_owned();
    let out = browser.get("/logout").await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.body.contains("You are logged out"));
    assert_eq!(out.set_cookies(), ["TGC=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"]);
    // A copy of the old cookie is worthless: the session is gone server-side.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url(&format!("/login?service={}", enc(SERVICE))))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(server.store.list_sessions(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn logout_returns_only_to_registered_services() {
    let server = TestServer::start().await;
    let browser = server.browser();
    for param in ["service", "url"] {
        let page = browser
            .get(&format!(
                "/logout?{param}={}",
                enc("https://app.example.org/bye")
            ))
            .await;
        assert_eq!(page.status, StatusCode::FOUND, "{param}");
        assert_eq!(page.location(), "https://app.example.org/bye");
        let page = browser
            .get(&format!(
                "/logout?{param}={}",
                enc("https://evil.example.net/")
            ))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{param}: no open redirect");
        assert!(page.headers.get("location").is_none());
    }
    let page = browser
        .post("/logout", &[("service", "https://app.example.org/bye")])
        .await;
    assert_eq!(page.location(), "https://app.example.org/bye");
}

#[tokio::test]
async fn the_url_parameter_can_be_ignored() {
    let server = TestServer::start_with(|s| s.logout.follow_url_parameter = false).await;
    let page = server
        .browser()
        .get(&format!(
            "/logout?url={}",
            enc("https://app.example.org/bye")
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_without_a_session_still_answers() {
    let server = TestServer::start().await;
    let page = server.browser().get("/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You had no single sign-on session"));
}
