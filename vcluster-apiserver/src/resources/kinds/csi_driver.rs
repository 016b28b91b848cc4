//! CSI drivers (storage.k8s.io/v1): how the cluster talks to a storage
//! driver. Stored with upstream's defaults (attach required, persistent
//! volumes, `ReadWriteOnceWithFSType`) so tools reading them see what a
//! real cluster answers; nothing here calls a driver.

use k8s_openapi::api::storage;
use serde_json::{json, Value};

use super::fields::{default_field, invalid_raw, obj_mut, one_of};
use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The CSIDriver kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "storage.k8s.io",
    "csidrivers",
    "CSIDriver",
    Typed::of::<storage::v1::CSIDriver>(),
    &CsiDrivers,
);

const LIFECYCLE_MODES: &[&str] = &["Persistent", "Ephemeral"];
const FS_GROUP_POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];

/// The rules of CSIDriver objects.
#[derive(Debug)]
struct CsiDrivers;

impl Strategy for CsiDrivers {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        let Some(spec) = obj_mut(object, "spec") else {
            return;
        };
        default_field(spec, "attachRequired", json!(true));
        default_field(spec, "podInfoOnMount", json!(false));
        default_field(spec, "storageCapacity", json!(false));
        default_field(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
        if spec
            .get("volumeLifecycleModes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
        }
        default_field(spec, "requiresRepublish", json!(false));
        default_field(spec, "seLinuxMount", json!(false));
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let modes = crate::object::path(object, "spec.volumeLifecycleModes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for mode in modes {
            let mode = mode.as_str().unwrap_or("");
            if !LIFECYCLE_MODES.contains(&mode) {
                causes.push(FieldCause::not_supported(
                    "spec.volumeLifecycleModes",
                    mode,
                    LIFECYCLE_MODES,
                ));
            }
        }
        one_of(object, "spec.fsGroupPolicy", FS_GROUP_POLICIES, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        let attach = |o: &Value| crate::object::path(o, "spec.attachRequired").cloned();
        if attach(old) != attach(new) {
            let shown = attach(new).map_or("null".to_owned(), |v| v.to_string());
            causes.push(invalid_raw(
                "spec.attachRequired",
                &shown,
                "field is immutable",
            ));
        }
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CSI_DRIVER, platform::csi_driver))
    }
}
