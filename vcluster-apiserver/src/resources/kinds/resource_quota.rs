//! Resource quotas (core/v1): per-namespace limits on what objects may
//! consume, enforced by the ResourceQuota admission plugin
//! (`crate::registry::admission::resource_quota`) and counted by the
//! resource-quota controller, which keeps `status` current.

use k8s_openapi::api::core;
use serde_json::Value;

use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::registry::admission::quantity::Quantity;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};
use crate::resources::Typed;

/// The ResourceQuota kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "resourcequotas",
    "ResourceQuota",
    Typed::of::<core::v1::ResourceQuota>(),
    &ResourceQuotas,
)
.short_names(&["quota"])
.with_status();

/// The rules of ResourceQuota objects.
#[derive(Debug)]
struct ResourceQuotas;

/// The names a quota may limit without a `/` (upstream's
/// `standardQuotaResources`, hugepages aside).
const STANDARD: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

/// The names counted in whole units (upstream's `integerResources`).
const INTEGER: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// The scopes a quota may have.
const SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
];

/// Checks a resource list of a quota (`spec.hard`, `status.hard`,
/// `status.used`): standard or qualified names, non-negative quantities,
/// whole numbers for counts.
fn check_list(list: Option<&Value>, at: &str, causes: &mut Vec<FieldCause>) {
    for (name, value) in list.and_then(Value::as_object).into_iter().flatten() {
        let path = format!("{at}[{name}]");
        if !name.contains('/')
            && !STANDARD.contains(&name.as_str())
            && !name.starts_with("hugepages-")
            && !name.starts_with("requests.hugepages-")
        {
            causes.push(FieldCause::invalid(
                &path,
                name,
                "must be a standard resource for quota",
            ));
        }
        let Some(quantity) = value.as_str().and_then(Quantity::parse) else {
            causes.push(FieldCause::invalid(path, &value.to_string(), "must be a valid quantity"));
            continue;
        };
        if quantity.is_negative() {
            causes.push(FieldCause::invalid(
                &path,
                &quantity.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        if INTEGER.contains(&name.as_str()) && quantity.milli_value() % 1000 != 0 {
            causes.push(FieldCause::invalid(path, &quantity.to_string(), "must be an integer"));
        }
    }
}

impl Strategy for ResourceQuotas {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        check_list(object.pointer("/spec/hard"), "spec.hard", causes);
        check_list(object.pointer("/status/hard"), "status.hard", causes);
        check_list(object.pointer("/status/used"), "status.used", causes);
        let scopes: Vec<&str> = object
            .pointer("/spec/scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let shown = format!("[]core.ResourceQuotaScope{{{}}}", scopes.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "));
        if scopes.iter().any(|s| !SCOPES.contains(s)) {
            causes.push(FieldCause {
                reason: "FieldValueInvalid",
                field: "spec.scopes".into(),
                message: format!("Invalid value: {}: unsupported scope", scopes_json(&scopes)),
            });
        }
        let has = |s: &str| scopes.contains(&s);
        if has("Terminating") && has("NotTerminating") || has("BestEffort") && has("NotBestEffort") {
            let _ = shown;
            causes.push(FieldCause {
                reason: "FieldValueInvalid",
                field: "spec.scopes".into(),
                message: format!("Invalid value: {}: conflicting scopes", scopes_json(&scopes)),
            });
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        let scopes = |o: &Value| {
            let mut s: Vec<String> = o
                .pointer("/spec/scopes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            s.sort();
            s
        };
        if scopes(old) != scopes(new) {
            causes.push(FieldCause::immutable("spec.scopes"));
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::RESOURCE_QUOTA, cluster::resource_quota))
    }
}

/// Scopes as upstream's JSON rendering of the bad value shows them.
fn scopes_json(scopes: &[&str]) -> String {
    serde_json::to_string(scopes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::invalid_fields;
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_bad_names_and_amounts() {
        let quota = json!({"spec": {"hard": {"pods": "1.5", "cpu": "-1", "bogus": "1", "count/pods": "2"}}});
        let mut fields = invalid_fields(&KIND, &quota);
        fields.sort();
        assert_eq!(fields, vec!["spec.hard[bogus]", "spec.hard[cpu]", "spec.hard[pods]"]);
    }
}
