//! The load generator: `concurrency` workers, each repeating its operation
//! until the time is up, on one thread (the bench runs on core 1, the
//! servers on core 0). Rates, latencies and the server's CPU per operation.

use std::{
    future::Future,
    pin::Pin,
    time::{Duration, Instant},
};

use crate::procs::Server;

/// One worker's next operation.
pub type Op<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + 'a>>;

/// What a run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Run {
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Operations per second.
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The server's CPU per operation, in milliseconds.
    pub cpu_ms_per_op: Option<f64>,
}

/// A worker: state it keeps between operations, and the operation.
pub trait Worker {
    fn op(&mut self) -> Op<'_>;
}

/// Runs `workers` side by side for `duration`; measures `server`'s CPU
/// over the same time.
pub async fn run<W: Worker>(
    mut workers: Vec<W>,
    duration: Duration,
    server: Option<&Server>,
) -> Run {
    let cpu_before = server.map(Server::cpu_seconds);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks = workers.iter_mut().map(|worker| async move {
        let mut latencies = Vec::new();
        let mut errors = 0u64;
        while Instant::now() < deadline {
            let began = Instant::now();
            match worker.op().await {
                Ok(()) => latencies.push(began.elapsed()),
                Err(e) => {
                    errors += 1;
                    if errors == 1 {
                        eprintln!("  an operation failed: {e:#}");
                    }
                }
            }
        }
        (latencies, errors)
    });
    let results = futures_util::future::join_all(tasks).await;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = server.map(Server::cpu_seconds);
    let mut latencies: Vec<Duration> = results.iter().flat_map(|(l, _)| l.clone()).collect();
    let errors = results.iter().map(|(_, e)| e).sum();
    latencies.sort_unstable();
    let ops = latencies.len() as u64;
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Run {
        ops,
        errors,
        seconds,
        rate: ops as f64 / seconds,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        cpu_ms_per_op: match (cpu_before, cpu) {
            (Some(before), Some(after)) if ops > 0 => Some((after - before) * 1000.0 / ops as f64),
            _ => None,
        },
    }
}

/// The run of median rate among `runs` (taken in turns with another
/// measurement), of which there is at least one: its latencies and CPU
/// come with it, from the same run.
pub fn median_by_rate(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    runs.swap_remove(runs.len() / 2)
}

/// How far apart the rates of runs of one measurement may lie, as a share
/// of the fastest, before its ratio is reported as noise rather than
/// judged: a quiet core repeats a run within about a tenth.
pub const NOISY: f64 = 0.25;

/// The lowest and the highest of `values` (for none, infinity and 0).
pub fn bounds(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    values
        .into_iter()
        .fold((f64::INFINITY, 0.0), |(low, high), v| {
            (low.min(v), high.max(v))
        })
}

/// How far apart the rates of `runs` lie, as a share of the fastest.
pub fn spread(runs: &[Run]) -> f64 {
    let (slowest, fastest) = bounds(runs.iter().map(|r| r.rate));
    if fastest > 0.0 {
        (fastest - slowest) / fastest
    } else {
        0.0
    }
}

/// The slowest and fastest of `runs`, as `1234-5678/s`.
pub fn rate_range(runs: &[Run]) -> String {
    let (slowest, fastest) = bounds(runs.iter().map(|r| r.rate));
    format!("{slowest:.0}-{fastest:.0}/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rate: f64) -> Run {
        Run {
            ops: 0,
            errors: 0,
            seconds: 1.0,
            rate,
            p50_ms: 0.0,
            p99_ms: 0.0,
            cpu_ms_per_op: None,
        }
    }

    #[test]
    fn spread_and_median_of_repeated_runs() {
        let runs = vec![at(40_000.0), at(10_000.0), at(38_000.0)];
        assert!((spread(&runs) - 0.75).abs() < 1e-9);
        assert!(spread(&runs) > NOISY);
        assert!(spread(&[at(40_000.0), at(37_000.0)]) < NOISY);
        assert_eq!(rate_range(&runs), "10000-40000/s");
        assert_eq!(bounds([2.0, 1.0, 3.0]), (1.0, 3.0));
        assert_eq!(median_by_rate(runs).rate, 38_000.0);
    }
}
