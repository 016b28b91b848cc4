//! Roles (rbac.authorization.k8s.io/v1): names are path segments, as for
//! every RBAC kind.

use k8s_openapi::api::rbac;
use vcluster_core::validation;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The Role kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "rbac.authorization.k8s.io",
    "roles",
    "Role",
    Typed::of::<rbac::v1::Role>(),
    &Roles,
);

/// The rules of Role objects.
#[derive(Debug)]
struct Roles;

impl Strategy for Roles {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CREATED_AT, cluster::created_at))
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::path_segment_name_errors(name)
    }
}
