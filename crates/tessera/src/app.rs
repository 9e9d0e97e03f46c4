//! Application state, the top-level router, and the server that runs them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use tessera_protocol::service::{RegisteredService, ServiceRegistry};
use tessera_store::{Store, StoreError, StoreResult};
use tower_http::limit::RequestBodyLimitLayer;

use crate::auth::local::PasswordHasher;
use crate::auth::{AuthError, Authenticator};
use crate::clock::Clock;
use crate::config::{Loaded, Settings};
use crate::http::response::redirect;
use crate::http::{cas, login, logout, security};
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::registry::Versioned;
use crate::slo::{self, SloSignal};
use crate::tls::{Tls, TlsError};
use crate::web::templates::{Chrome, TemplateError, Templates};

/// Everything a handler may use: one pointer to the [`SharedState`], so that the clones the
/// router makes for every request (several per request) are one reference count each.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;
    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What every clone of an [`AppState`] shares.
pub struct SharedState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Credential checking.
    pub authenticator: Arc<dyn Authenticator>,
    /// Password hashing (shared with the authenticator).
    pub hasher: PasswordHasher,
    /// "Now".
    pub clock: Arc<dyn Clock>,
    /// Page templates.
    pub templates: Arc<Templates>,
    /// Configuration.
    pub settings: Arc<Settings>,
    /// Services declared in the config file.
    pub file_services: Arc<Vec<RegisteredService>>,
    /// Wakes the single-logout dispatcher.
    pub slo: SloSignal,
    /// Outbound HTTP (single logout): no redirects, no cookies, TLS verified.
    pub http: reqwest::Client,
    /// Outbound HTTP for proxy callbacks: TLS verified against the web roots and `[proxy] ca_file`.
    pub proxy_http: reqwest::Client,
    /// The OpenID Connect provider: issuer, clients of the file, keys.
    pub oidc: Arc<Provider>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// TLS termination, when `[server] tls_cert` is set (reloadable).
    pub tls: Option<Arc<Tls>>,
    /// Where users reach us: scheme, host and port (no path).
    public_url: Arc<url::Url>,
    registry_cache: Arc<Versioned<ServiceRegistry>>,
    static_base: Arc<str>,
}

/// How many times a write decided with [`AppState::kept_registry`] is decided again when the
/// services keep changing under it (once is the rule: the retry reads the current registry).
pub(crate) const DECISION_TRIES: usize = 3;

impl AppState {
    /// The registry: config-file services, then database services.
    /// Compiled once per change of the database's services (see [`crate::registry`]).
    pub async fn registry(&self) -> StoreResult<Arc<ServiceRegistry>> {
        Ok(self.current_registry().await?.1)
    }

    /// [`AppState::registry`] with the registry version it stands for.
    pub async fn current_registry(&self) -> StoreResult<(i64, Arc<ServiceRegistry>)> {
        self.registry_cache
            .get(self.store.as_ref(), || async {
                Ok(ServiceRegistry::new(
                    self.file_services.as_ref().clone(),
                    self.store.list_services().await?,
                ))
            })
            .await
    }

    /// The registry as last compiled and its version, without asking the store (the current one
    /// before any was compiled). Only for a decision that ends in a store write given that
    /// version as `decided_at`, which refuses it ([`StoreError::RegistryChanged`]) if the
    /// services have changed since: the caller then decides again with [`AppState::registry`].
    /// It spares a hot request the read of the registry version.
    ///
    /// [`StoreError::RegistryChanged`]: tessera_store::StoreError::RegistryChanged
    pub async fn kept_registry(&self) -> StoreResult<(i64, Arc<ServiceRegistry>)> {
        match self.registry_cache.kept() {
            Some(kept) => Ok(kept),
            None => self.current_registry().await,
        }
    }

