use quick_xml::events::Event;
use quick_xml::Reader;

use super::*;
use crate::attributes::Attributes;
use crate::service::ServiceUrl;
use crate::session::SessionId;

const TARGET: &str = "https://app.example.org/login?next=%2F&a=1";
const TICKET: &str = "ST-1a2B3c4D5e6F7g8H9i0JkLmNoPqRs";

/// Bytes 0, 1, 2, … so the two ids of a response are known in advance.
struct CountingRng(u8);

impl RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0;
            self.0 = self.0.wrapping_add(1);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for CountingRng {}

fn validation() -> Validation {
    let mut attributes = Attributes::new();
    attributes.insert("uid".into(), vec!["jdoe".into()]);
    attributes.insert(
        "eduPersonAffiliation".into(),
        vec!["staff".into(), "member".into()],
    );
    attributes.insert("displayName".into(), vec!["J <Doe> & \"Co\"".into()]);
    Validation {
        user: "jdoe".into(),
        username: "jdoe".into(),
        session_id: SessionId::from_stored("s-1".into()),
        service: ServiceUrl::parse(TARGET).unwrap(),
        user_attributes: attributes.clone(),
        attributes,
        protocol: ProtocolAttributes {
            authentication_date: Timestamp::from_unix_millis(1_738_318_500_000),
            long_term_authentication_request_token_used: true,
            is_from_new_login: false,
        },
        proxies: Vec::new(),
        proxy_granting_ticket: None,
    }
}

fn ctx(target: Option<&str>) -> ResponseContext<'_> {
    ResponseContext {
        target,
        issuer: "sso.example.org",
        now: Timestamp::from_unix_millis(1_738_318_530_999),
    }
}

fn render(result: &Result<Validation, ValidationError>, target: Option<&str>) -> String {
    response(result, &ctx(target), &mut CountingRng(0))
}

/// The local-name path of every element, e.g. `Envelope/Body/Response/Status`, and fails on XML
/// that is not well formed.
fn element_paths(xml: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) => {
                stack.push(String::from_utf8(e.local_name().as_ref().to_vec()).unwrap());
                paths.push(stack.join("/"));
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
                paths.push(format!("{}/{name}", stack.join("/")));
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    paths
}

// --- rendering ----------------------------------------------------------------------------------

