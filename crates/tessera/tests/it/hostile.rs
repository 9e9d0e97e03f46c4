//! Hostile input, one table per endpoint family: each row is a request an attacker or a broken
//! client could send and the answer expected, in the endpoint's own format (CAS XML or JSON, CAS 1.0
//! `no`, a SAML SOAP envelope, an OAuth JSON error, an HTML page, plain text).
//!
//! Requests go over a bare TCP connection, byte for byte as written (no client-side URL
//! normalisation: `..`, `%00`, raw non-UTF-8 bytes, odd `Host` headers all reach the server as
//! sent). After every row the runner also checks what must hold whatever the input:
//!
//! - no 5xx;
//! - no `Location` that a browser would resolve off-site, except to a registered service or
//!   redirect URI; no other header naming the attacker's host;
//! - no cookie set but the ticket-granting cookie, and that one only by rows that may log in;
//! - HTML and XML bodies carry no unescaped markup from the request, and no link, form or frame to
//!   the attacker's host or to a `javascript:`/`data:` URL; XML is well formed (quick-xml);
//! - the session's ticket-granting ticket is never echoed (except by the REST resource it names);
//! - the store is unchanged (sessions, users, services, clients) unless the row may log in;
//! - a witness: a browser logged in before the table gets a fresh service ticket before each row,
//!   and that ticket still validates after it (so no row ended the session or burnt the ticket).
//!
//! Requests may name the witness's tickets with placeholders (`{ST}`, `{TGT}`, …, see
//! [`Vars`]), raw or percent-encoded; they are filled in just before the row is sent.
//!
//! A row that reveals a bug is kept, fails with expected vs actual, and is marked `// BUG:`; once
//! fixed, it stays as a regression row.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use quick_xml::events::Event;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera::clock::Clock as _;
use tessera_protocol::ticket::{random_base62, LoginTicketId};
use tessera_protocol::Timestamp;
use tessera_store::UserRecord;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::oidc::{client_spec, issuer, register, secret_of, CLIENT, POST_LOGOUT, REDIRECT};
use crate::support::{enc, Browser, Page, TestServer, PASSWORD, SERVICE, USER};

/// The CAS base path of the test server.
const CAS: &str = "/cas";
/// The OpenID Connect provider's path.
const OIDC: &str = "/oidc";
/// Where an attacker would like users to go.
const EVIL: &str = "https://evil.example/";
/// Markup that must never come back unescaped.
const XSS: &str = "<script>alert(1)</script>";
/// Another, for attribute contexts.
const XSS_ATTR: &str = "\"><svg onload=alert(1)>";
/// A `state`/`nonce` with markup, quotes, CRLF, an encoded CRLF and a parameter of its own.
const HOSTILE_STATE: &str = "<script>alert(1)</script>\"' \r\n%0d%0a&x=y#frag";
const FORM: &str = "application/x-www-form-urlencoded";
/// Origins (besides the server's own) a `Location` may point to: the registered services and the
/// relying party's registered redirect and post-logout URIs.
const REGISTERED_ORIGINS: [&str; 3] = [
    "https://app.example.org",
    "https://other.example.org",
    "https://rp.example.org",
];

/// Service URLs that must never be redirected to nor given a ticket: each names, or looks like it
/// names, a registered service while a browser would go somewhere else (or run script).
const TRICKY_SERVICES: &[(&str, &str)] = &[
    ("userinfo @", "https://app.example.org@evil.example/"),
    (
        "userinfo @ with a port",
        "https://app.example.org:443@evil.example/",
    ),
    (
        "userinfo with a password",
        "https://app.example.org:pw@evil.example/",
    ),
    ("backslashes", "https:\\\\evil.example"),
    (
        "backslash before @",
        "https://app.example.org\\@evil.example/",
    ),
    ("slash-backslash", "https:/\\evil.example/"),
    ("protocol-relative", "//evil.example/"),
    ("slash-backslash relative", "/\\evil.example/"),
    (
        "registered URL in the path",
        "https://evil.example/https://app.example.org/",
    ),
    (
        "registered host as a subdomain",
        "https://app.example.org.evil.example/",
    ),
    (
        "registered URL in the query",
        "https://evil.example/?https://app.example.org/",
    ),
    (
        "registered URL in the fragment",
        "https://evil.example#https://app.example.org/",
    ),
    (
        "double-encoded slash before @",
        "https://app.example.org%2f@evil.example/",
    ),
    (
        "CRLF header injection (encoded newlines)",
        "https://app.example.org/\r\nSet-Cookie: injected=1",
    ),
    ("bare CRLF", "\r\nSet-Cookie: injected=1"),
    ("NUL", "https://app.example.org/\0"),
    ("tab in the host", "https://app.exa\tmple.org/"),
    ("leading space", " https://app.example.org/"),
    ("javascript:", "javascript:alert(1)"),
    (
        "JavaScript: mixed case with a registered URL",
        "JaVaScRiPt:alert(1)//https://app.example.org/",
    ),
    ("data:", "data:text/html,<script>alert(1)</script>"),
    (
        "IDN homograph (Cyrillic a)",
        "https://\u{430}pp.example.org/",
    ),
    ("fullwidth dots", "https://app\u{ff0e}example\u{ff0e}org/"),
    ("plain http (downgrade)", "http://app.example.org/"),
    ("bad UTF-8 (decoded to U+FFFD)", "\u{fffd}\u{fffd}"),
];

// --- requests ---------------------------------------------------------------------------------

/// One request, as bytes on the wire.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    /// The request target (path and query, or an absolute URL), sent as is.
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    /// Send the body with `Transfer-Encoding: chunked` instead of `Content-Length`.
    chunked: bool,
    /// Replaces the `Host` header (empty: none is sent).
    host: Option<Vec<u8>>,
}

fn request(method: &'static str, target: impl AsRef<[u8]>) -> Req {
    Req {
        method,
        target: target.as_ref().to_vec(),
        headers: Vec::new(),
        body: None,
        chunked: false,
        host: None,
    }
}

fn get(target: impl AsRef<[u8]>) -> Req {
    request("GET", target)
}

fn post(target: impl AsRef<[u8]>, content_type: &str, body: impl AsRef<[u8]>) -> Req {
    request("POST", target)
        .header("content-type", content_type)
        .body(body)
}

/// A urlencoded POST whose body is written as is (it may hold bad escapes or raw bytes).
fn post_form(target: impl AsRef<[u8]>, body: impl AsRef<[u8]>) -> Req {
    post(target, FORM, body)
}

impl Req {
    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    fn cookie(self, value: impl AsRef<[u8]>) -> Self {
        self.header("cookie", value)
    }

    fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }

    fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    fn host(mut self, host: impl AsRef<[u8]>) -> Self {
        self.host = Some(host.as_ref().to_vec());
        self
    }

    /// The request with every placeholder replaced.
    fn fill(&self, vars: &Vars) -> Self {
        let mut out = self.clone();
        out.target = vars.fill(&out.target);
        for (_, value) in &mut out.headers {
            *value = vars.fill(value);
        }
        if let Some(body) = &out.body {
            out.body = Some(vars.fill(body));
        }
        out
    }
}

/// `a=1&b=2`, form-encoded.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn random(len: usize) -> String {
    random_base62(&mut rand::rngs::OsRng, len)
}

