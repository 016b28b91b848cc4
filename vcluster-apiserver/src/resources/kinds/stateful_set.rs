//! Stateful sets (apps/v1): ordered pod management, retained claims and
//! rolling updates by default, an immutable selector.

use k8s_openapi::api::apps;
use serde_json::{json, Value};

use super::{fields::default_field, workload, BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};

/// The StatefulSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "statefulsets",
    "StatefulSet",
    Typed::of::<apps::v1::StatefulSet>(),
    &StatefulSets,
)
.short_names(&["sts"])
.in_all()
.with_scale();

/// The rules of StatefulSet objects.
#[derive(Debug)]
struct StatefulSets;

impl Strategy for StatefulSets {
    fn default(&self, object: &mut Value) {
        workload::default(object, true, |spec| {
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
        });
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        workload::validate(object, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        workload::validate_update(old, new, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::STATEFUL_SET, workloads::stateful_set))
    }
}
