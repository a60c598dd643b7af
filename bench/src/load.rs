//! Closed-loop HTTP load: `concurrency` clients each send their next request as soon as the previous
//! answer is fully read, until `total` requests have been sent. Latency is measured per request, from
//! sending to the last byte of the body.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::generate::Rng;

/// Latency figures of one measured scenario.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub count: usize,
    pub errors: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub per_second: f64,
    pub first_error: Option<String>,
    /// The run hit its time budget before sending every request.
    pub cut_short: bool,
}

impl Stats {
    pub fn from_samples(
        mut samples: Vec<Duration>,
        errors: usize,
        wall: Duration,
        first_error: Option<String>,
    ) -> Self {
        samples.sort_unstable();
        // Nearest-rank percentile.
        let pct = |p: usize| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let rank = (p * samples.len()).div_ceil(100).max(1);
            samples[rank - 1]
        };
        let count = samples.len() + errors;
        Self {
            count,
            errors,
            p50: pct(50),
            p90: pct(90),
            p99: pct(99),
            max: samples.last().copied().unwrap_or_default(),
            per_second: if wall.is_zero() {
                0.0
            } else {
                count as f64 / wall.as_secs_f64()
            },
            first_error,
            cut_short: false,
        }
    }

    pub fn line(&self, label: &str) -> String {
        let mut line = format!(
            "  {label:<44} n={:<6} p50={:>8} p90={:>8} p99={:>8} max={:>8} {:>8.0} req/s",
            self.count,
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            self.per_second
        );
        if self.cut_short {
            line.push_str("  (time budget reached: fewer requests than asked)");
        }
        if self.errors > 0 {
            line.push_str(&format!(
                "\n  !! {} error(s); first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        line
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency.max(1))
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// One GET, fully read: (latency, body) or a description of what went wrong.
pub async fn get(client: &reqwest::Client, url: &str) -> Result<(Duration, String), String> {
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: reading body: {e}"))?;
    let elapsed = started.elapsed();
    if !status.is_success() {
        return Err(format!("GET {url}: {status}: {}", truncate(&body, 300)));
    }
    Ok((elapsed, body))
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// Load settings of one run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub concurrency: usize,
    pub total: usize,
    /// No new request is sent after this long, so a slow endpoint cannot make the run endless.
    pub budget: Duration,
    pub seed: u64,
}

/// Runs `plan.total` GETs of `url(rng, i)` with `plan.concurrency` clients.
pub async fn run<F>(client: &reqwest::Client, plan: Plan, url: F) -> Stats
where
    F: Fn(&mut Rng, usize) -> String + Send + Sync + 'static,
{
    let Plan {
        concurrency,
        total,
        budget,
        seed,
    } = plan;
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(url);
    let started = Instant::now();
    let deadline = started + budget;
    let mut tasks = Vec::with_capacity(concurrency);
    for worker in 0..concurrency.max(1) {
        let next = next.clone();
        let url = url.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ (worker as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut samples = Vec::with_capacity(total / concurrency.max(1) + 1);
            let mut errors = 0;
            let mut first_error = None;
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let target = url(&mut rng, i);
                match get(&client, &target).await {
                    Ok((elapsed, _)) => samples.push(elapsed),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (samples, errors, first_error)
        }));
    }
    let mut samples = Vec::with_capacity(total);
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok((s, e, f)) => {
                samples.extend(s);
                errors += e;
                if first_error.is_none() {
                    first_error = f;
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("client task failed: {e}"));
            }
        }
    }
    let mut stats = Stats::from_samples(samples, errors, started.elapsed(), first_error);
    stats.cut_short = stats.count < total;
    stats
}

/// Percent-encodes a query parameter value (cursors are base64 with `+`, `/` and `=`).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let s = Stats::from_samples(samples, 0, Duration::from_secs(1), None);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.count, 100);
    }

    #[test]
    fn encodes_base64() {
        assert_eq!(encode("a+b/c="), "a%2Bb%2Fc%3D");
    }
}
