//! Upstream's LimitRanger admission plugin
//! (plugin/pkg/admission/limitranger): a new pod's containers get the
//! default requests and limits of their namespace's LimitRanges (noted in
//! the `kubernetes.io/limit-ranger` annotation), and pods and claims
//! outside a LimitRange's min, max or limit/request ratio are refused.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::quantity::Quantity;
use super::quota_usage::{container_resources, pod_resources, resource_list, ResourceList};
use super::{AdmissionPlugin, Attributes, Operation};
use crate::error::ApiError;
use crate::registry::Registry;

/// The annotation naming what LimitRanger set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The LimitRanger plugin.
#[derive(Debug)]
pub struct LimitRanger;

/// Which writes LimitRanger looks at: pod creates (the mutating step and
/// the checks) and claim creates and updates (the checks).
fn supports(attributes: &Attributes<'_>) -> bool {
    if attributes.subresource.is_some() {
        return false;
    }
    if attributes.is("", "pods") {
        return attributes.operation == Operation::Create;
    }
    attributes.is("", "persistentvolumeclaims")
}

impl LimitRanger {
    /// The namespace's LimitRanges, or none when the write is to an
    /// object being deleted (upstream skips those).
    async fn limit_ranges(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
    ) -> Result<Vec<Value>, ApiError> {
        let deleting = attributes
            .old
            .and_then(|old| old.pointer("/metadata/deletionTimestamp"))
            .is_some_and(|t| !t.is_null());
        match attributes.namespace {
            Some(namespace) if supports(attributes) && !deleting => {
                registry.list_in("", "limitranges", Some(namespace)).await
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl AdmissionPlugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if !attributes.is("", "pods") {
            return Ok(());
        }
        for range in self.limit_ranges(registry, attributes).await? {
            default_pod(&range, object);
        }
        Ok(())
    }

    async fn validate(
        &self,
        registry: &Registry,
        attributes: &Attributes<'_>,
        object: &Value,
    ) -> Result<(), ApiError> {
        for range in self.limit_ranges(registry, attributes).await? {
            let errors = if attributes.is("", "pods") {
                check_pod(&range, object)
            } else {
                check_claim(&range, object)
            };
            match errors.len() {
                0 => {}
                1 => return Err(attributes.forbidden(object, &errors[0])),
                _ => return Err(attributes.forbidden(object, format!("[{}]", errors.join(", ")))),
            }
        }
        Ok(())
    }
}

/// The limits of `range` of one type (`Container`, `Pod`, ...).
fn limits_of<'a>(range: &'a Value, kind: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let kind = kind.to_owned();
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |limit| limit.get("type").and_then(Value::as_str) == Some(kind.as_str()))
}

