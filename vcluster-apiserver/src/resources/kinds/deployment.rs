//! Deployments (apps/v1): one replica and a 25% rolling update by default, a
//! selector that selects the template and never changes.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::fields::default_field;
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
    noun: "deployment",
    status: super::workload::no_status,
    object_defaults: super::workload::no_object_defaults,
    on_update,
    selectable_fields: NAME_AND_NAMESPACE,
    printer: Printer::new(columns::DEPLOYMENT, workloads::deployment),
};

/// The Deployment's own spec defaults.
fn spec_defaults(spec: &mut Map<String, Value>) {
    default_field(
        spec,
        "strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
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
        assert_eq!(
            invalid_fields(&KIND, &bad),
            ["spec.template.metadata.labels"]
        );
        let changed = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
        let mut causes = Vec::new();
        KIND.strategy.validate_update(&bad, &changed, &mut causes);
        assert_eq!(causes[0].field, "spec.selector");
    }
}
