//! `/login`: the form, password logins, single sign-on, `renew`, `gateway`, `warn`, the one-time
//! form token, throttling and session timeouts.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{enc, Browser, Page, TestServer, OTHER_SERVICE, PASSWORD, SERVICE, USER};

fn login_path(service: &str, extra: &str) -> String {
    format!("/login?service={}{extra}", enc(service))
}

#[tokio::test]
async fn the_login_form_is_one_form_with_named_inputs() {
    let server = TestServer::start().await;
    let page = server.browser().login_page(Some(SERVICE)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.body.matches("<form").count(), 1);
    for needle in [
        r#"<form method="post" action="/cas/login">"#,
        r#"name="username" id="username""#,
        r#"name="password" id="password""#,
    ] {
        assert!(page.body.contains(needle), "missing {needle}");
    }
    assert!(page.input("lt").unwrap().starts_with("LT-"));
    assert_eq!(page.input("service").as_deref(), Some(SERVICE));
    assert!(page.body.contains("app"), "the form names the service");
}

#[tokio::test]
async fn a_password_login_redirects_with_a_ticket_and_sets_the_cookie() {
    let server = TestServer::start().await;
    let page = server
        .browser()
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[])
        .await;
    assert_eq!(page.status, StatusCode::FOUND);
    let location = page.location();
    assert!(
        location.starts_with(&format!("{SERVICE}&ticket=ST-")),
        "{location}"
    );
    let cookies = page.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let tgc = &cookies[0];
    assert!(tgc.starts_with("TGC=TGT-"), "{tgc}");
    for flag in ["Path=/;", "HttpOnly", "SameSite=Lax"] {
        assert!(tgc.contains(flag), "{tgc}");
    }
    assert!(
        !tgc.contains("Secure") && !tgc.contains("Max-Age"),
        "plain http, session cookie: {tgc}"
    );
    assert_eq!(page.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_ticket_goes_last_and_before_the_fragment() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    for (service, expected_prefix) in [
        (
            "https://other.example.org/",
            "https://other.example.org/?ticket=ST-",
        ),
        (
            "https://other.example.org/a?b=c#frag",
            "https://other.example.org/a?b=c&ticket=ST-",
        ),
        (
            "https://other.example.org/p?x=%2F&y=a+b",
            "https://other.example.org/p?x=%2F&y=a+b&ticket=ST-",
        ),
    ] {
        let page = browser.get(&login_path(service, "")).await;
        let location = page.location();
        assert!(location.starts_with(expected_prefix), "{location}");
        if service.contains('#') {
            assert!(location.ends_with("#frag"), "{location}");
        }
    }
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_401_and_no_hint() {
    let server = TestServer::start().await;
    let wrong = server
        .browser()
        .log_in_as(Some(SERVICE), USER, "wrong", &[])
        .await;
    let unknown = server
        .browser()
        .log_in_as(Some(SERVICE), "nobody", "wrong", &[])
        .await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("Invalid username or password."),
            "{}",
            page.body
        );
        assert!(page.set_cookies().is_empty());
        assert!(page.input("lt").is_some(), "the form is shown again");
    }
    assert_eq!(wrong.input("username").as_deref(), Some(USER));
}

#[tokio::test]
async fn single_sign_on_enters_a_second_service_without_a_password() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    let page = browser.get(&login_path(OTHER_SERVICE, "")).await;
    assert!(page
        .location()
        .starts_with("https://other.example.org/?ticket=ST-"));
}

#[tokio::test]
async fn renew_asks_for_the_password_even_with_a_session() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    let page = browser.get(&login_path(SERVICE, "&renew=true")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.input("renew").as_deref(), Some("true"));
    let page = browser
        .get(&login_path(SERVICE, "&renew=true&gateway=true"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "renew wins over gateway");
}

#[tokio::test]
async fn gateway_without_a_session_returns_to_the_service_without_a_ticket() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let page = browser.get(&login_path(SERVICE, "&gateway=true")).await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.location(), SERVICE);
    browser.cas_login(SERVICE).await;
    let page = browser
        .get(&login_path(OTHER_SERVICE, "&gateway=true"))
        .await;
    page.ticket();
    let page = server
        .browser()
        .get(&login_path("https://evil.example.net/", "&gateway=true"))
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "gateway never redirects to unregistered services"
    );
}

#[tokio::test]
async fn flags_set_to_false_are_not_set() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[("warn", "False")])
        .await
        .ticket();
    browser
        .get(&login_path(OTHER_SERVICE, "&renew=False&gateway=false"))
        .await
        .ticket();
}

