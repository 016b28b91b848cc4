//! Statistics of samples: median and range of per-sample throughputs, and
//! quantiles of pooled latencies.

use std::time::Duration;

/// Median and range of per-sample values (one value per sample, e.g. a
/// throughput).
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// The median sample.
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub samples: usize,
}

impl Spread {
    /// The spread of `values`; panics when there are none (a bench that
    /// measured nothing is a bug).
    pub fn of(values: &[f64]) -> Self {
        assert!(!values.is_empty(), "no samples to summarize");
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: median_of_sorted(&sorted),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            samples: sorted.len(),
        }
    }

    /// `(max - min) / median`, in percent: how noisy the samples were.
    pub fn spread_pct(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median * 100.0
        }
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Latencies of one measurement, pooled over its samples.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    values: Vec<Duration>,
}

/// Quantiles of [`Latencies`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LatencySummary {
    /// How many latencies.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Latencies {
    /// Room for `n` latencies.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            values: Vec::with_capacity(n),
        }
    }

    /// Adds one latency.
    pub fn push(&mut self, latency: Duration) {
        self.values.push(latency);
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.values.extend(other.values);
    }

    /// How many latencies.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// p50, p99 and max (nearest rank); zeros when empty.
    pub fn summary(&self) -> LatencySummary {
        if self.values.is_empty() {
            return LatencySummary::default();
        }
        let mut sorted = self.values.clone();
        sorted.sort_unstable();
        let rank = |q: f64| {
            let index = (q * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        LatencySummary {
            count: sorted.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// A per-second rate of `count` things done in `elapsed`.
pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}
