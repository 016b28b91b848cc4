//! The built-in syncers. Each file holds one kind's field rules; the
//! engine ([`crate::engine`]) does the rest. Labels and annotations of
//! every kind synced *to* the host follow the engine's three-way rules
//! (virtual wins, host additions survive; see `docs/syncer.md`). On by
//! default unless marked optional ([`EnabledSyncers`](crate::EnabledSyncers)).
//!
//! | syncer | direction | virtual -> host | host -> virtual |
//! | --- | --- | --- | --- |
//! | [`DataSyncer<ConfigMap>`](data::DataSyncer) | to host | data (only configmaps pods use, unless `all`) | - |
//! | [`DataSyncer<Secret>`](data::DataSyncer) | to host | data (only secrets pods or synced ingresses use, unless `all`) | - |
//! | [`PodSyncer`](pods::PodSyncer) | to host | translated spec; image changes | status, node (binding); a host delete deletes the pod |
//! | [`ServiceSyncer`](services::ServiceSyncer) | to host | spec, selector translated, no cluster IP / node ports | status; node ports; cluster IP (re-creates the virtual service) |
//! | [`EndpointsSyncer`](endpoints::EndpointsSyncer) | to host | subsets of selector-less services, pod refs translated | - |
//! | [`EndpointSliceSyncer`](endpointslices::EndpointSliceSyncer) | to host | endpoints, ports of slices no controller manages; service-name label translated | - |
//! | [`PersistentVolumeClaimSyncer`](pvcs::PersistentVolumeClaimSyncer) | to host | spec at creation (selector, data sources translated); `resources.requests` | status |
//! | [`ServiceAccountSyncer`](serviceaccounts::ServiceAccountSyncer) (optional) | to host | the account, no token mount, no secrets | - |
//! | [`IngressSyncer`](ingresses::IngressSyncer) (optional) | to host | spec, backends and TLS secrets translated | status |
//! | [`NetworkPolicySyncer`](networkpolicies::NetworkPolicySyncer) (optional) | to host | spec, pod/namespace selectors translated, IP blocks kept | - |
//! | [`PodDisruptionBudgetSyncer`](poddisruptionbudgets::PodDisruptionBudgetSyncer) (optional) | to host | spec, selector translated | - |
//! | [`EventSyncer`](events::EventSyncer) | from host | - | events about synced objects, re-pointed at the virtual object |
//! | [`NodeSyncer`](nodes::NodeSyncer) | from host | - | nodes running tenant pods: labels, status (or fake nodes) |
//! | [`StorageClassSyncer`](storageclasses::StorageClassSyncer) (optional) | from host | - | every storage class |
//! | [`IngressClassSyncer`](ingressclasses::IngressClassSyncer) (optional) | from host | - | every ingress class |
//! | [`PriorityClassSyncer`](priorityclasses::PriorityClassSyncer) (optional) | from host | - | every priority class (not the virtual `system-*` ones) |
//! | [`HostLimitsSyncer`](limits::HostLimitsSyncer) (optional) | host only | a ResourceQuota / LimitRange kept in the host namespace | - |
//!
//! Pods pass the host isolation policy ([`crate::policy`], Pod Security
//! Standards, default baseline) before they are created on the host.

use kube::Resource;
use serde::Serialize;
use vcluster_core::VirtualKey;

use crate::error::SyncError;
pub use crate::syncer::FROM_HOST_LABEL;
pub(crate) use crate::syncer::{create_on_host, is_from_host};

pub mod classes;
pub mod data;
pub mod endpoints;
pub mod endpointslices;
pub mod events;
pub mod ingressclasses;
pub mod ingresses;
pub mod limits;
pub mod networkpolicies;
pub mod nodes;
pub mod poddisruptionbudgets;
pub mod pods;
pub mod priorityclasses;
pub mod pvcs;
pub mod service_addresses;
pub mod serviceaccounts;
pub mod services;
pub mod storageclasses;

/// The virtual key of an object (cluster-scoped if it has no namespace).
pub(crate) fn key_of<K: Resource>(object: &K) -> VirtualKey {
    VirtualKey::of(object)
        .unwrap_or_else(|| VirtualKey::cluster(object.meta().name.clone().unwrap_or_default()))
}

/// An object as JSON, for field-level comparisons.
pub(crate) fn encode<K: Resource + Serialize>(
    kind: &'static str,
    object: &K,
) -> Result<serde_json::Value, SyncError> {
    serde_json::to_value(object).map_err(|e| SyncError::Invalid {
        kind,
        key: key_of(object),
        message: format!("cannot be encoded as JSON: {e}"),
    })
}

/// A translation failure of `kind` `key`, as a [`SyncError`].
pub(crate) fn translation_error<'k>(
    kind: &'static str,
    key: &'k VirtualKey,
) -> impl FnOnce(vcluster_core::Error) -> SyncError + 'k {
    move |source| SyncError::Translation {
        kind,
        key: key.clone(),
        source: Box::new(source),
    }
}

/// The host name of the namespaced object `name` in virtual `namespace`.
pub(crate) fn host_name(
    translator: &dyn vcluster_core::Translator,
    namespace: &str,
    name: &str,
) -> vcluster_core::Result<String> {
    Ok(translator
        .host_key(&VirtualKey::namespaced(namespace, name))?
        .name()
        .to_owned())
}

/// Where the host object with the translated name of a namespaced virtual
/// object stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostCopy {
    /// It is the copy of exactly that virtual object.
    Ours,
    /// There is none.
    Missing,
    /// An object has the name but is not that copy (another tenant's, or
    /// another namespace's through the `-x-` ambiguity): its host name.
    Foreign(String),
}

