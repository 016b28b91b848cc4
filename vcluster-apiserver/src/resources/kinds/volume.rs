//! What persistent volumes and their claims share: both default to the
//! `Filesystem` volume mode and start in the `Pending` phase; only their
//! tables differ.

use serde_json::{json, Value};

use super::fields::{default_field, obj_mut, untrack_generation};
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::Strategy;
use crate::resources::table::Printer;

/// The rules of a volume kind, printed by its own printer.
#[derive(Debug)]
pub(super) struct Volumes(
    pub(super) Printer,
    pub(super) fn(&Value, &mut Vec<FieldCause>),
    pub(super) fn(&mut Value),
);

impl Strategy for Volumes {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "volumeMode", json!("Filesystem"));
        }
        (self.2)(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        (self.1)(object, causes);
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"phase": "Pending"}))
    }

    fn printer(&self) -> Option<Printer> {
        Some(self.0)
    }
}

/// Every access mode upstream knows, in its (sorted) order.
const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// Known access modes, `ReadWriteOncePod` alone; `missing` is what an
/// empty list says.
pub(super) fn validate_access_modes(
    object: &Value,
    missing: FieldCause,
    causes: &mut Vec<FieldCause>,
) {
    let modes = object::path(object, "spec.accessModes").and_then(Value::as_array);
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    if modes.is_empty() {
        causes.push(missing);
    }
    let (mut once_pod, mut others) = (false, false);
    for mode in modes.iter().map(|m| m.as_str().unwrap_or("")) {
        if !ACCESS_MODES.contains(&mode) {
            causes.push(FieldCause::not_supported(
                "spec.accessModes",
                mode,
                ACCESS_MODES,
            ));
        } else if mode == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            others = true;
        }
    }
    if once_pod && others {
        causes.push(FieldCause::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// No defaults beyond the volume mode.
pub(super) fn no_defaults(_object: &mut Value) {}
