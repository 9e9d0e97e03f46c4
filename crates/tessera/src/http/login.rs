//! `/login`: the credential requestor (GET, CAS 3.0 §2.1) and acceptor (POST, §2.2).
//!
//! The protocol crate decides ([`tessera_protocol::cas::login`]); this module fetches what the
//! decision needs (session, registry), then renders or redirects.
//!
//! Pages are shown in the visitor's language ([`page_view`]) with the theme of the service they are
//! about; handlers pass message keys ([`Message`]), never English text. A failed login says the same
//! thing, with the same status, whether the username exists or not (the authenticator checks
//! unknown users against a dummy hash, so timing does not tell either), and never echoes the
//! password. When a login source cannot be asked (a directory that is down), the form comes back
//! with the username, a 503 and "try again in a few minutes", and no session is started or ended.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tessera_protocol::cas::is_flag_set;
use tessera_protocol::cas::login::{self, LoginFlags, LoginStep, RequestedService, ResponseMethod};
use tessera_protocol::oidc::ClientRegistry;
use tessera_protocol::service::{RegisteredService, ServiceUrl};
use tessera_protocol::session::SsoSession;
use tessera_protocol::ticket::{LoginTicketId, TicketGrantingTicketId};
use tessera_protocol::Timestamp;
use tessera_store::StoreError;

use crate::app::AppState;
use crate::audit::audit;
use crate::auth::throttle::{self, Verdict};
use crate::auth::{AuthError, Password};
use crate::http::extract::{cookie, is_cross_site_browser_request, ClientAddr, Params};
use crate::http::response::{html, not_found_page, redirect, PageFault};
use crate::http::security::{clear_tgc, set_tgc};
use crate::sso;
use crate::web::i18n::LangRequest;
use crate::web::templates::{
    AccessDeniedPage, ErrorPage, FormPostPage, LoggedInPage, LoginPage, Message, Page, View,
    WarnPage,
};

/// The cookie that remembers the language picked with the switcher.
const LANG_COOKIE: &str = "tessera_lang";

/// `GET` and `POST {base}/login`, and the static files of per-service themes (the login page is
/// where a service's look shows). Faults are shown in the visitor's language.
pub fn router(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(&app.path("/login"), get(login_page).post(login_submit))
        .route(
            &app.path("/static/themes/{theme}/{file}"),
            get(theme_static_file),
        )
}

/// What the login form shows.
struct Form<'a> {
    requested: RequestedService<'a>,
    flags: LoginFlags,
    username: &'a str,
    error: Option<Message>,
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
    /// The authorization endpoint with the request, its query re-encoded so that nothing the
    /// browser sent (a raw CR or LF) can break the `Location` header.
    fn target(&self, app: &AppState) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form_urlencoded::parse(self.query.as_bytes()))
            .finish();
        format!("{}/authorize?{query}", app.oidc.path)
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

/// The view of a page: its language (the `lang` parameter, OpenID Connect `ui_locales`, the
/// language cookie, then `Accept-Language`) and, for pages that may be loaded again, their address
/// for the language switcher's links.
pub(crate) fn page_view(
    app: &AppState,
    headers: &HeaderMap,
    lang: Option<&str>,
    ui_locales: Option<&str>,
    here: Option<String>,
) -> View {
    let cookie = cookie(headers, LANG_COOKIE);
    let accept_language = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    app.templates.view(
        LangRequest {
            explicit: lang,
            ui_locales,
            cookie: cookie.as_deref(),
            accept_language,
        },
        here,
    )
}

/// The view of a page that is about no service and is not worth loading again (an error): its
/// language from the query's `lang` and `ui_locales` (or those of the OpenID Connect request the
/// login form carries in `authorize`), the language cookie and `Accept-Language`; no switcher.
pub(crate) fn request_view(app: &AppState, headers: &HeaderMap, query: Option<&str>) -> View {
    let query = query.unwrap_or("");
    let lang = query_param(query, "lang");
    let ui_locales = query_param(query, "ui_locales")
        .or_else(|| query_param(query, "authorize").and_then(|q| query_param(&q, "ui_locales")));
    page_view(app, headers, lang.as_deref(), ui_locales.as_deref(), None)
}

