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

#[cfg(test)]
mod tests {
    use super::*;

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
