//! Replica sets (apps/v1): one replica by default, an immutable selector that
//! selects the template, selectable by `status.replicas`.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::workload::Workload;
use super::BuiltinKind;
use crate::resources::table::{columns, workloads, Printer};
use crate::resources::Typed;

/// The ReplicaSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "replicasets",
    "ReplicaSet",
    Typed::of::<apps::v1::ReplicaSet>(),
    &STRATEGY,
)
.short_names(&["rs"])
.in_all()
.with_scale();

/// The rules of ReplicaSet objects.
const STRATEGY: Workload = Workload {
    replicas: true,
    spec_defaults,
    spec_checks: super::workload::no_checks,
    later_checks: super::workload::no_checks,
    noun: "deployment",
    status: || Some(json!({"replicas": 0})),
    object_defaults: super::workload::no_object_defaults,
    on_update: super::workload::no_update_rules,
    selectable_fields: &["metadata.name", "metadata.namespace", "status.replicas"],
    printer: Printer::new(columns::REPLICA_SET, workloads::replica_set),
};

/// None beyond what every workload gets.
fn spec_defaults(_spec: &mut Map<String, Value>) {}
