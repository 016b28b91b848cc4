//! StorageClasses (optional, from the host): tenants see the host's storage
//! classes, so `kubectl get storageclass` lists what their claims can
//! really use (claims keep the class name; see [`super::pvcs`]).
//!
//! Every host class is copied into the virtual cluster under the same name
//! (labels, annotations including the default-class one, provisioner,
//! parameters, reclaim policy, binding mode, expansion, mount options,
//! allowed topologies), with [`FROM_HOST_LABEL`] on the copy. Changes
//! follow: mutable fields are patched, a change of an immutable one
//! (provisioner, parameters, reclaim policy, binding mode) re-creates the
//! copy. When the host class goes, so does the copy. A virtual class
//! without the label is the tenant's own and is never touched, even if a
//! host class has its name. Nothing flows to the host.

use std::collections::BTreeMap;

use async_trait::async_trait;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use super::{encode, is_from_host, FROM_HOST_LABEL};
use crate::error::SyncError;
use crate::labels_annotations::map_patch;
use crate::memory::Memory;
use crate::patch::diff;
use crate::syncer::{Action, Direction, HostOnly, SyncContext, Syncer};

const KIND: &str = "storageclasses";

/// Fields the API server refuses to change: a difference re-creates.
const IMMUTABLE: &[&str] = &[
    "provisioner",
    "parameters",
    "reclaimPolicy",
    "volumeBindingMode",
];
/// Fields patched in place.
const MUTABLE: &[&str] = &["allowVolumeExpansion", "mountOptions", "allowedTopologies"];

/// Host annotations that describe the host object, not the class.
const SKIPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// The storage class syncer.
#[derive(Default)]
pub struct StorageClassSyncer;

impl StorageClassSyncer {
    /// A storage class syncer.
    pub fn new() -> Self {
        Self
    }
}

fn labels_of(host: &StorageClass) -> BTreeMap<String, String> {
    let mut labels = host.metadata.labels.clone().unwrap_or_default();
    labels.insert(FROM_HOST_LABEL.to_owned(), "true".to_owned());
    labels
}

fn annotations_of(host: &StorageClass) -> BTreeMap<String, String> {
    let mut annotations = host.metadata.annotations.clone().unwrap_or_default();
    annotations.retain(|k, _| !SKIPPED_ANNOTATIONS.contains(&k.as_str()));
    annotations
}

/// The virtual copy of a host storage class.
pub(crate) fn virtual_class(host: &StorageClass) -> StorageClass {
    StorageClass {
        metadata: ObjectMeta {
            name: host.metadata.name.clone(),
            labels: Some(labels_of(host)),
            annotations: Some(annotations_of(host)).filter(|a| !a.is_empty()),
            ..ObjectMeta::default()
        },
        ..host.clone()
    }
}

fn fields(object: &Value, names: &[&str]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|n| Some(((*n).to_owned(), object.get(*n)?.clone())))
        .collect()
}

#[async_trait]
impl Syncer for StorageClassSyncer {
    type Object = StorageClass;
    type DynamicType = ();

    fn name(&self) -> &'static str {
        KIND
    }

    fn direction(&self) -> Direction {
        Direction::FromHost
    }

    fn namespaced(&self) -> bool {
        false
    }

    async fn both(
        &self,
        _ctx: &SyncContext,
        virtual_class_now: &StorageClass,
        host: &StorageClass,
        _memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError> {
        if !is_from_host(&virtual_class_now.metadata) {
            return Ok(Vec::new());
        }
        let wanted = virtual_class(host);
        let wanted_json = encode(KIND, &wanted)?;
        let current_json = encode(KIND, virtual_class_now)?;
        let immutable_from = Value::Object(fields(&current_json, IMMUTABLE));
        let immutable_to = Value::Object(fields(&wanted_json, IMMUTABLE));
        if immutable_from != immutable_to {
            return Ok(vec![Action::RecreateVirtual(wanted_json)]);
        }
        let mut patch = Map::new();
        if let Some(Value::Object(change)) = diff(
            &Value::Object(fields(&current_json, MUTABLE)),
            &Value::Object(fields(&wanted_json, MUTABLE)),
        ) {
            patch.extend(change);
        }
        let mut metadata = Map::new();
        let current = &virtual_class_now.metadata;
        if let Some(labels) = map_patch(
            &current.labels.clone().unwrap_or_default(),
            &labels_of(host),
        ) {
            metadata.insert("labels".into(), labels);
        }
        if let Some(annotations) = map_patch(
            &current.annotations.clone().unwrap_or_default(),
            &annotations_of(host),
        ) {
            metadata.insert("annotations".into(), annotations);
        }
        if !metadata.is_empty() {
            patch.insert("metadata".into(), Value::Object(metadata));
        }
        Ok(if patch.is_empty() {
            Vec::new()
        } else {
            vec![Action::PatchVirtual(Value::Object(patch))]
        })
    }

    async fn host_only(
        &self,
        _ctx: &SyncContext,
        host: &StorageClass,
        _memory: Option<&Memory>,
    ) -> Result<HostOnly<StorageClass>, SyncError> {
        if host.metadata.name.is_none() {
            return Ok(HostOnly::Skip);
        }
        Ok(HostOnly::CreateVirtual(virtual_class(host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host_class(provisioner: &str, expansion: bool) -> StorageClass {
        serde_json::from_value(json!({
            "metadata": {
                "name": "fast", "uid": "host-uid", "resourceVersion": "9",
                "labels": {"tier": "ssd"},
                "annotations": {
                    "storageclass.kubernetes.io/is-default-class": "true",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                },
            },
            "provisioner": provisioner,
            "parameters": {"type": "gp3"},
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": expansion,
        }))
        .expect("class")
    }

    #[test]
    fn the_copy_is_marked_and_keeps_the_class() {
        let copy = virtual_class(&host_class("ebs.csi.aws.com", true));
        assert_eq!(copy.metadata.uid, None);
        assert_eq!(copy.metadata.resource_version, None);
        let labels = copy.metadata.labels.expect("labels");
        assert_eq!(labels[FROM_HOST_LABEL], "true");
        assert_eq!(labels["tier"], "ssd");
        let annotations = copy.metadata.annotations.expect("annotations");
        assert_eq!(
            annotations["storageclass.kubernetes.io/is-default-class"],
            "true"
        );
        assert!(!annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert_eq!(copy.provisioner, "ebs.csi.aws.com");
        assert_eq!(
            copy.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
    }

    #[tokio::test]
    async fn mutable_changes_patch_and_immutable_ones_recreate() {
        let ctx = test_context();
        let syncer = StorageClassSyncer::new();
        let copy = virtual_class(&host_class("a", true));
        let actions = syncer
            .both(&ctx, &copy, &host_class("a", false), None)
            .await
            .expect("both");
        assert_eq!(
            actions,
            vec![Action::PatchVirtual(json!({"allowVolumeExpansion": false}))]
        );
        let actions = syncer
            .both(&ctx, &copy, &host_class("b", true), None)
            .await
            .expect("both");
        assert!(
            matches!(actions.as_slice(), [Action::RecreateVirtual(v)] if v["provisioner"] == "b")
        );
        assert!(syncer
            .both(&ctx, &copy, &host_class("a", true), None)
            .await
            .expect("both")
            .is_empty());
        let mut own = copy.clone();
        own.metadata.labels = None;
        assert!(
            syncer
                .both(&ctx, &own, &host_class("b", false), None)
                .await
                .expect("both")
                .is_empty(),
            "a tenant's own class is never touched"
        );
    }

    fn test_context() -> SyncContext {
        super::super::tests::context()
    }
}
