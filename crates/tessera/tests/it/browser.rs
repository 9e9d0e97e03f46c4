//! The pages in a real browser: headless Chromium driven over WebDriver (chromedriver, started per
//! test on a free port), against the real server and a tiny local application. Covers a full CAS
//! login, an OpenID Connect login with consent (and a `form_post` answer, which needs the page's
//! script to run under the CSP), the language switcher and `Accept-Language`, and a theme override.
//! Every page reached is checked with axe-core (no `serious` or `critical` violation), and
//! screenshots go to `target/test-artifacts/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` and axe-core in `target/browser-tools`:
//! `scripts/browser-setup` installs them. Without them these tests fail, saying so; they never skip.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::{Method, Uri};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tessera::config::ClientSpec;
use tessera_protocol::oidc::ClientSecret;
use tessera_protocol::service::{LogoutType, Requirement, ServiceOrigin};

use crate::support::{self, TestServer, PASSWORD, USER};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const SETUP_HINT: &str = "run scripts/browser-setup (installs Debian's chromium and \
     chromium-driver, and axe-core into target/browser-tools)";

/// One browser at a time: the machine is small, and Chromium is not.
static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

/// axe-core's browser bundle, as `scripts/browser-setup` installed it.
fn axe_source() -> String {
    let path = target_dir().join("browser-tools/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is missing ({}: {e}): {SETUP_HINT}",
            path.display()
        )
    })
}