#[test]
fn success_is_byte_for_byte_the_documented_shape() {
    let expected = concat!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body>\n",
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\"\n",
        "  xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n",
        "  ResponseID=\"_000102030405060708090a0b0c0d0e0f\" IssueInstant=\"2025-01-31T10:15:30Z\" MajorVersion=\"1\" MinorVersion=\"1\" Recipient=\"https://app.example.org/login?next=%2F&amp;a=1\">\n",
        " <samlp:Status><samlp:StatusCode Value=\"samlp:Success\"/></samlp:Status>\n",
        " <saml:Assertion AssertionID=\"_101112131415161718191a1b1c1d1e1f\" IssueInstant=\"2025-01-31T10:15:30Z\" Issuer=\"sso.example.org\" MajorVersion=\"1\" MinorVersion=\"1\">\n",
        "  <saml:Conditions NotBefore=\"2025-01-31T10:15:30Z\" NotOnOrAfter=\"2025-01-31T10:16:00Z\"><saml:AudienceRestrictionCondition><saml:Audience>https://app.example.org/login?next=%2F&amp;a=1</saml:Audience></saml:AudienceRestrictionCondition></saml:Conditions>\n",
        "  <saml:AttributeStatement>\n",
        "   <saml:Subject><saml:NameIdentifier>jdoe</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:artifact</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject>\n",
        "   <saml:Attribute AttributeName=\"authenticationDate\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\"><saml:AttributeValue>2025-01-31T10:15:00Z</saml:AttributeValue></saml:Attribute>\n",
        "   <saml:Attribute AttributeName=\"longTermAuthenticationRequestTokenUsed\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\"><saml:AttributeValue>true</saml:AttributeValue></saml:Attribute>\n",
        "   <saml:Attribute AttributeName=\"isFromNewLogin\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\"><saml:AttributeValue>false</saml:AttributeValue></saml:Attribute>\n",
        "   <saml:Attribute AttributeName=\"displayName\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\"><saml:AttributeValue>J &lt;Doe&gt; &amp; &quot;Co&quot;</saml:AttributeValue></saml:Attribute>\n",
        "   <saml:Attribute AttributeName=\"eduPersonAffiliation\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\"><saml:AttributeValue>staff</saml:AttributeValue><saml:AttributeValue>member</saml:AttributeValue></saml:Attribute>\n",
        "   <saml:Attribute AttributeName=\"uid\" AttributeNamespace=\"http://www.ja-sig.org/products/cas/\"><saml:AttributeValue>jdoe</saml:AttributeValue></saml:Attribute>\n",
        "  </saml:AttributeStatement>\n",
        "  <saml:AuthenticationStatement AuthenticationInstant=\"2025-01-31T10:15:00Z\" AuthenticationMethod=\"urn:oasis:names:tc:SAML:1.0:am:password\">\n",
        "   <saml:Subject><saml:NameIdentifier>jdoe</saml:NameIdentifier><saml:SubjectConfirmation><saml:ConfirmationMethod>urn:oasis:names:tc:SAML:1.0:cm:artifact</saml:ConfirmationMethod></saml:SubjectConfirmation></saml:Subject>\n",
        "  </saml:AuthenticationStatement>\n",
        " </saml:Assertion>\n",
        "</samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>\n",
    );
    assert_eq!(render(&Ok(validation()), Some(TARGET)), expected);
}

#[test]
fn failure_is_byte_for_byte_the_documented_shape() {
    let err = ValidationError::InvalidTicket(format!("ticket {TICKET} not recognized"));
    let expected = concat!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body>\n",
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\"\n",
        "  xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n",
        "  ResponseID=\"_000102030405060708090a0b0c0d0e0f\" IssueInstant=\"2025-01-31T10:15:30Z\" MajorVersion=\"1\" MinorVersion=\"1\" Recipient=\"https://app.example.org/login?next=%2F&amp;a=1\">\n",
        " <samlp:Status><samlp:StatusCode Value=\"samlp:Requester\"/><samlp:StatusMessage>ticket ST-1a2B3c4D5e6F7g8H9i0JkLmNoPqRs not recognized</samlp:StatusMessage></samlp:Status>\n",
        "</samlp:Response></SOAP-ENV:Body></SOAP-ENV:Envelope>\n",
    );
    assert_eq!(render(&Err(err), Some(TARGET)), expected);
}

#[test]
fn a_failure_never_carries_an_assertion_or_a_name_identifier() {
    for err in [
        ValidationError::InvalidRequest("the TARGET parameter is required".into()),
        ValidationError::InvalidTicketSpec("PT".into()),
        ValidationError::InvalidTicket("x".into()),
        ValidationError::InvalidService("x".into()),
        ValidationError::UnauthorizedService("x".into()),
        ValidationError::InternalError("x".into()),
    ] {
        let body = render(&Err(err), None);
        let paths = element_paths(&body);
        assert!(
            !body.contains("NameIdentifier") && !body.contains("Assertion"),
            "{body}"
        );
        assert!(
            paths.contains(&"Envelope/Body/Response/Status/StatusMessage".to_owned()),
            "{paths:?}"
        );
        assert!(!body.contains("Recipient="), "no TARGET, no Recipient");
    }
}

#[test]
fn server_faults_are_responder_and_everything_else_requester() {
    let fault = render(&Err(ValidationError::InternalError("down".into())), None);
    assert!(fault.contains("<samlp:StatusCode Value=\"samlp:Responder\"/>"));
    let refused = render(&Err(ValidationError::InvalidService("no".into())), None);
    assert!(refused.contains("<samlp:StatusCode Value=\"samlp:Requester\"/>"));
}