    /// `path` under the CAS base path (`/login` → `/cas/login`).
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_path())
    }

    /// What every page template needs.
    pub fn chrome(&self) -> Chrome<'_> {
        Chrome {
            static_base: &self.static_base,
            base_path: self.settings.base_path(),
        }
    }

    /// Whether users reach Tessera over https (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Our origin, as browsers write it in `Origin` (`https://sso.example.org`).
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The public URL of the CAS base (`https://sso.example.org/cas`).
    pub fn public_base(&self) -> String {
        format!(
            "{}{}",
            self.public_url.as_str().trim_end_matches('/'),
            self.settings.base_path()
        )
    }
}

impl AppState {
    /// Builds the state for a server reached at `bound` (unless `public_url` says otherwise).
    pub fn new(
        loaded: Loaded,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bound: SocketAddr,
    ) -> Result<Self, StartError> {
        let Loaded {
            settings,
            file_services,
            file_clients,
        } = loaded;
        let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(Tls::new(cert, key)?)),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = match &settings.server.public_url {
            Some(url) => url.clone(),
            None => {
                url::Url::parse(&format!("{scheme}://{bound}/")).map_err(|e| StartError::Bind {
                    addr: bound,
                    source: std::io::Error::other(e.to_string()),
                })?
            }
        };
        let templates = Templates::new(settings.theme.dir.as_deref())?;
        let hasher = PasswordHasher::new(&settings.password)?;
        let authenticator =
            crate::auth::chain::build(&settings.authenticators, store.clone(), hasher.clone())?;
        let static_base: Arc<str> = format!("{}/static", settings.base_path()).into();
        let http = slo::http_client(settings.slo.timeout)?;
        let proxy_http = crate::http::cas::proxy_callback_client(&settings.proxy)?;
        let oidc = Provider::new(
            public_url.as_str(),
            &settings.oidc.issuer_path,
            file_clients,
        );
        Ok(Self(Arc::new(SharedState {
            store,
            authenticator,
            hasher,
            clock,
            templates: Arc::new(templates),
            settings: Arc::new(settings),
            file_services: Arc::new(file_services),
            slo: SloSignal::default(),
            http,
            proxy_http,
            public_url: Arc::new(public_url),
            static_base,
            oidc: Arc::new(oidc),
            metrics: Arc::new(Metrics::default()),
            tls,
            registry_cache: Arc::default(),
        })))
    }
}

