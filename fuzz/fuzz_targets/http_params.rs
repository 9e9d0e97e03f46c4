//! Request parsing in the server crate: query/form parameters (`Params::parse`), cookies
//! (`cookie`), the cross-site check and the redaction of TGTs in logged paths. Line 1 is a query
//! string, line 2 a cookie name, line 3 a path, and every further line a `Cookie` header value (or
//! `origin: …` / `sec-fetch-site: …`).
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tessera::http::extract::{cookie, is_cross_site_browser_request, Params};
use tessera::http::rest::loggable_path;
use tessera_fuzz::{lines, pairs, text};
use tessera_protocol::ticket::TicketGrantingTicketId;

fuzz_target!(|data: &[u8]| {
    let parts = lines(data, 4);

    let params = Params::parse(parts[0]);
    let all = pairs(parts[0]);
    for (k, _) in &all {
        let first = all.iter().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
        assert_eq!(
            params.get(k),
            first,
            "the first occurrence of {k:?} must win"
        );
        assert_eq!(params.non_empty(k), first.filter(|v| !v.is_empty()));
    }
    if let Ok(query) = std::str::from_utf8(parts[0]) {
        let from_query = Params::from_query(Some(query.to_owned()));
        for (k, _) in &all {
            assert_eq!(from_query.get(k), params.get(k));
        }
    }
    assert_eq!(Params::from_query(None).get(""), None);

    let mut headers = HeaderMap::new();
    for line in parts[3].split(|b| *b == b'\n').take(8) {
        let (name, value) = match line.strip_prefix(b"origin: ") {
            Some(v) => (header::ORIGIN, v),
            None => match line.strip_prefix(b"sec-fetch-site: ") {
                Some(v) => (header::HeaderName::from_static("sec-fetch-site"), v),
                None => (header::COOKIE, line),
            },
        };
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    let name = text(parts[1]);
    for n in [name.as_str(), "TGC"] {
        if let Some(v) = cookie(&headers, n) {
            assert!(!v.contains(';'), "cookie value with a separator: {v:?}");
            assert!(!v.starts_with('"') && !v.ends_with('"'));
            assert!(
                !n.contains(';'),
                "found a cookie whose name has a separator"
            );
        }
    }
    let _ = is_cross_site_browser_request(&headers, "https://sso.example.org");

    // A TGT in a logged path is never written out whole.
    let path = text(parts[2]);
    let logged = loggable_path(&path);
    for segment in path.split('/') {
        if TicketGrantingTicketId::parse(segment).is_some() && segment.len() > 8 {
            assert!(
                !logged.split('/').any(|s| s == segment),
                "TGT logged whole: {logged:?}"
            );
        }
    }
});