#[test]
fn failure_messages_are_escaped() {
    let body = render(
        &Err(ValidationError::InvalidTicket(
            "ticket <x>&\"y\" not recognized".into(),
        )),
        Some("https://a/?b=<c>"),
    );
    assert!(body.contains(
        "<samlp:StatusMessage>ticket &lt;x&gt;&amp;&quot;y&quot; not recognized</samlp:StatusMessage>"
    ));
    assert!(body.contains("Recipient=\"https://a/?b=&lt;c&gt;\""));
    element_paths(&body);
}

#[test]
fn success_has_the_structure_strict_clients_walk() {
    let body = render(&Ok(validation()), Some(TARGET));
    let paths = element_paths(&body);
    for path in [
        // mod_auth_cas: Status and Assertion are direct children of Response, inside Body/Envelope.
        "Envelope/Body/Response/Status/StatusCode",
        "Envelope/Body/Response/Assertion/AttributeStatement/Subject/NameIdentifier",
        "Envelope/Body/Response/Assertion/AttributeStatement/Attribute/AttributeValue",
        "Envelope/Body/Response/Assertion/AuthenticationStatement/Subject/NameIdentifier",
        "Envelope/Body/Response/Assertion/Conditions/AudienceRestrictionCondition/Audience",
    ] {
        assert!(
            paths.contains(&path.to_owned()),
            "{path} missing: {paths:?}"
        );
    }
    // pycas-sso cuts six characters off the status value.
    assert!(body.contains("Value=\"samlp:Success\""));
    assert!(!body.contains("CDATA"));
}

#[test]
fn ids_are_underscore_and_32_hex_digits_and_differ() {
    use rand::{rngs::StdRng, SeedableRng};
    let body = response(
        &Ok(validation()),
        &ctx(Some(TARGET)),
        &mut StdRng::seed_from_u64(9),
    );
    let id_of = |attr: &str| {
        let start = body.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
        body[start..start + 33].to_owned()
    };
    let (response_id, assertion_id) = (id_of("ResponseID"), id_of("AssertionID"));
    for id in [&response_id, &assertion_id] {
        assert!(id.starts_with('_'), "{id}");
        assert!(
            id[1..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
        assert_eq!(body.as_bytes()[body.find(id.as_str()).unwrap() + 33], b'"');
    }
    assert_ne!(response_id, assertion_id);
}

#[test]
fn attributes_go_to_https_targets_or_everywhere_when_the_rule_is_off() {
    assert!(releases_attributes_to("https://app.example.org/", true));
    assert!(releases_attributes_to("HTTPS://app.example.org/", true));
    assert!(!releases_attributes_to("http://app.example.org/", true));
    assert!(!releases_attributes_to("not a url", true));
    assert!(releases_attributes_to("http://localhost/", false));
}

#[test]
fn a_success_without_user_attributes_still_has_the_protocol_attributes() {
    let mut v = validation();
    v.attributes.clear();
    let body = render(&Ok(v), Some(TARGET));
    assert_eq!(body.matches("<saml:Attribute ").count(), 3, "{body}");
    assert_eq!(body.matches("<saml:NameIdentifier>jdoe<").count(), 2);
}

// --- parsing --------------------------------------------------------------------------------------

#[test]
fn the_spec_example_request_gives_its_ticket() {
    let body = format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body>
 <samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1"
   RequestID="_192.168.16.51.1024506224022" IssueInstant="2002-06-19T17:03:44.022Z">
  <samlp:AssertionArtifact>
    {TICKET}
  </samlp:AssertionArtifact>
 </samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    );
    assert_eq!(parse_artifact(body.as_bytes()).unwrap(), TICKET);
}

#[test]
fn a_phpcas_request_without_declaration_and_with_a_urlencoded_ticket_is_read() {
    let body = "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/>\
<SOAP-ENV:Body><samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"  MajorVersion=\"1\" MinorVersion=\"1\" \
RequestID=\"_192.168.16.51.1024506224022\" IssueInstant=\"2002-06-19T17:03:44.022Z\">\
<samlp:AssertionArtifact>ST%2D1a2B3c4D5e6F7g8H9i0JkLmNoPqRs</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>";
    assert_eq!(parse_artifact(body.as_bytes()).unwrap(), TICKET);
}

#[test]
fn a_mod_auth_cas_request_without_request_id_or_issue_instant_is_read() {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<SOAP-ENV:Header/><SOAP-ENV:Body><samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" MinorVersion=\"1\">\
<samlp:AssertionArtifact>{TICKET}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    );
    assert_eq!(parse_artifact(body.as_bytes()).unwrap(), TICKET);
}

#[test]
fn a_python_cas_request_with_declaration_newlines_and_uuid_is_read() {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\">
<SOAP-ENV:Header/>
<SOAP-ENV:Body>
<samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"
MajorVersion=\"1\"
MinorVersion=\"1\"
RequestID=\"5f0c2a8e-1b7d-4a57-9a3e-2f6c1d0b9e44\"
IssueInstant=\"2025-01-31T11:15:30.123456\">
<samlp:AssertionArtifact>{TICKET}</samlp:AssertionArtifact></samlp:Request>
</SOAP-ENV:Body>
</SOAP-ENV:Envelope>"
    );
    assert_eq!(parse_artifact(body.as_bytes()).unwrap(), TICKET);
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), body.as_bytes()].concat();
    assert_eq!(parse_artifact(&with_bom).unwrap(), TICKET);
}

