//! The `service` parameter: `ServiceUrl::parse` and what is built from a parsed URL (the redirect
//! with its ticket, the comparison at validation), `append_query`, and the proxy callback check.
//! Line 1 is the URL, line 2 a URL presented at validation (and the query to append).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{lines, services, text};
use tessera_protocol::cas::proxy::check_callback;
use tessera_protocol::service::{append_query, ServiceUrl, MAX_SERVICE_URL_LEN};

fuzz_target!(|data: &[u8]| {
    let parts = lines(data, 2);
    let (raw, other) = (text(parts[0]), text(parts[1]));

    if let Ok(url) = ServiceUrl::parse(&raw) {
        let s = url.as_str();
        assert_eq!(s, raw);
        assert!(!s.is_empty() && s.len() <= MAX_SERVICE_URL_LEN);
        assert!(
            !s.chars().any(|c| c.is_control() || c == '\\'),
            "control character or backslash in a parsed service URL: {s:?}"
        );
        let (scheme, _) = s
            .split_once(':')
            .expect("a parsed service URL has a scheme");
        assert!(scheme.starts_with(|c: char| c.is_ascii_alphabetic()));
        let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        let host = if http {
            let parsed = url::Url::parse(s).expect("a parsed http(s) service URL is a URL");
            assert!(
                parsed.host_str().is_some_and(|h| !h.is_empty()),
                "no host: {s:?}"
            );
            assert!(
                parsed.username().is_empty() && parsed.password().is_none(),
                "credentials: {s:?}"
            );
            assert!(s[scheme.len()..].starts_with("://"));
            parsed.host_str().map(str::to_owned)
        } else {
            None
        };
        assert!(url.matches_presented(s));

        // The redirect carrying the ticket goes to the same place, with the ticket last.
        let redirect = url.with_ticket("ST-1a2b3c");
        if !s.contains('#') {
            assert!(redirect.ends_with("ticket=ST-1a2b3c"), "{redirect:?}");
        }
        if redirect.len() <= MAX_SERVICE_URL_LEN {
            let again = ServiceUrl::parse(&redirect)
                .unwrap_or_else(|e| panic!("{s:?} with its ticket is refused ({e}): {redirect:?}"));
            if http {
                let parsed = url::Url::parse(again.as_str()).expect("still a URL");
                assert_eq!(
                    parsed.host_str().map(str::to_owned),
                    host,
                    "the ticket moved the host: {redirect:?}"
                );
            }
        }
        let _ = url.matches_presented(&other);
    }

    let appended = append_query(&raw, &other);
    let (base, fragment) = raw
        .split_once('#')
        .map_or((raw.as_str(), None), |(b, f)| (b, Some(f)));
    assert_eq!(appended.len(), raw.len() + other.len() + 1);
    assert!(appended.starts_with(base));
    if let Some(fragment) = fragment {
        assert!(appended.ends_with(&format!("#{fragment}")));
    }

    // A proxy callback is accepted only when https, registered, and a valid service URL.
    let app = services().by_name("app").expect("app is registered");
    for allow_http in [false, true] {
        if check_callback(app, &raw, allow_http).is_ok() {
            assert!(ServiceUrl::parse(&raw).is_ok());
            let lower = raw.to_ascii_lowercase();
            assert!(lower.starts_with("https:") || (allow_http && lower.starts_with("http:")));
            assert!(app.proxy_callback.as_ref().is_some_and(|p| p.matches(&raw)));
        }
    }
});
