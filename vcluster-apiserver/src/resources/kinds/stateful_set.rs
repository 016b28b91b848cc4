//! Stateful sets (apps/v1): ordered pod management, retained claims and
//! rolling updates by default, an immutable selector.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::fields::default_field;
use super::workload::Workload;
use super::BuiltinKind;
use crate::resources::strategy::NAME_AND_NAMESPACE;
use crate::resources::table::{columns, workloads, Printer};
use crate::resources::Typed;

/// The StatefulSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "statefulsets",
    "StatefulSet",
    Typed::of::<apps::v1::StatefulSet>(),
    &STRATEGY,
)
.short_names(&["sts"])
.in_all()
.with_scale();

/// The rules of StatefulSet objects.
const STRATEGY: Workload = Workload {
    replicas: true,
    spec_defaults,
    selectable_fields: NAME_AND_NAMESPACE,
    printer: Printer::new(columns::STATEFUL_SET, workloads::stateful_set),
};

/// The StatefulSet's own spec defaults.
fn spec_defaults(spec: &mut Map<String, Value>) {
    default_field(spec, "podManagementPolicy", json!("OrderedReady"));
    default_field(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    default_field(
        spec,
        "updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    );
    default_field(spec, "revisionHistoryLimit", json!(10));
}
