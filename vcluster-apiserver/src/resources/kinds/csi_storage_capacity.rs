//! CSI storage capacities (storage.k8s.io/v1): how much a storage class
//! can still provision in a topology segment, published by drivers for
//! the scheduler.

use k8s_openapi::api::storage;
use serde_json::Value;

use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};
use crate::resources::Typed;

/// The CSIStorageCapacity kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "storage.k8s.io",
    "csistoragecapacities",
    "CSIStorageCapacity",
    Typed::of::<storage::v1::CSIStorageCapacity>(),
    &CsiStorageCapacities,
);

/// The rules of CSIStorageCapacity objects.
#[derive(Debug)]
struct CsiStorageCapacities;

impl Strategy for CsiStorageCapacities {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn printer(&self) -> Option<Printer> {
        // kube has no printer for it: its default table, as for CRDs.
        Some(Printer::new(columns::CUSTOM_RESOURCE_DEFINITION, cluster::custom_resource_definition))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let class = super::fields::text(object, "storageClassName");
        for why in vcluster_core::validation::dns1123_subdomain_errors(class) {
            causes.push(FieldCause::invalid("storageClassName", class, why));
        }
    }
}