/// Sends `req` to `addr` over a fresh connection and reads the whole answer. The body is written
/// while the answer is read, and the connection is kept open for writing until then (an early
/// answer, such as 413, must not be lost to a half-closed connection).
async fn send(addr: &str, req: &Req) -> Result<Page, String> {
    let mut head = Vec::new();
    head.extend_from_slice(req.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(&req.target);
    head.extend_from_slice(b" HTTP/1.1\r\n");
    match &req.host {
        None => head.extend_from_slice(format!("host: {addr}\r\n").as_bytes()),
        Some(h) if h.is_empty() => {}
        Some(h) => {
            head.extend_from_slice(b"host: ");
            head.extend_from_slice(h);
            head.extend_from_slice(b"\r\n");
        }
    }
    head.extend_from_slice(b"connection: close\r\n");
    for (name, value) in &req.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    let mut payload = head;
    match (&req.body, req.chunked) {
        (None, _) => payload.extend_from_slice(b"\r\n"),
        (Some(body), false) => {
            payload.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            payload.extend_from_slice(body);
        }
        (Some(body), true) => {
            payload.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            for chunk in body.chunks(16 * 1024) {
                payload.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                payload.extend_from_slice(chunk);
                payload.extend_from_slice(b"\r\n");
            }
            payload.extend_from_slice(b"0\r\n\r\n");
        }
    }
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&payload).await;
        let _ = writer.flush().await;
        writer
    });
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A reset after the answer (the server closed with our body unread) is fine.
                Err(e) if raw.windows(4).any(|w| w == b"\r\n\r\n") => {
                    let _ = e;
                    return Ok(());
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    })
    .await
    .map_err(|_| "no complete answer within 30 s".to_owned())?;
    read?;
    let _writer = writing.await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Page, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(raw)
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let code: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let status = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
    let mut headers = HeaderMap::new();
    // Header values are re-read from the bytes: they may hold non-UTF-8 bytes.
    let mut offset = status_line.len() + 2;
    for line in lines {
        let bytes = &raw[offset..offset + line.len()];
        offset += line.len() + 2;
        let colon = bytes
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        let name = HeaderName::from_bytes(&bytes[..colon]).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_bytes(bytes[colon + 1..].trim_ascii())
            .map_err(|e| format!("header {name}: {e}"))?;
        headers.append(name, value);
    }
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Ok(Page {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

// --- placeholders -----------------------------------------------------------------------------

/// The values placeholders stand for, made fresh for each row.
struct Vars(Vec<(&'static str, String)>);

impl Vars {
    fn fill(&self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for (name, value) in &self.0 {
            let encoded = name.replace('{', "%7B").replace('}', "%7D");
            out = replace_bytes(&out, name.as_bytes(), value.as_bytes());
            out = replace_bytes(&out, encoded.as_bytes(), enc(value).as_bytes());
        }
        out
    }
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Swaps the case of ASCII letters.
fn swap_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

// --- the witness --------------------------------------------------------------------------------

/// A browser logged in before the table: its session must outlive every row.
struct Witness {
    browser: Browser,
    tgt: String,
    sid: String,
}

impl Witness {
    async fn log_in(server: &TestServer) -> Self {
        let browser = server.browser();
        let page = browser.log_in_as(None, USER, PASSWORD, &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let tgt = page
            .set_cookies()
            .iter()
            .find_map(|c| c.strip_prefix("TGC="))
            .and_then(|c| c.split(';').next())
            .expect("the login sets the TGC")
            .to_owned();
        let sessions = server.store.list_sessions(Some(USER)).await.unwrap();
        let sid = sessions
            .iter()
            .max_by_key(|s| s.authenticated_at)
            .expect("a session")
            .id
            .as_str()
            .to_owned();
        Self { browser, tgt, sid }
    }

    /// A fresh service ticket for [`SERVICE`] from the witness's session.
    async fn ticket(&self) -> Result<String, String> {
        let page = self
            .browser
            .get(&format!("/login?service={}", enc(SERVICE)))
            .await;
        let location = page
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match location.rsplit_once("ticket=") {
            Some((_, ticket)) if page.status == StatusCode::FOUND => Ok(ticket.to_owned()),
            _ => Err(format!(
                "the witness's session no longer gives tickets: {} {location:?}",
                page.status
            )),
        }
    }

    async fn still_validates(&self, server: &TestServer, ticket: &str) -> Result<(), String> {
        let (status, body) = server
            .validate("/serviceValidate", ticket, SERVICE, "")
            .await;
        if status == StatusCode::OK && body.contains("<cas:user>alice</cas:user>") {
            Ok(())
        } else {
            Err(format!(
                "the ticket issued before the row no longer validates: {status} {body}"
            ))
        }
    }

    async fn vars(&self, server: &TestServer, st: &str) -> Vars {
        let now = server.clock.now();
        let store = &server.store;
        let lt = LoginTicketId::generate(&mut rand::rngs::OsRng);
        store
            .put_login_ticket(&lt.key(), now.plus(Duration::from_secs(600)))
            .await
            .unwrap();
        let expired = LoginTicketId::generate(&mut rand::rngs::OsRng);
        store
            .put_login_ticket(
                &expired.key(),
                Timestamp::from_unix_millis(now.unix_millis() - 1_000),
            )
            .await
            .unwrap();
        let used = LoginTicketId::generate(&mut rand::rngs::OsRng);
        store
            .put_login_ticket(&used.key(), now.plus(Duration::from_secs(600)))
            .await
            .unwrap();
        assert!(store.take_login_ticket(&used.key(), now).await.unwrap());
        let tgt = &self.tgt;
        Vars(vec![
            ("{ST}", st.to_owned()),
            ("{ST_LOWER}", format!("st-{}", &st[3..])),
            ("{TGT}", tgt.clone()),
            ("{TGT_CUT}", tgt[..tgt.len() - 4].to_owned()),
            ("{TGT_SWAPPED}", format!("TGT-{}", swap_case(&tgt[4..]))),
            ("{SID}", self.sid.clone()),
            ("{LT}", lt.as_str().to_owned()),
            ("{LT_EXPIRED}", expired.as_str().to_owned()),
            ("{LT_USED}", used.as_str().to_owned()),
        ])
    }
}

// --- expectations -------------------------------------------------------------------------------

/// What an answer's body must be.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// CAS 2.0/3.0 XML: `<cas:serviceResponse>`, well formed, containing this.
    CasXml(&'static str),
    /// CAS JSON: `{"serviceResponse": …}`, containing this.
    CasJson(&'static str),
    /// CAS 1.0 failure: `no` and an empty line (or just `no\n`, as Tessera writes it).
    Cas1No,
    /// A SAML 1.1 SOAP envelope with this `samlp:StatusCode`.
    Soap(&'static str),
    /// An OAuth JSON error with this `error` code.
    OAuth(&'static str),
    /// Any JSON document containing this.
    Json(&'static str),
    /// An HTML page containing this.
    Html(&'static str),
    /// Plain text containing this.
    Text(&'static str),
    /// A redirect whose `Location` starts with this.
    Redirect(&'static str),
    /// No body.
    Empty,
}

/// What a row may do to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreRule {
    /// Nothing changes.
    Unchanged,
    /// At most one new session (the row logs in), nothing else.
    MayLogIn,
}

/// An extra check of one row.
type Check = fn(&Page) -> Result<(), String>;

struct Row {
    what: String,
    req: Req,
    /// Acceptable answers: status and body.
    expect: Vec<(u16, Body)>,
    store: StoreRule,
    check: Option<Check>,
    /// The response may contain the witness's TGT (it is the resource asked for).
    echoes_tgt: bool,
}

fn row(what: impl Into<String>, req: Req, status: u16, body: Body) -> Row {
    Row {
        what: what.into(),
        req,
        expect: vec![(status, body)],
        store: StoreRule::Unchanged,
        check: None,
        echoes_tgt: false,
    }
}

impl Row {
    /// Another acceptable answer.
    fn or(mut self, status: u16, body: Body) -> Self {
        self.expect.push((status, body));
        self
    }

    fn may_log_in(mut self) -> Self {
        self.store = StoreRule::MayLogIn;
        self
    }

    fn check(mut self, check: Check) -> Self {
        self.check = Some(check);
        self
    }

    fn echoes_tgt(mut self) -> Self {
        self.echoes_tgt = true;
        self
    }
}

// --- the runner ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    sessions: Vec<String>,
    users: Vec<String>,
    services: Vec<String>,
    clients: Vec<String>,
}

async fn snapshot(server: &TestServer) -> Snapshot {
    let store = &server.store;
    let mut sessions: Vec<String> = store
        .list_sessions(None)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id.as_str().to_owned())
        .collect();
    sessions.sort();
    Snapshot {
        sessions,
        users: store
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect(),
        services: store
            .list_services()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect(),
        clients: store
            .list_clients()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect(),
    }
}

/// Runs every row, then fails with all the rows that did not hold.
async fn run_table(server: &TestServer, witness: &mut Witness, table: &str, rows: Vec<Row>) {
    let addr = server.origin().trim_start_matches("http://").to_owned();
    eprintln!("[{table}] {} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        if let Err(e) = run_row(server, witness, &addr, row).await {
            failures.push(format!("[{table}] {}:\n    {e}", row.what));
            // Go on with a live witness.
            if witness.ticket().await.is_err() {
                *witness = Witness::log_in(server).await;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

async fn run_row(
    server: &TestServer,
    witness: &Witness,
    addr: &str,
    row: &Row,
) -> Result<(), String> {
    let st = witness.ticket().await?;
    let vars = witness.vars(server, &st).await;
    let before = snapshot(server).await;
    let page = send(addr, &row.req.fill(&vars)).await?;
    let mut problems = Vec::new();

    if page.status.is_server_error() {
        problems.push(format!("server error {} for client input", page.status));
    }
    let outcomes: Vec<Result<(), String>> = row
        .expect
        .iter()
        .map(|(status, body)| {
            if page.status.as_u16() != *status {
                return Err(format!("expected status {status}"));
            }
            body_matches(*body, &page).map_err(|e| format!("status {status}: {e}"))
        })
        .collect();
    if row.expect.len() > 1 {
        eprintln!("{}: answered {}", row.what, page.status);
    }
    if !outcomes.iter().any(Result::is_ok) {
        let why: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
        let wanted: Vec<String> = row
            .expect
            .iter()
            .map(|(s, b)| format!("{s} {b:?}"))
            .collect();
        problems.push(format!(
            "expected {} ({})",
            wanted.join(" or "),
            why.join("; ")
        ));
    }
    problems.extend(generic_problems(server, row, &page, &witness.tgt));
    if let Some(check) = row.check {
        if let Err(e) = check(&page) {
            problems.push(e);
        }
    }

    let after = snapshot(server).await;
    match row.store {
        StoreRule::Unchanged if after != before => {
            problems.push(format!("the store changed: {before:?} -> {after:?}"));
        }
        StoreRule::MayLogIn => {
            let (mut b, mut a) = (before.clone(), after.clone());
            let gone: Vec<&String> = b
                .sessions
                .iter()
                .filter(|s| !a.sessions.contains(s))
                .collect();
            if !gone.is_empty() || a.sessions.len() > b.sessions.len() + 1 {
                problems.push(format!(
                    "sessions changed beyond one new login: {:?} -> {:?}",
                    b.sessions, a.sessions
                ));
            }
            b.sessions.clear();
            a.sessions.clear();
            if a != b {
                problems.push(format!("the store changed: {b:?} -> {a:?}"));
            }
        }
        StoreRule::Unchanged => {}
    }
    if let Err(e) = witness.still_validates(server, &st).await {
        problems.push(e);
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n    got: {}",
            problems.join("\n    "),
            describe(&page)
        ))
    }
}

fn describe(page: &Page) -> String {
    let location = page
        .headers
        .get(LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut body: String = page.body.chars().take(600).collect();
    if body.len() < page.body.len() {
        body.push('…');
    }
    format!(
        "{} content-type={:?} location={location:?} body={body:?}",
        page.status,
        content_type(page)
    )
}

fn content_type(page: &Page) -> String {
    page.headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
        .unwrap_or_default()
}

fn body_matches(expected: Body, page: &Page) -> Result<(), String> {
    let ct = content_type(page);
    let body = &page.body;
    let has_ct = |prefix: &str| {
        if ct.starts_with(prefix) {
            Ok(())
        } else {
            Err(format!("content type {ct:?} is not {prefix}"))
        }
    };
    let contains = |needle: &str| {
        if body.contains(needle) {
            Ok(())
        } else {
            Err(format!("the body lacks {needle:?}"))
        }
    };
    match expected {
        Body::CasXml(needle) => {
            has_ct("application/xml")?;
            contains("<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\">")?;
            well_formed(body)?;
            contains(needle)
        }
        Body::CasJson(needle) => {
            has_ct("application/json")?;
            let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
            if !v["serviceResponse"].is_object() {
                return Err("no serviceResponse object".into());
            }
            contains(needle)
        }
        Body::Cas1No => {
            has_ct("text/plain")?;
            if body == "no\n" || body == "no\n\n" {
                Ok(())
            } else {
                Err("not a CAS 1.0 `no`".into())
            }
        }
        Body::Soap(code) => {
            has_ct("text/xml")?;
            well_formed(body)?;
            if !body.starts_with("<SOAP-ENV:Envelope ") {
                return Err("not a SOAP envelope".into());
            }
            contains(&format!("<samlp:StatusCode Value=\"{code}\"/>"))?;
            if code != "samlp:Success" && body.contains("NameIdentifier") {
                return Err("a failure carries a NameIdentifier".into());
            }
            Ok(())
        }
        Body::OAuth(code) => {
            has_ct("application/json")?;
            let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
            if v["error"] == code {
                Ok(())
            } else {
                Err(format!("error is {}, not {code}", v["error"]))
            }
        }
        Body::Json(needle) => {
            has_ct("application/json")?;
            serde_json::from_str::<Value>(body).map_err(|e| format!("not JSON: {e}"))?;
            contains(needle)
        }
        Body::Html(needle) => {
            has_ct("text/html")?;
            if !body.starts_with("<!DOCTYPE html>") {
                return Err("not an HTML page".into());
            }
            contains(needle)
        }
        Body::Text(needle) => {
            has_ct("text/plain")?;
            contains(needle)
        }
        Body::Redirect(prefix) => {
            let location = page
                .headers
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .ok_or("no Location")?;
            if location.starts_with(prefix) {
                Ok(())
            } else {
                Err(format!(
                    "Location {location:?} does not start with {prefix:?}"
                ))
            }
        }
        Body::Empty => {
            if body.is_empty() {
                Ok(())
            } else {
                Err("the body is not empty".into())
            }
        }
    }
}

/// Checks that hold for every row.
fn generic_problems(server: &TestServer, row: &Row, page: &Page, tgt: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // A ticket sent may come back to its sender (CAS failure messages name it); it must not
    // appear anywhere else.
    let sent_tgt = [
        &row.req.target,
        row.req.body.as_ref().unwrap_or(&Vec::new()),
    ]
    .iter()
    .any(|b| {
        let text = String::from_utf8_lossy(b);
        text.contains("{TGT}") || text.contains("%7BTGT%7D")
    });
    let may_echo_tgt = row.echoes_tgt || sent_tgt;
    if let Some(p) = offsite_location(server, page) {
        problems.push(p);
    }
    for (name, value) in &page.headers {
        let text = String::from_utf8_lossy(value.as_bytes());
        if *name != LOCATION && text.contains("evil.example") {
            problems.push(format!("header {name} names the attacker's host: {text:?}"));
        }
        if !may_echo_tgt && text.contains(tgt) {
            problems.push(format!("header {name} leaks the session's TGT"));
        }
    }
    for cookie in page.headers.get_all(SET_COOKIE) {
        let text = String::from_utf8_lossy(cookie.as_bytes());
        match text.split_once('=') {
            Some(("TGC", rest)) if rest.starts_with(';') => {}
            Some(("TGC", _)) if row.store == StoreRule::MayLogIn => {}
            // The language picked with the switcher: a catalog's code, nothing from the request.
            Some(("tessera_lang", rest)) if is_language_cookie(rest) => {}
            _ => problems.push(format!("unexpected Set-Cookie {text:?}")),
        }
    }
    if !may_echo_tgt && page.body.contains(tgt) {
        problems.push("the body leaks the session's TGT".into());
    }
    let ct = content_type(page);
    if ct.contains("html") || ct.contains("xml") {
        for marker in ["<script>alert", "<svg onload", "\r\nSet-Cookie"] {
            if page.body.contains(marker) {
                problems.push(format!("the body echoes {marker:?} unescaped"));
            }
        }
    }
    if ct.contains("html") {
        problems.extend(offsite_links(server, &page.body));
    }
    problems
}

/// `fr; Path=/; …`: a plain language code and the usual attributes.
fn is_language_cookie(rest: &str) -> bool {
    let value = rest.split(';').next().unwrap_or("");
    regex::Regex::new(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
        .unwrap()
        .is_match(value)
        && !rest.contains(['\r', '\n', '<', '"'])
}

/// Links, forms, frames and refreshes of a page that would take a browser off-site or run script.
fn offsite_links(server: &TestServer, html: &str) -> Vec<String> {
    let attribute =
        regex::Regex::new(r#"(?i)\b(href|src|action|formaction)\s*=\s*"([^"]*)""#).unwrap();
    let mut problems = Vec::new();
    for c in attribute.captures_iter(html) {
        let value = unescape_html(&c[2]);
        if let Some(p) = offsite(server, &value) {
            problems.push(format!("the page's {}: {p}", &c[1]));
        }
    }
    let refresh = regex::Regex::new(r#"(?i)http-equiv\s*=\s*"refresh""#).unwrap();
    if refresh.is_match(html) {
        problems.push("the page has a meta refresh".into());
    }
    problems
}

/// Undoes the escaping templates apply to attribute values.
fn unescape_html(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A problem if the `Location` would take a browser off-site (not to us, a registered service or a
/// registered redirect URI) or to something other than http(s).
fn offsite_location(server: &TestServer, page: &Page) -> Option<String> {
    let raw = page.headers.get(LOCATION)?;
    let text = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    offsite(server, &text).map(|p| format!("open redirect: Location {p}"))
}

/// A problem if `text`, resolved against the CAS base as a browser would, is not http(s) or leaves
/// the site (not us, a registered service, a registered redirect URI).
fn offsite(server: &TestServer, text: &str) -> Option<String> {
    offsite_from(&format!("{}/", server.base), &server.origin(), text)
}

fn offsite_from(base: &str, own_origin: &str, text: &str) -> Option<String> {
    let base = url::Url::parse(base).unwrap();
    let target = match base.join(text) {
        Ok(target) => target,
        Err(e) => return Some(format!("{text:?} does not parse: {e}")),
    };
    if !matches!(target.scheme(), "http" | "https") {
        return Some(format!("{text:?} is not http(s)"));
    }
    let origin = target.origin().ascii_serialization();
    if origin == own_origin || REGISTERED_ORIGINS.contains(&origin.as_str()) {
        None
    } else {
        Some(format!("{text:?} takes the browser to {origin}"))
    }
}

#[test]
fn the_off_site_detector_resolves_targets_as_browsers_do() {
    let (base, own) = ("http://127.0.0.1:8080/cas/", "http://127.0.0.1:8080");
    for fine in [
        "/cas/login?service=https%3A%2F%2Fevil.example%2F",
        "login",
        "http://127.0.0.1:8080/x",
        "https://app.example.org/?ticket=ST-1",
        "https://APP.example.org/",
        "https://rp.example.org/callback?state=%2F%2Fevil.example",
    ] {
        assert_eq!(offsite_from(base, own, fine), None, "{fine}");
    }
    for bad in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "\\/evil.example",
        "https:/\\evil.example",
        "https://app.example.org@evil.example/",
        "https://app.example.org.evil.example/",
        "https://\u{430}pp.example.org/",
        "javascript:alert(1)",
        "data:text/html,x",
        "HTTPS://EVIL.EXAMPLE",
    ] {
        assert!(offsite_from(base, own, bad).is_some(), "{bad}");
    }
}

/// Well-formed XML with one root, every text and attribute value unescaping, and no DOCTYPE.
fn well_formed(xml: &str) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let (mut depth, mut roots) = (0usize, 0usize);
    let attributes_ok = |e: &quick_xml::events::BytesStart<'_>| -> Result<(), String> {
        for a in e.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            a.unescape_value()
                .map_err(|e| format!("bad attribute value: {e}"))?;
        }
        Ok(())
    };
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                attributes_ok(&e)?;
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(Event::Empty(e)) => {
                attributes_ok(&e)?;
                if depth == 0 {
                    roots += 1;
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Text(t)) => {
                t.unescape()
                    .map_err(|e| format!("bad text at {}: {e}", reader.buffer_position()))?;
            }
            Ok(Event::DocType(_)) => return Err("the answer has a DOCTYPE".into()),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "malformed XML at byte {}: {e}",
                    reader.buffer_position()
                ))
            }
        }
    }
    if depth != 0 {
        return Err("unclosed elements".into());
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(())
}

// --- row checks ---------------------------------------------------------------------------------

fn hidden_service_is_the_registered_one(page: &Page) -> Result<(), String> {
    match page.input("service") {
        Some(s) if s == SERVICE => Ok(()),
        other => Err(format!(
            "the form carries service {other:?}, not {SERVICE:?}"
        )),
    }
}

fn no_session_cookie_on_an_error(page: &Page) -> Result<(), String> {
    let sets_tgc = page.headers.get_all(SET_COOKIE).iter().any(|c| {
        let text = String::from_utf8_lossy(c.as_bytes());
        text.starts_with("TGC=") && !text.starts_with("TGC=;")
    });
    if sets_tgc && !page.status.is_success() && !page.status.is_redirection() {
        Err(format!("a {} answer sets a new TGC cookie", page.status))
    } else {
        Ok(())
    }
}

fn typed_username_is_escaped(page: &Page) -> Result<(), String> {
    if page.body.contains("value=\"&lt;script&gt;alert(1)&lt;") {
        Ok(())
    } else {
        Err("the username is not shown back escaped in the form".into())
    }
}

/// The `state` (and nothing else) came back percent-encoded in the `Location`.
fn state_is_encoded(page: &Page) -> Result<(), String> {
    let location = page
        .headers
        .get(LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .ok_or("no Location")?;
    if location.contains(['<', '>', '"', '\'', ' ', '\r', '\n']) {
        return Err(format!("Location carries raw metacharacters: {location:?}"));
    }
    let url = url::Url::parse(&location).map_err(|e| format!("{location:?}: {e}"))?;
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    if pairs.iter().any(|(k, _)| k == "x") {
        return Err(format!(
            "the state's `&x=y` became a parameter: {location:?}"
        ));
    }
    match pairs.iter().find(|(k, _)| k == "state") {
        Some((_, v)) if v == HOSTILE_STATE => Ok(()),
        other => Err(format!("state came back as {other:?}")),
    }
}

fn location_has_no_raw_markup(page: &Page) -> Result<(), String> {
    let location = page
        .headers
        .get(LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .ok_or("no Location")?;
    if location.contains(['<', '>', '"', '\'', ' ']) {
        Err(format!("Location carries raw metacharacters: {location:?}"))
    } else {
        Ok(())
    }
}

fn form_post_state_is_escaped(page: &Page) -> Result<(), String> {
    if page.body.contains("name=\"state\" value=\"&lt;script&gt;") {
        Ok(())
    } else {
        Err("the form_post page does not carry the state escaped".into())
    }
}

fn no_guessed_tgt_echoed(page: &Page) -> Result<(), String> {
    if page.body.contains("TGT-xyz") {
        Err("the guessed TGT is echoed".into())
    } else {
        Ok(())
    }
}

fn no_file_contents(page: &Page) -> Result<(), String> {
    if page.body.contains("root:") {
        Err("the answer holds /etc/passwd".into())
    } else {
        Ok(())
    }
}

fn attacker_host_not_reflected(page: &Page) -> Result<(), String> {
    if page.body.contains("evil.example") {
        Err("the Host header is reflected in the body".into())
    } else {
        Ok(())
    }
}

// --- /login ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_refuses_tricky_services_forged_tokens_and_tampered_cookies() {
    let server = TestServer::start().await;
    let mut witness = Witness::log_in(&server).await;
    let login = |query: &str| get(format!("{CAS}/login?{query}"));
    let post_login = |body: &str| post_form(format!("{CAS}/login"), body);
    let unauthorized = Body::Html("Application not authorized");
    let form_page = Body::Html("<h1>Log in</h1>");
    let expired = Body::Html("This login form has expired or was already used");
    let svc = enc(SERVICE);
    let creds = |extra: &[(&str, &str)]| {
        let mut fields = vec![("username", USER), ("password", PASSWORD)];
        fields.extend_from_slice(extra);
        form(&fields)
    };
    let mut rows = Vec::new();

    for (what, service) in TRICKY_SERVICES {
        let s = enc(service);
        rows.push(row(
            format!("GET service {what}"),
            login(&format!("service={s}")),
            403,
            unauthorized,
        ));
        rows.push(row(
            format!("GET service {what}, gateway"),
            login(&format!("service={s}&gateway=true")),
            403,
            unauthorized,
        ));
        rows.push(row(
            format!("GET service {what}, with a session"),
            login(&format!("service={s}")).cookie("TGC={TGT}"),
            403,
            unauthorized,
        ));
        rows.push(row(
            format!("POST service {what}, good lt and password"),
            post_login(&creds(&[("lt", "{LT}"), ("service", service)])),
            403,
            unauthorized,
        ));
    }
    rows.extend([
        // Hosts are case-insensitive, service patterns are not: refusing is safe, and so would be
        // a ticket for the same host.
        row(
            "GET mixed-case host of a registered service",
            login(&format!("service={}", enc("https://APP.example.org/"))).cookie("TGC={TGT}"),
            403,
            unauthorized,
        )
        .or(302, Body::Redirect("https://APP.example.org/?ticket=ST-")),
        row(
            "GET service of 10 KB (URI over the limit)",
            login(&format!(
                "service={}",
                enc(&format!("https://app.example.org/{}", "a".repeat(10_000)))
            )),
            414,
            Body::Text("too long"),
        ),
        row(
            "GET service of 5 KB (over the service URL limit)",
            login(&format!(
                "service={}",
                enc(&format!("https://app.example.org/{}", "a".repeat(5_000)))
            ))
            .cookie("TGC={TGT}"),
            403,
            unauthorized,
        ),
        row(
            "POST service of 10 KB",
            post_login(&creds(&[
                ("lt", "{LT}"),
                (
                    "service",
                    &format!("https://app.example.org/{}", "a".repeat(10_000)),
                ),
            ])),
            403,
            unauthorized,
        ),
        row(
            "GET service=%ff%fe",
            login("service=%ff%fe"),
            403,
            unauthorized,
        ),
        row(
            "GET registered service with %ff%fe in its path",
            login(&format!("service={svc}%ff%fe")),
            200,
            form_page,
        ),
        row("GET renew=%ff%fe", login("renew=%ff%fe"), 200, form_page),
        row(
            "GET gateway=%ff%fe",
            login(&format!("gateway=%ff%fe&service={svc}")),
            200,
            form_page,
        ),
        row("GET %ff%fe=%ff%fe", login("%ff%fe=%ff%fe"), 200, form_page),
        row(
            "GET authorize=%ff%fe",
            login("authorize=%ff%fe"),
            200,
            form_page,
        ),
        row(
            "GET raw non-UTF-8 bytes in the query",
            get(b"/cas/login?service=\xff\xfe"),
            400,
            Body::Empty,
        )
        .or(403, unauthorized),
        row(
            "GET authorize resuming to another site (stays on our /oidc/authorize)",
            login(&format!("authorize={}", enc("//evil.example/x"))).cookie("TGC={TGT}"),
            302,
            Body::Redirect("/oidc/authorize?"),
        ),
        // Regression (found by this table): `Resume::target` (http/login.rs) put the decoded
        // `authorize` value into the Location; a CR/LF in it was not a valid header value and the
        // answer was the 500 fault page. It now re-encodes the query.
        row(
            "GET authorize with CRLF, with a session",
            login(&format!(
                "authorize={}",
                enc("response_type=code&client_id=webapp\r\nSet-Cookie: injected=1")
            ))
            .cookie("TGC={TGT}"),
            302,
            Body::Redirect("/oidc/authorize?"),
        )
        .check(location_has_no_raw_markup),
        // Regression: the same after the password checked out: the session was created and the
        // 500 fault page carried the new TGC cookie.
        row(
            "POST good password with authorize holding CRLF",
            post_login(&creds(&[(
                "authorize",
                "response_type=code&client_id=webapp\r\nSet-Cookie: injected=1",
            )])),
            302,
            Body::Redirect("/oidc/authorize?"),
        )
        .may_log_in()
        .check(no_session_cookie_on_an_error),
        row(
            "GET duplicate service: off-site first",
            login(&format!("service={}&service={svc}", enc(EVIL))),
            403,
            unauthorized,
        ),
        row(
            "GET duplicate service: registered first",
            login(&format!("service={svc}&service={}", enc(EVIL))),
            200,
            form_page,
        )
        .check(hidden_service_is_the_registered_one),
        row(
            "GET duplicate renew/gateway with a session goes nowhere else",
            login(&format!(
                "service={svc}&gateway=true&gateway=false&renew=false&renew=true"
            ))
            .cookie("TGC={TGT}"),
            302,
            Body::Redirect("https://app.example.org/login?next=%2Fprofile&ticket=ST-"),
        ),
    ]);

    // The page language: a request may name one, never inject one.
    for (what, query, headers) in [
        ("lang with markup", format!("lang={}", enc(XSS)), vec![]),
        (
            "lang with CRLF",
            format!("lang={}", enc("fr\r\nSet-Cookie: injected=1")),
            vec![],
        ),
        (
            "lang of 5 KB",
            format!("lang={}", "fr".repeat(2_500)),
            vec![],
        ),
        (
            "lang as a path",
            format!("lang={}", enc("../../../etc/passwd")),
            vec![],
        ),
        ("lang=%ff%fe", "lang=%ff%fe".to_owned(), vec![]),
        ("duplicate lang", "lang=xx&lang=fr".to_owned(), vec![]),
        (
            "lang of a known language (control)",
            "lang=fr".to_owned(),
            vec![],
        ),
        (
            "language cookie with markup",
            String::new(),
            vec![("cookie", format!("tessera_lang={XSS}"))],
        ),
        (
            "language cookie of 5 KB",
            String::new(),
            vec![("cookie", format!("tessera_lang={}", "a".repeat(5_000)))],
        ),
        (
            "Accept-Language garbage",
            String::new(),
            vec![(
                "accept-language",
                format!("*;q=abc, {XSS};q=1, ;;;, fr;q=2, de;q=-1"),
            )],
        ),
        (
            "Accept-Language of 5 KB",
            String::new(),
            vec![("accept-language", "fr-FR;q=0.5,".repeat(400))],
        ),
        (
            "ui_locales garbage in a resumed authorization request",
            format!(
                "authorize={}",
                enc(&format!("client_id=webapp&ui_locales={XSS} \r\n fr"))
            ),
            vec![],
        ),
    ] {
        let mut req = login(&format!("service={svc}&{query}"));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        rows.push(row(
            format!("GET {what}"),
            req,
            200,
            Body::Html("<html lang=\""),
        ));
    }

    // Tampered ticket-granting cookies: no session, no ticket, the real session untouched.
    for (what, cookie) in [
        ("random TGT", format!("TGC=TGT-{}", random(40))),
        ("truncated real TGT", "TGC={TGT_CUT}".to_owned()),
        ("real TGT with a character added", "TGC={TGT}x".to_owned()),
        ("real TGT, case swapped", "TGC={TGT_SWAPPED}".to_owned()),
        ("a service ticket", "TGC={ST}".to_owned()),
        (
            "a JWT",
            "TGC=eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.".to_owned(),
        ),
        ("5 KB", format!("TGC=TGT-{}", "a".repeat(5_000))),
        (
            "semicolon and quotes",
            "TGC=\"TGT-abc;def\"; x=\"y".to_owned(),
        ),
        ("quote in the middle", "TGC=TGT-ab\"cd".to_owned()),
        (
            "a bogus TGC before the real one",
            "TGC=TGT-bogus; TGC={TGT}".to_owned(),
        ),
        ("lowercase cookie name", "tgc={TGT}".to_owned()),
        ("empty", "TGC=".to_owned()),
        ("markup", format!("TGC={XSS}")),
    ] {
        rows.push(row(
            format!("GET with a registered service and cookie: {what}"),
            login(&format!("service={svc}")).cookie(&cookie),
            200,
            form_page,
        ));
    }
    rows.push(row(
        "GET with cookie: raw non-UTF-8 bytes",
        login(&format!("service={svc}")).cookie(b"TGC=\xff\xfe"),
        200,
        form_page,
    ));
    rows.push(row(
        "POST with a truncated real TGT and a bad lt",
        post_login(&creds(&[("lt", "LT-forged")])).cookie("TGC={TGT_CUT}"),
        403,
        expired,
    ));

    // The form posted without its token, or with a bad one.
    let cross_site = [
        (
            "Sec-Fetch-Site: cross-site",
            vec![("sec-fetch-site", "cross-site")],
        ),
        (
            "Sec-Fetch-Site: same-site",
            vec![("sec-fetch-site", "same-site")],
        ),
        (
            "Origin: https://evil.example",
            vec![("origin", "https://evil.example")],
        ),
        ("Origin: null", vec![("origin", "null")]),
        (
            "cross-site with our own Origin",
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1"),
            ],
        ),
    ];
    for (what, headers) in cross_site {
        let mut req = post_login(&creds(&[("service", SERVICE)]));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        rows.push(row(
            format!("POST without lt from a browser, {what}"),
            req,
            403,
            expired,
        ));
    }
    for (what, lt) in [
        ("expired lt", "{LT_EXPIRED}".to_owned()),
        ("forged lt", format!("LT-{}", random(30))),
        ("reused lt", "{LT_USED}".to_owned()),
        ("a service ticket as lt", "{ST}".to_owned()),
        ("the TGT as lt", "{TGT}".to_owned()),
        ("10 KB lt", format!("LT-{}", "a".repeat(10_000))),
        ("markup as lt", XSS.to_owned()),
    ] {
        rows.push(row(
            format!("POST with {what}"),
            post_login(&creds(&[("lt", &lt), ("service", SERVICE)])),
            403,
            expired,
        ));
    }
    rows.extend([
        row(
            "POST with a forged execution",
            post_login(&creds(&[("execution", "e1s1"), ("service", SERVICE)])),
            403,
            expired,
        ),
        row(
            "POST with duplicate lt: forged first, valid second",
            post_login(&format!("{}&lt=LT-forged&lt={{LT}}", creds(&[]))),
            403,
            expired,
        ),
        row(
            "POST bad UTF-8 in every field",
            post_login("username=%ff%fe&password=%ff&lt=%7BLT%7D&service=%ff%fe&renew=%ff"),
            403,
            unauthorized,
        ),
        row(
            "POST bad UTF-8 username and password",
            post_login("username=%ff%fe&password=%ff&lt=%7BLT%7D"),
            401,
            Body::Html("Invalid username or password"),
        ),
        row(
            "POST raw non-UTF-8 bytes",
            post_login("lt=%7BLT%7D&").body(b"lt=%7BLT%7D&username=\xff\xfe&password=\xff"),
            401,
            Body::Html("Invalid username or password"),
        ),
        row(
            "POST markup as the username",
            post_login(&form(&[
                ("username", XSS),
                ("password", "x"),
                ("lt", "{LT}"),
            ])),
            401,
            Body::Html("Invalid username or password"),
        )
        .check(typed_username_is_escaped),
        row(
            "POST JSON instead of a form",
            post(
                format!("{CAS}/login"),
                "application/json",
                json!({"username": USER, "password": PASSWORD}).to_string(),
            ),
            400,
            Body::Html("Enter your username and password"),
        ),
        row(
            "POST service off-site in the form, registered in the query",
            post_form(
                format!("{CAS}/login?service={svc}"),
                creds(&[("lt", "{LT}"), ("service", EVIL)]),
            ),
            403,
            unauthorized,
        ),
        row(
            "POST service off-site in the query, registered in the form",
            post_form(
                format!("{CAS}/login?service={}", enc(EVIL)),
                creds(&[("lt", "{LT}"), ("service", SERVICE)]),
            ),
            302,
            Body::Redirect("https://app.example.org/login?next=%2Fprofile&ticket=ST-"),
        )
        .may_log_in(),
        row(
            "POST 1 MB",
            post_login(&format!("username=alice&junk={}", "a".repeat(1 << 20))),
            413,
            Body::Text("length limit exceeded"),
        ),
        row(
            "POST 1 MB chunked",
            post_login(&format!("username=alice&junk={}", "a".repeat(1 << 20))).chunked(),
            413,
            Body::Text("length limit exceeded"),
        ),
    ]);
    run_table(&server, &mut witness, "login", rows).await;
}

// --- validation ---------------------------------------------------------------------------------

#[tokio::test]
async fn validation_endpoints_answer_guesses_and_garbage_in_their_own_format() {
    let server = TestServer::start().await;
    let mut witness = Witness::log_in(&server).await;
    let svc = enc(SERVICE);
    let mut rows = Vec::new();
    for ep in [
        "/validate",
        "/serviceValidate",
        "/p3/serviceValidate",
        "/proxyValidate",
        "/p3/proxyValidate",
    ] {
        let cas1 = ep == "/validate";
        let failure = if cas1 {
            Body::Cas1No
        } else {
            Body::CasXml("<cas:authenticationFailure code=\"INVALID_")
        };
        let bad_request = if cas1 {
            Body::Cas1No
        } else {
            Body::CasXml("<cas:authenticationFailure code=\"INVALID_REQUEST\"")
        };
        let json_failure = if cas1 {
            Body::Cas1No
        } else {
            Body::CasJson("\"authenticationFailure\"")
        };
        let v = |query: &str| get(format!("{CAS}{ep}?{query}"));
        let with_ticket = |ticket: &str| v(&format!("ticket={}&service={svc}", enc(ticket)));
        rows.extend([
            row(
                format!("{ep} guessed ST"),
                with_ticket(&format!("ST-{}", random(30))),
                200,
                failure,
            ),
            row(
                format!("{ep} ST- + 5 KB"),
                with_ticket(&format!("ST-{}", "a".repeat(5_000))),
                200,
                failure,
            ),
            row(
                format!("{ep} ST- + 10 KB (URI over the limit)"),
                with_ticket(&format!("ST-{}", "a".repeat(10_000))),
                414,
                Body::Text("too long"),
            ),
            row(
                format!("{ep} wrong prefix"),
                with_ticket(&format!("XX-{}", random(30))),
                200,
                failure,
            ),
            row(
                format!("{ep} no prefix"),
                with_ticket(&random(30)),
                200,
                failure,
            ),
            row(
                format!("{ep} real ticket, lowercase prefix"),
                with_ticket("{ST_LOWER}"),
                200,
                failure,
            ),
            row(
                format!("{ep} real ticket and a space"),
                with_ticket("{ST} "),
                200,
                failure,
            ),
            row(
                format!("{ep} real ticket and a NUL"),
                with_ticket("{ST}\0"),
                200,
                failure,
            ),
            row(
                format!("{ep} the session's TGT"),
                with_ticket("{TGT}"),
                200,
                failure,
            ),
            row(
                format!("{ep} guessed PT"),
                with_ticket(&format!("PT-{}", random(30))),
                200,
                failure,
            ),
            row(
                format!("{ep} guessed PGT"),
                with_ticket(&format!("PGT-{}", random(30))),
                200,
                failure,
            ),
            row(
                format!("{ep} markup as the ticket"),
                with_ticket(XSS),
                200,
                failure,
            ),
            row(
                format!("{ep} markup as the service"),
                v(&format!(
                    "ticket=ST-{}&service={}",
                    random(30),
                    enc(XSS_ATTR)
                )),
                200,
                failure,
            ),
            row(
                format!("{ep} off-site service with @"),
                v(&format!(
                    "ticket=ST-{}&service={}",
                    random(30),
                    enc("https://app.example.org@evil.example/")
                )),
                200,
                failure,
            ),
            row(
                format!("{ep} no ticket"),
                v(&format!("service={svc}")),
                200,
                bad_request,
            ),
            row(
                format!("{ep} no service"),
                v("ticket=ST-abc"),
                200,
                bad_request,
            ),
            row(
                format!("{ep} no parameters"),
                get(format!("{CAS}{ep}")),
                200,
                bad_request,
            ),
            row(
                format!("{ep} empty parameters"),
                v("ticket=&service="),
                200,
                bad_request,
            ),
            row(
                format!("{ep} bad UTF-8 ticket"),
                v(&format!("ticket=%ff%fe&service={svc}")),
                200,
                failure,
            ),
            row(
                format!("{ep} bad UTF-8 service"),
                v(&format!("ticket=ST-{}&service=%ff%fe", random(30))),
                200,
                failure,
            ),
            row(
                format!("{ep} bad UTF-8 parameter name and renew"),
                v(&format!(
                    "%ff%fe=1&renew=%ff&ticket=ST-{}&service={svc}",
                    random(30)
                )),
                200,
                failure,
            ),
            row(
                format!("{ep} duplicate ticket: a guess first, the real one second"),
                v(&format!(
                    "ticket=ST-{}&ticket=%7BST%7D&service={svc}",
                    random(30)
                )),
                200,
                failure,
            ),
            row(
                format!("{ep} off-site pgtUrl"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&pgtUrl={}",
                    random(30),
                    enc(EVIL)
                )),
                200,
                failure,
            ),
            row(
                format!("{ep} format=JSON"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&format=JSON",
                    random(30)
                )),
                200,
                json_failure,
            ),
            row(
                format!("{ep} format=json"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&format=json",
                    random(30)
                )),
                200,
                json_failure,
            ),
            row(
                format!("{ep} format=JsOn"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&format=JsOn",
                    random(30)
                )),
                200,
                json_failure,
            ),
            row(
                format!("{ep} format=JSON with markup in the ticket"),
                v(&format!("ticket={}&service={svc}&format=JSON", enc(XSS))),
                200,
                json_failure,
            ),
            row(
                format!("{ep} format=JSON then format=XML"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&format=JSON&format=XML",
                    random(30)
                )),
                200,
                json_failure,
            ),
            row(
                format!("{ep} format=YAML"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&format=YAML",
                    random(30)
                )),
                200,
                bad_request,
            ),
            row(
                format!("{ep} format=%ff"),
                v(&format!(
                    "ticket=ST-{}&service={svc}&format=%ff",
                    random(30)
                )),
                200,
                bad_request,
            ),
        ]);
    }

    let proxy_failure = Body::CasXml("<cas:proxyFailure code=\"");
    let p = |query: &str| get(format!("{CAS}/proxy?{query}"));
    rows.extend([
        row(
            "/proxy no parameters",
            get(format!("{CAS}/proxy")),
            200,
            proxy_failure,
        ),
        row(
            "/proxy guessed PGT",
            p(&format!("pgt=PGT-{}&targetService={svc}", random(30))),
            200,
            proxy_failure,
        ),
        row(
            "/proxy the session's TGT as PGT",
            p(&format!("pgt=%7BTGT%7D&targetService={svc}")),
            200,
            proxy_failure,
        ),
        row(
            "/proxy a service ticket as PGT",
            p(&format!("pgt=%7BST%7D&targetService={svc}")),
            200,
            proxy_failure,
        ),
        row(
            "/proxy bad UTF-8",
            p("pgt=%ff%fe&targetService=%ff%fe"),
            200,
            proxy_failure,
        ),
        row(
            "/proxy javascript: target",
            p(&format!(
                "pgt=PGT-{}&targetService={}",
                random(30),
                enc("javascript:alert(1)")
            )),
            200,
            proxy_failure,
        ),
        row(
            "/proxy markup",
            p(&format!("pgt={}&targetService={}", enc(XSS), enc(XSS_ATTR))),
            200,
            proxy_failure,
        ),
        row(
            "/proxy PGT + 5 KB",
            p(&format!(
                "pgt=PGT-{}&targetService={svc}",
                "a".repeat(5_000)
            )),
            200,
            proxy_failure,
        ),
        row(
            "/proxy PGT + 10 KB",
            p(&format!(
                "pgt=PGT-{}&targetService={svc}",
                "a".repeat(10_000)
            )),
            414,
            Body::Text("too long"),
        ),
        row(
            "/proxy format=JSON",
            p(&format!(
                "pgt=PGT-{}&targetService={svc}&format=JSON",
                random(30)
            )),
            200,
            Body::CasJson("\"proxyFailure\""),
        ),
        row(
            "/proxy format=bogus",
            p(&format!(
                "pgt=PGT-{}&targetService={svc}&format=bogus",
                random(30)
            )),
            200,
            proxy_failure,
        ),
    ]);

    // SAML 1.1: every protocol outcome is a 200 SOAP answer; the body limit is a 413.
    let requester = Body::Soap("samlp:Requester");
    let saml = |body: &[u8]| {
        post(
            format!("{CAS}/samlValidate?TARGET={svc}"),
            "text/xml; charset=utf-8",
            body,
        )
    };
    let laughs = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n{}]>\n{}",
        (1..10)
            .map(|i| {
                let prev = if i == 1 {
                    "lol".to_owned()
                } else {
                    format!("lol{}", i - 1)
                };
                format!(" <!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10))
            })
            .collect::<String>(),
        soap("{ST}&lol9;")
    );
    let deep_open = soap(&format!("ST-{}{}", random(30), "<a>".repeat(10_000)));
    let deep_closed = soap(&format!(
        "{}ST-{}{}",
        "<a>".repeat(10_000),
        random(30),
        "</a>".repeat(10_000)
    ));
    let attribute = |size: usize| {
        soap_with(&format!(
            "<samlp:AssertionArtifact huge=\"{}\">ST-{}</samlp:AssertionArtifact>",
            "a".repeat(size),
            random(30)
        ))
    };
    let mut bad_utf8 = soap("ST-abc").into_bytes();
    bad_utf8.splice(bad_utf8.len() / 2..bad_utf8.len() / 2, [0xff, 0xfe]);
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(soap("{ST}").encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    rows.extend([
        row("/samlValidate billion laughs around the real ticket", saml(laughs.as_bytes()), 200, requester),
        row(
            "/samlValidate external entity",
            saml(format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n{}",
                soap("&xxe;")
            ).as_bytes()),
            200,
            requester,
        )
        .check(no_file_contents),
        row(
            "/samlValidate external DTD",
            saml(format!(
                "<!DOCTYPE foo SYSTEM \"https://evil.example/x.dtd\">{}",
                soap("{ST}")
            ).as_bytes()),
            200,
            requester,
        ),
        row(
            "/samlValidate parameter entity",
            saml(format!(
                "<!DOCTYPE foo [<!ENTITY % p SYSTEM \"https://evil.example/p.dtd\"> %p;]>{}",
                soap("{ST}")
            ).as_bytes()),
            200,
            requester,
        ),
        row("/samlValidate undefined entity next to the real ticket", saml(soap("{ST}&xxe;").as_bytes()), 200, requester),
        row("/samlValidate 10 000 nested elements (unclosed)", saml(deep_open.as_bytes()), 200, requester),
        row(
            "/samlValidate 10 000 nested elements (closed, over the body limit)",
            saml(deep_closed.as_bytes()),
            413,
            Body::Text("length limit exceeded"),
        ),
        row("/samlValidate 60 KB attribute value", saml(attribute(60_000).as_bytes()), 200, requester),
        row(
            "/samlValidate 1 MB attribute value",
            saml(attribute(1 << 20).as_bytes()),
            413,
            Body::Text("length limit exceeded"),
        ),
        // Without a Content-Length the handler reads the body itself and answers in SOAP.
        row(
            "/samlValidate 1 MB attribute value, chunked",
            saml(attribute(1 << 20).as_bytes()).chunked(),
            413,
            Body::Text("length limit exceeded"),
        )
        .or(200, requester),
        row("/samlValidate not XML", saml(b"hello, world"), 200, requester),
        row(
            "/samlValidate JSON with the real ticket",
            post(format!("{CAS}/samlValidate?TARGET={svc}"), "application/json", "{\"ticket\":\"{ST}\"}"),
            200,
            requester,
        ),
        row("/samlValidate bad UTF-8", saml(&bad_utf8), 200, requester),
        row("/samlValidate UTF-16 with the real ticket", saml(&utf16), 200, requester),
        row("/samlValidate empty body", saml(b""), 200, requester),
        row("/samlValidate whitespace", saml(b" \r\n\t "), 200, requester),
        row(
            "/samlValidate SAML 2.0 namespace around the real ticket",
            saml(soap("{ST}").replace("SAML:1.0:protocol", "SAML:2.0:protocol").as_bytes()),
            200,
            requester,
        ),
        row(
            "/samlValidate no namespace around the real ticket",
            saml(b"<AssertionArtifact>{ST}</AssertionArtifact>"),
            200,
            requester,
        ),
        row(
            "/samlValidate two artifacts, the real one second",
            saml(soap_with(&format!(
                "<samlp:AssertionArtifact>ST-{}</samlp:AssertionArtifact><samlp:AssertionArtifact>{{ST}}</samlp:AssertionArtifact>",
                random(30)
            )).as_bytes()),
            200,
            requester,
        ),
        row(
            "/samlValidate the real ticket inside a child element",
            saml(soap("<b>{ST}</b>").as_bytes()),
            200,
            requester,
        ),
        row(
            "/samlValidate markup in CDATA",
            saml(soap(&format!("<![CDATA[{XSS}]]>")).as_bytes()),
            200,
            requester,
        ),
        row(
            "/samlValidate markup in TARGET",
            post(
                format!("{CAS}/samlValidate?TARGET={}", enc(XSS_ATTR)),
                "text/xml",
                soap(&format!("ST-{}", random(30))),
            ),
            200,
            requester,
        ),
        row(
            "/samlValidate no TARGET, the real ticket",
            post(format!("{CAS}/samlValidate"), "text/xml", soap("{ST}")),
            200,
            requester,
        ),
        row(
            "/samlValidate TARGET=%ff%fe",
            post(format!("{CAS}/samlValidate?TARGET=%ff%fe"), "text/xml", soap(&format!("ST-{}", random(30)))),
            200,
            requester,
        ),
        row(
            "/samlValidate text after the root",
            saml(format!("{}trailing", soap(&format!("ST-{}", random(30)))).as_bytes()),
            200,
            requester,
        ),
        row(
            "/samlValidate two roots, the real ticket in the second",
            saml(format!("<x/>{}", soap("{ST}")).as_bytes()),
            200,
            requester,
        ),
        row("/samlValidate GET", get(format!("{CAS}/samlValidate?TARGET={svc}")), 405, Body::Empty),
    ]);
    run_table(&server, &mut witness, "validation", rows).await;
}

/// A SOAP request whose artifact element holds `artifact` (raw XML).
fn soap(artifact: &str) -> String {
    soap_with(&format!(
        "<samlp:AssertionArtifact>{artifact}</samlp:AssertionArtifact>"
    ))
}

/// A SOAP request whose `samlp:Request` holds `inner` (raw XML).
fn soap_with(inner: &str) -> String {
    format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/>\
         <SOAP-ENV:Body><samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" \
         MinorVersion=\"1\" RequestID=\"_1\" IssueInstant=\"2026-01-01T00:00:00Z\">{inner}</samlp:Request>\
         </SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

// --- /logout --------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_never_redirects_off_site() {
    let server = TestServer::start().await;
    let mut witness = Witness::log_in(&server).await;
    let logged_out = Body::Html("You are logged out");
    let logout = |query: &str| get(format!("{CAS}/logout?{query}"));
    let mut rows = Vec::new();
    let mut targets: Vec<(String, String)> = TRICKY_SERVICES
        .iter()
        .map(|(w, s)| ((*w).to_owned(), (*s).to_owned()))
        .collect();
    targets.extend(
        [
            ("off-site", "https://evil.example"),
            ("off-site, uppercase", "HTTPS://EVIL.EXAMPLE/"),
            ("slash-backslash, relative", "/\\evil.example"),
            ("backslash-slash", "\\/evil.example"),
            ("slash-slash-backslash", "//\\evil.example"),
            ("https:/\\", "https:/\\evil.example"),
            ("three slashes", "https:///evil.example"),
            ("relative path of ours", "/cas/login"),
            (
                "5 KB on a registered host",
                &format!("https://app.example.org/{}", "a".repeat(5_000)),
            ),
        ]
        .map(|(w, s)| (w.to_owned(), s.to_owned())),
    );
    for (what, target) in &targets {
        let t = enc(target);
        rows.push(row(
            format!("GET service {what}"),
            logout(&format!("service={t}")),
            200,
            logged_out,
        ));
        rows.push(row(
            format!("GET url {what}"),
            logout(&format!("url={t}")),
            200,
            logged_out,
        ));
        rows.push(row(
            format!("POST service {what}"),
            post_form(format!("{CAS}/logout"), form(&[("service", target)])),
            200,
            logged_out,
        ));
    }
    rows.extend([
        row(
            "GET service off-site, url registered",
            logout(&format!("service={}&url={}", enc(EVIL), enc(SERVICE))),
            200,
            logged_out,
        ),
        row("GET empty service, url off-site", logout(&format!("service=&url={}", enc(EVIL))), 200, logged_out),
        row(
            "GET duplicate service: off-site first",
            logout(&format!("service={}&service={}", enc(EVIL), enc(SERVICE))),
            200,
            logged_out,
        ),
        row(
            "POST form service off-site, query service registered",
            post_form(format!("{CAS}/logout?service={}", enc(SERVICE)), form(&[("service", EVIL)])),
            200,
            logged_out,
        ),
        row("GET service=%ff%fe", logout("service=%ff%fe&url=%ff"), 200, logged_out),
        row(
            "GET a registered service is followed",
            logout(&format!("service={}", enc("https://app.example.org/bye"))),
            302,
            Body::Redirect("https://app.example.org/bye"),
        ),
        row(
            "GET truncated real TGT in the cookie",
            logout("").cookie("TGC={TGT_CUT}"),
            200,
            logged_out,
        ),
        row(
            "GET case-swapped real TGT in the cookie",
            logout("").cookie("TGC={TGT_SWAPPED}"),
            200,
            logged_out,
        ),
        row("GET a service ticket as the cookie", logout("").cookie("TGC={ST}"), 200, logged_out),
        row(
            "GET a 5 KB cookie",
            logout("").cookie(format!("TGC=TGT-{}", "a".repeat(5_000))),
            200,
            logged_out,
        ),
        row(
            "POST a SAML LogoutRequest for the real session (only Tessera sends these)",
            post_form(
                format!("{CAS}/logout"),
                form(&[(
                    "logoutRequest",
                    "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"LR-1\" \
                     Version=\"2.0\" IssueInstant=\"2026-01-01T00:00:00Z\"><saml:NameID \
                     xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">alice</saml:NameID>\
                     <samlp:SessionIndex>{ST}</samlp:SessionIndex></samlp:LogoutRequest>",
                )]),
            ),
            200,
            logged_out,
        ),
        row(
            "POST a billion-laughs logoutRequest",
            post_form(
                format!("{CAS}/logout"),
                form(&[(
                    "logoutRequest",
                    "<!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><x>&b;</x>",
                )]),
            ),
            200,
            logged_out,
        ),
        row(
            "POST 1 MB",
            post_form(format!("{CAS}/logout"), format!("service={}", "a".repeat(1 << 20))),
            413,
            Body::Text("length limit exceeded"),
        ),
    ]);
    run_table(&server, &mut witness, "logout", rows).await;
}

// --- REST -----------------------------------------------------------------------------------------

#[tokio::test]
async fn rest_refuses_malformed_requests_and_guessed_tickets() {
    let server = TestServer::start().await;
    let mut witness = Witness::log_in(&server).await;
    let tickets = format!("{CAS}/v1/tickets");
    let missing = Body::Text("missing parameter");
    let unknown = Body::Text("ticket-granting ticket not found or expired");
    let not_form = Body::Text("application/x-www-form-urlencoded");
    let big = format!("username=alice&password=x&junk={}", "a".repeat(1 << 20));
    let mut rows = vec![
        row("POST no body", request("POST", &tickets), 400, missing),
        row(
            "POST username only",
            post_form(&tickets, "username=alice"),
            400,
            missing,
        ),
        row(
            "POST password only",
            post_form(&tickets, "password=x"),
            400,
            missing,
        ),
        row(
            "POST empty username",
            post_form(&tickets, "username=&password=x"),
            400,
            missing,
        ),
        row(
            "POST duplicate username: empty first",
            post_form(
                &tickets,
                form(&[("username", ""), ("username", USER), ("password", PASSWORD)]),
            ),
            400,
            missing,
        ),
        row(
            "POST duplicate password: empty first",
            post_form(
                &tickets,
                form(&[("username", USER), ("password", ""), ("password", PASSWORD)]),
            ),
            400,
            missing,
        ),
        row(
            "POST bad UTF-8",
            post_form(&tickets, "username=%ff%fe&password=%ff"),
            401,
            Body::Text("invalid username or password"),
        ),
        row(
            "POST raw non-UTF-8 bytes",
            post_form(&tickets, b"username=\xff\xfe&password=\xff"),
            401,
            Body::Text("invalid username or password"),
        ),
        row(
            "POST JSON",
            post(
                &tickets,
                "application/json",
                json!({"username": USER, "password": PASSWORD}).to_string(),
            ),
            415,
            not_form,
        ),
        row(
            "POST a form body without a content type",
            request("POST", &tickets).body(form(&[("username", USER), ("password", PASSWORD)])),
            415,
            not_form,
        ),
        row(
            "POST a form body as text/plain",
            post(
                &tickets,
                "text/plain",
                form(&[("username", USER), ("password", PASSWORD)]),
            ),
            415,
            not_form,
        ),
        row(
            "POST a content type with non-UTF-8 bytes",
            request("POST", &tickets)
                .header("content-type", b"application/x-www-form-urlencoded\xff")
                .body(form(&[("username", USER), ("password", PASSWORD)])),
            415,
            not_form,
        ),
        row(
            "POST 1 MB",
            post_form(&tickets, &big),
            413,
            Body::Text("length limit exceeded"),
        ),
        row(
            "POST 1 MB chunked",
            post_form(&tickets, &big).chunked(),
            413,
            Body::Text("length limit exceeded"),
        ),
        row(
            "POST cross-site from a browser",
            post_form(
                &tickets,
                form(&[("username", USER), ("password", PASSWORD)]),
            )
            .header("origin", "https://evil.example"),
            403,
            Body::Text("cross-site"),
        ),
        row(
            "POST good password for an off-site service",
            post_form(
                &tickets,
                form(&[
                    ("username", USER),
                    ("password", PASSWORD),
                    ("service", EVIL),
                ]),
            ),
            403,
            Body::Text("service not authorized"),
        ),
        row("GET the collection", get(&tickets), 405, Body::Empty),
        row(
            "PUT the collection",
            request("PUT", &tickets),
            405,
            Body::Empty,
        ),
        row(
            "GET guessed TGT-xyz",
            get(format!("{tickets}/TGT-xyz")),
            404,
            unknown,
        )
        .check(no_guessed_tgt_echoed),
        row(
            "DELETE guessed TGT-xyz",
            request("DELETE", format!("{tickets}/TGT-xyz")),
            404,
            unknown,
        )
        .check(no_guessed_tgt_echoed),
        row(
            "POST a service ticket request to guessed TGT-xyz",
            post_form(format!("{tickets}/TGT-xyz"), form(&[("service", SERVICE)])),
            404,
            unknown,
        )
        .check(no_guessed_tgt_echoed),
        row(
            "GET random TGT",
            get(format!("{tickets}/TGT-{}", random(40))),
            404,
            unknown,
        ),
        row(
            "GET truncated real TGT",
            get(format!("{tickets}/{{TGT_CUT}}")),
            404,
            unknown,
        ),
        row(
            "GET case-swapped real TGT",
            get(format!("{tickets}/{{TGT_SWAPPED}}")),
            404,
            unknown,
        ),
        row(
            "DELETE truncated real TGT",
            request("DELETE", format!("{tickets}/{{TGT_CUT}}")),
            404,
            unknown,
        ),
        row(
            "DELETE a service ticket",
            request("DELETE", format!("{tickets}/{{ST}}")),
            404,
            unknown,
        ),
        row(
            "POST a service ticket as the TGT",
            post_form(format!("{tickets}/{{ST}}"), form(&[("service", SERVICE)])),
            404,
            unknown,
        ),
        row(
            "GET TGT- + 5 KB",
            get(format!("{tickets}/TGT-{}", "a".repeat(5_000))),
            404,
            unknown,
        ),
        row(
            "GET TGT with ../ encoded",
            get(format!("{tickets}/TGT-abc%2F..%2F..%2Fetc")),
            404,
            unknown,
        ),
        row(
            "GET TGT %00",
            get(format!("{tickets}/TGT-abc%00")),
            404,
            unknown,
        ),
        row(
            "GET TGT %ff%fe",
            get(format!("{tickets}/%ff%fe")),
            400,
            Body::Text(""),
        )
        .or(404, unknown),
        row(
            "GET TGT with a trailing segment",
            get(format!("{tickets}/TGT-xyz/extra")),
            404,
            Body::Html("Not found"),
        )
        .check(no_guessed_tgt_echoed),
        row(
            "POST the real TGT, off-site service",
            post_form(format!("{tickets}/{{TGT}}"), form(&[("service", EVIL)])),
            403,
            Body::Text("service not authorized"),
        ),
        row(
            "POST the real TGT, service with @",
            post_form(
                format!("{tickets}/{{TGT}}"),
                form(&[("service", "https://app.example.org@evil.example/")]),
            ),
            403,
            Body::Text("service not authorized"),
        ),
        row(
            "POST the real TGT, javascript: service",
            post_form(
                format!("{tickets}/{{TGT}}"),
                form(&[("service", "javascript:alert(1)")]),
            ),
            403,
            Body::Text("service not authorized"),
        ),
        row(
            "POST the real TGT, service with CRLF",
            post_form(
                format!("{tickets}/{{TGT}}"),
                form(&[("service", "https://app.example.org/\r\nX: y")]),
            ),
            403,
            Body::Text("service not authorized"),
        ),
        row(
            "POST the real TGT, off-site service in the form, registered in the query",
            post_form(
                format!("{tickets}/{{TGT}}?service={}", enc(SERVICE)),
                form(&[("service", EVIL)]),
            ),
            403,
            Body::Text("service not authorized"),
        ),
        row(
            "POST the real TGT, no service",
            post_form(format!("{tickets}/{{TGT}}"), ""),
            400,
            missing,
        ),
        row(
            "POST the real TGT, JSON",
            post(
                format!("{tickets}/{{TGT}}"),
                "application/json",
                json!({"service": SERVICE}).to_string(),
            ),
            415,
            not_form,
        ),
        row(
            "POST the real TGT, renew with another user's password",
            post_form(
                format!("{tickets}/{{TGT}}"),
                form(&[
                    ("service", SERVICE),
                    ("renew", "true"),
                    ("username", "mallory"),
                    ("password", "x"),
                ]),
            ),
            401,
            Body::Text("invalid username or password"),
        ),
    ];
    // The TGT is the resource here: it may come back, but only to its holder.
    rows.push(
        row(
            "GET the real TGT (control)",
            get(format!("{tickets}/{{TGT}}")),
            200,
            Body::Text("TGT-"),
        )
        .echoes_tgt(),
    );
    run_table(&server, &mut witness, "rest", rows).await;
}

// --- OpenID Connect -------------------------------------------------------------------------------

#[tokio::test]
async fn oidc_refuses_redirect_uri_tricks_and_forged_tokens() {
    let server = TestServer::start().await;
    register(&server, client_spec(CLIENT)).await;
    let mut witness = Witness::log_in(&server).await;
    let authorize_query = |overrides: &[(&str, Option<&str>)]| {
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
            ("nonce", "n"),
        ];
        for (name, value) in overrides {
            params.retain(|(k, _)| k != name);
            if let Some(v) = value {
                params.push((name, v));
            }
        }
        form(&params)
    };
    let authorize = |overrides: &[(&str, Option<&str>)]| {
        get(format!("{OIDC}/authorize?{}", authorize_query(overrides))).cookie("TGC={TGT}")
    };
    let bad_redirect = Body::Html("Invalid redirect URI");
    let mut rows = Vec::new();
    let redirect_tricks = [
        ("@evil appended", format!("{REDIRECT}@evil.example")),
        (
            "userinfo",
            "https://rp.example.org@evil.example/callback".to_owned(),
        ),
        ("/../ appended", format!("{REDIRECT}/../../evil")),
        (
            "/../ inside",
            "https://rp.example.org/x/../callback".to_owned(),
        ),
        ("fragment", format!("{REDIRECT}#x")),
        (
            "extra query",
            format!("{REDIRECT}?next=https://evil.example/"),
        ),
        ("trailing slash", format!("{REDIRECT}/")),
        ("trailing space", format!("{REDIRECT} ")),
        ("double percent-encoded", enc(REDIRECT)),
        (
            "percent-encoded path",
            "https://rp.example.org/%63allback".to_owned(),
        ),
        ("http instead of https", REDIRECT.replace("https:", "http:")),
        (
            "uppercase host",
            REDIRECT.replace("rp.example.org", "RP.example.org"),
        ),
        ("other host", "https://evil.example/callback".to_owned()),
        (
            "subdomain of the attacker",
            "https://rp.example.org.evil.example/callback".to_owned(),
        ),
        (
            "backslash",
            "https://rp.example.org\\@evil.example/callback".to_owned(),
        ),
        ("protocol-relative", "//evil.example/callback".to_owned()),
        ("javascript:", "javascript:alert(1)".to_owned()),
        (
            "CRLF",
            format!("{REDIRECT}\r\nLocation: https://evil.example/"),
        ),
        ("bad UTF-8 (U+FFFD)", format!("{REDIRECT}\u{fffd}")),
        ("IDN homograph", REDIRECT.replace("rp.", "r\u{440}.")),
    ];
    for (what, uri) in &redirect_tricks {
        rows.push(row(
            format!("authorize redirect_uri {what}"),
            authorize(&[("redirect_uri", Some(uri))]),
            400,
            bad_redirect,
        ));
        rows.push(row(
            format!("authorize (POST) redirect_uri {what}"),
            post_form(
                format!("{OIDC}/authorize"),
                authorize_query(&[("redirect_uri", Some(uri))]),
            )
            .cookie("TGC={TGT}"),
            400,
            bad_redirect,
        ));
    }
    rows.extend([
        row(
            "authorize redirect_uri twice",
            get(format!(
                "{OIDC}/authorize?{}&redirect_uri={}",
                authorize_query(&[]),
                enc(REDIRECT)
            ))
            .cookie("TGC={TGT}"),
            400,
            bad_redirect,
        ),
        row(
            "authorize no redirect_uri",
            authorize(&[("redirect_uri", None)]),
            400,
            bad_redirect,
        ),
        row(
            "authorize redirect_uri=%ff%fe",
            get(format!(
                "{OIDC}/authorize?{}&redirect_uri=%ff%fe",
                authorize_query(&[("redirect_uri", None)])
            ))
            .cookie("TGC={TGT}"),
            400,
            bad_redirect,
        ),
        row(
            "authorize unknown client with markup",
            authorize(&[("client_id", Some(XSS))]),
            400,
            Body::Html("Unknown application"),
        ),
        row(
            "authorize client_id twice",
            get(format!(
                "{OIDC}/authorize?{}&client_id=other",
                authorize_query(&[])
            ))
            .cookie("TGC={TGT}"),
            400,
            Body::Html("Invalid request"),
        ),
        row(
            "authorize client_id=%ff%fe",
            get(format!(
                "{OIDC}/authorize?{}&client_id=%ff%fe",
                authorize_query(&[("client_id", None)])
            ))
            .cookie("TGC={TGT}"),
            400,
            Body::Html("Unknown application"),
        ),
        row(
            "authorize hostile state, with a session: encoded in the Location",
            authorize(&[("state", Some(HOSTILE_STATE))]),
            302,
            Body::Redirect("https://rp.example.org/callback?code="),
        )
        .check(state_is_encoded),
        row(
            "authorize hostile nonce, with a session",
            authorize(&[("nonce", Some(HOSTILE_STATE))]),
            302,
            Body::Redirect("https://rp.example.org/callback?code="),
        )
        .check(location_has_no_raw_markup),
        row(
            "authorize hostile state, no session: on to our login, encoded",
            get(format!(
                "{OIDC}/authorize?{}",
                authorize_query(&[("state", Some(HOSTILE_STATE))])
            )),
            302,
            Body::Redirect("/cas/login?authorize="),
        )
        .check(location_has_no_raw_markup),
        row(
            "authorize hostile state, form_post: escaped in the page",
            authorize(&[
                ("state", Some(HOSTILE_STATE)),
                ("response_mode", Some("form_post")),
            ]),
            200,
            Body::Html("Continuing to the application"),
        )
        .check(form_post_state_is_escaped),
        row(
            "authorize unsupported response_type with a hostile state: error to the client",
            authorize(&[
                ("response_type", Some("token")),
                ("state", Some(HOSTILE_STATE)),
            ]),
            302,
            Body::Redirect("https://rp.example.org/callback?error="),
        )
        .check(state_is_encoded),
        row(
            "authorize state of 2 KB",
            authorize(&[("state", Some(&"s".repeat(2_000)))]),
            302,
            Body::Redirect("https://rp.example.org/callback?error="),
        ),
    ]);

    let token = format!("{OIDC}/token");
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT}:{}", secret_of(CLIENT)))
    );
    let authed = |body: &str| post_form(&token, body).header("authorization", &basic);
    rows.extend([
        // Authenticated requests first: the failures below throttle the client.
        row(
            "token 60 KB code",
            authed(&format!(
                "grant_type=authorization_code&redirect_uri={}&code={}",
                enc(REDIRECT),
                "a".repeat(60_000)
            )),
            400,
            Body::OAuth("invalid_grant"),
        ),
        row(
            "token 100 KB code (over the body limit)",
            authed(&format!(
                "grant_type=authorization_code&code={}",
                "a".repeat(100_000)
            )),
            413,
            Body::Text("length limit exceeded"),
        ),
        row(
            "token 1 MB chunked",
            authed(&format!(
                "grant_type=authorization_code&code={}",
                "a".repeat(1 << 20)
            ))
            .chunked(),
            413,
            Body::Text("length limit exceeded"),
        ),
        row(
            "token markup as the code",
            authed(&format!("grant_type=authorization_code&code={}", enc(XSS))),
            400,
            Body::OAuth("invalid_grant"),
        ),
        row(
            "token a service ticket as the code",
            authed("grant_type=authorization_code&code=%7BST%7D"),
            400,
            Body::OAuth("invalid_grant"),
        ),
        row(
            "token the TGT as a refresh token",
            authed("grant_type=refresh_token&refresh_token=%7BTGT%7D"),
            400,
            Body::OAuth("invalid_grant"),
        ),
        row(
            "token grant_type twice",
            authed("grant_type=authorization_code&grant_type=refresh_token&code=x"),
            400,
            Body::OAuth("invalid_request"),
        ),
        row(
            "token grant_type=%ff%fe",
            authed("grant_type=%ff%fe"),
            400,
            Body::OAuth("unsupported_grant_type"),
        ),
        row(
            "token JSON body",
            post(
                &token,
                "application/json",
                json!({"grant_type": "authorization_code", "code": "x"}).to_string(),
            )
            .header("authorization", &basic),
            400,
            Body::OAuth("invalid_request"),
        ),
        row(
            "token no content type",
            request("POST", &token)
                .body("grant_type=authorization_code&code=x")
                .header("authorization", &basic),
            400,
            Body::OAuth("invalid_request"),
        ),
        row(
            "token Basic plus a secret in the body",
            authed(&format!(
                "grant_type=authorization_code&code=x&client_secret={}",
                secret_of(CLIENT)
            )),
            400,
            Body::OAuth("invalid_request"),
        ),
        row("token GET", get(&token), 405, Body::Empty),
        row(
            "token Basic that is not base64",
            post_form(&token, "grant_type=authorization_code&code=x")
                .header("authorization", "Basic !!!not base64!!!"),
            401,
            Body::OAuth("invalid_client"),
        ),
        row(
            "token Basic with non-UTF-8 bytes",
            post_form(&token, "grant_type=authorization_code&code=x")
                .header("authorization", b"Basic \xff\xfe\xfd"),
            401,
            Body::OAuth("invalid_client"),
        )
        .or(400, Body::OAuth("invalid_request")),
        row(
            "token Basic decoding to non-UTF-8",
            post_form(&token, "grant_type=authorization_code&code=x").header(
                "authorization",
                format!("Basic {}", STANDARD.encode(b"\xff\xfe:\xff")),
            ),
            401,
            Body::OAuth("invalid_client"),
        ),
        row(
            "token Basic without a colon",
            post_form(&token, "grant_type=authorization_code&code=x").header(
                "authorization",
                format!("Basic {}", STANDARD.encode(CLIENT)),
            ),
            401,
            Body::OAuth("invalid_client"),
        ),
        row(
            "token Basic, empty",
            post_form(&token, "grant_type=authorization_code&code=x")
                .header("authorization", "Basic"),
            401,
            Body::OAuth("invalid_client"),
        )
        .or(400, Body::OAuth("invalid_request")),
        row(
            "token Basic with a wrong secret",
            post_form(&token, "grant_type=authorization_code&code=x").header(
                "authorization",
                format!("Basic {}", STANDARD.encode(format!("{CLIENT}:wrong"))),
            ),
            401,
            Body::OAuth("invalid_client"),
        ),
        row(
            "token markup as the client_id",
            post_form(
                &token,
                form(&[
                    ("grant_type", "authorization_code"),
                    ("code", "x"),
                    ("client_id", XSS),
                    ("client_secret", "x"),
                ]),
            ),
            401,
            Body::OAuth("invalid_client"),
        ),
        row(
            "token Bearer instead of Basic",
            post_form(&token, "grant_type=authorization_code&code=x")
                .header("authorization", "Bearer xyz"),
            401,
            Body::OAuth("invalid_client"),
        )
        .or(400, Body::OAuth("invalid_request")),
    ]);

    let userinfo = format!("{OIDC}/userinfo");
    let bearer = |value: &[u8]| {
        let mut h = b"Bearer ".to_vec();
        h.extend_from_slice(value);
        get(&userinfo).header("authorization", h)
    };
    rows.extend([
        row(
            "userinfo no token",
            get(&userinfo),
            401,
            Body::OAuth("invalid_request"),
        ),
        row(
            "userinfo empty bearer",
            get(&userinfo).header("authorization", "Bearer"),
            401,
            Body::OAuth("invalid_request"),
        )
        .or(401, Body::OAuth("invalid_token")),
        row(
            "userinfo bearer with markup",
            bearer(XSS.as_bytes()),
            401,
            Body::OAuth("invalid_token"),
        ),
        row(
            "userinfo bearer AT- + 5 KB",
            bearer(format!("AT-{}", "a".repeat(5_000)).as_bytes()),
            401,
            Body::OAuth("invalid_token"),
        ),
        row(
            "userinfo bearer with spaces",
            bearer(b"a b c"),
            401,
            Body::OAuth("invalid_token"),
        ),
        row(
            "userinfo bearer with non-UTF-8 bytes",
            bearer(b"\xff\xfe"),
            401,
            Body::OAuth("invalid_request"),
        ),
        row(
            "userinfo the TGT as bearer",
            bearer(b"{TGT}"),
            401,
            Body::OAuth("invalid_token"),
        ),
        row(
            "userinfo a service ticket as bearer",
            bearer(b"{ST}"),
            401,
            Body::OAuth("invalid_token"),
        ),
        row(
            "userinfo Basic instead of Bearer",
            get(&userinfo).header("authorization", &basic),
            401,
            Body::OAuth("invalid_request"),
        ),
        row(
            "userinfo token in the header and the body",
            post_form(&userinfo, "access_token=AT-abc").header("authorization", "Bearer AT-abc"),
            400,
            Body::OAuth("invalid_request"),
        ),
        row(
            "userinfo body token %ff%fe",
            post_form(&userinfo, "access_token=%ff%fe"),
            401,
            Body::OAuth("invalid_token"),
        ),
        row(
            "userinfo bearer of 20 KB (headers over the limit)",
            bearer("a".repeat(20_000).as_bytes()),
            431,
            Body::Text("too large"),
        ),
        row(
            "introspect JSON body",
            post(
                format!("{OIDC}/introspect"),
                "application/json",
                "{\"token\":\"x\"}",
            )
            .header("authorization", &basic),
            400,
            Body::OAuth("invalid_request"),
        ),
        row(
            "revoke without client authentication",
            post_form(format!("{OIDC}/revoke"), "token=%7BTGT%7D"),
            401,
            Body::OAuth("invalid_client"),
        )
        .or(400, Body::OAuth("invalid_request")),
    ]);

    // RP-initiated logout: a forged hint never ends the session unasked nor leads off-site.
    let iss = issuer(&server);
    let none_token = jwt(
        &json!({"alg": "none", "typ": "JWT"}),
        &json!({"iss": iss, "aud": CLIENT, "sub": USER, "sid": witness.sid, "exp": 4_102_444_800_i64, "iat": 1_767_225_600_i64}),
        "",
    );
    let hs256_token = jwt(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &json!({"iss": iss, "aud": CLIENT, "sub": USER, "sid": witness.sid, "exp": 4_102_444_800_i64}),
        &URL_SAFE_NO_PAD.encode([7u8; 32]),
    );
    let random_token = jwt(
        &json!({"alg": "RS256", "kid": random(8)}),
        &json!({"iss": iss, "aud": CLIENT, "sid": witness.sid}),
        &URL_SAFE_NO_PAD.encode(random(256)),
    );
    let logout = |pairs: &[(&str, &str)]| get(format!("{OIDC}/logout?{}", form(pairs)));
    let confirm_page = Body::Html("<h1>Log out?</h1>");
    let logged_out = Body::Html("You are logged out");
    for (what, hint) in [
        ("alg none", none_token.as_str()),
        ("HS256 with a made-up key", hs256_token.as_str()),
        ("random RS256", random_token.as_str()),
        ("three dots of garbage", "a.b.c"),
        ("5 KB of garbage", &"a".repeat(5_000)),
        ("markup", XSS),
    ] {
        rows.push(row(
            format!("logout forged id_token_hint ({what}) to the registered URI, with a session"),
            logout(&[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", POST_LOGOUT),
                ("state", "s"),
            ])
            .cookie("TGC={TGT}"),
            200,
            confirm_page,
        ));
        rows.push(row(
            format!("logout forged id_token_hint ({what}) to an off-site URI, with a session"),
            logout(&[("id_token_hint", hint), ("post_logout_redirect_uri", EVIL)])
                .cookie("TGC={TGT}"),
            200,
            confirm_page,
        ));
    }
    rows.extend([
        row(
            "logout off-site post_logout_redirect_uri, no session",
            logout(&[("client_id", CLIENT), ("post_logout_redirect_uri", EVIL)]),
            200,
            logged_out,
        ),
        row(
            "logout registered URI + @evil, no session",
            logout(&[
                ("client_id", CLIENT),
                (
                    "post_logout_redirect_uri",
                    &format!("{POST_LOGOUT}@evil.example"),
                ),
            ]),
            200,
            logged_out,
        ),
        row(
            "logout protocol-relative URI, no session",
            logout(&[
                ("client_id", CLIENT),
                ("post_logout_redirect_uri", "//evil.example/"),
            ]),
            200,
            logged_out,
        ),
        row(
            "logout unknown client, off-site URI",
            logout(&[("client_id", "evil"), ("post_logout_redirect_uri", EVIL)]),
            200,
            logged_out,
        ),
        row(
            "logout registered URI with a hostile state, no session: encoded",
            logout(&[
                ("client_id", CLIENT),
                ("post_logout_redirect_uri", POST_LOGOUT),
                ("state", HOSTILE_STATE),
            ]),
            302,
            Body::Redirect("https://rp.example.org/logged-out?state="),
        )
        .check(state_is_encoded),
        row(
            "logout confirm without lt, with a session",
            post_form(
                format!("{OIDC}/logout/confirm"),
                form(&[
                    ("decision", "logout"),
                    (
                        "request",
                        &form(&[
                            ("client_id", CLIENT),
                            ("post_logout_redirect_uri", POST_LOGOUT),
                        ]),
                    ),
                ]),
            )
            .cookie("TGC={TGT}"),
            200,
            confirm_page,
        ),
        row(
            "logout confirm with a used lt, with a session",
            post_form(
                format!("{OIDC}/logout/confirm"),
                form(&[("decision", "logout"), ("lt", "{LT_USED}"), ("request", "")]),
            )
            .cookie("TGC={TGT}"),
            200,
            confirm_page,
        ),
        row(
            "logout confirm with a forged lt and an off-site URI, with a session",
            post_form(
                format!("{OIDC}/logout/confirm"),
                form(&[
                    ("decision", "logout"),
                    ("lt", "LT-forged"),
                    (
                        "request",
                        &form(&[("client_id", CLIENT), ("post_logout_redirect_uri", EVIL)]),
                    ),
                ]),
            )
            .cookie("TGC={TGT}"),
            200,
            confirm_page,
        ),
        row(
            "logout POST bad UTF-8, with a session",
            post_form(
                format!("{OIDC}/logout"),
                "id_token_hint=%ff%fe&post_logout_redirect_uri=%ff",
            )
            .cookie("TGC={TGT}"),
            200,
            confirm_page,
        ),
        row(
            "consent without lt from another site",
            post_form(
                format!("{OIDC}/consent"),
                form(&[
                    ("decision", "allow"),
                    ("request", &authorize_query(&[("redirect_uri", Some(EVIL))])),
                ]),
            )
            .cookie("TGC={TGT}")
            .header("sec-fetch-site", "cross-site"),
            400,
            bad_redirect,
        ),
    ]);
    run_table(&server, &mut witness, "oidc", rows).await;
}

