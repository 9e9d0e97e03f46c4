//! What every response carries, static assets, unknown paths and oversized requests.

use reqwest::StatusCode;

use crate::support::{TestServer, SERVICE};

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
