//! Single logout: every application a session entered is told when the session ends (logout,
//! timeout, revocation), once, with its own ticket, without the user waiting, across restarts.

use std::time::Duration;

use reqwest::StatusCode;
use tessera::config::Settings;
use tessera_protocol::service::LogoutType;

use crate::support::receiver::{between, eventually, Behaviour, Receiver};
use crate::support::{enc, service, Browser, Page, TestServer, PASSWORD, USER};

/// A server that checks its delivery queue often, so tests wait little.
async fn server_with(configure: impl FnOnce(&mut Settings)) -> TestServer {
    TestServer::start_with(|s| {
        s.slo.poll_interval = Duration::from_millis(50);
        configure(s);
    })
    .await
}

/// Registers `name` for every URL under `{receiver}/{name}/`.
async fn register(
    server: &TestServer,
    receiver: &Receiver,
    name: &str,
    logout_type: LogoutType,
) -> String {
    let pattern = format!("{}/{name}/.*", regex::escape(&receiver.url));
    let mut s = service(name, &pattern, true);
    s.logout_type = logout_type;
    server.store.put_service(&s).await.unwrap();
    format!("{}/{name}/", receiver.url)
}

/// Logs in to (or, with a session, enters) `service` and has the service validate its ticket.
async fn enter(server: &TestServer, browser: &Browser, service: &str) -> String {
    let page = browser
        .get(&format!("/login?service={}", enc(service)))
        .await;
    let ticket = if page.status == StatusCode::OK {
        browser.cas_login(service).await
    } else {
        page.ticket()
    };
    let (_, body) = server
        .validate("/serviceValidate", &ticket, service, "")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    ticket
}

async fn queue_is_empty(server: &TestServer) -> bool {
    server.store.list_slo_deliveries().await.unwrap().is_empty()
}

