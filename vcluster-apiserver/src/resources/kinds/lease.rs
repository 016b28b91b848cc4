//! Leases (coordination.k8s.io/v1): leader election and node heartbeats.

use k8s_openapi::api::coordination;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The Lease kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "coordination.k8s.io",
    "leases",
    "Lease",
    Typed::of::<coordination::v1::Lease>(),
    &Leases,
);

/// The rules of Lease objects.
#[derive(Debug)]
struct Leases;

impl Strategy for Leases {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::LEASE, cluster::lease))
    }
}
