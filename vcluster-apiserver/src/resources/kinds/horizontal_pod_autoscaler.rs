//! Horizontal pod autoscalers: `autoscaling/v2` (preferred, and the stored
//! form) and `autoscaling/v1` served on the same objects, converted as
//! upstream converts through its internal version: v1's
//! `targetCPUUtilizationPercentage` is v2's CPU `Resource` metric with an
//! `averageUtilization` target (80% when a v1 object names none), and what
//! v1 cannot say (other metrics, their current values, `behavior`,
//! conditions) travels in the `autoscaling.alpha.kubernetes.io/*`
//! annotations, so a v2 object read and written back through v1 keeps it.
//!
//! Defaults are upstream's (`minReplicas` 1; for v2 the CPU metric and,
//! when `behavior` is given, its scale-up and scale-down rules), and so are
//! validation (`validateHorizontalPodAutoscalerSpec`, run on the v2 form
//! for both versions: upstream validates its internal form, whose paths v2
//! shares) and the table (NAME, REFERENCE, TARGETS, MINPODS, MAXPODS,
//! REPLICAS, AGE).

use jiff::Timestamp;
use k8s_openapi::api::autoscaling;
use serde_json::{json, Map, Value};
use vcluster_core::validation;

use super::fields::{default_field, invalid_raw, obj_mut, untrack_generation};
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::resources::strategy::Strategy;
use crate::resources::table::columns::{self, Column};
use crate::resources::table::format::{age, name, opt_int, str_at};
use crate::resources::table::{Printer, Row};
use crate::resources::{Conversion, Typed};

/// The HorizontalPodAutoscaler kind at `autoscaling/v2`, its stored form.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "autoscaling",
    "horizontalpodautoscalers",
    "HorizontalPodAutoscaler",
    Typed::of::<autoscaling::v2::HorizontalPodAutoscaler>(),
    &V2,
)
.at_version("v2")
.short_names(&["hpa"])
.in_all()
.with_status();

/// The same objects at `autoscaling/v1`.
pub(super) const KIND_V1: BuiltinKind = BuiltinKind::namespaced(
    "autoscaling",
    "horizontalpodautoscalers",
    "HorizontalPodAutoscaler",
    Typed::of::<autoscaling::v1::HorizontalPodAutoscaler>(),
    &V1,
)
.converted("v1", &V1_CONVERSION)
.short_names(&["hpa"])
.in_all()
.with_status();

/// How `autoscaling/v1` objects are stored (as v2) and shown.
static V1_CONVERSION: Conversion = Conversion {
    to_storage: v1_to_v2,
    from_storage: v2_to_v1,
};

/// The annotation keeping v2 metrics v1 cannot express.
const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// The annotation keeping their current values.
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// The annotation keeping the conditions.
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// The annotation keeping `spec.behavior`.
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// Annotations upstream drops on every conversion.
const ROUND_TRIP: &[&str] = &[
    METRICS,
    BEHAVIOR,
    "autoscaling.alpha.kubernetes.io/scale-down-tolerance",
    "autoscaling.alpha.kubernetes.io/scale-up-tolerance",
    CURRENT_METRICS,
    CONDITIONS,
];

/// The CPU utilization a v1 autoscaler without a target aims at.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// The rules of `autoscaling/v2` objects.
#[derive(Debug)]
struct V2Rules;
static V2: V2Rules = V2Rules;

/// The rules of `autoscaling/v1` objects: v2's, on the converted object.
#[derive(Debug)]
struct V1Rules;
static V1: V1Rules = V1Rules;

impl Strategy for V2Rules {
    fn default(&self, object: &mut Value) {
        default_v2(object);
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        // `desiredReplicas` has no `omitempty`.
        Some(json!({"desiredReplicas": 0}))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        validate_spec(object, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(COLUMNS, print))
    }
}

impl Strategy for V1Rules {
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        if let Some(spec) = obj_mut(object, "spec") {
            default_field(spec, "minReplicas", json!(1));
        }
    }

    fn initial_status(&self, _object: &Value) -> Option<Value> {
        Some(json!({"currentReplicas": 0, "desiredReplicas": 0}))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let mut v2 = object.clone();
        v1_to_v2(&mut v2);
        validate_spec(&v2, causes);
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(COLUMNS, print_v1))
    }
}

