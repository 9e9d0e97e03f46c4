//! Proxy authentication: PGTs delivered to https callbacks (verified against a CA made for the
//! test), proxy tickets from `/proxy`, and proxy chains at `/proxyValidate`.

use reqwest::StatusCode;
use tessera_protocol::service::{LogoutType, ServicePattern};

use crate::support::receiver::between;
use crate::support::tls::{Callback, TestCa};
use crate::support::{enc, service, TestServer};

const PORTAL: &str = "https://portal.example.org/";
const BACKEND: &str = "https://backend.example.org/api";
const MAIL: &str = "imap://mail.example.org";

/// A server trusting `ca` for callbacks, with a portal allowed to proxy through `callbacks`, a
/// back end that accepts proxy tickets and may proxy too, and a mail service that accepts them.
async fn setup(ca: &TestCa, callbacks: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pem = ca.write_pem(dir.path());
    let server = TestServer::start_with(|s| s.proxy.ca_file = Some(pem)).await;
    let mut portal = service("portal", r"https://portal\.example\.org/.*", true);
    portal.proxy_callback = Some(ServicePattern::regex(callbacks).unwrap());
    let mut backend = service("backend", r"https://backend\.example\.org/.*", true);
    backend.proxy_target = true;
    backend.proxy_callback = Some(ServicePattern::regex(callbacks).unwrap());
    let mut mail = service("mail", r"imap://mail\.example\.org", false);
    mail.proxy_target = true;
    for mut s in [portal, backend, mail] {
        s.logout_type = LogoutType::None;
        server.store.put_service(&s).await.unwrap();
    }
    (server, dir)
}

fn failure_code(body: &str) -> String {
    between(body, "code=\"", "\"")
}

fn param(query: &[(String, String)], name: &str) -> String {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {query:?}"))
}

/// Validates a fresh portal ticket with `pgt_url`; returns the answer.
async fn validate_with_callback(server: &TestServer, pgt_url: &str) -> String {
    let ticket = server.browser().cas_login(PORTAL).await;
    server
        .validate(
            "/serviceValidate",
            &ticket,
            PORTAL,
            &format!("&pgtUrl={}", enc(pgt_url)),
        )
        .await
        .1
}

async fn proxy_ticket(server: &TestServer, pgt: &str, target: &str) -> String {
    let url = server.url(&format!("/proxy?pgt={pgt}&targetService={}", enc(target)));
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn a_pgt_is_delivered_before_the_answer_and_yields_proxy_tickets() {
    let ca = TestCa::new("proxy test CA");
    let callback = Callback::start(&ca).await;
    let (server, _dir) = setup(&ca, &format!("{}/pgt.*", regex::escape(&callback.url))).await;
    let pgt_url = format!("{}/pgt?app=portal", callback.url);
    let body = validate_with_callback(&server, &pgt_url).await;
    let iou = between(
        &body,
        "<cas:proxyGrantingTicket>",
        "</cas:proxyGrantingTicket>",
    );
    assert!(iou.starts_with("PGTIOU-") && iou.len() <= 64, "{body}");
    let called = callback
        .already_received()
        .await
        .expect("the callback ran before the answer was sent");
    assert_eq!(
        param(&called, "app"),
        "portal",
        "the callback's own query is kept"
    );
    assert_eq!(param(&called, "pgtIou"), iou);
    let pgt = param(&called, "pgtId");
    assert!(pgt.starts_with("PGT-") && pgt.len() <= 64, "{pgt}");

    // The PGT is reusable: one proxy ticket per back end.
    for _ in 0..2 {
        let answer = proxy_ticket(&server, &pgt, MAIL).await;
        let pt = between(&answer, "<cas:proxyTicket>", "</cas:proxyTicket>");
        assert!(pt.starts_with("PT-") && pt.len() <= 32, "{answer}");
        let (_, validated) = server.validate("/proxyValidate", &pt, MAIL, "").await;
        assert!(
            validated.contains("<cas:user>alice</cas:user>"),
            "{validated}"
        );
        assert!(validated.contains(&format!("<cas:proxies>\n            <cas:proxy>{pgt_url}</cas:proxy>\n        </cas:proxies>")), "{validated}");
        assert!(
            !validated.contains("<cas:mail>"),
            "the mail service releases nothing: {validated}"
        );
    }
}

#[tokio::test]
async fn service_validate_refuses_proxy_tickets() {
    let ca = TestCa::new("proxy test CA");
    let callback = Callback::start(&ca).await;
    let (server, _dir) = setup(&ca, &format!("{}/.*", regex::escape(&callback.url))).await;
    validate_with_callback(&server, &format!("{}/pgt", callback.url)).await;
    let pgt = param(&callback.next().await, "pgtId");
    let pt = between(
        &proxy_ticket(&server, &pgt, BACKEND).await,
        "<cas:proxyTicket>",
        "</cas:proxyTicket>",
    );
    for endpoint in ["/serviceValidate", "/p3/serviceValidate"] {
        let (_, body) = server.validate(endpoint, &pt, BACKEND, "").await;
        assert_eq!(failure_code(&body), "INVALID_TICKET_SPEC", "{endpoint}");
    }
    let (_, body) = server
        .validate("/p3/proxyValidate", &pt, BACKEND, "&format=JSON")
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["serviceResponse"]["authenticationSuccess"]["proxies"],
        serde_json::json!([format!("{}/pgt", callback.url)])
    );
}

