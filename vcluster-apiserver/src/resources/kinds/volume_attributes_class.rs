//! Volume attributes classes (storage.k8s.io/v1): named sets of mutable
//! volume parameters (IOPS, throughput) a claim can switch between. The
//! driver and parameters are fixed once created.

use k8s_openapi::api::storage;
use serde_json::Value;

use super::fields::{immutable_text, require_text};
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The VolumeAttributesClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "storage.k8s.io",
    "volumeattributesclasses",
    "VolumeAttributesClass",
    Typed::of::<storage::v1::VolumeAttributesClass>(),
    &VolumeAttributesClasses,
)
.short_names(&["vac"]);

/// The rules of VolumeAttributesClass objects.
#[derive(Debug)]
struct VolumeAttributesClasses;

impl Strategy for VolumeAttributesClasses {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        require_text(object, "driverName", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        immutable_text(old, new, "driverName", causes);
        if old.get("parameters") != new.get("parameters") {
            causes.push(FieldCause::forbidden("parameters", "field is immutable"));
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::VOLUME_ATTRIBUTES_CLASS,
            platform::volume_attributes_class,
        ))
    }
}
