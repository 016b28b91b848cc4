//! Endpoints of services without a selector: the tenant (or its operator)
//! lists the addresses by hand, so the host's endpoints controller cannot
//! know them and the syncer copies them.
//!
//! For a service *with* a selector the host's own endpoints controller
//! fills the host endpoints from the translated selector, so those virtual
//! endpoints are not synced (and a copy the syncer made while the service
//! had no selector is deleted). Endpoints without a virtual service are
//! not synced either (as vCluster), nor the virtual API server's own
//! `default/kubernetes`.
//!
//! To the host: `subsets` (addresses, not-ready addresses, ports), each
//! address's `targetRef` of kind Pod re-pointed at the host pod
//! (translated name, host namespace, no uid/resourceVersion). Nothing
//! flows back.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, ObjectReference, Service};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use vcluster_core::{Translator, TranslatorExt, VirtualKey};

use super::services::is_api_service;
use super::{create_on_host, encode, host_name, key_of, translation_error};
use crate::error::{Side, SyncError};
use crate::memory::Memory;
use crate::patch::fields_patch;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "endpoints";

/// What the virtual service of an endpoints object says about syncing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServiceState {
    /// No such service (yet): nothing to sync.
    Missing,
    /// The service selects pods: the host's controller owns the endpoints.
    Selector,
    /// The service lists its endpoints by hand: sync them.
    NoSelector,
}

/// Where a syncer finds the virtual services.
#[derive(Clone)]
pub(crate) struct Services(Option<Store<Service>>);

impl Services {
    /// The state of virtual service `key`, from the store of the service
    /// syncer when it runs, else from the virtual API server.
    pub(crate) async fn state(
        &self,
        ctx: &SyncContext,
        kind: &'static str,
        key: &VirtualKey,
    ) -> Result<ServiceState, SyncError> {
        let namespace = key.namespace().unwrap_or_default();
        let service = match &self.0 {
            Some(store) => store
                .get(&ObjectRef::new(key.name()).within(namespace))
                .map(|s| (*s).clone()),
            None => {
                let api: Api<Service> = Api::namespaced(ctx.virtual_client.clone(), namespace);
                api.get_opt(key.name())
                    .await
                    .map_err(|source| SyncError::Api {
                        kind,
                        key: key.clone(),
                        operation: "look up the service",
                        side: Side::Virtual,
                        source: Box::new(source),
                    })?
            }
        };
        Ok(match service {
            None => ServiceState::Missing,
            Some(s)
                if s.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| !s.is_empty()) =>
            {
                ServiceState::Selector
            }
            Some(_) => ServiceState::NoSelector,
        })
    }
}

/// The endpoints syncer.
pub struct EndpointsSyncer {
    services: Services,
}

impl EndpointsSyncer {
    /// An endpoints syncer that reads services from `services` (the service
    /// syncer's virtual store), or from the virtual API server if `None`.
    pub fn new(services: Option<Store<Service>>) -> Self {
        Self {
            services: Services(services),
        }
    }
}

/// Re-points a reference to a virtual pod at its host copy.
pub(crate) fn host_target_ref(
    translator: &dyn Translator,
    namespace: &str,
    target: &mut ObjectReference,
) -> vcluster_core::Result<()> {
    let is_pod = target.kind.as_deref() == Some("Pod")
        && matches!(target.api_version.as_deref(), None | Some("") | Some("v1"));
    if !is_pod {
        return Ok(());
    }
    if let Some(name) = target.name.as_mut() {
        let pod_namespace = target.namespace.as_deref().unwrap_or(namespace);
        *name = host_name(translator, pod_namespace, name)?;
        target.namespace = Some(translator.host_namespace(pod_namespace)?);
        target.uid = None;
        target.resource_version = None;
    }
    Ok(())
}

fn host_addresses(
    translator: &dyn Translator,
    namespace: &str,
    addresses: Option<&mut Vec<EndpointAddress>>,
) -> vcluster_core::Result<()> {
    for address in addresses.into_iter().flatten() {
        if let Some(target) = address.target_ref.as_mut() {
            host_target_ref(translator, namespace, target)?;
        }
    }
    Ok(())
}

