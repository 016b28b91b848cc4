//! Custom resource definitions (apiextensions.k8s.io/v1); `crate::resources::custom` checks
//! them and serves what they define.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use serde_json::Value;

use super::{BuiltinKind};
use crate::resources::custom;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The CustomResourceDefinition kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "apiextensions.k8s.io",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    Typed::of::<apiextensions::v1::CustomResourceDefinition>(),
    &CustomResourceDefinitions,
)
.short_names(&["crd", "crds"])
.categories(&["api-extensions"])
.with_status();

/// The rules of CustomResourceDefinition objects.
#[derive(Debug)]
struct CustomResourceDefinitions;

impl Strategy for CustomResourceDefinitions {
    fn default(&self, object: &mut Value) {
        custom::apply_defaults(object);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(
            columns::CUSTOM_RESOURCE_DEFINITION,
            cluster::custom_resource_definition,
        ))
    }
}
