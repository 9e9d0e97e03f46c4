//! The server under test: a throwaway deployment (config file, fresh database, a user, a CAS
//! service and a confidential OpenID Connect client, all made with the `tessera` CLI) and the
//! `tessera serve` processes started on it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::client::Conn;

/// The CAS service every CAS workload logs in to.
pub(crate) const SERVICE: &str = "http://app.bench.test/login";
/// Its registered pattern.
const SERVICE_PATTERN: &str = r"http://app\.bench\.test/.*";
/// The OpenID Connect client.
pub(crate) const CLIENT_ID: &str = "bench";
/// Its redirect URI.
pub(crate) const REDIRECT_URI: &str = "http://app.bench.test/callback";
/// The user.
pub(crate) const USERNAME: &str = "bench";
/// The Argon2id cost written in the config (the server's defaults, OWASP's recommendation).
pub(crate) const ARGON2_MEMORY_KIB: u32 = 19456;
pub(crate) const ARGON2_ITERATIONS: u32 = 2;
pub(crate) const ARGON2_PARALLELISM: u32 = 1;

/// Where the deployment keeps its state.
enum Database {
    Sqlite,
    Postgres { admin_url: String, name: String },
}

/// A deployment in a temporary directory, with its secrets.
pub(crate) struct Deployment {
    binary: PathBuf,
    dir: tempfile::TempDir,
    config: PathBuf,
    database: Database,
    pub(crate) password: String,
    pub(crate) client_secret: String,
}

impl Deployment {
    /// Creates the config and the database, then the user, the service and the client.
    pub(crate) fn create(binary: &Path, postgres_admin_url: Option<&str>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tessera-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        // The directory's random name makes the database name and the secrets unique.
        let unique: String = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let (database, url) = match postgres_admin_url {
            None => (
                Database::Sqlite,
                format!("sqlite://{}", dir.path().join("tessera.db").display()),
            ),
            Some(admin) => {
                let name = format!("tessera_bench_{unique}");
                psql(admin, &format!("CREATE DATABASE {name}"))?;
                let mut url = url::Url::parse(admin).context("--postgres: not a URL")?;
                url.set_path(&format!("/{name}"));
                (
                    Database::Postgres {
                        admin_url: admin.to_owned(),
                        name,
                    },
                    url.to_string(),
                )
            }
        };
        let config = dir.path().join("tessera.toml");
        let text = format!(
            r#"# Written by tessera-bench.
[server]
listen = "127.0.0.1:0"

[database]
url = {url}

[tickets]
# Tickets minted before the validate-only run must outlive it.
service_ticket_ttl = "5min"

[password]
argon2_memory_kib = {ARGON2_MEMORY_KIB}
argon2_iterations = {ARGON2_ITERATIONS}
argon2_parallelism = {ARGON2_PARALLELISM}
"#,
            url = toml_string(&url),
        );
        std::fs::write(&config, text).context("writing the config file")?;
        let deployment = Self {
            binary: binary.to_owned(),
            dir,
            config,
            database,
            password: format!("bench-password-{unique}"),
            client_secret: format!("bench-client-secret-{unique}-0123456789abcdef"),
        };
        if let Err(e) = deployment.populate() {
            deployment.drop_database();
            return Err(e);
        }
        Ok(deployment)
    }

    fn populate(&self) -> Result<()> {
        let password = format!("{}\n", self.password);
        self.cli(
            &[
                "user",
                "add",
                USERNAME,
                "--password-stdin",
                "--attr",
                "mail=bench@example.org",
                "--attr",
                "displayName=Bench User",
                "--attr",
                "givenName=Bench",
                "--attr",
                "sn=User",
                "--attr",
                "eduPersonAffiliation=member",
                "--attr",
                "eduPersonAffiliation=staff",
            ],
            Some(&password),
        )?;
        self.cli(
            &[
                "service",
                "add",
                "bench",
                "--pattern",
                SERVICE_PATTERN,
                "--release-all",
            ],
            None,
        )?;
        let secret = format!("{}\n", self.client_secret);
        self.cli(
            &[
                "client",
                "add",
                CLIENT_ID,
                "--redirect-uri",
                REDIRECT_URI,
                "--secret-stdin",
                "--signing-alg",
                "ES256",
            ],
            Some(&secret),
        )?;
        Ok(())
    }

