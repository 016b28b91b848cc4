//! Roles (rbac.authorization.k8s.io/v1): names are path segments, as for
//! every RBAC kind.

use k8s_openapi::api::rbac;
use vcluster_core::validation;

use serde_json::Value;

use super::fields::{invalid_raw, required_because};
use super::BuiltinKind;
use crate::error::FieldCause;
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

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_rules(object, true, causes);
    }
}

/// Every rule has verbs, and either resources (with API groups) or
/// non-resource URLs (cluster roles only), never both
/// (`ValidatePolicyRule`).
pub(super) fn validate_rules(object: &Value, namespaced: bool, causes: &mut Vec<FieldCause>) {
    let rules = object.get("rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let at = |field: &str| format!("rules[{i}].{field}");
        let list = |field: &str| {
            rule.get(field)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        if list("verbs").is_empty() {
            causes.push(required_because(
                at("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = list("nonResourceURLs");
        if !urls.is_empty() {
            let shown = Value::Array(urls.to_vec()).to_string();
            if namespaced {
                causes.push(invalid_raw(
                    at("nonResourceURLs"),
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !list("apiGroups").is_empty()
                || !list("resources").is_empty()
                || !list("resourceNames").is_empty()
            {
                causes.push(invalid_raw(
                    at("nonResourceURLs"),
                    &shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if list("apiGroups").is_empty() {
            causes.push(required_because(
                at("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if list("resources").is_empty() {
            causes.push(required_because(
                at("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}
