//! Deployments (apps/v1): one replica and a 25% rolling update by default, a
//! selector that selects the template and never changes.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::fields::{
    default_field, default_strategy, go_struct, invalid_raw, nonnegative, not_supported_raw, required_because,
};
use crate::error::FieldCause;
use crate::object;
use super::workload::Workload;
use super::BuiltinKind;
use crate::resources::strategy::NAME_AND_NAMESPACE;
use crate::resources::table::{columns, workloads, Printer};
use crate::resources::Typed;

/// The Deployment kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "deployments",
    "Deployment",
    Typed::of::<apps::v1::Deployment>(),
    &STRATEGY,
)
.short_names(&["deploy"])
.in_all()
.with_scale();

/// The rules of Deployment objects.
const STRATEGY: Workload = Workload {
    replicas: true,
    spec_defaults,
    spec_checks: super::workload::no_checks,
    later_checks,
    noun: "deployment",
    status: super::workload::no_status,
    object_defaults: super::workload::no_object_defaults,
    on_update,
    selectable_fields: NAME_AND_NAMESPACE,
    printer: Printer::new(columns::DEPLOYMENT, workloads::deployment),
};

/// The Deployment's own spec defaults.
fn spec_defaults(spec: &mut Map<String, Value>) {
    default_strategy(
        spec,
        "strategy",
        &[("maxUnavailable", json!("25%")), ("maxSurge", json!("25%"))],
    );
    default_field(spec, "revisionHistoryLimit", json!(10));
    default_field(spec, "progressDeadlineSeconds", json!(600));
}

/// A deployment's generation also moves when its annotations change
/// (upstream keeps the rollback request there).
fn on_update(old: &Value, new: &mut Value) {
    if old.pointer("/metadata/annotations") != new.pointer("/metadata/annotations") {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        crate::object::metadata_mut(new).insert("generation".into(), json!(generation + 1));
    }
}

/// The rollout strategy is a known one and the deadlines make sense
/// (`ValidateDeploymentStrategy` and the rest of `ValidateDeploymentSpec`).
fn later_checks(object: &Value, causes: &mut Vec<FieldCause>) {
    let strategy = object::path(object, "spec.strategy");
    let rolling = strategy
        .and_then(|s| s.get("rollingUpdate"))
        .filter(|r| !r.is_null());
    match strategy.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("Recreate") => {
            if rolling.is_some() {
                causes.push(FieldCause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        Some("RollingUpdate") => {
            if rolling.is_none() {
                causes.push(required_because(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                ));
            }
        }
        other => causes.push(not_supported_raw(
            "spec.strategy",
            &format!(
                "{{\"Type\":{:?},\"RollingUpdate\":{}}}",
                other.unwrap_or(""),
                rolling.map_or("null".into(), |r| go_struct(r, &["maxUnavailable", "maxSurge"]))
            ),
            &["Recreate", "RollingUpdate"],
        )),
    }
    nonnegative(object, "spec.revisionHistoryLimit", causes);
    if let Some(deadline) = object::path(object, "spec.progressDeadlineSeconds").and_then(Value::as_i64) {
        nonnegative(object, "spec.progressDeadlineSeconds", causes);
        let min_ready = object::path(object, "spec.minReadySeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if deadline <= min_ready {
            causes.push(invalid_raw(
                "spec.progressDeadlineSeconds",
                &deadline.to_string(),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    #[test]
    fn deployments_get_replicas_and_a_rolling_strategy() {
        let d = defaulted(
            &KIND,
            json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn deployments_need_a_matching_selector_that_never_changes() {
        let bad = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        // The registry validates defaulted objects (a strategy is required).
        assert_eq!(
            invalid_fields(&KIND, &defaulted(&KIND, bad.clone())),
            ["spec.template.metadata.labels"]
        );
        let mut recreate = defaulted(&KIND, bad.clone());
        recreate["spec"]["template"]["metadata"]["labels"]["app"] = json!("a");
        recreate["spec"]["strategy"]["type"] = json!("Recreate");
        assert_eq!(
            invalid_fields(&KIND, &recreate),
            ["spec.strategy.rollingUpdate"]
        );
        let changed = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
        let mut causes = Vec::new();
        KIND.strategy.validate_update(&bad, &changed, &mut causes);
        assert_eq!(causes[0].field, "spec.selector");
    }
}
