//! PersistentVolumeClaims: the tenant's claims are provisioned and bound
//! by the host's storage; the binding's outcome comes back.
//!
//! To the host, at creation: the spec (`storageClassName`, `accessModes`,
//! `resources`, `volumeMode`, `volumeName`, `volumeAttributesClassName`),
//! with `selector` translated for cluster-scoped objects of this virtual
//! cluster (it selects host volumes synced from this virtual cluster and
//! nothing else) and a `dataSource`/`dataSourceRef` naming a claim or a
//! volume snapshot of the same namespace re-pointed at its host copy.
//! Afterwards only `resources.requests` follows (volume expansion): the
//! rest of a claim's spec is immutable.
//!
//! Back to the virtual cluster: the status (phase, capacity, access modes,
//! conditions). The host volume's name is not copied into the virtual
//! `spec.volumeName`: the virtual cluster has no such volume, and a
//! controller there would mark the claim lost.
//!
//! When this syncer runs, pods wait for the host copies of the claims they
//! mount ([`crate::syncers::pods::WaitFor::claims`]).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, TypedLocalObjectReference,
};
use serde_json::{json, Value};
use vcluster_core::{MarkerScope, Translator, TranslatorExt};

use super::{create_on_host, encode, host_name, status_patch};
use crate::error::SyncError;
use crate::memory::Memory;
use crate::patch::diff;
use crate::syncer::{Action, SyncContext, Syncer, VirtualOnly};

const KIND: &str = "persistentvolumeclaims";

/// The claim syncer.
#[derive(Default)]
pub struct PersistentVolumeClaimSyncer;

impl PersistentVolumeClaimSyncer {
    /// A claim syncer.
    pub fn new() -> Self {
        Self
    }
}

/// Whether a data source names a namespaced object that the syncer
/// translates (a claim, or a volume snapshot).
fn is_translated_source(api_group: Option<&str>, kind: &str) -> bool {
    matches!(
        (api_group.unwrap_or(""), kind),
        ("", "PersistentVolumeClaim") | ("snapshot.storage.k8s.io", "VolumeSnapshot")
    )
}

/// The host copy of a virtual claim.
pub fn host_claim(
    translator: &dyn Translator,
    claim: &PersistentVolumeClaim,
) -> vcluster_core::Result<PersistentVolumeClaim> {
    let namespace = claim.metadata.namespace.clone().unwrap_or_default();
    let mut host = translator.host_object(claim)?;
    host.status = None;
    if let Some(spec) = host.spec.as_mut() {
        rewrite_claim_spec(translator, &namespace, spec)?;
    }
    Ok(host)
}

/// Translates what a claim spec of virtual `namespace` refers to: its
/// volume selector and its data sources (also used for the claim templates
/// of pods' ephemeral volumes).
pub(crate) fn rewrite_claim_spec(
    translator: &dyn Translator,
    namespace: &str,
    spec: &mut PersistentVolumeClaimSpec,
) -> vcluster_core::Result<()> {
    if let Some(selector) = spec.selector.as_ref() {
        spec.selector = Some(translator.host_label_selector(selector, MarkerScope::Cluster)?);
    }
    if let Some(source) = spec.data_source.as_mut() {
        rewrite_source(translator, namespace, source)?;
    }
    if let Some(source) = spec.data_source_ref.as_mut() {
        // A reference into another namespace is not ours to translate.
        if source.namespace.is_none()
            && is_translated_source(source.api_group.as_deref(), &source.kind)
        {
            source.name = host_name(translator, namespace, &source.name)?;
        }
    }
    Ok(())
}

fn rewrite_source(
    translator: &dyn Translator,
    namespace: &str,
    source: &mut TypedLocalObjectReference,
) -> vcluster_core::Result<()> {
    if is_translated_source(source.api_group.as_deref(), &source.kind) {
        source.name = host_name(translator, namespace, &source.name)?;
    }
    Ok(())
}

fn requests(claim: &Value) -> Value {
    claim
        .pointer("/spec/resources/requests")
        .cloned()
        .unwrap_or(Value::Null)
}

#[async_trait]
impl Syncer for PersistentVolumeClaimSyncer {
    type Object = PersistentVolumeClaim;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        claim: &PersistentVolumeClaim,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<PersistentVolumeClaim>, SyncError> {
        create_on_host(KIND, ctx, claim, host_claim)
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
        virtual_claim: &PersistentVolumeClaim,
        host_claim_now: &PersistentVolumeClaim,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        let mut actions = Vec::new();
        let wanted = requests(&encode(KIND, virtual_claim)?);
        let current = requests(&encode(KIND, host_claim_now)?);
        if !wanted.is_null() {
            if let Some(change) = diff(&current, &wanted) {
                actions.push(Action::PatchHost(
                    json!({"spec": {"resources": {"requests": change}}}),
                ));
            }
        }
        if let Some(patch) = status_patch(KIND, virtual_claim, host_claim_now)? {
            actions.push(Action::PatchVirtualStatus(patch));
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vcluster_core::markers::MANAGED_BY_LABEL;
    use vcluster_core::SingleNamespaceTranslator;

    #[test]
    fn the_host_claim_translates_selector_and_data_sources() {
        let t = SingleNamespaceTranslator::new("vc", "host-ns").expect("translator");
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {
                "storageClassName": "fast",
                "accessModes": ["ReadWriteOnce"],
                "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": "1Gi"}},
                "selector": {"matchLabels": {"tier": "gold"}},
                "dataSource": {"kind": "PersistentVolumeClaim", "name": "seed"},
                "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
            },
            "status": {"phase": "Pending"},
        }))
        .expect("claim");
        let host = host_claim(&t, &claim).expect("host");
        let spec = host.spec.expect("spec");
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteOnce".to_owned()]));
        let selector = spec
            .selector
            .expect("selector")
            .match_labels
            .expect("labels");
        assert_eq!(selector["tier"], "gold");
        assert_eq!(selector[MANAGED_BY_LABEL], "host-ns-x-vc");
        assert_eq!(
            spec.data_source.expect("source").name,
            "seed-x-default-x-vc"
        );
        assert_eq!(
            spec.data_source_ref.expect("ref").name,
            "snap-x-default-x-vc"
        );
        assert_eq!(host.status, None);
    }

    #[test]
    fn other_data_sources_are_left_alone() {
        assert!(!is_translated_source(Some("example.com"), "Populator"));
        assert!(is_translated_source(None, "PersistentVolumeClaim"));
    }
}
