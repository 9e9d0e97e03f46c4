//! The `tessera` binary, run as users and scripts run it: the admin commands against a temporary
//! SQLite database, configuration errors, and `serve` as a real process (its first line, demo mode,
//! kill -9 and SIGTERM).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use tempfile::TempDir;
use tessera_store::{SqliteStore, Store};

/// How long a server may take to say something (or to stop) before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// The service the HTTP tests log in to.
const APP: &str = "https://app.example.org/";

/// A password for the users the tests add.
const PASSWORD: &str = "correct horse battery staple";

/// The binary, with no `TESSERA_*` variable of the environment the tests run in.
fn tessera() -> Command {
    crate::support::tessera_command()
}

/// What a finished command did.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl Outcome {
    #[track_caller]
    fn succeeded(self) -> Self {
        assert!(self.status.success(), "expected success, got {self:?}");
        self.no_panic()
    }

    /// Asserts the exit status and that `stderr` contains every needle.
    #[track_caller]
    fn failed_with(self, code: i32, needles: &[&str]) -> Self {
        assert_eq!(self.status.code(), Some(code), "{self:?}");
        self.no_panic().says(needles)
    }

    /// Asserts that the command failed, without a panic, saying every needle on stderr.
    #[track_caller]
    fn failed_saying(self, needles: &[&str]) -> Self {
        assert!(
            !self.status.success() && self.status.code().is_some(),
            "expected a failure exit status, got {self:?}"
        );
        self.no_panic().says(needles)
    }

    #[track_caller]
    fn says(self, needles: &[&str]) -> Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}: {self:?}"
            );
        }
        self
    }

    #[track_caller]
    fn no_panic(self) -> Self {
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self
    }
}

/// Runs `cmd` to the end, feeding it `stdin` (or an empty, non-terminal stdin).
fn run(mut cmd: Command, stdin: Option<&str>) -> Outcome {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading (say, on a bad name); a broken pipe is then fine.
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Outcome {
        status: out.status,
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A temporary directory with a config file pointing at a fresh SQLite database in it.
struct Home {
    dir: TempDir,
    config: PathBuf,
    servers_started: std::cell::Cell<u32>,
}

impl Home {
    fn new() -> Self {
        Self::with_config("")
    }

    /// A home whose config file also has `extra` (TOML tables) after the basics.
    fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tessera.toml");
        let home = Self {
            dir,
            config,
            servers_started: std::cell::Cell::new(0),
        };
        home.write_config(extra);
        home
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}/tessera.db", self.dir.path().display())
    }

    /// Rewrites the config file: the database and cheap hashes, then `extra`.
    fn write_config(&self, extra: &str) {
        let text = format!(
            "[database]\nurl = \"{}\"\n\n[password]\nargon2_memory_kib = 256\nargon2_iterations = 1\n\n{extra}",
            self.database_url()
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn config_path(&self) -> String {
        self.config.display().to_string()
    }

    /// `tessera --config FILE ARGS…`
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = tessera();
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Outcome {
        run(self.command(args), None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Outcome {
        run(self.command(args), Some(stdin))
    }

    fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        run(cmd, None)
    }

    /// `tessera user add NAME --password-stdin --attr …`, which must succeed.
    fn add_user(&self, name: &str, password: &str, attrs: &[&str]) {
        let mut args = vec!["user", "add", name, "--password-stdin"];
        for attr in attrs {
            args.extend(["--attr", attr]);
        }
        let out = self
            .run_with_stdin(&args, &format!("{password}\n"))
            .succeeded();
        assert_eq!(out.stdout, format!("user {name} added\n"));
    }

    /// `tessera service add ARGS…`, which must succeed.
    fn add_service(&self, args: &[&str]) {
        let mut all = vec!["service", "add"];
        all.extend_from_slice(args);
        self.run(&all).succeeded();
    }

    /// The lines of `tessera user list`.
    fn users(&self) -> Vec<String> {
        lines(&self.run(&["user", "list"]).succeeded().stdout)
    }

    /// The lines of `tessera service list`, split at tabs.
    fn services(&self) -> Vec<Vec<String>> {
        let out = self.run(&["service", "list"]).succeeded();
        out.stdout
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// The stdout of `tessera client list`.
    fn clients(&self) -> String {
        self.run(&["client", "list"]).succeeded().stdout
    }

    /// `tessera client add ARGS…`, which must succeed; its stdout.
    fn add_client(&self, args: &[&str]) -> String {
        let mut all = vec!["client", "add"];
        all.extend_from_slice(args);
        self.run(&all).succeeded().stdout
    }

    /// The rows of `tessera keys list` below its header: kid, alg, state, created.
    fn keys(&self) -> Vec<[String; 4]> {
        let out = self.run(&["keys", "list"]).succeeded();
        let mut rows = out.stdout.lines();
        let header = rows.next().unwrap_or_default();
        assert!(
            Regex::new(r"^KID +ALG +STATE +CREATED$")
                .unwrap()
                .is_match(header),
            "{out:?}"
        );
        let columns = Regex::new(r" {2,}").unwrap();
        rows.map(|row| {
            let cells: Vec<String> = columns.split(row).map(str::to_owned).collect();
            cells
                .try_into()
                .unwrap_or_else(|_| panic!("not 4 columns: {row:?}"))
        })
        .collect()
    }

    /// The bytes of the SQLite database and its journal files, as on disk.
    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("tessera.db")
            {
                bytes.extend(std::fs::read(entry.path()).unwrap());
            }
        }
        assert!(!bytes.is_empty(), "no database file");
        bytes
    }

    /// Starts `tessera serve --listen 127.0.0.1:0 EXTRA…` and reads its first line.
    fn serve(&self, extra: &[&str]) -> Server {
        let mut server = self.start_serve(extra);
        server.read_announcement();
        server
    }

    /// Starts `tessera serve --listen 127.0.0.1:0 EXTRA…`; its first line is still unread.
    fn start_serve(&self, extra: &[&str]) -> Server {
        let n = self.servers_started.get() + 1;
        self.servers_started.set(n);
        let log = self.dir.path().join(format!("serve-{n}.log"));
        let mut cmd = self.command(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap());
        Server::start(cmd, log)
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// A running `tessera serve`, killed when dropped.
struct Server {
    child: Child,
    lines: Receiver<String>,
    /// `http://127.0.0.1:PORT`
    origin: String,
    log: PathBuf,
}

impl Server {
    fn start(mut cmd: Command, log: PathBuf) -> Self {
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines: rx,
            origin: String::new(),
            log,
        }
    }

    /// Reads the first line, `tessera listening on http://127.0.0.1:PORT`, into `origin`.
    fn read_announcement(&mut self) {
        let first = self.next_line();
        self.origin = Regex::new(r"^tessera listening on (http://127\.0\.0\.1:[1-9][0-9]*)$")
            .unwrap()
            .captures(&first)
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))[1]
            .to_owned();
    }

    /// The next line the server printed, waiting at most [`PATIENCE`].
    fn next_line(&self) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no output within {PATIENCE:?}; stderr:\n{}", self.stderr())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the server closed its output; stderr:\n{}", self.stderr())
            }
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Sends `signal` (`TERM`, `INT`, …) with kill(1).
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits, at most `within`, for the process to end: its stdout closes when it exits.
    fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => return self.child.wait().unwrap(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("still running after {within:?}; stderr:\n{}", self.stderr())
                }
            }
        }
    }

    /// SIGKILL: no chance to flush or clean up anything.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser: keeps cookies in `jar`, follows no redirects.
