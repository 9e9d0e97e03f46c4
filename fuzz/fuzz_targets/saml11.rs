//! SAML 1.1 validation (`POST /samlValidate?TARGET=…`): the first line is the query string (with
//! `TARGET` and `renew`), the rest is the SOAP request body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tessera_fuzz::{assert_well_formed_xml, first, lines, pairs};
use tessera_protocol::cas::saml11::{self, ResponseContext};
use tessera_protocol::cas::validate::ValidationTicket;
use tessera_protocol::Timestamp;

fuzz_target!(|data: &[u8]| {
    let parts = lines(data, 2);
    let query = pairs(parts[0]);
    let body = parts[1];
    let target = first(&query, "TARGET").filter(|t| !t.is_empty());
    let renew = first(&query, "renew");

    let artifact = saml11::parse_artifact(body);
    if let Ok(a) = &artifact {
        assert!(!a.is_empty());
        assert_eq!(a.trim(), a, "artifact not trimmed");
    }
    let result = saml11::parse_validate_request(target, renew, body);
    if let Ok(req) = &result {
        assert_eq!(Some(req.service.as_str()), target);
        match &req.ticket {
            ValidationTicket::Service(t) => {
                assert_eq!(Ok(t.as_str()), artifact.as_ref().map(String::as_str));
            }
            ValidationTicket::Proxy(_) => panic!("samlValidate accepted a proxy ticket"),
        }
    }

    // The failure answer echoes TARGET and the parse error: it must stay well-formed SOAP.
    if let Err(e) = result {
        let ctx = ResponseContext {
            target,
            issuer: "sso.example.org",
            now: Timestamp::from_unix_millis(1_738_318_530_000),
        };
        let answer = saml11::response(&Err(e), &ctx, &mut StdRng::seed_from_u64(0));
        assert_well_formed_xml(&answer);
    }
    if let Some(target) = target {
        let _ = saml11::releases_attributes_to(target, true);
    }
});
