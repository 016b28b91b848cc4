//! Storage classes (storage.k8s.io/v1), imported from the host by the syncer.

use k8s_openapi::api::storage;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, volumes, Printer};

/// The StorageClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "storage.k8s.io",
    "storageclasses",
    "StorageClass",
    Typed::of::<storage::v1::StorageClass>(),
    &StorageClass,
)
.short_names(&["sc"]);

/// The rules of StorageClass objects.
#[derive(Debug)]
struct StorageClass;

impl Strategy for StorageClass {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::STORAGE_CLASS, volumes::storage_class))
    }
}
