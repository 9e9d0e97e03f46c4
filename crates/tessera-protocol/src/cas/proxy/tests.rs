use rand::{rngs::StdRng, SeedableRng};

use super::*;
use crate::cas::validate::{ProtocolAttributes, Validation};
use crate::cas::xml;
use crate::service::{ServiceOrigin, ServicePattern};

fn portal() -> RegisteredService {
    let mut s = RegisteredService::new(
        "portal",
        ServicePattern::Exact("https://portal/".into()),
        ServiceOrigin::Database,
    );
    s.proxy_callback = Some(ServicePattern::regex(r"https://portal/pgt(\?.*)?").unwrap());
    s
}

fn validation(proxies: Vec<String>) -> Validation {
    let mut attrs = Attributes::new();
    attrs.insert("memberOf".into(), vec!["staff".into()]);
    Validation {
        user: "jdoe".into(),
        username: "jdoe".into(),
        session_id: SessionId::from_stored("s-1".into()),
        service: ServiceUrl::parse("https://portal/").unwrap(),
        attributes: Attributes::new(),
        user_attributes: attrs,
        protocol: ProtocolAttributes {
            authentication_date: Timestamp::from_unix_millis(1_000),
            long_term_authentication_request_token_used: false,
            is_from_new_login: true,
        },
        proxies,
        proxy_granting_ticket: None,
    }
}

#[test]
fn callbacks_must_be_allowed_https_and_registered() {
    let code = |s: &RegisteredService, url: &str, http: bool| {
        check_callback(s, url, http).err().map(|e| e.code())
    };
    assert_eq!(code(&portal(), "https://portal/pgt", false), None);
    assert_eq!(code(&portal(), "https://portal/pgt?a=b", false), None);
    assert_eq!(
        code(&portal(), "http://portal/pgt", false),
        Some("INVALID_PROXY_CALLBACK")
    );
    assert_eq!(
        code(&portal(), "https://evil/pgt", false),
        Some("INVALID_PROXY_CALLBACK")
    );
    assert_eq!(
        code(&portal(), "https://x@portal/pgt", false),
        Some("INVALID_PROXY_CALLBACK")
    );
    let mut http_allowed = portal();
    http_allowed.proxy_callback = Some(ServicePattern::regex("http://portal/pgt").unwrap());
    assert_eq!(code(&http_allowed, "http://portal/pgt", true), None);
    let plain = RegisteredService::new(
        "p",
        ServicePattern::Exact("https://p/".into()),
        ServiceOrigin::Database,
    );
    assert_eq!(
        code(&plain, "https://portal/pgt", false),
        Some("UNAUTHORIZED_SERVICE_PROXY")
    );
}

#[test]
fn a_pgt_extends_the_chain_and_its_iou_is_independent() {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Timestamp::from_unix_millis(5_000);
    let (id, iou, pgt) = grant(
        &validation(vec!["https://first/pgt".into()]),
        "https://portal/pgt",
        Duration::from_secs(60),
        now,
        &mut rng,
    );
    assert_eq!(pgt.proxies, ["https://portal/pgt", "https://first/pgt"]);
    assert_eq!(pgt.key, id.key());
    assert_ne!(iou.as_str()[7..], id.as_str()[4..60]);
    assert_eq!(pgt.attributes["memberOf"], ["staff"]);
    assert_eq!(pgt.expires_at, now.plus(Duration::from_secs(60)));
    let url = callback_url("https://portal/pgt?x=1//y", &iou, &id);
    assert_eq!(
        url,
        format!(
            "https://portal/pgt?x=1//y&pgtIou={}&pgtId={}",
            iou.as_str(),
            id.as_str()
        )
    );
}

