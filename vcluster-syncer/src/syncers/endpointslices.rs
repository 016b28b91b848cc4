//! EndpointSlices that a tenant manages by hand (or by its own
//! controller): copied to the host, where kube-proxy reads them.
//!
//! Slices that Kubernetes' own controllers manage (label
//! `endpointslice.kubernetes.io/managed-by` set to
//! `endpointslice-controller.k8s.io`, or to the mirroring controller
//! `endpointslicemirroring-controller.k8s.io`) are not synced: on the host
//! the same controllers build them from the synced services and endpoints,
//! and a copy would duplicate every endpoint.
//!
//! To the host: `addressType`, `endpoints` (each `targetRef` of kind Pod
//! re-pointed at the host pod) and `ports`; the label
//! `kubernetes.io/service-name` names the host service (through
//! [`Syncer::host_label_overrides`], so the engine's label sync keeps that
//! value and never copies it back). Nothing flows back.
//!
//! That label is what attaches a slice's endpoints to a service on the
//! host, so a slice is only copied while the host service it names is the
//! copy of the tenant's own service of that name: a translated name that
//! another tenant's service also has (the `-x-` ambiguity of the naming
//! scheme, two virtual clusters in one host namespace) would otherwise
//! inject the tenant's endpoints into the other tenant's service. A slice
//! whose service is missing waits; one whose host name belongs to someone
//! else is refused (and its host copy, if any, deleted).

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use vcluster_core::{Translator, TranslatorExt};

use super::endpoints::{host_service_name_label, host_target_ref, SERVICE_NAME_LABEL};
use super::{create_on_host, encode, host_copy, key_of, translation_error, HostCopy};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::patch::fields_patch;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "endpointslices";

/// The label saying which controller manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";

/// The controllers whose slices are rebuilt on the host, not copied.
pub const CONTROLLERS: [&str; 2] = [
    "endpointslice-controller.k8s.io",
    "endpointslicemirroring-controller.k8s.io",
];

/// The endpoint slice syncer.
#[derive(Default)]
pub struct EndpointSliceSyncer;

impl EndpointSliceSyncer {
    /// An endpoint slice syncer.
    pub fn new() -> Self {
        Self
    }
}

/// Whether a virtual slice is the tenant's own (not a controller's).
pub(crate) fn is_synced(slice: &EndpointSlice) -> bool {
    let managed_by = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL));
    !managed_by.is_some_and(|m| CONTROLLERS.contains(&m.as_str()))
}

/// How long a slice waits for its service to appear on the host.
const SERVICE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The service a slice belongs to (its `kubernetes.io/service-name`).
pub(crate) fn service_of(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Where the host copy of the service a slice names stands (`Ours` for a
/// slice without a service).
async fn service_copy(ctx: &SyncContext, slice: &EndpointSlice) -> Result<HostCopy, SyncError> {
    let key = key_of(slice);
    match service_of(slice) {
        None => Ok(HostCopy::Ours),
        Some(service) => {
            host_copy::<k8s_openapi::api::core::v1::Service>(
                ctx,
                KIND,
                &key,
                key.namespace().unwrap_or_default(),
                service,
            )
            .await
        }
    }
}

/// The host copy of a virtual slice.
pub(crate) fn host_slice(
    translator: &dyn Translator,
    slice: &EndpointSlice,
) -> vcluster_core::Result<EndpointSlice> {
    let namespace = slice.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(slice)?;
    for endpoint in host.endpoints.iter_mut() {
        if let Some(target) = endpoint.target_ref.as_mut() {
            host_target_ref(translator, &namespace, target)?;
        }
    }
    if let Some(overrides) =
        host_service_name_label(translator, &namespace, slice.metadata.labels.as_ref())?
    {
        host.metadata
            .labels
            .get_or_insert_default()
            .extend(overrides);
    }
    Ok(host)
}

#[async_trait]
impl Syncer for EndpointSliceSyncer {
    type Object = EndpointSlice;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    fn host_label_overrides(
        &self,
        ctx: &SyncContext,
        slice: &EndpointSlice,
    ) -> Result<Option<BTreeMap<String, String>>, SyncError> {
        let key = key_of(slice);
        host_service_name_label(
            ctx.translator.as_ref(),
            key.namespace().unwrap_or_default(),
            slice.metadata.labels.as_ref(),
        )
        .map_err(translation_error(KIND, &key))
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        slice: &EndpointSlice,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<EndpointSlice>, SyncError> {
        if !is_synced(slice) {
            return Ok(VirtualOnly::Skip);
        }
        let decision = create_on_host(KIND, ctx, slice, host_slice)?;
        if !matches!(decision, VirtualOnly::CreateHost(_)) {
            return Ok(decision);
        }
        match service_copy(ctx, slice).await? {
            HostCopy::Ours => Ok(decision),
            HostCopy::Missing => Ok(VirtualOnly::Wait(
                SERVICE_RETRY,
                "waiting for the slice's service on the host".into(),
            )),
            HostCopy::Foreign(host) => Err(SyncError::NotOwned {
                kind: KIND,
                key: key_of(slice),
                host: format!("service {host} (named by the slice's {SERVICE_NAME_LABEL})"),
            }),
        }
    }

    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_slice: &EndpointSlice,
        host_slice_now: &EndpointSlice,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        if !is_synced(virtual_slice) {
            // Taken over by a controller: the host builds its own.
            return Ok(vec![Action::DeleteHost]);
        }
        if service_copy(ctx, virtual_slice).await? != HostCopy::Ours {
            // The service went (or its name is someone else's now): the
            // endpoints must not stay attached to whatever has that name.
            return Ok(vec![Action::DeleteHost]);
        }
        let key = key_of(virtual_slice);
        let desired = host_slice(ctx.translator.as_ref(), virtual_slice)
            .map_err(translation_error(KIND, &key))?;
        let patch = fields_patch(
            &encode(KIND, host_slice_now)?,
            &encode(KIND, &desired)?,
            &["endpoints", "ports"],
        );
        Ok(patch.map(Action::PatchHost).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vcluster_core::SingleNamespaceTranslator;

    fn slice(labels: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "db-abc", "namespace": "default", "labels": labels},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "db-0", "namespace": "default"}},
                {"addresses": ["10.0.0.2"]},
            ],
            "ports": [{"port": 5432, "name": "pg", "protocol": "TCP"}],
        }))
        .expect("slice")
    }

    #[test]
    fn the_host_slice_names_the_host_service_and_pods() {
        let t = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let host = host_slice(&t, &slice(json!({SERVICE: "db"}))).expect("host");
        let labels = host.metadata.labels.expect("labels");
        assert_eq!(labels[SERVICE], "db-x-default-x-vc");
        let target = host.endpoints[0].target_ref.as_ref().expect("ref");
        assert_eq!(target.name.as_deref(), Some("db-0-x-default-x-vc"));
        assert_eq!(target.namespace.as_deref(), Some("host-ns"));
        assert_eq!(host.endpoints[1].addresses, vec!["10.0.0.2".to_owned()]);
        assert_eq!(host.address_type, "IPv4");
    }

    const SERVICE: &str = super::super::endpoints::SERVICE_NAME_LABEL;

    #[test]
    fn controller_slices_are_not_synced() {
        assert!(is_synced(&slice(json!({SERVICE: "db"}))));
        assert!(is_synced(&slice(json!({MANAGED_BY_LABEL: "my-operator"}))));
        for controller in CONTROLLERS {
            assert!(!is_synced(&slice(json!({MANAGED_BY_LABEL: controller}))));
        }
    }
}
