//! SAML 1.1 validation, `POST /samlValidate`: success with attributes, the https rule for
//! attributes, single use, service and renew checks, and hostile bodies answered as SAML failures.

use reqwest::StatusCode;

use crate::support::{enc, service, TestServer, OTHER_SERVICE, PASSWORD, SERVICE, USER};

/// A plain-http service, registered by the tests that need one.
const PLAIN_SERVICE: &str = "http://plain.example.org/app";

/// The SOAP request python-cas sends (declaration, newlines, uuid RequestID, local time).
fn soap(ticket: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">
<SOAP-ENV:Header/>
<SOAP-ENV:Body>
<samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"
MajorVersion=\"1\"
MinorVersion=\"1\"
RequestID=\"0b6f1c9e-3f5a-4a8e-9d2b-6c1e7f0a2d34\"
IssueInstant=\"2026-01-01T01:00:00.123456\">
<samlp:AssertionArtifact>{ticket}</samlp:AssertionArtifact></samlp:Request>
</SOAP-ENV:Body>
</SOAP-ENV:Envelope>"
    )
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl Answer {
    /// `Value` of the first `samlp:StatusCode`.
    fn status_code(&self) -> &str {
        let start = self
            .body
            .find("<samlp:StatusCode Value=\"")
            .unwrap_or_else(|| panic!("no StatusCode: {}", self.body))
            + 25;
        let rest = &self.body[start..];
        &rest[..rest.find('"').unwrap()]
    }

    fn is_success(&self) -> bool {
        self.status_code() == "samlp:Success"
    }

    /// A failure as phpCAS, python-cas, pycas-sso and mod_auth_cas all read it.
    fn assert_requester_failure(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.status_code(), "samlp:Requester", "{}", self.body);
        assert!(self.body.contains("<samlp:StatusMessage>"), "{}", self.body);
        assert!(
            !self.body.contains("NameIdentifier") && !self.body.contains("saml:Assertion"),
            "a failure must not look like a success to phpCAS: {}",
            self.body
        );
    }
}

impl TestServer {
    /// POSTs `soap_body` to `/samlValidate?TARGET=…` + `extra`, with no SOAP headers at all.
    async fn saml_validate(&self, target: Option<&str>, extra: &str, soap_body: String) -> Answer {
        let query = target
            .map(|t| format!("?TARGET={}", enc(t)))
            .unwrap_or_default();
        let url = self.url(&format!("/samlValidate{query}{extra}"));
        let r = reqwest::Client::new()
            .post(url)
            .body(soap_body)
            .send()
            .await
            .unwrap();
        Answer {
            status: r.status(),
            content_type: r.headers()["content-type"].to_str().unwrap().to_owned(),
            body: r.text().await.unwrap(),
        }
    }
}

fn attribute(name: &str, values: &[&str]) -> String {
    let values: String = values
        .iter()
        .map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>"))
        .collect();
    format!(
        "<saml:Attribute AttributeName=\"{name}\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\">{values}</saml:Attribute>"
    )
}

#[tokio::test]
async fn a_service_ticket_validates_over_saml_with_attributes() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let answer = server.saml_validate(Some(SERVICE), "", soap(&ticket)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, "text/xml; charset=utf-8");
    assert!(answer.is_success(), "{}", answer.body);
    for needle in [
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body>\n<samlp:Response ".to_owned(),
        format!("Recipient=\"{SERVICE}\">"),
        "Issuer=\"127.0.0.1\"".to_owned(),
        format!("<saml:Audience>{SERVICE}</saml:Audience>"),
        "<saml:NameIdentifier>alice</saml:NameIdentifier>".to_owned(),
        "NotBefore=\"2026-01-01T00:00:00Z\" NotOnOrAfter=\"2026-01-01T00:00:30Z\"".to_owned(),
        attribute("authenticationDate", &["2026-01-01T00:00:00Z"]),
        attribute("longTermAuthenticationRequestTokenUsed", &["false"]),
        attribute("isFromNewLogin", &["true"]),
        attribute("eduPersonAffiliation", &["staff", "member"]),
        attribute("displayName", &["Alice &lt;Example&gt; &amp; Co"]),
        attribute("mail", &["alice@example.org"]),
    ] {
        assert!(answer.body.contains(&needle), "missing {needle} in {}", answer.body);
    }
}

#[tokio::test]
async fn a_ticket_validates_over_saml_only_once() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    assert!(server
        .saml_validate(Some(SERVICE), "", soap(&ticket))
        .await
        .is_success());
    let replay = server.saml_validate(Some(SERVICE), "", soap(&ticket)).await;
    replay.assert_requester_failure();
    assert!(replay.body.contains("not recognized"), "{}", replay.body);
    let (_, body) = server
        .validate("/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert!(
        body.contains("INVALID_TICKET"),
        "the ticket is gone everywhere: {body}"
    );
}

#[tokio::test]
async fn a_ticket_validated_over_cas_no_longer_validates_over_saml() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "")
        .await;
    assert!(body.contains("authenticationSuccess"), "{body}");
    server
        .saml_validate(Some(SERVICE), "", soap(&ticket))
        .await
        .assert_requester_failure();
}

