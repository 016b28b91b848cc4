//! Daemon sets (apps/v1): rolling updates by default, an immutable selector
//! that selects the template.

use k8s_openapi::api::apps;
use serde_json::{json, Map, Value};

use super::fields::{default_field, default_strategy, go_struct, nonnegative, not_supported_raw};
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::is_new;
use super::workload::Workload;
use super::BuiltinKind;
use crate::resources::strategy::NAME_AND_NAMESPACE;
use crate::resources::table::{columns, workloads, Printer};
use crate::resources::Typed;

/// The DaemonSet kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "apps",
    "daemonsets",
    "DaemonSet",
    Typed::of::<apps::v1::DaemonSet>(),
    &STRATEGY,
)
.short_names(&["ds"])
.in_all()
.with_status();

/// The rules of DaemonSet objects.
const STRATEGY: Workload = Workload {
    replicas: false,
    spec_defaults,
    spec_checks: super::workload::no_checks,
    later_checks,
    noun: "daemonset",
    status: || {
        Some(json!({
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }))
    },
    object_defaults,
    on_update,
    selectable_fields: NAME_AND_NAMESPACE,
    printer: Printer::new(columns::DAEMON_SET, workloads::daemon_set),
};

/// The DaemonSet's own spec defaults.
fn spec_defaults(spec: &mut Map<String, Value>) {
    default_strategy(
        spec,
        "updateStrategy",
        &[("maxUnavailable", json!(1)), ("maxSurge", json!(0))],
    );
    default_field(spec, "revisionHistoryLimit", json!(10));
}

/// The update strategy is a known one and the history limit not negative.
fn later_checks(object: &Value, causes: &mut Vec<FieldCause>) {
    let strategy = object::path(object, "spec.updateStrategy");
    let rolling = strategy.and_then(|s| s.get("rollingUpdate")).filter(|r| !r.is_null());
    match strategy.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("OnDelete") => {}
        Some("RollingUpdate") => {
            if rolling.is_none() {
                causes.push(FieldCause::required("spec.updateStrategy.rollingUpdate"));
            }
        }
        other => causes.push(not_supported_raw(
            "spec.updateStrategy",
            &format!(
                "{{\"Type\":{:?},\"RollingUpdate\":{}}}",
                other.unwrap_or(""),
                rolling.map_or("null".into(), |r| go_struct(r, &["maxUnavailable", "maxSurge"]))
            ),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    nonnegative(object, "spec.revisionHistoryLimit", causes);
}

/// Where apps/v1 keeps the daemon set's template generation.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The template generation of `object` (0 when unset or unreadable).
fn template_generation(object: &Value) -> i64 {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// Sets the template generation annotation.
fn set_template_generation(object: &mut Value, generation: i64) {
    let meta = object::metadata_mut(object);
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[TEMPLATE_GENERATION] = json!(generation.to_string());
}

/// A new daemon set's template is generation 1.
fn object_defaults(object: &mut Value) {
    if is_new(object) && template_generation(object) < 1 {
        set_template_generation(object, 1);
    }
}

/// The template generation is the server's: kept from the stored object,
/// and moved on (with the generation) when the template changes.
fn on_update(old: &Value, new: &mut Value) {
    let mut generation = template_generation(old);
    if old.pointer("/spec/template") != new.pointer("/spec/template") {
        generation += 1;
    }
    if generation > 0 {
        set_template_generation(new, generation);
    } else if let Some(annotations) = new
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(TEMPLATE_GENERATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::defaulted;

    fn daemon_set(image: &str) -> Value {
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn the_template_generation_starts_at_one_and_moves_with_the_template() {
        let created = defaulted(&KIND, daemon_set("i:1"));
        assert_eq!(template_generation(&created), 1);
        let mut stored = created.clone();
        stored["metadata"]["resourceVersion"] = json!("7");
        let mut relabelled = daemon_set("i:1");
        relabelled["metadata"]["labels"] = json!({"x": "y"});
        KIND.strategy.prepare_for_update(&stored, &mut relabelled);
        assert_eq!(template_generation(&relabelled), 1);
        let mut new_image = daemon_set("i:2");
        KIND.strategy.prepare_for_update(&stored, &mut new_image);
        assert_eq!(template_generation(&new_image), 2);
    }

    #[test]
    fn unknown_update_strategies_are_refused_with_the_go_struct() {
        let mut bad = defaulted(&KIND, daemon_set("i"));
        bad["spec"]["updateStrategy"] = json!({"type": "Sometimes"});
        let mut causes = Vec::new();
        KIND.strategy.validate(&bad, &mut causes);
        assert_eq!(
            causes[0].message,
            "Unsupported value: {\"Type\":\"Sometimes\",\"RollingUpdate\":null}: supported values: \"RollingUpdate\", \"OnDelete\""
        );
    }
}
