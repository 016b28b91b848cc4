//! Counters of one engine, cheap to update from every worker and readable
//! at any time, for a metrics endpoint or a benchmark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Live counters of one engine.
#[derive(Debug, Default)]
pub struct SyncMetrics {
    reconciles: AtomicU64,
    writes: AtomicU64,
    conflicts: AtomicU64,
    errors: AtomicU64,
    lag_micros_total: AtomicU64,
    lag_micros_max: AtomicU64,
}

/// A point-in-time copy of [`SyncMetrics`] plus the queue's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Reconciles run.
    pub reconciles: u64,
    /// Writes made to either cluster (creates, patches, deletes).
    pub writes: u64,
    /// Reconciles that lost a race (409) and were retried quickly.
    pub conflicts: u64,
    /// Reconciles that failed and were retried with backoff.
    pub errors: u64,
    /// Keys waiting in the queue.
    pub queue_depth: usize,
    /// Keys being reconciled.
    pub in_flight: usize,
    /// Mean time a key waited in the queue.
    pub mean_lag: Duration,
    /// Longest time a key waited in the queue.
    pub max_lag: Duration,
}

impl SyncMetrics {
    pub(crate) fn reconciled(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        self.lag_micros_total.fetch_add(micros, Ordering::Relaxed);
        self.lag_micros_max.fetch_max(micros, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads the counters.
    pub fn snapshot(&self, queue_depth: usize, in_flight: usize) -> MetricsSnapshot {
        let reconciles = self.reconciles.load(Ordering::Relaxed);
        let total = self.lag_micros_total.load(Ordering::Relaxed);
        MetricsSnapshot {
            reconciles,
            writes: self.writes.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            queue_depth,
            in_flight,
            mean_lag: Duration::from_micros(total.checked_div(reconciles).unwrap_or(0)),
            max_lag: Duration::from_micros(self.lag_micros_max.load(Ordering::Relaxed)),
        }
    }
}

/// The counters of every syncer in the Prometheus text format, one sample
/// per syncer (label `syncer`), for a `/metrics` endpoint
/// (`vcluster_apiserver::ApiServerConfig::metrics` takes it as is).
pub fn prometheus_text<'a>(
    syncers: impl IntoIterator<Item = (&'a str, &'a MetricsSnapshot)>,
) -> String {
    use std::fmt::Write as _;
    let syncers: Vec<(&str, &MetricsSnapshot)> = syncers.into_iter().collect();
    type Value = fn(&MetricsSnapshot) -> String;
    let families: [(&str, &str, &str, Value); 8] = [
        (
            "vcluster_syncer_reconciles_total",
            "counter",
            "Reconciles run.",
            |m| m.reconciles.to_string(),
        ),
        (
            "vcluster_syncer_writes_total",
            "counter",
            "Creates, patches and deletes sent to either cluster.",
            |m| m.writes.to_string(),
        ),
        (
            "vcluster_syncer_conflicts_total",
            "counter",
            "Reconciles that lost a race (409) and were retried at once.",
            |m| m.conflicts.to_string(),
        ),
        (
            "vcluster_syncer_errors_total",
            "counter",
            "Reconciles that failed and were retried with backoff.",
            |m| m.errors.to_string(),
        ),
        (
            "vcluster_syncer_queue_depth",
            "gauge",
            "Keys waiting in the work queue.",
            |m| m.queue_depth.to_string(),
        ),
        (
            "vcluster_syncer_in_flight",
            "gauge",
            "Keys being reconciled.",
            |m| m.in_flight.to_string(),
        ),
        (
            "vcluster_syncer_queue_lag_mean_seconds",
            "gauge",
            "Mean time a key waited in the queue.",
            |m| m.mean_lag.as_secs_f64().to_string(),
        ),
        (
            "vcluster_syncer_queue_lag_max_seconds",
            "gauge",
            "Longest time a key waited in the queue.",
            |m| m.max_lag.as_secs_f64().to_string(),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (syncer, metrics) in &syncers {
            let _ = writeln!(out, "{name}{{syncer=\"{syncer}\"}} {}", value(metrics));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_one_sample_per_syncer() {
        let pods = MetricsSnapshot {
            reconciles: 7,
            writes: 3,
            queue_depth: 2,
            max_lag: Duration::from_millis(1500),
            ..MetricsSnapshot::default()
        };
        let configmaps = MetricsSnapshot::default();
        let text = prometheus_text([("pods", &pods), ("configmaps", &configmaps)]);
        assert!(
            text.contains("# TYPE vcluster_syncer_reconciles_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("vcluster_syncer_reconciles_total{syncer=\"pods\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("vcluster_syncer_writes_total{syncer=\"configmaps\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("vcluster_syncer_queue_depth{syncer=\"pods\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("vcluster_syncer_queue_lag_max_seconds{syncer=\"pods\"} 1.5\n"),
            "{text}"
        );
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            assert!(series.ends_with("\"}"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn snapshot_averages_lag() {
        let m = SyncMetrics::default();
        m.reconciled(Duration::from_millis(10));
        m.reconciled(Duration::from_millis(30));
        m.wrote();
        m.conflict();
        let s = m.snapshot(3, 1);
        assert_eq!(
            (s.reconciles, s.writes, s.conflicts, s.errors),
            (2, 1, 1, 0)
        );
        assert_eq!(s.mean_lag, Duration::from_millis(20));
        assert_eq!(s.max_lag, Duration::from_millis(30));
        assert_eq!((s.queue_depth, s.in_flight), (3, 1));
    }
}
