//! Limit ranges (core/v1): per-namespace bounds and defaults of compute and
//! storage resources, enforced and applied by the LimitRanger admission
//! plugin (`crate::registry::admission::limit_ranger`).

use k8s_openapi::api::core;
use serde_json::{Map, Value};

use super::fields::untrack_generation;
use super::BuiltinKind;
use crate::error::FieldCause;
use crate::registry::admission::quantity::Quantity;
use crate::resources::strategy::Strategy;
use crate::resources::table::{cluster, columns, Printer};
use crate::resources::Typed;

/// The LimitRange kind.
pub(super) const KIND: BuiltinKind = BuiltinKind::namespaced(
    "",
    "limitranges",
    "LimitRange",
    Typed::of::<core::v1::LimitRange>(),
    &LimitRanges,
)
.short_names(&["limits"]);

/// The rules of LimitRange objects.
#[derive(Debug)]
struct LimitRanges;

impl Strategy for LimitRanges {
    /// Upstream's `SetDefaults_LimitRangeItem`: a `Container` limit's
    /// default limit falls back to its max, its default request to its
    /// default limit, then to its min.
    fn default(&self, object: &mut Value) {
        untrack_generation(object);
        let Some(limits) = object
            .pointer_mut("/spec/limits")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for limit in limits.iter_mut().filter_map(Value::as_object_mut) {
            if limit.get("type").and_then(Value::as_str) != Some("Container") {
                continue;
            }
            let max = resource_map(limit, "max");
            let min = resource_map(limit, "min");
            let mut default = resource_map(limit, "default");
            for (k, v) in &max {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let mut request = resource_map(limit, "defaultRequest");
            for (k, v) in default.iter().chain(&min) {
                request.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if !default.is_empty() {
                limit.insert("default".into(), Value::Object(default));
            }
            if !request.is_empty() {
                limit.insert("defaultRequest".into(), Value::Object(request));
            }
        }
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        let limits = object
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut seen = Vec::new();
        for (i, limit) in limits.iter().enumerate() {
            let at = format!("spec.limits[{i}]");
            let kind = limit.get("type").and_then(Value::as_str).unwrap_or("");
            if !kind.contains('/') && !matches!(kind, "Pod" | "Container" | "PersistentVolumeClaim") {
                causes.push(FieldCause::invalid(
                    format!("{at}.type"),
                    kind,
                    "must be a standard limit type or fully qualified",
                ));
            }
            if seen.contains(&kind) {
                causes.push(FieldCause {
                    reason: "FieldValueDuplicate",
                    field: format!("{at}.type"),
                    message: format!("Duplicate value: {kind:?}"),
                });
            }
            seen.push(kind);
            let compute = matches!(kind, "Pod" | "Container");
            let read = |field: &str, causes: &mut Vec<FieldCause>| {
                let mut out = Vec::new();
                for (name, value) in limit.get(field).and_then(Value::as_object).into_iter().flatten() {
                    let path = format!("{at}.{field}[{name}]");
                    resource_name_causes(name, compute, &path, causes);
                    match value.as_str().and_then(Quantity::parse) {
                        Some(q) => out.push((name.clone(), q)),
                        None => causes.push(FieldCause::invalid(
                            path,
                            &value.to_string(),
                            "must be a valid quantity",
                        )),
                    }
                }
                out
            };
            let max = read("max", causes);
            let min = read("min", causes);
            let (default, default_request) = if kind == "Pod" {
                for field in ["default", "defaultRequest"] {
                    if limit.get(field).and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
                        causes.push(FieldCause::forbidden(
                            format!("{at}.{field}"),
                            "may not be specified when `type` is 'Pod'",
                        ));
                    }
                }
                (Vec::new(), Vec::new())
            } else {
                (read("default", causes), read("defaultRequest", causes))
            };
            if kind == "PersistentVolumeClaim"
                && !min.iter().chain(&max).any(|(name, _)| name == "storage")
            {
                causes.push(FieldCause {
                    reason: "FieldValueRequired",
                    field: format!("{at}.limits"),
                    message: "Required value: either minimum or maximum storage value is required, but neither was provided".into(),
                });
            }
            let ratio = read("maxLimitRequestRatio", causes);
            let find = |list: &[(String, Quantity)], key: &str| {
                list.iter().find(|(k, _)| k == key).map(|(_, q)| *q)
            };
            let mut keys: Vec<&String> = max
                .iter()
                .chain(&min)
                .chain(&default)
                .chain(&default_request)
                .chain(&ratio)
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (lo, hi) = (find(&min, k), find(&max, k));
                let (def, req) = (find(&default, k), find(&default_request, k));
                let mut bad = |field: &str, value: Quantity, why: String| {
                    causes.push(FieldCause::invalid(
                        format!("{at}.{field}[{k}]"),
                        &value.to_string(),
                        why,
                    ))
                };
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    if lo > hi {
                        bad("min", lo, format!("min value {lo} is greater than max value {hi}"));
                    }
                }
                if let Some(req) = req {
                    if let Some(lo) = lo.filter(|lo| *lo > req) {
                        bad("defaultRequest", req, format!("min value {lo} is greater than default request value {req}"));
                    }
                    if let Some(hi) = hi.filter(|hi| req > *hi) {
                        bad("defaultRequest", req, format!("default request value {req} is greater than max value {hi}"));
                    }
                    if let Some(def) = def.filter(|def| req > *def) {
                        bad("defaultRequest", req, format!("default request value {req} is greater than default limit value {def}"));
                    }
                }
                if let Some(def) = def {
                    if let Some(lo) = lo.filter(|lo| *lo > def) {
                        bad("default", lo, format!("min value {lo} is greater than default value {def}"));
                    }
                    if let Some(hi) = hi.filter(|hi| def > *hi) {
                        bad("default", hi, format!("default value {def} is greater than max value {hi}"));
                    }
                }
                if let Some(r) = find(&ratio, k) {
                    if r < Quantity::from_units(1) {
                        bad("maxLimitRequestRatio", r, format!("ratio {r} is less than 1"));
                    }
                    if let (Some(lo), Some(hi)) = (lo, hi) {
                        let limit = hi.milli_value() as f64 / lo.milli_value().max(1) as f64;
                        let value = r.milli_value() as f64 / 1000.0;
                        if value > limit {
                            bad("maxLimitRequestRatio", r, format!("ratio {r} is greater than max/min = {limit:.6}"));
                        }
                    }
                }
            }
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::CREATED_AT, cluster::created_at))
    }
}

