//! `/logout` and single logout: where `/logout?service=…&url=…` may redirect, and the
//! `LogoutRequest` built for a user and a ticket, as sent back-channel (form POST body) and
//! front-channel (DEFLATE + base64 in the logout URL). Lines: `service`, `url`, the user name, the
//! session index (service ticket).
#![no_main]

use std::io::Read as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use quick_xml::events::Event;
use tessera_fuzz::{assert_well_formed_xml, lines, pairs, services, text};
use tessera_protocol::cas::logout::{
    back_channel_body, front_channel_url, logout_redirect, logout_request_xml,
};
use tessera_protocol::Timestamp;

/// The text of the first `local` element of `xml`, unescaped.
fn element_text(xml: &str, local: &[u8]) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    let mut out = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == local => inside = true,
            Event::End(e) if inside && e.local_name().as_ref() == local => return Some(out),
            Event::Text(t) if inside => out.push_str(&t.unescape().ok()?),
            Event::Eof => return None,
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = lines(data, 4);
    let (service, url, name_id, session_index) = (
        text(parts[0]),
        text(parts[1]),
        text(parts[2]),
        text(parts[3]),
    );

    // `/logout` follows `service` (or `url`) only to a registered, enabled service.
    for honour_url in [false, true] {
        for service in [Some(service.as_str()), None] {
            let chosen = logout_redirect(service, Some(&url), honour_url, services());
            let Some(u) = chosen else { continue };
            assert!(
                Some(u.as_str()) == service.filter(|s| !s.is_empty())
                    || (honour_url && u.as_str() == url),
                "redirect to {u:?}, which was not asked for"
            );
            let found = services()
                .find(u.as_str())
                .expect("logout redirect to an unregistered service");
            assert!(found.enabled);
        }
    }

    // The LogoutRequest is well-formed and carries the user and ticket unchanged.
    let xml = logout_request_xml(
        "LR-1-abc",
        &name_id,
        &session_index,
        Timestamp::from_unix_millis(1_738_318_530_000),
    );
    assert_well_formed_xml(&xml);
    // XML parsers turn \r into \n; the rest must come back as given.
    if !name_id.contains('\r') && !session_index.contains('\r') {
        assert_eq!(
            element_text(&xml, b"NameID").as_deref(),
            Some(name_id.as_str())
        );
        assert_eq!(
            element_text(&xml, b"SessionIndex").as_deref(),
            Some(session_index.as_str())
        );
    }

    let body = back_channel_body(&xml);
    let rest = body
        .strip_prefix("logoutRequest=")
        .expect("the body starts with logoutRequest=");
    assert!(!rest.contains('&'), "the XML leaks into another form field");
    assert_eq!(
        pairs(body.as_bytes()),
        vec![("logoutRequest".to_owned(), xml.clone())]
    );

    let front = front_channel_url(&url, &xml);
    let base = url.split_once('#').map_or(url.as_str(), |(b, _)| b);
    assert!(front.starts_with(base));
    let query = front[base.len() + 1..]
        .split_once('#')
        .map_or(&front[base.len() + 1..], |(q, _)| q);
    let [(name, value)] = pairs(query.as_bytes())
        .try_into()
        .unwrap_or_else(|p| panic!("more than SAMLRequest appended: {p:?}"));
    assert_eq!(name, "SAMLRequest");
    let deflated = STANDARD.decode(value).expect("SAMLRequest is base64");
    let mut inflated = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_string(&mut inflated)
        .expect("SAMLRequest is raw DEFLATE");
    assert_eq!(inflated, xml);
});