#[tokio::test]
async fn attributes_are_withheld_from_plain_http_targets_while_the_rule_is_on() {
    let server = TestServer::start().await;
    server
        .store
        .put_service(&service("plain", r"http://plain\.example\.org/.*", true))
        .await
        .unwrap();
    let ticket = server.browser().cas_login(PLAIN_SERVICE).await;
    let answer = server
        .saml_validate(Some(PLAIN_SERVICE), "", soap(&ticket))
        .await;
    assert!(answer.is_success(), "{}", answer.body);
    assert!(answer
        .body
        .contains("<saml:NameIdentifier>alice</saml:NameIdentifier>"));
    assert!(
        answer
            .body
            .contains(&attribute("isFromNewLogin", &["true"])),
        "{}",
        answer.body
    );
    for user_attribute in ["mail", "eduPersonAffiliation", "displayName", "uid"] {
        assert!(
            !answer
                .body
                .contains(&format!("AttributeName=\"{user_attribute}\"")),
            "{user_attribute} released to an http target: {}",
            answer.body
        );
    }
}

#[tokio::test]
async fn plain_http_targets_get_attributes_when_the_rule_is_off() {
    let server = TestServer::start_with(|s| s.saml.attributes_require_https = false).await;
    server
        .store
        .put_service(&service("plain", r"http://plain\.example\.org/.*", true))
        .await
        .unwrap();
    let ticket = server.browser().cas_login(PLAIN_SERVICE).await;
    let answer = server
        .saml_validate(Some(PLAIN_SERVICE), "", soap(&ticket))
        .await;
    assert!(answer.is_success(), "{}", answer.body);
    assert!(
        answer
            .body
            .contains(&attribute("eduPersonAffiliation", &["staff", "member"])),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn a_ticket_for_another_target_fails_and_is_burnt() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let answer = server
        .saml_validate(Some(OTHER_SERVICE), "", soap(&ticket))
        .await;
    answer.assert_requester_failure();
    assert!(
        answer.body.contains("not issued for this service"),
        "{}",
        answer.body
    );
    server
        .saml_validate(Some(SERVICE), "", soap(&ticket))
        .await
        .assert_requester_failure();
}

#[tokio::test]
async fn renew_refuses_a_single_sign_on_ticket_over_saml() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let fresh = browser.cas_login(SERVICE).await;
    let sso = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await
        .ticket();
    let answer = server
        .saml_validate(Some(SERVICE), "&renew=true", soap(&sso))
        .await;
    answer.assert_requester_failure();
    assert!(answer.body.contains("renew"), "{}", answer.body);
    let answer = server
        .saml_validate(Some(SERVICE), "&renew=true", soap(&fresh))
        .await;
    assert!(answer.is_success(), "{}", answer.body);
}

#[tokio::test]
async fn remember_me_is_reported_in_the_saml_attributes() {
    let server = TestServer::start_with(|s| s.session.remember_me = true).await;
    let ticket = server
        .browser()
        .log_in_as(Some(SERVICE), USER, PASSWORD, &[("rememberMe", "true")])
        .await
        .ticket();
    let answer = server.saml_validate(Some(SERVICE), "", soap(&ticket)).await;
    assert!(
        answer.body.contains(&attribute(
            "longTermAuthenticationRequestTokenUsed",
            &["true"]
        )),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn request_errors_are_saml_failures_with_status_200() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    // No TARGET: refused before the ticket is taken.
    server
        .saml_validate(None, "", soap(&ticket))
        .await
        .assert_requester_failure();
    server
        .saml_validate(Some(""), "", soap(&ticket))
        .await
        .assert_requester_failure();
    // Proxy tickets and other kinds are not service tickets.
    for other in [
        "PT-abc123",
        "TGT-abc123",
        "ST-forged0123456789abcdefghijklm",
    ] {
        server
            .saml_validate(Some(SERVICE), "", soap(other))
            .await
            .assert_requester_failure();
    }
    assert!(server
        .saml_validate(Some(SERVICE), "", soap(&ticket))
        .await
        .is_success());
}

#[tokio::test]
async fn malformed_bodies_are_saml_failures_with_status_200() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let full = soap(&ticket);
    for body in [
        String::new(),
        "garbage".to_owned(),
        ticket.clone(),
        full[..full.len() - 20].to_owned(),
        full.replace("urn:oasis:names:tc:SAML:1.0:protocol", "urn:example:other"),
        format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000)),
    ] {
        server
            .saml_validate(Some(SERVICE), "", body)
            .await
            .assert_requester_failure();
    }
    assert!(
        server
            .saml_validate(Some(SERVICE), "", full)
            .await
            .is_success(),
        "an unreadable request takes no ticket"
    );
}

#[tokio::test]
async fn a_doctype_body_is_a_saml_failure_with_status_200() {
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let xxe = soap(&format!("{ticket}&xxe;")).replacen(
        "?>\n",
        "?>\n<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n",
        1,
    );
    let answer = server.saml_validate(Some(SERVICE), "", xxe).await;
    answer.assert_requester_failure();
    assert!(
        answer.body.contains("document type declaration"),
        "{}",
        answer.body
    );
    assert!(!answer.body.contains("root:"), "{}", answer.body);
}

#[tokio::test]
async fn a_urlencoded_artifact_with_soap_headers_is_accepted() {
    // phpCAS: no XML declaration, urlencoded ticket, SOAPAction and Content-Type headers.
    let server = TestServer::start().await;
    let ticket = server.browser().cas_login(SERVICE).await;
    let encoded = ticket.replacen('-', "%2D", 1);
    let body = soap(&encoded).replacen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "", 1);
    let r = reqwest::Client::new()
        .post(server.url(&format!(
            "/samlValidate?TARGET={}&renew=false",
            enc(SERVICE)
        )))
        .header(
            "soapaction",
            "http://www.oasis-open.org/committees/security",
        )
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("<samlp:StatusCode Value=\"samlp:Success\"/>"),
        "{text}"
    );
}
