//! A whole virtual cluster's syncer: the built-in syncers chosen by a
//! [`SyncConfig`], plus any custom ones, sharing one pair of clients and
//! one cancellation token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio_util::sync::CancellationToken;
use vcluster_core::{SingleNamespaceTranslator, Translator, VirtualKey};

use crate::engine::{EngineConfig, EngineHandle, MetricsSnapshot, SyncEngine};
use crate::policy::PodPolicy;
use crate::syncer::{SyncContext, Syncer, DEFAULT_WATCH_TIMEOUT};
use crate::syncers::data::DataSyncer;
use crate::syncers::endpoints::EndpointsSyncer;
use crate::syncers::endpointslices::{service_of, EndpointSliceSyncer};
use crate::syncers::events::EventSyncer;
use crate::syncers::ingresses::{tls_secrets, IngressSyncer};
use crate::syncers::limits::{HostLimits, HostLimitsSyncer};
use crate::syncers::networkpolicies::NetworkPolicySyncer;
use crate::syncers::nodes::{node_of, NodeMode, NodeSelection, NodeSyncer};
use crate::syncers::pods::{PodEnvironment, PodReferences, PodSyncer, WaitFor};
use crate::syncers::pvcs::PersistentVolumeClaimSyncer;
use crate::syncers::service_addresses::{HostServiceAddresses, Reservations};
use crate::syncers::serviceaccounts::ServiceAccountSyncer;
use crate::syncers::services::ServiceSyncer;
use crate::syncers::storageclasses::StorageClassSyncer;

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
    /// The host's storage classes, shown to tenants. Default off.
    pub storage_classes: bool,
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
            storage_classes: false,
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
        let stream =
            reflector::reflector(writer, watcher(api, self.ctx.watcher_config())).default_backoff();
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
                claims: enabled.persistent_volume_claims,
                service_account: enabled.service_accounts,
            };
            let mut environment = self.config.pod_environment.clone();
            environment.translate_service_accounts |= enabled.service_accounts;
            let syncer = PodSyncer::new(environment, wait_for)
                .with_namespace_labels(namespaces)
                .with_policy(self.config.pod_policy.clone());
            Some(self.add(syncer))
        } else {
            None
        };
        let ingresses = enabled.ingresses.then(|| self.add(IngressSyncer::new()));

        let pod_store = pods.as_ref().map(|p| p.virtual_store());
        self.add_data::<ConfigMap>(
            enabled.config_maps,
            pod_store.clone(),
            pods.as_ref(),
            |r| &r.config_maps,
            None,
        );
        // Secrets are also needed by the ingresses that name them for TLS.
        let ingress_refs = ingresses.as_ref().map(|engine| {
            let store: Store<Ingress> = engine.virtual_store();
            let referenced: SecretReference = Box::new(move |secret: &Secret| {
                let namespace = secret.metadata.namespace.as_deref();
                let name = secret.metadata.name.clone().unwrap_or_default();
                store
                    .find(|i| {
                        i.metadata.namespace.as_deref() == namespace
                            && tls_secrets(i).contains(&name)
                    })
                    .is_some()
            });
            referenced
        });
        let secrets = self.add_data::<Secret>(
            enabled.secrets,
            pod_store,
            pods.as_ref(),
            |r| &r.secrets,
            ingress_refs,
        );
        if let (Some(ingresses), Some(secrets)) = (&ingresses, &secrets) {
            let queue = secrets.queue();
            ingresses.observe_virtual(move |ingress: &Ingress| {
                let Some(namespace) = ingress.metadata.namespace.as_deref() else {
                    return;
                };
                for name in tls_secrets(ingress) {
                    queue.add(VirtualKey::namespaced(namespace, name));
                }
            });
        }

        let reservations = self.config.service_reservations.clone();
        let services = enabled
            .services
            .then(|| self.add(ServiceSyncer::new().with_reservations(reservations)));
        if enabled.endpoints {
            let engine = self.add(EndpointsSyncer::new(
                services.as_ref().map(|s| s.virtual_store()),
            ));
            if let Some(services) = &services {
                // A service gaining or losing its selector decides whether
                // its endpoints are synced.
                let queue = engine.queue();
                services.observe_virtual(move |service| {
                    if let Some(key) = VirtualKey::of(service) {
                        queue.add(key);
                    }
                });
            }
        }
        if enabled.endpoint_slices {
            let slices = self.add(EndpointSliceSyncer::new());
            if let Some(services) = &services {
                // A slice is copied only while its service's host copy is
                // the tenant's own: look at the slices of a service again
                // whenever it changes on either side.
                let store = slices.virtual_store();
                let queue = slices.queue();
                let requeue = Arc::new(move |namespace: &str, service: &str| {
                    for slice in store.state() {
                        if slice.metadata.namespace.as_deref() == Some(namespace)
                            && service_of(&slice) == Some(service)
                        {
                            if let Some(key) = VirtualKey::of(slice.as_ref()) {
                                queue.add(key);
                            }
                        }
                    }
                });
                let on_virtual = requeue.clone();
                services.observe_virtual(move |service| {
                    if let (Some(namespace), Some(name)) = (
                        service.metadata.namespace.as_deref(),
                        service.metadata.name.as_deref(),
                    ) {
                        on_virtual(namespace, name);
                    }
                });
                let translator = self.ctx.translator.clone();
                services.observe_host(move |service| {
                    if let Some(key) = translator.owner_of(&service.metadata) {
                        if let Some(namespace) = key.namespace() {
                            requeue(namespace, key.name());
                        }
                    }
                });
            }
        }
        if enabled.persistent_volume_claims {
            self.add(PersistentVolumeClaimSyncer::new());
        }
        if enabled.service_accounts {
            self.add(ServiceAccountSyncer::new());
        }
        if enabled.network_policies {
            self.add(NetworkPolicySyncer::new());
        }
        if enabled.storage_classes {
            self.add(StorageClassSyncer::new());
        }
        match (&pods, enabled.nodes) {
            (Some(pods), true) => {
                let engine = self.add(
                    NodeSyncer::new(
                        self.config.node_mode.clone(),
                        pods.host_store(),
                        pods.host_listed(),
                    )
                    .with_selection(self.config.node_selection),
                );
                // A host pod scheduled onto, or gone from, a node decides
                // whether the node is shown.
                let queue = engine.queue();
                pods.observe_host(move |pod: &Pod| {
                    if let Some(key) = node_of(pod) {
                        queue.add(key);
                    }
                });
            }
            (None, true) => {
                tracing::warn!("the node syncer needs the pod syncer; nodes are not synced")
            }
            (_, false) => {}
        }
        // Always added: with no limits configured it removes the objects
        // an earlier configuration left, then idles.
        let limits = HostLimitsSyncer::new(
            self.ctx.clone(),
            self.config.vcluster_name.clone(),
            self.config.host_limits.clone(),
            self.cancel.clone(),
        );
        self.engines.push(Arc::new(limits));
        if enabled.events {
            let events = EventSyncer::new(
                self.ctx.clone(),
                self.config.engine.clone(),
                self.cancel.clone(),
            );
            self.engines.push(Arc::new(events));
        }
    }

    fn add_data<K>(
        &mut self,
        selection: Selection,
        pod_store: Option<Store<Pod>>,
        pods: Option<&SyncEngine<PodSyncer>>,
        names: fn(&PodReferences) -> &std::collections::BTreeSet<String>,
        also_referenced: Option<Reference<K>>,
    ) -> Option<SyncEngine<DataSyncer<K>>>
    where
        K: crate::syncers::data::DataKind,
    {
        let syncer = match (selection, pod_store) {
            (Selection::Off, _) => return None,
            (Selection::All, _) | (Selection::Referenced, None) => DataSyncer::<K>::all(),
            (Selection::Referenced, Some(store)) => {
                let syncer = DataSyncer::<K>::referenced_by(store);
                match also_referenced {
                    Some(referenced) => syncer.also_referenced_by(referenced),
                    None => syncer,
                }
            }
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
        Some(engine)
    }
}

/// Whether something other than a pod needs an object synced.
type Reference<K> = Box<dyn Fn(&K) -> bool + Send + Sync>;

/// Whether something other than a pod needs a secret synced.
type SecretReference = Reference<Secret>;
