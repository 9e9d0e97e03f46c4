//! The Markdown report: machine, command, the figures of every run, startup, and the targets of
//! issue 8 with whether this run met them. Reporting never fails on a number.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cpu::Usage;
use crate::load::Stats;

/// One measured run.
pub(crate) struct Run {
    pub(crate) workload: &'static str,
    pub(crate) concurrency: usize,
    /// The round it belongs to, from 1.
    pub(crate) round: u32,
    pub(crate) stats: Stats,
    /// The server's resident memory at the end of the run (the bench's own for `ceiling`).
    pub(crate) rss_kib: Option<u64>,
    /// CPU use during the run (warm-up included).
    pub(crate) cpu: Option<Usage>,
    pub(crate) note: String,
}

/// One start of the server.
pub(crate) struct StartupSample {
    pub(crate) listening: Duration,
    pub(crate) healthy: Duration,
    pub(crate) idle_rss_kib: Option<u64>,
}

/// What the configured Argon2id cost allows on this machine.
pub(crate) struct Argon2Bound {
    /// Hashes per second on one thread.
    pub(crate) single: f64,
    pub(crate) cores: usize,
    /// Hashes per second with one thread per core.
    pub(crate) all: f64,
}

impl Argon2Bound {
    /// Logins per second `workers` closed-loop workers can reach at most: each waits for its
    /// own hash, so fewer workers than cores leave cores idle.
    fn allows(&self, workers: usize) -> f64 {
        if workers >= self.cores {
            self.all.max(self.single)
        } else {
            self.single * workers as f64
        }
    }
}

/// Everything the report shows.
pub(crate) struct Report {
    command: Vec<String>,
    binary: String,
    concurrency: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    rounds: u32,
    pub(crate) tessera_version: String,
    pub(crate) database: String,
    pub(crate) argon2: Option<Argon2Bound>,
    pub(crate) first_start: Option<StartupSample>,
    pub(crate) restarts: Vec<StartupSample>,
    pub(crate) ceiling_body_bytes: usize,
    pub(crate) runs: Vec<Run>,
    /// The build compared with (`--baseline`), and its runs.
    pub(crate) baseline: Option<String>,
    pub(crate) baseline_runs: Vec<Run>,
    /// The 1-minute load average when the bench started.
    load_before: Option<f64>,
}

