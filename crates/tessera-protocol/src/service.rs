//! The service registry: which applications may use Tessera, and what each one is told.
//!
//! A service is authorised by its URL pattern (CAS 3.0 §2.1.1 "service" and §3.1.1), and carries the
//! per-service policy: attributes to release and under which names, the attribute that becomes the
//! username, attribute values required for access, whether single sign-on applies, and where logout
//! requests go. Matching and release are pure functions of the registry and a URL or attribute map.

use std::fmt;

use regex::{Regex, RegexBuilder};

use crate::attributes::{is_valid_attribute_name, Attributes};

/// The longest service URL accepted. Real ones are far shorter; the cap keeps rows and logs sane.
pub const MAX_SERVICE_URL_LEN: usize = 4096;

/// A `service` parameter that is safe to match, store and redirect to.
///
/// The value is kept exactly as the client sent it (decoded once), because the client rebuilds the
/// same string when it validates (§2.3 of the protocol digest). Checks refuse what could turn a redirect
/// into something else: control characters (header splitting), backslashes (parsed as `/` by
/// browsers), and for `http(s)` URLs a missing host or embedded credentials (`https://good@evil/`).
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUrl(String);

/// Why a `service` value was refused before any registry lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceUrlError {
    /// Empty value.
    #[error("the service URL is empty")]
    Empty,
    /// Longer than [`MAX_SERVICE_URL_LEN`].
    #[error("the service URL is longer than {MAX_SERVICE_URL_LEN} bytes")]
    TooLong,
    /// Control character or backslash.
    #[error("the service URL contains a control character or a backslash")]
    ForbiddenCharacter,
    /// Leading or trailing whitespace, which URL parsers trim but a redirect would keep.
    #[error("the service URL starts or ends with a space")]
    SurroundingSpace,
    /// Not a URL with a scheme.
    #[error("the service URL has no scheme")]
    NoScheme,
    /// An http(s) URL that does not parse, lacks a host, or carries a user name or password.
    #[error("the service URL is not a plain http(s) URL with a host and no credentials")]
    BadHttpUrl,
}

impl ServiceUrl {
    /// Checks `s` (already percent-decoded once) for use as a service URL.
    pub fn parse(s: &str) -> Result<Self, ServiceUrlError> {
        if s.is_empty() {
            return Err(ServiceUrlError::Empty);
        }
        if s.len() > MAX_SERVICE_URL_LEN {
            return Err(ServiceUrlError::TooLong);
        }
        if s.chars().any(|c| c.is_control() || c == '\\') {
            return Err(ServiceUrlError::ForbiddenCharacter);
        }
        // `url` trims these before parsing, so `https://app.example.org ` would pass the host check
        // below and then become `https://app.example.org ?ticket=…`, a different URL, once redirected.
        if s.trim() != s {
            return Err(ServiceUrlError::SurroundingSpace);
        }
        let scheme = s.split_once(':').map(|(scheme, _)| scheme).unwrap_or("");
        let scheme_ok = scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(ServiceUrlError::NoScheme);
        }
        if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
            let url = url::Url::parse(s).map_err(|_| ServiceUrlError::BadHttpUrl)?;
            if url.host_str().is_none_or(str::is_empty)
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(ServiceUrlError::BadHttpUrl);
            }
            // `http:/x` or `http:x` parse, but browsers read them differently from `url`.
            if !s[scheme.len()..].starts_with("://") {
                return Err(ServiceUrlError::BadHttpUrl);
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// The URL exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with `ticket=<ticket>` appended as the last query parameter, before any fragment
    /// (Apereo `DefaultResponse`; protocol digest rule 1). Nothing else is re-encoded or reordered.
    pub fn with_ticket(&self, ticket: &str) -> String {
        append_query(&self.0, &format!("ticket={ticket}"))
    }

    /// Whether a URL presented at validation names the service this ticket was issued for: both
    /// percent-decoded once more, fragments dropped, compared case-insensitively
    /// (Apereo `DefaultServiceMatchingStrategy`; trap T27).
    pub fn matches_presented(&self, presented: &str) -> bool {
        fn canonical(s: &str) -> String {
            let without_fragment = s.split_once('#').map_or(s, |(base, _)| base);
            let plus_as_space = without_fragment.replace('+', " ");
            percent_encoding::percent_decode_str(&plus_as_space)
                .decode_utf8_lossy()
                .to_lowercase()
        }
        canonical(&self.0) == canonical(presented)
    }
}

