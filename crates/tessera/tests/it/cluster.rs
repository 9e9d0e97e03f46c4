//! Two real `tessera serve` processes on one PostgreSQL database, used as a load balancer without
//! sticky sessions would use them: every request of a browser may land on the other node. Login
//! forms, tickets, SSO sessions, OpenID Connect codes and tokens, logout, signing-key rotation and
//! single-logout deliveries all live in the database, so either node serves any step, and a node
//! killed with SIGKILL loses nothing it handed out.
//!
//! Needs `TESSERA_TEST_POSTGRES_URL` (`eval "$(scripts/postgres-test-server start)"`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use regex::Regex;
use reqwest::header::LOCATION;
use reqwest::StatusCode;
use serde_json::Value;
use tessera_store::{PostgresStore, Store};

use crate::support::postgres::PostgresDatabase;
use crate::support::receiver::{eventually, Receiver};
use crate::support::{enc, PASSWORD, USER};

/// How long a node may take to start before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);
/// The public URL both nodes share (as behind a load balancer): one issuer, one cookie origin.
/// Plain http, so the session cookie is not `Secure` and the test's http requests carry it.
const PUBLIC_URL: &str = "http://sso.example.test";
/// A CAS service that is never contacted (single logout is off for it).
const APP: &str = "https://app.example.org/";
/// The confidential OpenID Connect client of the config file.
const CLIENT: &str = "webapp";
const SECRET: &str = "webapp-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
const REDIRECT: &str = "https://app.example.org/cb";

// --- the nodes -----------------------------------------------------------------------------------

/// The binary, with no `TESSERA_*` variable of the environment the tests run in.
fn tessera(config: &Path) -> Command {
    let mut cmd = crate::support::tessera_command();
    cmd.arg("--config").arg(config);
    cmd
}

/// Runs an admin command to its end, feeding it `stdin`; its stdout. Fails the test on failure.
fn admin(config: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = tessera(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "tessera {args:?}: {}\n{stdout}{stderr}",
        out.status
    );
    stdout
}

/// A running `tessera serve`, killed when dropped.
struct Node {
    name: &'static str,
    child: Child,
    /// `http://127.0.0.1:PORT`
    origin: String,
    log: PathBuf,
}

