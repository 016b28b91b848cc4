//! `/metrics`: the server's own gauges in the Prometheus text format, and
//! whatever the embedder adds ([`crate::server::ApiServerConfig::metrics`]),
//! e.g. the syncer's counters, so one scrape of the virtual cluster's
//! address shows both.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::watch_cache::WatchHub;

/// Extra metrics in the Prometheus text format, rendered at each scrape.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// The body of `/metrics`.
pub(crate) fn render(hub: &WatchHub, extra: &[MetricsSource]) -> String {
    let mut out = String::new();
    let gauges = [
        (
            "vcluster_apiserver_watchers",
            "Client watches open now.",
            hub.open_watchers() as u64,
        ),
        (
            "vcluster_apiserver_watch_queued_events",
            "Events buffered for client watches and not yet read by them.",
            hub.queued_events() as u64,
        ),
        (
            "vcluster_apiserver_dispatched_revision",
            "The store revision up to which every write went out to watches.",
            hub.revision(),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    for source in extra {
        let text = source();
        out.push_str(&text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
