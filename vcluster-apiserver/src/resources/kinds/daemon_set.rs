//! Daemon sets (apps/v1): rolling updates by default, an immutable selector
//! that selects the template.

use k8s_openapi::api::apps;
use serde_json::{json, Value};

use super::{fields::default_field, workload, BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};

/// The DaemonSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "daemonsets",
    "DaemonSet",
    Typed::of::<apps::v1::DaemonSet>(),
    &DaemonSets,
)
.short_names(&["ds"])
.in_all()
.with_status();

/// The rules of DaemonSet objects.
#[derive(Debug)]
struct DaemonSets;

impl Strategy for DaemonSets {
    fn default(&self, object: &mut Value) {
        workload::default(object, false, |spec| {
            default_field(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
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
        Some(Printer::new(columns::DAEMON_SET, workloads::daemon_set))
    }
}
