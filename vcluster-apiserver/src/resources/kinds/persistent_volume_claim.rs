//! Persistent volume claims (core/v1): `Filesystem` volume mode and a
//! `Pending` phase on create.

use k8s_openapi::api::core;
use serde_json::{json, Value};

use super::{
    fields::{default_field, obj_mut},
    BuiltinKind,
};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, volumes, Printer};

/// The PersistentVolumeClaim kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "persistentvolumeclaims",
    "PersistentVolumeClaim",
    Typed::of::<core::v1::PersistentVolumeClaim>(),
    &PersistentVolumeClaims,
)
.short_names(&["pvc"])
.with_status();

/// The rules of PersistentVolumeClaim objects.
#[derive(Debug)]
struct PersistentVolumeClaims;

impl Strategy for PersistentVolumeClaims {
    fn default(&self, object: &mut Value) {
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "volumeMode", json!("Filesystem"));
        }
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"phase": "Pending"}))
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::PERSISTENT_VOLUME_CLAIM,
            volumes::persistent_volume_claim,
        ))
    }
}
