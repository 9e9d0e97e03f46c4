//! `/logout` (CAS 3.0 §2.3) and single logout (CAS 3.0 §2.3.3, appendix C): where the browser may go
//! afterwards, and the `LogoutRequest` every application the session entered is sent.

use std::io::Write as _;

use base64::Engine as _;
use quick_xml::escape::escape;

use crate::service::{append_query, ServiceRegistry, ServiceUrl};
use crate::time::Timestamp;

/// The URL `/logout` redirects to, if any: `service` (CAS 3.0 §2.3.1), else `url` (the CAS 1/2 name
/// that python-cas V1/V2, django-cas-ng and phpCAS still send) when `honour_url` is on. Either is
/// followed only when it belongs to a registered service; anything else shows the logged-out page,
/// so `/logout` is never an open redirect.
pub fn logout_redirect(
    service: Option<&str>,
    url: Option<&str>,
    honour_url: bool,
    registry: &ServiceRegistry,
) -> Option<ServiceUrl> {
    let candidate = service
        .filter(|s| !s.is_empty())
        .or(url.filter(|u| honour_url && !u.is_empty()))?;
    let parsed = ServiceUrl::parse(candidate).ok()?;
    registry.find(parsed.as_str()).map(|_| parsed)
}

/// The SAML 2.0 `LogoutRequest` of CAS single logout, on one line with no XML declaration, exactly as
/// Apereo CAS writes it (protocol digest §2.5, traps T22, T23, T25): `id` is `LR-…`, `name_id` the
/// user, `session_index` the service ticket the application validated.
pub fn logout_request_xml(
    id: &str,
    name_id: &str,
    session_index: &str,
    issue_instant: Timestamp,
) -> String {
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"{}\" Version=\"2.0\" \
         IssueInstant=\"{}\"><saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">{}</saml:NameID>\
         <samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>",
        escape(id),
        issue_instant.to_rfc3339_seconds(),
        escape(name_id),
        escape(session_index)
    )
}

/// The body of the back-channel POST: `logoutRequest=` and the form-encoded XML, nothing else
/// (mod_auth_cas requires the body to start with `logoutRequest=`).
pub fn back_channel_body(logout_request: &str) -> String {
    let mut body = String::from("logoutRequest=");
    body.extend(form_urlencoded::byte_serialize(logout_request.as_bytes()));
    body
}

/// The URL the browser loads for front-channel logout: the logout URL with `SAMLRequest` set to the
/// raw-DEFLATEd, base64-encoded request (SAML 2.0 HTTP-Redirect binding, as Apereo sends it),
/// appended as the last query parameter.
pub fn front_channel_url(logout_url: &str, logout_request: &str) -> String {
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = deflater.write_all(logout_request.as_bytes());
    let deflated = deflater.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let mut query = String::from("SAMLRequest=");
    query.extend(form_urlencoded::byte_serialize(encoded.as_bytes()));
    append_query(logout_url, &query)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn the_logout_request_is_apereos_single_line() {
        let xml = logout_request_xml(
            "LR-1",
            "a<b",
            "ST-abc",
            Timestamp::from_unix_millis(1_738_318_530_000),
        );
        assert_eq!(
            xml,
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"LR-1\" Version=\"2.0\" \
             IssueInstant=\"2025-01-31T10:15:30Z\"><saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">a&lt;b</saml:NameID>\
             <samlp:SessionIndex>ST-abc</samlp:SessionIndex></samlp:LogoutRequest>"
        );
        let body = back_channel_body(&xml);
        assert!(
            body.starts_with("logoutRequest=%3Csamlp%3ALogoutRequest"),
            "{body}"
        );
        assert!(
            body.len() < 1023,
            "mod_auth_cas reads at most 1023 bytes: {}",
            body.len()
        );
        let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded, [("logoutRequest".to_owned(), xml)]);
    }

    #[test]
    fn front_channel_urls_carry_the_deflated_request() {
        let xml = logout_request_xml("LR-2", "u", "ST-x", Timestamp::default());
        for (logout_url, prefix) in [
            ("https://a/slo", "https://a/slo?SAMLRequest="),
            ("https://a/slo?x=1#f", "https://a/slo?x=1&SAMLRequest="),
        ] {
            let url = front_channel_url(logout_url, &xml);
            assert!(url.starts_with(prefix), "{url}");
            let value = url
                .split("SAMLRequest=")
                .nth(1)
                .unwrap()
                .split('#')
                .next()
                .unwrap();
            let b64: String = form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let mut inflated = String::new();
            flate2::read::DeflateDecoder::new(raw.as_slice())
                .read_to_string(&mut inflated)
                .unwrap();
            assert_eq!(inflated, xml);
        }
    }

    use crate::service::{RegisteredService, ServiceOrigin, ServicePattern};

    #[test]
    fn only_registered_urls_are_followed() {
        let registry = ServiceRegistry::new(
            vec![],
            vec![RegisteredService::new(
                "a",
                ServicePattern::regex(r"https://a\.org/.*").unwrap(),
                ServiceOrigin::Database,
            )],
        );
        let go = |s, u, h| logout_redirect(s, u, h, &registry).map(|x| x.as_str().to_owned());
        assert_eq!(
            go(Some("https://a.org/bye"), None, true).as_deref(),
            Some("https://a.org/bye")
        );
        assert_eq!(
            go(None, Some("https://a.org/bye"), true).as_deref(),
            Some("https://a.org/bye")
        );
        assert_eq!(go(None, Some("https://a.org/bye"), false), None);
        assert_eq!(go(Some("https://evil.net/"), None, true), None);
        assert_eq!(go(Some("https://a.org@evil.net/"), None, true), None);
        assert_eq!(
            go(Some(""), Some("https://a.org/u"), true).as_deref(),
            Some("https://a.org/u")
        );
        assert_eq!(go(None, None, true), None);
    }
}
