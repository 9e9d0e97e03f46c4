//! `tessera-bench`: the load benchmark of issue 8. It starts a release build of `tessera` on a
//! fresh database (SQLite, or PostgreSQL with `--postgres`), sets up a user, a CAS service and a
//! confidential OpenID Connect client with the CLI, runs closed-loop workloads at each concurrency
//! and prints a Markdown report (machine, command, figures, the issue's targets). It never fails on
//! a number: it exits non-zero only when it cannot set up or run the server.
//!
//! ```sh
//! cargo build --release -p tessera -p tessera-bench && target/release/tessera-bench
//! ```

mod ceiling;
mod client;
mod cpu;
mod load;
mod report;
mod server;
mod workloads;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::{Parser, ValueEnum};

use crate::client::Conn;
use crate::report::{Argon2Bound, Report, Run, StartupSample};
use crate::server::{Deployment, Server};
use crate::workloads::{Kind, Shared, Worker};

/// Load benchmark for Tessera: closed-loop CAS and OpenID Connect workloads against a release
/// `tessera` binary, reported as a Markdown table.
#[derive(Debug, Parser)]
#[command(name = "tessera-bench", version)]
struct Args {
    /// The release `tessera` binary to run (built with `cargo build --release -p tessera`).
    #[arg(long, value_name = "PATH", default_value = "target/release/tessera")]
    tessera: PathBuf,
    /// Use PostgreSQL: an admin URL through which a fresh database is created (and dropped
    /// afterwards), e.g. postgres://postgres@127.0.0.1/postgres.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Concurrent workers (one keep-alive connection each), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Measured time of each run.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Warm-up before each measured run (not counted).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Workloads to run, comma-separated, in this order (startup always runs first).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sso-validate,validate-only,password-login,oidc-code,oidc-refresh,ceiling,startup"
    )]
    workloads: Vec<Workload>,
    /// Rounds of the load workloads: each round runs every workload at every concurrency, and
    /// the report shows each one's median round (by rate) with the spread of the others. On a
    /// shared or virtual machine, whose speed drifts from minute to minute, 3 or 5 rounds make
    /// figures that a single run cannot.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    rounds: u32,
    /// An earlier build of `tessera` to compare with: it gets a deployment of its own, every
    /// round runs each load workload (but the ceiling) on both, the two alternating which goes
    /// first, and the report adds a table of the changes (the median of the rounds' ratios).
    /// Startup is measured for `--tessera` only.
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Restarts measured by the startup workload.
    #[arg(long, default_value_t = 5)]
    startups: usize,
    /// Run the load workloads' server under this command, for profiling (split on spaces), e.g.
    /// "valgrind --tool=callgrind --callgrind-out-file=/tmp/tessera.callgrind" or "perf record -g
    /// -o /tmp/tessera.perf". Startup runs are never wrapped.
    #[arg(long, value_name = "COMMAND")]
    server_wrapper: Option<String>,
}

/// The workloads of issue 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Workload {
    SsoValidate,
    ValidateOnly,
    PasswordLogin,
    OidcCode,
    OidcRefresh,
    Ceiling,
    Startup,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::SsoValidate => "sso-validate",
            Self::ValidateOnly => "validate-only",
            Self::PasswordLogin => "password-login",
            Self::OidcCode => "oidc-code",
            Self::OidcRefresh => "oidc-refresh",
            Self::Ceiling => "ceiling",
            Self::Startup => "startup",
        }
    }

    fn needs_session(self) -> bool {
        matches!(
            self,
            Self::SsoValidate
                | Self::ValidateOnly
                | Self::OidcCode
                | Self::OidcRefresh
                | Self::Ceiling
        )
    }
}

/// Which build a run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// `--tessera`, the build the report is about.
    Tested,
    /// `--baseline`, the one it is compared with.
    Baseline,
}

