//! Deployments (apps/v1): one replica and a 25% rolling update by default, a
//! selector that selects the template and never changes.

use k8s_openapi::api::apps;
use serde_json::{json, Value};

use super::{fields::default_field, workload, BuiltinKind};
use crate::error::FieldCause;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};

/// The Deployment kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "deployments",
    "Deployment",
    Typed::of::<apps::v1::Deployment>(),
    &Deployments,
)
.short_names(&["deploy"])
.in_all()
.with_scale();

/// The rules of Deployment objects.
#[derive(Debug)]
struct Deployments;

impl Strategy for Deployments {
    fn default(&self, object: &mut Value) {
        workload::default(object, true, |spec| {
            default_field(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default_field(spec, "revisionHistoryLimit", json!(10));
            default_field(spec, "progressDeadlineSeconds", json!(600));
        });
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        workload::validate(object, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        workload::validate_update(old, new, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::DEPLOYMENT, workloads::deployment))
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