#[test]
fn any_prefix_or_a_default_namespace_is_accepted() {
    let prefixed = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>\
<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact>{TICKET}</p:AssertionArtifact></p:Request>\
</soap:Body></soap:Envelope>"
    );
    assert_eq!(parse_artifact(prefixed.as_bytes()).unwrap(), TICKET);
    let default = format!(
        "<Envelope xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"><Body>\
<Request xmlns=\"urn:oasis:names:tc:SAML:1.0:protocol\"><AssertionArtifact> {TICKET}\t</AssertionArtifact></Request>\
</Body></Envelope>"
    );
    assert_eq!(parse_artifact(default.as_bytes()).unwrap(), TICKET);
}

#[test]
fn an_artifact_in_another_namespace_is_not_the_artifact() {
    for body in [
        // SAML 2.0 protocol namespace
        format!("<r xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><samlp:AssertionArtifact>{TICKET}</samlp:AssertionArtifact></r>"),
        // no namespace at all
        format!("<r><AssertionArtifact>{TICKET}</AssertionArtifact></r>"),
        // an empty artifact
        "<r xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"><samlp:AssertionArtifact> </samlp:AssertionArtifact></r>".into(),
        "<r xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"><samlp:AssertionArtifact/></r>".into(),
    ] {
        assert_eq!(parse_artifact(body.as_bytes()), Err(RequestError::MissingArtifact), "{body}");
    }
}

#[test]
fn a_doctype_is_refused_before_any_entity_is_seen() {
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
<r xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"><samlp:AssertionArtifact>{TICKET}&xxe;</samlp:AssertionArtifact></r>"
    );
    assert_eq!(parse_artifact(xxe.as_bytes()), Err(RequestError::DocType));
    let bomb = "<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]><lolz>&lol2;</lolz>";
    assert_eq!(parse_artifact(bomb.as_bytes()), Err(RequestError::DocType));
}

