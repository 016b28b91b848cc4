//! StorageClasses (optional, from the host): tenants see the host's storage
//! classes, so `kubectl get storageclass` lists what their claims can
//! really use (claims keep the class name; see [`super::pvcs`]). Copied as
//! [`super::classes`] describes; the API server refuses to change a
//! class's provisioner, parameters, reclaim policy and binding mode, so a
//! change of those re-creates the copy.

use k8s_openapi::api::storage::v1::StorageClass;

use super::classes::{ClassSyncer, HostClass};

impl HostClass for StorageClass {
    const KIND: &'static str = "storageclasses";
    const MUTABLE: &'static [&'static str] =
        &["allowVolumeExpansion", "mountOptions", "allowedTopologies"];
}

/// The storage class syncer.
pub type StorageClassSyncer = ClassSyncer<StorageClass>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syncer::{Action, SyncContext, Syncer};
    use crate::syncers::classes::virtual_copy;
    use crate::syncers::FROM_HOST_LABEL;
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
        let copy = virtual_copy(&host_class("ebs.csi.aws.com", true));
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
        let copy = virtual_copy(&host_class("a", true));
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
