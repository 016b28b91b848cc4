//! CSI nodes (storage.k8s.io/v1): the drivers a node has registered,
//! named after the node. Stored for the node plugins and schedulers that
//! read them.

use std::collections::BTreeSet;

use k8s_openapi::api::storage;
use serde_json::Value;

use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The CSINode kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "storage.k8s.io",
    "csinodes",
    "CSINode",
    Typed::of::<storage::v1::CSINode>(),
    &CsiNodes,
);

/// The rules of CSINode objects.
#[derive(Debug)]
struct CsiNodes;

impl Strategy for CsiNodes {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let drivers = crate::object::path(object, "spec.drivers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut seen = BTreeSet::new();
        for (i, driver) in drivers.iter().enumerate() {
            let field = format!("spec.drivers[{i}]");
            let name = driver.get("name").and_then(Value::as_str).unwrap_or("");
            if !super::fields::csi_driver_name(name, &format!("{field}.name"), causes) {
                // Reported.
            } else if !seen.insert(name) {
                causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    field: format!("{field}.name"),
                    message: format!("Duplicate value: {name:?}"),
                });
            }
            if driver.get("nodeID").and_then(Value::as_str).unwrap_or("").is_empty() {
                causes.push(FieldCause::required(format!("{field}.nodeID")));
            }
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CSI_NODE, platform::csi_node))
    }
}
