//! Configuration: built-in defaults → TOML file → `TESSERA_SECTION__KEY` environment overrides.
//!
//! Every key is declared once below with its default and its documentation; unknown keys are errors
//! that name the file, the key and what was expected. [`Settings::load`] also checks values that serde
//! cannot (patterns, paths, URLs) and converts file-declared services into registry entries, so a bad
//! config fails at start, never at a user's login.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_protocol::oidc::OidcClient;
use tessera_protocol::service::{
    AttributeRelease, AttributeRule, LogoutType, RegisteredService, Requirement, ServiceOrigin,
    ServicePattern,
};
use tessera_protocol::session::SessionPolicy;

mod auth;
mod oidc;
pub use auth::{
    load_ca_file, read_secret_file, redact_url, AuthenticatorSettings, BuiltinSettings,
    GroupFormat, LdapSettings, Secret, SqlSettings,
};
pub use oidc::{chosen_secret, ClientSettings, ClientSpec, OidcSettings};

/// A configuration problem: where, which key, what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file (or environment variable) the problem is in.
    pub source_name: String,
    /// What is wrong, naming the key, and the fix.
    pub message: String,
}

impl ConfigError {
    fn new(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[server]`: where to listen and how Tessera is reached.
    pub server: ServerSettings,
    /// `[database]`: where state lives.
    pub database: DatabaseSettings,
    /// `[session]`: SSO sessions and their cookie.
    pub session: SessionSettings,
    /// `[tickets]`: ticket lifetimes.
    pub tickets: TicketSettings,
    /// `[password]`: Argon2id cost of the built-in user store.
    pub password: PasswordSettings,
    /// `[login]`: the login form and throttling.
    pub login: LoginSettings,
    /// `[logout]`: where `/logout` may send the browser.
    pub logout: LogoutSettings,
    /// `[theme]`: page overrides.
    pub theme: ThemeSettings,
    /// `[slo]`: single logout delivery.
    pub slo: SloSettings,
    /// `[saml]`: SAML 1.1 validation (`/samlValidate`).
    pub saml: SamlSettings,
    /// `[rest]`: the REST ticket API (`/v1/tickets`).
    pub rest: RestSettings,
    /// `[proxy]`: proxy authentication (`pgtUrl`, `/proxy`).
    pub proxy: ProxySettings,
    /// `[oidc]`: the OpenID Connect provider.
    pub oidc: OidcSettings,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// `[[service]]`: services declared in the file.
    #[serde(rename = "service")]
    pub services: Vec<ServiceSettings>,
    /// `[[client]]`: OpenID Connect clients declared in the file.
    #[serde(rename = "client")]
    pub clients: Vec<ClientSettings>,
    /// `[[authenticator]]`: login sources, tried in order. Default: the built-in users only.
    #[serde(rename = "authenticator")]
    pub authenticators: Vec<AuthenticatorSettings>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The URL users reach Tessera at, without the base path (e.g. `https://sso.example.org`).
    /// Default: `http://` + the bound address. An `https` URL marks cookies `Secure`.
    pub public_url: Option<url::Url>,
    /// Path prefix of the CAS endpoints. Default `/cas`; `""` serves them at the root.
    pub base_path: String,
    /// Largest request body accepted, in bytes. Default 65536.
    pub max_body_bytes: usize,
    /// Longest request target (path and query) accepted, in bytes; longer ones get 414. Default 8192.
    pub max_uri_bytes: usize,
    /// Largest header section accepted, in bytes; larger ones get 431. Default 16384.
    pub max_header_bytes: usize,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: the client
    /// address (for throttling and logs) is then the last address in it that is not one of them.
    /// Default: none (the connection's address is the client's).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// PEM certificate chain: with `tls_key`, Tessera serves https itself (SIGHUP reloads both).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `max-age` of the `Strict-Transport-Security` header sent when Tessera is reached over https;
    /// `0s` sends none. Default `365days`.
    #[serde(with = "humantime_serde")]
    pub hsts_max_age: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            base_path: "/cas".into(),
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            hsts_max_age: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` (created on first start) or `postgres://USER:PASSWORD@HOST/DATABASE` (several
    /// nodes may share it). Default `sqlite://tessera-data/tessera.db`.
    pub url: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://tessera-data/tessera.db".into(),
        }
    }
}

