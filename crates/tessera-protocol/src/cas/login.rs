//! `/login` as a credential requestor and acceptor (CAS 3.0 §2.1, §2.2).
//!
//! The handler resolves the `service` parameter against the registry and the TGC cookie to a live
//! session, then asks [`login_page`] (GET) or [`after_authentication`] (successful POST) what to do.

use crate::service::{RegisteredService, ServiceRegistry, ServiceUrl, ServiceUrlError};
use crate::session::SsoSession;

/// The `service` parameter, resolved against the registry.
#[derive(Debug, Clone, Copy)]
pub enum RequestedService<'a> {
    /// No `service` parameter.
    Absent,
    /// A `service` that is malformed or matches no enabled registered service.
    Unregistered,
    /// A registered service.
    Registered(&'a ServiceUrl, &'a RegisteredService),
}

impl<'a> RequestedService<'a> {
    /// Resolves a `service` parameter (already checked with [`ServiceUrl::parse`], `None` when
    /// absent) against the registry: a refused URL or one matching no enabled service is
    /// [`RequestedService::Unregistered`].
    pub fn resolve(
        registry: &'a ServiceRegistry,
        service: Option<&'a Result<ServiceUrl, ServiceUrlError>>,
    ) -> Self {
        match service {
            None => Self::Absent,
            Some(Err(_)) => Self::Unregistered,
            Some(Ok(url)) => registry
                .find(url.as_str())
                .map_or(Self::Unregistered, |registered| {
                    Self::Registered(url, registered)
                }),
        }
    }
}

/// The `renew` and `gateway` flags (already read with [`crate::cas::is_flag_set`]) and the
/// `method` parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginFlags {
    /// Ask for credentials even with a live session (§2.1.1).
    pub renew: bool,
    /// Never ask for credentials (§2.1.1).
    pub gateway: bool,
    /// How the service gets its ticket (§2.1.1).
    pub method: ResponseMethod,
}

/// How the service gets its ticket: the `method` parameter (CAS 3.0 §2.1.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponseMethod {
    /// `GET`, the default: a redirect to the service with `ticket` in its query.
    #[default]
    Redirect,
    /// `POST`: a page whose form posts `ticket` to the service.
    Post,
}

impl ResponseMethod {
    /// Reads `method`: `POST` in any case; anything else (`GET`, the optional `HEADER`, nothing)
    /// is a redirect, as the protocol allows.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case("POST") => Self::Post,
            _ => Self::Redirect,
        }
    }

    /// The parameter that carries this method through the login form, if not the default.
    pub fn as_param(self) -> Option<&'static str> {
        match self {
            Self::Redirect => None,
            Self::Post => Some("POST"),
        }
    }
}

/// What `/login` does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// Show the credentials form.
    ShowForm,
    /// Issue a service ticket and redirect to the service with it.
    IssueTicket,
    /// Ask the user to confirm before going on to the service (the session's `warn` flag).
    ConfirmWarning,
    /// `gateway` without a session: redirect to the service as given, with no ticket (§2.1.1).
    GatewayRedirect,
    /// No service: the user is logged in; say so.
    AlreadyLoggedIn,
    /// The service is not registered: error page, no redirect, no ticket (§2.1.1 "MUST NOT").
    UnauthorizedService,
    /// The user lacks an attribute value the service requires.
    AccessDenied,
}

/// `GET /login`: `session` is the caller's live SSO session, if any.
///
/// Order, after CAS 3.0 §2.1 and Apereo: an unregistered service stops everything, even with
/// `gateway`; `renew` wins over `gateway` and over the session; a service that opted out of single
/// sign-on always asks for the password.
pub fn login_page(
    service: RequestedService<'_>,
    flags: LoginFlags,
    session: Option<&SsoSession>,
) -> LoginStep {
    match (service, session) {
        (RequestedService::Unregistered, _) => LoginStep::UnauthorizedService,
        _ if flags.renew => LoginStep::ShowForm,
        (RequestedService::Absent, Some(_)) => LoginStep::AlreadyLoggedIn,
        // gateway without service is undefined; act as if neither was given (§2.1.1).
        (RequestedService::Absent, None) => LoginStep::ShowForm,
        (RequestedService::Registered(_, registered), Some(session)) => {
            if !registered.sso {
                LoginStep::ShowForm
            } else if !registered.allows(&session.attributes) {
                LoginStep::AccessDenied
            } else if session.warn {
                LoginStep::ConfirmWarning
            } else {
                LoginStep::IssueTicket
            }
        }
        (RequestedService::Registered(..), None) if flags.gateway => LoginStep::GatewayRedirect,
        (RequestedService::Registered(..), None) => LoginStep::ShowForm,
    }
}