#[tokio::test]
async fn a_two_hop_chain_lists_the_most_recent_proxy_first() {
    let ca = TestCa::new("proxy test CA");
    let callback = Callback::start(&ca).await;
    let (server, _dir) = setup(&ca, &format!("{}/.*", regex::escape(&callback.url))).await;
    let (first, second) = (
        format!("{}/portal-pgt", callback.url),
        format!("{}/backend//pgt", callback.url),
    );
    validate_with_callback(&server, &first).await;
    let pgt1 = param(&callback.next().await, "pgtId");
    let pt1 = between(
        &proxy_ticket(&server, &pgt1, BACKEND).await,
        "<cas:proxyTicket>",
        "</cas:proxyTicket>",
    );
    // The back end validates its proxy ticket and asks for a PGT of its own.
    let (_, body) = server
        .validate(
            "/proxyValidate",
            &pt1,
            BACKEND,
            &format!("&pgtUrl={}", enc(&second)),
        )
        .await;
    assert!(body.contains("<cas:proxyGrantingTicket>PGTIOU-"), "{body}");
    let pgt2 = param(&callback.next().await, "pgtId");
    let pt2 = between(
        &proxy_ticket(&server, &pgt2, MAIL).await,
        "<cas:proxyTicket>",
        "</cas:proxyTicket>",
    );
    let (_, body) = server.validate("/proxyValidate", &pt2, MAIL, "").await;
    assert!(
        body.contains(&format!(
            "<cas:proxy>{second}</cas:proxy>\n            <cas:proxy>{first}</cas:proxy>"
        )),
        "most recent first, URLs verbatim: {body}"
    );
}

#[tokio::test]
async fn a_callback_with_an_unknown_ca_gets_no_pgt() {
    let trusted = TestCa::new("trusted CA");
    let stranger = TestCa::new("unknown CA");
    let callback = Callback::start(&stranger).await;
    let (server, _dir) = setup(&trusted, &format!("{}/.*", regex::escape(&callback.url))).await;
    let body = validate_with_callback(&server, &format!("{}/pgt", callback.url)).await;
    assert!(
        body.contains("<cas:user>alice</cas:user>"),
        "the validation itself succeeds: {body}"
    );
    assert!(!body.contains("proxyGrantingTicket"), "{body}");
    assert!(
        callback.already_received().await.is_none(),
        "the TLS handshake failed: no request"
    );
}

