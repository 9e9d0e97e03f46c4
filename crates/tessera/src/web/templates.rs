//! MiniJinja templates, auto-escaped, embedded at build time, rendered in the visitor's language.
//!
//! An operator theme directory (`[theme] dir`) replaces any template by name
//! (`templates/login.html`, and may add partials), any built-in static file (`static/style.css`,
//! `static/logo.svg`, `static/form_post.js`) and any message (`i18n/<lang>.toml`, see
//! [`super::i18n`]). A per-service theme `themes/NAME/` inside it does the same, over those, for the
//! pages about a service that names it (`theme = "NAME"`). Each page has a context struct, so a
//! template typo fails a test, not a login.
//!
//! Templates look messages up with `t("login.title")` (or `t(key, name=value)` for a message with
//! `{name}` arguments, which are escaped); the language is the page's `lang`. A key no catalog
//! has is shown as it is, escaped, so callers without a request may pass plain text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{context, Environment, State, UndefinedBehavior};
use serde::Serialize;

use super::i18n::{self, Catalogs, LangRequest};

const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("logged_in.html", include_str!("templates/logged_in.html")),
    ("logged_out.html", include_str!("templates/logged_out.html")),
    ("warn.html", include_str!("templates/warn.html")),
    ("error.html", include_str!("templates/error.html")),
    (
        "access_denied.html",
        include_str!("templates/access_denied.html"),
    ),
    ("consent.html", include_str!("templates/consent.html")),
    ("form_post.html", include_str!("templates/form_post.html")),
    (
        "end_session.html",
        include_str!("templates/end_session.html"),
    ),
];

const STATIC: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("static/style.css"),
    ),
    (
        "form_post.js",
        "text/javascript; charset=utf-8",
        include_str!("static/form_post.js"),
    ),
    ("logo.svg", "image/svg+xml", include_str!("static/logo.svg")),
];

/// A template or catalog failed to load or render (a theme bug, never the user's input).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A template does not parse or render.
    #[error("template {name}: {source}")]
    Template {
        /// Which (`login.html`, `themes/NAME/login.html`).
        name: String,
        /// Why.
        source: minijinja::Error,
    },
    /// A theme directory cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A message catalog is broken.
    #[error(transparent)]
    Catalog(#[from] i18n::CatalogError),
}

/// The page templates of the default look and of each per-service theme, and the messages.
#[derive(Debug)]
pub struct Templates {
    default: Environment<'static>,
    themes: BTreeMap<String, Environment<'static>>,
    dir: Option<PathBuf>,
    catalogs: Arc<Catalogs>,
}

/// How one page is shown: in which language, with which theme, and where the language switcher's
/// links point.
#[derive(Debug, Clone)]
pub struct View {
    /// The language (a catalog's code).
    pub lang: String,
    /// Whether the visitor chose it just now (the `lang` parameter), so it is worth remembering.
    pub chosen: bool,
    /// The per-service theme, when the page is about a service that has one.
    pub theme: Option<String>,
    /// This page's address (path and query) for the switcher's links; `None` hides the switcher
    /// (pages that must not be loaded twice).
    pub here: Option<String>,
}

impl View {
    /// English, the default look, no switcher: for answers that have no request to read.
    pub fn plain() -> Self {
        Self {
            lang: i18n::DEFAULT_LANG.to_owned(),
            chosen: false,
            theme: None,
            here: None,
        }
    }

    /// The same view with the theme of the service the page is about.
    pub fn with_theme(mut self, theme: Option<&str>) -> Self {
        self.theme = theme.map(str::to_owned);
        self
    }
}

/// A page's context, and the template that shows it.
pub trait Page: Serialize {
    /// The template's name.
    const TEMPLATE: &'static str;
}

/// What every page knows.
#[derive(Debug, Serialize)]
pub struct Chrome<'a> {
    /// Where static assets are served (`/cas/static`).
    pub static_base: &'a str,
    /// The CAS base path (`/cas`).
    pub base_path: &'a str,
}

/// A message for the visitor: a catalog key and its arguments.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The catalog key (`login.error.invalid`).
    pub key: &'static str,
    /// Values for the message's `{name}` placeholders.
    pub args: BTreeMap<&'static str, String>,
}

impl Message {
    /// The message `key`, without arguments.
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            args: BTreeMap::new(),
        }
    }

    /// Adds the argument `name`.
    pub fn arg(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.args.insert(name, value.into());
        self
    }
}

