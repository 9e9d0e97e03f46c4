//! The REST ticket API, `/v1/tickets`: ticket-granting tickets for a password, service tickets
//! from them, status and deletion, every refusal, throttling shared with the login form, expiry,
//! and switching the API off.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use tessera_protocol::service::Requirement;

use crate::support::{enc, service, Page, TestServer, OTHER_SERVICE, PASSWORD, SERVICE, USER};

/// A script talking to the REST API: no cookies, no redirects.
struct Rest {
    client: reqwest::Client,
    base: String,
}

impl Rest {
    fn new(server: &TestServer) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
        }
    }

    async fn send(&self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(form) = form {
            request = request.form(form);
        }
        read(request.send().await.unwrap()).await
    }

    /// `POST /v1/tickets` with these form fields.
    async fn post_credentials(&self, fields: &[(&str, &str)]) -> Page {
        self.send(Method::POST, "/v1/tickets", Some(fields)).await
    }

    /// Logs in as `username` and returns the response.
    async fn log_in_as(&self, username: &str, password: &str) -> Page {
        self.post_credentials(&[("username", username), ("password", password)])
            .await
    }

    /// Logs in as alice and returns the TGT's URL.
    async fn tgt_url(&self) -> String {
        let page = self.log_in_as(USER, PASSWORD).await;
        assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
        page.location().to_owned()
    }

    /// `POST {tgt_url}` with these form fields.
    async fn request_ticket(&self, tgt_url: &str, fields: &[(&str, &str)]) -> Page {
        read(self.client.post(tgt_url).form(fields).send().await.unwrap()).await
    }

    /// A service ticket for `service` from the TGT at `tgt_url`.
    async fn service_ticket(&self, tgt_url: &str, service: &str) -> String {
        let page = self.request_ticket(tgt_url, &[("service", service)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.body
    }

    async fn check(&self, tgt_url: &str) -> Page {
        read(self.client.get(tgt_url).send().await.unwrap()).await
    }

    async fn delete(&self, tgt_url: &str) -> Page {
        read(self.client.delete(tgt_url).send().await.unwrap()).await
    }
}

async fn read(r: reqwest::Response) -> Page {
    let status = r.status();
    let headers = r.headers().clone();
    Page {
        status,
        headers,
        body: r.text().await.unwrap(),
    }
}

fn is_success(body: &str) -> bool {
    body.contains("<cas:authenticationSuccess>") && body.contains("<cas:user>alice</cas:user>")
}

#[tokio::test]
async fn a_script_gets_a_tgt_then_a_service_ticket_that_validates() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let page = rest.log_in_as(USER, PASSWORD).await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    let location = page.location().to_owned();
    let prefix = format!("{}/v1/tickets/TGT-", server.base);
    assert!(location.starts_with(&prefix), "{location}");
    assert_eq!(page.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "no-store");
    assert!(page.set_cookies().is_empty(), "REST sets no cookie");
    assert_eq!(
        page.body,
        format!(
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\"><html><head><title>201 CREATED</title></head>\
<body><h1>TGT Created</h1><form action=\"{location}\" method=\"POST\">Service:<input type=\"text\" name=\"service\" value=\"\">\
<br><input type=\"submit\" value=\"Submit\"></form></body></html>"
        )
    );

    let ticket = rest
        .request_ticket(&location, &[("service", SERVICE)])
        .await;
    assert_eq!(ticket.status, StatusCode::OK);
    assert_eq!(ticket.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(ticket.headers["cache-control"], "no-store");
    let st = ticket.body;
    assert!(
        st.starts_with("ST-") && st.len() <= 32 && !st.contains(char::is_whitespace),
        "the body is the ticket alone: {st:?}"
    );
    let (status, body) = server.validate("/serviceValidate", &st, SERVICE, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(is_success(&body), "{body}");
    assert!(
        body.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "{body}"
    );

    // One TGT serves several services; each ticket validates on its own.
    let other = rest.service_ticket(&location, OTHER_SERVICE).await;
    let (_, body) = server
        .validate("/p3/serviceValidate", &other, OTHER_SERVICE, "")
        .await;
    assert!(is_success(&body), "{body}");
    assert_eq!(
        server.store.list_sessions(Some(USER)).await.unwrap().len(),
        1,
        "a REST TGT is an ordinary SSO session"
    );
}

#[tokio::test]
async fn json_clients_get_the_bare_tgt() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let r = rest
        .client
        .post(server.url("/v1/tickets"))
        .header(ACCEPT, "application/json")
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let page = read(r).await;
    assert_eq!(page.status, StatusCode::CREATED);
    assert!(page.body.starts_with("TGT-"), "{}", page.body);
    assert_eq!(
        page.location(),
        format!("{}/v1/tickets/{}", server.base, page.body)
    );
}

#[tokio::test]
async fn bad_or_missing_credentials_and_other_media_types_are_refused() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    for (username, password) in [(USER, "wrong"), ("nobody", "wrong")] {
        let page = rest.log_in_as(username, password).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{username}");
        assert_eq!(page.body, "invalid username or password");
        assert!(page.headers.get("location").is_none());
    }
    for fields in [
        &[("username", USER)][..],
        &[("password", PASSWORD)][..],
        &[("username", ""), ("password", PASSWORD)][..],
        &[][..],
    ] {
        let page = rest.post_credentials(fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(page.body.starts_with("missing parameter"), "{}", page.body);
    }
    let json = rest
        .client
        .post(server.url("/v1/tickets"))
        .header(CONTENT_TYPE, "application/json")
        .body(format!(
            r#"{{"username":"{USER}","password":"{PASSWORD}"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Extra fields are allowed; a charset parameter too.
    let page = read(
        rest.client
            .post(server.url("/v1/tickets"))
            .header(
                CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(format!(
                "username={USER}&password={}&extra=1",
                enc(PASSWORD)
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::CREATED, "{}", page.body);
    assert!(server.store.list_sessions(Some(USER)).await.unwrap().len() == 1);
}

#[tokio::test]
async fn browsers_posting_from_another_site_are_refused() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let r = rest
        .client
        .post(server.url("/v1/tickets"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", USER), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_service_given_with_the_credentials_is_checked() {
    let server = TestServer::start().await;
    let mut strict = service("strict", r"https://strict\.example\.org/.*", true);
    strict.requirements = vec![Requirement::parse("eduPersonAffiliation=faculty").unwrap()];
    server.store.put_service(&strict).await.unwrap();
    let rest = Rest::new(&server);
    let with = |service| {
        [
            ("username", USER),
            ("password", PASSWORD),
            ("service", service),
        ]
    };
    let page = rest.post_credentials(&with(SERVICE)).await;
    assert_eq!(page.status, StatusCode::CREATED);
    for (service, needle) in [
        ("https://evil.example.net/", "not authorized"),
        ("not a url", "not authorized"),
        ("https://strict.example.org/", "access denied"),
    ] {
        let page = rest.post_credentials(&with(service)).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{service}");
        assert!(page.body.contains(needle), "{}", page.body);
    }
    assert_eq!(
        server.store.list_sessions(Some(USER)).await.unwrap().len(),
        1,
        "a refused service starts no session"
    );
}

#[tokio::test]
async fn service_ticket_requests_are_refused_with_the_right_status() {
    let server = TestServer::start().await;
    let mut strict = service("strict", r"https://strict\.example\.org/.*", true);
    strict.requirements = vec![Requirement::parse("eduPersonAffiliation=faculty").unwrap()];
    server.store.put_service(&strict).await.unwrap();
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;

    let page = rest.request_ticket(&tgt_url, &[]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let page = rest.request_ticket(&tgt_url, &[("service", "")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    for service in ["https://evil.example.net/", "javascript:alert(1)"] {
        let page = rest.request_ticket(&tgt_url, &[("service", service)]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{service}");
        assert_eq!(page.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert!(page.body.contains("not authorized"), "{}", page.body);
    }
    let page = rest
        .request_ticket(&tgt_url, &[("service", "https://strict.example.org/")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("access denied"), "{}", page.body);

    let forged = format!("{}/v1/tickets/TGT-{}", server.base, "x".repeat(48));
    for path in [forged.as_str(), &format!("{}/v1/tickets/ST-1", server.base)] {
        let page = rest.request_ticket(path, &[("service", SERVICE)]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(rest.check(path).await.status, StatusCode::NOT_FOUND);
        assert_eq!(rest.delete(path).await.status, StatusCode::NOT_FOUND);
    }
    // The live TGT still works after all that.
    rest.service_ticket(&tgt_url, SERVICE).await;
}

#[tokio::test]
async fn the_service_may_be_given_in_the_query_string() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    let r = rest
        .client
        .post(format!("{tgt_url}?service={}", enc(SERVICE)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let st = r.text().await.unwrap();
    let (_, body) = server.validate("/serviceValidate", &st, SERVICE, "").await;
    assert!(is_success(&body), "{body}");
}

#[tokio::test]
async fn renew_checks_the_password_again_and_gives_a_ticket_from_a_new_login() {
    let server = TestServer::start().await;
    let mut no_sso = service("nosso", r"https://nosso\.example\.org/.*", true);
    no_sso.sso = false;
    server.store.put_service(&no_sso).await.unwrap();
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;

    let page = rest
        .request_ticket(&tgt_url, &[("service", "https://nosso.example.org/")])
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "no single sign-on: {}",
        page.body
    );
    assert!(page.body.contains("renew=true"), "{}", page.body);

    let renew = |password| {
        [
            ("service", "https://nosso.example.org/"),
            ("renew", "true"),
            ("username", USER),
            ("password", password),
        ]
    };
    let page = rest.request_ticket(&tgt_url, &renew("wrong")).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let page = rest
        .request_ticket(&tgt_url, &[("service", SERVICE), ("renew", "true")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);

    let page = rest.request_ticket(&tgt_url, &renew(PASSWORD)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (_, body) = server
        .validate(
            "/serviceValidate",
            &page.body,
            "https://nosso.example.org/",
            "&renew=true",
        )
        .await;
    assert!(is_success(&body), "{body}");

    // Without renew, a ticket is from single sign-on and fails renew validation.
    let st = rest.service_ticket(&tgt_url, SERVICE).await;
    let (_, body) = server
        .validate("/serviceValidate", &st, SERVICE, "&renew=true")
        .await;
    assert!(body.contains("INVALID_TICKET_SPEC"), "{body}");
}

#[tokio::test]
async fn renew_with_another_users_credentials_is_refused() {
    let server = TestServer::start().await;
    let hasher = tessera::auth::local::PasswordHasher::new(&tessera::config::PasswordSettings {
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        ..Default::default()
    })
    .unwrap();
    let hash = hasher
        .hash(&tessera::auth::Password::new("bob's password".into()))
        .await
        .unwrap();
    server
        .store
        .put_user(
            &tessera_store::UserRecord {
                username: "bob".into(),
                password_hash: hash,
                attributes: Default::default(),
            },
            tessera::clock::Clock::now(server.clock.as_ref()),
        )
        .await
        .unwrap();
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    let page = rest
        .request_ticket(
            &tgt_url,
            &[
                ("service", SERVICE),
                ("renew", "true"),
                ("username", "bob"),
                ("password", "bob's password"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
}

#[tokio::test]
async fn get_tells_whether_the_tgt_is_live_and_delete_ends_the_session() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    let tgt = tgt_url.rsplit('/').next().unwrap().to_owned();

    let page = rest.check(&tgt_url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["cache-control"], "no-store");

    let unvalidated = rest.service_ticket(&tgt_url, SERVICE).await;
    let page = rest.delete(&tgt_url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body, tgt);
    assert_eq!(page.headers["cache-control"], "no-store");

    assert_eq!(rest.check(&tgt_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rest.delete(&tgt_url).await.status, StatusCode::NOT_FOUND);
    let page = rest.request_ticket(&tgt_url, &[("service", SERVICE)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let (_, body) = server
        .validate("/serviceValidate", &unvalidated, SERVICE, "")
        .await;
    assert!(
        body.contains("INVALID_TICKET"),
        "a ticket of an ended session no longer validates: {body}"
    );
    assert!(server
        .store
        .list_sessions(Some(USER))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_browser_session_can_be_used_and_ended_by_its_tgt() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let page = browser.log_in_as(None, USER, PASSWORD, &[]).await;
    let cookie = page.set_cookies().remove(0);
    let tgt = cookie
        .strip_prefix("TGC=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let rest = Rest::new(&server);
    let tgt_url = server.url(&format!("/v1/tickets/{tgt}"));
    let st = rest.service_ticket(&tgt_url, SERVICE).await;
    let (_, body) = server.validate("/serviceValidate", &st, SERVICE, "").await;
    assert!(is_success(&body), "{body}");
    assert_eq!(rest.delete(&tgt_url).await.status, StatusCode::OK);
    let page = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await;
    assert_eq!(page.status, StatusCode::OK, "the browser is logged out");
}

#[tokio::test]
async fn an_idle_tgt_expires_and_ticket_requests_keep_it_alive() {
    let server =
        TestServer::start_with(|s| s.session.idle_timeout = Duration::from_secs(600)).await;
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    server.advance(Duration::from_secs(599));
    rest.service_ticket(&tgt_url, SERVICE).await;
    server.advance(Duration::from_secs(599));
    assert_eq!(
        rest.check(&tgt_url).await.status,
        StatusCode::OK,
        "issuing a ticket slid the idle window"
    );
    server.advance(Duration::from_secs(1));
    assert_eq!(
        rest.check(&tgt_url).await.status,
        StatusCode::NOT_FOUND,
        "checking is not using"
    );
    let page = rest.request_ticket(&tgt_url, &[("service", SERVICE)]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(rest.delete(&tgt_url).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tgt_ends_at_the_hard_timeout() {
    let server = TestServer::start_with(|s| {
        s.session.idle_timeout = Duration::from_secs(600);
        s.session.hard_timeout = Duration::from_secs(1000);
    })
    .await;
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    server.advance(Duration::from_secs(500));
    rest.service_ticket(&tgt_url, SERVICE).await;
    server.advance(Duration::from_secs(500));
    assert_eq!(rest.check(&tgt_url).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn repeated_failures_lock_rest_logins_even_with_the_right_password() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    for i in 0..5 {
        let page = rest.log_in_as(USER, "wrong").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        if i < 4 {
            server.advance(Duration::from_secs(2));
        }
    }
    let page = rest.log_in_as(USER, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(page.headers["retry-after"], "300");
    assert!(
        page.body.contains("too many failed attempts"),
        "{}",
        page.body
    );
    assert!(page.headers.get("location").is_none());
    assert!(server
        .store
        .list_sessions(Some(USER))
        .await
        .unwrap()
        .is_empty());

    // The same lock holds on the login form: the keys are shared.
    let form = server
        .browser()
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[])
        .await;
    assert_eq!(form.status, StatusCode::TOO_MANY_REQUESTS);

    server.advance(Duration::from_secs(5 * 60));
    rest.tgt_url().await;
}

#[tokio::test]
async fn failures_on_the_login_form_lock_rest_logins_too() {
    let server = TestServer::start().await;
    for _ in 0..3 {
        server.browser().log_in_as(None, USER, "wrong", &[]).await;
        server.advance(Duration::from_secs(2));
    }
    let rest = Rest::new(&server);
    for _ in 0..2 {
        let page = rest.log_in_as(USER, "wrong").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        server.advance(Duration::from_secs(2));
    }
    let page = rest.log_in_as(USER, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn renew_attempts_count_against_the_throttle() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    let renew = |password| {
        [
            ("service", SERVICE),
            ("renew", "true"),
            ("username", USER),
            ("password", password),
        ]
    };
    for _ in 0..5 {
        let page = rest.request_ticket(&tgt_url, &renew("wrong")).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        server.advance(Duration::from_secs(2));
    }
    let page = rest.request_ticket(&tgt_url, &renew(PASSWORD)).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_success_resets_the_users_failure_count() {
    let server = TestServer::start().await;
    let rest = Rest::new(&server);
    for _ in 0..2 {
        for _ in 0..4 {
            rest.log_in_as(USER, "wrong").await;
            server.advance(Duration::from_secs(2));
        }
        rest.tgt_url().await;
    }
}

#[tokio::test]
async fn with_the_api_disabled_the_routes_are_not_found() {
    let server = TestServer::start_with(|s| s.rest.enabled = false).await;
    let rest = Rest::new(&server);
    assert_eq!(
        rest.log_in_as(USER, PASSWORD).await.status,
        StatusCode::NOT_FOUND
    );
    let tgt_url = server.url("/v1/tickets/TGT-abc");
    assert_eq!(rest.check(&tgt_url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(rest.delete(&tgt_url).await.status, StatusCode::NOT_FOUND);
    assert!(server
        .store
        .list_sessions(Some(USER))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_api_follows_the_base_path() {
    let server = TestServer::start_with(|s| s.server.base_path = String::new()).await;
    let rest = Rest::new(&server);
    let tgt_url = rest.tgt_url().await;
    assert!(
        tgt_url.starts_with(&format!("{}/v1/tickets/TGT-", server.base)),
        "{tgt_url}"
    );
    rest.service_ticket(&tgt_url, SERVICE).await;
}