#[tokio::test]
async fn each_application_gets_one_logout_request_with_its_own_ticket() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let one = format!(
        "{}?next=%2Fadmin%2F",
        register(&server, &receiver, "one", LogoutType::BackChannel).await
    );
    let two = register(&server, &receiver, "two", LogoutType::BackChannel).await;
    let browser = server.browser();
    let ticket_one = enter(&server, &browser, &one).await;
    let ticket_two = enter(&server, &browser, &two).await;
    // A ticket that was never validated: that application has no session to end.
    browser
        .get(&format!(
            "/login?service={}",
            enc(&format!("{}/two/never", receiver.url))
        ))
        .await
        .ticket();

    let page = browser.get("/logout").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("<li>one</li>") && page.body.contains("<li>two</li>"),
        "{}",
        page.body
    );

    let mut got = [receiver.next().await, receiver.next().await];
    got.sort_by(|a, b| a.uri.cmp(&b.uri));
    for (received, (path, ticket)) in got.iter().zip([
        ("/one/?next=%2Fadmin%2F", &ticket_one),
        ("/two/", &ticket_two),
    ]) {
        assert_eq!(received.method, "POST");
        assert_eq!(
            received.uri, path,
            "posted to the service URL as given at login"
        );
        assert_eq!(
            received.content_type,
            "application/x-www-form-urlencoded; charset=UTF-8"
        );
        let xml = received.logout_request();
        assert!(xml.starts_with("<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"LR-"), "{xml}");
        assert!(!xml.contains("<?xml") && !xml.contains('\n'), "{xml}");
        assert!(xml.contains("<saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">alice</saml:NameID>"), "{xml}");
        assert_eq!(&received.session_index(), ticket);
        let instant = between(&xml, "IssueInstant=\"", "\"");
        assert_eq!(instant, "2026-01-01T00:00:00Z");
    }
    eventually("the queue is empty", || queue_is_empty(&server)).await;
    assert!(
        receiver.pending().await.is_empty(),
        "exactly one request per application"
    );
}

#[tokio::test]
async fn only_the_latest_ticket_of_a_service_url_is_notified() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let browser = server.browser();
    enter(&server, &browser, &app).await;
    let latest = enter(&server, &browser, &app).await;
    browser.get("/logout").await;
    assert_eq!(receiver.next().await.session_index(), latest);
    eventually("the queue is empty", || queue_is_empty(&server)).await;
    assert!(receiver.pending().await.is_empty());
}

#[tokio::test]
async fn ten_applications_in_one_session_are_all_notified() {
    let receiver = Receiver::start().await;
    let server = server_with(|s| s.slo.max_parallel = 3).await;
    let browser = server.browser();
    let mut expected = Vec::new();
    for i in 0..10 {
        let url = register(
            &server,
            &receiver,
            &format!("app{i}"),
            LogoutType::BackChannel,
        )
        .await;
        expected.push(enter(&server, &browser, &url).await);
    }
    browser.get("/logout").await;
    let mut got = Vec::new();
    for _ in 0..10 {
        got.push(receiver.next().await.session_index());
    }
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_hanging_application_does_not_hold_up_the_logout() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Hang);
    // The request would wait an hour: if logout waited for it, this test would never end.
    let server = server_with(|s| s.slo.timeout = Duration::from_secs(3600)).await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let browser = server.browser();
    enter(&server, &browser, &app).await;
    let page = tokio::time::timeout(Duration::from_secs(60), browser.get("/logout"))
        .await
        .expect("logout answers");
    assert_eq!(page.status, StatusCode::OK);
    receiver.next().await;
    // Other logins and logouts go on while the request hangs.
    let other = server.browser();
    enter(&server, &other, &app).await;
    assert_eq!(other.get("/logout").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_failing_application_is_retried_until_it_answers() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Answer(503));
    let server = server_with(|_| {}).await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let browser = server.browser();
    let ticket = enter(&server, &browser, &app).await;
    browser.get("/logout").await;
    assert_eq!(receiver.next().await.session_index(), ticket);
    eventually("the failure is recorded", || async {
        let queue = server.store.list_slo_deliveries().await.unwrap();
        queue.len() == 1 && queue[0].last_error.as_deref() == Some("HTTP 503")
    })
    .await;
    receiver.set(Behaviour::Answer(302));
    server.advance(Duration::from_secs(1));
    assert_eq!(
        receiver.next().await.session_index(),
        ticket,
        "retried after the first backoff"
    );
    eventually("the queue is empty", || queue_is_empty(&server)).await;
}

#[tokio::test]
async fn an_unreachable_application_is_given_up_after_the_retry_period() {
    let server = server_with(|s| s.slo.retry_for = Duration::from_secs(60)).await;
    // A port nobody listens on: bind one, then close it.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut s = service(
        "dead",
        &format!(r"http://127\.0\.0\.1:{}/.*", dead.port()),
        true,
    );
    s.logout_type = LogoutType::BackChannel;
    server.store.put_service(&s).await.unwrap();
    let browser = server.browser();
    enter(
        &server,
        &browser,
        &format!("http://127.0.0.1:{}/app", dead.port()),
    )
    .await;
    browser.get("/logout").await;
    eventually("the failure is recorded", || async {
        let queue = server.store.list_slo_deliveries().await.unwrap();
        queue.len() == 1
            && queue[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("could not connect: "))
    })
    .await;
    server.advance(Duration::from_secs(61));
    eventually("the delivery is abandoned", || queue_is_empty(&server)).await;
}

#[tokio::test]
async fn pending_logout_requests_survive_a_restart() {
    let receiver = Receiver::start().await;
    receiver.set(Behaviour::Answer(500));
    let mut server = server_with(|_| {}).await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let browser = server.browser();
    let ticket = enter(&server, &browser, &app).await;
    browser.get("/logout").await;
    receiver.next().await;
    eventually("the failure is recorded", || async {
        server
            .store
            .list_slo_deliveries()
            .await
            .unwrap()
            .first()
            .is_some_and(|d| d.last_error.is_some())
    })
    .await;
    server.restart().await;
    receiver.set(Behaviour::Answer(200));
    server.advance(Duration::from_secs(1));
    assert_eq!(receiver.next().await.session_index(), ticket);
    eventually("the queue is empty", || queue_is_empty(&server)).await;
}