/// `[session]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// Name of the ticket-granting cookie. Default `TGC`.
    pub cookie_name: String,
    /// A session ends this long after its last use. Default `2h`.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A session ends this long after login, however busy. Default `8h`.
    #[serde(with = "humantime_serde")]
    pub hard_timeout: Duration,
    /// Lifetime of a "remember me" session. Default `14days`.
    #[serde(with = "humantime_serde")]
    pub remember_me_timeout: Duration,
    /// Offer "remember me" on the login form. Default `false`.
    pub remember_me: bool,
    /// How often expired sessions and tickets are swept. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        let policy = SessionPolicy::default();
        Self {
            cookie_name: "TGC".into(),
            idle_timeout: policy.idle_timeout,
            hard_timeout: policy.hard_timeout,
            remember_me_timeout: policy.long_term_timeout,
            remember_me: false,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

impl SessionSettings {
    /// The session policy these settings describe.
    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_timeout: self.idle_timeout,
            hard_timeout: self.hard_timeout,
            long_term_timeout: self.remember_me_timeout,
        }
    }
}

/// `[tickets]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketSettings {
    /// How long a service ticket may wait for validation. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub service_ticket_ttl: Duration,
    /// How long a rendered login form stays usable. Default `30min`.
    #[serde(with = "humantime_serde")]
    pub login_ticket_ttl: Duration,
}

impl Default for TicketSettings {
    fn default() -> Self {
        Self {
            service_ticket_ttl: Duration::from_secs(60),
            login_ticket_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// `[password]`: Argon2id parameters (defaults: OWASP's 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// Memory per hash, in KiB. Default 19456.
    pub argon2_memory_kib: u32,
    /// Passes. Default 2.
    pub argon2_iterations: u32,
    /// Lanes. Default 1.
    pub argon2_parallelism: u32,
    /// Hashes computed at once; further logins wait. Default: the number of CPUs.
    pub max_concurrent_hashes: Option<usize>,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: None,
        }
    }
}

/// `[login]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Accept a credential POST without the form's one-time token from non-browser clients
    /// (pycas-sso logs in that way). Browsers posting cross-site are refused either way. Default `true`.
    pub allow_direct_post: bool,
    /// Failed logins for one username before it is locked. Default 5.
    pub max_failures_per_user: u32,
    /// Failed logins from one address before it is locked. Default 20.
    pub max_failures_per_address: u32,
    /// Failures further apart than this start the count again. Default `15min`.
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// How long a lock lasts after the last failure. Default `5min`.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
    /// Past half the allowed failures, each failure makes the next attempt wait this long, doubled
    /// per further failure (at most `lockout`); `0s` turns delays off. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub first_delay: Duration,
    /// Where users reset a forgotten password: the login form links to it. Default: no link.
    pub password_reset_url: Option<url::Url>,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            allow_direct_post: true,
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            failure_window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(5 * 60),
            first_delay: Duration::from_secs(1),
            password_reset_url: None,
        }
    }
}

/// `[logout]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutSettings {
    /// Treat the CAS 1/2 `url` parameter like `service` (registered URLs only). Default `true`.
    pub follow_url_parameter: bool,
    /// After a logout with no (registered) `service`, go to the login page instead of showing the
    /// logged-out page. Default `false`.
    pub redirect_to_login: bool,
}

impl Default for LogoutSettings {
    fn default() -> Self {
        Self {
            follow_url_parameter: true,
            redirect_to_login: false,
        }
    }
}

