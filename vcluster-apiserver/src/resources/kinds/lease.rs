//! Leases (coordination.k8s.io/v1): leader election and node heartbeats.

use k8s_openapi::api::coordination;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};
use serde_json::Value;
use super::fields::{invalid_raw, nonnegative, untrack_generation};
use crate::error::FieldCause;
use crate::object;

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
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        if let Some(n) = object::path(object, "spec.leaseDurationSeconds").and_then(Value::as_i64) {
            if n <= 0 {
                causes.push(invalid_raw(
                    "spec.leaseDurationSeconds",
                    &n.to_string(),
                    "must be greater than 0",
                ));
            }
        }
        nonnegative(object, "spec.leaseTransitions", causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::LEASE, cluster::lease))
    }
}
