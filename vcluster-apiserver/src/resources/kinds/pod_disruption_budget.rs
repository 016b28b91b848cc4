//! Pod disruption budgets (policy/v1): how many of a set of pods must stay
//! up (`minAvailable`) or may be down (`maxUnavailable`) while pods are
//! evicted. The disruption controller keeps the status; `pods/eviction`
//! reads and spends it. Validated as upstream's
//! `ValidatePodDisruptionBudgetSpec`; printed as `kubectl get pdb` shows it.

use jiff::Timestamp;
use k8s_openapi::api::policy;
use serde_json::{json, Value};

use super::fields::{go_struct, invalid_raw, nonnegative};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::columns::{self, Column};
use crate::resources::table::format::{age, get, int_at, name};
use crate::resources::table::{Printer, Row};
use crate::resources::Typed;

/// The PodDisruptionBudget kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "policy",
    "poddisruptionbudgets",
    "PodDisruptionBudget",
    Typed::of::<policy::v1::PodDisruptionBudget>(),
    &PodDisruptionBudgets,
)
.short_names(&["pdb"])
.with_status();

/// The rules of PodDisruptionBudget objects.
#[derive(Debug)]
struct PodDisruptionBudgets;

impl Strategy for PodDisruptionBudgets {
    fn name_errors(&self, name: &str) -> Vec<String> {
        // Upstream checks only that the name fits in a URL path.
        vcluster_core::validation::path_segment_name_errors(name)
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        // The counters have no `omitempty` in Go.
        Some(json!({
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        }))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_spec(object, causes);
    }

    fn validate_update(&self, _old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        // The spec is checked by `validate` on every write; the counters a
        // status write sets must not be negative
        // (`ValidatePodDisruptionBudgetStatusUpdate`).
        for field in [
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ] {
            nonnegative(new, &format!("status.{field}"), causes);
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(COLUMNS, print))
    }
}

/// `ValidatePodDisruptionBudgetSpec`.
fn validate_spec(object: &Value, causes: &mut Vec<FieldCause>) {
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let set = |field: &str| spec.get(field).filter(|v| !v.is_null());
    if set("minAvailable").is_some() && set("maxUnavailable").is_some() {
        causes.push(invalid_raw(
            "spec",
            &go_struct(
                &spec,
                &[
                    "minAvailable",
                    "selector",
                    "maxUnavailable",
                    "unhealthyPodEvictionPolicy",
                ],
            ),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for field in ["minAvailable", "maxUnavailable"] {
        if let Some(value) = set(field) {
            int_or_percent(value, &format!("spec.{field}"), object, causes);
        }
    }
    validate_label_selector(spec.get("selector"), "spec.selector", causes);
    if let Some(policy) = set("unhealthyPodEvictionPolicy").and_then(Value::as_str) {
        if !matches!(policy, "AlwaysAllow" | "IfHealthyBudget") {
            causes.push(FieldCause::not_supported(
                "spec.unhealthyPodEvictionPolicy",
                policy,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
fn int_or_percent(value: &Value, at: &str, object: &Value, causes: &mut Vec<FieldCause>) {
    match value {
        Value::String(s) => {
            let digits = s.strip_suffix('%').filter(|d| {
                !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
            });
            match digits {
                None => causes.push(invalid_raw(
                    at,
                    &value.to_string(),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )),
                Some(d) if d.parse::<u64>().map_or(true, |n| n > 100) => causes.push(
                    invalid_raw(at, &value.to_string(), "must not be greater than 100%"),
                ),
                Some(_) => {}
            }
        }
        _ => nonnegative(object, at, causes),
    }
}

/// `ValidateLabelSelector`: known operators, values only where the
/// operator takes them.
fn validate_label_selector(selector: Option<&Value>, at: &str, causes: &mut Vec<FieldCause>) {
    let expressions = selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array);
    for (i, expr) in expressions.into_iter().flatten().enumerate() {
        let path = format!("{at}.matchExpressions[{i}]");
        let values = expr
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" | "NotIn" if values == 0 => causes.push(FieldCause::required(format!(
                "{path}.values"
            ))),
            "Exists" | "DoesNotExist" if values > 0 => causes.push(FieldCause::forbidden(
                format!("{path}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => causes.push(FieldCause::invalid(
                format!("{path}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
    }
}

/// Upstream's pod disruption budget columns.
const COLUMNS: &[Column] = &[
    columns::NAME,
    columns::string(
        "Min Available",
        "The minimum number of pods that must be available.",
    ),
    columns::string(
        "Max Unavailable",
        "The maximum number of pods that may be unavailable.",
    ),
    columns::integer(
        "Allowed Disruptions",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    columns::AGE,
];

/// NAME MIN-AVAILABLE MAX-UNAVAILABLE ALLOWED-DISRUPTIONS AGE.
fn print(pdb: &Value, now: Timestamp) -> Row {
    let cell = |field: &str| match get(pdb, &["spec", field]) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_owned(),
    };
    vec![
        name(pdb).into(),
        cell("minAvailable").into(),
        cell("maxUnavailable").into(),
        int_at(pdb, &["status", "disruptionsAllowed"]).into(),
        age(pdb, now).into(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    #[test]
    fn budgets_start_with_zero_counters_and_one_bound() {
        let pdb = defaulted(
            &KIND,
            json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        );
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert!(invalid_fields(&KIND, &pdb).is_empty());
        let both = json!({"spec": {"minAvailable": 1, "maxUnavailable": "120%"}});
        assert_eq!(
            invalid_fields(&KIND, &both),
            ["spec", "spec.maxUnavailable"]
        );
        let bad = json!({"spec": {"minAvailable": "half", "unhealthyPodEvictionPolicy": "Never"}});
        assert_eq!(
            invalid_fields(&KIND, &bad),
            ["spec.minAvailable", "spec.unhealthyPodEvictionPolicy"]
        );
    }
}