/// The defaults of a LimitRange's `Container` limits (upstream's
/// `defaultContainerResourceRequirements`), as written in it.
fn container_defaults(range: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let mut requests = Map::new();
    let mut limits = Map::new();
    for limit in limits_of(range, "Container") {
        for (field, into) in [("defaultRequest", &mut requests), ("default", &mut limits)] {
            if let Some(map) = limit.get(field).and_then(Value::as_object) {
                into.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    (requests, limits)
}

/// Fills a pod's containers' missing requests and limits from `range`'s
/// defaults and notes it in the annotation (upstream's
/// `mergePodResourceRequirements`).
fn default_pod(range: &Value, pod: &mut Value) {
    let (requests, limits) = container_defaults(range);
    let mut notes: Vec<String> = Vec::new();
    for (field, what) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{field}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers.iter_mut() {
            let Some(container) = container.as_object_mut() else {
                continue;
            };
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let resources = container
                .entry("resources")
                .or_insert_with(|| Value::Object(Map::new()));
            let Some(resources) = resources.as_object_mut() else {
                continue;
            };
            let mut set_limits = fill(resources, "limits", &limits);
            let mut set_requests = fill(resources, "requests", &requests);
            if !set_requests.is_empty() {
                set_requests.sort();
                notes.push(format!(
                    "{} request for {what} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                set_limits.sort();
                notes.push(format!("{} limit for {what} {name}", set_limits.join(", ")));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    let meta = crate::object::metadata_mut(pod);
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(
            ANNOTATION.into(),
            Value::String(format!("LimitRanger plugin set: {}", notes.join("; "))),
        );
    }
}

/// Sets the names of `defaults` missing from `resources[field]`; returns
/// the names set.
fn fill(
    resources: &mut Map<String, Value>,
    field: &str,
    defaults: &Map<String, Value>,
) -> Vec<String> {
    if defaults.is_empty() {
        return Vec::new();
    }
    let list = resources
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !list.is_object() {
        *list = Value::Object(Map::new());
    }
    let Some(list) = list.as_object_mut() else {
        return Vec::new();
    };
    let mut set = Vec::new();
    for (name, amount) in defaults {
        if !list.contains_key(name) {
            list.insert(name.clone(), amount.clone());
            set.push(name.clone());
        }
    }
    set
}

/// One limit's `field` (min, max, maxLimitRequestRatio) as quantities.
fn bounds(limit: &Value, field: &str) -> ResourceList {
    resource_list(limit.get(field))
}

/// Why a pod is outside `range` (upstream's `PodValidateLimitFunc`).
fn check_pod(range: &Value, pod: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for limit in limits_of(range, "Container") {
        for field in ["containers", "initContainers"] {
            let containers = pod
                .pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for container in containers {
                let requests = container_resources(container, "requests");
                let limits = container_resources(container, "limits");
                check_bounds("Container", limit, &requests, &limits, &mut errors);
            }
        }
    }
    for limit in limits_of(range, "Pod") {
        let requests = pod_resources(pod, "requests");
        let limits = pod_resources(pod, "limits");
        check_bounds("Pod", limit, &requests, &limits, &mut errors);
    }
    errors
}

/// Why a claim is outside `range` (upstream's
/// `PersistentVolumeClaimValidateLimitFunc`).
fn check_claim(range: &Value, claim: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let requests = resource_list(claim.pointer("/spec/resources/requests"));
    for limit in limits_of(range, "PersistentVolumeClaim") {
        for (name, enforced) in bounds(limit, "min") {
            errors.extend(min_constraint(
                "PersistentVolumeClaim",
                &name,
                enforced,
                &requests,
                &ResourceList::new(),
            ));
        }
        for (name, enforced) in bounds(limit, "max") {
            let kind = "PersistentVolumeClaim";
            match requests.get(&name) {
                None => errors.push(format!(
                    "maximum {name} usage per {kind} is {enforced}.  No request is specified"
                )),
                Some(request) if request.cmp_coarse(&enforced).is_gt() => errors.push(format!(
                    "maximum {name} usage per {kind} is {enforced}, but request is {request}"
                )),
                Some(_) => {}
            }
        }
    }
    errors
}

/// The min, max and ratio checks of one limit against `requests` and
/// `limits`, in upstream's order and wording.
fn check_bounds(
    kind: &str,
    limit: &Value,
    requests: &ResourceList,
    limits: &ResourceList,
    errors: &mut Vec<String>,
) {
    for (name, enforced) in bounds(limit, "min") {
        errors.extend(min_constraint(kind, &name, enforced, requests, limits));
    }
    for (name, enforced) in bounds(limit, "max") {
        let request = requests.get(&name);
        match limits.get(&name) {
            None => errors.push(format!(
                "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
            )),
            Some(lim) if lim.cmp_coarse(&enforced).is_gt() => errors.push(format!(
                "maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
            )),
            Some(_) => match request {
                Some(req) if req.cmp_coarse(&enforced).is_gt() => errors.push(format!(
                    "maximum {name} usage per {kind} is {enforced}, but request is {req}"
                )),
                _ => {}
            },
        }
    }
    for (name, enforced) in bounds(limit, "maxLimitRequestRatio") {
        let request = requests.get(&name).filter(|q| q.milli_value() != 0);
        let lim = limits.get(&name).filter(|q| q.milli_value() != 0);
        let Some(request) = request else {
            errors.push(format!("{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"));
            continue;
        };
        let Some(lim) = lim else {
            errors.push(format!("{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"));
            continue;
        };
        let ratio = lim.milli_value() as f64 / request.milli_value() as f64;
        if ratio * 1000.0 > enforced.milli_value() as f64 {
            errors.push(format!(
                "{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {ratio:.6}"
            ));
        }
    }
}

/// Upstream's `minConstraint`.
fn min_constraint(
    kind: &str,
    name: &str,
    enforced: Quantity,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let Some(request) = requests.get(name) else {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if request.cmp_coarse(&enforced).is_lt() {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but request is {request}"
        ));
    }
    match limits.get(name) {
        Some(limit) if limit.cmp_coarse(&enforced).is_lt() => Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but limit is {limit}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_annotates() {
        let range = json!({"spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]}});
        let mut pod = json!({"metadata": {}, "spec": {"containers": [
            {"name": "app", "resources": {"limits": {"cpu": "1"}}}]}});
        default_pod(&range, &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({
            "limits": {"cpu": "1", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"}})
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container app; memory limit for container app"
        );
    }

    #[test]
    fn refuses_outside_min_and_max() {
        let range = json!({"spec": {"limits": [{"type": "Container",
            "min": {"cpu": "100m"}, "max": {"cpu": "1"}}]}});
        let pod = json!({"spec": {"containers": [
            {"name": "app", "resources": {"limits": {"cpu": "2"}, "requests": {"cpu": "50m"}}}]}});
        assert_eq!(
            check_pod(&range, &pod),
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m".to_owned(),
                "maximum cpu usage per Container is 1, but limit is 2".to_owned(),
            ]
        );
    }
}
