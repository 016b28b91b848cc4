//! What the `apps` workloads share (deployments, replica sets, stateful
//! sets, daemon sets): a selector that must select the pod template, is
//! immutable, and a pod template with pod defaults.

use serde_json::{json, Map, Value};

use super::fields::{default_field, invalid_raw, nonnegative, obj_mut};
use super::pod_spec;
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::{default_for_update, Strategy};
use crate::resources::table::Printer;

/// The rules of one `apps` workload kind: what the four share, with the
/// kind's own spec defaults, selectable fields and printer.
#[derive(Debug)]
pub(super) struct Workload {
    /// Whether `spec.replicas` defaults to 1 (daemon sets have none).
    pub(super) replicas: bool,
    /// The kind's own spec defaults (rollout strategy, history limit...).
    pub(super) spec_defaults: fn(&mut Map<String, Value>),
    /// The kind's own spec checks (policies, strategies), run before the
    /// selector's.
    pub(super) spec_checks: fn(&Value, &mut Vec<FieldCause>),
    /// The kind's own spec checks run after the selector's and the
    /// template's (rollout strategies, history limits), in upstream's order.
    pub(super) later_checks: fn(&Value, &mut Vec<FieldCause>),
    /// How upstream's messages name the kind (`deployment`, `statefulset`).
    pub(super) noun: &'static str,
    /// The status a new object starts with (Go writes the counters that
    /// have no `omitempty`).
    pub(super) status: fn() -> Option<Value>,
    /// The kind's own defaults beyond the spec (annotations).
    pub(super) object_defaults: fn(&mut Value),
    /// The kind's own `PrepareForUpdate`, after defaulting (generation
    /// rules beyond "the spec changed").
    pub(super) on_update: fn(&Value, &mut Value),
    /// The fields a list may select on.
    pub(super) selectable_fields: &'static [&'static str],
    /// How `kubectl get` shows it.
    pub(super) printer: Printer,
}

impl Strategy for Workload {
    fn default(&self, object: &mut Value) {
        default(object, self.replicas, self.spec_defaults);
        (self.object_defaults)(object);
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        (self.status)()
    }

    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        default_for_update(self, old, new);
        (self.on_update)(old, new);
    }

    /// A deployment's labels do not change through `/status` upstream.
    fn prepare_for_status_update(&self, old: &Value, new: &mut Value) {
        if self.noun == "deployment" {
            super::fields::keep_stored_metadata(old, new, "labels");
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        if self.replicas {
            nonnegative(object, "spec.replicas", causes);
        }
        nonnegative(object, "spec.minReadySeconds", causes);
        (self.spec_checks)(object, causes);
        validate(object, self.noun, causes);
        (self.later_checks)(object, causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        if self.noun == "statefulset" {
            validate_stateful_set_update(old, new, causes);
        } else {
            validate_update(old, new, causes);
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        self.selectable_fields
    }

    fn printer(&self) -> Option<Printer> {
        Some(self.printer)
    }
}

/// No status fields of the kind's own.
pub(super) fn no_status() -> Option<Value> {
    None
}

/// No defaults of the kind's own beyond its spec's.
pub(super) fn no_object_defaults(_object: &mut Value) {}

/// No update rules of the kind's own.
pub(super) fn no_update_rules(_old: &Value, _new: &mut Value) {}

/// No checks of the kind's own.
pub(super) fn no_checks(_object: &Value, _causes: &mut Vec<FieldCause>) {}

/// Sets `spec.replicas` (1) and the pod template's defaults; `more` adds
/// the kind's own spec defaults.
fn default(object: &mut Value, replicas: bool, more: fn(&mut Map<String, Value>)) {
    let Some(spec) = obj_mut(object, "spec") else {
        return;
    };
    if replicas {
        default_field(spec, "replicas", json!(1));
    }
    more(spec);
    pod_spec::default_template(object, "/spec/template/spec");
}

/// A selector is required, not empty, and selects the template's labels.
fn validate(object: &Value, noun: &str, causes: &mut Vec<FieldCause>) {
    let Some(selector) = object::path(object, "spec.selector") else {
        causes.push(FieldCause::required("spec.selector"));
        return;
    };
    let match_labels = object::string_map(selector.get("matchLabels"));
    let has_expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_some_and(|e| !e.is_empty());
    if match_labels.is_empty() && !has_expressions {
        causes.push(FieldCause::invalid(
            "spec.selector",
            "{}",
            format!("empty selector is invalid for {noun}"),
        ));
    }
    let template_labels = object::string_map(object::path(object, "spec.template.metadata.labels"));
    let matches = match_labels
        .iter()
        .all(|(k, v)| template_labels.get(k) == Some(v));
    if !matches {
        let shown = object::path(object, "spec.template.metadata.labels")
            .filter(|l| !l.is_null())
            .map_or("null".to_owned(), Value::to_string);
        causes.push(invalid_raw(
            "spec.template.metadata.labels",
            &shown,
            "`selector` does not match template `labels`",
        ));
    }
    pod_spec::validate(
        object::path(object, "spec.template.spec"),
        "spec.template.spec",
        causes,
    );
}

/// `spec.selector` never changes after create (`ValidateImmutableField`,
/// which shows the new value).
fn validate_update(old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
    let selector = new.pointer("/spec/selector");
    if old.pointer("/spec/selector") != selector {
        let shown = selector
            .filter(|s| !s.is_null())
            .map_or("null".to_owned(), Value::to_string);
        causes.push(invalid_raw("spec.selector", &shown, "field is immutable"));
    }
}

/// A stateful set's spec may change only in the fields upstream lists.
fn validate_stateful_set_update(old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
    const MUTABLE: &[&str] = &[
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let fixed = |object: &Value| {
        let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(map) = spec.as_object_mut() {
            map.retain(|k, _| !MUTABLE.contains(&k.as_str()));
        }
        spec
    };
    if fixed(old) != fixed(new) {
        causes.push(FieldCause::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}
