//! `/login`: the credential requestor (GET, CAS 3.0 §2.1) and acceptor (POST, §2.2).
//!
//! The protocol crate decides ([`tessera_protocol::cas::login`]); this module fetches what the
//! decision needs (session, registry), then renders or redirects.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tessera_protocol::cas::is_flag_set;
use tessera_protocol::cas::login::{self, LoginFlags, LoginStep, RequestedService};
use tessera_protocol::oidc::ClientRegistry;
use tessera_protocol::service::ServiceUrl;
use tessera_protocol::session::SsoSession;
use tessera_protocol::ticket::{LoginTicketId, TicketGrantingTicketId};
use tessera_protocol::Timestamp;

use crate::app::AppState;
use crate::audit::audit;
use crate::auth::throttle::{self, Verdict};
use crate::auth::Password;
use crate::http::extract::{cookie, is_cross_site_browser_request, ClientAddr, Params};
use crate::http::response::{html, redirect, PageFault};
use crate::http::security::{clear_tgc, set_tgc};
use crate::sso;
use crate::web::templates::{ErrorPage, LoggedInPage, LoginPage, WarnPage};

/// `GET` and `POST {base}/login`.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new().route(&app.path("/login"), get(login_page).post(login_submit))
}

/// What the login form shows.
struct Form<'a> {
    requested: RequestedService<'a>,
    flags: LoginFlags,
    username: &'a str,
    error: Option<&'a str>,
    /// An OpenID Connect authorization request to resume after login, with its client's name.
    resume: Option<Resume<'a>>,
}

/// An OpenID Connect authorization request waiting for the login (the `authorize` parameter: the
/// request's query, which only ever goes back to our own authorization endpoint).
#[derive(Clone, Copy)]
struct Resume<'a> {
    query: &'a str,
    client_name: Option<&'a str>,
}

impl Resume<'_> {
    fn target(&self, app: &AppState) -> String {
        format!("{}/authorize?{}", app.oidc.path, self.query)
    }
}

impl<'a> Form<'a> {
    /// The form with nothing filled in and no message.
    fn blank(requested: RequestedService<'a>, flags: LoginFlags) -> Self {
        Self {
            requested,
            flags,
            username: "",
            error: None,
            resume: None,
        }
    }
}

async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageFault> {
    let params = Params::from_query(query);
    let now = app.clock.now();
    let current = sso::current_session(&app, &headers, now).await?;
    let registry = app.registry().await?;
    let service = params.non_empty("service").map(ServiceUrl::parse);
    let requested = RequestedService::resolve(&registry, service.as_ref());
    let flags = LoginFlags {
        renew: is_flag_set(params.get("renew")),
        gateway: is_flag_set(params.get("gateway")),
    };
    if let Some(query) = params.non_empty("authorize") {
        let clients = app.oidc.clients(app.store.as_ref()).await?;
        let resume = Resume {
            query,
            client_name: client_name(&clients, query),
        };
        let mut response = match &current.session {
            Some(_) if !flags.renew => redirect(&resume.target(&app)),
            _ => {
                let mut form = Form::blank(RequestedService::Absent, flags);
                form.resume = Some(resume);
                show_form(&app, StatusCode::OK, form, now).await?
            }
        };
        if current.stale_cookie {
            response
                .headers_mut()
                .append(header::SET_COOKIE, clear_tgc(&app));
        }
        return Ok(response);
    }
    let step = login::login_page(requested, flags, current.session.as_ref());
    let mut response = match (step, requested, current.session.as_ref()) {
        (LoginStep::IssueTicket, RequestedService::Registered(url, _), Some(session)) => {
            redirect_with_ticket(&app, session, url, false, now).await?
        }
        (
            LoginStep::ConfirmWarning,
            RequestedService::Registered(url, registered),
            Some(session),
        ) => {
            let lt = new_login_ticket(&app, now).await?;
            let page = WarnPage {
                chrome: app.chrome(),
                action: app.path("/login"),
                lt,
                service: url.as_str(),
                service_name: &registered.name,
                username: &session.username,
            };
            html(StatusCode::OK, app.templates.warn(&page)?)
        }
        (LoginStep::GatewayRedirect, RequestedService::Registered(url, _), _) => {
            tracing::debug!(service = %url, "gateway: no session, back to the service without a ticket");
            redirect(url.as_str())
        }
        (LoginStep::AlreadyLoggedIn, _, Some(session)) => logged_in_page(&app, session)?,
        (LoginStep::UnauthorizedService, ..) => {
            unauthorized_service_page(&app, params.get("service"))?
        }
        (LoginStep::AccessDenied, RequestedService::Registered(url, _), Some(session)) => {
            access_denied_page(&app, session, url)?
        }
        _ => show_form(&app, StatusCode::OK, Form::blank(requested, flags), now).await?,
    };
    if current.stale_cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_tgc(&app));
    }
    Ok(response)
}