/// `[slo]`: back-channel single logout (like django-cas-server's `CAS_SLO_MAX_PARALLEL_REQUESTS`
/// and `CAS_SLO_TIMEOUT`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloSettings {
    /// Logout requests in flight at once. Default 10.
    pub max_parallel: usize,
    /// Time allowed for one logout request. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A failed delivery is retried, with growing delays, for this long after the logout. Default `15min`.
    #[serde(with = "humantime_serde")]
    pub retry_for: Duration,
    /// How often the queue is checked for deliveries queued elsewhere (another node, the CLI) or
    /// due for a retry. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for SloSettings {
    fn default() -> Self {
        Self {
            max_parallel: 10,
            timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(15 * 60),
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// `[saml]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlSettings {
    /// Release attributes in SAML 1.1 answers only to `https` targets (CAS 3.0 §4.2). Default `true`.
    pub attributes_require_https: bool,
}

impl Default for SamlSettings {
    fn default() -> Self {
        Self {
            attributes_require_https: true,
        }
    }
}

/// `[proxy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxySettings {
    /// A PEM file of CA certificates trusted for proxy callbacks, besides the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// Accept plain-http proxy callbacks (the specification requires https; for tests only).
    /// Default `false`.
    pub allow_http_callbacks: bool,
    /// Lifetime of a proxy-granting ticket (it also ends with its SSO session). Default `2h`.
    #[serde(with = "humantime_serde")]
    pub proxy_granting_ticket_ttl: Duration,
    /// Time allowed for the callback request. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub callback_timeout: Duration,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            ca_file: None,
            allow_http_callbacks: false,
            proxy_granting_ticket_ttl: Duration::from_secs(2 * 3600),
            callback_timeout: Duration::from_secs(5),
        }
    }
}

/// `[rest]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestSettings {
    /// Serve the REST ticket API at `{base}/v1/tickets`. Default `true`.
    pub enabled: bool,
}

impl Default for RestSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Address of the operations listener serving `/metrics` (Prometheus), `/healthz` and `/readyz`.
    /// Default: none (no metrics listener; `/healthz` and `/readyz` are on the main listener anyway).
    pub listen: Option<SocketAddr>,
}

/// `[theme]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ThemeSettings {
    /// A directory whose `templates/NAME.html`, `static/FILE` (`style.css`, `logo.svg`,
    /// `form_post.js`) and `i18n/LANG.toml` replace the built-in ones; its `themes/NAME/` holds
    /// per-service themes laid over it, chosen by a service's `theme`.
    pub dir: Option<PathBuf>,
}

/// `[[service]]`: a service declared in the file. It takes precedence over database services, and
/// wins over a database service of the same name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSettings {
    /// Unique name.
    pub name: String,
    /// Regular expression matching the whole service URL.
    pub pattern: Option<String>,
    /// The one URL of the service (instead of `pattern`).
    pub exact: Option<String>,
    /// A URL prefix, ending at a path boundary (instead of `pattern`).
    pub prefix: Option<String>,
    /// Default `true`.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Release every attribute. Default `false`.
    #[serde(default)]
    pub release_all: bool,
    /// Attributes to release, as `ATTR` or `ATTR=RENAMED`.
    #[serde(default)]
    pub release: Vec<String>,
    /// Attribute sent as the user id instead of the login name.
    pub username_attribute: Option<String>,
    /// Required attribute values, as `ATTR=REGEX`.
    #[serde(default)]
    pub require: Vec<String>,
    /// Whether an existing session is enough. Default `true`.
    #[serde(default = "yes")]
    pub sso: bool,
    /// Where logout requests go (default: the URL the service logged in with).
    pub logout_url: Option<String>,
    /// How the service hears of a logout: `back` (POST from Tessera, the default), `front` (the
    /// browser loads the logout URL) or `none`.
    #[serde(default = "back_channel")]
    pub logout_type: String,
    /// Regular expression of the proxy callback URLs (`pgtUrl`) it may use; without it the service
    /// may not obtain proxy-granting tickets.
    pub proxy_callback: Option<String>,
    /// Accept proxy tickets (be a proxy's target). Default `false`.
    #[serde(default)]
    pub proxy_target: bool,
    /// The per-service theme of its pages: a directory `themes/NAME/` of `[theme] dir`.
    pub theme: Option<String>,
    /// What the service is, shown under its name on the login page.
    pub description: Option<String>,
}

