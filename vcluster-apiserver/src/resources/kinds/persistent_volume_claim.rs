//! Persistent volume claims (core/v1): `Filesystem` volume mode and a
//! `Pending` phase on create (see `volume`), printed as `kubectl get pvc`
//! shows them.

use k8s_openapi::api::core;

use serde_json::Value;

use super::fields::required_because;
use super::volume::no_defaults;
use super::volume::{validate_access_modes, Volumes};
use crate::error::FieldCause;
use crate::object;
use super::BuiltinKind;
use crate::resources::table::{columns, volumes, Printer};
use crate::resources::Typed;

/// The PersistentVolumeClaim kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "persistentvolumeclaims",
    "PersistentVolumeClaim",
    Typed::of::<core::v1::PersistentVolumeClaim>(),
    &STRATEGY,
)
.short_names(&["pvc"])
.with_status();

/// The rules of PersistentVolumeClaim objects.
const STRATEGY: Volumes = Volumes(Printer::new(
    columns::PERSISTENT_VOLUME_CLAIM,
    volumes::persistent_volume_claim,
),
    validate,
    // Upstream's StorageObjectInUseProtection admission adds the
    // `kubernetes.io/pvc-protection` finalizer, which its pvc-protection
    // controller removes; with no such controller here, a claim carrying
    // it could never be deleted.
    no_defaults,
);

/// Access modes and a storage request (`ValidatePersistentVolumeClaimSpec`).
fn validate(object: &Value, causes: &mut Vec<FieldCause>) {
    validate_access_modes(
        object,
        required_because("spec.accessModes", "at least 1 access mode is required"),
        causes,
    );
    if object::path(object, "spec.resources.requests.storage").is_none() {
        causes.push(FieldCause::required("spec.resources[storage]"));
    }
}