/// The login form (CAS 3.0 §2.1.3).
#[derive(Debug, Serialize)]
pub struct LoginPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The form's `action`.
    pub action: String,
    /// One-time form token (`lt`).
    pub lt: String,
    /// `service`, echoed as a hidden field.
    pub service: Option<&'a str>,
    /// Name of the registered service (or OpenID Connect client), shown to the user.
    pub service_name: Option<&'a str>,
    /// What the service is, in its operator's words.
    pub service_description: Option<&'a str>,
    /// `renew` to carry through.
    pub renew: bool,
    /// `gateway` to carry through.
    pub gateway: bool,
    /// Username to prefill after a failure (never the password).
    pub username: &'a str,
    /// Error to show above the form.
    pub error: Option<Message>,
    /// Offer "remember me".
    pub remember_me: bool,
    /// Where users reset a forgotten password (`[login] password_reset_url`).
    pub password_reset_url: Option<&'a str>,
    /// An OpenID Connect authorization request to resume after login (its query), as a hidden field.
    pub authorize: Option<&'a str>,
}

impl Page for LoginPage<'_> {
    const TEMPLATE: &'static str = "login.html";
}

/// "You are logged in".
#[derive(Debug, Serialize)]
pub struct LoggedInPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// Login name.
    pub username: &'a str,
    /// The logout link.
    pub logout_url: String,
}

impl Page for LoggedInPage<'_> {
    const TEMPLATE: &'static str = "logged_in.html";
}

/// "You are logged out".
#[derive(Debug, Serialize)]
pub struct LoggedOutPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// Whether there was a session to end.
    pub had_session: bool,
    /// Names of the applications told of the logout.
    pub notified: Vec<String>,
    /// Front-channel logout URLs the page loads in frames.
    pub frames: Vec<String>,
    /// Where to go next, when the logout asked to return to a service.
    pub continue_url: Option<String>,
}

impl Page for LoggedOutPage<'_> {
    const TEMPLATE: &'static str = "logged_out.html";
}

/// Confirmation before entering a service with the existing session (`warn`).
#[derive(Debug, Serialize)]
pub struct WarnPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The form's `action`.
    pub action: String,
    /// One-time form token.
    pub lt: String,
    /// The service URL.
    pub service: &'a str,
    /// Its registered name.
    pub service_name: &'a str,
    /// Login name.
    pub username: &'a str,
}

impl Page for WarnPage<'_> {
    const TEMPLATE: &'static str = "warn.html";
}

/// OpenID Connect consent: may this client know who the user is?
#[derive(Debug, Serialize)]
pub struct ConsentPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The form's `action`.
    pub action: String,
    /// One-time form token.
    pub lt: String,
    /// The authorization request (its query), carried through.
    pub request: &'a str,
    /// The client's display name.
    pub client_name: &'a str,
    /// Login name.
    pub username: &'a str,
    /// What the scopes mean: one message key each.
    pub scopes: Vec<&'static str>,
}

impl Page for ConsentPage<'_> {
    const TEMPLATE: &'static str = "consent.html";
}

/// A form the browser submits to an application: an OpenID Connect `form_post` response, or a CAS
/// ticket for `method=POST`.
#[derive(Debug, Serialize)]
pub struct FormPostPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The client's redirect URI, or the service URL.
    pub action: &'a str,
    /// The response parameters.
    pub params: &'a [(String, String)],
}

impl Page for FormPostPage<'_> {
    const TEMPLATE: &'static str = "form_post.html";
}

/// Confirmation of an RP-initiated logout that did not prove it came from the session's client.
#[derive(Debug, Serialize)]
pub struct EndSessionPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The form's `action`.
    pub action: String,
    /// One-time form token.
    pub lt: String,
    /// The logout request (its query), carried through.
    pub request: &'a str,
    /// The client that asked, when known.
    pub client_name: Option<&'a str>,
    /// Login name.
    pub username: Option<&'a str>,
}

impl Page for EndSessionPage<'_> {
    const TEMPLATE: &'static str = "end_session.html";
}

/// The user is logged in but may not use the service (its required attributes are not met).
#[derive(Debug, Serialize)]
pub struct AccessDeniedPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The service's registered name.
    pub service_name: &'a str,
    /// Login name.
    pub username: &'a str,
    /// The logout link, to log in as someone else.
    pub logout_url: String,
}

