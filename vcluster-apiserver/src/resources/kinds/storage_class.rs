//! Storage classes (storage.k8s.io/v1), imported from the host by the syncer.

use k8s_openapi::api::storage;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, volumes, Printer};

/// The StorageClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind {
    group: "storage.k8s.io",
    version: "v1",
    plural: "storageclasses",
    singular: "storageclass",
    kind: "StorageClass",
    namespaced: false,
    short_names: &["sc"],
    categories: &[],
    status: false,
    scale: false,
    subresources: &[],
    typed: Typed::of::<storage::v1::StorageClass>(),
    strategy: &StorageClass,
};

/// The rules of StorageClass objects.
#[derive(Debug)]
struct StorageClass;

impl Strategy for StorageClass {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::STORAGE_CLASS, volumes::storage_class))
    }
}
