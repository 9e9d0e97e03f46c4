//! Test support: a real server on a free port, and a browser that keeps cookies and stops at every
//! redirect so each hop can be asserted.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use tessera::clock::ManualClock;
use tessera::config::{build_service, Settings};
use tessera::Server;
use tessera_protocol::service::{LogoutType, RegisteredService, ServiceOrigin};
use tessera_protocol::{Attributes, Timestamp};
use tessera_store::{SqliteStore, Store, UserRecord};

/// The demo user every test server has.
pub(crate) const USER: &str = "alice";
/// Her password.
pub(crate) const PASSWORD: &str = "correct horse battery staple";
/// A registered service that receives all attributes.
pub(crate) const SERVICE: &str = "https://app.example.org/login?next=%2Fprofile";
/// Another registered service.
pub(crate) const OTHER_SERVICE: &str = "https://other.example.org/";

pub(crate) mod postgres;
pub(crate) mod receiver;
pub(crate) mod tls;

/// A running Tessera.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:PORT/cas`
    pub(crate) base: String,
    /// The configuration it runs with (its database URL included).
    pub(crate) loaded: tessera::Loaded,
    stop: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    /// The server's clock.
    pub(crate) clock: Arc<ManualClock>,
    /// The server's store.
    pub(crate) store: Arc<dyn Store>,
    /// The running server's application state (shared with it: same provider, same key cache).
    app: Option<tessera::AppState>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with default settings, user `alice` and services `app` and `other`.
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server with settings changed by `configure` before start.
    pub(crate) async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut loaded = Settings::load(None, Vec::new()).unwrap();
        let settings = &mut loaded.settings;
        settings.server.listen = "127.0.0.1:0".parse().unwrap();
        settings.database.url = format!("sqlite://{}/tessera.db", dir.path().display());
        // Cheap hashes keep the suite fast; production parameters are tested in the unit tests.
        settings.password.argon2_memory_kib = 256;
        settings.password.argon2_iterations = 1;
        configure(settings);
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::connect(&loaded.settings.database.url)
                .await
                .unwrap(),
        );
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_millis(
            1_767_225_600_000,
        )));
        let hasher = tessera::auth::local::PasswordHasher::new(&loaded.settings.password).unwrap();
        let hash = hasher
            .hash(&tessera::auth::Password::new(PASSWORD.into()))
            .await
            .unwrap();
        store
            .put_user(
                &UserRecord {
                    username: USER.into(),
                    password_hash: hash,
                    attributes: alice_attributes(),
                },
                clock.now_ts(),
            )
            .await
            .unwrap();
        for (name, pattern) in [
            ("app", r"https://app\.example\.org/.*"),
            ("other", r"https://other\.example\.org/.*"),
        ] {
            // These hosts do not exist: single logout is not attempted for them, so tests never
            // make the server resolve names. Single-logout tests use services on a local receiver.
            let mut s = service(name, pattern, true);
            s.logout_type = LogoutType::None;
            store.put_service(&s).await.unwrap();
        }
        let mut server = Self {
            base: String::new(),
            loaded,
            stop: None,
            clock,
            store,
            app: None,
            _dir: dir,
        };
        server.serve().await;
        server
    }

    async fn serve(&mut self) {
        let server =
            Server::bind_with_store(self.loaded.clone(), self.store.clone(), self.clock.clone())
                .await
                .unwrap();
        let addr = server.local_addr().unwrap();
        self.base = format!("http://{addr}{}", server.state().settings.base_path());
        self.app = Some(server.state().clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        self.stop = Some((tx, handle));
    }

    /// A config file for the `tessera` binary that points at this server's database.
    pub(crate) fn config_file(&self) -> std::path::PathBuf {
        let path = self._dir.path().join("tessera.toml");
        let s = &self.loaded.settings;
        let text = format!(
            "[database]\nurl = \"{}\"\n[password]\nargon2_memory_kib = {}\nargon2_iterations = {}\n",
            s.database.url, s.password.argon2_memory_kib, s.password.argon2_iterations
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Stops the server and starts a new one on the same database (on a new port).
    pub(crate) async fn restart(&mut self) {
        if let Some((tx, handle)) = self.stop.take() {
            let _ = tx.send(());
            handle.await.unwrap().unwrap();
        }
        self.store = Arc::new(
            SqliteStore::connect(&self.loaded.settings.database.url)
                .await
                .unwrap(),
        );
        self.serve().await;
    }

    /// A fresh browser with no cookies.
    pub(crate) fn browser(&self) -> Browser {
        Browser {
            client: client(),
            base: self.base.clone(),
        }
    }

    /// `base` + `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET a validation endpoint (`/serviceValidate`, `/p3/serviceValidate`, `/validate`, …).
    pub(crate) async fn validate(
        &self,
        endpoint: &str,
        ticket: &str,
        service: &str,
        extra: &str,
    ) -> (StatusCode, String) {
        let url = format!(
            "{}{endpoint}?ticket={}&service={}{extra}",
            self.base,
            enc(ticket),
            enc(service)
        );
        let r = client().get(url).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The running server's application state.
    pub(crate) fn state(&self) -> &tessera::AppState {
        self.app.as_ref().expect("the server runs")
    }

    /// `http://127.0.0.1:PORT`: the server's origin (the public URL without the CAS base path).
    pub(crate) fn origin(&self) -> String {
        let base = &self.loaded.settings.server.base_path;
        self.base
            .strip_suffix(base.as_str())
            .unwrap_or(&self.base)
            .to_owned()
    }

    /// Moves the server's clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        tessera::clock::Clock::now(self)
    }
}

/// A registered service with all attributes released.
pub(crate) fn service(name: &str, pattern: &str, release_all: bool) -> RegisteredService {
    build_service(
        name,
        Some(pattern),
        None,
        None,
        release_all,
        &[],
        None,
        &[],
        ServiceOrigin::Database,
    )
    .unwrap()
}

/// alice's attributes.
pub(crate) fn alice_attributes() -> Attributes {
    let mut a = Attributes::new();
    a.insert("mail".into(), vec!["alice@example.org".into()]);
    a.insert(
        "eduPersonAffiliation".into(),
        vec!["staff".into(), "member".into()],
    );
    a.insert("displayName".into(), vec!["Alice <Example> & Co".into()]);
    a.insert("uid".into(), vec!["a1001".into()]);
    a
}

/// URL-encodes a query value.
pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A response, read whole.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Page {
    /// The `Location` header.
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location (status {}): {}", self.status, self.body))
    }

    /// The ticket at the end of the `Location` header.
    pub(crate) fn ticket(&self) -> String {
        assert_eq!(self.status, StatusCode::FOUND, "{}", self.body);
        let location = self.location();
        let (_, ticket) = location
            .rsplit_once("ticket=")
            .unwrap_or_else(|| panic!("no ticket in {location}"));
        assert!(ticket.starts_with("ST-") && ticket.len() <= 32, "{ticket}");
        ticket.to_owned()
    }

    /// All `Set-Cookie` values.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value of hidden input `name` in the page.
    pub(crate) fn input(&self, name: &str) -> Option<String> {
        let re = regex::Regex::new(&format!(r#"name="{name}"[^>]*?value="([^"]*)""#)).unwrap();
        re.captures(&self.body)
            .map(|c| c[1].replace("&amp;", "&").replace("&#34;", "\""))
    }
}

/// A browser: keeps cookies, follows no redirects.
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    base: String,
}

impl Browser {
    /// GET `base` + `path_and_query`.
    pub(crate) async fn get(&self, path_and_query: &str) -> Page {
        read(
            self.client
                .get(format!("{}{path_and_query}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// POST a form to `base` + `path_and_query`, as a same-origin browser would.
    pub(crate) async fn post(&self, path_and_query: &str, form: &[(&str, &str)]) -> Page {
        let url = format!("{}{path_and_query}", self.base);
        let r = self
            .client
            .post(url)
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// GET an absolute URL (another path than the CAS base, e.g. `/oidc/...`).
    pub(crate) async fn get_url(&self, url: &str) -> Page {
        read(self.client.get(url).send().await.unwrap()).await
    }

    /// POST a form to an absolute URL, as a same-origin browser would.
    pub(crate) async fn post_url(&self, url: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .client
            .post(url)
            .header("sec-fetch-site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap();
        read(r).await
    }

    /// The login page for `service`.
    pub(crate) async fn login_page(&self, service: Option<&str>) -> Page {
        match service {
            Some(s) => self.get(&format!("/login?service={}", enc(s))).await,
            None => self.get("/login").await,
        }
    }

    /// Shows the login form for `service`, fills it in and submits it. Returns the POST's response.
    pub(crate) async fn log_in_as(
        &self,
        service: Option<&str>,
        username: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Page {
        let form = self.login_page(service).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let lt = form.input("lt").expect("the form has a login ticket");
        let mut fields = vec![
            ("username", username),
            ("password", password),
            ("lt", lt.as_str()),
        ];
        if let Some(s) = service {
            fields.push(("service", s));
        }
        fields.extend_from_slice(extra);
        self.post("/login", &fields).await
    }

    /// Logs in to `service` with the password and returns the service ticket.
    pub(crate) async fn cas_login(&self, service: &str) -> String {
        self.log_in_as(Some(service), USER, PASSWORD, &[])
            .await
            .ticket()
    }
}

async fn read(r: reqwest::Response) -> Page {
    let status = r.status();
    let headers = r.headers().clone();
    Page {
        status,
        headers,
        body: r.text().await.unwrap(),
    }
}

/// The `tessera` binary as a command, with no `TESSERA_*` variable of the environment the tests
/// run in (a test server's URLs must not leak into the configuration under test).
pub(crate) fn tessera_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            cmd.env_remove(name);
        }
    }
    cmd
}
