//! Role bindings (rbac.authorization.k8s.io/v1): names are path segments, as
//! for every RBAC kind.

use k8s_openapi::api::rbac;
use vcluster_core::validation;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The RoleBinding kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "rbac.authorization.k8s.io",
    "rolebindings",
    "RoleBinding",
    Typed::of::<rbac::v1::RoleBinding>(),
    &RoleBindings,
);

/// The rules of RoleBinding objects.
#[derive(Debug)]
struct RoleBindings;

impl Strategy for RoleBindings {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::ROLE_BINDING, cluster::role_binding))
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::path_segment_name_errors(name)
    }
}
