//! Persistent volume claims (core/v1): `Filesystem` volume mode and a
//! `Pending` phase on create (see `volume`), printed as `kubectl get pvc`
//! shows them.

use k8s_openapi::api::core;

use super::volume::Volumes;
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
));
