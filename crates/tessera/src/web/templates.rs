//! MiniJinja templates, auto-escaped, embedded at build time. An operator theme directory
//! (`[theme] dir`) replaces any of them by name (`templates/login.html`) and any static file
//! (`static/style.css`). Each page has a context struct, so a template typo fails a test, not a login.

use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("logged_in.html", include_str!("templates/logged_in.html")),
    ("logged_out.html", include_str!("templates/logged_out.html")),
    ("warn.html", include_str!("templates/warn.html")),
    ("error.html", include_str!("templates/error.html")),
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
];

/// A template failed to load or render (a theme bug, never the user's input).
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {source}")]
pub struct TemplateError {
    name: &'static str,
    source: minijinja::Error,
}

/// The page templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    theme: Option<PathBuf>,
}

/// What every page knows.
#[derive(Debug, Serialize)]
pub struct Chrome<'a> {
    /// Where static assets are served (`/cas/static`).
    pub static_base: &'a str,
    /// The CAS base path (`/cas`).
    pub base_path: &'a str,
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
    /// Name of the registered service, shown to the user.
    pub service_name: Option<&'a str>,
    /// `renew` to carry through.
    pub renew: bool,
    /// `gateway` to carry through.
    pub gateway: bool,
    /// Username to prefill after a failure.
    pub username: &'a str,
    /// Error to show above the form.
    pub error: Option<&'a str>,
    /// Offer "remember me".
    pub remember_me: bool,
    /// An OpenID Connect authorization request to resume after login (its query), as a hidden field.
    pub authorize: Option<&'a str>,
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
    /// What the scopes mean, one line each.
    pub scopes: Vec<&'static str>,
}

/// An OpenID Connect `form_post` response: a form the browser submits to the client.
#[derive(Debug, Serialize)]
pub struct FormPostPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// The client's redirect URI.
    pub action: &'a str,
    /// The response parameters.
    pub params: &'a [(String, String)],
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

/// An error: unknown service, access denied, or our failure.
#[derive(Debug, Serialize)]
pub struct ErrorPage<'a> {
    /// Shared page data.
    pub chrome: Chrome<'a>,
    /// Heading.
    pub title: &'a str,
    /// Explanation.
    pub message: &'a str,
    /// A request id for the operator's logs, on server faults.
    pub request_id: Option<&'a str>,
}

/// Escapes the five HTML metacharacters and nothing else (MiniJinja's default also escapes `/`,
/// which makes URLs in attributes needlessly hard for scripted clients to read).
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    use std::fmt::Write as _;
    let Some(text) = value.as_str().filter(|_| !value.is_safe()) else {
        return minijinja::escape_formatter(out, state, value);
    };
    let write_failed = |_| {
        minijinja::Error::new(
            minijinja::ErrorKind::WriteFailure,
            "cannot write template output",
        )
    };
    for c in text.chars() {
        match c {
            '&' => out.write_str("&amp;"),
            '<' => out.write_str("&lt;"),
            '>' => out.write_str("&gt;"),
            '"' => out.write_str("&#34;"),
            '\'' => out.write_str("&#39;"),
            c => out.write_char(c),
        }
        .map_err(write_failed)?;
    }
    Ok(())
}

impl Templates {
    /// The built-in templates, each replaced by `<theme>/templates/<name>` when that file exists.
    pub fn new(theme: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_formatter(html_formatter);
        for (name, builtin) in BUILT_IN {
            let source = theme
                .map(|dir| dir.join("templates").join(name))
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_else(|| (*builtin).to_owned());
            env.add_template_owned(*name, source)
                .map_err(|source| TemplateError { name, source })?;
        }
        Ok(Self {
            env,
            theme: theme.map(Path::to_path_buf),
        })
    }

    fn render(&self, name: &'static str, ctx: impl Serialize) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| TemplateError { name, source })
    }

    /// Renders the login form.
    pub fn login(&self, page: &LoginPage<'_>) -> Result<String, TemplateError> {
        self.render("login.html", page)
    }
    /// Renders "you are logged in".
    pub fn logged_in(&self, page: &LoggedInPage<'_>) -> Result<String, TemplateError> {
        self.render("logged_in.html", page)
    }
    /// Renders "you are logged out".
    pub fn logged_out(&self, page: &LoggedOutPage<'_>) -> Result<String, TemplateError> {
        self.render("logged_out.html", page)
    }
    /// Renders the warn confirmation.
    pub fn warn(&self, page: &WarnPage<'_>) -> Result<String, TemplateError> {
        self.render("warn.html", page)
    }
    /// Renders the consent page.
    pub fn consent(&self, page: &ConsentPage<'_>) -> Result<String, TemplateError> {
        self.render("consent.html", page)
    }
    /// Renders a `form_post` response.
    pub fn form_post(&self, page: &FormPostPage<'_>) -> Result<String, TemplateError> {
        self.render("form_post.html", page)
    }
    /// Renders the logout confirmation.
    pub fn end_session(&self, page: &EndSessionPage<'_>) -> Result<String, TemplateError> {
        self.render("end_session.html", page)
    }
    /// Renders an error page.
    pub fn error(&self, page: &ErrorPage<'_>) -> Result<String, TemplateError> {
        self.render("error.html", page)
    }