/// Checks a service's `theme`: a plain name, whose directory exists in `[theme] dir/themes/`.
/// Shared by the config file and the CLI.
pub fn check_service_theme(theme: &ThemeSettings, name: &str) -> Result<(), String> {
    if !crate::web::templates::is_theme_name(name) {
        return Err(format!(
            "theme {name:?}: use letters, digits, - and _ (the name of a directory in [theme] dir/themes)"
        ));
    }
    let Some(dir) = &theme.dir else {
        return Err(format!(
            "theme {name:?}: set [theme] dir and create its themes/{name}/ directory"
        ));
    };
    let path = dir.join("themes").join(name);
    if !path.is_dir() {
        return Err(format!(
            "theme {name:?}: {} is not a directory; create it or remove the theme",
            path.display()
        ));
    }
    Ok(())
}

/// Checks a service's `description`: at most 500 printable characters.
pub fn check_service_description(description: &str) -> Result<(), String> {
    if description.chars().count() > 500 || description.chars().any(char::is_control) {
        return Err("description must be at most 500 printable characters".into());
    }
    Ok(())
}

fn yes() -> bool {
    true
}

fn back_channel() -> String {
    "back".into()
}

/// Builds a registered service from its parts; shared by the config file and the CLI.
#[allow(clippy::too_many_arguments)] // one argument per service attribute, named at every call
pub fn build_service(
    name: &str,
    pattern: Option<&str>,
    exact: Option<&str>,
    prefix: Option<&str>,
    release_all: bool,
    release: &[String],
    username_attribute: Option<String>,
    require: &[String],
    origin: ServiceOrigin,
) -> Result<RegisteredService, String> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err("name must be 1 to 128 printable characters".into());
    }
    let pattern = match (pattern, exact, prefix) {
        (Some(p), None, None) => ServicePattern::regex(p),
        (None, Some(e), None) => ServicePattern::from_parts("exact", e),
        (None, None, Some(p)) => ServicePattern::from_parts("prefix", p),
        _ => return Err("give exactly one of pattern, exact or prefix".into()),
    }
    .map_err(|e| e.to_string())?;
    let release = match (release_all, release.is_empty()) {
        (true, false) => return Err("give either release-all or release, not both".into()),
        (true, true) => AttributeRelease::All,
        (false, true) => AttributeRelease::Nothing,
        (false, false) => AttributeRelease::Only(
            release
                .iter()
                .map(|r| AttributeRule::parse(r))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?,
        ),
    };
    let mut service = RegisteredService::new(name, pattern, origin);
    service.release = release;
    service.username_attribute = username_attribute;
    service.requirements = require
        .iter()
        .map(|r| Requirement::parse(r))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    Ok(service)
}

impl ServiceSettings {
    fn to_registered(&self) -> Result<RegisteredService, String> {
        let mut s = build_service(
            &self.name,
            self.pattern.as_deref(),
            self.exact.as_deref(),
            self.prefix.as_deref(),
            self.release_all,
            &self.release,
            self.username_attribute.clone(),
            &self.require,
            ServiceOrigin::ConfigFile,
        )?;
        s.enabled = self.enabled;
        s.sso = self.sso;
        s.logout_url = self.logout_url.clone();
        s.logout_type = LogoutType::parse(&self.logout_type).map_err(|e| e.to_string())?;
        s.proxy_callback = self
            .proxy_callback
            .as_deref()
            .map(ServicePattern::regex)
            .transpose()
            .map_err(|e| e.to_string())?;
        s.proxy_target = self.proxy_target;
        if let Some(description) = &self.description {
            check_service_description(description)?;
        }
        s.theme = self.theme.clone();
        s.description = self.description.clone();
        Ok(s)
    }
}

/// Settings after loading and checking, with file services compiled.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// `[[service]]` entries as registry entries, in file order.
    pub file_services: Vec<RegisteredService>,
    /// `[[client]]` entries, in file order.
    pub file_clients: Vec<OidcClient>,
}

const ENV_PREFIX: &str = "TESSERA_";

