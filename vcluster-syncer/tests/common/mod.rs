//! The syncer's scenarios: a virtual cluster (our API server, from the
//! test kit), a host of either kind ([`HostKind`]: ours, or the real
//! kube-apiserver) and a syncer between them; [`on_both_hosts!`] runs a
//! scenario on each. Everything generic (servers, waiting, the fault
//! proxy, the real host) is in `vcluster_testkit`; what is here needs the
//! syncer crate.

#![allow(dead_code)]

mod fixtures;
mod host;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vcluster_apiserver::ApiServerConfig;
use vcluster_syncer::engine::MetricsSnapshot;
use vcluster_syncer::{EngineHandle, SyncConfig, VirtualClusterSyncer};

// Each test binary uses a part of the fixtures.
#[allow(unused_imports)]
pub use fixtures::*;
pub use host::{Host, HostKind};
pub use vcluster_testkit::cluster::Cluster;
pub use vcluster_testkit::{eventually, DEADLINE};

/// The host's service range in environments that give the two clusters
/// different ranges (as a real host and its virtual cluster have).
pub const HOST_SERVICE_CIDR: &str = "10.128.0.0/16";

/// A virtual cluster, a host cluster and a running syncer.
pub struct Environment {
    pub virtual_cluster: Cluster,
    pub host: Host,
    pub host_namespace: String,
    pub name: String,
    pub syncer: Option<RunningSyncer>,
}

/// A syncer running in the background.
pub struct RunningSyncer {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningSyncer {
    /// Stops the syncer and waits for it.
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("syncer stops in time")
            .expect("syncer task");
    }
}

pub fn config(name: &str, host_namespace: &str) -> SyncConfig {
    let mut config = SyncConfig::new(name, host_namespace);
    config.engine.workers = 4;
    config
}

/// Starts a syncer for `config` between the two clusters.
pub fn start_syncer(
    virtual_cluster: &Cluster,
    host: &Cluster,
    config: SyncConfig,
) -> RunningSyncer {
    start_syncer_to(virtual_cluster, host.client(), config)
}

/// Starts a syncer for `config` from `virtual_cluster` to the host behind
/// `host`.
pub fn start_syncer_to(
    virtual_cluster: &Cluster,
    host: kube::Client,
    config: SyncConfig,
) -> RunningSyncer {
    let syncer =
        VirtualClusterSyncer::new(config, virtual_cluster.client(), host).expect("syncer config");
    let cancel = syncer.cancel_token();
    let task = tokio::spawn(syncer.run());
    RunningSyncer { cancel, task }
}

/// A syncer running in the background whose engines' counters can be read.
pub struct MeteredSyncer {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub engines: Vec<Arc<dyn EngineHandle>>,
}

impl MeteredSyncer {
    /// Every engine's counters, by syncer name.
    pub fn metrics(&self) -> BTreeMap<&'static str, MetricsSnapshot> {
        self.engines
            .iter()
            .map(|e| (e.name(), e.metrics()))
            .collect()
    }

    /// One engine's counters.
    pub fn metrics_of(&self, name: &str) -> MetricsSnapshot {
        self.engines
            .iter()
            .find(|e| e.name() == name)
            .unwrap_or_else(|| panic!("no engine {name}"))
            .metrics()
    }

    /// Cancels the syncer and waits at most `bound` for it to stop; returns
    /// how long it took. Fails the test if it takes longer or panicked.
    pub async fn stop_within(self, bound: Duration) -> Duration {
        let start = Instant::now();
        self.cancel.cancel();
        tokio::time::timeout(bound, self.task)
            .await
            .unwrap_or_else(|_| panic!("syncer did not stop within {bound:?}"))
            .expect("syncer task did not panic");
        start.elapsed()
    }
}

/// Starts a syncer for `config` between two clients (the host one may go
/// through a [`FaultProxy`]).
pub fn start_metered_syncer(
    virtual_client: kube::Client,
    host_client: kube::Client,
    config: SyncConfig,
) -> MeteredSyncer {
    let syncer =
        VirtualClusterSyncer::new(config, virtual_client, host_client).expect("syncer config");
    let cancel = syncer.cancel_token();
    let engines = syncer.engines();
    let task = tokio::spawn(syncer.run());
    MeteredSyncer {
        cancel,
        task,
        engines,
    }
}