/// `POST /login` after the password checked out and `session` was created (§2.2.4).
pub fn after_authentication(service: RequestedService<'_>, session: &SsoSession) -> LoginStep {
    match service {
        RequestedService::Absent => LoginStep::AlreadyLoggedIn,
        RequestedService::Unregistered => LoginStep::UnauthorizedService,
        RequestedService::Registered(_, registered) if !registered.allows(&session.attributes) => {
            LoginStep::AccessDenied
        }
        RequestedService::Registered(..) => LoginStep::IssueTicket,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Attributes;
    use crate::service::{Requirement, ServiceOrigin, ServicePattern};
    use crate::session::SessionId;
    use crate::ticket::TicketKey;
    use crate::time::Timestamp;

    fn session(warn: bool) -> SsoSession {
        SsoSession {
            id: SessionId::from_stored("s".into()),
            tgt: TicketKey::of("t"),
            username: "u".into(),
            attributes: Attributes::new(),
            authenticated_at: Timestamp::default(),
            last_used_at: Timestamp::default(),
            long_term: false,
            warn,
        }
    }

    fn flags(renew: bool, gateway: bool) -> LoginFlags {
        LoginFlags {
            renew,
            gateway,
            method: ResponseMethod::Redirect,
        }
    }

    #[test]
    fn services_resolve_against_the_registry() {
        use crate::service::ServiceRegistry;
        let svc = RegisteredService::new(
            "a",
            ServicePattern::Exact("https://a/".into()),
            ServiceOrigin::Database,
        );
        let registry = ServiceRegistry::new(vec![svc], vec![]);
        let (known, unknown, refused) = (
            ServiceUrl::parse("https://a/"),
            ServiceUrl::parse("https://b/"),
            ServiceUrl::parse("https://x@a/"),
        );
        assert!(matches!(
            RequestedService::resolve(&registry, None),
            RequestedService::Absent
        ));
        assert!(
            matches!(RequestedService::resolve(&registry, Some(&known)), RequestedService::Registered(_, s) if s.name == "a")
        );
        assert!(matches!(
            RequestedService::resolve(&registry, Some(&unknown)),
            RequestedService::Unregistered
        ));
        assert!(matches!(
            RequestedService::resolve(&registry, Some(&refused)),
            RequestedService::Unregistered
        ));
    }

    #[test]
    fn decision_table() {
        let url = ServiceUrl::parse("https://a/").unwrap();
        let svc = RegisteredService::new(
            "a",
            ServicePattern::Exact("https://a/".into()),
            ServiceOrigin::Database,
        );
        let mut no_sso = svc.clone();
        no_sso.sso = false;
        let mut strict = svc.clone();
        strict.requirements = vec![Requirement::parse("memberOf=staff").unwrap()];
        let reg = RequestedService::Registered(&url, &svc);
        let s = session(false);
        use LoginStep::*;
        let cases: Vec<(
            RequestedService<'_>,
            LoginFlags,
            Option<&SsoSession>,
            LoginStep,
        )> = vec![
            (
                RequestedService::Unregistered,
                flags(false, true),
                None,
                UnauthorizedService,
            ),
            (
                RequestedService::Unregistered,
                flags(true, false),
                Some(&s),
                UnauthorizedService,
            ),
            (
                RequestedService::Absent,
                flags(false, false),
                None,
                ShowForm,
            ),
            (RequestedService::Absent, flags(false, true), None, ShowForm),
            (
                RequestedService::Absent,
                flags(false, false),
                Some(&s),
                AlreadyLoggedIn,
            ),
            (
                RequestedService::Absent,
                flags(true, false),
                Some(&s),
                ShowForm,
            ),
            (reg, flags(false, false), Some(&s), IssueTicket),
            (reg, flags(true, true), Some(&s), ShowForm),
            (reg, flags(true, true), None, ShowForm),
            (reg, flags(false, true), None, GatewayRedirect),
            (reg, flags(false, false), None, ShowForm),
            (
                RequestedService::Registered(&url, &no_sso),
                flags(false, false),
                Some(&s),
                ShowForm,
            ),
            (
                RequestedService::Registered(&url, &strict),
                flags(false, false),
                Some(&s),
                AccessDenied,
            ),
        ];
        for (i, (service, f, session, expected)) in cases.into_iter().enumerate() {
            assert_eq!(login_page(service, f, session), expected, "case {i}");
        }
        assert_eq!(
            login_page(reg, flags(false, false), Some(&session(true))),
            ConfirmWarning
        );
        assert_eq!(after_authentication(reg, &s), IssueTicket);
        assert_eq!(
            after_authentication(RequestedService::Absent, &s),
            AlreadyLoggedIn
        );
        assert_eq!(
            after_authentication(RequestedService::Registered(&url, &strict), &s),
            AccessDenied
        );
    }

    #[test]
    fn method_post_is_read_in_any_case_and_anything_else_redirects() {
        for post in ["POST", "post", " Post "] {
            assert_eq!(ResponseMethod::parse(Some(post)), ResponseMethod::Post);
        }
        for other in [None, Some("GET"), Some("HEADER"), Some(""), Some("POSTS")] {
            assert_eq!(
                ResponseMethod::parse(other),
                ResponseMethod::Redirect,
                "{other:?}"
            );
        }
        assert_eq!(ResponseMethod::Post.as_param(), Some("POST"));
        assert_eq!(ResponseMethod::Redirect.as_param(), None);
    }
}
