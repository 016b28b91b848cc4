//! The built-in syncers of a [`SyncConfig`](super::SyncConfig) and how
//! they feed each other: new pods queue the configmaps and secrets they
//! need and host pods their node, ingresses the secrets they name, and
//! services their endpoints and slices.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use vcluster_core::VirtualKey;

use crate::engine::SyncEngine;
use crate::syncers::data::DataSyncer;
use crate::syncers::endpoints::EndpointsSyncer;
use crate::syncers::endpointslices::{service_of, EndpointSliceSyncer};
use crate::syncers::events::EventSyncer;
use crate::syncers::ingressclasses::IngressClassSyncer;
use crate::syncers::ingresses::{tls_secrets, IngressSyncer};
use crate::syncers::limits::HostLimitsSyncer;
use crate::syncers::networkpolicies::NetworkPolicySyncer;
use crate::syncers::nodes::{node_of, NodeSyncer};
use crate::syncers::poddisruptionbudgets::PodDisruptionBudgetSyncer;
use crate::syncers::pods::tokens::uses_token_secret;
use crate::syncers::pods::{PodReferences, PodSyncer, ServiceAccountTokens, WaitFor};
use crate::syncers::priorityclasses::PriorityClassSyncer;
use crate::syncers::pvcs::PersistentVolumeClaimSyncer;
use crate::syncers::serviceaccounts::ServiceAccountSyncer;
use crate::syncers::services::ServiceSyncer;
use crate::syncers::storageclasses::StorageClassSyncer;

use super::{Selection, VirtualClusterSyncer};

impl VirtualClusterSyncer {
    /// A store of the virtual namespaces, kept by a background watcher.
    pub(super) fn namespace_store(&mut self) -> Store<Namespace> {
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

    /// Fills the token Secrets of host pods (see
    /// [`crate::syncers::pods::tokens`]), on the pod engine's host events.
    fn add_service_account_tokens(&mut self, pods: &SyncEngine<PodSyncer>) {
        let (changed, receiver) = tokio::sync::mpsc::unbounded_channel();
        pods.observe_host(move |pod: &Pod| {
            if uses_token_secret(pod) {
                if let Some(name) = pod.metadata.name.clone() {
                    let _ = changed.send(name);
                }
            }
        });
        let tokens = ServiceAccountTokens::new(
            self.ctx.clone(),
            self.config.vcluster_name.clone(),
            pods.virtual_store(),
            pods.host_store(),
        );
        self.background
            .push(Box::pin(tokens.run(receiver, self.cancel.clone())));
    }

    pub(super) fn add_builtins(&mut self) {
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
            let tokens = environment.service_account_tokens;
            let syncer = PodSyncer::new(environment, wait_for)
                .with_namespace_labels(namespaces)
                .with_policy(self.config.pod_policy.clone());
            let engine = self.add(syncer);
            if tokens {
                self.add_service_account_tokens(&engine);
            }
            Some(engine)
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
        if enabled.pod_disruption_budgets {
            self.add(PodDisruptionBudgetSyncer::new());
        }
        if enabled.storage_classes {
            self.add(StorageClassSyncer::new());
        }
        if enabled.ingress_classes {
            self.add(IngressClassSyncer::new());
        }
        if enabled.priority_classes {
            self.add(PriorityClassSyncer::new());
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