/// A limit's resource list field as a JSON map (empty when unset).
fn resource_map(limit: &Map<String, Value>, field: &str) -> Map<String, Value> {
    limit
        .get(field)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Upstream's resource-name checks of a limit: compute limits
/// (`Container`, `Pod`) take container resources (`cpu`, `memory`,
/// `ephemeral-storage`, `hugepages-*`) or qualified extended ones.
fn resource_name_causes(name: &str, compute: bool, path: &str, causes: &mut Vec<FieldCause>) {
    if name.contains('/') {
        return;
    }
    let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage" | "storage")
        || name.starts_with("hugepages-")
        || name.starts_with("requests.")
        || name.starts_with("limits.")
        || matches!(name, "pods" | "services" | "resourcequotas" | "replicationcontrollers" | "secrets" | "persistentvolumeclaims" | "configmaps" | "services.nodeports" | "services.loadbalancers");
    if !standard {
        causes.push(FieldCause::invalid(path, name, "must be a standard resource type or fully qualified"));
    }
    if compute && !(matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")) {
        causes.push(FieldCause::invalid(path, name, "must be a standard resource for containers"));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{defaulted, invalid_fields};
    use super::*;
    use serde_json::json;

    #[test]
    fn container_defaults_follow_max_and_min() {
        let range = defaulted(&KIND, json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]}}));
        assert_eq!(range["spec"]["limits"][0]["default"], json!({"cpu": "1"}));
        assert_eq!(range["spec"]["limits"][0]["defaultRequest"], json!({"cpu": "1", "memory": "64Mi"}));
    }

    #[test]
    fn refuses_min_above_max() {
        let range = json!({"spec": {"limits": [
            {"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}}]}});
        assert_eq!(invalid_fields(&KIND, &range), vec!["spec.limits[0].min[cpu]"]);
    }
}
