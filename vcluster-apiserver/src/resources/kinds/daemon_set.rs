//! Daemon sets (apps/v1): rolling updates by default, an immutable selector
//! that selects the template.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::fields::default_field;
use super::workload::Workload;
use super::BuiltinKind;
use crate::resources::strategy::NAME_AND_NAMESPACE;
use crate::resources::table::{columns, workloads, Printer};
use crate::resources::Typed;

/// The DaemonSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "daemonsets",
    "DaemonSet",
    Typed::of::<apps::v1::DaemonSet>(),
    &STRATEGY,
)
.short_names(&["ds"])
.in_all()
.with_status();

/// The rules of DaemonSet objects.
const STRATEGY: Workload = Workload {
    replicas: false,
    spec_defaults,
    selectable_fields: NAME_AND_NAMESPACE,
    printer: Printer::new(columns::DAEMON_SET, workloads::daemon_set),
};

/// The DaemonSet's own spec defaults.
fn spec_defaults(spec: &mut Map<String, Value>) {
    default_field(
        spec,
        "updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    );
    default_field(spec, "revisionHistoryLimit", json!(10));
}