impl Page for AccessDeniedPage<'_> {
    const TEMPLATE: &'static str = "access_denied.html";
}

/// An error: unknown service, bad request, or our failure.
#[derive(Debug, Serialize)]
pub struct ErrorPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// Heading: a message key, or text shown as it is.
    pub title: &'a str,
    /// Explanation: a message key, or text shown as it is.
    pub message: &'a str,
    /// Values for the explanation's `{name}` placeholders.
    pub message_args: BTreeMap<&'static str, String>,
    /// A technical detail for the developer of the application that sent the user, shown as it
    /// is, untranslated (an OAuth `error` code).
    pub detail: Option<&'a str>,
    /// A request id for the operator's logs, on server faults.
    pub request_id: Option<&'a str>,
}

impl<'a> ErrorPage<'a> {
    /// The page `title`, `message` (message keys), without arguments, detail or request id.
    pub fn new(chrome: Chrome<'a>, title: &'a str, message: &'a str) -> Self {
        Self {
            chrome,
            title,
            message,
            message_args: BTreeMap::new(),
            detail: None,
            request_id: None,
        }
    }
}

impl Page for ErrorPage<'_> {
    const TEMPLATE: &'static str = "error.html";
}

/// Escapes the five HTML metacharacters and nothing else (MiniJinja's default also escapes `/`,
/// which makes URLs in attributes needlessly hard for scripted clients to read).
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let Some(text) = value.as_str().filter(|_| !value.is_safe()) else {
        return minijinja::escape_formatter(out, state, value);
    };
    let mut escaped = String::with_capacity(text.len());
    i18n::escape_into(&mut escaped, text);
    std::fmt::Write::write_str(out, &escaped).map_err(|_| {
        minijinja::Error::new(
            minijinja::ErrorKind::WriteFailure,
            "cannot write template output",
        )
    })
}

/// `t(key)`, `t(key, name=value)` or `t(key, {"name": value})`: the message `key` in the page's
/// language with its arguments escaped, as markup; a key no catalog has comes back as plain text.
fn translate(
    catalogs: &Catalogs,
    state: &State<'_, '_>,
    key: &str,
    args: Option<Value>,
) -> Result<Value, minijinja::Error> {
    let lang = state
        .lookup("lang")
        .and_then(|l| l.as_str().map(str::to_owned))
        .unwrap_or_else(|| i18n::DEFAULT_LANG.to_owned());
    let Some(text) = catalogs.text(&lang, key) else {
        return Ok(Value::from(key));
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(args) = args.filter(|a| !a.is_none() && !a.is_undefined()) {
        for name in args.try_iter()? {
            let value = args.get_item(&name)?;
            pairs.push((name.to_string(), value.to_string()));
        }
    }
    let pairs: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    Ok(Value::from_safe_string(i18n::interpolate(text, &pairs)))
}

/// `here` with its `lang` parameter set to `code` (the switcher's links).
fn with_lang(here: &str, code: &str) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != "lang" {
            out.append_pair(&k, &v);
        }
    }
    out.append_pair("lang", code);
    format!("{path}?{}", out.finish())
}

/// Whether `name` may name a per-service theme (a directory under `themes/`).
pub fn is_theme_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.starts_with('-')
}

/// The `.html` files of `dir/templates`, by name.
fn theme_templates(dir: &Path) -> Result<Vec<(String, String)>, TemplateError> {
    let templates = dir.join("templates");
    if !templates.is_dir() {
        return Ok(Vec::new());
    }
    let io = |source| TemplateError::Io {
        path: templates.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&templates).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".html") || !path.is_file() {
            continue;
        }
        let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        out.push((name.to_owned(), source));
    }
    out.sort();
    Ok(out)
}

/// An environment with the built-in templates, then each layer's (least specific first) over them.
fn environment(
    layers: &[&Path],
    label: &str,
    catalogs: &Arc<Catalogs>,
) -> Result<Environment<'static>, TemplateError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_formatter(html_formatter);
    let t = Arc::clone(catalogs);
    env.add_function(
        "t",
        move |state: &State<'_, '_>, key: &str, args: Option<Value>| {
            translate(&t, state, key, args)
        },
    );
    let mut sources: BTreeMap<String, String> = BUILT_IN
        .iter()
        .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
        .collect();
    for layer in layers {
        sources.extend(theme_templates(layer)?);
    }
    for (name, source) in sources {
        env.add_template_owned(name.clone(), source)
            .map_err(|source| TemplateError::Template {
                name: format!("{label}{name}"),
                source,
            })?;
    }
    // Render-time errors (an unknown variable) show up here too: every built-in page must render.
    Ok(env)
}