/// `url` with `query` appended as its last query parameters, before any `#fragment`: `?` when the URL
/// has no query yet, `&` otherwise. Nothing already in the URL is re-encoded or reordered (Apereo
/// `DefaultResponse`; protocol digest §2.3).
pub fn append_query(url: &str, query: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}{query}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a service's URLs are recognised.
#[derive(Clone)]
pub enum ServicePattern {
    /// A regular expression that must match the whole URL.
    Regex {
        /// The expression as the operator wrote it.
        source: String,
        /// `^(?:source)$`, compiled.
        compiled: Regex,
    },
    /// The URL, byte for byte.
    Exact(String),
    /// URLs starting with this string, where the next character (if any) ends a path segment
    /// (`/`, `?` or `#`) unless the prefix itself ends with `/`. So the prefix
    /// `https://app.example.org` does not admit `https://app.example.org.evil.net/`.
    Prefix(String),
}

/// A pattern that did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid service pattern: {0}")]
pub struct PatternError(pub String);

impl ServicePattern {
    /// Compiles an anchored regular expression. Patterns larger than 1 MB compiled are refused.
    pub fn regex(source: &str) -> Result<Self, PatternError> {
        let compiled = compile_anchored(source)?;
        Ok(Self::Regex {
            source: source.to_owned(),
            compiled,
        })
    }

    /// Reads a pattern back from its stored kind (`regex`, `exact`, `prefix`) and text.
    pub fn from_parts(kind: &str, source: &str) -> Result<Self, PatternError> {
        match kind {
            "regex" => Self::regex(source),
            "exact" => Ok(Self::Exact(source.to_owned())),
            "prefix" if !source.is_empty() => Ok(Self::Prefix(source.to_owned())),
            "prefix" => Err(PatternError("a prefix pattern cannot be empty".into())),
            other => Err(PatternError(format!(
                "unknown pattern kind `{other}`; use regex, exact or prefix"
            ))),
        }
    }

    /// `regex`, `exact` or `prefix`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Regex { .. } => "regex",
            Self::Exact(_) => "exact",
            Self::Prefix(_) => "prefix",
        }
    }

    /// The pattern text as given.
    pub fn source(&self) -> &str {
        match self {
            Self::Regex { source, .. } => source,
            Self::Exact(s) | Self::Prefix(s) => s,
        }
    }

    /// Whether `url` is one of this service's URLs.
    pub fn matches(&self, url: &str) -> bool {
        match self {
            Self::Regex { compiled, .. } => compiled.is_match(url),
            Self::Exact(s) => s == url,
            Self::Prefix(p) => url.strip_prefix(p.as_str()).is_some_and(|rest| {
                p.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#'])
            }),
        }
    }
}

impl fmt::Debug for ServicePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.source())
    }
}

fn compile_anchored(source: &str) -> Result<Regex, PatternError> {
    RegexBuilder::new(&format!("^(?:{source})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| PatternError(e.to_string()))
}

/// One attribute to release: the user's `from` attribute, sent as `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeRule {
    /// The attribute's name in the user store.
    pub from: String,
    /// The name the service sees.
    pub to: String,
}

impl AttributeRule {
    /// Reads `ATTR` or `ATTR=RENAMED`; both names must be valid XML names.
    pub fn parse(spec: &str) -> Result<Self, PatternError> {
        let (from, to) = spec.split_once('=').unwrap_or((spec, spec));
        for name in [from, to] {
            if !is_valid_attribute_name(name) {
                return Err(PatternError(format!(
                    "`{name}` is not a valid attribute name (letters, digits, - _ . ; not starting with a digit)"
                )));
            }
        }
        Ok(Self {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }
}

impl fmt::Display for AttributeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            f.write_str(&self.from)
        } else {
            write!(f, "{}={}", self.from, self.to)
        }
    }
}

/// Which attributes a service receives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AttributeRelease {
    /// None (the default: release is opt-in).
    #[default]
    Nothing,
    /// Every attribute the user has.
    All,
    /// Only these, possibly renamed.
    Only(Vec<AttributeRule>),
}

