//! Who used the CPUs during a run: the server, the bench itself, and everything else on the
//! machine (other work on a shared machine skews every figure, so the report says how much).

use std::time::Instant;

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU times at one moment, in clock ticks.
pub(crate) struct Sample {
    at: Instant,
    busy: u64,
    server: u64,
    bench: u64,
}

/// Average cores in use between two samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) server: f64,
    pub(crate) bench: f64,
    pub(crate) other: f64,
}

/// Busy ticks of all CPUs (`/proc/stat`: user, nice, system, irq, softirq, steal).
fn busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let pick = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(pick(0) + pick(1) + pick(2) + pick(5) + pick(6) + pick(7))
}

/// User + system ticks of a process (`/proc/PID/stat` fields 14 and 15), children excluded.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Samples the machine, the server `server_pid` and this process.
pub(crate) fn sample(server_pid: Option<u32>) -> Option<Sample> {
    Some(Sample {
        at: Instant::now(),
        busy: busy_ticks()?,
        server: server_pid
            .and_then(|pid| process_ticks(&pid.to_string()))
            .unwrap_or(0),
        bench: process_ticks("self")?,
    })
}

/// Average cores used between `before` and `after`.
pub(crate) fn usage(before: &Sample, after: &Sample) -> Usage {
    let seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-6);
    let cores = |ticks: u64| ticks as f64 / TICKS_PER_SECOND / seconds;
    let busy = after.busy.saturating_sub(before.busy);
    let server = after.server.saturating_sub(before.server);
    let bench = after.bench.saturating_sub(before.bench);
    Usage {
        server: cores(server),
        bench: cores(bench),
        other: cores(busy.saturating_sub(server + bench)),
    }
}
