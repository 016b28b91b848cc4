//! Jobs (batch/v1): completion defaults, the uid selector upstream generates,
//! a required template, selectable by `status.successful`.

use k8s_openapi::api::batch;
use serde_json::{json, Value};

use super::{
    fields::{default_field, invalid_raw, nonnegative, obj_mut, required_because},
    pod_spec, BuiltinKind};
use crate::error::FieldCause;
use crate::object;
use crate::resources::Typed;
use crate::resources::strategy::Strategy;
use crate::resources::table::{columns, workloads, Printer};

/// The Job kind.
pub(super) const KIND: BuiltinKind =
    BuiltinKind::namespaced("batch", "jobs", "Job", Typed::of::<batch::v1::Job>(), &Jobs)
        .in_all()
        .with_status();

/// The rules of Job objects.
#[derive(Debug)]
struct Jobs;

impl Strategy for Jobs {
    fn default(&self, object: &mut Value) {
        default_job(object);
    }

    /// A new job's generated selector and pod labels (`PrepareForCreate`:
    /// after the writer's managed fields, so not the writer's).
    fn prepare_for_create(&self, object: &mut Value) {
        generate_selector(object);
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        for field in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit"] {
            nonnegative(object, &format!("spec.{field}"), causes);
        }
        if object::path(object, "spec.template").is_none() {
            causes.push(FieldCause::required("spec.template"));
            return;
        }
        let no_selector = object::path(object, "spec.selector").is_none_or(Value::is_null);
        if no_selector {
            causes.push(FieldCause::required("spec.selector"));
        }
        let selector = object::string_map(object::path(object, "spec.selector.matchLabels"));
        let labels = object::string_map(object::path(object, "spec.template.metadata.labels"));
        if no_selector || !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            causes.push(invalid_raw(
                "spec.template.metadata.labels",
                &object::path(object, "spec.template.metadata.labels")
                    .filter(|l| !l.is_null())
                    .map_or("null".to_owned(), Value::to_string),
                "`selector` does not match template `labels`",
            ));
        }
        let spec = object::path(object, "spec.template.spec");
        pod_spec::validate(spec, "spec.template.spec", causes);
        validate_restart_policy(spec, "spec.template.spec.restartPolicy", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        // `ValidateImmutableField`: the selector a job's pods were made for.
        let selector = new.pointer("/spec/selector");
        if old.pointer("/spec/selector") != selector {
            let shown = selector
                .filter(|s| !s.is_null())
                .map_or("null".to_owned(), Value::to_string);
            causes.push(invalid_raw("spec.selector", &shown, "field is immutable"));
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "status.successful"]
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::JOB, workloads::job))
    }
}

/// A job's pods run to completion: `OnFailure` or `Never`, not the pod
/// default `Always`.
pub(super) fn validate_restart_policy(
    spec: Option<&Value>,
    field: &str,
    causes: &mut Vec<FieldCause>,
) {
    match spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "" | "Always" => causes.push(required_because(
            field,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {}
        other => causes.push(FieldCause::not_supported(
            field,
            other,
            &["OnFailure", "Never"],
        )),
    }
}

/// Job defaults (the generated selector is [`generate_selector`]'s).
fn default_job(object: &mut Value) {
    let Some(spec) = obj_mut(object, "spec") else {
        return;
    };
    // Upstream defaults both only when neither is set: a job with only
    // `parallelism` is a work queue and must keep `completions` unset.
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
    }
    default_field(spec, "parallelism", json!(1));
    default_field(spec, "backoffLimit", json!(6));
    default_field(spec, "completionMode", json!("NonIndexed"));
    default_field(spec, "suspend", json!(false));
    default_field(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    default_field(spec, "manualSelector", json!(false));
    pod_spec::default_template(object, "/spec/template/spec");
}

/// The selector upstream generates for a new job: unless the job asks
/// for `manualSelector`, its pods are selected by the job's uid, so two
/// jobs never adopt each other's pods; the pod template gets the labels.
fn generate_selector(object: &mut Value) {
    let uid = object::meta_str(object, "uid").to_owned();
    let name = object::name(object).to_owned();
    let Some(spec) = obj_mut(object, "spec") else {
        return;
    };
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual && !uid.is_empty() && spec.get("selector").is_none_or(Value::is_null) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        if let Some(labels) = object
            .pointer_mut("/spec/template")
            .and_then(|t| obj_mut(t, "metadata"))
            .map(|m| m.entry("labels").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        {
            for (key, value) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels.insert(key.into(), json!(value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::defaulted;

    #[test]
    fn jobs_get_a_uid_selector_and_keep_work_queue_semantics() {
        let job = defaulted(
            &KIND,
            json!({"metadata": {"name": "j", "uid": "u-1"}, "spec": {"parallelism": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert!(
            job["spec"].get("completions").is_none(),
            "work queue jobs keep completions unset"
        );
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u-1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
            "j"
        );
        let plain = defaulted(
            &KIND,
            json!({"metadata": {"name": "j", "uid": "u-2"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(
            (
                plain["spec"]["completions"].clone(),
                plain["spec"]["parallelism"].clone()
            ),
            (json!(1), json!(1))
        );
        let manual = defaulted(
            &KIND,
            json!({"metadata": {"name": "j", "uid": "u-3"}, "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(manual["spec"]["selector"]["matchLabels"], json!({"a": "b"}));
    }
}