async fn login_submit(
    State(app): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, PageFault> {
    let (query, form) = (Params::from_query(query), Params::parse(&body));
    // pycas-sso sends `service` in both the query and the body; the form's copy wins.
    let field = |name: &str| form.non_empty(name).or_else(|| query.non_empty(name));
    let now = app.clock.now();
    let registry = app.registry().await?;
    let service = field("service").map(ServiceUrl::parse);
    let requested = RequestedService::resolve(&registry, service.as_ref());
    if matches!(requested, RequestedService::Unregistered) {
        return unauthorized_service_page(&app, field("service"));
    }
    let flags = LoginFlags {
        renew: is_flag_set(field("renew")),
        gateway: is_flag_set(field("gateway")),
    };
    let username = form.get("username").unwrap_or("").trim();
    let clients = match field("authorize") {
        Some(_) => Some(app.oidc.clients(app.store.as_ref()).await?),
        None => None,
    };
    let resume = field("authorize").map(|query| Resume {
        query,
        client_name: clients.as_ref().and_then(|c| client_name(c, query)),
    });
    let again = |status, error| {
        show_form(
            &app,
            status,
            Form {
                requested,
                flags,
                username,
                error: Some(error),
                resume,
            },
            now,
        )
    };

    // The one-time form token (CAS 3.0 §3.5 login ticket) is also the CSRF token. Scripted clients
    // that post directly (pycas-sso) send none; browsers posting from another site are refused.
    let token_ok = match form.non_empty("lt").or_else(|| form.non_empty("execution")) {
        Some(token) => match LoginTicketId::parse(token) {
            Some(lt) => app.store.take_login_ticket(&lt.key(), now).await?,
            None => false,
        },
        None => {
            app.settings.login.allow_direct_post
                && !is_cross_site_browser_request(&headers, &app.public_origin())
        }
    };
    if !token_ok {
        tracing::warn!(client = %client, "login form token missing, expired or already used");
        return again(
            StatusCode::FORBIDDEN,
            "This login form has expired or was already used. Please log in again.",
        )
        .await;
    }

    if is_flag_set(form.get("continue")) {
        return continue_after_warning(&app, &headers, requested, flags, now).await;
    }

    let password = form.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return again(StatusCode::BAD_REQUEST, "Enter your username and password.").await;
    }

    let verdict = throttle::authenticate(
        &app,
        username,
        &Password::new(password.to_owned()),
        client,
        now,
    )
    .await?;
    let user = match verdict {
        Verdict::Accepted(user) => user,
        Verdict::Rejected => {
            return again(StatusCode::UNAUTHORIZED, "Invalid username or password.").await
        }
        Verdict::Locked(until) => {
            let message = format!(
                "Too many failed attempts. Please wait {} and try again.",
                throttle::wait_text(until, now)
            );
            return again(StatusCode::TOO_MANY_REQUESTS, &message).await;
        }
    };

    // A browser has one session: a new login replaces the one it had.
    if let Some(old) = cookie(&headers, &app.settings.session.cookie_name)
        .and_then(|v| TicketGrantingTicketId::parse(&v))
    {
        sso::end_session(&app, &old.key(), "replaced by a new login").await?;
    }
    let long_term = app.settings.session.remember_me
        && (is_flag_set(form.get("rememberMe")) || is_flag_set(form.get("remember")));
    let (tgt, session) =
        sso::start_session(&app, user, long_term, is_flag_set(form.get("warn")), now).await?;
    tracing::info!(user = %session.username, session = %session.id, client = %client, long_term, "login succeeded");
    audit!("login", user = %session.username, client = %client, session = %session.id, via = "form");

    let mut response = match (login::after_authentication(requested, &session), requested) {
        _ if resume.is_some() => redirect(&resume.map(|r| r.target(&app)).unwrap_or_default()),
        (LoginStep::IssueTicket, RequestedService::Registered(url, _)) => {
            redirect_with_ticket(&app, &session, url, true, now).await?
        }
        (LoginStep::AccessDenied, RequestedService::Registered(url, _)) => {
            access_denied_page(&app, &session, url)?
        }
        _ => logged_in_page(&app, &session)?,
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_tgc(&app, tgt.as_str(), long_term));
    Ok(response)
}

