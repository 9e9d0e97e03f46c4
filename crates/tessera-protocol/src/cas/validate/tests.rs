use std::time::Duration;

use rand::{rngs::StdRng, SeedableRng};

use super::*;
use crate::cas::xml;
use crate::service::{AttributeRelease, ServiceOrigin, ServicePattern};
use crate::session::SessionId;

const SERVICE: &str = "https://app.example.org/login?next=%2F";

fn session() -> SsoSession {
    let mut attributes = Attributes::new();
    attributes.insert("mail".into(), vec!["jdoe@example.org".into()]);
    attributes.insert(
        "eduPersonAffiliation".into(),
        vec!["staff".into(), "member".into()],
    );
    attributes.insert("isFromNewLogin".into(), vec!["spoofed".into()]);
    SsoSession {
        id: SessionId::from_stored("s-1".into()),
        tgt: TicketKey::of("TGT-x"),
        username: "jdoe".into(),
        attributes,
        authenticated_at: Timestamp::from_unix_millis(1_738_318_530_000),
        last_used_at: Timestamp::from_unix_millis(1_738_318_530_000),
        long_term: false,
        warn: false,
    }
}

fn registered(release: AttributeRelease) -> RegisteredService {
    let mut s = RegisteredService::new(
        "app",
        ServicePattern::regex(r"https://app\.example\.org/.*").unwrap(),
        ServiceOrigin::Database,
    );
    s.release = release;
    s
}

fn issue(from_new_login: bool) -> (ServiceTicketId, ServiceTicket, Timestamp) {
    let now = Timestamp::from_unix_millis(1_738_318_531_000);
    let mut rng = StdRng::seed_from_u64(3);
    let (id, t) = ServiceTicket::issue(
        &session(),
        ServiceUrl::parse(SERVICE).unwrap(),
        from_new_login,
        Duration::from_secs(60),
        now,
        &mut rng,
    );
    (id, t, now)
}

fn request(id: &ServiceTicketId, service: &str, renew: bool) -> ValidateRequest {
    let params = ValidateParams {
        service: Some(service.into()),
        ticket: Some(id.as_str().into()),
        renew: renew.then(|| "true".into()),
        pgt_url: None,
    };
    ValidateRequest::parse(Endpoint::ServiceValidate, &params).unwrap()
}

#[test]
fn missing_parameters_and_bad_tickets_are_refused_before_the_store() {
    let p = |service: Option<&str>, ticket: Option<&str>| ValidateParams {
        service: service.map(Into::into),
        ticket: ticket.map(Into::into),
        renew: None,
        pgt_url: None,
    };
    let code = |e: Endpoint, params: ValidateParams| {
        ValidateRequest::parse(e, &params).unwrap_err().code()
    };
    assert_eq!(
        code(Endpoint::ServiceValidate, p(None, Some("ST-1"))),
        "INVALID_REQUEST"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, p(Some("x"), None)),
        "INVALID_REQUEST"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, p(Some("x"), Some(""))),
        "INVALID_REQUEST"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, p(Some("x"), Some("PT-1"))),
        "INVALID_TICKET_SPEC"
    );
    assert_eq!(
        code(Endpoint::Validate, p(Some("x"), Some("PT-1"))),
        "INVALID_TICKET_SPEC"
    );
    let proxied =
        ValidateRequest::parse(Endpoint::ProxyValidate, &p(Some("x"), Some("PT-1"))).unwrap();
    assert!(matches!(proxied.ticket, ValidationTicket::Proxy(_)));
    assert_eq!(
        code(Endpoint::ProxyValidate, p(Some("x"), Some("PGT-1"))),
        "INVALID_TICKET"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, p(Some("x"), Some("TGT-1"))),
        "INVALID_TICKET"
    );
    assert_eq!(
        code(Endpoint::ServiceValidate, p(Some("x"), Some("ST-a_b"))),
        "INVALID_TICKET"
    );
    assert!(ResponseFormat::parse(Some("yaml")).is_err());
    assert_eq!(
        ResponseFormat::parse(Some("json")),
        Ok(ResponseFormat::Json)
    );
}

#[test]
fn a_taken_ticket_validates_once_with_released_attributes() {
    let (id, t, now) = issue(true);
    let svc = registered(AttributeRelease::All);
    let v =
        validate_service_ticket(&request(&id, SERVICE, false), Some(t), Some(&svc), now).unwrap();
    assert_eq!(v.user, "jdoe");
    assert_eq!(v.attributes["eduPersonAffiliation"], ["staff", "member"]);
    assert!(
        !v.attributes.contains_key("isFromNewLogin"),
        "user attributes cannot spoof protocol attributes"
    );
    assert!(v.protocol.is_from_new_login);
    // The store hands out a ticket once; the replay sees None.
    let replay = validate_service_ticket(&request(&id, SERVICE, false), None, Some(&svc), now);
    assert_eq!(replay.unwrap_err().code(), "INVALID_TICKET");
}