/// `SetDefaults_HorizontalPodAutoscaler` of v2.
fn default_v2(object: &mut Value) {
    // Upstream's strategy keeps no generation for autoscalers.
    untrack_generation(object);
    let Some(spec) = obj_mut(object, "spec") else {
        return;
    };
    default_field(spec, "minReplicas", json!(1));
    if spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert("metrics".into(), json!([cpu_metric(DEFAULT_CPU_UTILIZATION)]));
    }
    if let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) {
        let up = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ]});
        let down = json!({"selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ]});
        for (field, defaults) in [("scaleUp", up), ("scaleDown", down)] {
            let mut rules = defaults;
            if let (Some(given), Some(rules)) = (
                behavior.get(field).and_then(Value::as_object),
                rules.as_object_mut(),
            ) {
                for (key, value) in given {
                    if !value.is_null() {
                        rules.insert(key.clone(), value.clone());
                    }
                }
            }
            behavior.insert(field.into(), rules);
        }
    }
}

/// A CPU `Resource` metric aiming at `percent` utilization.
fn cpu_metric(percent: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}}})
}

/// Whether a v2 metric is the CPU utilization one v1 can express.
fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric.pointer("/resource/name") == Some(&json!("cpu"))
        && metric
            .pointer("/resource/target/averageUtilization")
            .is_some_and(|u| !u.is_null())
}