impl Settings {
    /// Loads `file` (if given) over the defaults, then applies `env` overrides (`TESSERA_SECTION__KEY`;
    /// pass `std::env::vars()`), then checks every value.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let (source_name, text) = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        path.display().to_string(),
                        format!("cannot read the config file: {e}"),
                    )
                })?;
                (path.display().to_string(), text)
            }
            None => ("built-in defaults".to_owned(), String::new()),
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::new(&source_name, e.to_string()))?;
        let mut overridden = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let section_table = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = section_table else {
                return Err(ConfigError::new(
                    &name,
                    format!("`{section}` is not a table section; remove {name}"),
                ));
            };
            section_table.insert(key, env_value(&value));
            overridden.push(name);
        }
        let settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let source = if overridden.is_empty() {
                    source_name.clone()
                } else {
                    format!("{source_name} (with {})", overridden.join(", "))
                };
                let message = e.inner().message().to_owned();
                ConfigError::new(
                    source,
                    format!(
                        "{}: {message}{}",
                        key_name(&e.path().to_string()),
                        hint(&message)
                    ),
                )
            })?;
        settings.check(&source_name)
    }

    fn check(self, source: &str) -> Result<Loaded, ConfigError> {
        let err = |key: &str, msg: &str| ConfigError::new(source, format!("{key}: {msg}"));
        let base = &self.server.base_path;
        let well_formed = base.is_empty()
            || (base.starts_with('/') && !base.ends_with('/') && !base.contains("//"));
        let odd_char = base
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '?' | '#' | '{' | '}' | '*' | ':'));
        if !well_formed || odd_char {
            return Err(err(
                "[server] base_path",
                "must be empty or start with `/` and not end with one; use e.g. \"/cas\"",
            ));
        }
        for (key, value) in [
            ("[server] max_uri_bytes", self.server.max_uri_bytes),
            ("[server] max_header_bytes", self.server.max_header_bytes),
            ("[server] max_body_bytes", self.server.max_body_bytes),
        ] {
            if value < 1024 {
                return Err(err(
                    key,
                    "must be at least 1024 bytes (CAS service URLs and SAML bodies are long)",
                ));
            }
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(err(
                "[server] tls_cert",
                "give both tls_cert and tls_key (PEM files), or neither",
            ));
        }
        if let Some(url) = &self.server.public_url {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(err(
                    "[server] public_url",
                    "must be an http(s) URL with a host; use e.g. \"https://sso.example.org\"",
                ));
            }
        }
        if tessera_store::backend_name(&self.database.url).is_none() {
            return Err(err(
                "[database] url",
                &format!(
                    "unsupported database; use {}",
                    tessera_store::SUPPORTED_URLS
                ),
            ));
        }
        let name = &self.session.cookie_name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(err(
                "[session] cookie_name",
                "must be letters, digits, - _ or .; use e.g. \"TGC\"",
            ));
        }
        for (key, d) in [
            ("[session] idle_timeout", self.session.idle_timeout),
            ("[session] hard_timeout", self.session.hard_timeout),
            (
                "[session] remember_me_timeout",
                self.session.remember_me_timeout,
            ),
            ("[session] sweep_interval", self.session.sweep_interval),
            (
                "[tickets] service_ticket_ttl",
                self.tickets.service_ticket_ttl,
            ),
            ("[tickets] login_ticket_ttl", self.tickets.login_ticket_ttl),
            ("[slo] timeout", self.slo.timeout),
            ("[slo] poll_interval", self.slo.poll_interval),
            (
                "[proxy] proxy_granting_ticket_ttl",
                self.proxy.proxy_granting_ticket_ttl,
            ),
            ("[proxy] callback_timeout", self.proxy.callback_timeout),
        ] {
            if d.is_zero() {
                return Err(err(key, "must be longer than zero; use e.g. \"60s\""));
            }
        }
        if self.tickets.service_ticket_ttl > Duration::from_secs(300) {
            return Err(err(
                "[tickets] service_ticket_ttl",
                "the CAS specification allows at most 5 minutes; use e.g. \"60s\"",
            ));
        }
        let p = &self.password;
        if argon2::Params::new(
            p.argon2_memory_kib,
            p.argon2_iterations,
            p.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return Err(err("[password]", "argon2 parameters out of range; keep the defaults or see the Argon2 limits (memory >= 8 * parallelism KiB)"));
        }
        if self.slo.max_parallel == 0 {
            return Err(err("[slo] max_parallel", "must be at least 1"));
        }
        if self.login.max_failures_per_user == 0 || self.login.max_failures_per_address == 0 {
            return Err(err("[login] max_failures_per_*", "must be at least 1"));
        }
        if let Some(url) = &self.login.password_reset_url {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(err(
                    "[login] password_reset_url",
                    "must be an http(s) URL; use e.g. \"https://id.example.org/reset\"",
                ));
            }
        }
        if let Some(file) = &self.proxy.ca_file {
            let pem = std::fs::read(file).map_err(|e| {
                err(
                    "[proxy] ca_file",
                    &format!("cannot read {}: {e}", file.display()),
                )
            })?;
            if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |certs| certs.is_empty()) {
                return Err(err(
                    "[proxy] ca_file",
                    &format!("{} holds no PEM certificate", file.display()),
                ));
            }
        }
        if let Some(dir) = &self.theme.dir {
            if !dir.is_dir() {
                return Err(err(
                    "[theme] dir",
                    &format!(
                        "{} is not a directory; create it or remove the key",
                        dir.display()
                    ),
                ));
            }
        }
        let mut file_services: Vec<RegisteredService> = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let key = format!("[[service]] #{} ({})", i + 1, s.name);
            let registered = s.to_registered().map_err(|m| err(&key, &m))?;
            if let Some(theme) = &registered.theme {
                check_service_theme(&self.theme, theme).map_err(|m| err(&key, &m))?;
            }
            if file_services.iter().any(|f| f.name == registered.name) {
                return Err(err(
                    &key,
                    "a service of this name is declared twice; names must be unique",
                ));
            }
            file_services.push(registered);
        }
        self.oidc.check().map_err(|(key, msg)| err(key, &msg))?;
        auth::check(&self.authenticators).map_err(|(key, msg)| err(&key, &msg))?;
        let mut file_clients: Vec<OidcClient> = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = format!("[[client]] #{} ({})", i + 1, c.id);
            let client = c.to_client().map_err(|m| err(&key, &m))?;
            if file_clients.iter().any(|f| f.id == client.id) {
                return Err(err(
                    &key,
                    "a client of this id is declared twice; ids must be unique",
                ));
            }
            file_clients.push(client);
        }
        Ok(Loaded {
            settings: self,
            file_services,
            file_clients,
        })
    }

    /// The CAS base path, e.g. `/cas` or `` (root).
    pub fn base_path(&self) -> &str {
        &self.server.base_path
    }
}