/// Renders `page` as `view` says. A language just picked with the switcher is remembered in a
/// cookie (a year, every path: the OpenID Connect pages share it).
pub(crate) fn show<P: Page>(
    app: &AppState,
    view: &View,
    status: StatusCode,
    page: &P,
) -> Result<Response, PageFault> {
    let mut response = html(status, app.templates.page(view, page)?);
    if view.chosen {
        let secure = if app.is_https() { "; Secure" } else { "" };
        let value = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}",
            view.lang
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// The value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The registered service's theme, when the page is about one.
fn theme_of<'r>(requested: RequestedService<'r>) -> Option<&'r str> {
    match requested {
        RequestedService::Registered(_, registered) => registered.theme.as_deref(),
        _ => None,
    }
}

/// `GET {base}/static/themes/{theme}/{file}`: a per-service theme's static file (or the theme's,
/// or the built-in one). Only built-in file names are served.
async fn theme_static_file(
    State(app): State<AppState>,
    Path((theme, file)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match app.templates.theme_static_file(Some(&theme), &file) {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        None => not_found_page(&app, &headers, query.as_deref()),
    }
}

async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PageFault> {
    let here = match query.as_deref().filter(|q| !q.is_empty()) {
        Some(q) => format!("{}?{q}", app.path("/login")),
        None => app.path("/login"),
    };
    let params = Params::from_query(query);
    let now = app.clock.now();
    let current = sso::current_session(&app, &headers, now).await?;
    let service = params.non_empty("service").map(ServiceUrl::parse);
    let flags = LoginFlags {
        renew: is_flag_set(params.get("renew")),
        gateway: is_flag_set(params.get("gateway")),
        method: ResponseMethod::parse(params.get("method")),
    };
    // The common case, a session entering a service by a redirect, is decided with the registry
    // as last compiled: the ticket's write checks that it still is, else all is decided again
    // below.
    if let (Some(session), None, ResponseMethod::Redirect) = (
        &current.session,
        params.non_empty("authorize"),
        flags.method,
    ) {
        let (version, registry) = app.kept_registry().await?;
        let requested = RequestedService::resolve(&registry, service.as_ref());
        if let (LoginStep::IssueTicket, RequestedService::Registered(url, _)) = (
            login::login_page(requested, flags, Some(session)),
            requested,
        ) {
            let redirect = Delivery::Redirect;
            match hand_over_ticket(&app, session, url, false, now, Some(version), redirect).await {
                Err(PageFault::Store(StoreError::RegistryChanged)) => {}
                issued => return issued,
            }
        }
    }
    let registry = app.registry().await?;
    let requested = RequestedService::resolve(&registry, service.as_ref());
    let ui_locales = params
        .non_empty("authorize")
        .and_then(|q| query_param(q, "ui_locales"));
    let view = page_view(
        &app,
        &headers,
        params.non_empty("lang"),
        ui_locales.as_deref(),
        Some(here),
    )
    .with_theme(theme_of(requested));
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
                show_form(&app, &view, StatusCode::OK, form, now).await?
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
            let delivery = Delivery::of(flags.method, &view);
            hand_over_ticket(&app, session, url, false, now, None, delivery).await?
        }
        (
            LoginStep::ConfirmWarning,
            RequestedService::Registered(url, registered),
            Some(session),
        ) => {
            let lt = new_login_ticket(&app, now).await?;
            let page = WarnPage {
                chrome: app.chrome(),
                action: form_action(&app, flags),
                lt,
                service: url.as_str(),
                service_name: &registered.name,
                username: &session.username,
            };
            show(&app, &view, StatusCode::OK, &page)?
        }
        (LoginStep::GatewayRedirect, RequestedService::Registered(url, _), _) => {
            tracing::debug!(service = %url, "gateway: no session, back to the service without a ticket");
            redirect(url.as_str())
        }
        (LoginStep::AlreadyLoggedIn, _, Some(session)) => logged_in_page(&app, &view, session)?,
        (LoginStep::UnauthorizedService, ..) => {
            unauthorized_service_page(&app, &view, params.get("service"))?
        }
        (LoginStep::AccessDenied, RequestedService::Registered(url, registered), Some(session)) => {
            access_denied_page(&app, &view, session, url, registered)?
        }
        _ => {
            let form = Form::blank(requested, flags);
            show_form(&app, &view, StatusCode::OK, form, now).await?
        }
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
    // The page this form came from, for the language switcher: the same request, as a GET.
    let query_of_form = {
        let mut here = form_urlencoded::Serializer::new(String::new());
        for name in ["service", "renew", "gateway", "method", "authorize"] {
            if let Some(value) = field(name) {
                here.append_pair(name, value);
            }
        }
        here.finish()
    };
    let here = match query_of_form {
        q if q.is_empty() => app.path("/login"),
        q => format!("{}?{q}", app.path("/login")),
    };
    let ui_locales = field("authorize").and_then(|q| query_param(q, "ui_locales"));
    let view = page_view(
        &app,
        &headers,
        query.non_empty("lang"),
        ui_locales.as_deref(),
        Some(here),
    )
    .with_theme(theme_of(requested));
    if matches!(requested, RequestedService::Unregistered) {
        return unauthorized_service_page(&app, &view, field("service"));
    }
    let flags = LoginFlags {
        renew: is_flag_set(field("renew")),
        gateway: is_flag_set(field("gateway")),
        method: ResponseMethod::parse(field("method")),
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
            &view,
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
        return again(StatusCode::FORBIDDEN, Message::new("login.error.expired")).await;
    }

    if is_flag_set(form.get("continue")) {
        return continue_after_warning(&app, &view, &headers, requested, flags, now).await;
    }

    let password = form.get("password").unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return again(StatusCode::BAD_REQUEST, Message::new("login.error.missing")).await;
    }

    let verdict = match throttle::authenticate(
        &app,
        username,
        &Password::new(password.to_owned()),
        client,
        now,
    )
    .await
    {
        Ok(verdict) => verdict,
        // A source that may know the user cannot be asked: not the user's failure, so the form
        // again (the username kept) and nothing counted; the session the browser has is untouched.
        Err(e @ AuthError::Unavailable { .. }) => {
            tracing::error!(error = %e, user = %username, client = %client, "login impossible: a login source is unavailable");
            return again(
                StatusCode::SERVICE_UNAVAILABLE,
                Message::new("login.error.unavailable"),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let user = match verdict {
        Verdict::Accepted(user) => user,
        // Unknown user or wrong password: one message, one status (no username enumeration).
        Verdict::Rejected => {
            return again(
                StatusCode::UNAUTHORIZED,
                Message::new("login.error.invalid"),
            )
            .await
        }
        Verdict::Locked(until) => {
            let left = until.since(now);
            let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let wait = app.templates.catalogs().wait(&view.lang, seconds);
            let message = Message::new("login.error.locked").arg("wait", wait);
            return again(StatusCode::TOO_MANY_REQUESTS, message).await;
        }
    };

    let long_term = app.settings.session.remember_me
        && (is_flag_set(form.get("rememberMe")) || is_flag_set(form.get("remember")));
    let previous = cookie(&headers, &app.settings.session.cookie_name)
        .and_then(|v| TicketGrantingTicketId::parse(&v));
    let sso::LoggedIn {
        tgt,
        session,
        renewed,
    } = sso::log_in(
        &app,
        previous.as_ref(),
        user,
        long_term,
        is_flag_set(form.get("warn")),
        now,
    )
    .await?;
    tracing::info!(user = %session.username, session = %session.id, client = %client, long_term, renewed, "login succeeded");
    audit!("login", user = %session.username, client = %client, session = %session.id, via = "form", renewed);

    let mut response = match (login::after_authentication(requested, &session), requested) {
        _ if resume.is_some() => redirect(&resume.map(|r| r.target(&app)).unwrap_or_default()),
        (LoginStep::IssueTicket, RequestedService::Registered(url, _)) => {
            let delivery = Delivery::of(flags.method, &view);
            hand_over_ticket(&app, &session, url, true, now, None, delivery).await?
        }
        (LoginStep::AccessDenied, RequestedService::Registered(url, registered)) => {
            access_denied_page(&app, &view, &session, url, registered)?
        }
        _ => logged_in_page(&app, &view, &session)?,
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_tgc(&app, tgt.as_str(), long_term));
    Ok(response)
}

/// The warn page's "Continue": enter the service with the existing session.
async fn continue_after_warning(
    app: &AppState,
    view: &View,
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
        ) => {
            let delivery = Delivery::of(flags.method, view);
            hand_over_ticket(app, &session, url, false, now, None, delivery).await
        }
        _ => {
            show_form(
                app,
                view,
                StatusCode::OK,
                Form::blank(requested, flags),
                now,
            )
            .await
        }
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
    let lt = LoginTicketId::generate_at(now, &mut rand::rngs::OsRng);
    app.store
        .put_login_ticket(&lt.key(), now.plus(app.settings.tickets.login_ticket_ttl))
        .await?;
    Ok(lt.as_str().to_owned())
}

async fn show_form(
    app: &AppState,
    view: &View,
    status: StatusCode,
    form: Form<'_>,
    now: Timestamp,
) -> Result<Response, PageFault> {
    let (service, service_name, service_description) = match form.requested {
        RequestedService::Registered(url, registered) => (
            Some(url.as_str()),
            Some(registered.name.as_str()),
            registered.description.as_deref(),
        ),
        _ => (None, form.resume.and_then(|r| r.client_name), None),
    };
    let page = LoginPage {
        chrome: app.chrome(),
        action: form_action(app, form.flags),
        lt: new_login_ticket(app, now).await?,
        service,
        service_name,
        service_description,
        renew: form.flags.renew,
        gateway: form.flags.gateway,
        username: form.username,
        error: form.error,
        remember_me: app.settings.session.remember_me,
        password_reset_url: app
            .settings
            .login
            .password_reset_url
            .as_ref()
            .map(url::Url::as_str),
        authorize: form.resume.map(|r| r.query),
    };
    show(app, view, status, &page)
}

/// How a ticket goes to the service: a redirect, or a page whose form posts it (`method=POST`),
/// rendered in the page's language.
#[derive(Clone, Copy)]
enum Delivery<'v> {
    Redirect,
    Post(&'v View),
}

impl<'v> Delivery<'v> {
    fn of(method: ResponseMethod, view: &'v View) -> Self {
        match method {
            ResponseMethod::Redirect => Self::Redirect,
            ResponseMethod::Post => Self::Post(view),
        }
    }
}

/// The login form's `action`: `/login`, with the `method` to answer with (in the query, so that
/// a theme's own form template carries it too).
fn form_action(app: &AppState, flags: LoginFlags) -> String {
    match flags.method.as_param() {
        Some(method) => format!("{}?method={method}", app.path("/login")),
        None => app.path("/login"),
    }
}

/// Issues a ticket (see [`sso::issue_service_ticket`], which takes `decided_at`) and sends the
/// browser back to the service with it: in the redirect's query, or posted by the page's form.
async fn hand_over_ticket(
    app: &AppState,
    session: &SsoSession,
    service: &ServiceUrl,
    from_new_login: bool,
    now: Timestamp,
    decided_at: Option<i64>,
    delivery: Delivery<'_>,
) -> Result<Response, PageFault> {
    let ticket =
        sso::issue_service_ticket(app, session, service, from_new_login, now, decided_at).await?;
    match delivery {
        Delivery::Redirect => Ok(redirect(&service.with_ticket(ticket.as_str()))),
        Delivery::Post(view) => {
            let params = [("ticket".to_owned(), ticket.as_str().to_owned())];
            let page = FormPostPage {
                chrome: app.chrome(),
                action: service.as_str(),
                params: &params,
            };
            show(app, view, StatusCode::OK, &page)
        }
    }
}

fn logged_in_page(
    app: &AppState,
    view: &View,
    session: &SsoSession,
) -> Result<Response, PageFault> {
    let page = LoggedInPage {
        chrome: app.chrome(),
        username: &session.username,
        logout_url: app.path("/logout"),
    };
    show(app, view, StatusCode::OK, &page)
}

fn unauthorized_service_page(
    app: &AppState,
    view: &View,
    service: Option<&str>,
) -> Result<Response, PageFault> {
    tracing::warn!(
        service = service.unwrap_or(""),
        "login refused: service not authorized"
    );
    let page = ErrorPage::new(
        app.chrome(),
        "error.unauthorized_service.title",
        "error.unauthorized_service.message",
    );
    show(app, view, StatusCode::FORBIDDEN, &page)
}

fn access_denied_page(
    app: &AppState,
    view: &View,
    session: &SsoSession,
    service: &ServiceUrl,
    registered: &RegisteredService,
) -> Result<Response, PageFault> {
    tracing::warn!(user = %session.username, service = %service, "access denied: required attributes not met");
    let page = AccessDeniedPage {
        chrome: app.chrome(),
        service_name: &registered.name,
        username: &session.username,
        logout_url: app.path("/logout"),
    };
    show(app, view, StatusCode::FORBIDDEN, &page)
}
