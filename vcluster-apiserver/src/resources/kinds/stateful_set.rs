//! Stateful sets (apps/v1): ordered pod management, retained claims and
//! rolling updates by default, an immutable selector.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::fields::{child_object, default_field, go_struct, invalid_raw, nonnegative};
use crate::error::FieldCause;
use crate::object;
use super::workload::Workload;
use super::BuiltinKind;
use crate::resources::strategy::NAME_AND_NAMESPACE;
use crate::resources::table::{columns, workloads, Printer};
use crate::resources::Typed;

/// The StatefulSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "statefulsets",
    "StatefulSet",
    Typed::of::<apps::v1::StatefulSet>(),
    &STRATEGY,
)
.short_names(&["sts"])
.in_all()
.with_scale();

/// The rules of StatefulSet objects.
const STRATEGY: Workload = Workload {
    replicas: true,
    spec_defaults,
    spec_checks,
    later_checks: super::workload::no_checks,
    noun: "statefulset",
    status: || Some(json!({"replicas": 0, "availableReplicas": 0})),
    object_defaults: super::workload::no_object_defaults,
    on_update: super::workload::no_update_rules,
    selectable_fields: NAME_AND_NAMESPACE,
    printer: Printer::new(columns::STATEFUL_SET, workloads::stateful_set),
};

/// The StatefulSet's own spec defaults.
fn spec_defaults(spec: &mut Map<String, Value>) {
    default_field(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(policy) = child_object(spec, "persistentVolumeClaimRetentionPolicy") {
        default_field(policy, "whenDeleted", json!("Retain"));
        default_field(policy, "whenScaled", json!("Retain"));
    }
    // Unlike the other workloads, an explicit `RollingUpdate` without
    // parameters keeps none; only a defaulted type gets them.
    if let Some(strategy) = child_object(spec, "updateStrategy") {
        if strategy.get("type").is_none_or(Value::is_null) {
            strategy.insert("type".into(), json!("RollingUpdate"));
            child_object(strategy, "rollingUpdate");
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(params) = strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut) {
                default_field(params, "partition", json!(0));
            }
        }
    }
    default_field(spec, "revisionHistoryLimit", json!(10));
}

/// The pod management policy and update strategy are known ones.
fn spec_checks(object: &Value, causes: &mut Vec<FieldCause>) {
    match object::path(object, "spec.podManagementPolicy").and_then(Value::as_str) {
        None | Some("") => causes.push(FieldCause::required("spec.podManagementPolicy")),
        Some("OrderedReady" | "Parallel") => {}
        Some(other) => causes.push(FieldCause::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = object::path(object, "spec.updateStrategy");
    let rolling = strategy.and_then(|s| s.get("rollingUpdate")).filter(|r| !r.is_null());
    match strategy.and_then(|s| s.get("type")).and_then(Value::as_str) {
        None | Some("") => causes.push(FieldCause::required("spec.updateStrategy")),
        Some("RollingUpdate") => {}
        Some("OnDelete") => {
            if let Some(rolling) = rolling {
                causes.push(invalid_raw(
                    "spec.updateStrategy.rollingUpdate",
                    &go_struct(rolling, &["partition", "maxUnavailable"]),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        Some(other) => causes.push(invalid_raw(
            "spec.updateStrategy",
            &format!(
                "{{\"Type\":{other:?},\"RollingUpdate\":{}}}",
                rolling.map_or("null".into(), |r| go_struct(r, &["partition", "maxUnavailable"]))
            ),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    for (field, supported) in [("whenDeleted", ["Retain", "Delete"]), ("whenScaled", ["Retain", "Delete"])] {
        let path = format!("spec.persistentVolumeClaimRetentionPolicy.{field}");
        if let Some(value) = object::path(object, &path).and_then(Value::as_str) {
            if !supported.contains(&value) {
                causes.push(FieldCause::not_supported(path, value, &supported));
            }
        }
    }
    nonnegative(object, "spec.revisionHistoryLimit", causes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::defaulted;

    #[test]
    fn only_some_stateful_set_fields_may_change() {
        let set = defaulted(
            &KIND,
            json!({"metadata": {"name": "s"}, "spec": {"serviceName": "web", "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        let mut scaled = set.clone();
        scaled["spec"]["replicas"] = json!(3);
        let mut causes = Vec::new();
        KIND.strategy.validate_update(&set, &scaled, &mut causes);
        assert!(causes.is_empty());
        let mut renamed = set.clone();
        renamed["spec"]["serviceName"] = json!("other");
        KIND.strategy.validate_update(&set, &renamed, &mut causes);
        assert_eq!(causes[0].field, "spec");
        assert_eq!(causes[0].reason, "FieldValueForbidden");
    }
}
