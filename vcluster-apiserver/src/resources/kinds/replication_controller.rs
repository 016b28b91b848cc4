//! Replication controllers (core/v1): the ReplicaSet's predecessor, with a
//! plain label map as selector. As upstream's `SetDefaults_ReplicationController`
//! does, the selector and the object's labels default to the template's
//! labels and `spec.replicas` to 1; the template gets the pod defaults every
//! workload's template gets. Unlike a ReplicaSet's, the selector may change.

use jiff::Timestamp;
use k8s_openapi::api::core;
use serde_json::{json, Value};

use super::fields::{default_field, invalid_raw, nonnegative, not_supported_raw, obj_mut};
use super::{pod_spec, BuiltinKind};
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::Strategy;
use crate::resources::table::columns::{self, Column};
use crate::resources::table::format::{
    age, container_cells, format_labels, int_at, map_at, name, opt_int,
};
use crate::resources::table::{Printer, Row};
use crate::resources::Typed;

/// The ReplicationController kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "replicationcontrollers",
    "ReplicationController",
    Typed::of::<core::v1::ReplicationController>(),
    &ReplicationControllers,
)
.short_names(&["rc"])
.in_all()
.with_scale();

/// The rules of ReplicationController objects.
#[derive(Debug)]
struct ReplicationControllers;

impl Strategy for ReplicationControllers {
    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn orphans_by_default(&self) -> bool {
        true
    }

    fn default(&self, object: &mut Value) {
        let labels = object
            .pointer("/spec/template/metadata/labels")
            .filter(|l| l.is_object())
            .cloned();
        if let Some(labels) = labels {
            if let Some(spec) = obj_mut(object, "spec") {
                if spec
                    .get("selector")
                    .and_then(Value::as_object)
                    .is_none_or(|s| s.is_empty())
                {
                    spec.insert("selector".into(), labels.clone());
                }
            }
            let meta = object::metadata_mut(object);
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(|l| l.is_empty())
            {
                meta.insert("labels".into(), labels);
            }
        }
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "replicas", json!(1));
        }
        pod_spec::default_template(object, "/spec/template/spec");
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        // Go writes `replicas`, which has no `omitempty`.
        Some(json!({"replicas": 0}))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_spec(object, causes);
    }

    fn validate_update(&self, _old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        // Nothing in the spec is immutable (`validate` checks it again);
        // the status must add up (`ValidateReplicationControllerStatus`,
        // which only status writes can break).
        validate_status(new, causes);
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "status.replicas"]
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(COLUMNS, print))
    }
}

/// `ValidateReplicationControllerSpec`: a non-empty selector that selects
/// the template, replicas that are not negative, a template whose pods
/// always restart and have no deadline.
fn validate_spec(object: &Value, causes: &mut Vec<FieldCause>) {
    nonnegative(object, "spec.minReadySeconds", causes);
    let selector = object::string_map(object::path(object, "spec.selector"));
    if selector.is_empty() {
        causes.push(FieldCause::required("spec.selector"));
    }
    match object::path(object, "spec.replicas") {
        Some(Value::Number(_)) => nonnegative(object, "spec.replicas", causes),
        _ => causes.push(FieldCause::required("spec.replicas")),
    }
    let Some(template) = object::path(object, "spec.template").filter(|t| t.is_object()) else {
        causes.push(FieldCause::required("spec.template"));
        return;
    };
    let labels = object::string_map(template.pointer("/metadata/labels"));
    if !selector.is_empty() && !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        let shown = template
            .pointer("/metadata/labels")
            .filter(|l| !l.is_null())
            .map_or("null".to_owned(), Value::to_string);
        causes.push(invalid_raw(
            "spec.template.metadata.labels",
            &shown,
            "`selector` does not match template `labels`",
        ));
    }
    let spec = template.get("spec");
    pod_spec::validate(spec, "spec.template.spec", causes);
    let policy = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if policy != "Always" {
        causes.push(not_supported_raw(
            "spec.template.spec.restartPolicy",
            &format!("{policy:?}"),
            &["Always"],
        ));
    }
    if spec
        .and_then(|s| s.get("activeDeadlineSeconds"))
        .is_some_and(|d| !d.is_null())
    {
        causes.push(FieldCause::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
}

/// `ValidateReplicationControllerStatus`: counters not negative, none
/// above `replicas`, no more available than ready pods.
fn validate_status(object: &Value, causes: &mut Vec<FieldCause>) {
    for field in [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ] {
        nonnegative(object, &format!("status.{field}"), causes);
    }
    let count = |field: &str| {
        object
            .pointer(&format!("/status/{field}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if count(field) > count("replicas") {
            causes.push(invalid_raw(
                format!("status.{field}"),
                &count(field).to_string(),
                "cannot be greater than status.replicas",
            ));
        }
    }
    if count("availableReplicas") > count("readyReplicas") {
        causes.push(invalid_raw(
            "status.availableReplicas",
            &count("availableReplicas").to_string(),
            "cannot be greater than readyReplicas",
        ));
    }
}

/// Upstream's replication controller columns.
const COLUMNS: &[Column] = &[
    columns::NAME,
    columns::integer("Desired", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
    columns::integer("Current", "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller"),
    columns::integer("Ready", "The number of ready replicas for this replication controller."),
    columns::AGE,
    columns::CONTAINERS,
    columns::IMAGES,
    columns::string("Selector", "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
];

/// NAME DESIRED CURRENT READY AGE + CONTAINERS IMAGES SELECTOR.
fn print(rc: &Value, now: Timestamp) -> Row {
    let (containers, images) = container_cells(&["spec", "template", "spec", "containers"], rc);
    vec![
        name(rc).into(),
        opt_int(rc, &["spec", "replicas"]).unwrap_or(1).into(),
        int_at(rc, &["status", "replicas"]).into(),
        int_at(rc, &["status", "readyReplicas"]).into(),
        age(rc, now).into(),
        containers.into(),
        images.into(),
        format_labels(map_at(rc, &["spec", "selector"])).into(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    fn rc() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    #[test]
    fn the_selector_labels_and_replicas_default_from_the_template() {
        let rc = defaulted(&KIND, rc());
        assert_eq!(rc["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(rc["status"], json!({"replicas": 0}));
        assert!(invalid_fields(&KIND, &rc).is_empty());
    }

    #[test]
    fn the_template_must_match_and_always_restart() {
        let mut bad = defaulted(&KIND, rc());
        bad["spec"]["selector"] = json!({"app": "other"});
        bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            invalid_fields(&KIND, &bad),
            [
                "spec.template.metadata.labels",
                "spec.template.spec.restartPolicy"
            ]
        );
        assert_eq!(
            invalid_fields(&KIND, &json!({"spec": {"replicas": 1}})),
            ["spec.selector", "spec.template"]
        );
    }

    #[test]
    fn a_status_must_add_up() {
        let rc = defaulted(&KIND, rc());
        let mut reported = rc.clone();
        reported["status"] = json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": -1});
        let mut causes = Vec::new();
        KIND.strategy.validate_update(&rc, &reported, &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["status.availableReplicas", "status.readyReplicas"]);
    }
}