/// `server.listen` → `[server] listen`; `service[0].pattern` → `[[service]] #1 pattern` (and the
/// same for `[[client]]`).
fn key_name(path: &str) -> String {
    for table in ["service", "client", "authenticator"] {
        if let Some(rest) = path.strip_prefix(&format!("{table}[")) {
            let (index, key) = rest.split_once(']').unwrap_or((rest, ""));
            let number = index
                .parse::<usize>()
                .map_or_else(|_| index.to_owned(), |i| (i + 1).to_string());
            return format!("[[{table}]] #{number} {}", key.trim_start_matches('.'))
                .trim_end()
                .to_owned();
        }
    }
    match path.split_once('.') {
        Some((section, key)) => format!("[{section}] {key}"),
        None if path == "." || path.is_empty() => "top level".to_owned(),
        None => format!("[{path}]"),
    }
}

/// An environment value as TOML: numbers and booleans as such, anything else as a string.
fn env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn hint(message: &str) -> String {
    if message.starts_with("unknown field") {
        "; remove the key or fix its spelling (see the configuration reference in README.md)".into()
    } else if message.contains("duration") || message.contains("time unit") {
        "; write durations like \"60s\", \"15min\" or \"8h\"".into()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(
            Some(&path),
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_load_without_a_file() {
        let loaded = Settings::load(None, Vec::new()).unwrap();
        assert_eq!(loaded.settings.server.base_path, "/cas");
        assert_eq!(
            loaded.settings.tickets.service_ticket_ttl,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn unknown_keys_name_the_file_the_key_and_the_fix() {
        let e = load_str("[server]\nlisen = \"127.0.0.1:1\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tessera.toml")
                && e.contains("lisen")
                && e.contains("listen")
                && e.contains("remove the key"),
            "{e}"
        );
        let e = load_str("[sever]\n", &[]).unwrap_err().to_string();
        assert!(e.contains("sever"), "{e}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let loaded = load_str(
            "[session]\nidle_timeout = \"1h\"\n",
            &[
                ("TESSERA_SESSION__IDLE_TIMEOUT", "5min"),
                ("TESSERA_LOGIN__MAX_FAILURES_PER_USER", "9"),
                ("TESSERA_BIN", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(
            loaded.settings.session.idle_timeout,
            Duration::from_secs(300)
        );
        assert_eq!(loaded.settings.login.max_failures_per_user, 9);
        let e = load_str("", &[("TESSERA_SERVER__NOPE", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("TESSERA_SERVER__NOPE") && e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_explained() {
        for (text, needle) in [
            ("[server]\nlisten = \"nowhere\"\n", "listen"),
            ("[server]\nbase_path = \"cas/\"\n", "base_path"),
            ("[session]\nidle_timeout = \"soon\"\n", "60s"),
            ("[tickets]\nservice_ticket_ttl = \"1h\"\n", "5 minutes"),
            ("[database]\nurl = \"mysql://x\"\n", "[database] url"),
            ("[[service]]\nname = \"a\"\npattern = \"(\"\n", "[[service]] #1 (a)"),
            ("[[service]]\nname = \"a\"\n", "exactly one of"),
            ("[[service]]\nname = \"a\"\nexact = \"x\"\n[[service]]\nname = \"a\"\nexact = \"y\"\n", "declared twice"),
            ("[[service]]\nname = \"a\"\nexact = \"x\"\nrelease = [\"bad name\"]\n", "attribute name"),
        ] {
            let e = load_str(text, &[]).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?} gave {e}");
        }
    }

    #[test]
    fn the_readme_sample_is_valid_and_matches_the_defaults() {
        let readme = include_str!("../../../README.md");
        let marker = "<!-- config-sample -->\n```toml\n";
        let start = readme.find(marker).expect("README has the sample") + marker.len();
        let sample = &readme[start..start + readme[start..].find("\n```").expect("sample ends")];
        let loaded = load_str(sample, &[]).unwrap();
        let (sample, defaults) = (loaded.settings, Settings::default());
        assert_eq!(
            format!("{:?}", sample.server),
            format!("{:?}", defaults.server)
        );
        assert_eq!(
            format!("{:?}", sample.database),
            format!("{:?}", defaults.database)
        );
        assert_eq!(
            format!("{:?}", sample.session),
            format!("{:?}", defaults.session)
        );
        assert_eq!(
            format!("{:?}", sample.tickets),
            format!("{:?}", defaults.tickets)
        );
        assert_eq!(
            format!("{:?}", sample.password),
            format!("{:?}", defaults.password)
        );
        assert_eq!(
            format!("{:?}", sample.login),
            format!("{:?}", defaults.login)
        );
        assert_eq!(
            format!("{:?}", sample.logout),
            format!("{:?}", defaults.logout)
        );
        assert_eq!(format!("{:?}", sample.oidc), format!("{:?}", defaults.oidc));
        assert_eq!(loaded.file_services.len(), 1);
        assert_eq!(loaded.file_clients.len(), 1);
    }

    #[test]
    fn oidc_settings_and_clients_are_checked() {
        let client = |extra: &str| {
            format!("[[client]]\nid = \"app\"\nredirect_uris = [\"https://app.example.org/cb\"]\n{extra}")
        };
        for (text, needle) in [
            (
                "[oidc]\nissuer_path = \"oidc/\"\n".to_owned(),
                "[oidc] issuer_path",
            ),
            (
                "[oidc]\nid_token_ttl = \"1min\"\n".to_owned(),
                "at least 5 minutes",
            ),
            ("[oidc]\ncode_ttl = \"1h\"\n".to_owned(), "[oidc] code_ttl"),
            (client(""), "give secret or secret_sha256"),
            (client("secret = \"short\"\n"), "at least 32 characters"),
            (
                client("public = true\nsecret = \"0123456789abcdef0123456789abcdef\"\n"),
                "give one of",
            ),
            (
                client("public = true\nsigning_alg = \"HS256\"\n"),
                "RS256 or ES256",
            ),
            (client("secret_sha256 = \"abc\"\n"), "64 hexadecimal digits"),
            (
                "[[client]]\nid = \"app\"\npublic = true\nredirect_uris = [\"javascript:x\"]\n"
                    .to_owned(),
                "[[client]] #1 (app)",
            ),
            (
                format!("{}{}", client("public = true\n"), client("public = true\n")),
                "declared twice",
            ),
            (
                client("public = true\nredirect_urls = []\n"),
                "[[client]] #1 redirect_urls",
            ),
        ] {
            let e = load_str(&text, &[]).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?} gave {e}");
        }
        let loaded = load_str(
            &client("secret = \"0123456789abcdef0123456789abcdef\"\nsigning_alg = \"ES256\"\nrelease = [\"memberOf=groups\"]\n"),
            &[],
        )
        .unwrap();
        let c = &loaded.file_clients[0];
        assert!(c.secret.verify("0123456789abcdef0123456789abcdef"));
        assert_eq!(c.signing_alg, tessera_protocol::oidc::SigningAlg::Es256);
        assert_eq!(c.origin, ServiceOrigin::ConfigFile);
    }

    #[test]
    fn file_services_compile_in_order() {
        let loaded = load_str(
            "[[service]]\nname = \"b\"\npattern = \"https://b/.*\"\nrelease = [\"mail=email\"]\nsso = false\n\
             [[service]]\nname = \"a\"\nprefix = \"https://a/\"\nrelease_all = true\n",
            &[],
        )
        .unwrap();
        let names: Vec<_> = loaded
            .file_services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert!(!loaded.file_services[0].sso);
        assert_eq!(loaded.file_services[1].release, AttributeRelease::All);
    }

    #[test]
    fn service_themes_descriptions_and_the_password_reset_link_are_checked() {
        let theme = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(theme.path().join("themes/campus")).unwrap();
        let service = |extra: &str| {
            format!(
                "[theme]\ndir = {:?}\n[[service]]\nname = \"a\"\nexact = \"https://a/\"\n{extra}",
                theme.path().display().to_string()
            )
        };
        let loaded = load_str(
            &service("theme = \"campus\"\ndescription = \"Mail and calendar\"\n"),
            &[],
        )
        .unwrap();
        let s = &loaded.file_services[0];
        assert_eq!(s.theme.as_deref(), Some("campus"));
        assert_eq!(s.description.as_deref(), Some("Mail and calendar"));
        for (text, needle) in [
            (
                service("theme = \"nope\"\n"),
                "themes/nope is not a directory",
            ),
            (service("theme = \"../x\"\n"), "use letters, digits"),
            (
                "[[service]]\nname = \"a\"\nexact = \"https://a/\"\ntheme = \"campus\"\n"
                    .to_owned(),
                "set [theme] dir",
            ),
            (
                service(&format!("description = \"{}\"\n", "x".repeat(501))),
                "at most 500",
            ),
            (
                "[login]\npassword_reset_url = \"javascript:alert(1)\"\n".to_owned(),
                "[login] password_reset_url",
            ),
        ] {
            let e = load_str(&text, &[]).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?} gave {e}");
        }
        let loaded = load_str(
            "[login]\npassword_reset_url = \"https://id.example.org/reset\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            loaded.settings.login.password_reset_url.unwrap().as_str(),
            "https://id.example.org/reset"
        );
    }
}