/// A chromedriver process and a headless Chromium session through it.
struct Browser {
    client: Client,
    axe: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A fresh browser (new profile: no cookies) whose `Accept-Language` is `languages`.
    async fn start(languages: &str) -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing, so the browser tests cannot run: {SETUP_HINT}"
            );
        }
        let axe = axe_source();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}: {SETUP_HINT}"));
        let webdriver = format!("http://127.0.0.1:{port}");
        support::receiver::eventually("chromedriver answers", || {
            let status = format!("{webdriver}/status");
            async move {
                reqwest::get(&status)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--window-size=1000,860",
                    format!("--lang={}", languages.split(',').next().unwrap_or("en")),
                    format!("--accept-lang={languages}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": { "intl.accept_languages": languages },
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}: {SETUP_HINT}"));
        Self {
            client,
            axe,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The element `css`, waiting for it to appear (a navigation may be under way).
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => {
                let url = self.url().await;
                let source = self.client.source().await.unwrap_or_default();
                panic!("no {css} on {url} ({e}):\n{source}")
            }
        }
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn lang(&self) -> String {
        self.find("html")
            .await
            .attr("lang")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` without leaving the page (a checkbox).
    async fn tick(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Clicks `css` (a link or a submit button) and waits until the next page has loaded, so that
    /// nothing is read from the page being left.
    async fn click(&self, css: &str) {
        let mark = "window.__tesseraLeaving = true; return true;";
        self.client.execute(mark, Vec::new()).await.unwrap();
        self.find(css).await.click().await.unwrap();
        let arrived = "return document.readyState === 'complete' && !window.__tesseraLeaving;";
        for _ in 0..300 {
            let done = self.client.execute(arrived, Vec::new()).await;
            if matches!(done, Ok(Value::Bool(true))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} led nowhere (still on {})", self.url().await);
    }

    /// Fills in and submits the login form.
    async fn log_in(&self, username: &str, password: &str) {
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("form button[type=submit]").await;
    }

    /// Saves a screenshot as `target/test-artifacts/screenshots/NAME.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = target_dir().join("test-artifacts/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Runs axe-core on the page; fails on any `serious` or `critical` violation.
    async fn assert_accessible(&self, page: &str) {
        // WebDriver scripts run outside the page's CSP, so injecting axe needs no exception in it.
        let loaded = self
            .client
            .execute(
                &format!("{}\nreturn typeof window.axe;", self.axe),
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(loaded, json!("object"), "axe-core did not load on {page}");
        let result = self
            .client
            .execute_async(
                r"const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ['violations'] })
                  .then(r => done(r.violations.map(v => ({
                      id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.map(n => n.html).slice(0, 3) }))))
                  .catch(e => done('axe failed: ' + e));",
                Vec::new(),
            )
            .await
            .unwrap();
        let Value::Array(violations) = result else {
            panic!("{page}: {result}");
        };
        let grave: Vec<&Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            grave.is_empty(),
            "{page}: accessibility violations: {}",
            serde_json::to_string_pretty(&grave).unwrap()
        );
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// A tiny local application: any request gets a page saying what it was (method, path and query,
/// form body), so a test can see where the browser landed.
async fn local_app() -> String {
    async fn page(method: Method, uri: Uri, body: String) -> axum::response::Html<String> {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        axum::response::Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><title>Application</title></head><body><main>\
             <h1 id=\"app-home\">Application</h1><p id=\"request\">{method} {}</p>\
             <p id=\"body\">{}</p></main></body></html>",
            escape(&uri.to_string()),
            escape(&body)
        ))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(page);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Registers the local application as a CAS service named `name`; returns its service URL.
async fn register_app(server: &TestServer, app: &str, name: &str) -> String {
    let pattern = format!("{}/{name}/.*", regex::escape(app));
    let mut service = support::service(name, &pattern, true);
    service.logout_type = LogoutType::None;
    service.description = Some("Mail and calendar".into());
    server.store.put_service(&service).await.unwrap();
    format!("{app}/{name}/home")
}

fn login_url(server: &TestServer, service: &str) -> String {
    server.url(&format!("/login?service={}", support::enc(service)))
}

#[tokio::test]
async fn a_cas_login_in_the_browser_reaches_the_service_with_a_ticket() {
    let _one = BROWSER_LOCK.lock().await;
    let server = TestServer::start_with(|s| {
        s.session.remember_me = true;
        s.login.password_reset_url = Some("https://id.example.org/reset".parse().unwrap());
    })
    .await;
    let app = local_app().await;
    let service = register_app(&server, &app, "webmail").await;
    let browser = Browser::start("en-US,en").await;

    browser.goto(&login_url(&server, &service)).await;
    assert_eq!(browser.lang().await, "en");
    assert_eq!(browser.text("h1").await, "Log in");
    let lead = browser.text(".lead").await;
    assert!(
        lead.contains("webmail") && lead.contains("Mail and calendar"),
        "{lead}"
    );
    assert!(browser
        .find("#rememberMe")
        .await
        .is_displayed()
        .await
        .unwrap());
    let reset = browser.find(".aside a").await.attr("href").await.unwrap();
    assert_eq!(reset.as_deref(), Some("https://id.example.org/reset"));
    browser.assert_accessible("login").await;
    browser.screenshot("login").await;

    // A wrong password: one message for every failure, the username kept, the password not.
    browser.log_in(USER, "Wrong Password").await;
    let alert = browser.text("[role=alert]").await;
    assert!(alert.contains("Invalid username or password."), "{alert}");
    assert!(alert.contains("Caps Lock"), "{alert}");
    let typed = browser.find("#password").await.prop("value").await.unwrap();
    assert_eq!(typed.as_deref(), Some(""));
    let kept = browser.find("#username").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some(USER));
    browser.assert_accessible("login with an error").await;
    browser.screenshot("login-error").await;

    browser.log_in(USER, PASSWORD).await;
    browser.find("#app-home").await;
    let landed = browser.url().await;
    assert!(
        landed.starts_with(&format!("{service}?ticket=ST-")),
        "{landed}"
    );
    let ticket = landed.rsplit_once("ticket=").unwrap().1;
    let (_, body) = server
        .validate("/p3/serviceValidate", ticket, &service, "")
        .await;
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");

    // method=POST: the page's own script posts the ticket to the service (CSP-clean).
    browser
        .goto(&format!("{}&method=POST", login_url(&server, &service)))
        .await;
    browser.find("#app-home").await;
    assert_eq!(browser.text("#request").await, "POST /webmail/home");
    let posted = browser.text("#body").await;
    let ticket = posted
        .strip_prefix("ticket=")
        .unwrap_or_else(|| panic!("{posted}"));
    let (_, body) = server
        .validate("/p3/serviceValidate", ticket, &service, "")
        .await;
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");

    browser.goto(&server.url("/login")).await;
    assert_eq!(browser.text("h1").await, "You are logged in");
    browser.assert_accessible("logged in").await;
    browser.screenshot("logged-in").await;
    browser.click("a.button").await;
    browser.find("[role=status]").await;
    assert_eq!(browser.text("h1").await, "You are logged out");
    browser.assert_accessible("logged out").await;
    browser.screenshot("logged-out").await;
    browser.close().await;
}

#[tokio::test]
async fn an_oidc_login_asks_for_consent_and_returns_a_code() {
    let _one = BROWSER_LOCK.lock().await;
    let server = TestServer::start().await;
    let app = local_app().await;
    let redirect_uri = format!("{app}/callback");
    let client = ClientSpec {
        id: "wiki".into(),
        name: Some("Team Wiki".into()),
        secret: Some(ClientSecret::hash(
            "wiki-secret-0123456789-abcdefghijklmnop",
        )),
        redirect_uris: vec![redirect_uri.clone()],
        consent: true,
        ..ClientSpec::default()
    }
    .build(ServiceOrigin::Database)
    .unwrap();
    server.store.put_client(&client).await.unwrap();
    let authorize = |mode: &str| {
        format!(
            "{}/oidc/authorize?response_type=code&client_id=wiki&scope=openid%20email&state=s1\
             &redirect_uri={}{mode}",
            server.origin(),
            support::enc(&redirect_uri)
        )
    };
    let browser = Browser::start("en").await;

    browser.goto(&authorize("")).await;
    let lead = browser.text(".lead").await;
    assert!(
        lead.contains("Team Wiki"),
        "the form names the client: {lead}"
    );
    browser.log_in(USER, PASSWORD).await;
    let heading = browser.text("h1").await;
    assert_eq!(heading, "Allow Team Wiki to know who you are?");
    assert!(browser.text(".apps").await.contains("e-mail address"));
    browser.assert_accessible("consent").await;
    browser.screenshot("consent").await;
    browser.click("button[value=allow]").await;
    browser.find("#app-home").await;
    let landed = browser.url().await;
    assert!(
        landed.starts_with(&format!("{redirect_uri}?code=")) && landed.contains("state=s1"),
        "{landed}"
    );

    // Consent is remembered; a form_post answer is posted by the page's own script (CSP-clean).
    browser.goto(&authorize("&response_mode=form_post")).await;
    browser.find("#app-home").await;
    assert!(browser.text("#request").await.starts_with("POST /callback"));
    assert!(browser.text("#body").await.contains("code="));

    // A logout request that does not prove where it comes from is confirmed first.
    browser
        .goto(&format!("{}/oidc/logout?client_id=wiki", server.origin()))
        .await;
    assert_eq!(browser.text("h1").await, "Log out?");
    assert!(browser.text("main").await.contains("Team Wiki"));
    browser.assert_accessible("end-session confirmation").await;
    browser.screenshot("end-session").await;
    browser.click("button[value=logout]").await;
    browser.find("[role=status]").await;
    browser.close().await;
}

#[tokio::test]
async fn the_language_switcher_and_accept_language_choose_the_language() {
    let _one = BROWSER_LOCK.lock().await;
    let server = TestServer::start().await;
    let app = local_app().await;
    let service = register_app(&server, &app, "library").await;

    let browser = Browser::start("en-US,en").await;
    browser.goto(&login_url(&server, &service)).await;
    assert_eq!(browser.lang().await, "en");
    browser.click("footer a[hreflang=fr]").await;
    browser.find("html[lang=fr]").await;
    assert_eq!(browser.text("h1").await, "Connexion");
    assert_eq!(browser.text("label[for=password]").await, "Mot de passe");
    let service_field = browser.find("input[name=service]").await;
    assert_eq!(
        service_field.attr("value").await.unwrap().as_deref(),
        Some(service.as_str()),
        "switching language keeps the service"
    );
    browser.assert_accessible("login in French").await;
    browser.screenshot("login-fr").await;
    // The choice is remembered (a cookie) over Accept-Language, errors included.
    browser.goto(&login_url(&server, &service)).await;
    assert_eq!(browser.lang().await, "fr");
    browser.log_in(USER, "nope").await;
    let alert = browser.text("[role=alert]").await;
    assert!(
        alert.contains("Identifiant ou mot de passe incorrect."),
        "{alert}"
    );
    browser.log_in(USER, PASSWORD).await;
    browser.find("#app-home").await;
    browser.close().await;

    let browser = Browser::start("de-DE,de;q=0.9,en;q=0.5").await;
    browser.goto(&login_url(&server, &service)).await;
    assert_eq!(browser.lang().await, "de");
    assert_eq!(browser.text("h1").await, "Anmelden");
    assert_eq!(
        browser.text("footer [aria-current]").await,
        "Deutsch",
        "the switcher shows the current language"
    );
    browser.assert_accessible("login in German").await;
    browser.screenshot("login-de").await;
    browser.close().await;
}

#[tokio::test]
async fn a_theme_directory_overrides_the_logo_and_a_service_theme_its_pages() {
    let _one = BROWSER_LOCK.lock().await;
    let theme = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = theme.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "static/logo.svg",
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 40" width="240" height="40"><rect width="240" height="40" fill="#7a1f3d"/><text x="12" y="27" font-size="20" fill="#fff">Example University</text></svg>"##,
    );
    write(
        "i18n/en.toml",
        "[chrome]\nlogo_alt = \"Example University\"\n",
    );
    write(
        "themes/campus/templates/login.html",
        "{% extends \"base.html\" %}{% block title %}{{ t(\"login.title\") }}{% endblock %}\
         {% block content %}<p class=\"campus-banner\">Campus IT</p><h1>{{ t(\"login.title\") }}</h1>\
         <form method=\"post\" action=\"{{ action }}\"><label for=\"username\">{{ t(\"login.username\") }}</label>\
         <input id=\"username\" name=\"username\" autocomplete=\"username\"><label for=\"password\">{{ t(\"login.password\") }}</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\
         <input type=\"hidden\" name=\"lt\" value=\"{{ lt }}\"><input type=\"hidden\" name=\"service\" value=\"{{ service }}\">\
         <button type=\"submit\">{{ t(\"login.submit\") }}</button></form>{% endblock %}",
    );
    write(
        "themes/campus/static/style.css",
        "body { background: rgb(250, 240, 230); color: #222; font-family: sans-serif; }\n\
         .campus-banner { font-weight: 700; color: #7a1f3d; }\n.card { max-width: 28rem; margin: 1rem auto; padding: 1rem; background: #fff; }\n\
         label, input, button { display: block; margin: .5rem 0; }\n",
    );
    let dir = theme.path().to_path_buf();
    let server = TestServer::start_with(move |s| s.theme.dir = Some(dir)).await;
    let app = local_app().await;
    let plain = register_app(&server, &app, "portal").await;
    let mut campus = support::service(
        "campus",
        &format!("{}/campus/.*", regex::escape(&app)),
        true,
    );
    campus.logout_type = LogoutType::None;
    campus.theme = Some("campus".into());
    server.store.put_service(&campus).await.unwrap();
    let browser = Browser::start("en").await;

    // The theme's logo on every page.
    browser.goto(&login_url(&server, &plain)).await;
    let logo = browser.find("img.logo").await;
    assert_eq!(
        logo.attr("alt").await.unwrap().as_deref(),
        Some("Example University")
    );
    let width = browser
        .client
        .execute(
            "return document.querySelector('img.logo').naturalWidth;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(width, json!(240), "the theme's logo.svg is served");
    assert!(browser
        .client
        .find(Locator::Css(".campus-banner"))
        .await
        .is_err());
    browser.assert_accessible("login with a theme logo").await;
    browser.screenshot("theme-logo").await;

    // The campus service's pages use its own theme.
    browser
        .goto(&login_url(&server, &format!("{app}/campus/home")))
        .await;
    assert_eq!(browser.text(".campus-banner").await, "Campus IT");
    let background = browser
        .find("body")
        .await
        .css_value("background-color")
        .await
        .unwrap();
    assert_eq!(background, "rgba(250, 240, 230, 1)");
    browser
        .assert_accessible("login with a service theme")
        .await;
    browser.screenshot("theme-service").await;
    browser.log_in(USER, PASSWORD).await;
    browser.find("#app-home").await;
    assert!(browser.url().await.contains("/campus/home?ticket=ST-"));
    browser.close().await;
}

#[tokio::test]
async fn warn_access_denied_and_error_pages_pass_the_accessibility_check() {
    let _one = BROWSER_LOCK.lock().await;
    let server = TestServer::start().await;
    let app = local_app().await;
    let first = register_app(&server, &app, "first").await;
    let second = register_app(&server, &app, "second").await;
    let mut strict = support::service(
        "staff-only",
        &format!("{}/strict/.*", regex::escape(&app)),
        true,
    );
    strict.logout_type = LogoutType::None;
    strict.requirements = vec![Requirement::parse("eduPersonAffiliation=faculty").unwrap()];
    server.store.put_service(&strict).await.unwrap();
    let browser = Browser::start("en").await;

    browser
        .goto(&login_url(&server, "https://unregistered.example.org/"))
        .await;
    assert_eq!(browser.text("h1").await, "Application not authorized");
    browser.assert_accessible("unauthorized service").await;
    browser.screenshot("error").await;

    // "Ask me before logging me in to other applications", then another application: warn.
    browser.goto(&login_url(&server, &first)).await;
    browser.tick("#warn").await;
    browser.log_in(USER, PASSWORD).await;
    browser.find("#app-home").await;
    browser.goto(&login_url(&server, &second)).await;
    assert_eq!(browser.text("h1").await, "Continue to second?");
    browser.assert_accessible("warn").await;
    browser.screenshot("warn").await;
    browser.click("form button[type=submit]").await;
    browser.find("#app-home").await;
    assert!(browser
        .url()
        .await
        .starts_with(&format!("{second}?ticket=ST-")));

    browser
        .goto(&login_url(&server, &format!("{app}/strict/home")))
        .await;
    assert_eq!(browser.text("h1").await, "Access denied");
    assert!(browser.text("[role=alert]").await.contains("staff-only"));
    browser.assert_accessible("access denied").await;
    browser.screenshot("access-denied").await;
    browser.close().await;
}
