//! Component statuses (core/v1, deprecated upstream but still served):
//! the health of the control plane's parts, computed on each read, never
//! stored: the storage under upstream's name for it (`etcd-0`), which the
//! server checks itself, and the parts its embedder declares
//! (`ApiServerConfig::components`: by default the scheduler and
//! controller manager, unhealthy since the server runs neither).

use k8s_openapi::api::core;

use super::BuiltinKind;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The ComponentStatus kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "",
    "componentstatuses",
    "ComponentStatus",
    Typed::of::<core::v1::ComponentStatus>(),
    &ComponentStatuses,
)
.short_names(&["cs"])
.verbs(&["get", "list"]);

/// How ComponentStatus objects print.
#[derive(Debug)]
struct ComponentStatuses;

impl Strategy for ComponentStatuses {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::COMPONENT_STATUS,
            platform::component_status,
        ))
    }
}