impl Build {
    /// How progress lines name the build.
    fn prefix(self) -> &'static str {
        match self {
            Self::Tested => "",
            Self::Baseline => "baseline: ",
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match bench(&args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The binary to run: `--tessera`, or else the `tessera` next to this program.
fn locate_binary(asked: &Path) -> Result<PathBuf> {
    if asked.is_file() {
        return Ok(asked.to_owned());
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tessera")))
        .filter(|p| p.is_file());
    if let Some(sibling) = sibling {
        if asked == Path::new("target/release/tessera") {
            return Ok(sibling);
        }
    }
    bail!(
        "no tessera binary at {}: run `cargo build --release -p tessera` first (or pass --tessera PATH)",
        asked.display()
    )
}

fn say(message: &str) {
    eprintln!("tessera-bench: {message}");
}

async fn bench(args: &Args) -> Result<()> {
    let mut concurrency = args.concurrency.clone();
    concurrency.retain(|&c| c > 0);
    if concurrency.is_empty() {
        bail!("--concurrency needs at least one positive number");
    }
    let binary = locate_binary(&args.tessera)?;
    let mut workloads: Vec<Workload> = Vec::new();
    for w in &args.workloads {
        if !workloads.contains(w) {
            workloads.push(*w);
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    let mut report = Report::new(
        std::env::args().collect(),
        binary.display().to_string(),
        concurrency.clone(),
        args.warmup,
        args.duration,
        args.rounds,
    );

    say(&format!(
        "setting up a deployment with {}",
        binary.display()
    ));
    let deployment = Deployment::create(&binary, args.postgres.as_deref())?;
    report.tessera_version = deployment.version();
    report.database = deployment.database_label().to_owned();
    let baseline = match &args.baseline {
        Some(asked) => {
            let created = locate_binary(asked).and_then(|baseline| {
                say(&format!(
                    "setting up a deployment with {}",
                    baseline.display()
                ));
                report.baseline = Some(baseline.display().to_string());
                Deployment::create(&baseline, args.postgres.as_deref())
            });
            match created {
                Ok(created) => Some(created),
                Err(e) => {
                    deployment.drop_database();
                    return Err(e.context("--baseline"));
                }
            }
        }
        None => None,
    };
    let outcome = run_all(
        args,
        &deployment,
        baseline.as_ref(),
        &workloads,
        &concurrency,
        cores,
        &mut report,
    )
    .await;
    deployment.drop_database();
    if let Some(baseline) = &baseline {
        baseline.drop_database();
    }
    outcome?;
    say(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    println!("{}", report.markdown());
    Ok(())
}

async fn run_all(
    args: &Args,
    deployment: &Deployment,
    baseline: Option<&Deployment>,
    workloads: &[Workload],
    concurrency: &[usize],
    cores: usize,
    report: &mut Report,
) -> Result<()> {
    if workloads.contains(&Workload::Startup) {
        say("startup: first start (fresh database: generates the signing keys)");
        report.first_start = Some(measure_start(deployment, "first-start.log").await?);
        for i in 0..args.startups {
            say(&format!("startup: restart {}/{}", i + 1, args.startups));
            let sample = measure_start(deployment, &format!("restart-{i}.log")).await?;
            report.restarts.push(sample);
        }
    }
    let load: Vec<Workload> = workloads
        .iter()
        .copied()
        .filter(|w| *w != Workload::Startup)
        .collect();
    if load.is_empty() {
        return Ok(());
    }
    let wrapper: Vec<&str> = args
        .server_wrapper
        .as_deref()
        .map(|w| w.split_whitespace().collect())
        .unwrap_or_default();
    let server = deployment.start_wrapped("server.log", &wrapper).await?;
    let mut subjects = vec![Subject::new(Build::Tested, deployment, server)];
    if let Some(baseline) = baseline {
        match baseline.start("server.log").await {
            Ok(server) => subjects.push(Subject::new(Build::Baseline, baseline, server)),
            Err(e) => {
                for subject in subjects {
                    subject.server.stop().await?;
                }
                return Err(e.context("starting the baseline"));
            }
        }
    }
    let outcome = run_load(args, &mut subjects, &load, concurrency, cores, report).await;
    for subject in subjects {
        subject.server.stop().await?;
    }
    outcome
}

/// A build under test: its deployment, its server, and the SSO sessions of its workers.
struct Subject<'d> {
    build: Build,
    deployment: &'d Deployment,
    server: Server,
    cookies: Vec<String>,
}

impl<'d> Subject<'d> {
    fn new(build: Build, deployment: &'d Deployment, server: Server) -> Self {
        Self {
            build,
            deployment,
            server,
            cookies: Vec::new(),
        }
    }

    /// What the workers of a run against this build share: its secrets, the tickets minted.
    fn shared(&self) -> Shared {
        Shared::new(&self.deployment.password, &self.deployment.client_secret)
    }
}

/// One start of `tessera serve`: exec → address line → first 200 from `/healthz`, then the
/// resident memory after a second of idling.
async fn measure_start(deployment: &Deployment, log: &str) -> Result<StartupSample> {
    let server = deployment.start(log).await?;
    let healthy = server.wait_healthy().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sample = StartupSample {
        listening: server.listening,
        healthy,
        idle_rss_kib: server.rss_kib(),
    };
    server.stop().await?;
    Ok(sample)
}

async fn run_load(
    args: &Args,
    subjects: &mut [Subject<'_>],
    workloads: &[Workload],
    concurrency: &[usize],
    cores: usize,
    report: &mut Report,
) -> Result<()> {
    let max_workers = concurrency.iter().copied().max().unwrap_or(1);

    // One SSO session per worker, made by logging in like a browser.
    if workloads.iter().any(|w| w.needs_session()) {
        for subject in subjects.iter_mut() {
            let setup = subject.shared();
            say(&format!(
                "{}logging in {max_workers} browsers",
                subject.build.prefix()
            ));
            let mut conn = Conn::new(subject.server.addr)?;
            for _ in 0..max_workers {
                let cookie = workloads::password_login(&setup, &mut conn)
                    .await
                    .context("logging in the benchmark's browsers")?;
                subject.cookies.push(cookie);
            }
        }
    }

    let ceiling = match (workloads.contains(&Workload::Ceiling), subjects.first()) {
        (true, Some(tested)) => {
            let setup = tested.shared();
            let mut worker = Worker::new(
                Conn::new(tested.server.addr)?,
                tested.cookies.first().cloned(),
            );
            let (body, content_type) = workloads::sample_validation(&setup, &mut worker)
                .await
                .context("fetching a validation success for the ceiling server")?;
            report.ceiling_body_bytes = body.len();
            Some(ceiling::Ceiling::start(body.into(), &content_type, cores)?)
        }
        _ => None,
    };

    // Rounds interleave the workloads, so that each workload and the ceiling see the machine's
    // slow and fast minutes alike; with a baseline, the two builds take turns going first.
    for round in 1..=args.rounds {
        if args.rounds > 1 {
            say(&format!("round {round} of {}", args.rounds));
        }
        for &workload in workloads {
            if workload == Workload::PasswordLogin && report.argon2.is_none() {
                // Measured right before the logins, in the same conditions (the server idles).
                say("measuring what the Argon2id cost allows on this machine");
                report.argon2 = Some(argon2_bound(cores)?);
            }
            for &c in concurrency {
                let mut order: Vec<&Subject<'_>> = subjects.iter().collect();
                if round % 2 == 0 {
                    order.reverse();
                }
                for subject in order {
                    if workload == Workload::Ceiling && subject.build == Build::Baseline {
                        continue;
                    }
                    let run = run_one(args, subject, ceiling.as_ref(), workload, c, round).await?;
                    match subject.build {
                        Build::Tested => report.runs.push(run),
                        Build::Baseline => report.baseline_runs.push(run),
                    }
                }
            }
        }
    }
    Ok(())
}

/// One measured run of `workload` with `c` workers.
async fn run_one(
    args: &Args,
    subject: &Subject<'_>,
    ceiling: Option<&ceiling::Ceiling>,
    workload: Workload,
    c: usize,
    round: u32,
) -> Result<Run> {
    let (server, cookies) = (&subject.server, &subject.cookies);
    let shared = Arc::new(subject.shared());
    let target = match (ceiling, workload) {
        (Some(ceiling), Workload::Ceiling) => ceiling.addr,
        _ => server.addr,
    };
    let mut workers = Vec::with_capacity(c);
    for i in 0..c {
        let cookie = if workload == Workload::PasswordLogin {
            None
        } else {
            cookies.get(i).cloned()
        };
        workers.push(Worker::new(Conn::new(target)?, cookie));
    }
    let mut note = String::new();
    let server_pid = (workload != Workload::Ceiling).then(|| server.pid());
    let before = cpu::sample(server_pid);
    let stats = if workload == Workload::ValidateOnly {
        // The warm-up mints the tickets (for as long as a whole run), then the
        // validations alone are measured, until the tickets run out.
        let (minted, workers) = load::run(
            Kind::Mint,
            &shared,
            workers,
            Duration::ZERO,
            args.warmup + args.duration,
        )
        .await?;
        let pool = shared.pool.lock().map(|p| p.len()).unwrap_or(0);
        let (stats, _) = load::run(
            Kind::ValidateOnly,
            &shared,
            workers,
            Duration::ZERO,
            args.duration,
        )
        .await?;
        note = format!(
            "{pool} tickets minted first ({:.0}/s)",
            minted.iterations_per_second()
        );
        if stats.window < args.duration {
            note.push_str(&format!(
                "; they ran out after {:.1} s",
                stats.window.as_secs_f64()
            ));
        }
        stats
    } else {
        let kind = match workload {
            Workload::SsoValidate => Kind::SsoValidate,
            Workload::PasswordLogin => Kind::PasswordLogin,
            Workload::OidcCode => Kind::OidcCode,
            Workload::OidcRefresh => Kind::OidcRefresh,
            _ => Kind::Ceiling,
        };
        load::run(kind, &shared, workers, args.warmup, args.duration)
            .await?
            .0
    };
    let cpu = before
        .zip(cpu::sample(server_pid))
        .map(|(before, after)| cpu::usage(&before, &after));
    // The ceiling server lives in the bench process: its memory says nothing.
    let rss_kib = if workload == Workload::Ceiling {
        None
    } else {
        server.rss_kib()
    };
    say(&format!(
        "{}{} c={c}: {:.0} iterations/s, {:.0} requests/s, p50 {}, p99 {}, {} errors{}",
        subject.build.prefix(),
        workload.name(),
        stats.iterations_per_second(),
        stats.requests_per_second(),
        report::latency(stats.quantile_us(0.5)),
        report::latency(stats.quantile_us(0.99)),
        stats.errors,
        cpu.map(|u| format!(
            "; CPU cores: server {:.2}, bench {:.2}, other {:.2}",
            u.server, u.bench, u.other
        ))
        .unwrap_or_default()
    ));
    if let Some(e) = &stats.first_error {
        say(&format!("  first error: {e}"));
    }
    Ok(Run {
        workload: workload.name(),
        concurrency: c,
        round,
        stats,
        rss_kib,
        cpu,
        note,
    })
}

/// What the configured Argon2id cost allows: hashes per second on one thread, and with one thread
/// per core hashing at once.
fn argon2_bound(cores: usize) -> Result<Argon2Bound> {
    use argon2::{Algorithm, Argon2, Params, Version};
    const PER_THREAD: u32 = 8;
    let params = Params::new(
        server::ARGON2_MEMORY_KIB,
        server::ARGON2_ITERATIONS,
        server::ARGON2_PARALLELISM,
        Some(32),
    )
    .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let hash = |hasher: &Argon2<'_>| -> Result<()> {
        let mut out = [0u8; 32];
        hasher
            .hash_password_into(
                b"correct horse battery staple",
                b"tessera-bench-salt",
                &mut out,
            )
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    };
    // Hashes per second with `threads` threads hashing `PER_THREAD` times each at once.
    let rate = |threads: usize| -> Result<f64> {
        let barrier = std::sync::Barrier::new(threads);
        let slowest = std::thread::scope(|scope| -> Result<Duration> {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| -> Result<Duration> {
                        hash(&hasher)?;
                        barrier.wait();
                        let t = Instant::now();
                        for _ in 0..PER_THREAD {
                            hash(&hasher)?;
                        }
                        Ok(t.elapsed())
                    })
                })
                .collect();
            let mut slowest = Duration::ZERO;
            for h in handles {
                let elapsed = h
                    .join()
                    .map_err(|_| anyhow::anyhow!("an argon2 thread panicked"))??;
                slowest = slowest.max(elapsed);
            }
            Ok(slowest)
        })?;
        Ok(f64::from(PER_THREAD) * threads as f64 / slowest.as_secs_f64())
    };
    // The best of three tries: other work on a shared machine only ever slows hashing down.
    let best = |threads: usize| -> Result<f64> {
        let mut best: f64 = 0.0;
        for _ in 0..3 {
            best = best.max(rate(threads)?);
        }
        Ok(best)
    };
    let single = best(1)?;
    let all = if cores > 1 { best(cores)? } else { single };
    Ok(Argon2Bound { single, cores, all })
}
