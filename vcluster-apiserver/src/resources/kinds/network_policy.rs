//! Network policies (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The NetworkPolicy kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "networking.k8s.io",
    "networkpolicies",
    "NetworkPolicy",
    Typed::of::<networking::v1::NetworkPolicy>(),
    &NetworkPolicys,
)
.short_names(&["netpol"]);

/// The rules of NetworkPolicy objects.
#[derive(Debug)]
struct NetworkPolicys;

impl Strategy for NetworkPolicys {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::NETWORK_POLICY,
            network::network_policy,
        ))
    }
}
