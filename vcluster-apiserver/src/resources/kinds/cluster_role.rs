//! Cluster roles (rbac.authorization.k8s.io/v1): names are path segments, as
//! for every RBAC kind.

use k8s_openapi::api::rbac;
use vcluster_core::validation;

use serde_json::Value;

use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The ClusterRole kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "rbac.authorization.k8s.io",
    "clusterroles",
    "ClusterRole",
    Typed::of::<rbac::v1::ClusterRole>(),
    &ClusterRoles,
);

/// The rules of ClusterRole objects.
#[derive(Debug)]
struct ClusterRoles;

impl Strategy for ClusterRoles {
    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CREATED_AT, cluster::created_at))
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::path_segment_name_errors(name)
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        super::role::validate_rules(object, false, causes);
    }
}