/// The host copy of virtual endpoints.
pub(crate) fn host_endpoints(
    translator: &dyn Translator,
    endpoints: &Endpoints,
) -> vcluster_core::Result<Endpoints> {
    let namespace = endpoints.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(endpoints)?;
    for subset in host.subsets.iter_mut().flatten() {
        host_addresses(translator, &namespace, subset.addresses.as_mut())?;
        host_addresses(translator, &namespace, subset.not_ready_addresses.as_mut())?;
    }
    Ok(host)
}

#[async_trait]
impl Syncer for EndpointsSyncer {
    type Object = Endpoints;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        endpoints: &Endpoints,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Endpoints>, SyncError> {
        let key = key_of(endpoints);
        if is_api_service(&key)
            || self.services.state(ctx, KIND, &key).await? != ServiceState::NoSelector
        {
            return Ok(VirtualOnly::Skip);
        }
        create_on_host(KIND, ctx, endpoints, host_endpoints)
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_endpoints: &Endpoints,
        host_endpoints_now: &Endpoints,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        let key = key_of(virtual_endpoints);
        if self.services.state(ctx, KIND, &key).await? == ServiceState::Selector {
            // The host's endpoints controller takes over.
            return Ok(vec![Action::DeleteHost]);
        }
        let desired = host_endpoints(ctx.translator.as_ref(), virtual_endpoints)
            .map_err(translation_error(KIND, &key))?;
        let patch = fields_patch(
            &encode(KIND, host_endpoints_now)?,
            &encode(KIND, &desired)?,
            &["subsets"],
        );
        Ok(patch.map(Action::PatchHost).into_iter().collect())
    }
}

/// The label that ties an EndpointSlice to its service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The `kubernetes.io/service-name` label of a host copy: the host name
/// of the virtual service it names (`None` if the slice names none).
pub(crate) fn host_service_name_label(
    translator: &dyn Translator,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> vcluster_core::Result<Option<BTreeMap<String, String>>> {
    let Some(service) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
        return Ok(None);
    };
    Ok(Some(BTreeMap::from([(
        SERVICE_NAME_LABEL.to_owned(),
        host_name(translator, namespace, service)?,
    )])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vcluster_core::SingleNamespaceTranslator;

    #[test]
    fn pod_target_refs_point_at_host_pods() {
        let t = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let virt: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "db", "namespace": "default"},
            "subsets": [{
                "addresses": [
                    {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "db-0", "namespace": "default", "uid": "u"}},
                    {"ip": "10.0.0.2", "targetRef": {"kind": "Node", "name": "n1"}},
                    {"ip": "10.0.0.3"},
                ],
                "notReadyAddresses": [{"ip": "10.0.0.4", "targetRef": {"kind": "Pod", "name": "db-1"}}],
                "ports": [{"port": 5432, "name": "pg"}],
            }],
        }))
        .expect("endpoints");
        let host = host_endpoints(&t, &virt).expect("host");
        let subset = &host.subsets.expect("subsets")[0];
        let addresses = subset.addresses.as_ref().expect("addresses");
        let pod = addresses[0].target_ref.as_ref().expect("ref");
        assert_eq!(pod.name.as_deref(), Some("db-0-x-default-x-vc"));
        assert_eq!(pod.namespace.as_deref(), Some("host-ns"));
        assert_eq!(pod.uid, None);
        let node = addresses[1].target_ref.as_ref().expect("ref");
        assert_eq!(node.name.as_deref(), Some("n1"), "only pods are re-pointed");
        assert_eq!(addresses[2].ip, "10.0.0.3");
        let not_ready = subset.not_ready_addresses.as_ref().expect("not ready")[0]
            .target_ref
            .as_ref()
            .expect("ref");
        assert_eq!(not_ready.name.as_deref(), Some("db-1-x-default-x-vc"));
        assert_eq!(subset.ports.as_ref().expect("ports")[0].port, 5432);
        assert_eq!(host.metadata.name.as_deref(), Some("db-x-default-x-vc"));
    }
}
