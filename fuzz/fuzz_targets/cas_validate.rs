//! CAS ticket validation requests (`/validate`, `/serviceValidate`, `/proxyValidate`, `/proxy`):
//! the input is the query string, decoded as the server decodes it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{assert_well_formed_xml, first, has_control, pairs};
use tessera_protocol::cas::is_flag_set;
use tessera_protocol::cas::proxy::ProxyRequest;
use tessera_protocol::cas::validate::{
    Endpoint, ResponseFormat, ValidateParams, ValidateRequest, ValidationTicket,
};
use tessera_protocol::cas::xml;

fuzz_target!(|data: &[u8]| {
    let pairs = pairs(data);
    let get = |name: &str| first(&pairs, name).map(str::to_owned);
    let params = ValidateParams {
        service: get("service"),
        ticket: get("ticket"),
        renew: get("renew"),
        pgt_url: get("pgtUrl"),
    };

    match ResponseFormat::parse(get("format").as_deref()) {
        Ok(_) => assert!(get("format")
            .is_none_or(|f| f.eq_ignore_ascii_case("xml") || f.eq_ignore_ascii_case("json"))),
        Err(e) => assert_well_formed_xml(&xml::service_response_xml(&Err(e))),
    }

    for endpoint in [
        Endpoint::Validate,
        Endpoint::ServiceValidate,
        Endpoint::ProxyValidate,
    ] {
        match ValidateRequest::parse(endpoint, &params) {
            Ok(req) => {
                assert_eq!(Some(req.service.as_str()), params.service.as_deref());
                assert!(!req.service.is_empty());
                assert_eq!(Some(req.ticket.as_str()), params.ticket.as_deref());
                match &req.ticket {
                    ValidationTicket::Service(t) => assert!(t.as_str().starts_with("ST-")),
                    ValidationTicket::Proxy(t) => {
                        assert!(t.as_str().starts_with("PT-"));
                        assert_eq!(
                            endpoint,
                            Endpoint::ProxyValidate,
                            "a proxy ticket outside proxyValidate"
                        );
                    }
                }
                assert_eq!(req.renew, is_flag_set(params.renew.as_deref()));
                assert!(req.pgt_url.as_deref().is_none_or(|u| !u.is_empty()));
            }
            Err(e) => {
                // The message echoes part of the ticket: never a control character (log and
                // response injection), and the rendered answers stay well-formed.
                let message = e.to_string();
                assert!(!has_control(&message), "control character in {message:?}");
                let result = Err(e);
                let body = xml::service_response_xml(&result);
                assert_well_formed_xml(&body);
                let json: serde_json::Value =
                    serde_json::from_str(&xml::service_response_json(&result))
                        .unwrap_or_else(|err| panic!("invalid JSON answer: {err}"));
                assert!(json.is_object());
                assert_eq!(xml::cas1(&result), "no\n");
            }
        }
    }

    let pgt = get("pgt");
    let target = get("targetService");
    match ProxyRequest::parse(pgt.as_deref(), target.as_deref()) {
        Ok(req) => {
            assert_eq!(Some(req.pgt.as_str()), pgt.as_deref());
            assert!(req.pgt.as_str().starts_with("PGT-"));
            assert_eq!(Some(req.target_service.as_str()), target.as_deref());
            assert!(!has_control(req.target_service.as_str()));
        }
        Err(e) => {
            let result = Err(e);
            assert_well_formed_xml(&xml::proxy_response_xml(&result));
            serde_json::from_str::<serde_json::Value>(&xml::proxy_response_json(&result))
                .unwrap_or_else(|err| panic!("invalid JSON proxy answer: {err}"));
        }
    }
});