#[tokio::test]
async fn a_service_removed_or_changed_after_a_login_gets_no_more_tickets() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    // The session enters again: decided with the registry as compiled for the first login.
    let again = browser.get(&login_path(SERVICE, "")).await;
    assert_eq!(again.status, StatusCode::FOUND);
    assert!(
        again.location().contains("ticket=ST-"),
        "{}",
        again.location()
    );

    // Changed (single sign-on turned off): the form, not a ticket.
    let services = server.store.list_services().await.unwrap();
    let mut app = services.into_iter().find(|s| s.name == "app").unwrap();
    app.sso = false;
    server.store.delete_service("app").await.unwrap();
    server.store.put_service(&app).await.unwrap();
    let page = browser.get(&login_path(SERVICE, "")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get("location").is_none());

    // Removed: refused, and nothing issued.
    assert!(server.store.delete_service("app").await.unwrap());
    let page = browser.get(&login_path(SERVICE, "")).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("Application not authorized"));
    assert!(page.headers.get("location").is_none());
}

#[tokio::test]
async fn unregistered_or_tricky_services_get_an_error_page_and_no_ticket() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    for service in [
        "https://evil.example.net/",
        "https://app.example.org@evil.example.net/",
        "https://app.example.org.evil.example.net/",
        "javascript:alert(1)//https://app.example.org/",
        "https://app.example.org/\r\nSet-Cookie: x=1",
        "//evil.example.net/",
    ] {
        let page = browser.get(&login_path(service, "")).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{service}");
        assert!(
            page.body.contains("Application not authorized"),
            "{service}"
        );
        assert!(page.headers.get("location").is_none(), "{service}");
    }
    let page = browser
        .post(
            "/login",
            &[
                ("username", USER),
                ("password", PASSWORD),
                ("service", "https://evil.example.net/"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_a_service_the_user_is_told_they_are_logged_in() {
    let server = TestServer::start().await;
    let browser = server.browser();
    assert_eq!(browser.login_page(None).await.status, StatusCode::OK);
    let page = browser.log_in_as(None, USER, PASSWORD, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are logged in"), "{}", page.body);
    let again = browser.get("/login").await;
    assert!(again.body.contains("You are logged in") && again.body.contains("alice"));
}

#[tokio::test]
async fn the_base_path_itself_is_the_login_page() {
    let server = TestServer::start().await;
    let browser = server.browser();
    for path in ["", "/"] {
        let page = browser
            .get(&format!("{path}?service={}", enc(SERVICE)))
            .await;
        assert_eq!(page.status, StatusCode::FOUND);
        assert_eq!(
            page.location(),
            format!("/cas/login?service={}", enc(SERVICE))
        );
    }
}

#[tokio::test]
async fn a_login_form_token_works_once() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let form = browser.login_page(Some(SERVICE)).await;
    let lt = form.input("lt").unwrap();
    let fields = [
        ("username", USER),
        ("password", PASSWORD),
        ("lt", lt.as_str()),
        ("service", SERVICE),
    ];
    browser.post("/login", &fields).await.ticket();
    let replay = server.browser().post("/login", &fields).await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN);
    assert!(replay.set_cookies().is_empty());
    let forged = server
        .browser()
        .post(
            "/login",
            &[
                ("username", USER),
                ("password", PASSWORD),
                ("lt", "LT-forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_form_token_expires() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let lt = browser.login_page(Some(SERVICE)).await.input("lt").unwrap();
    server.advance(Duration::from_secs(30 * 60));
    let page = browser
        .post(
            "/login",
            &[
                ("username", USER),
                ("password", PASSWORD),
                ("lt", lt.as_str()),
                ("service", SERVICE),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn scripts_may_post_credentials_directly_but_cross_site_browsers_may_not() {
    let server = TestServer::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = server.url(&format!("/login?service={}", enc(SERVICE)));
    let fields = [
        ("username", USER),
        ("password", PASSWORD),
        ("service", SERVICE),
        ("warn", "False"),
        ("remember", "False"),
    ];
    // pycas-sso: no GET first, no cookie, no token.
    let r = client.post(&url).form(&fields).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .contains("ticket=ST-"));
    for (name, value) in [
        ("origin", "https://evil.example.net"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = client
            .post(&url)
            .header(name, value)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    let strict = TestServer::start_with(|s| s.login.allow_direct_post = false).await;
    let r = client
        .post(strict.url(&format!("/login?service={}", enc(SERVICE))))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn missing_credentials_are_asked_for_again() {
    let server = TestServer::start().await;
    let page = server
        .browser()
        .log_in_as(Some(SERVICE), USER, "", &[])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Enter your username and password."));
}

#[tokio::test]
async fn warn_asks_before_entering_a_service_with_the_session() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[("warn", "true")])
        .await
        .ticket();
    let page = browser.get(&login_path(OTHER_SERVICE, "")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Continue to other?"), "{}", page.body);
    let lt = page.input("lt").unwrap();
    let next = browser
        .post(
            "/login",
            &[
                ("lt", lt.as_str()),
                ("service", OTHER_SERVICE),
                ("continue", "true"),
            ],
        )
        .await;
    assert!(next.ticket().starts_with("ST-"));
    // Continuing needs the session: another browser gets the form.
    let lt = browser
        .get(&login_path(OTHER_SERVICE, ""))
        .await
        .input("lt")
        .unwrap();
    let stranger = server
        .browser()
        .post(
            "/login",
            &[
                ("lt", lt.as_str()),
                ("service", OTHER_SERVICE),
                ("continue", "true"),
            ],
        )
        .await;
    assert_eq!(stranger.status, StatusCode::OK);
    assert!(stranger.body.contains("name=\"password\""));
}

#[tokio::test]
async fn repeated_failures_lock_the_user_even_against_the_right_password() {
    let server = TestServer::start().await;
    // The name in any case counts for the user: a login source may ignore case (MySQL's usual
    // collation, LDAP), and variations must not multiply the attempts allowed.
    for (i, name) in ["alice", "Alice", "ALICE", "aLiCe", "alicE"]
        .into_iter()
        .enumerate()
    {
        let page = server
            .browser()
            .log_in_as(Some(SERVICE), name, "wrong", &[])
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        if i < 4 {
            // Past the growing delays, but not past the lockout.
            server.advance(Duration::from_secs(2));
        }
    }
    let locked = server
        .browser()
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[])
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked
            .body
            .contains("Too many failed attempts. Please wait 5 minutes"),
        "{}",
        locked.body
    );
    assert!(locked.set_cookies().is_empty());
    server.advance(Duration::from_secs(5 * 60));
    server
        .browser()
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[])
        .await
        .ticket();
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let server = TestServer::start().await;
    for _ in 0..2 {
        for _ in 0..4 {
            server.browser().log_in_as(None, USER, "wrong", &[]).await;
            server.advance(Duration::from_secs(2));
        }
        server.browser().cas_login(SERVICE).await;
    }
}

#[tokio::test]
async fn failures_make_the_next_attempt_wait_longer_and_longer() {
    let server = TestServer::start().await;
    let attempt = |password: &'static str| {
        let browser = server.browser();
        async move { browser.log_in_as(None, USER, password, &[]).await }
    };
    // Two typos cost nothing.
    for _ in 0..2 {
        assert_eq!(attempt("wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    // The third failure makes the next attempt wait a second, even with the right password.
    assert_eq!(attempt("wrong").await.status, StatusCode::UNAUTHORIZED);
    let early = attempt(PASSWORD).await;
    assert_eq!(early.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        early.body.contains("Please wait 1 second and try again."),
        "{}",
        early.body
    );
    server.advance(Duration::from_millis(999));
    assert_eq!(
        attempt(PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.advance(Duration::from_millis(1));
    // The fourth failure doubles the wait.
    assert_eq!(attempt("wrong").await.status, StatusCode::UNAUTHORIZED);
    let early = attempt(PASSWORD).await;
    assert!(
        early.body.contains("Please wait 2 seconds"),
        "{}",
        early.body
    );
    server.advance(Duration::from_secs(2));
    assert_eq!(attempt(PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_idle_session_ends_and_its_cookie_is_cleared() {
    let server =
        TestServer::start_with(|s| s.session.idle_timeout = Duration::from_secs(600)).await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    server.advance(Duration::from_secs(599));
    browser.get(&login_path(OTHER_SERVICE, "")).await.ticket();
    server.advance(Duration::from_secs(599));
    browser.get(&login_path(OTHER_SERVICE, "")).await.ticket();
    server.advance(Duration::from_secs(600));
    let page = browser.get(&login_path(OTHER_SERVICE, "")).await;
    assert_eq!(page.status, StatusCode::OK, "the form again");
    assert!(page
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("TGC=;") && c.contains("Max-Age=0")));
}

#[tokio::test]
async fn a_busy_session_still_ends_at_its_hard_timeout() {
    let server = TestServer::start_with(|s| {
        s.session.idle_timeout = Duration::from_secs(600);
        s.session.hard_timeout = Duration::from_secs(1500);
    })
    .await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    for _ in 0..2 {
        server.advance(Duration::from_secs(500));
        browser.get(&login_path(OTHER_SERVICE, "")).await.ticket();
    }
    server.advance(Duration::from_secs(500));
    assert_eq!(
        browser.get(&login_path(OTHER_SERVICE, "")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn remember_me_gives_a_persistent_cookie_and_a_long_term_session() {
    let server = TestServer::start_with(|s| s.session.remember_me = true).await;
    let browser = server.browser();
    assert!(browser
        .login_page(Some(SERVICE))
        .await
        .body
        .contains("rememberMe"));
    let page = browser
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[("rememberMe", "true")])
        .await;
    assert!(
        page.set_cookies()[0].contains("Max-Age=1209600"),
        "{:?}",
        page.set_cookies()
    );
    let ticket = page.ticket();
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert!(body.contains("<cas:longTermAuthenticationRequestTokenUsed>true</cas:longTermAuthenticationRequestTokenUsed>"), "{body}");
    server.advance(Duration::from_secs(9 * 3600));
    browser.get(&login_path(OTHER_SERVICE, "")).await.ticket();
}

#[tokio::test]
async fn a_forged_cookie_is_no_session() {
    let server = TestServer::start().await;
    let browser: Browser = server.browser();
    let url = server.url(&login_path(SERVICE, ""));
    for value in ["TGT-forged1234567890", "garbage", ""] {
        let r = browser
            .client
            .get(&url)
            .header("cookie", format!("TGC={value}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{value}");
    }
}

#[tokio::test]
async fn a_service_without_single_sign_on_always_asks_for_the_password() {
    let server = TestServer::start().await;
    let mut no_sso = crate::support::service("nosso", r"https://nosso\.example\.org/.*", true);
    no_sso.sso = false;
    server.store.put_service(&no_sso).await.unwrap();
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    let page = browser
        .get(&login_path("https://nosso.example.org/", ""))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.input("lt").is_some());
}

/// The `action` of the page's form, unescaped.
fn form_action(page: &Page) -> String {
    let re = regex::Regex::new(r#"<form method="post" action="([^"]*)""#).unwrap();
    let action = re
        .captures(&page.body)
        .unwrap_or_else(|| panic!("no form: {}", page.body))[1]
        .replace("&amp;", "&");
    action
}

/// A `method=POST` answer: a page whose form posts the ticket to `service`. Returns the ticket.
fn posted_ticket(page: &Page, service: &str) -> String {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.headers.get("location").is_none());
    assert_eq!(
        form_action(page),
        service,
        "posted to the service URL as given"
    );
    assert_eq!(
        page.headers.get("cache-control").unwrap(),
        "no-store",
        "the page holds a ticket"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.body.contains("form_post.js"), "{}", page.body);
    page.input("ticket").expect("a ticket field")
}

#[tokio::test]
async fn method_post_hands_the_ticket_over_in_a_form() {
    let server = TestServer::start().await;
    let browser = server.browser();
    // The form carries the method in its action, so any theme's form does.
    let form = browser.get(&login_path(SERVICE, "&method=POST")).await;
    let action = form_action(&form);
    assert!(action.ends_with("/login?method=POST"), "{action}");
    let lt = form.input("lt").unwrap();
    let page = browser
        .post(
            "/login?method=POST",
            &[
                ("username", USER),
                ("password", PASSWORD),
                ("lt", &lt),
                ("service", SERVICE),
                ("warn", "true"),
            ],
        )
        .await;
    let ticket = posted_ticket(&page, SERVICE);
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "&renew=true")
        .await;
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");

    // With the session (which asks before entering, warn): the confirmation carries the method.
    let warn = browser
        .get(&login_path(OTHER_SERVICE, "&method=post"))
        .await;
    assert!(warn.body.contains("Continue to other?"), "{}", warn.body);
    assert!(form_action(&warn).ends_with("/login?method=POST"));
    let lt = warn.input("lt").unwrap();
    let page = browser
        .post(
            "/login?method=POST",
            &[
                ("lt", &lt),
                ("service", OTHER_SERVICE),
                ("continue", "true"),
            ],
        )
        .await;
    let ticket = posted_ticket(&page, OTHER_SERVICE);
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, OTHER_SERVICE, "")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");

    // GET, the optional HEADER and anything else redirect.
    let plain = server.browser();
    plain.cas_login(SERVICE).await;
    for method in ["GET", "HEADER", "PUT"] {
        plain
            .get(&login_path(OTHER_SERVICE, &format!("&method={method}")))
            .await
            .ticket();
    }
    // A session entering a service without a warning answers POST with the form too.
    let page = plain.get(&login_path(OTHER_SERVICE, "&method=POST")).await;
    posted_ticket(&page, OTHER_SERVICE);
}