/// `validateHorizontalPodAutoscalerSpec` on a v2 object.
fn validate_spec(object: &Value, causes: &mut Vec<FieldCause>) {
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let min = spec.get("minReplicas").and_then(Value::as_i64);
    let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
    if let Some(min) = min.filter(|m| *m < 1) {
        causes.push(invalid_raw(
            "spec.minReplicas",
            &min.to_string(),
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        causes.push(invalid_raw("spec.maxReplicas", &max.to_string(), "must be greater than 0"));
    }
    if min.is_some_and(|min| max < min) {
        causes.push(invalid_raw(
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than or equal to `minReplicas`",
        ));
    }
    for field in ["kind", "name"] {
        let value = spec
            .pointer(&format!("/scaleTargetRef/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let at = format!("spec.scaleTargetRef.{field}");
        if value.is_empty() {
            causes.push(FieldCause::required(at));
        } else {
            for why in validation::path_segment_name_errors(value) {
                causes.push(FieldCause::invalid(at.clone(), value, why));
            }
        }
    }
    let metrics = spec.get("metrics").and_then(Value::as_array);
    for (i, metric) in metrics.into_iter().flatten().enumerate() {
        validate_metric(metric, &format!("spec.metrics[{i}]"), causes);
    }
    if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
        for field in ["scaleUp", "scaleDown"] {
            if let Some(rules) = behavior.get(field).filter(|r| !r.is_null()) {
                validate_rules(rules, &format!("spec.behavior.{field}"), causes);
            }
        }
    }
}

/// The v2 metric source types.
const SOURCES: &[(&str, &str)] = &[
    ("Object", "object"),
    ("Pods", "pods"),
    ("Resource", "resource"),
    ("External", "external"),
    ("ContainerResource", "containerResource"),
];

/// `validateMetricSpec`: a known type whose source, and only it, is set,
/// with a sensible target.
fn validate_metric(metric: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let kind = metric.get("type").and_then(Value::as_str).unwrap_or("");
    let supported: Vec<&str> = SOURCES.iter().map(|(t, _)| *t).collect();
    if kind.is_empty() {
        causes.push(crate::error::FieldCause {
            reason: "FieldValueRequired",
            field: format!("{at}.type"),
            message: "Required value: must specify a metric source type".into(),
        });
    }
    if !supported.contains(&kind) {
        causes.push(FieldCause::not_supported(format!("{at}.type"), kind, &supported));
    }
    let present: Vec<&str> = ["object", "external", "pods", "resource", "containerResource"]
        .into_iter()
        .filter(|f| metric.get(*f).is_some_and(|s| !s.is_null()))
        .collect();
    if let Some(first) = present.first() {
        let source = &metric[*first];
        if matches!(*first, "resource" | "containerResource") {
            let at = format!("{at}.{first}");
            if source.get("name").and_then(Value::as_str).unwrap_or("").is_empty() {
                causes.push(crate::error::FieldCause {
                    reason: "FieldValueRequired",
                    field: format!("{at}.name"),
                    message: "Required value: must specify a resource name".into(),
                });
            }
            let target = source.get("target").cloned().unwrap_or(Value::Null);
            validate_target(&target, &format!("{at}.target"), causes);
            let set = |f: &str| target.get(f).is_some_and(|v| !v.is_null());
            if !set("averageUtilization") && !set("averageValue") {
                causes.push(crate::error::FieldCause {
                    reason: "FieldValueRequired",
                    field: format!("{at}.target.averageUtilization"),
                    message: "Required value: must set either a target raw value or a target utilization".into(),
                });
            }
            if set("averageUtilization") && set("averageValue") {
                causes.push(FieldCause::forbidden(
                    format!("{at}.target.averageValue"),
                    "may not set both a target raw value and a target utilization",
                ));
            }
        } else if let Some(target) = source.get("target") {
            validate_target(target, &format!("{at}.{first}.target"), causes);
        }
    }
    if let Some((_, expected)) = SOURCES.iter().find(|(t, _)| *t == kind) {
        if !present.contains(expected) {
            causes.push(crate::error::FieldCause {
                reason: "FieldValueRequired",
                field: format!("{at}.{expected}"),
                message: "Required value: must populate information for the given metric source"
                    .into(),
            });
        }
        if present.len() != 1 {
            for other in present.iter().filter(|p| *p != expected) {
                causes.push(FieldCause::forbidden(
                    format!("{at}.{other}"),
                    "must populate the given metric source only",
                ));
            }
        }
    }
}

/// `validateMetricTarget`.
fn validate_target(target: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    let kind = target.get("type").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        causes.push(crate::error::FieldCause {
            reason: "FieldValueRequired",
            field: format!("{at}.type"),
            message: "Required value: must specify a metric target type".into(),
        });
    }
    if !matches!(kind, "Utilization" | "Value" | "AverageValue") {
        causes.push(FieldCause::invalid(
            format!("{at}.type"),
            kind,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if let Some(utilization) = target.get("averageUtilization").and_then(Value::as_i64) {
        if utilization < 1 {
            causes.push(invalid_raw(
                format!("{at}.averageUtilization"),
                &utilization.to_string(),
                "must be greater than 0",
            ));
        }
    }
}

/// `validateScalingRules`: windows within an hour, known policies with
/// positive values and periods up to half an hour.
fn validate_rules(rules: &Value, at: &str, causes: &mut Vec<FieldCause>) {
    if let Some(window) = rules.get("stabilizationWindowSeconds").and_then(Value::as_i64) {
        if window < 0 {
            causes.push(invalid_raw(
                format!("{at}.stabilizationWindowSeconds"),
                &window.to_string(),
                "must be greater than or equal to zero",
            ));
        } else if window > 3600 {
            causes.push(invalid_raw(
                format!("{at}.stabilizationWindowSeconds"),
                &window.to_string(),
                "must be less than or equal to 3600",
            ));
        }
    }
    if let Some(select) = rules.get("selectPolicy").and_then(Value::as_str) {
        if !matches!(select, "Max" | "Min" | "Disabled") {
            causes.push(FieldCause::not_supported(
                format!("{at}.selectPolicy"),
                select,
                &["Disabled", "Max", "Min"],
            ));
        }
    }
    let policies = rules.get("policies").and_then(Value::as_array);
    if policies.is_none_or(Vec::is_empty) {
        causes.push(crate::error::FieldCause {
            reason: "FieldValueRequired",
            field: format!("{at}.policies"),
            message: "Required value: must specify at least one Policy".into(),
        });
    }
    for (i, policy) in policies.into_iter().flatten().enumerate() {
        let at = format!("{at}.policies[{i}]");
        let kind = policy.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "Pods" | "Percent") {
            causes.push(FieldCause::not_supported(format!("{at}.type"), kind, &["Percent", "Pods"]));
        }
        let value = policy.get("value").and_then(Value::as_i64).unwrap_or(0);
        if value <= 0 {
            causes.push(invalid_raw(format!("{at}.value"), &value.to_string(), "must be greater than zero"));
        }
        let period = policy.get("periodSeconds").and_then(Value::as_i64).unwrap_or(0);
        if period <= 0 {
            causes.push(invalid_raw(
                format!("{at}.periodSeconds"),
                &period.to_string(),
                "must be greater than zero",
            ));
        } else if period > 1800 {
            causes.push(invalid_raw(
                format!("{at}.periodSeconds"),
                &period.to_string(),
                "must be less than or equal to 1800",
            ));
        }
    }
}

/// A v1 object in its stored v2 form (upstream's v1 -> internal
/// conversion, then internal -> v2).
fn v1_to_v2(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.insert("apiVersion".into(), json!("autoscaling/v2"));
    let annotations = map
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let decoded = |key: &str| {
        annotations
            .get(key)
            .and_then(Value::as_str)
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
    };
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        let cpu = spec.remove("targetCPUUtilizationPercentage");
        let mut metrics: Vec<Value> = decoded(METRICS)
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(metric_spec_from_v1)
            .collect();
        match cpu.and_then(|c| c.as_i64()) {
            Some(percent) => metrics.push(cpu_metric(percent)),
            None if metrics.is_empty() => metrics.push(cpu_metric(DEFAULT_CPU_UTILIZATION)),
            None => {}
        }
        spec.insert("metrics".into(), Value::Array(metrics));
        if let Some(behavior) = decoded(BEHAVIOR).map(|b| json_names(&b)) {
            if behavior.as_object().is_some_and(|b| b.values().any(|v| !v.is_null())) {
                spec.insert("behavior".into(), behavior);
            }
        }
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut) {
        let cpu = status.remove("currentCPUUtilizationPercentage");
        let mut current: Vec<Value> = Vec::new();
        if let Some(percent) = cpu.filter(|c| !c.is_null()) {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": percent}}}));
        }
        if let Some(from) = decoded(CURRENT_METRICS).and_then(|m| m.as_array().cloned()) {
            current = from.iter().map(metric_status_from_v1).collect();
        }
        if !current.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(conditions) = decoded(CONDITIONS).filter(Value::is_array) {
            status.insert("conditions".into(), conditions);
        }
    }
    drop_round_trip(object);
}

/// A stored (v2) object as `autoscaling/v1` shows it.
fn v2_to_v1(object: &mut Value) {
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let status = object.get("status").cloned().unwrap_or(Value::Null);
    drop_round_trip(object);
    let Some(map) = object.as_object_mut() else {
        return;
    };
    map.insert("apiVersion".into(), json!("autoscaling/v1"));
    let metrics = spec.get("metrics").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut new_spec = Map::new();
    for field in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(value) = spec.get(field) {
            new_spec.insert(field.into(), value.clone());
        }
    }
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_utilization(m)) {
        new_spec.insert(
            "targetCPUUtilizationPercentage".into(),
            cpu["resource"]["target"]["averageUtilization"].clone(),
        );
    }
    let mut annotations = Map::new();
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_spec_to_v1)
        .collect();
    if !others.is_empty() {
        annotations.insert(METRICS.into(), json!(Value::Array(others).to_string()));
    }
    let mut new_status = Map::new();
    for field in ["observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"] {
        if let Some(value) = status.get(field) {
            new_status.insert(field.into(), value.clone());
        }
    }
    new_status
        .entry("currentReplicas")
        .or_insert_with(|| json!(0));
    let current = status.get("currentMetrics").and_then(Value::as_array).cloned().unwrap_or_default();
    for metric in &current {
        if metric["type"] == "Resource" && metric.pointer("/resource/name") == Some(&json!("cpu")) {
            if let Some(u) = metric.pointer("/resource/current/averageUtilization").filter(|u| !u.is_null()) {
                new_status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
        }
    }
    if !current.is_empty() {
        let v1: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        annotations.insert(CURRENT_METRICS.into(), json!(Value::Array(v1).to_string()));
    }
    if let Some(behavior) = spec.get("behavior").filter(|b| !b.is_null()) {
        annotations.insert(BEHAVIOR.into(), json!(go_behavior(behavior).to_string()));
    }
    if let Some(conditions) = status.get("conditions").and_then(Value::as_array).filter(|c| !c.is_empty()) {
        annotations.insert(CONDITIONS.into(), json!(Value::Array(conditions.clone()).to_string()));
    }
    map.insert("spec".into(), Value::Object(new_spec));
    if !status.is_null() {
        map.insert("status".into(), Value::Object(new_status));
    }
    if !annotations.is_empty() {
        let meta = crate::object::metadata_mut(object);
        let slot = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(existing) = slot.as_object_mut() {
            existing.extend(annotations);
        } else {
            *slot = Value::Object(annotations);
        }
    }
}

/// Removes the round-trip annotations (and an annotations map left empty).
fn drop_round_trip(object: &mut Value) {
    let meta = crate::object::metadata_mut(object);
    if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        let had = ROUND_TRIP.iter().any(|k| annotations.contains_key(*k));
        for key in ROUND_TRIP {
            annotations.remove(*key);
        }
        if had && annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// A v2 behavior as upstream's annotation holds it: the internal Go
/// struct, JSON-encoded without tags (capitalised names, nulls kept).
fn go_behavior(behavior: &Value) -> Value {
    let rules = |r: &Value| {
        if r.is_null() {
            return Value::Null;
        }
        let policies = r.get("policies").and_then(Value::as_array).map(|p| {
            p.iter()
                .map(|p| json!({"Type": p["type"], "Value": p["value"], "PeriodSeconds": p["periodSeconds"]}))
                .collect::<Vec<_>>()
        });
        let get = |f: &str| r.get(f).cloned().unwrap_or(Value::Null);
        json!({
            "StabilizationWindowSeconds": get("stabilizationWindowSeconds"),
            "SelectPolicy": get("selectPolicy"),
            "Policies": policies,
            "Tolerance": get("tolerance"),
        })
    };
    json!({
        "ScaleUp": rules(behavior.get("scaleUp").unwrap_or(&Value::Null)),
        "ScaleDown": rules(behavior.get("scaleDown").unwrap_or(&Value::Null)),
    })
}

/// JSON with Go's field names turned back into the API's (Go's decoder
/// matches names case-insensitively), nulls dropped.
fn json_names(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let mut name = k.clone();
                    if let Some(first) = name.get_mut(0..1) {
                        first.make_ascii_lowercase();
                    }
                    (name, json_names(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json_names).collect()),
        other => other.clone(),
    }
}

/// A v2 metric target as v1's flat fields (`targetAverageValue`, ...).
fn target_to_v1(target: &Value, out: &mut Map<String, Value>, value_field: &str) {
    if let Some(v) = target.get("averageUtilization").filter(|v| !v.is_null()) {
        out.insert("targetAverageUtilization".into(), v.clone());
    }
    if let Some(v) = target.get("averageValue").filter(|v| !v.is_null()) {
        out.insert(
            if value_field == "targetValue" { "averageValue" } else { "targetAverageValue" }.into(),
            v.clone(),
        );
    }
    if let Some(v) = target.get("value").filter(|v| !v.is_null()) {
        out.insert(value_field.into(), v.clone());
    }
}

/// A v2 `MetricSpec` as v1 writes it in the metrics annotation.
fn metric_spec_to_v1(metric: &Value) -> Value {
    let kind = metric["type"].as_str().unwrap_or("");
    let mut out = Map::new();
    out.insert("type".into(), json!(kind));
    let metric_name = |s: &Value| s.pointer("/metric/name").cloned().unwrap_or(json!(""));
    match kind {
        "Resource" | "ContainerResource" => {
            let field = if kind == "Resource" { "resource" } else { "containerResource" };
            let source = &metric[field];
            let mut v1 = Map::new();
            v1.insert("name".into(), source["name"].clone());
            if let Some(c) = source.get("container") {
                v1.insert("container".into(), c.clone());
            }
            target_to_v1(&source["target"], &mut v1, "targetValue");
            if let Some(v) = v1.remove("averageValue") {
                v1.insert("targetAverageValue".into(), v);
            }
            out.insert(field.into(), Value::Object(v1));
        }
        "Pods" => {
            let source = &metric["pods"];
            let mut v1 = Map::new();
            v1.insert("metricName".into(), metric_name(source));
            if let Some(s) = source.pointer("/metric/selector") {
                v1.insert("selector".into(), s.clone());
            }
            v1.insert("targetAverageValue".into(), source.pointer("/target/averageValue").cloned().unwrap_or(Value::Null));
            out.insert("pods".into(), Value::Object(v1));
        }
        "Object" => {
            let source = &metric["object"];
            let mut v1 = Map::new();
            v1.insert("target".into(), source["describedObject"].clone());
            v1.insert("metricName".into(), metric_name(source));
            if let Some(s) = source.pointer("/metric/selector") {
                v1.insert("selector".into(), s.clone());
            }
            let target = &source["target"];
            v1.insert("targetValue".into(), target.get("value").cloned().unwrap_or(Value::Null));
            if let Some(v) = target.get("averageValue") {
                v1.insert("averageValue".into(), v.clone());
            }
            out.insert("object".into(), Value::Object(v1));
        }
        "External" => {
            let source = &metric["external"];
            let mut v1 = Map::new();
            v1.insert("metricName".into(), metric_name(source));
            if let Some(s) = source.pointer("/metric/selector") {
                v1.insert("metricSelector".into(), s.clone());
            }
            let target = &source["target"];
            if let Some(v) = target.get("value") {
                v1.insert("targetValue".into(), v.clone());
            }
            if let Some(v) = target.get("averageValue") {
                v1.insert("targetAverageValue".into(), v.clone());
            }
            out.insert("external".into(), Value::Object(v1));
        }
        _ => {}
    }
    Value::Object(out)
}

/// A v1 `MetricSpec` of the metrics annotation in v2's form.
fn metric_spec_from_v1(metric: &Value) -> Value {
    let kind = metric["type"].as_str().unwrap_or("");
    let target = |avg_util: Option<&Value>, avg: Option<&Value>, value: Option<&Value>| {
        let set = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
        let (avg_util, avg, value) = (set(avg_util), set(avg), set(value));
        let kind = if avg_util.is_some() {
            "Utilization"
        } else if avg.is_some() {
            "AverageValue"
        } else {
            "Value"
        };
        let mut t = json!({"type": kind});
        for (k, v) in [("averageUtilization", avg_util), ("averageValue", avg), ("value", value)] {
            if let Some(v) = v {
                t[k] = v;
            }
        }
        t
    };
    let metric_id = |name: &Value, selector: Option<&Value>| {
        let mut m = json!({"name": name});
        if let Some(s) = selector.filter(|s| !s.is_null()) {
            m["selector"] = s.clone();
        }
        m
    };
    match kind {
        "Resource" | "ContainerResource" => {
            let field = if kind == "Resource" { "resource" } else { "containerResource" };
            let s = &metric[field];
            let mut v2 = json!({"name": s["name"], "target": target(s.get("targetAverageUtilization"), s.get("targetAverageValue"), None)});
            if let Some(c) = s.get("container") {
                v2["container"] = c.clone();
            }
            json!({"type": kind, field: v2})
        }
        "Pods" => {
            let s = &metric["pods"];
            json!({"type": kind, "pods": {"metric": metric_id(&s["metricName"], s.get("selector")), "target": target(None, s.get("targetAverageValue"), None)}})
        }
        "Object" => {
            let s = &metric["object"];
            json!({"type": kind, "object": {"describedObject": s["target"], "metric": metric_id(&s["metricName"], s.get("selector")), "target": target(None, s.get("averageValue"), s.get("targetValue"))}})
        }
        "External" => {
            let s = &metric["external"];
            json!({"type": kind, "external": {"metric": metric_id(&s["metricName"], s.get("metricSelector")), "target": target(None, s.get("targetAverageValue"), s.get("targetValue"))}})
        }
        _ => metric.clone(),
    }
}

/// A v2 `MetricStatus` as v1 writes it in the current-metrics annotation.
fn metric_status_to_v1(metric: &Value) -> Value {
    let kind = metric["type"].as_str().unwrap_or("");
    let current = |s: &Value, f: &str| s.pointer(&format!("/current/{f}")).cloned();
    let put = |out: &mut Map<String, Value>, k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            out.insert(k.into(), v);
        }
    };
    let mut v1 = Map::new();
    let field = match kind {
        "Resource" | "ContainerResource" => {
            let field = if kind == "Resource" { "resource" } else { "containerResource" };
            let s = &metric[field];
            v1.insert("name".into(), s["name"].clone());
            if let Some(c) = s.get("container") {
                v1.insert("container".into(), c.clone());
            }
            put(&mut v1, "currentAverageUtilization", current(s, "averageUtilization"));
            put(&mut v1, "currentAverageValue", current(s, "averageValue"));
            field
        }
        "Pods" => {
            let s = &metric["pods"];
            v1.insert("metricName".into(), s.pointer("/metric/name").cloned().unwrap_or(json!("")));
            put(&mut v1, "selector", s.pointer("/metric/selector").cloned());
            put(&mut v1, "currentAverageValue", current(s, "averageValue"));
            "pods"
        }
        "Object" => {
            let s = &metric["object"];
            v1.insert("target".into(), s["describedObject"].clone());
            v1.insert("metricName".into(), s.pointer("/metric/name").cloned().unwrap_or(json!("")));
            put(&mut v1, "selector", s.pointer("/metric/selector").cloned());
            put(&mut v1, "currentValue", current(s, "value"));
            put(&mut v1, "averageValue", current(s, "averageValue"));
            "object"
        }
        "External" => {
            let s = &metric["external"];
            v1.insert("metricName".into(), s.pointer("/metric/name").cloned().unwrap_or(json!("")));
            put(&mut v1, "metricSelector", s.pointer("/metric/selector").cloned());
            put(&mut v1, "currentValue", current(s, "value"));
            put(&mut v1, "currentAverageValue", current(s, "averageValue"));
            "external"
        }
        _ => return metric.clone(),
    };
    json!({"type": kind, field: v1})
}

