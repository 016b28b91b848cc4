//! Persistent volumes (core/v1): `Filesystem` volume mode and a `Pending`
//! phase on create.

use k8s_openapi::api::core;
use serde_json::{json, Value};

use super::{
    fields::{default_field, obj_mut},
    BuiltinKind,
};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, volumes, Printer};

/// The PersistentVolume kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "",
    "persistentvolumes",
    "PersistentVolume",
    Typed::of::<core::v1::PersistentVolume>(),
    &PersistentVolumes,
)
.short_names(&["pv"])
.with_status();

/// The rules of PersistentVolume objects.
#[derive(Debug)]
struct PersistentVolumes;

impl Strategy for PersistentVolumes {
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
            columns::PERSISTENT_VOLUME,
            volumes::persistent_volume,
        ))
    }
}
