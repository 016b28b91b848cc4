//! A whole virtual cluster's syncer: the built-in syncers chosen by a
//! [`SyncConfig`], plus any custom ones, sharing one pair of clients and
//! one cancellation token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vcluster_core::{SingleNamespaceTranslator, Translator};

use crate::engine::{EngineConfig, EngineHandle, MetricsSnapshot, SyncEngine};
use crate::policy::PodPolicy;
use crate::syncer::{SyncContext, Syncer, DEFAULT_WATCH_TIMEOUT};
use crate::syncers::limits::HostLimits;
use crate::syncers::nodes::{NodeMode, NodeSelection};
use crate::syncers::pods::PodEnvironment;
use crate::syncers::service_addresses::{HostServiceAddresses, Reservations};

mod builtins;

/// Which objects of a kind are synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Selection {
    /// None.
    Off,
    /// Only those a pod needs (configmaps, secrets).
    #[default]
    Referenced,
    /// All of them.
    All,
}

/// Which built-in syncers run. The defaults are what a tenant needs for
/// workloads to run and be reachable (as vCluster's defaults); the
/// optional ones expose more of the host or need more of it.
#[derive(Clone, Debug)]
pub struct EnabledSyncers {
    /// Pods (and, with them, their status and node). Default on.
    pub pods: bool,
    /// ConfigMaps. Default: those pods refer to.
    pub config_maps: Selection,
    /// Secrets. Default: those pods (and synced ingresses) refer to.
    pub secrets: Selection,
    /// Services; the host's cluster IPs and node ports come back (see
    /// [`SyncConfig`] for the virtual API server's service range). Default on.
    pub services: bool,
    /// Endpoints of services without selector. Default on.
    pub endpoints: bool,
    /// EndpointSlices not managed by Kubernetes' controllers. Default on.
    pub endpoint_slices: bool,
    /// PersistentVolumeClaims (pods then wait for their claims). Default on.
    pub persistent_volume_claims: bool,
    /// Host events about synced objects. Default on.
    pub events: bool,
    /// The host nodes tenant pods run on (needs `pods`). Default on.
    pub nodes: bool,
    /// ServiceAccounts; pods then run under the translated account and wait
    /// for it, so every account a pod uses (including `default`) must exist
    /// in the virtual cluster. Default off.
    pub service_accounts: bool,
    /// Ingresses (and the TLS secrets they name). Default off.
    pub ingresses: bool,
    /// NetworkPolicies. Default off.
    pub network_policies: bool,
    /// PodDisruptionBudgets, so host drains respect them. Default off.
    pub pod_disruption_budgets: bool,
    /// The host's storage classes, shown to tenants. Default off.
    pub storage_classes: bool,
    /// The host's ingress classes, shown to tenants. Default off.
    pub ingress_classes: bool,
    /// The host's priority classes, shown to tenants. Default off.
    pub priority_classes: bool,
}

impl Default for EnabledSyncers {
    fn default() -> Self {
        Self {
            pods: true,
            config_maps: Selection::Referenced,
            secrets: Selection::Referenced,
            services: true,
            endpoints: true,
            endpoint_slices: true,
            persistent_volume_claims: true,
            events: true,
            nodes: true,
            service_accounts: false,
            ingresses: false,
            network_policies: false,
            pod_disruption_budgets: false,
            storage_classes: false,
            ingress_classes: false,
            priority_classes: false,
        }
    }
}

/// Everything a virtual cluster's syncer needs to know.
///
/// With the service syncer on, the virtual API server must accept the
/// host's service addresses: give it the host's service CIDR as an extra
/// range (`ApiServerConfig::extra_service_cidrs` of vcluster-apiserver).
/// Virtual services are then re-created with the cluster IP the host
/// assigned, so the address tenants see is the one that works; without it
/// they keep their virtual address (see [`crate::syncers::services`]).
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// The virtual cluster's name (the `managed-by` marker).
    pub vcluster_name: String,
    /// The host namespace all objects go to.
    pub host_namespace: String,
    /// Which built-in syncers run.
    pub syncers: EnabledSyncers,
    /// Settings of host pods.
    pub pod_environment: PodEnvironment,
    /// Which pods may run on the host at all (Pod Security Standards level,
    /// default baseline, and explicit exceptions); pods that break it are
    /// not synced and say why ([`crate::policy`]).
    pub pod_policy: PodPolicy,
    /// A ResourceQuota and/or LimitRange kept in the host namespace
    /// (default: none) ([`crate::syncers::limits`]).
    pub host_limits: HostLimits,
    /// Real copies of host nodes, or fake nodes.
    pub node_mode: NodeMode,
    /// Which host nodes are shown: those tenant pods run on (default), or
    /// all.
    pub node_selection: NodeSelection,
    /// Engine tunables, shared by every syncer.
    pub engine: EngineConfig,
    /// How long each watch runs before it is renewed; also how soon a
    /// watch on a silently dead connection is replaced (plus 5 s).
    pub watch_timeout: Duration,
    /// Host copies made by a [`HostServiceAddresses`] for virtual services
    /// not stored yet, which the service syncer must not collect (set by
    /// [`SyncConfig::host_service_addresses`]).
    pub service_reservations: Option<Reservations>,
}