impl Templates {
    /// The built-in templates, each replaced by `<theme>/templates/<name>` when that file exists,
    /// and one set per `<theme>/themes/NAME/` directory.
    pub fn new(theme: Option<&Path>) -> Result<Self, TemplateError> {
        let catalogs = Arc::new(Catalogs::load(theme)?);
        let layers: Vec<&Path> = theme.into_iter().collect();
        let default = environment(&layers, "", &catalogs)?;
        let mut themes = BTreeMap::new();
        if let Some(root) = theme.map(|t| t.join("themes")).filter(|d| d.is_dir()) {
            let io = |source| TemplateError::Io {
                path: root.display().to_string(),
                source,
            };
            for entry in std::fs::read_dir(&root).map_err(io)? {
                let path = entry.map_err(io)?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !path.is_dir() || !is_theme_name(name) {
                    continue;
                }
                let mut layers = layers.clone();
                layers.push(&path);
                let env = environment(&layers, &format!("themes/{name}/"), &catalogs)?;
                themes.insert(name.to_owned(), env);
            }
        }
        Ok(Self {
            default,
            themes,
            dir: theme.map(Path::to_path_buf),
            catalogs,
        })
    }

    /// The message catalogs.
    pub fn catalogs(&self) -> &Catalogs {
        &self.catalogs
    }

    /// Whether a per-service theme of this name exists.
    pub fn has_theme(&self, name: &str) -> bool {
        self.themes.contains_key(name)
    }

    /// The view of a page asked for in `request`'s language, at `here` (for the switcher).
    pub fn view(&self, request: LangRequest<'_>, here: Option<String>) -> View {
        let lang = self.catalogs.negotiate(request);
        // The parameter wins when it names a language: then it is the one shown.
        let chosen = request
            .explicit
            .and_then(|e| self.catalogs.find(e))
            .is_some();
        View {
            lang,
            chosen,
            theme: None,
            here,
        }
    }

