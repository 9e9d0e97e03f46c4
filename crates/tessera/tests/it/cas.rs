//! Validation endpoints: `/validate`, `/serviceValidate`, `/proxyValidate` and `/p3/*`, every error
//! code, single use, expiry with a moved clock, and attribute release.

use std::time::Duration;

use reqwest::StatusCode;
use tessera_protocol::service::{AttributeRelease, AttributeRule, Requirement};

use crate::support::{enc, service, TestServer, OTHER_SERVICE, SERVICE};

fn failure_code(body: &str) -> &str {
    let start = body
        .find("<cas:authenticationFailure code=\"")
        .unwrap_or_else(|| panic!("not a failure: {body}"));
    let rest = &body[start + 33..];
    &rest[..rest.find('"').unwrap()]
}

#[tokio::test]
async fn a_service_ticket_validates_only_once() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let (status, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");
    let (status, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "failures are answers, not HTTP errors"
    );
    assert_eq!(failure_code(&body), "INVALID_TICKET");
}

#[tokio::test]
async fn cas2_and_cas3_release_attributes_with_protocol_attributes() {
    let server = TestServer::start().await;
    for endpoint in [
        "/serviceValidate",
        "/p3/serviceValidate",
        "/proxyValidate",
        "/p3/proxyValidate",
    ] {
        let ticket = server.browser().cas_login(SERVICE).await;
        let (_, body) = server.validate(endpoint, &ticket, SERVICE, "").await;
        for needle in [
            "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">",
            "<cas:authenticationSuccess>",
            "<cas:user>alice</cas:user>",
            "<cas:eduPersonAffiliation>staff</cas:eduPersonAffiliation>",
            "<cas:eduPersonAffiliation>member</cas:eduPersonAffiliation>",
            "<cas:displayName>Alice &lt;Example&gt; &amp; Co</cas:displayName>",
            "<cas:isFromNewLogin>true</cas:isFromNewLogin>",
            "<cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>",
            "<cas:authenticationDate>2026-01-01T00:00:00Z</cas:authenticationDate>",
        ] {
            assert!(body.contains(needle), "{endpoint}: missing {needle} in {body}");
        }
    }
}

#[tokio::test]
async fn cas1_validate_answers_yes_and_the_user_or_no() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let url = server.url(&format!(
        "/validate?ticket={ticket}&service={}",
        enc(SERVICE)
    ));
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "yes\nalice\n");
    assert_eq!(
        reqwest::get(&url).await.unwrap().text().await.unwrap(),
        "no\n"
    );
    for query in [
        "",
        "?ticket=ST-1",
        "?service=x",
        "?ticket=PT-abc&service=x",
        "?ticket=garbage&service=x",
    ] {
        let (_, body) = (
            0,
            reqwest::get(server.url(&format!("/validate{query}")))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        assert_eq!(body, "no\n", "{query}");
    }
}

#[tokio::test]
async fn json_format_answers_success_and_failure() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "&format=JSON")
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let success = &json["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["user"], "alice");
    assert_eq!(
        success["attributes"]["eduPersonAffiliation"],
        serde_json::json!(["staff", "member"])
    );
    assert_eq!(
        success["attributes"]["isFromNewLogin"],
        serde_json::json!([true])
    );
    let (_, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "&format=json")
        .await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json["serviceResponse"]["authenticationFailure"]["code"],
        "INVALID_TICKET"
    );
}

#[tokio::test]
async fn an_unsupported_format_is_an_invalid_request_in_xml() {
    let server = TestServer::start().await;
    let (status, body) = server
        .validate("/serviceValidate", "ST-abc", SERVICE, "&format=YAML")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failure_code(&body), "INVALID_REQUEST");
}

#[tokio::test]
async fn every_request_error_gets_its_code() {
    let server = TestServer::start().await;
    let get = |q: String| {
        let url = server.url(&format!("/serviceValidate{q}"));
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(failure_code(&get(String::new()).await), "INVALID_REQUEST");
    assert_eq!(
        failure_code(&get("?ticket=ST-abc".into()).await),
        "INVALID_REQUEST"
    );
    assert_eq!(
        failure_code(&get(format!("?service={}", enc(SERVICE))).await),
        "INVALID_REQUEST"
    );
    assert_eq!(
        failure_code(&get(format!("?ticket=&service={}", enc(SERVICE))).await),
        "INVALID_REQUEST"
    );
    assert_eq!(
        failure_code(&get(format!("?ticket=PT-abc&service={}", enc(SERVICE))).await),
        "INVALID_TICKET_SPEC"
    );
    assert_eq!(
        failure_code(&get(format!("?ticket=TGT-abc&service={}", enc(SERVICE))).await),
        "INVALID_TICKET"
    );
    assert_eq!(
        failure_code(
            &get(format!(
                "?ticket=ST-forged0123456789abcdefghijklm&service={}",
                enc(SERVICE)
            ))
            .await
        ),
        "INVALID_TICKET"
    );
    assert_eq!(
        failure_code(&get(format!("?ticket=%3Cscript%3E&service={}", enc(SERVICE))).await),
        "INVALID_TICKET"
    );
}

#[tokio::test]
async fn a_ticket_for_another_service_fails_and_is_burnt() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let (_, body) = server
        .validate("/serviceValidate", &ticket, OTHER_SERVICE, "")
        .await;
    assert_eq!(failure_code(&body), "INVALID_SERVICE");
    let (_, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(
        failure_code(&body),
        "INVALID_TICKET",
        "any validation attempt consumes the ticket"
    );
}

#[tokio::test]
async fn the_presented_service_matches_after_decoding_and_case_folding() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let (_, body) = server
        .validate(
            "/serviceValidate",
            &ticket,
            "https://APP.example.org/login?next=%2fprofile",
            "",
        )
        .await;
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");
}