impl Node {
    /// Starts `tessera serve --listen 127.0.0.1:0` and waits for its first line.
    fn start(name: &'static str, config: &Path, dir: &Path) -> Self {
        let log = dir.join(format!("node-{name}.log"));
        let mut child = tessera(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps reading (so the pipe never fills) until the process ends.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut node = Self {
            name,
            child,
            origin: String::new(),
            log,
        };
        let first = match rx.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "node {name} said nothing within {PATIENCE:?}:\n{}",
                node.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("node {name} exited:\n{}", node.stderr())
            }
        };
        node.origin = Regex::new(r"^tessera listening on (http://127\.0\.0\.1:[1-9][0-9]*)$")
            .unwrap()
            .captures(&first)
            .unwrap_or_else(|| panic!("node {name}: unexpected first line {first:?}"))[1]
            .to_owned();
        node
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to flush or clean up anything.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a node can be reached, for tasks that outlive no node.
#[derive(Clone)]
struct Addr {
    name: &'static str,
    origin: String,
}

impl Addr {
    fn of(node: &Node) -> Self {
        Self {
            name: node.name,
            origin: node.origin.clone(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

// --- browsers and replies ------------------------------------------------------------------------

/// A response, read whole.
struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Reply {
    async fn read(r: reqwest::Response) -> Self {
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        Self {
            status,
            location,
            body: r.text().await.unwrap(),
        }
    }

    /// The service ticket of a redirect back to `service`.
    #[track_caller]
    fn ticket_for(&self, service: &str) -> String {
        assert_eq!(self.status, StatusCode::FOUND, "{}", self.body);
        let location = self.location.as_deref().unwrap();
        assert!(location.starts_with(service), "{location}");
        Regex::new(r"[?&]ticket=(ST-[A-Za-z0-9-]+)$")
            .unwrap()
            .captures(location)
            .unwrap_or_else(|| panic!("no ticket at the end of {location}"))[1]
            .to_owned()
    }

    /// The login ticket of a login form.
    #[track_caller]
    fn login_ticket(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        Regex::new(r#"name="lt" value="([^"]+)""#)
            .unwrap()
            .captures(&self.body)
            .unwrap_or_else(|| panic!("no login form: {}", self.body))[1]
            .to_owned()
    }

    /// Whether this is the login form (no SSO session).
    fn is_login_form(&self) -> bool {
        self.status == StatusCode::OK && self.body.contains(r#"name="password""#)
    }
}

/// A browser: its own cookie jar, no redirects followed. Both nodes are on 127.0.0.1, and cookies
/// ignore ports, so its session cookie goes to both, as behind a load balancer.
#[derive(Debug, Clone)]
struct Browser {
    client: reqwest::Client,
}

impl Browser {
    fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn try_get(&self, url: &str) -> reqwest::Result<Reply> {
        Ok(Reply::read(self.client.get(url).send().await?).await)
    }

    async fn get(&self, url: &str) -> Reply {
        self.try_get(url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// GET the CAS login page of `node` for `service`.
    async fn try_login_page(&self, node: &Addr, service: &str) -> reqwest::Result<Reply> {
        self.try_get(&node.url(&format!("/cas/login?service={}", enc(service))))
            .await
    }

    async fn login_page(&self, node: &Addr, service: &str) -> Reply {
        self.try_login_page(node, service).await.unwrap()
    }

    /// POSTs the login form (with the login ticket `lt`, from whichever node) to `node`.
    async fn try_submit(&self, node: &Addr, service: &str, lt: &str) -> reqwest::Result<Reply> {
        let r = self
            .client
            .post(node.url("/cas/login"))
            .form(&[
                ("username", USER),
                ("password", PASSWORD),
                ("lt", lt),
                ("service", service),
            ])
            .send()
            .await?;
        Ok(Reply::read(r).await)
    }

    async fn submit(&self, node: &Addr, service: &str, lt: &str) -> Reply {
        self.try_submit(node, service, lt).await.unwrap()
    }
}

/// Validates `ticket` for `service` at `node`; the XML answer.
async fn try_validate(node: &Addr, ticket: &str, service: &str) -> reqwest::Result<String> {
    let url = node.url(&format!(
        "/cas/serviceValidate?service={}&ticket={}",
        enc(service),
        enc(ticket)
    ));
    reqwest::get(url).await?.text().await
}

async fn validate(node: &Addr, ticket: &str, service: &str) -> String {
    try_validate(node, ticket, service).await.unwrap()
}

#[track_caller]
fn assert_success(answer: &str) {
    assert!(
        answer.contains("<cas:authenticationSuccess>")
            && answer.contains("<cas:user>alice</cas:user>"),
        "{answer}"
    );
}

// --- OpenID Connect ------------------------------------------------------------------------------

/// A code for `CLIENT` from `node`'s authorization endpoint, for a browser with an SSO session.
async fn authorize(browser: &Browser, node: &Addr) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile email")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .finish();
    let reply = browser
        .get(&node.url(&format!("/oidc/authorize?{query}")))
        .await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let location = url::Url::parse(reply.location.as_deref().unwrap())
        .unwrap_or_else(|e| panic!("{e}: {:?}", reply.location));
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code in {location}"))
        .1
        .into_owned()
}

/// POSTs `form` to `node`'s token endpoint as `CLIENT` (client_secret_basic).
async fn token(node: &Addr, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(node.url("/oidc/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

/// Tokens for `code`, from `node`.
async fn exchange(node: &Addr, code: &str) -> Value {
    let (status, json) = token(
        node,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    json
}

/// The status of `node`'s userinfo endpoint for `access_token`, and the claims it gave.
async fn userinfo(node: &Addr, access_token: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(node.url("/oidc/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn str_of<'a>(json: &'a Value, field: &str) -> &'a str {
    json[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {json}"))
}

async fn jwks(node: &Addr) -> JwkSet {
    let r = reqwest::get(node.url("/oidc/jwks")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

/// The key id of `id_token` if `node`'s JWKS publishes that key and the token verifies with it
/// (signature, issuer, audience); `Err(kid)` if the key is not published there (yet).
async fn verified_by(node: &Addr, id_token: &str) -> Result<String, String> {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let kid = header.kid.clone().expect("an ID token names its key");
    let set = jwks(node).await;
    let Some(jwk) = set.find(&kid) else {
        return Err(kid);
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT]);
    validation.set_issuer(&[format!("{PUBLIC_URL}/oidc")]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap_or_else(|e| {
                panic!(
                    "the ID token does not verify with {}'s key {kid}: {e}",
                    node.name
                )
            })
            .claims;
    assert_eq!(claims["nonce"], "n-1", "{claims}");
    Ok(kid)
}

// --- the test ------------------------------------------------------------------------------------

/// What one login of the crash load got.
#[derive(Debug)]
struct Handed {
    ticket: String,
    /// The node that answered the POST (and so created the session).
    by: &'static str,
    /// Validated during the load (`Some(true)`), not tried (`None`), or tried without an answer
    /// (`Some(false)`: the node may have taken it just before it died).
    validated: Option<bool>,
    browser: Browser,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_database_serve_any_step_and_survive_kill_9() {
    let database = PostgresDatabase::create();
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    let receiver_pattern = format!("{}/rp/.*", regex::escape(&receiver.url));
    let text = format!(
        r#"[server]
public_url = "{PUBLIC_URL}"

[database]
url = "{url}"

[password]
argon2_memory_kib = 256
argon2_iterations = 1

# Both nodes sweep, and poll the single-logout queue, often.
[session]
sweep_interval = "1s"

[slo]
poll_interval = "100ms"

[[service]]
name = "app"
pattern = 'https://app\.example\.org/.*'
release_all = true
logout_type = "none"

[[service]]
name = "receiver"
pattern = '{receiver_pattern}'

[[client]]
id = "{CLIENT}"
secret = "{SECRET}"
redirect_uris = ["{REDIRECT}"]
"#,
        url = database.url
    );
    std::fs::write(&config, text).unwrap();
    let out = admin(
        &config,
        &[
            "user",
            "add",
            USER,
            "--password-stdin",
            "--attr",
            "mail=alice@example.org",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out, format!("user {USER} added\n"));
    // One after the other: the first makes the signing keys, the second finds them.
    let node_a = Node::start("A", &config, dir.path());
    let mut node_b = Node::start("B", &config, dir.path());
    let (a, b) = (Addr::of(&node_a), Addr::of(&node_b));
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(&database.url).await.unwrap());

    // --- CAS: the form from A, the credentials to B, the ticket validated on A, replayed on B --
    let browser = Browser::new();
    let lt = browser.login_page(&a, APP).await.login_ticket();
    let first = browser.submit(&b, APP, &lt).await.ticket_for(APP);
    assert_success(&validate(&a, &first, APP).await);
    let replay = validate(&b, &first, APP).await;
    assert!(replay.contains(r#"code="INVALID_TICKET""#), "{replay}");
    // Single sign-on with the session B created: a ticket from B without a password, validated
    // on A; and one from A for the back-channel receiver, validated on B.
    let sso = browser.login_page(&b, APP).await.ticket_for(APP);
    assert_success(&validate(&a, &sso, APP).await);
    let receiver_service = format!("{}/rp/app", receiver.url);
    let entered = browser
        .login_page(&a, &receiver_service)
        .await
        .ticket_for(&receiver_service);
    assert_success(&validate(&b, &entered, &receiver_service).await);

    // --- OpenID Connect on the same session: code from A, tokens from B, userinfo on A -----
    let code = authorize(&browser, &a).await;
    let tokens = exchange(&b, &code).await;
    let (status, claims) = userinfo(&a, str_of(&tokens, "access_token")).await;
    assert_eq!(status, StatusCode::OK, "{claims}");
    assert_eq!(claims["email"], "alice@example.org", "{claims}");
    assert!(verified_by(&a, str_of(&tokens, "id_token")).await.is_ok());
    let (status, refreshed) = token(
        &b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", str_of(&tokens, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    let (status, again) = userinfo(&a, str_of(&refreshed, "access_token")).await;
    assert_eq!((status, &again["sub"]), (StatusCode::OK, &claims["sub"]));

    // --- Logout on A ends the session everywhere ---------------------------------------------
    let out = browser.get(&a.url("/cas/logout")).await;
    assert_eq!(out.status, StatusCode::OK, "{}", out.body);
    assert!(browser.login_page(&b, APP).await.is_login_form());
    let (status, _) = userinfo(&b, str_of(&refreshed, "access_token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Both nodes poll the single-logout queue; the receiver hears of the logout once.
    let request = receiver.next().await;
    assert_eq!(request.session_index(), entered);
    eventually("the single-logout queue is empty", || async {
        store.list_slo_deliveries().await.unwrap().is_empty()
    })
    .await;
    // A second delivery could only come from a claim made before the first one was sent: give
    // both nodes many polls' time to show one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let extra = receiver.pending().await;
    assert!(extra.is_empty(), "delivered more than once: {extra:?}");

    // --- Key rotation made by the CLI is seen by both nodes -----------------------------------
    let rotated = admin(&config, &["keys", "rotate", "--activate-in", "0s"], "");
    let new_kid = Regex::new(r"(?m)^new RS256 key (\S+): signs from now")
        .unwrap()
        .captures(&rotated)
        .unwrap_or_else(|| panic!("no new RS256 key: {rotated}"))[1]
        .to_owned();
    let rp_browser = Browser::new();
    let lt = rp_browser.login_page(&b, APP).await.login_ticket();
    rp_browser.submit(&a, APP, &lt).await.ticket_for(APP);
    // Each node reads the key table again within its key-cache time (10 s): poll, bounded.
    let mut seen = None;
    for _ in 0..60 {
        let code = authorize(&rp_browser, &b).await;
        let tokens = exchange(&b, &code).await;
        match verified_by(&a, str_of(&tokens, "id_token")).await {
            Ok(kid) if kid == new_kid => {
                seen = Some(kid);
                break;
            }
            // B still signs with the old key, or A does not publish the new one yet.
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    assert_eq!(
        seen.as_deref(),
        Some(new_kid.as_str()),
        "node B never signed with the rotated key {new_kid} published by node A"
    );

    // --- Crash: kill -9 node B in the middle of a load spread over both nodes -----------------
    let handed: Arc<Mutex<Vec<Handed>>> = Arc::default();
    let by_b = Arc::new(AtomicUsize::new(0));
    let b_handed_out = Arc::new(tokio::sync::Notify::new());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (nodes, handed, by_b, b_handed_out) = (
                [a.clone(), b.clone()],
                handed.clone(),
                by_b.clone(),
                b_handed_out.clone(),
            );
            tokio::spawn(async move {
                let [node_a, node_b] = &nodes;
                for i in 0..5 {
                    // The form from one node, the credentials to the other; once a node is
                    // unreachable, the load balancer sends the browser (starting over) to A.
                    let route = if (w + i) % 2 == 0 {
                        (node_a, node_b)
                    } else {
                        (node_b, node_a)
                    };
                    let browser = Browser::new();
                    let mut got = None;
                    for (form_node, post_node) in [route, (node_a, node_a)] {
                        let Ok(form) = browser.try_login_page(form_node, APP).await else {
                            continue;
                        };
                        let lt = form.login_ticket();
                        if let Ok(reply) = browser.try_submit(post_node, APP, &lt).await {
                            got = Some((reply.ticket_for(APP), form_node, post_node));
                            break;
                        }
                    }
                    let (ticket, form_node, post_node) =
                        got.expect("node A answers whatever happens to B");
                    // B's tickets are left for after the crash; every other one of A's is
                    // validated at once, on the node that showed the form.
                    let validated = if post_node.name == "B" {
                        if by_b.fetch_add(1, Ordering::SeqCst) + 1 == 4 {
                            b_handed_out.notify_one();
                        }
                        None
                    } else if i % 2 == 0 {
                        Some(match try_validate(form_node, &ticket, APP).await {
                            Ok(answer) => {
                                assert_success(&answer);
                                true
                            }
                            Err(_) => false,
                        })
                    } else {
                        None
                    };
                    handed.lock().unwrap().push(Handed {
                        ticket,
                        by: post_node.name,
                        validated,
                        browser,
                    });
                }
            })
        })
        .collect();
    // Bounded, so that a worker's failure shows as such rather than as a hang.
    let _ = tokio::time::timeout(PATIENCE, b_handed_out.notified()).await;
    node_b.kill_9();
    for worker in workers {
        worker.await.unwrap();
    }
    let handed = std::mem::take(&mut *handed.lock().unwrap());
    let from_b: Vec<&Handed> = handed.iter().filter(|h| h.by == "B").collect();
    assert!(from_b.len() >= 4, "{handed:#?}");
    // Every ticket handed out and not validated still validates, once, on A.
    let mut checked = 0;
    for h in handed.iter().filter(|h| h.validated.is_none()) {
        assert_success(&validate(&a, &h.ticket, APP).await);
        checked += 1;
    }
    assert!(checked > 0, "{handed:#?}");
    // Every session B created still gives single sign-on on A.
    for h in &from_b {
        let ticket = h.browser.login_page(&a, APP).await.ticket_for(APP);
        assert_success(&validate(&a, &ticket, APP).await);
    }
    // And A serves on alone.
    let alone = Browser::new();
    let lt = alone.login_page(&a, APP).await.login_ticket();
    let ticket = alone.submit(&a, APP, &lt).await.ticket_for(APP);
    assert_success(&validate(&a, &ticket, APP).await);
    drop(node_a);
}