/// An unverified JWT: base64url header and claims, and `signature` as given.
fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

// --- any endpoint ---------------------------------------------------------------------------------

#[tokio::test]
async fn any_endpoint_refuses_oversized_requests_and_odd_paths_without_a_500() {
    let server = TestServer::start().await;
    register(&server, client_spec(CLIENT)).await;
    let mut witness = Witness::log_in(&server).await;
    let long_query = format!("x={}", "a".repeat(20_000));
    let too_long = Body::Text("too long");
    let too_large = Body::Text("too large");
    let not_found = Body::Html("Not found");
    let mut rows = Vec::new();
    for (method, path) in [
        ("GET", format!("{CAS}/login")),
        ("POST", format!("{CAS}/login")),
        ("GET", format!("{CAS}/validate")),
        ("GET", format!("{CAS}/serviceValidate")),
        ("GET", format!("{CAS}/p3/serviceValidate")),
        ("GET", format!("{CAS}/proxy")),
        ("POST", format!("{CAS}/samlValidate")),
        ("GET", format!("{CAS}/logout")),
        ("POST", format!("{CAS}/v1/tickets")),
        ("GET", format!("{CAS}/v1/tickets/TGT-xyz")),
        ("GET", format!("{OIDC}/authorize")),
        ("POST", format!("{OIDC}/token")),
        ("GET", format!("{OIDC}/userinfo")),
        ("GET", format!("{OIDC}/logout")),
        ("GET", "/healthz".to_owned()),
        ("GET", format!("{CAS}/nowhere")),
    ] {
        rows.push(row(
            format!("{method} {path} with a 20 KB query"),
            request(method, format!("{path}?{long_query}")),
            414,
            too_long,
        ));
    }
    let mut many = get(format!("{CAS}/login"));
    for i in 0..200 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    let cookies = get(format!("{CAS}/login")).cookie(
        (0..100)
            .map(|i| format!("c{i}={}", "v".repeat(200)))
            .collect::<Vec<_>>()
            .join("; "),
    );
    rows.extend([
        row("200 headers", many, 431, Body::Empty).or(431, too_large),
        row(
            "a 64 KB header",
            get(format!("{CAS}/login")).header("x-big", "a".repeat(64 * 1024)),
            431,
            too_large,
        ),
        row(
            "a 64 KB cookie",
            get(format!("{CAS}/login")).cookie(format!("TGC={}", "a".repeat(64 * 1024))),
            431,
            too_large,
        ),
        row(
            "one Cookie header of 100 cookies of 200 bytes",
            cookies,
            431,
            too_large,
        ),
        row(
            "a 64 KB header at /samlValidate",
            post(
                format!("{CAS}/samlValidate?TARGET=x"),
                "text/xml",
                soap("ST-x"),
            )
            .header("x-big", "a".repeat(64 * 1024)),
            431,
            too_large,
        ),
        row(
            "Host with markup",
            get(format!("{CAS}/login")).host(XSS),
            200,
            Body::Html("<h1>Log in</h1>"),
        )
        .or(400, Body::Empty),
        row(
            "Host of the attacker at discovery",
            get(format!("{OIDC}/.well-known/openid-configuration")).host("evil.example"),
            200,
            Body::Json("\"issuer\""),
        )
        .check(attacker_host_not_reflected),
        row(
            "Host of the attacker at the base redirect",
            get(CAS).host("evil.example"),
            302,
            Body::Redirect("/cas/login"),
        ),
        row(
            "Host of the attacker at the REST API",
            post_form(format!("{CAS}/v1/tickets"), "username=alice").host("evil.example"),
            400,
            Body::Text("missing parameter"),
        ),
        row(
            "Host with non-UTF-8 bytes",
            get(format!("{CAS}/login")).host(b"\xff\xfe"),
            200,
            Body::Html("<h1>Log in</h1>"),
        )
        .or(400, Body::Empty),
        row(
            "no Host",
            get(format!("{CAS}/login")).host(""),
            200,
            Body::Html("<h1>Log in</h1>"),
        )
        .or(400, Body::Empty),
        row(
            "two Hosts",
            get(format!("{CAS}/login")).header("host", "evil.example"),
            200,
            Body::Html("<h1>Log in</h1>"),
        )
        .or(400, Body::Empty),
        row(
            "absolute-form target on the attacker's host",
            get(format!(
                "http://evil.example{CAS}/login?service={}",
                enc(SERVICE)
            )),
            200,
            Body::Html("<h1>Log in</h1>"),
        )
        .check(attacker_host_not_reflected),
        row("path %00", get(format!("{CAS}/login%00")), 404, not_found),
        row(
            "path segment %00",
            get(format!("{CAS}/%00")),
            404,
            not_found,
        ),
        row(
            "path ..",
            get(format!("{CAS}/../cas/login")),
            404,
            not_found,
        ),
        row("path .", get(format!("{CAS}/./login")), 404, not_found),
        row(
            "path %2e%2e",
            get(format!("{CAS}/%2e%2e/etc/passwd")),
            404,
            not_found,
        ),
        row(
            "static ..%2f",
            get(format!("{CAS}/static/..%2f..%2f..%2fetc%2fpasswd")),
            404,
            not_found,
        )
        .check(no_file_contents),
        row(
            "static %2e%2e",
            get(format!("{CAS}/static/%2e%2e")),
            404,
            not_found,
        ),
        row(
            "static %00",
            get(format!("{CAS}/static/style.css%00")),
            404,
            not_found,
        ),
        row(
            "static %ff",
            get(format!("{CAS}/static/%ff")),
            400,
            Body::Text(""),
        )
        .or(404, not_found),
        row(
            "5 KB of path segments",
            get(format!("{CAS}/{}", "a/".repeat(2_500))),
            404,
            not_found,
        ),
        row("double slash", get(format!("/{CAS}/login")), 404, not_found),
        row(
            "trailing slash",
            get(format!("{CAS}/login/")),
            404,
            not_found,
        ),
        row(
            "upper-case path",
            get(format!("{CAS}/LOGIN")),
            404,
            not_found,
        ),
        row(
            "backslash in the path",
            get(format!("{CAS}\\login")),
            404,
            not_found,
        )
        .or(400, Body::Empty),
        row("raw non-UTF-8 path", get(b"/cas/\xff\xfe"), 404, not_found).or(400, Body::Empty),
        row(
            "TRACE",
            request("TRACE", format!("{CAS}/login")),
            405,
            Body::Empty,
        ),
        row(
            "made-up method",
            request("FOO", format!("{CAS}/login")),
            405,
            Body::Empty,
        ),
        row(
            "DELETE /login",
            request("DELETE", format!("{CAS}/login")),
            405,
            Body::Empty,
        ),
        row(
            "Content-Length and chunked together",
            post_form(format!("{CAS}/login"), "a=1").header("transfer-encoding", "chunked"),
            400,
            Body::Text("Failed to buffer the request body"),
        ),
        row(
            "Content-Length that is not a number",
            request("POST", format!("{CAS}/login")).header("content-length", "abc"),
            400,
            Body::Empty,
        ),
    ]);
    run_table(&server, &mut witness, "any", rows).await;
}