#[test]
fn expiry_service_mismatch_renew_and_unregistered() {
    let svc = registered(AttributeRelease::Nothing);
    let (id, t, now) = issue(false);
    let later = now.plus(Duration::from_secs(60));
    let code = |r: Result<Validation, ValidationError>| r.unwrap_err().code();
    assert_eq!(
        code(validate_service_ticket(
            &request(&id, SERVICE, false),
            Some(t.clone()),
            Some(&svc),
            later
        )),
        "INVALID_TICKET"
    );
    assert!(validate_service_ticket(
        &request(&id, SERVICE, false),
        Some(t.clone()),
        Some(&svc),
        now.plus(Duration::from_millis(59_999))
    )
    .is_ok());
    assert_eq!(
        code(validate_service_ticket(
            &request(&id, "https://app.example.org/other", false),
            Some(t.clone()),
            Some(&svc),
            now
        )),
        "INVALID_SERVICE"
    );
    assert_eq!(
        code(validate_service_ticket(
            &request(&id, SERVICE, true),
            Some(t.clone()),
            Some(&svc),
            now
        )),
        "INVALID_TICKET_SPEC"
    );
    assert_eq!(
        code(validate_service_ticket(
            &request(&id, SERVICE, false),
            Some(t),
            None,
            now
        )),
        "UNAUTHORIZED_SERVICE"
    );
}

#[test]
fn the_checks_alone_agree_with_the_whole_validation() {
    let svc = registered(AttributeRelease::Nothing);
    let (id, t, now) = issue(false);
    let later = now.plus(Duration::from_secs(60));
    let cases = [
        (request(&id, SERVICE, false), Some(&svc), now),
        (request(&id, SERVICE, false), Some(&svc), later),
        (
            request(&id, "https://app.example.org/other", false),
            Some(&svc),
            now,
        ),
        (request(&id, SERVICE, true), Some(&svc), now),
        (request(&id, SERVICE, false), None, now),
    ];
    let mut admitted = 0;
    for (req, service, at) in cases {
        let checked = check_service_ticket(&req, &t, service, at);
        let whole = validate_service_ticket(&req, Some(t.clone()), service, at);
        assert_eq!(
            checked.as_ref().err().map(ValidationError::code),
            whole.as_ref().err().map(ValidationError::code)
        );
        admitted += usize::from(checked.is_ok());
    }
    assert_eq!(admitted, 1);
}

#[test]
fn xml_success_is_byte_exact() {
    let (id, t, now) = issue(true);
    let mut svc = registered(AttributeRelease::All);
    svc.release = AttributeRelease::Only(vec![
        crate::service::AttributeRule::parse("eduPersonAffiliation").unwrap(),
        crate::service::AttributeRule::parse("mail=email").unwrap(),
    ]);
    let mut t = t;
    t.attributes
        .insert("mail".into(), vec!["a&b<c>@example.org".into()]);
    let v = validate_service_ticket(&request(&id, SERVICE, false), Some(t), Some(&svc), now);
    assert_eq!(
        xml::service_response_xml(&v),
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n\
         \x20   <cas:authenticationSuccess>\n\
         \x20       <cas:user>jdoe</cas:user>\n\
         \x20       <cas:attributes>\n\
         \x20           <cas:authenticationDate>2025-01-31T10:15:30Z</cas:authenticationDate>\n\
         \x20           <cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>\n\
         \x20           <cas:isFromNewLogin>true</cas:isFromNewLogin>\n\
         \x20           <cas:eduPersonAffiliation>staff</cas:eduPersonAffiliation>\n\
         \x20           <cas:eduPersonAffiliation>member</cas:eduPersonAffiliation>\n\
         \x20           <cas:email>a&amp;b&lt;c&gt;@example.org</cas:email>\n\
         \x20       </cas:attributes>\n\
         \x20   </cas:authenticationSuccess>\n\
         </cas:serviceResponse>\n"
    );
    assert_eq!(xml::cas1(&v), "yes\njdoe\n");
}

#[test]
fn xml_failure_is_byte_exact() {
    let e: Result<Validation, ValidationError> = Err(ValidationError::InvalidTicket(
        "ticket ST-<x> not recognized".into(),
    ));
    assert_eq!(
        xml::service_response_xml(&e),
        "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">\n\
         \x20   <cas:authenticationFailure code=\"INVALID_TICKET\">ticket ST-&lt;x&gt; not recognized</cas:authenticationFailure>\n\
         </cas:serviceResponse>\n"
    );
    assert_eq!(xml::cas1(&e), "no\n");
}

#[test]
fn json_matches_apereo_shape() {
    let (id, t, now) = issue(false);
    let v = validate_service_ticket(
        &request(&id, SERVICE, false),
        Some(t),
        Some(&registered(AttributeRelease::Only(vec![
            crate::service::AttributeRule::parse("mail").unwrap(),
        ]))),
        now,
    );
    let json: serde_json::Value = serde_json::from_str(&xml::service_response_json(&v)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"serviceResponse": {"authenticationSuccess": {"user": "jdoe", "attributes": {
            "authenticationDate": ["2025-01-31T10:15:30Z"],
            "longTermAuthenticationRequestTokenUsed": [false],
            "isFromNewLogin": [false],
            "mail": ["jdoe@example.org"]}}}})
    );
    let e: Result<Validation, ValidationError> = Err(ValidationError::InvalidService("x".into()));
    let json: serde_json::Value = serde_json::from_str(&xml::service_response_json(&e)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"serviceResponse": {"authenticationFailure": {"code": "INVALID_SERVICE", "description": "x"}}})
    );
}

#[test]
fn cas1_refuses_user_ids_that_break_lines() {
    let (id, mut t, now) = issue(false);
    t.username = "evil\nyes".into();
    let v = validate_service_ticket(
        &request(&id, SERVICE, false),
        Some(t),
        Some(&registered(AttributeRelease::Nothing)),
        now,
    );
    assert_eq!(xml::cas1(&v), "no\n");
}