/// A latency in microseconds, readable.
pub(crate) fn latency(us: u64) -> String {
    match us {
        0 => "–".to_owned(),
        1..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Megabytes (10^6 bytes), as the issue's targets are written.
fn megabytes(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "–".to_owned(),
        |k| format!("{:.1} MB", k as f64 * 1024.0 / 1e6),
    )
}

/// 12345.6 → "12,346".
fn count(x: f64) -> String {
    let rounded = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in rounded.chars().enumerate() {
        if i > 0 && (rounded.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate(x: f64) -> String {
    if x > 0.0 && x < 10.0 {
        format!("{x:.1}")
    } else {
        count(x)
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "**met**"
    } else {
        "not met"
    }
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort();
    values.get(values.len() / 2).copied()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let processors = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kib| format!(", {:.0} GiB of memory", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!(", Linux {}", k.trim()))
        .unwrap_or_default();
    format!("{model}, {processors} cores{memory}{kernel}")
}

/// The 1-minute load average: the machine is shared, and other work skews every figure.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The date of the report: the one wall-clock reading of the bench.
#[allow(clippy::disallowed_methods)] // a report's date is the wall clock's business
fn now_utc() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_else(|_| "unknown date".to_owned())
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@%+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The median round of `workload` at `concurrency` among `runs` (by iterations/s; of an even
/// number, the slower middle one), and every round's rate, slowest first.
fn median_round<'r>(
    runs: &'r [Run],
    workload: &str,
    concurrency: usize,
) -> Option<(&'r Run, Vec<f64>)> {
    let mut rounds: Vec<&Run> = runs
        .iter()
        .filter(|r| r.workload == workload && r.concurrency == concurrency)
        .collect();
    rounds.sort_by(|a, b| {
        a.stats
            .iterations_per_second()
            .total_cmp(&b.stats.iterations_per_second())
    });
    let median = *rounds.get(rounds.len().saturating_sub(1) / 2)?;
    let rates = rounds
        .iter()
        .map(|r| r.stats.iterations_per_second())
        .collect();
    Some((median, rates))
}

/// A change as a signed percentage: 1.084 → "+8 %".
fn change(ratio: f64) -> String {
    format!("{:+.0} %", (ratio - 1.0) * 100.0)
}

impl Report {
    pub(crate) fn new(
        command: Vec<String>,
        binary: String,
        concurrency: Vec<usize>,
        warmup: Duration,
        duration: Duration,
        rounds: u32,
    ) -> Self {
        Self {
            command,
            binary,
            concurrency,
            warmup,
            duration,
            rounds,
            tessera_version: String::new(),
            database: String::new(),
            argon2: None,
            first_start: None,
            restarts: Vec::new(),
            ceiling_body_bytes: 0,
            runs: Vec::new(),
            baseline: None,
            baseline_runs: Vec::new(),
            load_before: load_average(),
        }
    }

    /// The median round of `workload` at `concurrency`, and every round's rate, slowest first.
    fn run_with_rounds(&self, workload: &str, concurrency: usize) -> Option<(&Run, Vec<f64>)> {
        median_round(&self.runs, workload, concurrency)
    }

    /// Each workload and concurrency this build ran, in the order first run.
    fn measured(&self) -> Vec<(&'static str, usize)> {
        let mut measured = Vec::new();
        for r in &self.runs {
            if !measured.contains(&(r.workload, r.concurrency)) {
                measured.push((r.workload, r.concurrency));
            }
        }
        measured
    }

    /// The median round of `workload` at `concurrency`.
    fn run(&self, workload: &str, concurrency: usize) -> Option<&Run> {
        self.run_with_rounds(workload, concurrency)
            .map(|(run, _)| run)
    }

    /// The whole report.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let command: Vec<String> = self
            .command
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 0 {
                    "tessera-bench".to_owned()
                } else {
                    shell_quote(a)
                }
            })
            .collect();
        let concurrency: Vec<String> = self.concurrency.iter().map(usize::to_string).collect();
        let _ = writeln!(out, "- **Date**: {}", now_utc());
        let load = self
            .load_before
            .map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
        let _ = writeln!(
            out,
            "- **Machine**: {}; load average {load} when the bench started; the load generator runs on the same cores",
            machine()
        );
        let _ = writeln!(
            out,
            "- **Server**: {} (`{}`), {}",
            self.tessera_version, self.binary, self.database
        );
        if let Some(baseline) = &self.baseline {
            let _ = writeln!(
                out,
                "- **Baseline**: `{baseline}`, on a fresh database of its own, run in the same rounds (the two builds take turns going first)"
            );
        }
        let _ = writeln!(out, "- **Command**: `{}`", command.join(" "));
        let rounds = if self.rounds > 1 {
            format!(
                "; {} rounds, each workload's median round shown (the rates of all rounds in its notes)",
                self.rounds
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "- **Runs**: closed loop, concurrency {}, one keep-alive connection per worker, {:.0} s warm-up then {:.0} s measured; latency is per iteration (all its requests), except in the column \"p99 of a request\"{rounds}",
            concurrency.join(", "),
            self.warmup.as_secs_f64(),
            self.duration.as_secs_f64()
        );
        if self.database.starts_with("PostgreSQL") {
            let _ = writeln!(
                out,
                "- The PostgreSQL server's own CPU time counts as \"other\" in the CPU column"
            );
        }
        let _ = writeln!(out);
        if !self.runs.is_empty() {
            let _ = writeln!(
                out,
                "| workload | workers | iterations/s | requests/s | p50 | p99 | p99 of a request | errors | server RSS | CPU cores: server / bench / other | notes |"
            );
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            );
            for (workload, concurrency) in self.measured() {
                let Some((r, rates)) = self.run_with_rounds(workload, concurrency) else {
                    continue;
                };
                let mut note = r.note.clone();
                if rates.len() > 1 {
                    if !note.is_empty() {
                        note.push_str("; ");
                    }
                    let rates: Vec<String> = rates.iter().map(|&x| rate(x)).collect();
                    let _ = write!(note, "rounds: {} iterations/s", rates.join(" / "));
                }
                if r.workload == "ceiling" {
                    if !note.is_empty() {
                        note.push_str("; ");
                    }
                    let _ = write!(
                        note,
                        "in-process hyper server answering the {} bytes of a validation success",
                        self.ceiling_body_bytes
                    );
                }
                let cpu = r.cpu.map_or_else(
                    || "–".to_owned(),
                    |u| format!("{:.2} / {:.2} / {:.2}", u.server, u.bench, u.other),
                );
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {cpu} | {} |",
                    r.workload,
                    r.concurrency,
                    rate(r.stats.iterations_per_second()),
                    rate(r.stats.requests_per_second()),
                    latency(r.stats.quantile_us(0.5)),
                    latency(r.stats.quantile_us(0.99)),
                    latency(r.stats.request_quantile_us(0.99)),
                    r.stats.errors,
                    megabytes(r.rss_kib),
                    note
                );
            }
            let _ = writeln!(out);
        }
        out.push_str(&self.comparison());
        if let Some(a) = &self.argon2 {
            let _ = writeln!(
                out,
                "Argon2id at the configured cost (19456 KiB, 2 passes, 1 lane), measured by the bench right before `password-login`: {} per hash on one thread ({} hashes/s); {} threads hashing at once allow **{} logins/s**.",
                millis(Duration::from_secs_f64(1.0 / a.single.max(1e-9))),
                rate(a.single),
                a.cores,
                rate(a.allows(a.cores))
            );
            let _ = writeln!(out);
        }
        if self.first_start.is_some() || !self.restarts.is_empty() {
            let _ = writeln!(
                out,
                "| startup | exec → address printed | exec → first `/healthz` 200 | idle RSS (1 s later) |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|");
            if let Some(s) = &self.first_start {
                let _ = writeln!(
                    out,
                    "| first start (fresh database: generates the RS256 and ES256 keys) | {} | {} | {} |",
                    millis(s.listening),
                    millis(s.healthy),
                    megabytes(s.idle_rss_kib)
                );
            }
            if let Some(s) = self.restart_median() {
                let _ = writeln!(
                    out,
                    "| restart (median of {}) | {} | {} | {} |",
                    self.restarts.len(),
                    millis(s.listening),
                    millis(s.healthy),
                    megabytes(s.idle_rss_kib)
                );
            }
            let _ = writeln!(out);
        }
        out.push_str(&self.targets());
        out
    }

    /// The table comparing this build with the baseline: each one's median round, and the change
    /// as the median of the rounds' ratios (each round ran both builds minutes apart at most, so
    /// a ratio of one round is less at the mercy of the machine's drift than either rate).
    fn comparison(&self) -> String {
        if self.baseline_runs.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| workload | workers | baseline iterations/s | iterations/s | change (median of rounds) | p99: baseline → this build | each round's change |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        for (workload, concurrency) in self.measured() {
            let (Some((tested, _)), Some((baseline, _))) = (
                median_round(&self.runs, workload, concurrency),
                median_round(&self.baseline_runs, workload, concurrency),
            ) else {
                continue;
            };
            let mut ratios: Vec<f64> = self
                .runs
                .iter()
                .filter(|r| r.workload == workload && r.concurrency == concurrency)
                .filter_map(|r| {
                    let b = self.baseline_runs.iter().find(|b| {
                        b.workload == workload && b.concurrency == concurrency && b.round == r.round
                    })?;
                    let base = b.stats.iterations_per_second();
                    (base > 0.0).then(|| r.stats.iterations_per_second() / base)
                })
                .collect();
            let each: Vec<String> = ratios.iter().map(|&x| change(x)).collect();
            ratios.sort_by(f64::total_cmp);
            let Some(&median) = ratios.get(ratios.len().saturating_sub(1) / 2) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {workload} | {concurrency} | {} | {} | {} | {} → {} | {} |",
                rate(baseline.stats.iterations_per_second()),
                rate(tested.stats.iterations_per_second()),
                change(median),
                latency(baseline.stats.quantile_us(0.99)),
                latency(tested.stats.quantile_us(0.99)),
                each.join(" / ")
            );
        }
        let _ = writeln!(out);
        out
    }

    fn restart_median(&self) -> Option<StartupSample> {
        if self.restarts.is_empty() {
            return None;
        }
        let mut rss: Vec<u64> = self
            .restarts
            .iter()
            .filter_map(|s| s.idle_rss_kib)
            .collect();
        rss.sort_unstable();
        Some(StartupSample {
            listening: median(self.restarts.iter().map(|s| s.listening).collect())?,
            healthy: median(self.restarts.iter().map(|s| s.healthy).collect())?,
            idle_rss_kib: rss.get(rss.len() / 2).copied(),
        })
    }

    /// The targets of issue 8, judged on this run (throughput ones at every concurrency; the
    /// verdict is the one at the highest).
    fn targets(&self) -> String {
        let mut rows: Vec<(String, String, &'static str)> = Vec::new();
        let top = self.concurrency.iter().copied().max().unwrap_or(1);
        let ratio_row = |workload: &str,
                         metric: fn(&Stats) -> f64,
                         needed: &dyn Fn(usize) -> Option<f64>|
         -> Option<(String, bool)> {
            let mut cells = Vec::new();
            let mut met_at_top = None;
            for &c in &self.concurrency {
                let (Some(run), Some(need)) = (self.run(workload, c), needed(c)) else {
                    continue;
                };
                let got = metric(&run.stats);
                let share = if need > 0.0 { got / need * 100.0 } else { 0.0 };
                cells.push(format!(
                    "{c}: {} of {} ({share:.0} %)",
                    rate(got),
                    rate(need)
                ));
                if c == top {
                    met_at_top = Some(got >= need);
                }
            }
            met_at_top.map(|met| (cells.join("; "), met))
        };
        let ceiling_rps = |c: usize| {
            self.run("ceiling", c)
                .map(|r| r.stats.requests_per_second())
        };

        let iterations = |s: &Stats| s.iterations_per_second();
        let requests = |s: &Stats| s.requests_per_second();
        if let Some((cells, met)) = ratio_row("sso-validate", iterations, &|c| {
            ceiling_rps(c).map(|x| x * 0.5 / 2.0)
        }) {
            rows.push((
                "`sso-validate` ≥ 50 % of the ceiling's requests/s ÷ 2 (flows/s)".into(),
                cells,
                verdict(met),
            ));
        }
        if let Some((cells, met)) = ratio_row("validate-only", requests, &|c| {
            ceiling_rps(c).map(|x| x * 0.5)
        }) {
            rows.push((
                "`validate-only` ≥ 50 % of the ceiling (requests/s)".into(),
                cells,
                verdict(met),
            ));
        }
        for workload in ["sso-validate", "validate-only", "oidc-code"] {
            if let Some(run) = self.run(workload, 64) {
                // Judged by the iteration (all its requests), the stricter reading; a request's
                // own p99 is shown beside it.
                let p99 = run.stats.quantile_us(0.99);
                let mut measured = latency(p99);
                if run.stats.requests > run.stats.iterations {
                    let _ = write!(
                        measured,
                        " per iteration, {} per request",
                        latency(run.stats.request_quantile_us(0.99))
                    );
                }
                rows.push((
                    format!("`{workload}` p99 < 10 ms at 64 workers"),
                    measured,
                    verdict(p99 > 0 && p99 < 10_000),
                ));
            }
        }
        if let Some(a) = &self.argon2 {
            if let Some((cells, met)) =
                ratio_row("password-login", iterations, &|c| Some(a.allows(c) * 0.9))
            {
                rows.push((
                    format!(
                        "`password-login` ≥ 90 % of what Argon2id allows ({} logins/s on {} cores)",
                        rate(a.allows(a.cores)),
                        a.cores
                    ),
                    cells,
                    verdict(met),
                ));
            }
        }
        if let Some((cells, met)) = ratio_row("oidc-code", iterations, &|_| Some(3000.0)) {
            rows.push((
                "`oidc-code` ≥ 3,000 flows/s (ES256)".into(),
                cells,
                verdict(met),
            ));
        }
        if let Some(s) = self.restart_median() {
            rows.push((
                "startup < 100 ms (exec → first 200)".into(),
                millis(s.healthy),
                verdict(s.healthy < Duration::from_millis(100)),
            ));
            rows.push((
                "idle RSS < 20 MB".into(),
                megabytes(s.idle_rss_kib),
                verdict(s.idle_rss_kib.is_some_and(|k| k * 1024 < 20_000_000)),
            ));
        }
        if rows.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| target (issue 8) | measured (workers: value of needed) | verdict (at {top} workers) |"
        );
        let _ = writeln!(out, "|---|---|---|");
        for (target, measured, verdict) in rows {
            let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(1234.6), "1,235");
        assert_eq!(count(1_234_567.0), "1,234,567");
        assert_eq!(rate(5.71), "5.7");
        assert_eq!(rate(31_429.2), "31,429");
        assert_eq!(latency(0), "–");
        assert_eq!(latency(917), "917 µs");
        assert_eq!(latency(1_920), "1.92 ms");
        assert_eq!(latency(1_540_000), "1.54 s");
        assert_eq!(megabytes(Some(17_000)), "17.4 MB");
        assert_eq!(megabytes(None), "–");
    }

    #[test]
    fn commands_are_quoted_for_a_shell() {
        assert_eq!(shell_quote("--duration"), "--duration");
        assert_eq!(shell_quote("1,16,64"), "1,16,64");
        assert_eq!(shell_quote("valgrind --tool=x"), "'valgrind --tool=x'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    /// A report of `rounds` rounds at `concurrency`, 1 s warm-up and 1 s measured.
    fn report(concurrency: Vec<usize>, rounds: u32) -> Report {
        Report::new(
            vec!["tessera-bench".into()],
            "tessera".into(),
            concurrency,
            Duration::from_secs(1),
            Duration::from_secs(1),
            rounds,
        )
    }

    fn run(workload: &'static str, concurrency: usize, iterations: u64) -> Run {
        Run {
            workload,
            concurrency,
            round: 1,
            stats: Stats {
                iterations,
                requests: iterations * 2,
                errors: 0,
                latency: hdrhistogram::Histogram::new(3).unwrap(),
                request_latency: hdrhistogram::Histogram::new(3).unwrap(),
                window: Duration::from_secs(1),
                first_error: None,
            },
            rss_kib: None,
            cpu: None,
            note: String::new(),
        }
    }

    #[test]
    fn rounds_are_reported_by_their_median() {
        let mut report = report(vec![16, 64], 3);
        for (c, iterations) in [(64, 900), (16, 500), (64, 1200), (64, 1000), (16, 400)] {
            report.runs.push(run("sso-validate", c, iterations));
        }
        let (median, rates) = report.run_with_rounds("sso-validate", 64).unwrap();
        assert_eq!(median.stats.iterations, 1000);
        assert_eq!(rates, vec![900.0, 1000.0, 1200.0]);
        // Of two rounds, the slower.
        assert_eq!(
            report.run("sso-validate", 16).unwrap().stats.iterations,
            400
        );
        assert!(report.run("oidc-code", 64).is_none());
        let table = report.markdown();
        assert!(
            table.contains("| sso-validate | 64 | 1,000 | 2,000 |"),
            "{table}"
        );
        assert!(
            table.contains("rounds: 900 / 1,000 / 1,200 iterations/s"),
            "{table}"
        );
        assert_eq!(table.matches("| sso-validate |").count(), 2, "{table}");
    }

    #[test]
    fn a_baseline_is_compared_round_by_round() {
        let mut report = report(vec![64], 3);
        report.baseline = Some("old/tessera".into());
        // The machine slows down in round 2: the rounds' ratios still say +10 %, +10 %, +50 %.
        for (round, baseline, tested) in [(1, 1000, 1100), (2, 500, 550), (3, 1000, 1500)] {
            report.baseline_runs.push(Run {
                round,
                ..run("sso-validate", 64, baseline)
            });
            report.runs.push(Run {
                round,
                ..run("sso-validate", 64, tested)
            });
        }
        report.runs.push(run("ceiling", 64, 90_000));
        let table = report.markdown();
        assert!(table.contains("- **Baseline**: `old/tessera`"), "{table}");
        assert!(
            table.contains("| sso-validate | 64 | 1,000 | 1,100 | +10 % |"),
            "{table}"
        );
        assert!(table.contains("| +10 % / +10 % / +50 % |"), "{table}");
        assert!(!table.contains("| ceiling | 64 | –"), "{table}");
        assert_eq!(table.matches("| ceiling |").count(), 1, "{table}");
        assert_eq!(change(0.954), "-5 %");
    }

    #[test]
    fn the_latency_target_is_judged_by_the_iteration_and_shows_a_request() {
        let mut report = report(vec![64], 1);
        let mut sso = run("sso-validate", 64, 1000);
        // Iterations of 12 ms made of a 9 ms and a 3 ms request.
        for _ in 0..1000 {
            sso.stats.latency.record(12_000).unwrap();
            sso.stats.request_latency.record(9_000).unwrap();
            sso.stats.request_latency.record(3_000).unwrap();
        }
        report.runs.push(sso);
        let table = report.markdown();
        assert!(
            table.contains("| 12.01 ms per iteration, 9.01 ms per request | not met |"),
            "{table}"
        );
        assert!(table.contains("| 12.01 ms | 9.01 ms | 0 |"), "{table}");
    }

    #[test]
    fn argon2_bound_counts_usable_cores() {
        let a = Argon2Bound {
            single: 30.0,
            cores: 2,
            all: 50.0,
        };
        assert!((a.allows(1) - 30.0).abs() < 1e-9);
        assert!((a.allows(2) - 50.0).abs() < 1e-9);
        assert!((a.allows(64) - 50.0).abs() < 1e-9);
    }
}
