//! Persistent volumes (core/v1): `Filesystem` volume mode and a `Pending`
//! phase on create (see `volume`), printed as `kubectl get pv` shows them.

use k8s_openapi::api::core;

use super::volume::Volumes;
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
));