// --- markup in released values ----------------------------------------------------------------------

/// A user name and attribute values full of XML/HTML metacharacters.
const MARKUP_USER: &str = "o'brien&<co>\"";
const MARKUP_VALUE: &str = "<script>alert(1)</script>&\"']]>&amp;";

#[tokio::test]
async fn markup_in_user_names_and_attributes_stays_escaped_everywhere() {
    let server = TestServer::start().await;
    let mut attributes = crate::support::alice_attributes();
    attributes.insert(
        "displayName".into(),
        vec![MARKUP_VALUE.into(), "plain".into()],
    );
    attributes.insert("mail".into(), vec![format!("{MARKUP_VALUE}@example.org")]);
    let hash = server
        .state()
        .hasher
        .hash(&tessera::auth::Password::new(PASSWORD.into()))
        .await
        .unwrap();
    server
        .store
        .put_user(
            &UserRecord {
                username: MARKUP_USER.into(),
                password_hash: hash,
                attributes,
            },
            server.clock.now(),
        )
        .await
        .unwrap();

    // The login form shows a typed name back escaped, and the logged-in page the user's.
    let browser = server.browser();
    let failed = browser.log_in_as(None, MARKUP_USER, "wrong", &[]).await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED, "{}", failed.body);
    let typed = regex::Regex::new(r#"name="username"[^>]*?value="([^"]*)""#)
        .unwrap()
        .captures(&failed.body)
        .map(|c| c[1].to_owned())
        .unwrap_or_else(|| panic!("no username field: {}", failed.body));
    assert_eq!(unescape_html(&typed), MARKUP_USER, "{typed}");
    assert!(!typed.contains(['<', '>', '"', '\'']), "{typed}");
    let page = browser.log_in_as(None, MARKUP_USER, PASSWORD, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        !page.body.contains("<co>") && !page.body.contains("o'brien"),
        "{}",
        page.body
    );
    assert!(
        unescape_html(&page.body).contains(MARKUP_USER),
        "{}",
        page.body
    );

    // CAS 2.0 and 3.0 XML: well formed, and the values read back exactly.
    for endpoint in ["/serviceValidate", "/p3/serviceValidate", "/proxyValidate"] {
        let ticket = browser_ticket(&browser).await;
        let (status, body) = server.validate(endpoint, &ticket, SERVICE, "").await;
        assert_eq!(status, StatusCode::OK);
        well_formed(&body).unwrap_or_else(|e| panic!("{endpoint}: {e}: {body}"));
        assert_eq!(texts(&body, b"cas:user"), [MARKUP_USER], "{body}");
        assert_eq!(
            texts(&body, b"cas:displayName"),
            [MARKUP_VALUE, "plain"],
            "{body}"
        );
        assert_eq!(
            texts(&body, b"cas:mail"),
            [format!("{MARKUP_VALUE}@example.org")],
            "{body}"
        );
        assert!(
            !body.contains("<script>") && !body.contains("<co>"),
            "{body}"
        );
    }

    // JSON: valid, the values exact.
    let ticket = browser_ticket(&browser).await;
    let (_, body) = server
        .validate("/p3/serviceValidate", &ticket, SERVICE, "&format=JSON")
        .await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let success = &v["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["user"], MARKUP_USER, "{body}");
    assert_eq!(
        success["attributes"]["displayName"],
        json!([MARKUP_VALUE, "plain"]),
        "{body}"
    );

    // CAS 1.0: the name on its line.
    let ticket = browser_ticket(&browser).await;
    let (_, body) = server.validate("/validate", &ticket, SERVICE, "").await;
    assert_eq!(body, format!("yes\n{MARKUP_USER}\n"));

    // SAML 1.1: well formed, the values exact.
    let ticket = browser_ticket(&browser).await;
    let r = reqwest::Client::new()
        .post(server.url(&format!("/samlValidate?TARGET={}", enc(SERVICE))))
        .body(soap(&ticket))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    well_formed(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(
        body.contains("<samlp:StatusCode Value=\"samlp:Success\"/>"),
        "{body}"
    );
    assert_eq!(
        texts(&body, b"saml:NameIdentifier"),
        [MARKUP_USER, MARKUP_USER],
        "{body}"
    );
    let values = texts(&body, b"saml:AttributeValue");
    assert!(values.iter().any(|v| v == MARKUP_VALUE), "{values:?}");
    assert!(
        !body.contains("<script>") && !body.contains("<co>"),
        "{body}"
    );
}

async fn browser_ticket(browser: &Browser) -> String {
    let page = browser
        .get(&format!("/login?service={}", enc(SERVICE)))
        .await;
    page.ticket()
}

/// The unescaped text of every `name` element, in order.
fn texts(xml: &str, name: &[u8]) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => return out,
            Event::Start(e) if e.name().as_ref() == name => inside = Some(String::new()),
            Event::Text(t) => {
                if let Some(buf) = inside.as_mut() {
                    buf.push_str(&t.unescape().unwrap());
                }
            }
            Event::CData(c) => {
                if let Some(buf) = inside.as_mut() {
                    buf.push_str(std::str::from_utf8(&c).unwrap());
                }
            }
            Event::End(e) if e.name().as_ref() == name => {
                out.extend(inside.take());
            }
            _ => {}
        }
    }
}
