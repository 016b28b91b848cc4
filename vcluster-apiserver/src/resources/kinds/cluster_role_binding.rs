//! Cluster role bindings (rbac.authorization.k8s.io/v1): names are path
//! segments, as for every RBAC kind.

use k8s_openapi::api::rbac;
use vcluster_core::validation;

use super::{BuiltinKind};
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};

/// The ClusterRoleBinding kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "rbac.authorization.k8s.io",
    "clusterrolebindings",
    "ClusterRoleBinding",
    Typed::of::<rbac::v1::ClusterRoleBinding>(),
    &ClusterRoleBindings,
);

/// The rules of ClusterRoleBinding objects.
#[derive(Debug)]
struct ClusterRoleBindings;

impl Strategy for ClusterRoleBindings {
    fn default(&self, object: &mut serde_json::Value) {
        super::role_binding::default_binding(object);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CLUSTER_ROLE_BINDING, cluster::role_binding))
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::path_segment_name_errors(name)
    }
}