/// Looks up the host copy of virtual `namespace/name` of kind `K`, for
/// syncers whose objects refer to other objects by name (a slice to its
/// service, an ingress to its backends and TLS secrets): a reference must
/// never resolve to someone else's object on the host.
pub(crate) async fn host_copy<K>(
    ctx: &crate::syncer::SyncContext,
    kind: &'static str,
    key: &VirtualKey,
    namespace: &str,
    name: &str,
) -> Result<HostCopy, SyncError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let referenced = VirtualKey::namespaced(namespace, name);
    let host_name = ctx
        .translator
        .host_key(&referenced)
        .map_err(translation_error(kind, key))?
        .name()
        .to_owned();
    let api: kube::Api<K> = kube::Api::namespaced(ctx.host_client.clone(), &ctx.host_namespace);
    let found = api
        .get_opt(&host_name)
        .await
        .map_err(|source| SyncError::Api {
            kind,
            key: key.clone(),
            operation: "look up a referenced object",
            side: crate::error::Side::Host,
            source: Box::new(source),
        })?;
    Ok(match found {
        None => HostCopy::Missing,
        Some(object) if ctx.translator.is_owned_by(object.meta(), &referenced) => HostCopy::Ours,
        Some(_) => HostCopy::Foreign(host_name),
    })
}

/// A JSON value decoded back into a typed object.
pub(crate) fn decode<K: serde::de::DeserializeOwned>(
    kind: &'static str,
    key: &VirtualKey,
    value: serde_json::Value,
) -> Result<K, SyncError> {
    serde_json::from_value(value).map_err(|e| SyncError::Invalid {
        kind,
        key: key.clone(),
        message: format!("cannot be decoded: {e}"),
    })
}

/// The host patch that brings the host copy's `spec` to what `to_host`
/// makes of the virtual object, for the fields the syncer owns (see
/// [`owned_patch`]); `None` when they already agree.
pub(crate) fn host_spec_patch<K: Resource + Serialize>(
    kind: &'static str,
    ctx: &crate::syncer::SyncContext,
    virtual_object: &K,
    host: &K,
    to_host: impl FnOnce(&dyn vcluster_core::Translator, &K) -> vcluster_core::Result<K>,
    removable: &[&str],
    if_set: &[&str],
) -> Result<Option<crate::syncer::Action>, SyncError> {
    let key = key_of(virtual_object);
    let desired =
        to_host(ctx.translator.as_ref(), virtual_object).map_err(translation_error(kind, &key))?;
    let empty = serde_json::json!({});
    let desired = encode(kind, &desired)?;
    let current = encode(kind, host)?;
    Ok(owned_patch(
        current.get("spec").unwrap_or(&empty),
        desired.get("spec").unwrap_or(&empty),
        removable,
        if_set,
    )
    .map(|patch| crate::syncer::Action::PatchHost(serde_json::json!({ "spec": patch }))))
}

/// The merge patch (of a `spec`-like object) that brings the fields the
/// syncer owns in `current` to their values in `desired`, and nothing else.
///
/// - `removable`: fields whose absence in `desired` means "none" (a
///   Service without selector, a NetworkPolicy without ingress rules): they
///   are removed from `current` when `desired` lacks them.
/// - `if_set`: fields only written when `desired` sets them, so values the
///   host defaulted or an admission plugin added (an ingress class, a
///   defaulted policy type) are not removed again, which would otherwise
///   make the syncer and the host's defaulting fight forever.
pub(crate) fn owned_patch(
    current: &serde_json::Value,
    desired: &serde_json::Value,
    removable: &[&str],
    if_set: &[&str],
) -> Option<serde_json::Value> {
    use serde_json::Value;
    let mut patch = serde_json::Map::new();
    for field in removable.iter().chain(if_set) {
        let from = current.get(*field).filter(|v| !v.is_null());
        let to = desired.get(*field).filter(|v| !v.is_null());
        let change = match (from, to) {
            (None, None) => None,
            (Some(_), None) if removable.contains(field) => Some(Value::Null),
            (Some(_), None) => None,
            (None, Some(to)) => Some(to.clone()),
            (Some(from), Some(to)) => crate::patch::diff(from, to),
        };
        if let Some(change) = change {
            patch.insert((*field).to_owned(), change);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The merge patch of a status: the host's status as it is, written over
/// the virtual one (`None` when they agree).
pub(crate) fn status_patch<K: Resource + Serialize>(
    kind: &'static str,
    virtual_object: &K,
    host_object: &K,
) -> Result<Option<serde_json::Value>, SyncError> {
    let empty = serde_json::json!({});
    let virtual_status = encode(kind, virtual_object)?
        .get("status")
        .cloned()
        .unwrap_or_else(|| empty.clone());
    let host_status = encode(kind, host_object)?
        .get("status")
        .cloned()
        .unwrap_or(empty);
    Ok(crate::patch::diff(&virtual_status, &host_status)
        .map(|change| serde_json::json!({ "status": change })))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use vcluster_core::SingleNamespaceTranslator;

    use crate::syncer::SyncContext;

    /// A context for calling syncer decisions directly: virtual cluster
    /// `vc` in host namespace `host-ns`, with clients of an address nobody
    /// listens on (decisions that need no API calls never use them).
    pub(crate) fn context() -> SyncContext {
        let client = || {
            let url = "http://127.0.0.1:9".parse().expect("url");
            kube::Client::try_from(kube::Config::new(url)).expect("client")
        };
        SyncContext {
            translator: Arc::new(
                SingleNamespaceTranslator::new("vc", "host-ns").expect("translator"),
            ),
            virtual_client: client(),
            host_client: client(),
            host_namespace: "host-ns".into(),
            watch_timeout: crate::syncer::DEFAULT_WATCH_TIMEOUT,
        }
    }
}