impl AttributeRelease {
    /// The attributes released under this policy, renamed; empty values and names that are not
    /// valid XML names are left out (trap T18).
    pub fn apply(&self, attributes: &Attributes) -> Attributes {
        let keep = |values: &Vec<String>| -> Vec<String> {
            values.iter().filter(|v| !v.is_empty()).cloned().collect()
        };
        let mut out = Attributes::new();
        match self {
            Self::Nothing => {}
            Self::All => {
                for (name, values) in attributes {
                    if is_valid_attribute_name(name) {
                        out.insert(name.clone(), keep(values));
                    }
                }
            }
            Self::Only(rules) => {
                for rule in rules {
                    if let Some(values) = attributes.get(&rule.from) {
                        out.entry(rule.to.clone()).or_default().extend(keep(values));
                    }
                }
            }
        }
        out.retain(|_, values| !values.is_empty());
        out
    }
}

/// An attribute value a user must have to enter a service.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// The attribute.
    pub attribute: String,
    /// The source of the regex that one of its values must match in whole.
    pub source: String,
    compiled: Regex,
}

impl Requirement {
    /// Reads `ATTR=REGEX`.
    pub fn parse(spec: &str) -> Result<Self, PatternError> {
        let (attribute, source) = spec
            .split_once('=')
            .ok_or_else(|| PatternError(format!("`{spec}` is not ATTR=REGEX")))?;
        if !is_valid_attribute_name(attribute) {
            return Err(PatternError(format!(
                "`{attribute}` is not a valid attribute name"
            )));
        }
        Ok(Self {
            attribute: attribute.to_owned(),
            source: source.to_owned(),
            compiled: compile_anchored(source)?,
        })
    }

    /// Whether some value of the attribute matches.
    pub fn is_met_by(&self, attributes: &Attributes) -> bool {
        attributes
            .get(&self.attribute)
            .is_some_and(|values| values.iter().any(|v| self.compiled.is_match(v)))
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.attribute, self.source)
    }
}

/// How a service hears of a logout (CAS 3.0 §2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogoutType {
    /// Tessera POSTs the `LogoutRequest` to the service (the default; what CAS clients implement).
    #[default]
    BackChannel,
    /// The browser loads the service's logout URL from the logged-out page.
    FrontChannel,
    /// The service is not told.
    None,
}

impl LogoutType {
    /// `back`, `front` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BackChannel => "back",
            Self::FrontChannel => "front",
            Self::None => "none",
        }
    }

    /// Reads `back`, `front` or `none`.
    pub fn parse(s: &str) -> Result<Self, PatternError> {
        match s {
            "back" => Ok(Self::BackChannel),
            "front" => Ok(Self::FrontChannel),
            "none" => Ok(Self::None),
            other => Err(PatternError(format!(
                "unknown logout type `{other}`; use back, front or none"
            ))),
        }
    }
}

/// Where a registered service was declared; decides precedence (see [`ServiceRegistry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceOrigin {
    /// A `[[service]]` table of the config file.
    ConfigFile,
    /// The database, managed with `tessera service`.
    Database,
}

/// A registered service and its policy.
#[derive(Debug, Clone)]
pub struct RegisteredService {
    /// Unique name.
    pub name: String,
    /// Which URLs belong to it.
    pub pattern: ServicePattern,
    /// A disabled service is treated as unregistered.
    pub enabled: bool,
    /// Attribute release policy.
    pub release: AttributeRelease,
    /// Attribute whose first value is sent as the user instead of the login name.
    pub username_attribute: Option<String>,
    /// Attribute values required for access; all must be met.
    pub requirements: Vec<Requirement>,
    /// Whether an existing SSO session is enough; if not, every login asks for the password.
    pub sso: bool,
    /// Where single-logout requests go (default: the URL the service logged in with).
    pub logout_url: Option<String>,
    /// How it hears of a logout.
    pub logout_type: LogoutType,
    /// Proxy callback URLs (`pgtUrl`) it may use to obtain proxy-granting tickets; `None` means it
    /// may not proxy (CAS 3.0 §2.5.4).
    pub proxy_callback: Option<ServicePattern>,
    /// Whether it accepts proxy tickets, i.e. may be a proxy's `targetService` (CAS 3.0 §2.7).
    pub proxy_target: bool,
    /// Where it was declared.
    pub origin: ServiceOrigin,
    /// The look of the pages about it: a per-service theme of the server's theme directory.
    pub theme: Option<String>,
    /// What it is, shown under its name on the login page.
    pub description: Option<String>,
}

