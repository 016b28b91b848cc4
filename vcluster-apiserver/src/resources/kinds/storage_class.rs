//! Storage classes (storage.k8s.io/v1), imported from the host by the syncer.

use k8s_openapi::api::storage;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, volumes, Printer};
use serde_json::{json, Value};
use super::fields::default_field;
use crate::error::FieldCause;

/// The StorageClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "storage.k8s.io",
    "storageclasses",
    "StorageClass",
    Typed::of::<storage::v1::StorageClass>(),
    &StorageClass,
)
.short_names(&["sc"]);

/// The rules of StorageClass objects.
#[derive(Debug)]
struct StorageClass;

impl Strategy for StorageClass {
    fn default(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            default_field(map, "reclaimPolicy", json!("Delete"));
            default_field(map, "volumeBindingMode", json!("Immediate"));
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let provisioner = object.get("provisioner").and_then(Value::as_str).unwrap_or("");
        if provisioner.is_empty() {
            causes.push(FieldCause::required("provisioner"));
        }
        if let Some(policy) = object.get("reclaimPolicy").and_then(Value::as_str) {
            if !matches!(policy, "Delete" | "Retain") {
                causes.push(FieldCause::not_supported(
                    "reclaimPolicy",
                    policy,
                    &["Delete", "Retain"],
                ));
            }
        }
        if let Some(mode) = object.get("volumeBindingMode").and_then(Value::as_str) {
            if !matches!(mode, "Immediate" | "WaitForFirstConsumer") {
                causes.push(FieldCause::not_supported(
                    "volumeBindingMode",
                    mode,
                    &["Immediate", "WaitForFirstConsumer"],
                ));
            }
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::STORAGE_CLASS, volumes::storage_class))
    }
}
