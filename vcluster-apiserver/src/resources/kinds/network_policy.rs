//! Network policies (networking.k8s.io/v1).

use k8s_openapi::api::networking;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, network, Printer};

/// The NetworkPolicy kind.
pub(super) const KIND: BuiltinKind = BuiltinKind {
    group: "networking.k8s.io",
    version: "v1",
    plural: "networkpolicies",
    singular: "networkpolicy",
    kind: "NetworkPolicy",
    namespaced: true,
    short_names: &["netpol"],
    categories: &[],
    status: false,
    scale: false,
    subresources: &[],
    typed: Typed::of::<networking::v1::NetworkPolicy>(),
    strategy: &NetworkPolicys,
};

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