impl RegisteredService {
    /// A service with default policy: enabled, SSO on, no attributes released.
    pub fn new(name: impl Into<String>, pattern: ServicePattern, origin: ServiceOrigin) -> Self {
        Self {
            name: name.into(),
            pattern,
            enabled: true,
            release: AttributeRelease::Nothing,
            username_attribute: None,
            requirements: Vec::new(),
            sso: true,
            logout_url: None,
            logout_type: LogoutType::BackChannel,
            proxy_callback: None,
            proxy_target: false,
            origin,
            theme: None,
            description: None,
        }
    }

    /// Where logout requests for a session that entered at `service_url` go.
    pub fn logout_target<'a>(&'a self, service_url: &'a str) -> &'a str {
        self.logout_url.as_deref().unwrap_or(service_url)
    }

    /// Whether a user with these attributes may enter.
    pub fn allows(&self, attributes: &Attributes) -> bool {
        self.requirements.iter().all(|r| r.is_met_by(attributes))
    }

    /// The user id this service is told: the first value of the username attribute when one is set
    /// and the user has it, otherwise the login name.
    pub fn principal_for(&self, username: &str, attributes: &Attributes) -> String {
        self.username_attribute
            .as_ref()
            .and_then(|a| attributes.get(a))
            .and_then(|values| values.first())
            .cloned()
            .unwrap_or_else(|| username.to_owned())
    }

    /// The attributes this service receives, renamed (see [`AttributeRelease::apply`]).
    pub fn released(&self, attributes: &Attributes) -> Attributes {
        self.release.apply(attributes)
    }
}

/// All registered services, in precedence order: services of the config file first, in file order,
/// then database services by name. The first enabled service whose pattern matches a URL wins, and a
/// database service whose name is taken by the config file is ignored (the file wins).
#[derive(Debug, Clone, Default)]
pub struct ServiceRegistry {
    services: Vec<RegisteredService>,
}

/// How one registered service relates to a URL (for `tessera service match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    /// This service matches and is the one chosen.
    Chosen,
    /// It matches, but an earlier service was chosen.
    Shadowed,
    /// It matches but is disabled.
    Disabled,
    /// Its pattern does not match.
    NoMatch,
    /// A config-file service of the same name replaces it.
    OverriddenByFile,
}

impl ServiceRegistry {
    /// Builds the registry from config-file services (in file order) and database services.
    pub fn new(
        from_file: Vec<RegisteredService>,
        mut from_database: Vec<RegisteredService>,
    ) -> Self {
        from_database.sort_by(|a, b| a.name.cmp(&b.name));
        let mut services = from_file;
        for s in from_database {
            if !services.iter().any(|f| f.name == s.name) {
                services.push(s);
            }
        }
        Self { services }
    }

    /// The service a URL belongs to, if it is registered and enabled.
    pub fn find(&self, url: &str) -> Option<&RegisteredService> {
        self.services
            .iter()
            .find(|s| s.enabled && s.pattern.matches(url))
    }

    /// The service of this name, enabled or not.
    pub fn by_name(&self, name: &str) -> Option<&RegisteredService> {
        self.services.iter().find(|s| s.name == name)
    }

    /// All services, in precedence order.
    pub fn services(&self) -> &[RegisteredService] {
        &self.services
    }

    /// How every service, in precedence order, relates to `url`; `shadowed_database` lists database
    /// services hidden by a file service of the same name.
    pub fn explain<'a>(
        &'a self,
        url: &str,
        shadowed_database: &'a [RegisteredService],
    ) -> Vec<(&'a RegisteredService, MatchOutcome)> {
        let mut chosen = false;
        let mut out: Vec<_> = self
            .services
            .iter()
            .map(|s| {
                let outcome = match (s.pattern.matches(url), s.enabled) {
                    (false, _) => MatchOutcome::NoMatch,
                    (true, false) => MatchOutcome::Disabled,
                    (true, true) if chosen => MatchOutcome::Shadowed,
                    (true, true) => {
                        chosen = true;
                        MatchOutcome::Chosen
                    }
                };
                (s, outcome)
            })
            .collect();
        out.extend(
            shadowed_database
                .iter()
                .map(|s| (s, MatchOutcome::OverriddenByFile)),
        );
        out
    }
}

#[cfg(test)]
mod tests;
