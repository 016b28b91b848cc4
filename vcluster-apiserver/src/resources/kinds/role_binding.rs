//! Role bindings (rbac.authorization.k8s.io/v1): names are path segments, as
//! for every RBAC kind.

use k8s_openapi::api::rbac;
use serde_json::{json, Value};
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
    fn default(&self, object: &mut Value) {
        default_binding(object);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::ROLE_BINDING, cluster::role_binding))
    }

    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::path_segment_name_errors(name)
    }
}

/// What both binding kinds default, as upstream: a role reference without
/// a group names an RBAC role, and so does a user or group subject (a
/// service account's group stays empty).
pub(super) fn default_binding(object: &mut Value) {
    const RBAC: &str = "rbac.authorization.k8s.io";
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut) {
        let empty = role_ref
            .get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if empty {
            role_ref.insert("apiGroup".into(), json!(RBAC));
        }
    }
    let subjects = object.get_mut("subjects").and_then(Value::as_array_mut);
    for subject in subjects.into_iter().flatten() {
        let Some(subject) = subject.as_object_mut() else {
            continue;
        };
        let empty = subject
            .get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
        if empty && matches!(kind, "User" | "Group") {
            subject.insert("apiGroup".into(), json!(RBAC));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_refs_and_user_subjects_default_to_the_rbac_group() {
        let mut binding = json!({
            "roleRef": {"kind": "Role", "name": "reader"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "ServiceAccount", "name": "robot", "namespace": "a"},
            ],
        });
        default_binding(&mut binding);
        assert_eq!(binding["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(binding["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert!(binding["subjects"][1].get("apiGroup").is_none());
    }

    const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
}
