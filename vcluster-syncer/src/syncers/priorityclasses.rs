//! PriorityClasses (optional, from the host): tenants see the host's
//! priority classes, so a pod's `priorityClassName` (kept when the pod is
//! synced) names one the host's scheduler knows, and the virtual API
//! server gives the pod the same priority. Copied as [`super::classes`]
//! describes; a class's value and preemption policy may not change, so a
//! change of those re-creates the copy. The virtual cluster's own
//! `system-*` classes are not copies and are never touched.

use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::classes::{ClassSyncer, HostClass};

impl HostClass for PriorityClass {
    const KIND: &'static str = "priorityclasses";
    const MUTABLE: &'static [&'static str] = &["description", "globalDefault"];
}

/// The priority class syncer.
pub type PriorityClassSyncer = ClassSyncer<PriorityClass>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syncer::{Action, Syncer};
    use crate::syncers::classes::virtual_copy;
    use serde_json::json;

    fn host_class(value: i32, description: &str) -> PriorityClass {
        serde_json::from_value(json!({
            "metadata": {"name": "batch-low", "uid": "host-uid", "resourceVersion": "3"},
            "value": value,
            "description": description,
        }))
        .expect("class")
    }

    #[tokio::test]
    async fn descriptions_patch_and_values_recreate() {
        let ctx = super::super::tests::context();
        let syncer = PriorityClassSyncer::new();
        let copy = virtual_copy(&host_class(100, "low"));
        let actions = syncer
            .both(&ctx, &copy, &host_class(100, "lowest"), None)
            .await
            .expect("both");
        assert_eq!(
            actions,
            vec![Action::PatchVirtual(json!({"description": "lowest"}))]
        );
        let actions = syncer
            .both(&ctx, &copy, &host_class(50, "low"), None)
            .await
            .expect("both");
        assert!(matches!(actions.as_slice(), [Action::RecreateVirtual(v)] if v["value"] == 50));
    }
}
