//! The closed-loop load generator: N workers, each on its own keep-alive connection, each
//! starting its next iteration as soon as the last one ended. Only iterations that start after
//! the warm-up and end before the deadline count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;

use crate::workloads::{iterate, Kind, Outcome, Shared, Worker};

/// What a run measured.
pub(crate) struct Stats {
    pub(crate) iterations: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Iteration latency, microseconds.
    pub(crate) latency: Histogram<u64>,
    /// The latency of each request of the iterations counted, microseconds.
    pub(crate) request_latency: Histogram<u64>,
    /// The measured window (shorter than asked when a validate-only run used up its tickets).
    pub(crate) window: Duration,
    pub(crate) first_error: Option<String>,
}

impl Stats {
    pub(crate) fn iterations_per_second(&self) -> f64 {
        per_second(self.iterations, self.window)
    }

    pub(crate) fn requests_per_second(&self) -> f64 {
        per_second(self.requests, self.window)
    }

    /// A quantile of the iterations' latency, microseconds (0 without samples).
    pub(crate) fn quantile_us(&self, q: f64) -> u64 {
        quantile(&self.latency, q)
    }

    /// A quantile of the requests' latency, microseconds (0 without samples).
    pub(crate) fn request_quantile_us(&self, q: f64) -> u64 {
        quantile(&self.request_latency, q)
    }
}

fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn per_second(count: u64, window: Duration) -> f64 {
    let seconds = window.as_secs_f64();
    if seconds > 0.0 {
        // Counts stay far below 2^52: the conversion is exact.
        count as f64 / seconds
    } else {
        0.0
    }
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 120_000_000, 3).map_err(|e| anyhow!("histogram: {e:?}"))
}

struct Tally {
    iterations: u64,
    requests: u64,
    errors: u64,
    latency: Histogram<u64>,
    request_latency: Histogram<u64>,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Result<Self> {
        Ok(Self {
            iterations: 0,
            requests: 0,
            errors: 0,
            latency: histogram()?,
            request_latency: histogram()?,
            first_error: None,
        })
    }
}

/// Runs `kind` with one task per worker: `warmup`, then `duration` measured. Returns the stats
/// and the workers (their connections stay open for the next run).
pub(crate) async fn run(
    kind: Kind,
    shared: &Arc<Shared>,
    workers: Vec<Worker>,
    warmup: Duration,
    duration: Duration,
) -> Result<(Stats, Vec<Worker>)> {
    let start = Instant::now();
    let warm_end = start + warmup;
    let end = warm_end + duration;
    let mut tasks = Vec::with_capacity(workers.len());
    for worker in workers {
        let shared = Arc::clone(shared);
        let mut tally = Tally::new()?;
        tasks.push(tokio::spawn(async move {
            let mut worker = worker;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                worker.conn.take_request_times();
                let outcome = iterate(kind, &shared, &mut worker).await;
                let t1 = Instant::now();
                let window_end = shared.exhausted.get().map_or(end, |&e| e.min(end));
                let counted = t0 >= warm_end && t1 <= window_end;
                match outcome {
                    Ok(Outcome::Done(requests)) => {
                        if counted {
                            tally.iterations += 1;
                            tally.requests += u64::from(requests);
                            let micros = u64::try_from(t1.duration_since(t0).as_micros())
                                .unwrap_or(u64::MAX);
                            tally.latency.saturating_record(micros.max(1));
                            for micros in worker.conn.take_request_times() {
                                tally.request_latency.saturating_record(micros.max(1));
                            }
                        }
                    }
                    Ok(Outcome::Exhausted) => {
                        shared.exhausted.get_or_init(|| t0);
                        break;
                    }
                    Err(e) => {
                        worker.conn.reset();
                        if counted {
                            tally.errors += 1;
                        }
                        if tally.first_error.is_none() {
                            tally.first_error = Some(format!("{e:#}"));
                        }
                        // A server that refuses connections must not turn this into a spin.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            (tally, worker)
        }));
    }
    let mut total = Tally::new()?;
    let mut workers = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (tally, worker) = task.await?;
        total.iterations += tally.iterations;
        total.requests += tally.requests;
        total.errors += tally.errors;
        for (sum, part) in [
            (&mut total.latency, &tally.latency),
            (&mut total.request_latency, &tally.request_latency),
        ] {
            sum.add(part).map_err(|e| anyhow!("histogram: {e:?}"))?;
        }
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
        workers.push(worker);
    }
    let window_end = shared.exhausted.get().map_or(end, |&e| e.min(end));
    let stats = Stats {
        iterations: total.iterations,
        requests: total.requests,
        errors: total.errors,
        latency: total.latency,
        request_latency: total.request_latency,
        window: window_end.saturating_duration_since(warm_end),
        first_error: total.first_error,
    };
    Ok((stats, workers))
}
