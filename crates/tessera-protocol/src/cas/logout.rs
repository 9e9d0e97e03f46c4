//! `/logout` (CAS 3.0 §2.3): where the browser may go afterwards.

use crate::service::{ServiceRegistry, ServiceUrl};

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

#[cfg(test)]
mod tests {
    use super::*;
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
