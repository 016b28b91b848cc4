//! Priority classes (scheduling.k8s.io/v1): named pod priorities, applied
//! to pods by the Priority admission plugin
//! (`crate::registry::admission::priority`); the two system classes are
//! created at start (`crate::registry` bootstrap).

use k8s_openapi::api::scheduling;
use serde_json::{json, Value};

use super::fields::{default_field, track_generation};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::object;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};
use crate::resources::Typed;

/// The PriorityClass kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::cluster_scoped(
    "scheduling.k8s.io",
    "priorityclasses",
    "PriorityClass",
    Typed::of::<scheduling::v1::PriorityClass>(),
    &PriorityClasses,
)
.short_names(&["pc"]);

/// The highest value a user-defined class may have
/// (`HighestUserDefinablePriority`).
pub const HIGHEST_USER_DEFINABLE: i64 = 1_000_000_000;

/// The system classes every cluster has: name, value and description.
pub const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2 * HIGHEST_USER_DEFINABLE + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2 * HIGHEST_USER_DEFINABLE,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The rules of PriorityClass objects.
#[derive(Debug)]
struct PriorityClasses;

impl Strategy for PriorityClasses {
    fn default(&self, object: &mut Value) {
        track_generation(object);
        if let Some(map) = object.as_object_mut() {
            default_field(map, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let name = object::name(object);
        let value = object.get("value").and_then(Value::as_i64).unwrap_or(0);
        let global = object.get("globalDefault").and_then(Value::as_bool).unwrap_or(false);
        if name.starts_with("system-") {
            let error = match SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name) {
                Some((_, system, _)) if value != *system => {
                    Some(format!("value of {name} PriorityClass must be {system}"))
                }
                Some(_) if global => Some(format!("globalDefault of {name} PriorityClass must be false")),
                Some(_) => None,
                None => Some(format!("{name} is not a known system priority class")),
            };
            if let Some(error) = error {
                causes.push(FieldCause::forbidden(
                    "metadata.name",
                    &format!("priority class names with 'system-' prefix are reserved for system use only. error: {error}"),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE {
            causes.push(FieldCause::forbidden(
                "value",
                &format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE}"),
            ));
        }
        if let Some(policy) = object.get("preemptionPolicy").and_then(Value::as_str) {
            if !matches!(policy, "PreemptLowerPriority" | "Never") {
                causes.push(FieldCause::not_supported(
                    "preemptionPolicy",
                    policy,
                    &["PreemptLowerPriority", "Never"],
                ));
            }
        }
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        if old.get("value") != new.get("value") {
            causes.push(FieldCause::forbidden("value", "may not be changed in an update."));
        }
        if old.get("preemptionPolicy") != new.get("preemptionPolicy") {
            let shown = new.get("preemptionPolicy").and_then(Value::as_str).unwrap_or("");
            causes.push(FieldCause::invalid("preemptionPolicy", shown, "field is immutable"));
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::PRIORITY_CLASS, cluster::priority_class))
    }
}

#[cfg(test)]
mod tests {
    use super::super::invalid_fields;
    use super::*;

    #[test]
    fn reserves_system_names_and_high_values() {
        let fields = |o: Value| invalid_fields(&KIND, &o);
        assert_eq!(fields(json!({"metadata": {"name": "system-x"}, "value": 1})), vec!["metadata.name"]);
        assert_eq!(fields(json!({"metadata": {"name": "big"}, "value": 1_000_000_001})), vec!["value"]);
        assert!(fields(json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000})).is_empty());
    }
}
