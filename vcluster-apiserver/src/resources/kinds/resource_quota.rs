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
        let hard: Vec<&str> = object
            .pointer("/spec/hard")
            .and_then(Value::as_object)
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let scopes: Vec<&str> = object
            .pointer("/spec/scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let shown = scopes_json(&scopes);
        let invalid = |field: &str, shown: &str, why: &str| FieldCause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {shown}: {why}"),
        };
        for scope in &scopes {
            if !SCOPES.contains(scope) {
                causes.push(invalid("spec.scopes", &shown, "unsupported scope"));
            }
            for _ in hard.iter().filter(|n| !scope_covers(scope, n)) {
                causes.push(invalid("spec.scopes", &shown, "unsupported scope applied to resource"));
            }
        }
        if conflicting(&scopes) {
            causes.push(invalid("spec.scopes", &shown, "conflicting scopes"));
        }
        let Some(selector) = object.pointer("/spec/scopeSelector").filter(|s| !s.is_null()) else {
            return;
        };
        let at = "spec.scopeSelector.matchExpressions";
        let expressions = selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut names = Vec::new();
        for expression in expressions {
            let scope = expression.get("scopeName").and_then(Value::as_str).unwrap_or("");
            let operator = expression.get("operator").and_then(Value::as_str).unwrap_or("");
            let values = expression.get("values").and_then(Value::as_array).map_or(0, Vec::len);
            if !SCOPES.contains(&scope) {
                causes.push(FieldCause::invalid(format!("{at}.scopeName"), scope, "unsupported scope"));
            }
            for _ in hard.iter().filter(|n| !scope_covers(scope, n)) {
                causes.push(invalid(at, &serde_json::to_string(selector).unwrap_or_default(), "unsupported scope applied to resource"));
            }
            if matches!(scope, "BestEffort" | "NotBestEffort" | "Terminating" | "NotTerminating" | "CrossNamespacePodAffinity")
                && operator != "Exists"
            {
                causes.push(FieldCause::invalid(format!("{at}.operator"), operator, "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"));
            }
            match operator {
                "In" | "NotIn" if values == 0 => causes.push(FieldCause {
                    reason: "FieldValueRequired",
                    field: format!("{at}.values"),
                    message: "Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector".into(),
                }),
                "Exists" | "DoesNotExist" if values != 0 => causes.push(invalid(
                    &format!("{at}.values"),
                    &serde_json::to_string(&expression["values"]).unwrap_or_default(),
                    "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                )),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                _ => causes.push(FieldCause::invalid(format!("{at}.operator"), operator, "not a valid selector operator")),
            }
            names.push(scope);
        }
        if conflicting(&names) {
            causes.push(invalid(at, &shown, "conflicting scopes"));
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

/// Whether a quota with `scope` may limit `name` (upstream's
/// `IsResourceQuotaScopeValidForResource`; names outside the standard
/// quota resources are not checked).
fn scope_covers(scope: &str, name: &str) -> bool {
    if !STANDARD.contains(&name) && !name.starts_with("hugepages-") && !name.starts_with("requests.hugepages-") {
        return true;
    }
    let pod_count = name == "pods";
    let pod_compute = matches!(
        name,
        "cpu" | "memory" | "limits.cpu" | "limits.memory" | "requests.cpu" | "requests.memory"
    );
    match scope {
        "Terminating" | "NotTerminating" | "NotBestEffort" | "PriorityClass"
        | "CrossNamespacePodAffinity" => pod_count || pod_compute,
        "BestEffort" => pod_count,
        "VolumeAttributesClass" => matches!(name, "persistentvolumeclaims" | "requests.storage"),
        _ => true,
    }
}

/// Both of an exclusive pair of scopes.
fn conflicting(scopes: &[&str]) -> bool {
    let has = |s: &str| scopes.contains(&s);
    has("Terminating") && has("NotTerminating") || has("BestEffort") && has("NotBestEffort")
}

/// Scopes as upstream's JSON rendering of the bad value shows them.
fn scopes_json(scopes: &[&str]) -> String {
    if scopes.is_empty() {
        return "null".into();
    }
    serde_json::to_string(scopes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::invalid_fields;
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_fit_what_they_limit() {
        let quota = json!({"spec": {"hard": {"pods": "1", "requests.storage": "1Gi"}, "scopes": ["BestEffort", "NotBestEffort"]}});
        let fields = invalid_fields(&KIND, &quota);
        // requests.storage under two pod scopes, and the pair conflicting.
        assert_eq!(fields, vec!["spec.scopes"; 3]);
        let selector = json!({"spec": {"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": []}]}}});
        assert_eq!(invalid_fields(&KIND, &selector), vec!["spec.scopeSelector.matchExpressions.values"]);
    }

    #[test]
    fn refuses_bad_names_and_amounts() {
        let quota = json!({"spec": {"hard": {"pods": "1.5", "cpu": "-1", "bogus": "1", "count/pods": "2"}}});
        let mut fields = invalid_fields(&KIND, &quota);
        fields.sort();
        assert_eq!(fields, vec!["spec.hard[bogus]", "spec.hard[cpu]", "spec.hard[pods]"]);
    }
}
