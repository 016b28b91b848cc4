//! What persistent volumes and their claims share: both default to the
//! `Filesystem` volume mode and start in the `Pending` phase; only their
//! tables differ.

use serde_json::{json, Value};

use super::fields::{default_field, obj_mut};
use crate::resources::strategy::Strategy;
use crate::resources::table::Printer;

/// The rules of a volume kind, printed by its own printer.
#[derive(Debug)]
pub(super) struct Volumes(pub(super) Printer);

impl Strategy for Volumes {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn default(&self, object: &mut Value) {
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "volumeMode", json!("Filesystem"));
        }
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"phase": "Pending"}))
    }

    fn printer(&self) -> Option<Printer> {
        Some(self.0)
    }
}