impl SyncConfig {
    /// Defaults for virtual cluster `name` synced into `host_namespace`.
    pub fn new(name: impl Into<String>, host_namespace: impl Into<String>) -> Self {
        Self {
            vcluster_name: name.into(),
            host_namespace: host_namespace.into(),
            syncers: EnabledSyncers::default(),
            pod_environment: PodEnvironment::default(),
            pod_policy: PodPolicy::default(),
            host_limits: HostLimits::default(),
            node_mode: NodeMode::default(),
            node_selection: NodeSelection::default(),
            engine: EngineConfig::default(),
            watch_timeout: DEFAULT_WATCH_TIMEOUT,
            service_reservations: None,
        }
    }

    /// The provider to plug into the virtual API server
    /// (`ApiServerConfig::service_addresses`), so new services get the
    /// host's addresses at creation instead of being re-created with them
    /// later; this configuration's service syncer then respects its
    /// reservations.
    pub fn host_service_addresses(
        &mut self,
        host_client: kube::Client,
    ) -> Result<HostServiceAddresses, ConfigError> {
        let provider =
            HostServiceAddresses::new(host_client, &self.vcluster_name, &self.host_namespace)?;
        self.service_reservations = Some(provider.reservations());
        Ok(provider)
    }
}

/// Why a syncer cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The name or host namespace is not valid.
    #[error("invalid syncer configuration: {0}")]
    Translator(#[from] vcluster_core::Error),
}

/// The syncer of one virtual cluster.
pub struct VirtualClusterSyncer {
    ctx: Arc<SyncContext>,
    config: SyncConfig,
    engines: Vec<Arc<dyn EngineHandle>>,
    background: Vec<futures::future::BoxFuture<'static, ()>>,
    cancel: CancellationToken,
}

impl VirtualClusterSyncer {
    /// Builds the built-in syncers that `config` enables, between a virtual
    /// and a host cluster.
    pub fn new(
        config: SyncConfig,
        virtual_client: kube::Client,
        host_client: kube::Client,
    ) -> Result<Self, ConfigError> {
        let translator: Arc<dyn Translator> = Arc::new(SingleNamespaceTranslator::new(
            &config.vcluster_name,
            &config.host_namespace,
        )?);
        let ctx = Arc::new(SyncContext {
            translator,
            virtual_client,
            host_client,
            host_namespace: config.host_namespace.clone(),
            watch_timeout: config.watch_timeout,
        });
        let mut syncer = Self {
            ctx,
            config,
            engines: Vec::new(),
            background: Vec::new(),
            cancel: CancellationToken::new(),
        };
        syncer.add_builtins();
        Ok(syncer)
    }

    /// A token that stops everything when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The shared context (translator and clients).
    pub fn context(&self) -> Arc<SyncContext> {
        self.ctx.clone()
    }

    /// Adds a syncer of your own (a CRD over `DynamicObject`, say); returns
    /// its engine for access to its stores, queue and metrics.
    pub fn add<S: Syncer>(&mut self, syncer: S) -> SyncEngine<S> {
        let engine = SyncEngine::new(
            syncer,
            self.ctx.clone(),
            self.config.engine.clone(),
            self.cancel.clone(),
        );
        self.engines.push(Arc::new(engine.clone()));
        engine
    }

    /// Counters of every engine, by syncer name.
    pub fn metrics(&self) -> BTreeMap<&'static str, MetricsSnapshot> {
        self.engines
            .iter()
            .map(|e| (e.name(), e.metrics()))
            .collect()
    }

    /// Handles of every engine: their metrics stay readable after
    /// [`VirtualClusterSyncer::run`] has taken the syncer.
    pub fn engines(&self) -> Vec<Arc<dyn EngineHandle>> {
        self.engines.clone()
    }

    /// Runs every syncer until the cancel token fires, then gives them
    /// [`STOP_GRACE`] together to end; one still waiting on a cluster that
    /// stopped answering is aborted (its writes carry preconditions, and the
    /// next start reconciles every key), so a stop never hangs.
    pub async fn run(self) {
        // Dropping the set (this future dropped) aborts every task too.
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = BTreeMap::new();
        for engine in &self.engines {
            let engine = engine.clone();
            let name = engine.name();
            let task = tasks.spawn(async move { engine.run().await });
            names.insert(task.id(), name);
        }
        for future in self.background {
            let task = tasks.spawn(future);
            names.insert(task.id(), "background watcher");
        }
        self.cancel.cancelled().await;
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        while let Ok(Some(done)) =
            tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await
        {
            match done {
                Ok((id, ())) => {
                    names.remove(&id);
                }
                Err(err) => {
                    let name = names.remove(&err.id()).unwrap_or("syncer");
                    tracing::error!(syncer = name, error = %err, "ended abnormally");
                }
            }
        }
        for name in names.values() {
            tracing::warn!(syncer = name, grace = ?STOP_GRACE, "did not stop in time; aborted");
        }
        tasks.shutdown().await;
    }
}

/// How long a cancelled syncer's engines get to end on their own.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