#[tokio::test]
async fn a_ticket_expires_after_its_lifetime() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let late = browser.cas_login(SERVICE).await;
    let in_time = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await
        .ticket();
    server.advance(Duration::from_secs(59));
    let (_, body) = server
        .validate("/serviceValidate", &in_time, SERVICE, "")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    server.advance(Duration::from_secs(1));
    let (_, body) = server
        .validate("/serviceValidate", &late, SERVICE, "")
        .await;
    assert_eq!(failure_code(&body), "INVALID_TICKET");
}

#[tokio::test]
async fn a_service_ticket_lifetime_is_configurable() {
    let server =
        TestServer::start_with(|s| s.tickets.service_ticket_ttl = Duration::from_secs(10)).await;
    let ticket = server.browser().cas_login(SERVICE).await;
    server.advance(Duration::from_secs(10));
    let (_, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(failure_code(&body), "INVALID_TICKET");
}

#[tokio::test]
async fn concurrent_validations_of_one_ticket_succeed_once() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let url = server.url(&format!(
        "/serviceValidate?ticket={ticket}&service={}",
        enc(SERVICE)
    ));
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await.unwrap() })
        })
        .collect();
    let mut successes = 0;
    for attempt in attempts {
        successes += usize::from(attempt.await.unwrap().contains("authenticationSuccess"));
    }
    assert_eq!(successes, 1);
}

#[tokio::test]
async fn renew_validation_refuses_tickets_from_single_sign_on() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let fresh = browser.cas_login(SERVICE).await;
    let sso = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await
        .ticket();
    let (_, body) = server
        .validate("/serviceValidate", &fresh, SERVICE, "&renew=true")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    let (_, body) = server
        .validate("/serviceValidate", &sso, SERVICE, "&renew=true")
        .await;
    assert_eq!(failure_code(&body), "INVALID_TICKET_SPEC");
}

#[tokio::test]
async fn a_single_sign_on_ticket_says_it_is_not_from_a_new_login() {
    let server = TestServer::start().await;
    let browser = server.browser();
    browser.cas_login(SERVICE).await;
    let sso = browser
        .get(&format!("/login?service={}", enc(OTHER_SERVICE)))
        .await
        .ticket();
    let (_, body) = server
        .validate("/p3/serviceValidate", &sso, OTHER_SERVICE, "")
        .await;
    assert!(
        body.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "{body}"
    );
}

#[tokio::test]
async fn release_policy_renames_filters_and_chooses_the_user_id() {
    let server = TestServer::start().await;
    let mut limited = service("limited", r"https://limited\.example\.org/.*", false);
    limited.release = AttributeRelease::Only(vec![AttributeRule::parse("mail=email").unwrap()]);
    limited.username_attribute = Some("uid".into());
    server.store.put_service(&limited).await.unwrap();
    let url = "https://limited.example.org/";
    let ticket = server.browser().cas_login(url).await;
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, url, "")
        .await;
    assert!(body.contains("<cas:user>a1001</cas:user>"), "{body}");
    assert!(
        body.contains("<cas:email>alice@example.org</cas:email>"),
        "{body}"
    );
    assert!(
        !body.contains("eduPersonAffiliation") && !body.contains("<cas:mail>"),
        "{body}"
    );
}

#[tokio::test]
async fn a_service_removed_after_issuing_is_unauthorized_at_validation() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    assert!(server.store.delete_service("app").await.unwrap());
    let (_, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(failure_code(&body), "UNAUTHORIZED_SERVICE");
}

#[tokio::test]
async fn users_without_required_attributes_are_denied_at_login() {
    let server = TestServer::start().await;
    let mut strict = service("strict", r"https://strict\.example\.org/.*", true);
    strict.requirements = vec![Requirement::parse("eduPersonAffiliation=faculty").unwrap()];
    server.store.put_service(&strict).await.unwrap();
    let page = server
        .browser()
        .log_in_as(
            Some("https://strict.example.org/"),
            "alice",
            crate::support::PASSWORD,
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("Access denied"), "{}", page.body);
    assert!(page.headers.get("location").is_none());
}

#[tokio::test]
async fn tickets_of_a_logged_out_session_no_longer_validate() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let ticket = browser.cas_login(SERVICE).await;
    browser.get("/logout").await;
    let (_, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert_eq!(failure_code(&body), "INVALID_TICKET");
}

#[tokio::test]
async fn a_new_ticket_leaves_earlier_unvalidated_tickets_valid() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let first = browser.cas_login(SERVICE).await;
    let second = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await
        .ticket();
    assert_ne!(first, second);
    for t in [&second, &first] {
        let (_, body) = server.validate("/serviceValidate", t, SERVICE, "").await;
        assert!(body.contains("authenticationSuccess"), "{body}");
    }
}