#[test]
fn proxy_tickets_need_a_live_pgt_and_a_willing_target() {
    let mut rng = StdRng::seed_from_u64(2);
    let now = Timestamp::from_unix_millis(5_000);
    let (id, _, pgt) = grant(
        &validation(vec![]),
        "https://portal/pgt",
        Duration::from_secs(60),
        now,
        &mut rng,
    );
    let req = ProxyRequest::parse(Some(id.as_str()), Some("imap://mail.example.org")).unwrap();
    let mut imap = RegisteredService::new(
        "imap",
        ServicePattern::Exact("imap://mail.example.org".into()),
        ServiceOrigin::Database,
    );
    let code =
        |r: Result<(ProxyTicketId, ServiceTicket), ValidationError>| r.err().map(|e| e.code());
    assert_eq!(
        code(issue_proxy_ticket(
            &req,
            Some(pgt.clone()),
            Some(&imap),
            Duration::from_secs(60),
            now,
            &mut rng
        )),
        Some("UNAUTHORIZED_SERVICE")
    );
    imap.proxy_target = true;
    assert_eq!(
        code(issue_proxy_ticket(
            &req,
            Some(pgt.clone()),
            None,
            Duration::from_secs(60),
            now,
            &mut rng
        )),
        Some("UNAUTHORIZED_SERVICE")
    );
    assert_eq!(
        code(issue_proxy_ticket(
            &req,
            None,
            Some(&imap),
            Duration::from_secs(60),
            now,
            &mut rng
        )),
        Some("INVALID_TICKET")
    );
    let expired = now.plus(Duration::from_secs(60));
    assert_eq!(
        code(issue_proxy_ticket(
            &req,
            Some(pgt.clone()),
            Some(&imap),
            Duration::from_secs(60),
            expired,
            &mut rng
        )),
        Some("INVALID_TICKET")
    );
    let (pt, ticket) = issue_proxy_ticket(
        &req,
        Some(pgt),
        Some(&imap),
        Duration::from_secs(60),
        now,
        &mut rng,
    )
    .unwrap();
    assert!(pt.as_str().starts_with("PT-") && pt.as_str().len() == 32);
    assert_eq!(ticket.proxies, ["https://portal/pgt"]);
    assert_eq!(ticket.service.as_str(), "imap://mail.example.org");
    assert!(!ticket.from_new_login);
    assert_eq!(
        ProxyRequest::parse(None, Some("x")).unwrap_err().code(),
        "INVALID_REQUEST"
    );
    assert_eq!(
        ProxyRequest::parse(Some("TGT-x"), Some("x:y"))
            .unwrap_err()
            .code(),
        "INVALID_TICKET"
    );
}

#[test]
fn answers_carry_the_iou_the_chain_and_proxy_tickets() {
    let mut v = validation(vec!["https://b/pgt".into(), "https://a/pgt".into()]);
    v.proxy_granting_ticket = Some("PGTIOU-1".into());
    let body = xml::service_response_xml(&Ok(v.clone()));
    assert!(body.contains(
        "        </cas:attributes>\n        <cas:proxyGrantingTicket>PGTIOU-1</cas:proxyGrantingTicket>\n        <cas:proxies>\n            <cas:proxy>https://b/pgt</cas:proxy>\n            <cas:proxy>https://a/pgt</cas:proxy>\n        </cas:proxies>\n    </cas:authenticationSuccess>"
    ), "{body}");
    let json: serde_json::Value =
        serde_json::from_str(&xml::service_response_json(&Ok(v))).unwrap();
    let success = &json["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["proxyGrantingTicket"], "PGTIOU-1");
    assert_eq!(
        success["proxies"],
        serde_json::json!(["https://b/pgt", "https://a/pgt"])
    );
    assert_eq!(
        xml::proxy_response_xml(&Ok("PT-1".into())),
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n    <cas:proxySuccess>\n        <cas:proxyTicket>PT-1</cas:proxyTicket>\n    </cas:proxySuccess>\n</cas:serviceResponse>\n"
    );
    let failure = xml::proxy_response_xml(&Err(ValidationError::InvalidTicket("x".into())));
    assert!(
        failure.contains("<cas:proxyFailure code=\"INVALID_TICKET\">x</cas:proxyFailure>"),
        "{failure}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&xml::proxy_response_json(&Ok("PT-1".into()))).unwrap();
    assert_eq!(
        json["serviceResponse"]["proxySuccess"]["proxyTicket"],
        "PT-1"
    );
}