/// A v1 `MetricStatus` of the current-metrics annotation in v2's form.
fn metric_status_from_v1(metric: &Value) -> Value {
    let kind = metric["type"].as_str().unwrap_or("");
    let pick = |s: &Value, pairs: &[(&str, &str)]| {
        let mut current = Map::new();
        for (v1, v2) in pairs {
            if let Some(v) = s.get(*v1).filter(|v| !v.is_null()) {
                current.insert((*v2).into(), v.clone());
            }
        }
        Value::Object(current)
    };
    let metric_id = |s: &Value, selector: &str| {
        let mut m = json!({"name": s.get("metricName").cloned().unwrap_or(json!(""))});
        if let Some(sel) = s.get(selector).filter(|v| !v.is_null()) {
            m["selector"] = sel.clone();
        }
        m
    };
    match kind {
        "Resource" | "ContainerResource" => {
            let field = if kind == "Resource" { "resource" } else { "containerResource" };
            let s = &metric[field];
            let mut v2 = json!({"name": s["name"], "current": pick(s, &[("currentAverageUtilization", "averageUtilization"), ("currentAverageValue", "averageValue")])});
            if let Some(c) = s.get("container") {
                v2["container"] = c.clone();
            }
            json!({"type": kind, field: v2})
        }
        "Pods" => {
            let s = &metric["pods"];
            json!({"type": kind, "pods": {"metric": metric_id(s, "selector"), "current": pick(s, &[("currentAverageValue", "averageValue")])}})
        }
        "Object" => {
            let s = &metric["object"];
            json!({"type": kind, "object": {"describedObject": s["target"], "metric": metric_id(s, "selector"), "current": pick(s, &[("currentValue", "value"), ("averageValue", "averageValue")])}})
        }
        "External" => {
            let s = &metric["external"];
            json!({"type": kind, "external": {"metric": metric_id(s, "metricSelector"), "current": pick(s, &[("currentValue", "value"), ("currentAverageValue", "averageValue")])}})
        }
        _ => metric.clone(),
    }
}

