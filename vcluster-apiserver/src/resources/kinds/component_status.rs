//! Component statuses (core/v1, deprecated upstream but still served):
//! the health of the control plane's parts, computed on each read, never
//! stored. This server reports the one part it can check itself, its
//! storage, under upstream's name for it (`etcd-0`); the scheduler and
//! controller manager of a real cluster are not its own (the host
//! schedules; the controllers run beside it), so they are not listed.

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
