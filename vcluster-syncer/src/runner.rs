//! A whole virtual cluster's syncer: the built-in syncers chosen by a
//! [`SyncConfig`], plus any custom ones, sharing one pair of clients and
//! one cancellation token.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio_util::sync::CancellationToken;
use vcluster_core::{SingleNamespaceTranslator, Translator, VirtualKey};

use crate::engine::{EngineConfig, MetricsSnapshot, SyncEngine};
use crate::syncer::{SyncContext, Syncer};
use crate::syncers::data::DataSyncer;
use crate::syncers::pods::{PodEnvironment, PodReferences, PodSyncer, WaitFor};

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

/// Which built-in syncers run.
#[derive(Clone, Debug)]
pub struct EnabledSyncers {
    /// Pods (and, with them, their status and node).
    pub pods: bool,
    /// ConfigMaps.
    pub config_maps: Selection,
    /// Secrets.
    pub secrets: Selection,
}

impl Default for EnabledSyncers {
    fn default() -> Self {
        Self {
            pods: true,
            config_maps: Selection::Referenced,
            secrets: Selection::Referenced,
        }
    }
}

/// Everything a virtual cluster's syncer needs to know.
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
    /// Engine tunables, shared by every syncer.
    pub engine: EngineConfig,
}

impl SyncConfig {
    /// Defaults for virtual cluster `name` synced into `host_namespace`.
    pub fn new(name: impl Into<String>, host_namespace: impl Into<String>) -> Self {
        Self {
            vcluster_name: name.into(),
            host_namespace: host_namespace.into(),
            syncers: EnabledSyncers::default(),
            pod_environment: PodEnvironment::default(),
            engine: EngineConfig::default(),
        }
    }
}

/// An engine of any kind, for running a heterogeneous set.
#[async_trait]
pub trait EngineHandle: Send + Sync {
    /// The syncer's name.
    fn name(&self) -> &'static str;
    /// Runs until cancelled.
    async fn run(&self);
    /// Counters right now.
    fn metrics(&self) -> MetricsSnapshot;
}

#[async_trait]
impl<S: Syncer> EngineHandle for SyncEngine<S> {
    fn name(&self) -> &'static str {
        SyncEngine::name(self)
    }

    async fn run(&self) {
        SyncEngine::run(self).await
    }

    fn metrics(&self) -> MetricsSnapshot {
        SyncEngine::metrics(self)
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

    /// Runs every syncer until the cancel token fires.
    pub async fn run(self) {
        let mut tasks = Vec::new();
        for engine in &self.engines {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move { engine.run().await }));
        }
        for future in self.background {
            tasks.push(tokio::spawn(future));
        }
        self.cancel.cancelled().await;
        for task in tasks {
            // Engines end on the token; background watchers are aborted.
            if tokio::time::timeout(std::time::Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a syncer did not stop within 10s");
            }
        }
    }

    /// A store of the virtual namespaces, kept by a background watcher.
    fn namespace_store(&mut self) -> Store<Namespace> {
        let (store, writer) = reflector::store();
        let api: Api<Namespace> = Api::all(self.ctx.virtual_client.clone());
        let cancel = self.cancel.clone();
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff();
        self.background.push(Box::pin(async move {
            futures::pin_mut!(stream);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    item = stream.next() => if item.is_none() { break },
                }
            }
        }));
        store
    }

    fn add_builtins(&mut self) {
        let enabled = self.config.syncers.clone();
        let pods = if enabled.pods {
            let namespaces = self.namespace_store();
            let wait_for = WaitFor {
                config_maps: enabled.config_maps != Selection::Off,
                secrets: enabled.secrets != Selection::Off,
                claims: false,
                service_account: false,
            };
            let syncer = PodSyncer::new(self.config.pod_environment.clone(), wait_for)
                .with_namespace_labels(namespaces);
            Some(self.add(syncer))
        } else {
            None
        };
        let pod_store = pods.as_ref().map(|p| p.virtual_store());
        self.add_data::<ConfigMap>(enabled.config_maps, pod_store.clone(), pods.as_ref(), |r| {
            &r.config_maps
        });
        self.add_data::<Secret>(enabled.secrets, pod_store, pods.as_ref(), |r| &r.secrets);
    }

    fn add_data<K>(
        &mut self,
        selection: Selection,
        pod_store: Option<Store<Pod>>,
        pods: Option<&SyncEngine<PodSyncer>>,
        names: fn(&PodReferences) -> &std::collections::BTreeSet<String>,
    ) where
        K: crate::syncers::data::DataKind,
    {
        let syncer = match (selection, pod_store) {
            (Selection::Off, _) => return,
            (Selection::All, _) | (Selection::Referenced, None) => DataSyncer::<K>::all(),
            (Selection::Referenced, Some(store)) => DataSyncer::<K>::referenced_by(store),
        };
        let engine = self.add(syncer);
        if let Some(pods) = pods {
            // A new pod makes the objects it needs eligible: look at them now.
            let queue = engine.queue();
            pods.observe_virtual(move |pod: &Pod| {
                let Some(namespace) = pod.metadata.namespace.as_deref() else {
                    return;
                };
                for name in names(&PodReferences::of(pod)) {
                    queue.add(VirtualKey::namespaced(namespace, name.as_str()));
                }
            });
        }
    }
}