/// Opens the store a database URL names (`sqlite://PATH`, created as needed, or
/// `postgres://USER@HOST/DATABASE`), migrating it as needed.
pub async fn open_store(url: &str) -> StoreResult<Arc<dyn Store>> {
    tessera_store::connect(url).await
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A theme template is broken.
    #[error("theme: {0}")]
    Template(#[from] TemplateError),
    /// Password hashing parameters are unusable.
    #[error("password settings: {0}")]
    Auth(#[from] AuthError),
    /// The proxy callback CA file could not be read.
    #[error("[proxy] ca_file: {0}")]
    CaFile(String),
    /// The outbound HTTP client could not be built.
    #[error("outbound http client: {0}")]
    Http(#[from] reqwest::Error),
    /// The TLS certificate or key is unusable.
    #[error("[server] tls: {0}")]
    Tls(#[from] TlsError),
    /// The OpenID Connect signing keys could not be made or loaded.
    #[error("signing keys: {0}")]
    Keys(#[from] crate::oidc::ProviderError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound, ready-to-run server.
pub struct Server {
    listener: tokio::net::TcpListener,
    operations: Option<tokio::net::TcpListener>,
    state: AppState,
}

impl Server {
    /// Opens the store, binds `listen` (`settings.server.listen` unless overridden) and builds the app.
    pub async fn bind(loaded: Loaded, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let store = open_store(&loaded.settings.database.url).await?;
        Self::bind_with_store(loaded, store, clock).await
    }

    /// Like [`Server::bind`], with a store opened by the caller.
    pub async fn bind_with_store(
        loaded: Loaded,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let addr = loaded.settings.server.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let operations = match loaded.settings.metrics.listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        let state = AppState::new(loaded, store, clock, bound)?;
        if state.settings.oidc.enabled {
            crate::oidc::ensure_keys(state.store.as_ref(), state.clock.now()).await?;
        }
        Ok(Self {
            listener,
            operations,
            state,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the operations listener (`/metrics`), if one is configured.
    pub fn operations_addr(&self) -> Option<SocketAddr> {
        self.operations.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The application state (store, settings, clock).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The router, for serving it some other way.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests. Also sweeps expired
    /// sessions and tickets in the background.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep(self.state.clone()));
        let dispatcher = tokio::spawn(slo::run(self.state.clone(), self.state.http.clone()));
        let operations = self.operations.map(|listener| {
            let app = operations_router(self.state.clone());
            tokio::spawn(async move { axum::serve(listener, app).await })
        });
        let served = match self.state.tls.clone() {
            Some(tls) => {
                crate::tls::serve(self.listener, router(self.state.clone()), tls, shutdown).await
            }
            None => {
                let app =
                    router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(self.listener.tap_io(no_delay), app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        sweeper.abort();
        dispatcher.abort();
        if let Some(operations) = operations {
            operations.abort();
        }
        served
    }
}

/// Removes expired rows every `sweep_interval`; the server needs no cron.
async fn sweep(app: AppState) {
    let mut every = tokio::time::interval(app.settings.session.sweep_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match app
            .store
            .delete_expired(app.clock.now(), app.settings.login.failure_window)
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(rows = n, "expired sessions and tickets swept");
                app.slo.wake();
            }
            Err(e) => tracing::warn!(error = %e, "sweeping expired rows failed"),
        }
    }
}

/// Sends each response as soon as it is written, without waiting for the previous segment's
/// acknowledgement (Nagle's algorithm): answers are small and one per request.
pub(crate) fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

/// Every route Tessera answers.
pub fn router(app: AppState) -> Router {
    let base = app.settings.base_path().to_owned();
    let mut routes = Router::new()
        .merge(login::router(&app))
        .merge(logout::router(&app))
        .merge(cas::router(&app))
        .route(&app.path("/static/{file}"), get(static_file));
    if app.settings.rest.enabled {
        routes = routes.merge(crate::http::rest::router(&app));
    }
    if app.settings.oidc.enabled {
        routes = routes.merge(crate::http::oidc::router(&app));
    }
    // Load balancers probe the main listener.
    routes = routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    // Flask-CAS logs in at `{base}?service=…`: `{base}` and `{base}/` are `/login` (trap T15).
    routes = routes.route(&format!("{base}/"), get(base_redirect));
    if !base.is_empty() {
        routes = routes.route(&base, get(base_redirect));
    }
    // Every request passes the frame: its id and log span, limits, fault pages in the visitor's
    // language, headers.
    routes
        .fallback(not_found)
        .with_state(app.clone())
        .layer(RequestBodyLimitLayer::new(
            app.settings.server.max_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            security::Frame::new(&app),
            security::frame,
        ))
}

/// The operations listener: `/metrics`, `/healthz`, `/readyz`.
fn operations_router(app: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app)
}

/// Liveness: the process serves requests.
async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Readiness: the database answers.
async fn readyz(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    let pool = app.store.pool_usage();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(pool.connections, pool.idle),
    )
        .into_response()
}

async fn base_redirect(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    match query {
        Some(q) => redirect(&format!("{}?{q}", app.path("/login"))),
        None => redirect(&app.path("/login")),
    }
}

async fn static_file(
    State(app): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match app.templates.static_file(&file) {
        Some((content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        None => not_found(State(app), headers, uri).await,
    }
}

/// The 404 page, in the language the request asks for (`lang`, the cookie, `Accept-Language`).
async fn not_found(State(app): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    crate::http::response::not_found_page(&app, &headers, uri.query())
}
