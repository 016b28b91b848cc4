//! Persistent volumes (core/v1): `Filesystem` volume mode and a `Pending`
//! phase on create (see `volume`), printed as `kubectl get pv` shows them.

use k8s_openapi::api::core;

use serde_json::Value;

use serde_json::json;

use super::fields::{default_field, not_supported_raw};
use super::volume::{validate_access_modes, Volumes};
use crate::error::FieldCause;
use crate::object;
use super::BuiltinKind;
use crate::resources::table::{columns, volumes, Printer};
use crate::resources::Typed;

/// The PersistentVolume kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "",
    "persistentvolumes",
    "PersistentVolume",
    Typed::of::<core::v1::PersistentVolume>(),
    &STRATEGY,
)
.short_names(&["pv"])
.with_status();

/// The rules of PersistentVolume objects.
const STRATEGY: Volumes = Volumes(Printer::new(
    columns::PERSISTENT_VOLUME,
    volumes::persistent_volume,
),
    validate,
    default,
);

/// `Retain` by default, and host paths of no particular type. (Not the
/// `kubernetes.io/pv-protection` finalizer upstream's admission adds: the
/// controller that removes it does not run here.)
fn default(object: &mut Value) {
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        default_field(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        if let Some(host_path) = spec.get_mut("hostPath").and_then(Value::as_object_mut) {
            default_field(host_path, "type", json!(""));
        }
    }
}

/// Access modes and a storage capacity (`ValidatePersistentVolumeSpec`).
fn validate(object: &Value, causes: &mut Vec<FieldCause>) {
    validate_access_modes(object, FieldCause::required("spec.accessModes"), causes);
    let capacity = object::path(object, "spec.capacity").and_then(Value::as_object);
    if capacity.is_none_or(|c| c.is_empty()) {
        causes.push(FieldCause::required("spec.capacity"));
    }
    if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        let shown = capacity.map_or("null".to_owned(), |c| Value::Object(c.clone()).to_string());
        causes.push(not_supported_raw("spec.capacity", &shown, &["storage"]));
    }
    if let Some(policy) =
        object::path(object, "spec.persistentVolumeReclaimPolicy").and_then(Value::as_str)
    {
        if !policy.is_empty() && !matches!(policy, "Delete" | "Recycle" | "Retain") {
            causes.push(FieldCause::not_supported(
                "spec.persistentVolumeReclaimPolicy",
                policy,
                &["Delete", "Recycle", "Retain"],
            ));
        }
    }
}
