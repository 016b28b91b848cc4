//! Device classes (resource.k8s.io/v1): named device selections and
//! configuration that dynamic resource allocation claims refer to.
//! Stored and printed as upstream does; no allocator runs here.

use k8s_openapi::api::resource;

use super::BuiltinKind;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, platform, Printer};
use crate::resources::Typed;

/// The DeviceClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "resource.k8s.io",
    "deviceclasses",
    "DeviceClass",
    Typed::of::<resource::v1::DeviceClass>(),
    &DeviceClasses,
);

/// The rules of DeviceClass objects.
#[derive(Debug)]
struct DeviceClasses;

impl Strategy for DeviceClasses {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::DEVICE_CLASS, platform::name_and_age))
    }
}