/// Upstream's autoscaler columns.
const COLUMNS: &[Column] = &[
    columns::NAME,
    columns::string("Reference", "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count."),
    columns::string("Targets", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond."),
    columns::string("MinPods", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available."),
    columns::string("MaxPods", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
    columns::string("Replicas", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
    columns::AGE,
];

/// A v1 object's row: printed from its v2 form, as upstream prints the
/// internal one.
fn print_v1(hpa: &Value, now: Timestamp) -> Row {
    let mut v2 = hpa.clone();
    v1_to_v2(&mut v2);
    print(&v2, now)
}

/// NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE.
fn print(hpa: &Value, now: Timestamp) -> Row {
    let reference = format!(
        "{}/{}",
        str_at(hpa, &["spec", "scaleTargetRef", "kind"]),
        str_at(hpa, &["spec", "scaleTargetRef", "name"])
    );
    let min = opt_int(hpa, &["spec", "minReplicas"]).map_or("<unset>".to_owned(), |m| m.to_string());
    vec![
        name(hpa).into(),
        reference.into(),
        targets(hpa).into(),
        min.into(),
        opt_int(hpa, &["spec", "maxReplicas"]).unwrap_or(0).into(),
        opt_int(hpa, &["status", "currentReplicas"]).unwrap_or(0).into(),
        age(hpa, now).into(),
    ]
    .into()
}

/// `formatHPAMetrics`: each metric's current value against its target,
/// two at most, then `+ N more...`.
fn targets(hpa: &Value) -> String {
    let specs = hpa.pointer("/spec/metrics").and_then(Value::as_array).cloned().unwrap_or_default();
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = hpa.pointer("/status/currentMetrics").and_then(Value::as_array).cloned().unwrap_or_default();
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "<unknown>".into(),
    };
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let current = |source: &str, field: &str| {
            text(status.and_then(|s| s.pointer(&format!("/{source}/current/{field}"))))
        };
        let kind = spec["type"].as_str().unwrap_or("");
        let item = match kind {
            "External" | "Object" => {
                let source = if kind == "External" { "external" } else { "object" };
                let target = &spec[source]["target"];
                match target.get("averageValue").filter(|v| !v.is_null()) {
                    Some(avg) => format!("{}/{} (avg)", current(source, "averageValue"), text(Some(avg))),
                    None => format!("{}/{}", current(source, "value"), text(target.get("value"))),
                }
            }
            "Pods" => format!(
                "{}/{}",
                current("pods", "averageValue"),
                text(spec.pointer("/pods/target/averageValue"))
            ),
            "Resource" | "ContainerResource" => {
                let source = if kind == "Resource" { "resource" } else { "containerResource" };
                let resource = text(spec[source].get("name"));
                let target = &spec[source]["target"];
                match target.get("averageValue").filter(|v| !v.is_null()) {
                    Some(avg) => format!("{resource}: {}/{}", current(source, "averageValue"), text(Some(avg))),
                    None => {
                        let now = status
                            .and_then(|s| s.pointer(&format!("/{source}/current/averageUtilization")))
                            .and_then(Value::as_i64)
                            .map_or("<unknown>".to_owned(), |u| format!("{u}%"));
                        let goal = target
                            .get("averageUtilization")
                            .and_then(Value::as_i64)
                            .map_or("<auto>".to_owned(), |u| format!("{u}%"));
                        format!("{resource}: {now}/{goal}")
                    }
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(item);
    }
    if list.len() > 2 {
        let more = list.len() - 2;
        list.truncate(2);
        format!("{} + {more} more...", list.join(", "))
    } else {
        list.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    fn v2() -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web"},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "maxReplicas": 5,
                        "metrics": [
                            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                        ],
                        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
               "status": {"currentReplicas": 2, "desiredReplicas": 3,
                          "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 90}}}],
                          "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]}})
    }

    #[test]
    fn v2_defaults_fill_min_replicas_and_behavior_rules() {
        let hpa = defaulted(&KIND, v2());
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 60);
        assert_eq!(hpa["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Max");
        assert_eq!(hpa["spec"]["behavior"]["scaleUp"]["policies"][0]["value"], 4);
        assert!(invalid_fields(&KIND, &hpa).is_empty());
        let mut bare = v2();
        bare["spec"]["metrics"] = json!(null);
        assert_eq!(defaulted(&KIND, bare)["spec"]["metrics"][0], cpu_metric(80));
    }

    /// The object with its defaults, its status kept.
    fn with_defaults(mut hpa: Value) -> Value {
        KIND.strategy.default(&mut hpa);
        hpa
    }

    #[test]
    fn v2_survives_a_round_trip_through_v1() {
        let original = with_defaults(v2());
        let mut v1 = original.clone();
        v2_to_v1(&mut v1);
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 90);
        assert!(v1["metadata"]["annotations"][METRICS].as_str().is_some_and(|m| m.contains("qps")));
        assert!(v1["metadata"]["annotations"][BEHAVIOR].as_str().is_some_and(|b| b.contains("StabilizationWindowSeconds")));
        let mut back = v1;
        v1_to_v2(&mut back);
        // The CPU metric comes back after the others, as upstream orders it.
        let metrics = back["spec"]["metrics"].as_array().expect("metrics");
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[0], original["spec"]["metrics"][1]);
        assert_eq!(metrics[1], original["spec"]["metrics"][0]);
        assert_eq!(back["spec"]["behavior"], original["spec"]["behavior"]);
        assert_eq!(back["status"]["currentMetrics"], original["status"]["currentMetrics"]);
        assert_eq!(back["status"]["conditions"], original["status"]["conditions"]);
        assert!(back["metadata"].get("annotations").is_none());
    }

    #[test]
    fn v1_objects_validate_in_the_v2_form() {
        let v1 = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 0, "targetCPUUtilizationPercentage": 0}});
        let v1 = defaulted(&KIND_V1, v1);
        assert_eq!(v1["spec"]["minReplicas"], 1);
        assert_eq!(
            invalid_fields(&KIND_V1, &v1),
            [
                "spec.maxReplicas",
                "spec.maxReplicas",
                "spec.metrics[0].resource.target.averageUtilization"
            ]
        );
    }

    #[test]
    fn targets_read_current_against_goal() {
        let hpa = with_defaults(v2());
        assert_eq!(targets(&hpa), "cpu: 90%/50%, <unknown>/10");
    }
}
