//! Reading requests: query and form parameters, cookies, and where a request comes from.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::app::AppState;

/// Request parameters (query string or urlencoded form). The first occurrence of a name wins;
/// values are percent-decoded exactly once with `+` as space (protocol digest §1.0), and bytes that
/// are not UTF-8 become U+FFFD rather than an error.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `a=1&b=2`.
    pub fn parse(raw: &[u8]) -> Self {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    /// Parses an optional query string.
    pub fn from_query(raw: Option<String>) -> Self {
        raw.map(|q| Self::parse(q.as_bytes())).unwrap_or_default()
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name` if given and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// The value of cookie `name`, if the request carries it (the first one, if several).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// The client's address: the connection's, or, when the connection comes from a trusted reverse
/// proxy, the last address of `X-Forwarded-For` that is not itself a trusted proxy. Anything the
/// client could forge (a header from an untrusted peer) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// Decides the client address of a request from `peer` with these headers.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> Self {
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        if !is_trusted(&peer) {
            return Self(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map_while(|a| a.parse::<IpAddr>().ok())
            .collect();
        Self(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !is_trusted(ip))
                .unwrap_or(peer),
        )
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(Self::resolve(
            peer,
            &parts.headers,
            &app.settings.server.trusted_proxies,
        ))
    }
}

/// Whether a request is a browser's cross-site POST: browsers say so in `Sec-Fetch-Site` or, at
/// least, in `Origin`. Scripts (pycas-sso, curl) send neither.
pub fn is_cross_site_browser_request(headers: &HeaderMap, own_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => !origin.eq_ignore_ascii_case(own_origin),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn params_decode_once_and_keep_the_first() {
        let p = Params::parse(b"service=http%3a%2f%2fh%2fa%3Fb%3D1%26c%3D2&x=a+b&x=second&empty=");
        assert_eq!(p.get("service"), Some("http://h/a?b=1&c=2"));
        assert_eq!(p.get("x"), Some("a b"));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.non_empty("empty"), None);
        assert_eq!(Params::parse(b"t=%ff").get("t"), Some("\u{fffd}"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; TGC=TGT-x"));
        h.append(header::COOKIE, HeaderValue::from_static("TGC=TGT-second"));
        assert_eq!(cookie(&h, "TGC").as_deref(), Some("TGT-x"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.7, 203.0.113.9, 10.1.1.1"),
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From the proxy: the last address that is not a trusted proxy.
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.2"), &h, &trusted).0,
            ip("203.0.113.9")
        );
        // From anyone else: the header is ignored.
        assert_eq!(
            ClientAddr::resolve(ip("192.0.2.1"), &h, &trusted).0,
            ip("192.0.2.1")
        );
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.2"), &h, &[]).0,
            ip("10.0.0.2")
        );
        // Garbage stops the walk; the proxy's own address is what is left.
        h.insert("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(
            ClientAddr::resolve(ip("10.0.0.2"), &h, &trusted).0,
            ip("10.0.0.2")
        );
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let own = "http://127.0.0.1:8080";
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(!is_cross_site_browser_request(&h(&[]), own));
        assert!(!is_cross_site_browser_request(
            &h(&[("sec-fetch-site", "same-origin")]),
            own
        ));
        assert!(is_cross_site_browser_request(
            &h(&[("sec-fetch-site", "cross-site")]),
            own
        ));
        assert!(is_cross_site_browser_request(
            &h(&[("origin", "https://evil.example")]),
            own
        ));
        assert!(!is_cross_site_browser_request(
            &h(&[("origin", "http://127.0.0.1:8080")]),
            own
        ));
    }
}