/// The warn page's "Continue": enter the service with the existing session.
async fn continue_after_warning(
    app: &AppState,
    headers: &HeaderMap,
    requested: RequestedService<'_>,
    flags: LoginFlags,
    now: Timestamp,
) -> Result<Response, PageFault> {
    let current = sso::current_session(app, headers, now).await?;
    // The user has just confirmed, so a session that would warn may go on; anything else (no
    // session, renew, a service without SSO, access denied) gets the form.
    let step = login::login_page(requested, flags, current.session.as_ref());
    match (step, requested, current.session) {
        (
            LoginStep::IssueTicket | LoginStep::ConfirmWarning,
            RequestedService::Registered(url, _),
            Some(session),
        ) => redirect_with_ticket(app, &session, url, false, now).await,
        _ => show_form(app, StatusCode::OK, Form::blank(requested, flags), now).await,
    }
}

/// The display name of the client an authorization request (its query) names.
fn client_name<'r>(clients: &'r ClientRegistry, query: &str) -> Option<&'r str> {
    let client_id = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v)?;
    clients.get(&client_id).map(|c| c.name.as_str())
}

pub(crate) async fn new_login_ticket(app: &AppState, now: Timestamp) -> Result<String, PageFault> {
    let lt = LoginTicketId::generate(&mut rand::rngs::OsRng);
    app.store
        .put_login_ticket(&lt.key(), now.plus(app.settings.tickets.login_ticket_ttl))
        .await?;
    Ok(lt.as_str().to_owned())
}

async fn show_form(
    app: &AppState,
    status: StatusCode,
    form: Form<'_>,
    now: Timestamp,
) -> Result<Response, PageFault> {
    let (service, service_name) = match form.requested {
        RequestedService::Registered(url, registered) => {
            (Some(url.as_str()), Some(registered.name.as_str()))
        }
        _ => (None, form.resume.and_then(|r| r.client_name)),
    };
    let page = LoginPage {
        chrome: app.chrome(),
        action: app.path("/login"),
        lt: new_login_ticket(app, now).await?,
        service,
        service_name,
        renew: form.flags.renew,
        gateway: form.flags.gateway,
        username: form.username,
        error: form.error,
        remember_me: app.settings.session.remember_me,
        authorize: form.resume.map(|r| r.query),
    };
    Ok(html(status, app.templates.login(&page)?))
}

async fn redirect_with_ticket(
    app: &AppState,
    session: &SsoSession,
    service: &ServiceUrl,
    from_new_login: bool,
    now: Timestamp,
) -> Result<Response, PageFault> {
    let ticket = sso::issue_service_ticket(app, session, service, from_new_login, now).await?;
    Ok(redirect(&service.with_ticket(ticket.as_str())))
}

fn logged_in_page(app: &AppState, session: &SsoSession) -> Result<Response, PageFault> {
    let page = LoggedInPage {
        chrome: app.chrome(),
        username: &session.username,
        logout_url: app.path("/logout"),
    };
    Ok(html(StatusCode::OK, app.templates.logged_in(&page)?))
}

fn unauthorized_service_page(app: &AppState, service: Option<&str>) -> Result<Response, PageFault> {
    tracing::warn!(
        service = service.unwrap_or(""),
        "login refused: service not authorized"
    );
    let page = ErrorPage {
        chrome: app.chrome(),
        title: "Application not authorized",
        message: "The application that sent you here is not registered with this login service, so you cannot log in to it from here. Contact the application's administrator.",
        request_id: None,
    };
    Ok(html(StatusCode::FORBIDDEN, app.templates.error(&page)?))
}

fn access_denied_page(
    app: &AppState,
    session: &SsoSession,
    service: &ServiceUrl,
) -> Result<Response, PageFault> {
    tracing::warn!(user = %session.username, service = %service, "access denied: required attributes not met");
    let page = ErrorPage {
        chrome: app.chrome(),
        title: "Access denied",
        message: "Your account is not allowed to use this application. If you think it should be, contact your administrator.",
        request_id: None,
    };
    Ok(html(StatusCode::FORBIDDEN, app.templates.error(&page)?))
}