    /// A static asset: (content type, body), from the theme if it has one, else built in. Only the
    /// built-in file names are served, so the theme directory is never browsable.
    pub fn static_file(&self, name: &str) -> Option<(&'static str, Vec<u8>)> {
        let (file, content_type, builtin) = STATIC.iter().find(|(file, _, _)| *file == name)?;
        let themed = self
            .theme
            .as_ref()
            .and_then(|dir| std::fs::read(dir.join("static").join(file)).ok());
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

    fn sample_logged_out() -> LoggedOutPage<'static> {
        LoggedOutPage {
            chrome: chrome(),
            had_session: true,
            notified: vec!["App <1>".into()],
            frames: vec!["https://a/slo?SAMLRequest=x&y".into()],
            continue_url: Some("https://a/".into()),
        }
    }

    #[test]
    fn every_template_renders_with_sample_data_and_escapes() {
        let t = Templates::new(None).unwrap();
        let login = t
            .login(&LoginPage {
                chrome: chrome(),
                action: "/cas/login".into(),
                lt: "LT-1".into(),
                service: Some("https://a/?x=1&y=\"2\""),
                service_name: Some("App <One>"),
                renew: true,
                gateway: false,
                username: "<b>",
                error: Some("Invalid username or password."),
                remember_me: true,
                authorize: None,
            })
            .unwrap();
        assert_eq!(
            login.matches("<form").count(),
            1,
            "the login form is the page's only form"
        );
        for needle in [
            r#"action="/cas/login""#,
            r#"name="username" id="username""#,
            r#"name="password" id="password""#,
            r#"name="lt" value="LT-1""#,
            r#"name="service" value="https://a/?x=1&amp;y=&#34;2&#34;""#,
            r#"name="renew" value="true""#,
            "App &lt;One&gt;",
            r#"value="&lt;b&gt;""#,
            "rememberMe",
        ] {
            assert!(login.contains(needle), "missing {needle} in {login}");
        }
        assert!(!login.contains("<b>"));
        t.logged_in(&LoggedInPage {
            chrome: chrome(),
            username: "u",
            logout_url: "/cas/logout".into(),
        })
        .unwrap();
        let out = t.logged_out(&sample_logged_out()).unwrap();
        assert!(out.contains("App &lt;1&gt;"), "{out}");
        assert!(
            out.contains(r#"<iframe class="slo" src="https://a/slo?SAMLRequest=x&amp;y""#),
            "{out}"
        );
        assert!(out.contains(r#"href="https://a/""#), "{out}");
        let warn = t
            .warn(&WarnPage {
                chrome: chrome(),
                action: "/cas/login".into(),
                lt: "LT-2".into(),
                service: "https://a/",
                service_name: "A",
                username: "u",
            })
            .unwrap();
        assert!(warn.contains(r#"name="continue""#));
        let err = t
            .error(&ErrorPage {
                chrome: chrome(),
                title: "T",
                message: "<script>",
                request_id: Some("r1"),
            })
            .unwrap();
        assert!(err.contains("&lt;script&gt;") && err.contains("r1"));
    }

    #[test]
    fn a_theme_replaces_templates_and_static_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::create_dir_all(dir.path().join("static")).unwrap();
        std::fs::write(
            dir.path().join("templates/logged_out.html"),
            "bye {% if had_session %}yes{% endif %}",
        )
        .unwrap();
        std::fs::write(dir.path().join("static/style.css"), "body{}").unwrap();
        let t = Templates::new(Some(dir.path())).unwrap();
        assert_eq!(t.logged_out(&sample_logged_out()).unwrap(), "bye yes");
        assert_eq!(t.static_file("style.css").unwrap().1, b"body{}");
        assert!(t.static_file("../secret").is_none());
    }

    #[test]
    fn a_broken_theme_template_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/login.html"), "{% if %}").unwrap();
        let e = Templates::new(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("login.html"), "{e}");
    }
}