#[tokio::test]
async fn front_channel_services_are_logged_out_by_the_browser() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let app = register(&server, &receiver, "front", LogoutType::FrontChannel).await;
    let browser = server.browser();
    let ticket = enter(&server, &browser, &app).await;
    let page = browser
        .get(&format!(
            "/logout?service={}",
            enc("https://app.example.org/bye")
        ))
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the page must load the frames, so no redirect"
    );
    let src = between(&page.body, "<iframe class=\"slo\" src=\"", "\"").replace("&amp;", "&");
    assert!(src.starts_with(&format!("{app}?SAMLRequest=")), "{src}");
    assert!(
        page.body.contains("href=\"https://app.example.org/bye\""),
        "a link continues to the service"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("frame-src {}", receiver.url)),
        "{csp}"
    );
    // The browser, not Tessera, calls the service; the request carries this session's ticket.
    let loaded = reqwest::get(&src).await.unwrap();
    assert_eq!(loaded.status(), StatusCode::OK);
    let received = receiver.next().await;
    assert_eq!(received.method, "GET");
    eventually("the queue is empty", || queue_is_empty(&server)).await;
    assert!(
        receiver.pending().await.is_empty(),
        "no back-channel request as well"
    );
    assert_eq!(
        format!("{}{}", receiver.url, received.uri),
        src,
        "the frame loads the logout URL"
    );
    assert!(!ticket.is_empty());
}

#[tokio::test]
async fn services_that_opted_out_are_not_told() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let quiet = register(&server, &receiver, "quiet", LogoutType::None).await;
    let told = register(&server, &receiver, "told", LogoutType::BackChannel).await;
    let browser = server.browser();
    enter(&server, &browser, &quiet).await;
    let ticket = enter(&server, &browser, &told).await;
    let page = browser.get("/logout").await;
    assert!(!page.body.contains("<li>quiet</li>") && page.body.contains("<li>told</li>"));
    assert_eq!(receiver.next().await.session_index(), ticket);
    eventually("the queue is empty", || queue_is_empty(&server)).await;
    assert!(receiver.pending().await.is_empty());
}

#[tokio::test]
async fn a_session_that_times_out_is_logged_out_everywhere() {
    let receiver = Receiver::start().await;
    let server = server_with(|s| {
        s.session.idle_timeout = Duration::from_secs(600);
        s.session.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let ticket = enter(&server, &server.browser(), &app).await;
    server.advance(Duration::from_secs(600));
    assert_eq!(receiver.next().await.session_index(), ticket);
}

#[tokio::test]
async fn a_revoked_session_is_logged_out_everywhere() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let browser = server.browser();
    let ticket = enter(&server, &browser, &app).await;
    let id = server.store.list_sessions(Some("alice")).await.unwrap()[0]
        .id
        .clone();
    let config = server.config_file();
    // Async, so this test's runtime keeps serving the receiver while the CLI delivers.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["session", "revoke", id.as_str(), "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout} {stderr}");
    assert!(
        stdout.contains("revoked") && stdout.contains("1 delivered"),
        "{stdout} {stderr}"
    );
    assert_eq!(receiver.next().await.session_index(), ticket);
    let page = browser.get(&format!("/login?service={}", enc(&app))).await;
    assert_eq!(page.status, StatusCode::OK, "the browser's session is gone");
}

#[tokio::test]
async fn logout_can_send_the_browser_to_the_login_page() {
    let server = server_with(|s| s.logout.redirect_to_login = true).await;
    let page = server.browser().get("/logout").await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.location(), "/cas/login");
}