#[tokio::test]
async fn a_callback_that_does_not_answer_200_gets_no_pgt() {
    let ca = TestCa::new("proxy test CA");
    let callback = Callback::start(&ca).await;
    callback.answer(404);
    let (server, _dir) = setup(&ca, &format!("{}/.*", regex::escape(&callback.url))).await;
    let body = validate_with_callback(&server, &format!("{}/pgt", callback.url)).await;
    assert!(
        body.contains("authenticationSuccess") && !body.contains("proxyGrantingTicket"),
        "{body}"
    );
    let pgt = param(&callback.next().await, "pgtId");
    assert_eq!(
        failure_code(&proxy_ticket(&server, &pgt, MAIL).await),
        "INVALID_TICKET",
        "the PGT was discarded"
    );
}

#[tokio::test]
async fn an_unreachable_callback_gets_no_pgt() {
    let ca = TestCa::new("proxy test CA");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let (server, _dir) = setup(&ca, r"https://127\.0\.0\.1:\d+/.*").await;
    let body = validate_with_callback(&server, &format!("https://{closed}/pgt")).await;
    assert!(
        body.contains("authenticationSuccess") && !body.contains("proxyGrantingTicket"),
        "{body}"
    );
}

#[tokio::test]
async fn callbacks_must_be_https_registered_and_allowed() {
    let ca = TestCa::new("proxy test CA");
    let (server, _dir) = setup(&ca, r"https://127\.0\.0\.1:\d+/pgt").await;
    for (pgt_url, code) in [
        ("http://127.0.0.1:1/pgt", "INVALID_PROXY_CALLBACK"),
        ("https://127.0.0.1:1/elsewhere", "INVALID_PROXY_CALLBACK"),
        ("https://evil.example.net/pgt", "INVALID_PROXY_CALLBACK"),
    ] {
        assert_eq!(
            failure_code(&validate_with_callback(&server, pgt_url).await),
            code,
            "{pgt_url}"
        );
    }
    let other = "https://other.example.org/";
    let ticket = server.browser().cas_login(other).await;
    let (_, body) = server
        .validate(
            "/serviceValidate",
            &ticket,
            other,
            "&pgtUrl=https%3A%2F%2F127.0.0.1%3A1%2Fpgt",
        )
        .await;
    assert_eq!(failure_code(&body), "UNAUTHORIZED_SERVICE_PROXY");
}

#[tokio::test]
async fn proxy_requests_are_checked() {
    let ca = TestCa::new("proxy test CA");
    let callback = Callback::start(&ca).await;
    let (server, _dir) = setup(&ca, &format!("{}/.*", regex::escape(&callback.url))).await;
    let browser = server.browser();
    let ticket = browser.cas_login(PORTAL).await;
    server
        .validate(
            "/serviceValidate",
            &ticket,
            PORTAL,
            &format!("&pgtUrl={}", enc(&format!("{}/pgt", callback.url))),
        )
        .await;
    let pgt = param(&callback.next().await, "pgtId");
    let get = |q: String| {
        let url = server.url(&format!("/proxy{q}"));
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(failure_code(&get(String::new()).await), "INVALID_REQUEST");
    assert_eq!(
        failure_code(&get(format!("?pgt={pgt}")).await),
        "INVALID_REQUEST"
    );
    assert_eq!(
        failure_code(&get(format!("?pgt=PGT-forged&targetService={}", enc(MAIL))).await),
        "INVALID_TICKET"
    );
    assert_eq!(
        failure_code(&get(format!("?pgt={pgt}&targetService={}", enc(PORTAL))).await),
        "UNAUTHORIZED_SERVICE",
        "not a proxy target"
    );
    assert_eq!(
        failure_code(
            &get(format!(
                "?pgt={pgt}&targetService={}",
                enc("https://unknown.example.net/")
            ))
            .await
        ),
        "UNAUTHORIZED_SERVICE"
    );
    let json = get(format!(
        "?pgt={pgt}&targetService={}&format=JSON",
        enc(MAIL)
    ))
    .await;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(json["serviceResponse"]["proxySuccess"]["proxyTicket"]
        .as_str()
        .unwrap()
        .starts_with("PT-"));
    // A PGT ends with its SSO session.
    assert_eq!(browser.get("/logout").await.status, StatusCode::OK);
    assert_eq!(
        failure_code(&get(format!("?pgt={pgt}&targetService={}", enc(MAIL))).await),
        "INVALID_TICKET"
    );
}
