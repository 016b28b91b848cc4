//! Volume attachments (storage.k8s.io/v1): a request to attach a volume
//! to a node, written by the attach/detach controller and answered by
//! the driver's attacher through `status`. Its spec never changes.

use k8s_openapi::api::storage;
use serde_json::Value;

use super::fields::{require_text, required_because};
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The VolumeAttachment kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "storage.k8s.io",
    "volumeattachments",
    "VolumeAttachment",
    Typed::of::<storage::v1::VolumeAttachment>(),
    &VolumeAttachments,
)
.with_status();

/// The rules of VolumeAttachment objects.
#[derive(Debug)]
struct VolumeAttachments;

impl Strategy for VolumeAttachments {
    /// Upstream's status strategy keeps the stored metadata.
    fn status_writes_metadata(&self) -> bool {
        false
    }

    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        super::fields::csi_driver_name(super::fields::text(object, "spec.attacher"), "spec.attacher", causes);
        require_text(object, "spec.nodeName", causes);
        let source = crate::object::path(object, "spec.source");
        let set = |field: &str| {
            source
                .and_then(|s| s.get(field))
                .is_some_and(|v| !v.is_null())
        };
        match (set("persistentVolumeName"), set("inlineVolumeSpec")) {
            (false, false) => causes.push(required_because(
                "spec.source",
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            )),
            (true, true) => causes.push(FieldCause::forbidden(
                "spec.source",
                "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
            )),
            _ => {}
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        if old.get("spec") != new.get("spec") {
            causes.push(FieldCause::forbidden(
                "spec",
                "spec is immutable after creation",
            ));
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::VOLUME_ATTACHMENT,
            platform::volume_attachment,
        ))
    }
}