    /// Renders `page` as `view` says.
    pub fn page<P: Page>(&self, view: &View, page: &P) -> Result<String, TemplateError> {
        let theme = view
            .theme
            .as_deref()
            .and_then(|name| self.themes.get(name).map(|env| (name, env)));
        let env = theme.map_or(&self.default, |(_, env)| env);
        let fail = |source| TemplateError::Template {
            name: match theme {
                Some((name, _)) => format!("themes/{name}/{}", P::TEMPLATE),
                None => P::TEMPLATE.to_owned(),
            },
            source,
        };
        let ctx = Value::from_serialize(page);
        let mut chrome = ctx.get_attr("chrome").map_err(fail)?;
        if let Some((name, _)) = theme {
            let base_path = chrome.get_attr("base_path").map_err(fail)?;
            let static_base = chrome.get_attr("static_base").map_err(fail)?;
            chrome = context! {
                static_base => format!("{static_base}/themes/{name}"),
                base_path => base_path,
            };
        }
        let languages: Vec<Value> = match &view.here {
            Some(here) => self
                .catalogs
                .languages()
                .into_iter()
                .map(|l| {
                    context! {
                        href => with_lang(here, &l.code),
                        current => l.code == view.lang,
                        code => l.code,
                        name => l.name,
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        env.get_template(P::TEMPLATE)
            .and_then(|t| {
                t.render(context! {
                    lang => view.lang,
                    languages => languages,
                    chrome => chrome,
                    ..ctx
                })
            })
            .map_err(fail)
    }

    /// Renders an error page in English with the default look, for answers that have no request
    /// to read a language from.
    pub fn error(&self, page: &ErrorPage<'_>) -> Result<String, TemplateError> {
        self.page(&View::plain(), page)
    }

    /// A static asset: (content type, body), from the theme if it has one, else built in. Only the
    /// built-in file names are served, so the theme directory is never browsable.
    pub fn static_file(&self, name: &str) -> Option<(&'static str, Vec<u8>)> {
        self.theme_static_file(None, name)
    }

    /// A static asset of a per-service theme (`themes/NAME/static/FILE`), else of the theme, else
    /// built in; `None` for an unknown theme or file name.
    pub fn theme_static_file(
        &self,
        theme: Option<&str>,
        name: &str,
    ) -> Option<(&'static str, Vec<u8>)> {
        let (file, content_type, builtin) = STATIC.iter().find(|(file, _, _)| *file == name)?;
        let mut candidates = Vec::new();
        if let Some(dir) = &self.dir {
            if let Some(theme) = theme {
                if !self.has_theme(theme) {
                    return None;
                }
                candidates.push(dir.join("themes").join(theme).join("static").join(file));
            }
            candidates.push(dir.join("static").join(file));
        } else if theme.is_some() {
            return None;
        }
        let themed = candidates.iter().find_map(|p| std::fs::read(p).ok());
        Some((
            content_type,
            themed.unwrap_or_else(|| builtin.as_bytes().to_vec()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome() -> Chrome<'static> {
        Chrome {
            static_base: "/cas/static",
            base_path: "/cas",
        }
    }

    fn view(lang: &str) -> View {
        View {
            lang: lang.into(),
            chosen: false,
            theme: None,
            here: Some("/cas/login?service=https%3A%2F%2Fa%2F&lang=de".into()),
        }
    }

    fn sample_login() -> LoginPage<'static> {
        LoginPage {
            chrome: chrome(),
            action: "/cas/login".into(),
            lt: "LT-1".into(),
            service: Some("https://a/?x=1&y=\"2\""),
            service_name: Some("App <One>"),
            service_description: Some("Mail & calendar"),
            renew: true,
            gateway: false,
            username: "<b>",
            error: Some(Message::new("login.error.invalid")),
            remember_me: true,
            password_reset_url: Some("https://id.example.org/reset?a=1&b=2"),
            authorize: None,
        }
    }

    fn sample_logged_out() -> LoggedOutPage<'static> {
        LoggedOutPage {
            chrome: chrome(),
            had_session: true,
            notified: vec!["App <1>".into()],
            frames: vec!["https://a/slo?SAMLRequest=x&y".into()],
            continue_url: Some("https://a/".into()),
        }
    }

    /// Every `t("…")` key the built-in templates use, with the literal keys handlers pass.
    fn keys_in_templates() -> Vec<String> {
        let re = regex::Regex::new(r#"t\(["']([a-z_.]+)["']"#).unwrap();
        BUILT_IN
            .iter()
            .flat_map(|(_, source)| re.captures_iter(source).map(|c| c[1].to_owned()))
            .collect()
    }

    #[test]
    fn every_template_renders_with_sample_data_and_escapes() {
        let t = Templates::new(None).unwrap();
        let login = t.page(&view("en"), &sample_login()).unwrap();
        assert_eq!(
            login.matches("<form").count(),
            1,
            "the login form is the page's only form"
        );
        for needle in [
            r#"<html lang="en">"#,
            r#"action="/cas/login""#,
            r#"name="username" id="username""#,
            r#"name="password" id="password""#,
            r#"name="lt" value="LT-1""#,
            r#"name="service" value="https://a/?x=1&amp;y=&#34;2&#34;""#,
            r#"name="renew" value="true""#,
            "to continue to <strong>App &lt;One&gt;</strong> — Mail &amp; calendar",
            r#"value="&lt;b&gt;""#,
            "rememberMe",
            r#"role="alert""#,
            "Invalid username or password.",
            "Caps Lock",
            r#"href="https://id.example.org/reset?a=1&amp;b=2">Forgot your password?"#,
            r#"href="/cas/login?service=https%3A%2F%2Fa%2F&amp;lang=fr" lang="fr" hreflang="fr">Français"#,
            r#"src="/cas/static/logo.svg""#,
        ] {
            assert!(login.contains(needle), "missing {needle} in {login}");
        }
        assert!(!login.contains("<b>"));
        assert!(!login.contains("style=") && !login.contains("<script"));
        t.page(
            &view("en"),
            &LoggedInPage {
                chrome: chrome(),
                username: "u",
                logout_url: "/cas/logout".into(),
            },
        )
        .unwrap();
        let out = t.page(&view("en"), &sample_logged_out()).unwrap();
        assert!(out.contains("App &lt;1&gt;"), "{out}");
        assert!(
            out.contains(r#"<iframe class="slo" src="https://a/slo?SAMLRequest=x&amp;y""#),
            "{out}"
        );
        assert!(out.contains(r#"href="https://a/""#), "{out}");
        let warn = t
            .page(
                &view("en"),
                &WarnPage {
                    chrome: chrome(),
                    action: "/cas/login".into(),
                    lt: "LT-2".into(),
                    service: "https://a/",
                    service_name: "A",
                    username: "u",
                },
            )
            .unwrap();
        assert!(warn.contains(r#"name="continue""#) && warn.contains("Continue to A?"));
        let denied = t
            .page(
                &view("en"),
                &AccessDeniedPage {
                    chrome: chrome(),
                    service_name: "S<",
                    username: "u",
                    logout_url: "/cas/logout".into(),
                },
            )
            .unwrap();
        assert!(denied.contains("Access denied") && denied.contains("S&lt;"));
        let consent = t
            .page(
                &view("en"),
                &ConsentPage {
                    chrome: chrome(),
                    action: "/oidc/consent".into(),
                    lt: "LT-3".into(),
                    request: "client_id=a&scope=openid",
                    client_name: "RP",
                    username: "u",
                    scopes: vec!["consent.scope.openid", "consent.scope.email"],
                },
            )
            .unwrap();
        assert!(consent.contains("e-mail") && consent.contains("Allow RP"));
        let post = t
            .page(
                &View::plain(),
                &FormPostPage {
                    chrome: chrome(),
                    action: "https://rp/cb",
                    params: &[("code".into(), "c&1".into())],
                },
            )
            .unwrap();
        assert!(post.contains(r#"value="c&amp;1""#) && !post.contains("languages"));
        t.page(
            &view("en"),
            &EndSessionPage {
                chrome: chrome(),
                action: "/oidc/logout/confirm".into(),
                lt: "LT-4".into(),
                request: "x=1",
                client_name: Some("RP"),
                username: None,
            },
        )
        .unwrap();
        let err = t
            .error(&ErrorPage {
                request_id: Some("r1"),
                detail: Some("invalid_request (<x>)"),
                ..ErrorPage::new(chrome(), "T", "<script>")
            })
            .unwrap();
        assert!(err.contains("&lt;script&gt;") && err.contains("<code>r1</code>"));
        assert!(
            err.contains("Technical detail: <code>invalid_request (&lt;x&gt;)</code>"),
            "{err}"
        );
    }

    #[test]
    fn error_pages_translate_their_message_with_escaped_arguments() {
        let t = Templates::new(None).unwrap();
        let mut page = ErrorPage::new(
            chrome(),
            "error.oidc.redirect_uri.title",
            "error.oidc.redirect_uri.unregistered",
        );
        page.message_args.insert("client", "RP <1>".into());
        page.message_args
            .insert("uri", "https://evil/?a=1&b".into());
        page.detail = Some("invalid_request (redirect_uri)");
        let de = t.page(&view("de"), &page).unwrap();
        assert!(de.contains(r#"<html lang="de">"#), "{de}");
        assert!(
            de.contains("<h1>Ungültige Rückleitungsadresse</h1>")
                && de.contains(
                    "<strong>RP &lt;1&gt;</strong> möchte Sie zu <code>https://evil/?a=1&amp;b</code>"
                )
                && de.contains("Technisches Detail: <code>invalid_request (redirect_uri)</code>"),
            "{de}"
        );
        let fault = ErrorPage {
            request_id: Some("abc"),
            ..ErrorPage::new(chrome(), "error.fault.title", "error.fault.message")
        };
        let es = t.page(&view("es"), &fault).unwrap();
        assert!(
            es.contains("Algo ha salido mal") && es.contains("<code>abc</code>"),
            "{es}"
        );
    }

    #[test]
    fn pages_speak_the_view_language() {
        let t = Templates::new(None).unwrap();
        let mut page = sample_login();
        page.error =
            Some(Message::new("login.error.locked").arg("wait", t.catalogs().wait("fr", 2)));
        let fr = t.page(&view("fr"), &page).unwrap();
        assert!(fr.contains(r#"<html lang="fr">"#), "{fr}");
        assert!(
            fr.contains("Mot de passe") && fr.contains("patienter 2 secondes"),
            "{fr}"
        );
        assert!(
            fr.contains(r#"lang="fr" hreflang="fr" aria-current="true""#),
            "{fr}"
        );
        let de = t.page(&view("de"), &page).unwrap();
        assert!(de.contains("Passwort") && de.contains("Anmelden"), "{de}");
        let es = t.page(&view("es"), &page).unwrap();
        assert!(es.contains("Contraseña"), "{es}");
        let catalogs = t.catalogs();
        for key in keys_in_templates() {
            for lang in ["en", "fr", "de", "es"] {
                assert!(catalogs.text(lang, &key).is_some(), "{lang}: no {key}");
            }
        }
    }

    #[test]
    fn the_switcher_keeps_the_query_and_replaces_lang() {
        assert_eq!(
            with_lang(
                "/cas/login?service=https%3A%2F%2Fa%2F%3Fx%3D1&lang=de&renew=true",
                "es"
            ),
            "/cas/login?service=https%3A%2F%2Fa%2F%3Fx%3D1&renew=true&lang=es"
        );
        assert_eq!(with_lang("/cas/login", "fr"), "/cas/login?lang=fr");
    }

    #[test]
    fn a_theme_replaces_templates_static_files_and_the_logo() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::create_dir_all(dir.path().join("static")).unwrap();
        std::fs::write(
            dir.path().join("templates/logged_out.html"),
            "bye {% if had_session %}yes{% endif %}",
        )
        .unwrap();
        std::fs::write(dir.path().join("static/style.css"), "body{}").unwrap();
        std::fs::write(dir.path().join("static/logo.svg"), "<svg/>").unwrap();
        std::fs::write(dir.path().join("static/extra.txt"), "no").unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        assert_eq!(
            t.page(&View::plain(), &sample_logged_out()).unwrap(),
            "bye yes"
        );
        assert_eq!(t.static_file("style.css").unwrap().1, b"body{}");
        assert_eq!(
            t.static_file("logo.svg").unwrap(),
            ("image/svg+xml", b"<svg/>".to_vec())
        );
        assert!(t.static_file("form_post.js").unwrap().1.starts_with(b"//"));
        assert!(t.static_file("../secret").is_none());
        assert!(t.static_file("extra.txt").is_none());
    }

    #[test]
    fn a_service_theme_overrides_the_theme_for_its_pages() {
        let dir = tempfile::tempdir().unwrap();
        let blue = dir.path().join("themes/blue");
        std::fs::create_dir_all(blue.join("templates")).unwrap();
        std::fs::create_dir_all(blue.join("static")).unwrap();
        std::fs::create_dir_all(dir.path().join("static")).unwrap();
        std::fs::write(
            blue.join("templates/base.html"),
            "BLUE {{ chrome.static_base }} {% block content %}{% endblock %}",
        )
        .unwrap();
        std::fs::write(blue.join("static/logo.svg"), "<svg id=blue/>").unwrap();
        std::fs::write(dir.path().join("static/style.css"), "root{}").unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        assert!(t.has_theme("blue") && !t.has_theme("red"));
        let themed = View::plain().with_theme(Some("blue"));
        let page = t.page(&themed, &sample_login()).unwrap();
        assert!(page.starts_with("BLUE /cas/static/themes/blue "), "{page}");
        assert!(page.contains(r#"name="lt""#), "{page}");
        let plain = t.page(&View::plain(), &sample_login()).unwrap();
        assert!(plain.starts_with("<!DOCTYPE html>"), "{plain}");
        // An unknown theme falls back to the default look.
        let unknown = t
            .page(&View::plain().with_theme(Some("red")), &sample_login())
            .unwrap();
        assert_eq!(unknown, plain);
        assert_eq!(
            t.theme_static_file(Some("blue"), "logo.svg").unwrap().1,
            b"<svg id=blue/>"
        );
        assert_eq!(
            t.theme_static_file(Some("blue"), "style.css").unwrap().1,
            b"root{}"
        );
        assert!(t.theme_static_file(Some("red"), "logo.svg").is_none());
        assert!(t.theme_static_file(Some("blue"), "x.svg").is_none());
    }

    #[test]
    fn a_broken_theme_template_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/login.html"), "{% if %}").unwrap();
        let e = Templates::new(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("login.html"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("themes/x/templates")).unwrap();
        std::fs::write(dir.path().join("themes/x/templates/warn.html"), "{{").unwrap();
        let e = Templates::new(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("themes/x/warn.html"), "{e}");
    }
}