/// Runs each scenario `async fn name(host: HostKind)` as two tests, one per
/// host: `name::our_host` and `name::real_host`.
#[macro_export]
macro_rules! on_both_hosts {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn our_host() {
                super::$scenario($crate::common::HostKind::Ours).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn real_host() {
                super::$scenario($crate::common::HostKind::Real).await
            }
        }
    )*};
}

impl Environment {
    /// A fresh virtual cluster, a host of `kind` and a syncer of virtual
    /// cluster `name` (host namespace `vcluster-<name>`).
    pub async fn start(kind: HostKind, name: &str) -> Self {
        Self::start_with(kind, name, |_| {}).await
    }

    pub fn host_name(&self, namespace: &str, name: &str) -> String {
        vcluster_core::safe_concat_name(&[name, "x", namespace, "x", &self.name])
    }
    /// A fresh virtual cluster accepting the host's service addresses (as a
    /// virtual cluster must for the service syncer to show host cluster
    /// IPs), a host of `kind` with its own service range
    /// ([`HOST_SERVICE_CIDR`]), and a syncer whose configuration
    /// `configure` adjusts.
    pub async fn start_with(
        kind: HostKind,
        name: &str,
        configure: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        Self::start_custom(
            kind,
            name,
            |v| v.extra_service_cidrs = vec![HOST_SERVICE_CIDR.to_owned()],
            configure,
        )
        .await
    }

    /// A fresh virtual cluster configured by `configure_virtual`, a host
    /// of `kind`, and a syncer; new virtual services get their addresses
    /// from the host at creation (as in the demo).
    pub async fn start_custom(
        kind: HostKind,
        name: &str,
        configure_virtual: impl FnOnce(&mut ApiServerConfig),
        configure_sync: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        Self::start_inner(kind, name, configure_virtual, configure_sync, true).await
    }

    /// Like [`Environment::start_with`], but the virtual API server
    /// allocates service addresses itself, so the syncer re-creates each
    /// virtual service with the host's (the fallback path).
    pub async fn start_without_host_addresses(kind: HostKind, name: &str) -> Self {
        Self::start_inner(
            kind,
            name,
            |v| v.extra_service_cidrs = vec![HOST_SERVICE_CIDR.to_owned()],
            |_| {},
            false,
        )
        .await
    }

    async fn start_inner(
        kind: HostKind,
        name: &str,
        configure_virtual: impl FnOnce(&mut ApiServerConfig),
        configure_sync: impl FnOnce(&mut SyncConfig),
        host_addresses: bool,
    ) -> Self {
        init_logging();
        let host = Host::start(kind).await;
        let host_namespace = format!("vcluster-{name}");
        host.create_namespace(&host_namespace).await;
        let mut sync_config = config(name, &host_namespace);
        configure_sync(&mut sync_config);
        let provider = host_addresses.then(|| {
            sync_config
                .host_service_addresses(host.client.clone())
                .expect("a service address provider")
        });
        let virtual_cluster = Cluster::start_configured(|v| {
            if let Some(provider) = provider {
                v.service_addresses = Some(Arc::new(provider));
            }
            configure_virtual(v);
        })
        .await;
        let syncer = start_syncer_to(&virtual_cluster, host.client.clone(), sync_config);
        Self {
            virtual_cluster,
            host,
            host_namespace,
            name: name.to_owned(),
            syncer: Some(syncer),
        }
    }
}

/// Where a robustness scenario starts: a fresh virtual cluster and a host
/// of `kind` with `host_namespace` made; the scenario starts its own
/// syncer (metered, often through a fault proxy).
pub async fn clusters(kind: HostKind, host_namespace: &str) -> (Cluster, Host) {
    init_logging();
    let virtual_cluster = Cluster::start().await;
    let host = Host::start(kind).await;
    host.create_namespace(host_namespace).await;
    (virtual_cluster, host)
}

/// Logs to the test's output when `RUST_LOG` asks for it (shown for a
/// failing test).
pub fn init_logging() {
    vcluster_testkit::init_logging("off");
}
