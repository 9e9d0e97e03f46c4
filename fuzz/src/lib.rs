//! Helpers shared by the fuzz targets: how raw fuzzer bytes become the inputs the server would see
//! (query strings, header lines), and the small fixed registries the targets check requests against.
//!
//! Input formats are line based so that seed files under `corpus/<target>/` stay readable: a real
//! query string, a real SOAP body, a real token.

use std::sync::LazyLock;

use tessera_protocol::oidc::{ClientRegistry, ClientSecret, OidcClient};
use tessera_protocol::service::{
    RegisteredService, ServiceOrigin, ServicePattern, ServiceRegistry,
};

/// The issuer every OIDC target uses.
pub const ISSUER: &str = "https://sso.example.org";
/// The confidential client's secret.
pub const APP_SECRET: &str = "s3cret-s3cret-s3cret-s3cret-s3cret";
/// Redirect URIs of the confidential client `app` (one with a query of its own).
pub const APP_REDIRECTS: [&str; 2] = [
    "https://app.example.org/oidc/callback",
    "https://app.example.org/cb?tenant=a",
];
/// Redirect URI of the public client `spa`.
pub const SPA_REDIRECT: &str = "https://spa.example.org/cb";
/// Post-logout redirect URI of `app`.
pub const APP_POST_LOGOUT: &str = "https://app.example.org/bye";

/// The registry of the OIDC targets: confidential `app`, public `spa` (PKCE required), and a
/// disabled `old` client with the same redirect URIs as `app` (it must never be chosen).
pub fn clients() -> &'static ClientRegistry {
    static CLIENTS: LazyLock<ClientRegistry> = LazyLock::new(|| {
        let mut app = OidcClient::new(
            "app",
            ClientSecret::hash(APP_SECRET),
            ServiceOrigin::ConfigFile,
        );
        app.name = "The App".into();
        app.redirect_uris = APP_REDIRECTS.iter().map(|s| (*s).to_owned()).collect();
        app.post_logout_redirect_uris = vec![APP_POST_LOGOUT.to_owned()];
        app.scopes.push("offline_access".into());
        let mut spa = OidcClient::new("spa", ClientSecret::Public, ServiceOrigin::Database);
        spa.redirect_uris = vec![SPA_REDIRECT.to_owned()];
        spa.post_logout_redirect_uris = vec!["https://spa.example.org/".to_owned()];
        let mut old = app.clone();
        old.id = "old".into();
        old.redirect_uris = vec!["https://old.example.org/cb".into()];
        old.post_logout_redirect_uris = vec!["https://old.example.org/bye".into()];
        old.enabled = false;
        ClientRegistry::new(vec![app, spa], vec![old])
    });
    &CLIENTS
}

/// The CAS service registry: a regex, a prefix and an exact service, and a disabled catch-all that
/// must never be chosen.
pub fn services() -> &'static ServiceRegistry {
    static SERVICES: LazyLock<ServiceRegistry> = LazyLock::new(|| {
        let pattern = |kind: &str, source: &str| match ServicePattern::from_parts(kind, source) {
            Ok(p) => p,
            Err(e) => panic!("fixed pattern {source}: {e}"),
        };
        let mut app = RegisteredService::new(
            "app",
            pattern("regex", r"https://app\.example\.org(/.*)?"),
            ServiceOrigin::ConfigFile,
        );
        app.proxy_callback = Some(pattern("prefix", "https://app.example.org/pgt"));
        let wiki = RegisteredService::new(
            "wiki",
            pattern("prefix", "https://wiki.example.org/"),
            ServiceOrigin::ConfigFile,
        );
        let exact = RegisteredService::new(
            "exact",
            pattern("exact", "http://localhost:8000/login?next=%2F"),
            ServiceOrigin::Database,
        );
        let mut all =
            RegisteredService::new("all", pattern("regex", ".*"), ServiceOrigin::Database);
        all.enabled = false;
        ServiceRegistry::new(vec![app, wiki], vec![exact, all])
    });
    &SERVICES
}

/// The input as text: invalid UTF-8 becomes U+FFFD, as the server's form decoding does.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The first `n` lines of `data` (missing ones are empty), the last one holding the rest.
pub fn lines(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == b'\n').collect();
    out.resize(n, b"");
    out
}

/// Name/value pairs of a query string or form body, decoded as the server decodes them.
pub fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name` in `pairs` (the server's rule: the first occurrence wins).
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether `s` has a character that must never reach a header, a log line or a page unfiltered.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Whether `s` is well-formed XML as far as quick-xml's reader can tell (tags balanced and closed,
/// attributes and entities readable), with exactly one root element.
pub fn assert_well_formed_xml(s: &str) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(s);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
                for a in e.attributes() {
                    let a = a.unwrap_or_else(|err| panic!("bad attribute in {s:?}: {err}"));
                    a.unescape_value()
                        .unwrap_or_else(|err| panic!("bad attribute value in {s:?}: {err}"));
                }
            }
            Ok(Event::Empty(e)) => {
                if depth == 0 {
                    roots += 1;
                }
                for a in e.attributes() {
                    let a = a.unwrap_or_else(|err| panic!("bad attribute in {s:?}: {err}"));
                    a.unescape_value()
                        .unwrap_or_else(|err| panic!("bad attribute value in {s:?}: {err}"));
                }
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => {
                t.unescape()
                    .unwrap_or_else(|err| panic!("bad text in {s:?}: {err}"));
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed XML ({e}): {s:?}"),
        }
    }
    assert_eq!(depth, 0, "unclosed element in {s:?}");
    assert_eq!(roots, 1, "{roots} root elements in {s:?}");
}