#[test]
fn garbage_and_broken_xml_are_refused() {
    let artifact = format!("<samlp:AssertionArtifact>{TICKET}</samlp:AssertionArtifact>");
    let ns = "xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"";
    for body in [
        String::new(),
        "   ".into(),
        "not xml at all".into(),
        TICKET.into(),
        format!("<r {ns}>{artifact}"),             // unclosed root
        format!("<r {ns}><x>{artifact}</r>"),      // mismatched end
        format!("<r {ns}>{artifact}</r></r>"),     // unmatched end
        format!("<r {ns}>{artifact}</r><r2/>"),    // two roots
        format!("<r {ns}>{artifact}</r>trailing"), // text after the root
        format!("<r {ns}><samlp:AssertionArtifact>ST-&bogus;</samlp:AssertionArtifact></r>"),
        format!("<r {ns}><samlp:AssertionArtifact>ST-<b/>x</samlp:AssertionArtifact></r>"),
        format!("<r {ns}><samlp:AssertionArtifact>ST-a%ZZ%ff</samlp:AssertionArtifact></r>"),
        format!("<r {ns}>{artifact}{artifact}</r>"),
        format!("<r {ns} a=\"1\" a=\"2\">{artifact}</r"),
    ] {
        assert!(parse_artifact(body.as_bytes()).is_err(), "accepted: {body}");
    }
    assert!(matches!(
        parse_artifact(b"<r>\xff\xfe</r>"),
        Err(RequestError::Malformed(_))
    ));
    assert_eq!(
        parse_artifact(format!("<r {ns}>{artifact}{artifact}</r>").as_bytes()),
        Err(RequestError::SeveralArtifacts)
    );
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 8_000; // 56 KB: under the size cap, so the depth limit is what refuses it
    let body = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    assert_eq!(parse_artifact(body.as_bytes()), Err(RequestError::TooDeep));
    let unclosed = "<a>".repeat(depth);
    assert_eq!(
        parse_artifact(unclosed.as_bytes()),
        Err(RequestError::TooDeep)
    );
    let ok_depth = MAX_DEPTH - 1;
    let nested = format!(
        "{}<samlp:AssertionArtifact xmlns:samlp=\"{PROTOCOL_NS}\">{TICKET}</samlp:AssertionArtifact>{}",
        "<a>".repeat(ok_depth),
        "</a>".repeat(ok_depth)
    );
    assert_eq!(parse_artifact(nested.as_bytes()).unwrap(), TICKET);
}

#[test]
fn a_huge_body_is_refused_unread() {
    let body = vec![b' '; MAX_REQUEST_BYTES + 1];
    assert_eq!(parse_artifact(&body), Err(RequestError::TooLarge));
}

#[test]
fn the_request_is_the_ordinary_validation_with_target_as_service() {
    let body = format!(
        "<r xmlns:samlp=\"{PROTOCOL_NS}\"><samlp:AssertionArtifact>{TICKET}</samlp:AssertionArtifact></r>"
    );
    let req = parse_validate_request(Some(TARGET), Some("true"), body.as_bytes()).unwrap();
    assert_eq!(req.service, TARGET);
    assert_eq!(req.ticket.as_str(), TICKET);
    assert!(req.renew);
    let req = parse_validate_request(Some(TARGET), Some("False"), body.as_bytes()).unwrap();
    assert!(!req.renew);
}

#[test]
fn request_errors_get_their_cas_codes() {
    let with = |ticket: &str| {
        format!("<r xmlns:samlp=\"{PROTOCOL_NS}\"><samlp:AssertionArtifact>{ticket}</samlp:AssertionArtifact></r>")
    };
    let code = |target: Option<&str>, body: &str| {
        parse_validate_request(target, None, body.as_bytes())
            .unwrap_err()
            .code()
    };
    assert_eq!(code(None, &with(TICKET)), "INVALID_REQUEST");
    assert_eq!(code(Some(""), &with(TICKET)), "INVALID_REQUEST");
    assert_eq!(code(Some(TARGET), "garbage"), "INVALID_REQUEST");
    assert_eq!(code(Some(TARGET), "<!DOCTYPE r><r/>"), "INVALID_REQUEST");
    assert_eq!(
        code(Some(TARGET), &with("PT-abc123")),
        "INVALID_TICKET_SPEC"
    );
    assert_eq!(code(Some(TARGET), &with("TGT-abc123")), "INVALID_TICKET");
}