fn browser(jar: &Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::clone(jar))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A response, read whole.
struct Reply {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Reply {
    async fn read(r: reqwest::Response) -> Self {
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let set_cookies = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Self {
            status,
            location,
            set_cookies,
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

    /// The value of the `TGC` cookie this response sets.
    fn tgc(&self) -> String {
        self.set_cookies
            .iter()
            .find_map(|c| c.strip_prefix("TGC="))
            .and_then(|rest| rest.split(';').next())
            .filter(|v| v.starts_with("TGT-"))
            .unwrap_or_else(|| panic!("no TGC cookie in {:?}", self.set_cookies))
            .to_owned()
    }
}

/// Opens the login form for `service`, fills it in and submits it; returns the answer to the POST.
async fn log_in(
    client: &reqwest::Client,
    server: &Server,
    service: &str,
    username: &str,
    password: &str,
) -> Reply {
    let url = server.url(&format!("/cas/login?service={}", enc(service)));
    let form = Reply::read(client.get(url).send().await.unwrap()).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let lt = Regex::new(r#"name="lt" value="([^"]+)""#)
        .unwrap()
        .captures(&form.body)
        .unwrap_or_else(|| panic!("no login ticket in {}", form.body))[1]
        .to_owned();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", username)
        .append_pair("password", password)
        .append_pair("lt", &lt)
        .append_pair("service", service)
        .finish();
    let r = client
        .post(server.url("/cas/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::read(r).await
}

/// `GET /cas/login?service=…`, as a browser that may already have a session.
async fn revisit_login(client: &reqwest::Client, server: &Server, service: &str) -> Reply {
    let url = server.url(&format!("/cas/login?service={}", enc(service)));
    Reply::read(client.get(url).send().await.unwrap()).await
}

/// Validates `ticket` at `endpoint` (`/cas/serviceValidate`, …); returns the XML answer.
async fn validate(server: &Server, endpoint: &str, ticket: &str, service: &str) -> String {
    let url = server.url(&format!(
        "{endpoint}?service={}&ticket={}",
        enc(service),
        enc(ticket)
    ));
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

#[test]
fn help_lists_the_commands() {
    let out = tessera().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in [
        "serve", "user", "service", "client", "keys", "session", "config",
    ] {
        assert!(text.contains(command), "{text}");
    }
}

// ---- users ----

#[test]
fn user_add_stores_the_user_with_every_value_of_a_repeated_attribute() {
    let home = Home::new();
    home.add_user(
        "alice",
        PASSWORD,
        &[
            "mail=alice@example.org",
            "group=staff",
            "group=dev",
            "note=a=b",
        ],
    );
    home.add_user("bob", PASSWORD, &[]);
    assert_eq!(
        home.users(),
        [
            "alice\tgroup=staff group=dev mail=alice@example.org note=a=b",
            "bob\t",
        ]
    );
}

#[test]
fn the_user_list_never_shows_passwords_or_hashes() {
    let home = Home::new();
    home.add_user("alice", PASSWORD, &["mail=alice@example.org"]);
    let listed = home.users().join("\n");
    assert!(
        !listed.contains(PASSWORD) && !listed.contains("argon2"),
        "{listed}"
    );
}

#[test]
fn adding_an_existing_user_fails_and_keeps_the_first() {
    let home = Home::new();
    home.add_user("alice", PASSWORD, &["mail=alice@example.org"]);
    home.run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--attr",
            "mail=other@example.org",
        ],
        "another password\n",
    )
    .failed_saying(&["alice", "already exists"]);
    assert_eq!(home.users(), ["alice\tmail=alice@example.org"]);
}

#[test]
fn invalid_user_names_are_refused() {
    let home = Home::new();
    let too_long = "x".repeat(257);
    for name in [
        "",
        "bad\nname",
        "tab\there",
        " padded",
        "padded ",
        too_long.as_str(),
    ] {
        home.run_with_stdin(&["user", "add", name, "--password-stdin"], "secret\n")
            .failed_with(2, &["not a valid user name"]);
    }
    assert!(home.users().is_empty(), "{:?}", home.users());
}

#[test]
fn invalid_attributes_are_refused_at_user_add() {
    let home = Home::new();
    for (attr, needle) in [
        ("novalue", "is not KEY=VALUE"),
        ("1st=x", "not a valid attribute name"),
        ("with space=x", "not a valid attribute name"),
        ("=x", "not a valid attribute name"),
    ] {
        home.run_with_stdin(
            &["user", "add", "alice", "--password-stdin", "--attr", attr],
            "secret\n",
        )
        .failed_with(2, &[needle]);
    }
    assert!(home.users().is_empty());
}

#[test]
fn an_empty_password_is_refused() {
    let home = Home::new();
    for stdin in ["\n", "\r\n", ""] {
        home.run_with_stdin(&["user", "add", "alice", "--password-stdin"], stdin)
            .failed_with(2, &["the password is empty"]);
    }
    assert!(home.users().is_empty());
}

#[test]
fn without_password_stdin_a_non_terminal_stdin_is_refused_with_a_hint() {
    let home = Home::new();
    home.run_with_stdin(&["user", "add", "alice"], "secret\n")
        .failed_with(2, &["not a terminal", "--password-stdin"]);
    assert!(home.users().is_empty());
    home.add_user("bob", PASSWORD, &[]);
    home.run_with_stdin(&["user", "passwd", "bob"], "secret\n")
        .failed_with(2, &["--password-stdin"]);
}

#[tokio::test]
async fn user_passwd_replaces_the_password_of_a_running_server() {
    let home = Home::new();
    home.add_user("alice", "old password", &[]);
    home.add_service(&["app", "--prefix", APP]);
    let server = home.serve(&[]);
    let jar = Arc::default();
    log_in(&browser(&jar), &server, APP, "alice", "old password")
        .await
        .ticket_for(APP);

    let out = home
        .run_with_stdin(
            &["user", "passwd", "alice", "--password-stdin"],
            "new password\n",
        )
        .succeeded();
    assert_eq!(out.stdout, "password of alice changed\n");

    let jar = Arc::default();
    let refused = log_in(&browser(&jar), &server, APP, "alice", "old password").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(refused.location.is_none());
    let accepted = log_in(&browser(&jar), &server, APP, "alice", "new password").await;
    let ticket = accepted.ticket_for(APP);
    let answer = validate(&server, "/cas/serviceValidate", &ticket, APP).await;
    assert!(answer.contains("<cas:user>alice</cas:user>"), "{answer}");
}

#[tokio::test]
async fn user_passwd_of_an_unknown_user_exits_1_and_an_empty_password_changes_nothing() {
    let home = Home::new();
    home.run_with_stdin(&["user", "passwd", "bob", "--password-stdin"], "secret\n")
        .failed_with(1, &["no user bob"]);
    home.add_user("alice", PASSWORD, &[]);
    let hash = || async {
        let store = SqliteStore::connect(&home.database_url()).await.unwrap();
        store
            .get_user("alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
    };
    let before = hash().await;
    home.run_with_stdin(&["user", "passwd", "alice", "--password-stdin"], "\n")
        .failed_with(2, &["the password is empty"]);
    assert_eq!(hash().await, before);
}

#[test]
fn user_attr_replaces_the_keys_given_removes_empty_ones_and_keeps_the_rest() {
    let home = Home::new();
    home.add_user(
        "alice",
        PASSWORD,
        &[
            "mail=alice@example.org",
            "group=staff",
            "group=dev",
            "dept=it",
        ],
    );
    let out = home
        .run(&["user", "attr", "alice", "group=ops", "group=admin", "mail="])
        .succeeded();
    assert_eq!(out.stdout, "alice: dept=it group=ops group=admin\n");
    assert_eq!(home.users(), ["alice\tdept=it group=ops group=admin"]);

    home.run(&["user", "attr", "alice", "dept=", "group="])
        .succeeded();
    assert_eq!(home.users(), ["alice\t"]);
}

#[test]
fn user_attr_refuses_unknown_users_and_malformed_pairs() {
    let home = Home::new();
    home.run(&["user", "attr", "bob", "mail=bob@example.org"])
        .failed_with(1, &["no user bob"]);
    home.add_user("alice", PASSWORD, &["mail=alice@example.org"]);
    home.run(&["user", "attr", "alice", "novalue"])
        .failed_with(2, &["is not KEY=VALUE"]);
    home.run(&["user", "attr", "alice", "9lives=x"])
        .failed_with(2, &["not a valid attribute name"]);
    home.run(&["user", "attr", "alice"]).failed_with(2, &[]);
    assert_eq!(home.users(), ["alice\tmail=alice@example.org"]);
}

#[test]
fn user_remove_deletes_the_user_and_an_unknown_user_exits_1() {
    let home = Home::new();
    home.add_user("alice", PASSWORD, &[]);
    home.add_user("bob", PASSWORD, &[]);
    let out = home.run(&["user", "remove", "alice"]).succeeded();
    assert_eq!(out.stdout, "user alice removed\n");
    assert_eq!(home.users(), ["bob\t"]);
    let out = home
        .run(&["user", "remove", "alice"])
        .failed_with(1, &["no user alice"]);
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[tokio::test]
async fn removing_a_user_ends_their_sessions_and_tickets() {
    let home = Home::new();
    home.add_user("alice", PASSWORD, &[]);
    home.add_service(&["app", "--prefix", APP]);
    let server = home.serve(&[]);
    let jar = Arc::default();
    let client = browser(&jar);
    let ticket = log_in(&client, &server, APP, "alice", PASSWORD)
        .await
        .ticket_for(APP);

    home.run(&["user", "remove", "alice"]).succeeded();

    let again = revisit_login(&client, &server, APP).await;
    assert_eq!(again.status, StatusCode::OK, "the login form, not a ticket");
    assert!(again.location.is_none());
    let answer = validate(&server, "/cas/serviceValidate", &ticket, APP).await;
    assert!(answer.contains("authenticationFailure"), "{answer}");
}

// ---- services ----

#[tokio::test]
async fn service_add_stores_every_option_and_list_shows_them_in_match_order() {
    let home = Home::new();
    home.add_service(&[
        "zeta",
        "--pattern",
        r"https://zeta\.example\.org/.*",
        "--release-all",
    ]);
    let out = home
        .run(&[
            "service",
            "add",
            "alpha",
            "--exact",
            "https://alpha.example.org/callback",
            "--release",
            "mail=email",
            "--release",
            "uid",
            "--username-attr",
            "uid",
            "--require",
            "eduPersonAffiliation=staff|faculty",
            "--no-sso",
            "--logout-url",
            "https://alpha.example.org/slo",
        ])
        .succeeded();
    assert_eq!(
        out.stdout,
        "service alpha added (exact https://alpha.example.org/callback)\n"
    );
    home.add_service(&[
        "mid",
        "--prefix",
        "https://mid.example.org/app",
        "--disabled",
    ]);

    assert_eq!(
        home.services(),
        [
            vec![
                "alpha",
                "db",
                "exact https://alpha.example.org/callback",
                "release=mail=email,uid",
                "no-sso"
            ],
            vec![
                "mid",
                "db",
                "prefix https://mid.example.org/app",
                "release=none",
                "disabled"
            ],
            vec![
                "zeta",
                "db",
                r"regex https://zeta\.example\.org/.*",
                "release=all",
                ""
            ],
        ]
    );

    // What the list does not show is in the database.
    let store = SqliteStore::connect(&home.database_url()).await.unwrap();
    let stored = store.list_services().await.unwrap();
    let alpha = stored.iter().find(|s| s.name == "alpha").unwrap();
    assert_eq!(alpha.username_attribute.as_deref(), Some("uid"));
    assert_eq!(
        alpha
            .requirements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["eduPersonAffiliation=staff|faculty"]
    );
    assert_eq!(
        alpha.logout_url.as_deref(),
        Some("https://alpha.example.org/slo")
    );
    assert!(!alpha.sso && alpha.enabled);
    let zeta = stored.iter().find(|s| s.name == "zeta").unwrap();
    assert!(zeta.sso && zeta.enabled && zeta.logout_url.is_none());
}

#[test]
fn an_invalid_regex_is_refused_with_exit_2_naming_the_problem() {
    let home = Home::new();
    home.run(&["service", "add", "broken", "--pattern", "https://(unclosed"])
        .failed_with(
            2,
            &["service broken", "invalid service pattern", "unclosed"],
        );
    assert!(home.services().is_empty());
}

#[test]
fn release_all_together_with_release_is_refused() {
    let home = Home::new();
    home.run(&[
        "service",
        "add",
        "both",
        "--prefix",
        APP,
        "--release-all",
        "--release",
        "mail",
    ])
    .failed_with(2, &["--release-all", "--release"]);
    assert!(home.services().is_empty());
}

#[test]
fn malformed_service_definitions_are_refused_and_nothing_is_stored() {
    let home = Home::new();
    let cases: [(&[&str], &str); 7] = [
        (&["s"], "--pattern"),
        (
            &["s", "--exact", APP, "--prefix", APP],
            "cannot be used with",
        ),
        (&["s", "--prefix", ""], "prefix pattern cannot be empty"),
        (
            &["s", "--prefix", APP, "--release", "bad name"],
            "not a valid attribute name",
        ),
        (
            &["s", "--prefix", APP, "--require", "group"],
            "is not ATTR=REGEX",
        ),
        (
            &["s", "--prefix", APP, "--require", "group=(x"],
            "invalid service pattern",
        ),
        (
            &["s", "--prefix", APP, "--logout-url", "not a url"],
            "--logout-url",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["service", "add"];
        all.extend_from_slice(args);
        home.run(&all).failed_with(2, &[needle]);
    }
    assert!(home.services().is_empty());
}

#[test]
fn adding_a_service_name_twice_is_refused() {
    let home = Home::new();
    home.add_service(&["app", "--prefix", APP]);
    home.run(&["service", "add", "app", "--exact", "https://x.example.org/"])
        .failed_saying(&["service app already exists"]);
    assert_eq!(home.services()[0][2], format!("prefix {APP}"));
}

#[test]
fn service_remove_deletes_and_an_unknown_name_exits_1() {
    let home = Home::new();
    home.add_service(&["app", "--prefix", APP]);
    home.add_service(&["other", "--exact", "https://other.example.org/"]);
    let out = home.run(&["service", "remove", "app"]).succeeded();
    assert_eq!(out.stdout, "service app removed\n");
    let names: Vec<_> = home.services().into_iter().map(|s| s[0].clone()).collect();
    assert_eq!(names, ["other"]);
    home.run(&["service", "remove", "app"])
        .failed_with(1, &["no service app"]);
}

#[test]
fn service_match_says_which_service_a_url_belongs_to_and_why() {
    let home = Home::new();
    home.add_service(&["app-admin", "--prefix", "https://app.example.org/admin"]);
    home.add_service(&["app-all", "--pattern", r"https://app\.example\.org/.*"]);
    home.add_service(&[
        "app-old",
        "--prefix",
        "https://app.example.org/",
        "--disabled",
    ]);
    home.add_service(&["other", "--exact", "https://other.example.org/"]);

    let out = home
        .run(&["service", "match", "https://app.example.org/admin/users"])
        .succeeded();
    assert_eq!(
        lines(&out.stdout),
        [
            "app-admin\tprefix https://app.example.org/admin\tmatches: this service is used",
            "app-all\tregex https://app\\.example\\.org/.*\tmatches, but an earlier service wins",
            "app-old\tprefix https://app.example.org/\tmatches, but is disabled",
            "other\texact https://other.example.org/\tdoes not match",
            "https://app.example.org/admin/users belongs to service app-admin",
        ]
    );

    let out = home
        .run(&["service", "match", "https://app.example.org/administrator"])
        .succeeded();
    assert!(
        out.stdout
            .ends_with("https://app.example.org/administrator belongs to service app-all\n"),
        "a prefix ends at a path boundary: {out:?}"
    );
}

#[test]
fn service_match_exits_1_when_no_enabled_service_matches() {
    let home = Home::new();
    home.add_service(&["app", "--prefix", "https://app.example.org"]);
    home.add_service(&["off", "--prefix", "https://off.example.org/", "--disabled"]);
    for url in [
        "https://app.example.org.evil.example/",
        "https://off.example.org/page",
    ] {
        let out = home
            .run(&["service", "match", url])
            .failed_with(1, &["matches no enabled service"]);
        assert!(out.stdout.contains("does not match"), "{out:?}");
    }
    let out = home
        .run(&["service", "match", "https://off.example.org/page"])
        .failed_with(1, &[]);
    assert!(
        out.stdout
            .contains("off\tprefix https://off.example.org/\tmatches, but is disabled"),
        "{out:?}"
    );
}

#[test]
fn service_match_refuses_a_url_with_credentials_before_matching() {
    let home = Home::new();
    home.add_service(&["anything", "--pattern", "https://.*"]);
    for url in [
        "https://good.example@evil.example/",
        "https://user:pass@good.example/",
        "https://good.example\\@evil.example/",
    ] {
        let out = home
            .run(&["service", "match", url])
            .failed_saying(&["refused before matching"]);
        assert!(out.stdout.is_empty(), "nothing was matched: {out:?}");
    }
}

// ---- services declared in the config file ----

#[test]
fn a_service_of_the_config_file_is_listed_first_as_from_the_file_and_is_read_only() {
    let home = Home::with_config("[[service]]\nname = \"filed\"\npattern = \"https://f/.*\"\n");
    home.add_service(&["aaa", "--prefix", "https://a.example.org/"]);
    let listed = home.services();
    assert_eq!(
        listed,
        [
            vec!["filed", "file", "regex https://f/.*", "release=none", ""],
            vec![
                "aaa",
                "db",
                "prefix https://a.example.org/",
                "release=none",
                ""
            ],
        ]
    );

    home.run(&["service", "remove", "filed"])
        .failed_with(2, &["filed", "declared in the config file"]);
    home.run(&[
        "service",
        "add",
        "filed",
        "--exact",
        "https://x.example.org/",
    ])
    .failed_with(2, &["filed", "declared in the config file"]);
    assert_eq!(home.services(), listed);

    let out = home.run(&["service", "match", "https://f/x"]).succeeded();
    assert!(
        out.stdout.ends_with("belongs to service filed\n"),
        "{out:?}"
    );
}

#[test]
fn a_database_service_shadowed_by_a_file_service_of_the_same_name_is_reported() {
    let home = Home::new();
    home.add_service(&["dup", "--prefix", "https://db.example.org/"]);
    home.write_config("[[service]]\nname = \"dup\"\nprefix = \"https://file.example.org/\"\n");

    assert_eq!(
        home.services(),
        [vec![
            "dup",
            "file",
            "prefix https://file.example.org/",
            "release=none",
            ""
        ]]
    );
    let out = home
        .run(&["service", "match", "https://db.example.org/x"])
        .failed_with(1, &["matches no enabled service"]);
    assert!(
        out.stdout.contains(
            "dup\tprefix https://db.example.org/\tignored: the config file declares a service of the same name"
        ),
        "{out:?}"
    );
    let out = home.run(&["config", "check"]).succeeded();
    assert!(
        out.stdout.contains("note: database service dup is ignored"),
        "{out:?}"
    );
}

// ---- OpenID Connect clients ----

/// A redirect URI for the client tests.
const CALLBACK: &str = "https://rp.example.org/callback";

/// Whether `haystack` contains `needle`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The value of the `client_secret: …` line of `client add`'s output.
fn printed_secret(stdout: &str) -> String {
    let secrets: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("client_secret: "))
        .collect();
    assert_eq!(secrets.len(), 1, "one secret line: {stdout}");
    secrets[0].to_owned()
}

#[tokio::test]
async fn client_add_prints_a_generated_secret_once_and_stores_only_its_hash() {
    let home = Home::new();
    let out = home.add_client(&["rp", "--redirect-uri", CALLBACK]);
    let secret = printed_secret(&out);
    assert_eq!(secret.len(), 43, "{out}");
    assert!(
        secret.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{secret:?}"
    );
    assert_eq!(
        out.matches(secret.as_str()).count(),
        1,
        "printed once: {out}"
    );
    assert!(
        out.starts_with("client rp added (confidential, RS256)\n"),
        "{out}"
    );
    assert!(out.contains("client_id: rp\n"), "{out}");
    assert!(out.contains("shown only now"), "{out}");

    let listed = home.clients();
    assert!(listed.contains("client rp (database)"), "{listed}");
    assert!(!listed.contains(&secret), "{listed}");
    assert!(
        !Regex::new("[0-9a-f]{64}").unwrap().is_match(&listed),
        "no hash either: {listed}"
    );
    assert!(
        !contains_bytes(&home.database_bytes(), secret.as_bytes()),
        "the secret is in the database file in clear"
    );

    // What is stored is a hash that recognizes the secret, and nothing else.
    let store = SqliteStore::connect(&home.database_url()).await.unwrap();
    let clients = store.list_clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert!(clients[0].secret.verify(&secret));
    assert!(!clients[0].secret.verify(&secret[1..]));

    // A second client gets a different secret.
    let other = printed_secret(&home.add_client(&["rp2", "--redirect-uri", CALLBACK]));
    assert_ne!(other, secret);
}

#[tokio::test]
async fn client_add_reads_a_chosen_secret_from_stdin_and_refuses_a_short_one() {
    let home = Home::new();
    home.run_with_stdin(
        &[
            "client",
            "add",
            "short",
            "--secret-stdin",
            "--redirect-uri",
            CALLBACK,
        ],
        "only-31-characters-long-secret\n",
    )
    .failed_with(2, &["at least 32 characters"]);
    home.run(&[
        "client",
        "add",
        "empty",
        "--secret-stdin",
        "--redirect-uri",
        CALLBACK,
    ])
    .failed_with(2, &["at least 32 characters"]);
    assert!(home.clients().is_empty());

    let chosen = "a-secret-of-exactly-32-character";
    assert_eq!(chosen.len(), 32);
    let out = home
        .run_with_stdin(
            &[
                "client",
                "add",
                "rp",
                "--secret-stdin",
                "--redirect-uri",
                CALLBACK,
            ],
            &format!("{chosen}\r\n"),
        )
        .succeeded();
    assert_eq!(
        out.stdout,
        "client rp added (confidential, RS256)\nclient_id: rp\n"
    );
    assert!(!contains_bytes(&home.database_bytes(), chosen.as_bytes()));
    let store = SqliteStore::connect(&home.database_url()).await.unwrap();
    let stored = store.list_clients().await.unwrap();
    assert!(
        stored[0].secret.verify(chosen),
        "the newline is not part of it"
    );
}

#[tokio::test]
async fn a_public_client_has_no_secret() {
    let home = Home::new();
    let out = home.add_client(&[
        "spa",
        "--public",
        "--redirect-uri",
        "http://localhost:3000/cb",
    ]);
    assert_eq!(
        out,
        "client spa added (public, PKCE required, RS256)\nclient_id: spa\n"
    );
    assert!(home
        .clients()
        .contains("  type:                      public, PKCE required\n"));
    let store = SqliteStore::connect(&home.database_url()).await.unwrap();
    assert!(store.list_clients().await.unwrap()[0].secret.is_public());

    home.run(&[
        "client",
        "add",
        "both",
        "--public",
        "--secret-stdin",
        "--redirect-uri",
        CALLBACK,
    ])
    .failed_with(2, &["--public", "--secret-stdin"]);
}

#[test]
fn bad_client_registrations_are_refused_naming_the_problem() {
    let home = Home::new();
    let cases: [(&[&str], &[&str]); 10] = [
        (&["rp"], &["--redirect-uri"]),
        (
            &["rp", "--redirect-uri", "javascript:x"],
            &["client rp", "`javascript:x` must be an http or https URL"],
        ),
        (
            &["rp", "--redirect-uri", "/callback"],
            &["`/callback` is not an absolute URL"],
        ),
        (
            &["rp", "--redirect-uri", "https://rp.example.org/cb#frag"],
            &["`https://rp.example.org/cb#frag` must not have a fragment"],
        ),
        (
            &[
                "rp",
                "--redirect-uri",
                CALLBACK,
                "--redirect-uri",
                "ftp://rp.example.org/",
            ],
            &["must be an http or https URL"],
        ),
        (
            &[
                "rp",
                "--redirect-uri",
                CALLBACK,
                "--post-logout-redirect-uri",
                "logout",
            ],
            &["`logout` is not an absolute URL"],
        ),
        (
            &[
                "rp",
                "--redirect-uri",
                CALLBACK,
                "--backchannel-logout-uri",
                "https://u:p@rp.example.org/",
            ],
            &["must not carry a user name or password"],
        ),
        (&["a:b", "--redirect-uri", CALLBACK], &["client id `a:b`"]),
        (
            &["rp", "--redirect-uri", CALLBACK, "--signing-alg", "HS256"],
            &["HS256"],
        ),
        (
            &[
                "rp",
                "--redirect-uri",
                CALLBACK,
                "--release-all",
                "--release",
                "mail",
            ],
            &["--release-all", "--release"],
        ),
    ];
    for (args, needles) in cases {
        let mut all = vec!["client", "add"];
        all.extend_from_slice(args);
        let out = home.run(&all).failed_with(2, needles);
        assert!(out.stdout.is_empty(), "nothing printed, no secret: {out:?}");
    }
    assert!(home.clients().is_empty());
}

#[test]
fn adding_a_client_id_twice_is_refused_and_keeps_the_first() {
    let home = Home::new();
    home.add_client(&["rp", "--redirect-uri", CALLBACK]);
    let out = home
        .run(&[
            "client",
            "add",
            "rp",
            "--public",
            "--redirect-uri",
            "https://other.example.org/",
        ])
        .failed_with(2, &["client rp already exists"]);
    assert!(out.stdout.is_empty(), "{out:?}");
    let listed = home.clients();
    assert!(
        listed.contains(CALLBACK) && listed.contains("confidential"),
        "{listed}"
    );
    assert!(!listed.contains("other.example.org"), "{listed}");
}

#[test]
fn client_list_shows_every_field_file_clients_first_and_never_a_secret() {
    let file_secret = "a-file-secret-that-is-long-enough-to-pass";
    let home = Home::with_config(&format!(
        "[[client]]\nid = \"filed\"\nsecret = \"{file_secret}\"\nredirect_uris = [\"https://f.example.org/cb\"]\n"
    ));
    let out = home.add_client(&[
        "rp",
        "--name",
        "Relying Party",
        "--redirect-uri",
        CALLBACK,
        "--redirect-uri",
        "http://localhost:8000/cb",
        "--post-logout-redirect-uri",
        "https://rp.example.org/bye",
        "--backchannel-logout-uri",
        "https://rp.example.org/bc",
        "--scope",
        "profile",
        "--scope",
        "offline_access",
        "--signing-alg",
        "ES256",
        "--consent",
        "--release",
        "memberOf=groups",
        "--release",
        "mail",
    ]);
    let secret = printed_secret(&out);
    assert!(
        out.starts_with("client rp added (confidential, ES256)\n"),
        "{out}"
    );

    let listed = home.clients();
    assert_eq!(
        listed,
        format!(
            "\
client filed (config file)
  name:                      filed
  type:                      confidential
  signing alg:               RS256
  consent:                   not asked
  redirect URIs:             https://f.example.org/cb
  post-logout redirect URIs: none
  back-channel logout URI:   none
  scopes:                    openid profile email
  release:                   none

client rp (database)
  name:                      Relying Party
  type:                      confidential
  signing alg:               ES256
  consent:                   asked
  redirect URIs:             {CALLBACK} http://localhost:8000/cb
  post-logout redirect URIs: https://rp.example.org/bye
  back-channel logout URI:   https://rp.example.org/bc
  scopes:                    openid profile offline_access
  release:                   memberOf=groups,mail
"
        )
    );
    assert!(!listed.contains(&secret) && !listed.contains(file_secret));
}

#[test]
fn a_client_of_the_config_file_cannot_be_added_again_or_removed_from_the_cli() {
    let home = Home::with_config(
        "[[client]]\nid = \"filed\"\npublic = true\nredirect_uris = [\"https://f.example.org/cb\"]\n",
    );
    let out = home
        .run(&["client", "add", "filed", "--redirect-uri", CALLBACK])
        .failed_with(
            2,
            &["client filed", "declared in the config file, which wins"],
        );
    assert!(out.stdout.is_empty(), "no secret printed: {out:?}");
    home.run(&["client", "remove", "filed"]).failed_with(
        2,
        &[
            "client filed",
            "declared in the config file; remove it there",
        ],
    );
    let listed = home.clients();
    assert!(
        listed.starts_with("client filed (config file)\n"),
        "{listed}"
    );
    assert!(!listed.contains(CALLBACK), "{listed}");
}

#[test]
fn a_database_client_shadowed_by_a_file_client_is_listed_as_ignored() {
    let home = Home::new();
    home.add_client(&["dup", "--redirect-uri", CALLBACK]);
    home.write_config(
        "[[client]]\nid = \"dup\"\npublic = true\nredirect_uris = [\"https://f.example.org/cb\"]\n",
    );
    let listed = home.clients();
    assert!(listed.starts_with("client dup (config file)\n"), "{listed}");
    assert!(
        listed.contains(
            "client dup (database; ignored: the config file declares a client of the same id)"
        ),
        "{listed}"
    );
    let out = home.run(&["client", "remove", "dup"]).succeeded();
    assert!(
        out.stdout
            .contains("note: the config file's client dup stays"),
        "{out:?}"
    );
    assert!(!home.clients().contains("(database"));
}

#[test]
fn client_remove_deletes_and_an_unknown_id_exits_1() {
    let home = Home::new();
    home.add_client(&["rp", "--redirect-uri", CALLBACK]);
    home.add_client(&["other", "--public", "--redirect-uri", CALLBACK]);
    let out = home.run(&["client", "remove", "rp"]).succeeded();
    assert_eq!(
        out.stdout,
        "client rp removed, with its grants (their tokens no longer work) and consents\n"
    );
    let listed = home.clients();
    assert!(
        listed.starts_with("client other (database)") && !listed.contains("client rp "),
        "{listed}"
    );
    let out = home
        .run(&["client", "remove", "rp"])
        .failed_with(1, &["no client rp"]);
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(!out.stderr.contains("error:"), "{out:?}");
}

// ---- signing keys ----

/// The RFC 3339 timestamp form `keys list` prints.
const RFC3339: &str = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ";

/// The rows of `keys` for `alg`.
fn keys_of<'a>(keys: &'a [[String; 4]], alg: &str) -> Vec<&'a [String; 4]> {
    keys.iter().filter(|k| k[1] == alg).collect()
}

/// The `(alg, kid)` pairs `keys rotate` announced.
fn rotated(stdout: &str) -> Vec<(String, String)> {
    Regex::new(r"(?m)^new (RS256|ES256) key ([A-Za-z0-9_-]+): ")
        .unwrap()
        .captures_iter(stdout)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect()
}

#[test]
fn the_first_serve_generates_an_active_key_for_each_algorithm() {
    let home = Home::new();
    let out = home.run(&["keys", "list"]).succeeded();
    assert!(out.stdout.starts_with("no signing keys yet"), "{out:?}");
    drop(home.serve(&[]));

    let keys = home.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for alg in ["RS256", "ES256"] {
        let of = keys_of(&keys, alg);
        assert_eq!(of.len(), 1, "{keys:?}");
        assert_eq!(of[0][2], "active");
        assert!(
            Regex::new(&format!("^{RFC3339}$"))
                .unwrap()
                .is_match(&of[0][3]),
            "{keys:?}"
        );
        assert_eq!(of[0][0].len(), 43, "a JWK thumbprint: {keys:?}");
    }
    // A second start keeps them.
    drop(home.serve(&[]));
    assert_eq!(home.keys().len(), 2);
}

#[test]
fn keys_rotate_on_a_fresh_database_makes_keys_that_sign_at_once() {
    let home = Home::new();
    let out = home.run(&["keys", "rotate"]).succeeded();
    assert_eq!(rotated(&out.stdout).len(), 2, "{out:?}");
    assert!(out.stdout.contains("signs from now"), "{out:?}");
    let keys = home.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k[2] == "active"), "{keys:?}");
}

#[test]
fn keys_rotate_with_no_delay_makes_new_active_keys_and_retires_the_old_ones() {
    let home = Home::new();
    drop(home.serve(&[]));
    let before = home.keys();

    let out = home
        .run(&["keys", "rotate", "--activate-in", "0s"])
        .succeeded();
    let new = rotated(&out.stdout);
    assert_eq!(new.len(), 2, "{out:?}");
    assert!(
        out.stdout
            .contains("old keys stay published until the tokens they signed expire"),
        "{out:?}"
    );

    let after = home.keys();
    assert_eq!(after.len(), 4, "{after:?}");
    let retired = Regex::new(&format!(r"^retired \(since {RFC3339}\)$")).unwrap();
    for old in &before {
        let now = after.iter().find(|k| k[0] == old[0]).unwrap();
        assert!(retired.is_match(&now[2]), "{after:?}");
    }
    for (alg, kid) in &new {
        let key = after.iter().find(|k| &k[0] == kid).unwrap();
        assert_eq!((&key[1], key[2].as_str()), (alg, "active"), "{after:?}");
    }
    // The server starts with the new keys and does not make more.
    drop(home.serve(&[]));
    assert_eq!(home.keys(), after);
}

#[test]
fn keys_rotate_of_es256_with_a_delay_prepublishes_it_and_leaves_rs256_alone() {
    let home = Home::new();
    drop(home.serve(&[]));
    let before = home.keys();

    let out = home
        .run(&["keys", "rotate", "--alg", "ES256", "--activate-in", "1h"])
        .succeeded();
    let new = rotated(&out.stdout);
    assert_eq!(new.len(), 1, "{out:?}");
    assert_eq!(new[0].0, "ES256");
    assert!(out.stdout.contains("published now, signs from "), "{out:?}");

    let after = home.keys();
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(keys_of(&after, "RS256"), keys_of(&before, "RS256"));
    let es = keys_of(&after, "ES256");
    let old = es.iter().find(|k| k[0] != new[0].1).unwrap();
    let fresh = es.iter().find(|k| k[0] == new[0].1).unwrap();
    // The old key signs until the new one takes over.
    let when = fresh[2]
        .strip_prefix("published (signs from ")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{after:?}"));
    assert!(Regex::new(&format!("^{RFC3339}$")).unwrap().is_match(when));
    assert_eq!(old[2], format!("active (until {when})"), "{after:?}");
}

#[test]
fn keys_rotate_refuses_an_unknown_algorithm_and_a_bad_delay() {
    let home = Home::new();
    home.run(&["keys", "rotate", "--alg", "HS256"])
        .failed_with(2, &["HS256"]);
    home.run(&["keys", "rotate", "--activate-in", "soon"])
        .failed_with(2, &["--activate-in"]);
    let out = home.run(&["keys", "list"]).succeeded();
    assert!(out.stdout.starts_with("no signing keys yet"), "{out:?}");
}

// ---- configuration ----

#[test]
fn config_check_accepts_a_good_config_and_says_ok() {
    let home = Home::with_config(
        "[server]\nbase_path = \"/sso\"\n\n[session]\nidle_timeout = \"30min\"\n\n\
         [[service]]\nname = \"filed\"\npattern = \"https://f/.*\"\n",
    );
    home.add_service(&["app", "--prefix", APP]);
    let out = home.run(&["config", "check"]).succeeded();
    assert_eq!(
        out.stdout,
        format!(
            "{}: ok (1 services in the file, 1 in the database)\n",
            home.config_path()
        )
    );
}

#[test]
fn the_config_file_can_be_named_by_tessera_config() {
    let home = Home::new();
    let mut cmd = tessera();
    cmd.env("TESSERA_CONFIG", &home.config)
        .args(["config", "check"]);
    let out = run(cmd, None).succeeded();
    assert!(
        out.stdout
            .starts_with(&format!("{}: ok", home.config_path())),
        "{out:?}"
    );
}

#[test]
fn an_unknown_key_names_the_file_the_key_and_the_expected_keys() {
    let home = Home::with_config("[server]\nlisen = \"x\"\n");
    let out = home
        .run(&["config", "check"])
        .failed_with(2, &[&home.config_path(), "lisen", "listen"]);
    assert!(out.stdout.is_empty(), "{out:?}");
    // Every command reads the config first, and refuses it the same way.
    home.run(&["user", "list"])
        .failed_with(2, &[&home.config_path(), "lisen"]);
}

#[test]
fn a_bad_duration_names_the_key_and_the_format() {
    let home = Home::with_config("[session]\nidle_timeout = \"soon\"\n");
    home.run(&["config", "check"])
        .failed_with(2, &[&home.config_path(), "[session] idle_timeout", "60s"]);
}

#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    let home = Home::new();
    home.run_with_env(
        &["config", "check"],
        &[("TESSERA_SERVER__LISTEN", "nowhere")],
    )
    .failed_with(2, &["TESSERA_SERVER__LISTEN", "[server] listen"]);
    home.run_with_env(
        &["config", "check"],
        &[("TESSERA_SERVER__LISTN", "127.0.0.1:1")],
    )
    .failed_with(2, &["TESSERA_SERVER__LISTN", "listn"]);
}

#[test]
fn a_bad_file_service_names_its_entry() {
    let home = Home::with_config("[[service]]\nname = \"broken\"\npattern = \"(\"\n");
    home.run(&["config", "check"])
        .failed_with(2, &[&home.config_path(), "[[service]] #1 (broken)"]);
}

#[test]
fn a_missing_config_file_is_a_clear_error_naming_the_path() {
    let home = Home::new();
    let missing = home.dir.path().join("nowhere.toml");
    let mut cmd = tessera();
    cmd.arg("--config").arg(&missing).args(["config", "check"]);
    run(cmd, None).failed_with(
        2,
        &[
            &missing.display().to_string(),
            "cannot read the config file",
        ],
    );
}

// ---- serve ----

#[tokio::test]
async fn serve_announces_its_address_on_the_first_line_and_serves_there() {
    let home = Home::new();
    let server = home.serve(&[]);
    let page = reqwest::get(server.url("/cas/login")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("name=\"lt\""));
}

#[tokio::test]
async fn serve_demo_prints_credentials_that_log_in_and_validate_with_attributes() {
    let home = Home::new();
    let server = home.serve(&["--demo"]);
    assert_eq!(server.next_line(), "demo user: demo");
    let password_line = server.next_line();
    let password = password_line
        .strip_prefix("demo password: ")
        .unwrap_or_else(|| panic!("{password_line:?}"))
        .to_owned();
    assert!(password.len() >= 12, "{password:?}");
    assert!(server.next_line().starts_with("demo service: "));
    assert_eq!(
        server.next_line(),
        format!("log in at: {}", server.url("/cas/login"))
    );

    let service = "http://localhost:8000/";
    let jar = Arc::default();
    let ticket = log_in(&browser(&jar), &server, service, "demo", &password)
        .await
        .ticket_for(service);
    let answer = validate(&server, "/cas/p3/serviceValidate", &ticket, service).await;
    for needle in [
        "<cas:authenticationSuccess>",
        "<cas:user>demo</cas:user>",
        "<cas:mail>demo@example.org</cas:mail>",
        "<cas:displayName>Demo User</cas:displayName>",
        "<cas:eduPersonAffiliation>member</cas:eduPersonAffiliation>",
        "<cas:eduPersonAffiliation>staff</cas:eduPersonAffiliation>",
    ] {
        assert!(answer.contains(needle), "missing {needle}: {answer}");
    }
}

#[tokio::test]
async fn serve_demo_again_on_the_same_database_gives_a_new_password() {
    let home = Home::new();
    let first = home.serve(&["--demo"]);
    first.next_line();
    let old = first.next_line().replace("demo password: ", "");
    drop(first);

    let second = home.serve(&["--demo"]);
    second.next_line();
    let new = second.next_line().replace("demo password: ", "");
    assert_ne!(old, new);
    let service = "http://127.0.0.1:9/app";
    let jar = Arc::default();
    let refused = log_in(&browser(&jar), &second, service, "demo", &old).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    log_in(&browser(&jar), &second, service, "demo", &new)
        .await
        .ticket_for(service);
    assert_eq!(home.users().len(), 1, "{:?}", home.users());
    let demo_services = home
        .services()
        .into_iter()
        .filter(|s| s[0] == "demo")
        .count();
    assert_eq!(demo_services, 1);
}

#[test]
fn serve_with_a_bad_config_exits_2_without_a_panic() {
    let home = Home::with_config("[server]\nlisen = \"x\"\n");
    home.run(&["serve", "--listen", "127.0.0.1:0"])
        .failed_with(2, &[&home.config_path(), "lisen"]);
}

#[test]
fn serve_fails_cleanly_when_its_address_is_taken() {
    let home = Home::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = home
        .run(&["serve", "--listen", &addr])
        .failed_saying(&["cannot listen on", &addr]);
    assert!(out.stdout.is_empty(), "nothing announced: {out:?}");
}

#[test]
fn serve_fails_cleanly_when_the_database_cannot_be_created() {
    let home = Home::new();
    let file = home.dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let url = format!("sqlite://{}/tessera.db", file.display());
    let out = home
        .run_with_env(
            &["serve", "--listen", "127.0.0.1:0"],
            &[("TESSERA_DATABASE__URL", &url)],
        )
        .failed_saying(&["database"]);
    assert!(out.stdout.is_empty(), "nothing announced: {out:?}");
}

#[tokio::test]
async fn a_session_and_a_ticket_handed_out_survive_kill_9() {
    let home = Home::new();
    home.add_user("alice", PASSWORD, &["mail=alice@example.org"]);
    home.add_service(&["app", "--prefix", APP, "--release-all"]);
    let jar = Arc::default();
    let client = browser(&jar);

    let first = home.serve(&[]);
    let login = log_in(&client, &first, APP, "alice", PASSWORD).await;
    let from_login = login.ticket_for(APP);
    let tgc = login.tgc();
    let from_sso = revisit_login(&client, &first, APP).await.ticket_for(APP);
    first.kill_9();

    let second = home.serve(&[]);
    for ticket in [&from_login, &from_sso] {
        let answer = validate(&second, "/cas/serviceValidate", ticket, APP).await;
        assert!(answer.contains("<cas:user>alice</cas:user>"), "{answer}");
        assert!(
            answer.contains("<cas:mail>alice@example.org</cas:mail>"),
            "{answer}"
        );
    }

    // The same browser (cookies ignore ports) still has its single sign-on session.
    let sso = revisit_login(&client, &second, APP).await;
    let ticket = sso.ticket_for(APP);
    let answer = validate(&second, "/cas/serviceValidate", &ticket, APP).await;
    assert!(answer.contains("<cas:user>alice</cas:user>"), "{answer}");

    // And so does anyone presenting the cookie itself.
    let url = second.url(&format!("/cas/login?service={}", enc(APP)));
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = bare
        .get(url)
        .header(COOKIE, format!("TGC={tgc}"))
        .send()
        .await
        .unwrap();
    Reply::read(r).await.ticket_for(APP);
}

#[tokio::test]
async fn sigterm_stops_the_server_with_status_0() {
    let home = Home::new();
    let mut server = home.serve(&[]);
    // Serve one request first: see the ignored test below for a signal sent earlier.
    let page = reqwest::get(server.url("/cas/login")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    server.signal("TERM");
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; stderr:\n{}",
        server.stderr()
    );
    assert!(!server.stderr().contains("panicked"));
}

#[tokio::test]
async fn sigint_stops_the_server_with_status_0() {
    let home = Home::new();
    let mut server = home.serve(&[]);
    let page = reqwest::get(server.url("/cas/login")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    server.signal("INT");
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; stderr:\n{}",
        server.stderr()
    );
}

#[test]
fn sigterm_right_after_the_first_line_stops_the_server_with_status_0() {
    let home = Home::new();
    let mut server = home.start_serve(&[]);
    // A shell already waiting sends the signal as soon as it is told to: no fork on the way.
    let mut signaller = Command::new("sh")
        .arg("-c")
        .arg(format!("read go && kill -TERM {}", server.child.id()))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut go = signaller.stdin.take().unwrap();
    server.read_announcement();
    go.write_all(b"go\n").unwrap();
    drop(go);
    assert!(signaller.wait().unwrap().success());
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; stderr:\n{}",
        server.stderr()
    );
}

#[tokio::test]
async fn the_operations_listener_serves_metrics_health_and_readiness() {
    let home = Home::with_config("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    home.add_user("alice", PASSWORD, &[]);
    let server = home.serve(&[]);
    let announced = server.next_line();
    let metrics_url =
        Regex::new(r"^metrics listening on (http://127\.0\.0\.1:[1-9][0-9]*/metrics)$")
            .unwrap()
            .captures(&announced)
            .unwrap_or_else(|| panic!("unexpected second line {announced:?}"))[1]
            .to_owned();
    let operations = metrics_url.trim_end_matches("/metrics").to_owned();
    // One good and one bad password on the REST API, one ticket issued.
    let client = reqwest::Client::new();
    for (password, expected) in [
        (PASSWORD, StatusCode::CREATED),
        ("wrong", StatusCode::UNAUTHORIZED),
    ] {
        let r = client
            .post(server.url("/cas/v1/tickets"))
            .form(&[("username", "alice"), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
    let validation = client
        .get(server.url("/cas/p3/serviceValidate?service=https%3A%2F%2Fa%2F&ticket=ST-forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(validation.status(), StatusCode::OK);
    let metrics = reqwest::get(&metrics_url).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = metrics.text().await.unwrap();
    for line in [
        "tessera_logins_total{outcome=\"success\"} 1",
        "tessera_logins_total{outcome=\"failure\"} 1",
        "tessera_ticket_validations_total{outcome=\"failure\"} 1",
        "tessera_ticket_validation_seconds_count 1",
        "# TYPE tessera_db_pool_connections gauge",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    for origin in [operations.as_str(), server.origin.as_str()] {
        for (path, body) in [("/healthz", "ok\n"), ("/readyz", "ready\n")] {
            let r = reqwest::get(format!("{origin}{path}")).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{origin}{path}");
            assert_eq!(r.text().await.unwrap(), body);
        }
    }
    // Metrics are not on the main listener.
    let r = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    use std::io::Read;
    let home = Home::new();
    home.add_user("alice", PASSWORD, &[]);
    let mut server = home.serve(&[]);
    let addr = server.origin.trim_start_matches("http://").to_owned();
    let body = format!("username=alice&password={}", enc(PASSWORD));
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The headers, asking to wait before the body: "100 Continue" comes back once the handler
    // is reading the body, so the request is surely in flight when the signal arrives.
    write!(
        stream,
        "POST /cas/v1/tickets HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len(),
    )
    .unwrap();
    stream.flush().unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    server.signal("TERM");
    // Shutdown has begun once the listener stops accepting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the request in flight was not answered: {response:?}"
    );
    let status = server.wait_for_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}");
}

// ---- migrate ----

/// Rewrites `home`'s config file to use the database at `url` (with cheap hashes).
fn use_database(home: &Home, url: &str) {
    let text = format!(
        "[database]\nurl = \"{url}\"\n\n[password]\nargon2_memory_kib = 256\nargon2_iterations = 1\n"
    );
    std::fs::write(&home.config, text).unwrap();
}

#[tokio::test]
async fn migrate_copies_a_sqlite_deployment_into_postgres_where_it_carries_on() {
    let database = crate::support::postgres::PostgresDatabase::create();
    let old = Home::new();
    old.add_user("alice", PASSWORD, &["mail=alice@example.org"]);
    old.add_service(&[
        "app",
        "--prefix",
        APP,
        "--release-all",
        "--logout-type",
        "none",
    ]);
    let jar = Arc::default();
    let client = browser(&jar);
    let mut server = old.serve(&[]);
    let handed_out = log_in(&client, &server, APP, "alice", PASSWORD)
        .await
        .ticket_for(APP);
    server.signal("TERM");
    server.wait_for_exit(PATIENCE);

    // No config file: the two URLs are all the command needs.
    let mut cmd = tessera();
    cmd.args([
        "migrate",
        "--from",
        &old.database_url(),
        "--to",
        &database.url,
    ]);
    let out = run(cmd, None).succeeded();
    let copied = |table: &str| -> u64 {
        let line = out
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no {table} line: {out:?}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(out.stdout.starts_with("copied "), "{out:?}");
    for (table, rows) in [
        ("users", 1),
        ("services", 1),
        ("sessions", 1),
        ("service_tickets", 1),
        ("signing_keys", 2),
    ] {
        assert_eq!(copied(table), rows, "{out:?}");
    }
    assert!(out.stdout.contains("[database] url"), "{out:?}");
    assert!(out.stdout.contains(&database.url), "{out:?}");

    // Copying again would merge two deployments: refused, and nothing changes.
    let mut again = tessera();
    again.args([
        "migrate",
        "--from",
        &old.database_url(),
        "--to",
        &database.url,
    ]);
    run(again, None).failed_with(1, &["the destination database is not empty"]);

    // The new database carries on: users, the ticket handed out, the browser's session.
    let new = Home::new();
    use_database(&new, &database.url);
    assert_eq!(new.users(), ["alice\tmail=alice@example.org"]);
    let server = new.serve(&[]);
    let answer = validate(&server, "/cas/serviceValidate", &handed_out, APP).await;
    assert!(answer.contains("<cas:user>alice</cas:user>"), "{answer}");
    let replay = validate(&server, "/cas/serviceValidate", &handed_out, APP).await;
    assert!(replay.contains("INVALID_TICKET"), "{replay}");
    let sso = revisit_login(&client, &server, APP).await.ticket_for(APP);
    let answer = validate(&server, "/cas/serviceValidate", &sso, APP).await;
    assert!(
        answer.contains("<cas:mail>alice@example.org</cas:mail>"),
        "{answer}"
    );
    let fresh = Arc::default();
    let ticket = log_in(&browser(&fresh), &server, APP, "alice", PASSWORD)
        .await
        .ticket_for(APP);
    let answer = validate(&server, "/cas/serviceValidate", &ticket, APP).await;
    assert!(answer.contains("<cas:user>alice</cas:user>"), "{answer}");
}

#[test]
fn migrate_refuses_a_missing_source_the_same_database_and_unknown_urls() {
    let home = Home::new();
    let missing = home.database_url();
    let elsewhere = format!("sqlite://{}/copy.db", home.dir.path().display());
    for (from, to, needle) in [
        (missing.as_str(), elsewhere.as_str(), "no database file"),
        (missing.as_str(), missing.as_str(), "the same database"),
        ("mysql://db/x", elsewhere.as_str(), "unsupported database"),
        (missing.as_str(), "ftp://db/x", "unsupported database"),
    ] {
        let mut cmd = tessera();
        cmd.args(["migrate", "--from", from, "--to", to]);
        run(cmd, None).failed_with(2, &[needle]);
    }
    assert!(
        !home.dir.path().join("tessera.db").exists() && !home.dir.path().join("copy.db").exists(),
        "nothing is created"
    );

    // An empty source has nothing to copy.
    home.run(&["user", "list"]).succeeded();
    let mut cmd = tessera();
    cmd.args(["migrate", "--from", &missing, "--to", &elsewhere]);
    run(cmd, None).failed_with(2, &["nothing to copy"]);
    assert!(!home.dir.path().join("copy.db").exists());
}

#[tokio::test]
async fn user_unlock_lifts_a_lock_and_the_audit_log_tells_the_story() {
    let home = Home::with_config("[login]\nfirst_delay = \"0s\"\n");
    home.add_user("alice", PASSWORD, &[]);
    let server = home.serve(&[]);
    let client = reqwest::Client::new();
    let login = |password: &'static str| {
        client
            .post(server.url("/cas/v1/tickets"))
            .form(&[("username", "alice"), ("password", password)])
            .send()
    };
    for _ in 0..5 {
        assert_eq!(
            login("wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = login(PASSWORD).await.unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let out = home.run(&["user", "unlock", "alice"]).succeeded();
    assert_eq!(
        out.stdout,
        "user alice unlocked: its failed logins are forgotten\n"
    );
    assert_eq!(login(PASSWORD).await.unwrap().status(), StatusCode::CREATED);
    let again = home.run(&["user", "unlock", "alice"]).succeeded();
    assert_eq!(again.stdout, "user alice had no failed logins to forget\n");

    // One audit event per login outcome, on the `audit` target, without the password.
    let log = server.stderr();
    for needle in [
        "audit: event=\"login_failed\" user=alice client=127.0.0.1",
        "audit: event=\"login_throttled\" user=alice client=127.0.0.1",
        "audit: event=\"login\" user=alice client=127.0.0.1",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in\n{log}");
    }
    assert!(!log.contains(PASSWORD));
    let admin = home
        .run_with_env(
            &["user", "unlock", "alice"],
            &[("TESSERA_LOG", "audit=info")],
        )
        .succeeded();
    assert!(
        admin
            .stderr
            .contains("audit: event=\"admin\" action=\"user unlock\" subject=alice"),
        "{}",
        admin.stderr
    );
}

#[tokio::test]
async fn serve_terminates_tls_and_reloads_the_certificate_on_sighup() {
    use crate::support::tls::TestCa;
    let home = Home::new();
    let (first_ca, second_ca) = (TestCa::new("first CA"), TestCa::new("second CA"));
    let (cert_path, key_path) = (
        home.dir.path().join("cert.pem"),
        home.dir.path().join("key.pem"),
    );
    let install = |ca: &TestCa| {
        let (cert, key) = ca.server_pem();
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
    };
    install(&first_ca);
    home.write_config(&format!(
        "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert_path.display().to_string(),
        key_path.display().to_string()
    ));
    let mut server = home.start_serve(&[]);
    let first = server.next_line();
    let origin = Regex::new(r"^tessera listening on (https://127\.0\.0\.1:[1-9][0-9]*)$")
        .unwrap()
        .captures(&first)
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))[1]
        .to_owned();
    let trusting = |ca: &TestCa| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let page = trusting(&first_ca)
        .get(format!("{origin}/cas/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // Plain http on the TLS port gets nothing usable.
    let plain = reqwest::get(origin.replace("https://", "http://")).await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));

    // A broken file on SIGHUP keeps the current certificate.
    std::fs::write(&key_path, "not a key").unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("TLS reload failed") {
        assert!(
            Instant::now() < deadline,
            "no reload error logged:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.stderr().contains("key.pem"), "{}", server.stderr());
    let still = trusting(&first_ca)
        .get(format!("{origin}/healthz"))
        .send()
        .await;
    assert_eq!(still.unwrap().status(), StatusCode::OK);

    // A new certificate on SIGHUP is served to new connections.
    install(&second_ca);
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = trusting(&second_ca)
            .get(format!("{origin}/healthz"))
            .send()
            .await
        {
            assert_eq!(r.status(), StatusCode::OK);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new certificate not served:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(trusting(&first_ca)
        .get(format!("{origin}/healthz"))
        .send()
        .await
        .is_err());
    server.signal("TERM");
    assert_eq!(
        server.wait_for_exit(Duration::from_secs(10)).code(),
        Some(0)
    );
}