    /// Runs `tessera --config FILE ARGS…` to completion.
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut child = std::process::Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("TESSERA_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.binary.display()))?;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(stdin.unwrap_or("").as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "`tessera {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `tessera --version`.
    pub(crate) fn version(&self) -> String {
        self.cli(&["--version"], None)
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|_| "tessera (version unknown)".to_owned())
    }

    /// What the database is, for the report.
    pub(crate) fn database_label(&self) -> &'static str {
        match self.database {
            Database::Sqlite => {
                "SQLite (WAL, every write fsynced before it returns, group commit), fresh file"
            }
            Database::Postgres { .. } => "PostgreSQL, fresh database",
        }
    }

    /// Starts `tessera serve --listen 127.0.0.1:0` and waits for its first line (the address).
    /// Its log goes to a file in the deployment's directory.
    pub(crate) async fn start(&self, log_name: &str) -> Result<Server> {
        self.start_wrapped(log_name, &[]).await
    }

    /// [`Deployment::start`] under a wrapper command (a profiler), if `wrapper` is not empty.
    pub(crate) async fn start_wrapped(&self, log_name: &str, wrapper: &[&str]) -> Result<Server> {
        let log = std::fs::File::create(self.dir.path().join(log_name))?;
        let started = Instant::now();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = tokio::process::Command::new(program);
                c.args(args).arg(&self.binary);
                c
            }
            None => tokio::process::Command::new(&self.binary),
        };
        let mut child = command
            .arg("--config")
            .arg(&self.config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("TESSERA_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .context("the server printed nothing within 300 s")??;
        let Some(first) = first else {
            let log = std::fs::read_to_string(self.dir.path().join(log_name)).unwrap_or_default();
            bail!("the server exited before listening: {}", log.trim());
        };
        let listening = started.elapsed();
        let addr: SocketAddr = first
            .strip_prefix("tessera listening on http://")
            .with_context(|| format!("unexpected first line: {first:?}"))?
            .trim()
            .parse()
            .with_context(|| format!("unexpected address in {first:?}"))?;
        // Keep reading stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            child,
            pid,
            addr,
            started,
            listening,
        })
    }

    /// Removes a PostgreSQL database the deployment created (the directory goes by itself).
    pub(crate) fn drop_database(&self) {
        if let Database::Postgres { admin_url, name } = &self.database {
            if let Err(e) = psql(
                admin_url,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ) {
                eprintln!("tessera-bench: could not drop database {name}: {e:#}");
            }
        }
    }
}

/// Runs one SQL statement through `psql` on the admin URL.
fn psql(admin_url: &str, sql: &str) -> Result<()> {
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            admin_url,
            "-c",
            sql,
        ])
        .output()
        .context("running psql (install the PostgreSQL client)")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A running `tessera serve`.
pub(crate) struct Server {
    child: tokio::process::Child,
    pid: u32,
    pub(crate) addr: SocketAddr,
    started: Instant,
    /// From exec to the address line.
    pub(crate) listening: Duration,
}

impl Server {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory now, in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid)
    }

    /// Polls `GET /healthz` (fresh connections, every millisecond) until it answers 200; returns
    /// the time from exec.
    pub(crate) async fn wait_healthy(&self) -> Result<Duration> {
        let deadline = self.started + Duration::from_secs(60);
        loop {
            let mut conn = Conn::new(self.addr)?;
            if let Ok(reply) = conn.get("/healthz", &[]).await {
                if reply.status == hyper::StatusCode::OK {
                    return Ok(self.started.elapsed());
                }
            }
            if Instant::now() > deadline {
                bail!("GET /healthz did not answer 200 within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM, then up to 60 s for a clean exit (a profiler writes its data), then SIGKILL.
    pub(crate) async fn stop(mut self) -> Result<()> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .ok();
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("tessera-bench: the server did not stop within 60 s; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

/// `VmRSS` of a process, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
