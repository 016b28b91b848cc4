//! Replica sets (apps/v1): one replica by default, an immutable selector that
//! selects the template, selectable by `status.replicas`.

use k8s_openapi::api::apps;
use serde_json::Value;

use super::{workload, BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};

/// The ReplicaSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "replicasets",
    "ReplicaSet",
    Typed::of::<apps::v1::ReplicaSet>(),
    &ReplicaSets,
)
.short_names(&["rs"])
.in_all()
.with_scale();

/// The rules of ReplicaSet objects.
#[derive(Debug)]
struct ReplicaSets;

impl Strategy for ReplicaSets {
    fn default(&self, object: &mut Value) {
        workload::default(object, true, |_| {});
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        workload::validate(object, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        workload::validate_update(old, new, causes);
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "status.replicas"]
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::REPLICA_SET, workloads::replica_set))
    }
}