/// Shows `service`'s login form even though the browser has a session (`renew=true`), and
/// submits it with `username`'s password. Returns the POST's response.
async fn log_in_again(browser: &Browser, service: &str, username: &str) -> Page {
    let form = browser
        .get(&format!("/login?service={}&renew=true", enc(service)))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let lt = form.input("lt").unwrap();
    browser
        .post(
            "/login",
            &[
                ("username", username),
                ("password", PASSWORD),
                ("lt", &lt),
                ("service", service),
                ("renew", "true"),
            ],
        )
        .await
}

/// The value of the TGC cookie a response sets.
fn tgc(page: &Page) -> String {
    let cookies = page.set_cookies();
    let set = cookies
        .iter()
        .find(|c| c.starts_with("TGC="))
        .unwrap_or_else(|| panic!("no TGC cookie set: {cookies:?}"));
    set["TGC=".len()..].split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_login_asked_for_again_keeps_the_applications_logged_in() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let one = register(&server, &receiver, "one", LogoutType::BackChannel).await;
    let two = register(&server, &receiver, "two", LogoutType::BackChannel).await;
    let browser = server.browser();
    let first = browser.log_in_as(Some(&one), USER, PASSWORD, &[]).await;
    let first_tgc = tgc(&first);
    let ticket_one = first.ticket();
    let (_, body) = server
        .validate("/serviceValidate", &ticket_one, &one, "")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    let before = server.store.list_sessions(Some(USER)).await.unwrap();
    assert_eq!(before.len(), 1);

    // `two` asks for the password again (renew): the same user gives it.
    server.advance(Duration::from_secs(60));
    let again = log_in_again(&browser, &two, USER).await;
    let second_tgc = tgc(&again);
    let ticket_two = again.ticket();
    assert!(
        queue_is_empty(&server).await,
        "no application is logged out: {:?}",
        server.store.list_slo_deliveries().await.unwrap()
    );
    let after = server.store.list_sessions(Some(USER)).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id, "the same session, renewed");
    assert_eq!(
        after[0].authenticated_at,
        before[0].authenticated_at.plus(Duration::from_secs(60)),
        "logged in again"
    );
    assert_ne!(second_tgc, first_tgc, "a new ticket-granting ticket");
    assert_ne!(after[0].tgt, before[0].tgt);
    let (_, body) = server
        .validate("/serviceValidate", &ticket_two, &two, "&renew=true")
        .await;
    assert!(
        body.contains("authenticationSuccess"),
        "the ticket comes from a new login: {body}"
    );

    // The old cookie no longer names a session; the new one enters `one` without a password.
    let old = server
        .browser()
        .client
        .get(format!("{}/login?service={}", server.base, enc(&one)))
        .header("cookie", format!("TGC={first_tgc}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::OK, "the login form");
    browser
        .get(&format!("/login?service={}", enc(&one)))
        .await
        .ticket();

    // Logging out tells both applications, `one` with the ticket it validated before the renewal.
    browser.get("/logout").await;
    let mut got = [receiver.next().await, receiver.next().await];
    got.sort_by(|a, b| a.uri.cmp(&b.uri));
    assert_eq!(got[0].session_index(), ticket_one);
    assert_eq!(got[1].session_index(), ticket_two);
}

#[tokio::test]
async fn another_users_login_ends_the_browsers_session_everywhere() {
    let receiver = Receiver::start().await;
    let server = server_with(|_| {}).await;
    let app = register(&server, &receiver, "svc", LogoutType::BackChannel).await;
    let mut bob = server.store.get_user(USER).await.unwrap().unwrap();
    bob.username = "bob".into();
    let now = tessera::clock::Clock::now(server.clock.as_ref());
    server.store.put_user(&bob, now).await.unwrap();
    let browser = server.browser();
    let ticket = enter(&server, &browser, &app).await;

    log_in_again(&browser, &app, "bob").await.ticket();
    assert_eq!(receiver.next().await.session_index(), ticket);
    assert!(server
        .store
        .list_sessions(Some(USER))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        server.store.list_sessions(Some("bob")).await.unwrap().len(),
        1
    );
}
