//! What an object counts against a ResourceQuota (upstream's quota
//! evaluators, pkg/quota/v1/evaluator/core): pods' compute requests and
//! limits, services and their load balancers and node ports, claims and
//! their storage, and `count/<resource>[.<group>]` for everything.
//!
//! Pure functions of JSON objects (only `std`, `serde_json` and
//! [`super::quantity`]): the ResourceQuota admission plugin charges a write
//! with them and the resource-quota controller of `vcluster-controllers`
//! (which compiles this same file) recounts a namespace with them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::quantity::Quantity;

/// Resource names and amounts (upstream's `ResourceList`), sorted by name.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The names a pod's usage can have besides the prefixed ones.
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// The names a service's usage has.
const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];

/// The infix of a storage class's claim quotas
/// (`gold.storageclass.storage.k8s.io/requests.storage`).
const STORAGE_CLASS_INFIX: &str = ".storageclass.storage.k8s.io/";

/// The quota name counting objects of `group`/`plural`:
/// `count/<plural>[.<group>]`.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

/// The resource a `count/...` name counts: `(group, plural)`.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix("count/")?;
    Some(match rest.split_once('.') {
        Some((plural, group)) => (group.to_owned(), plural.to_owned()),
        None => (String::new(), rest.to_owned()),
    })
}

/// The legacy object-count name of a core resource (`configmaps`).
fn legacy_alias(group: &str, plural: &str) -> Option<&'static str> {
    if !group.is_empty() {
        return None;
    }
    [
        "configmaps",
        "resourcequotas",
        "replicationcontrollers",
        "secrets",
    ]
    .into_iter()
    .find(|alias| *alias == plural)
}

/// The resources whose objects a quota on `name` counts: `(group, plural)`.
pub fn resources_for(name: &str) -> Option<(String, String)> {
    if let Some(counted) = counted_resource(name) {
        return Some(counted);
    }
    let core = |plural: &str| Some((String::new(), plural.to_owned()));
    if POD_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.") && name != "requests.storage"
        || name.starts_with("limits.")
    {
        return core("pods");
    }
    if SERVICE_RESOURCES.contains(&name) {
        return core("services");
    }
    if name == "persistentvolumeclaims"
        || name == "requests.storage"
        || name.contains(STORAGE_CLASS_INFIX)
    {
        return core("persistentvolumeclaims");
    }
    [
        "configmaps",
        "resourcequotas",
        "replicationcontrollers",
        "secrets",
    ]
    .into_iter()
    .find(|alias| *alias == name)
    .and_then(core)
}

/// Of a quota's `hard` names, those that objects of `group`/`plural`
/// count against (upstream's `MatchingResources`).
pub fn matching(group: &str, plural: &str, hard: &ResourceList) -> Vec<String> {
    let count = count_name(group, plural);
    hard.keys()
        .filter(|name| {
            let name = name.as_str();
            if name == count || legacy_alias(group, plural) == Some(name) {
                return true;
            }
            match (group, plural) {
                ("", "pods") => {
                    POD_RESOURCES.contains(&name)
                        || name.starts_with("hugepages-")
                        || name.starts_with("requests.hugepages-")
                        || is_extended_request(name)
                }
                ("", "services") => SERVICE_RESOURCES.contains(&name),
                ("", "persistentvolumeclaims") => {
                    matches!(name, "persistentvolumeclaims" | "requests.storage")
                        || name.split_once(STORAGE_CLASS_INFIX).is_some_and(|(_, r)| {
                            matches!(r, "persistentvolumeclaims" | "requests.storage")
                        })
                }
                _ => false,
            }
        })
        .cloned()
        .collect()
}

/// `requests.<extended resource>` (`requests.example.com/gpu`).
fn is_extended_request(name: &str) -> bool {
    name.strip_prefix("requests.").is_some_and(is_extended)
}

/// An extended resource name: qualified outside `kubernetes.io`, not
/// `requests.` itself.
fn is_extended(name: &str) -> bool {
    match name.split_once('/') {
        Some((domain, _)) => {
            !(domain == "kubernetes.io"
                || domain.ends_with(".kubernetes.io")
                || name.starts_with("requests."))
        }
        None => false,
    }
}

/// What `object` (of `group`/`plural`) counts against quotas.
pub fn usage(group: &str, plural: &str, object: &Value, now_seconds: i64) -> ResourceList {
    let mut result = ResourceList::new();
    let one = Quantity::from_units(1);
    match (group, plural) {
        ("", "pods") => return pod_usage(object, now_seconds),
        ("", "services") => {
            result.insert("count/services".into(), one);
            result.insert("services".into(), one);
            let ports = array(object.pointer("/spec/ports"));
            let kind = str_at(object, "/spec/type");
            let node_ports = match kind {
                "NodePort" => ports.len(),
                "LoadBalancer"
                    if object.pointer("/spec/allocateLoadBalancerNodePorts")
                        == Some(&Value::Bool(false)) =>
                {
                    ports
                        .iter()
                        .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                        .count()
                }
                "LoadBalancer" => ports.len(),
                _ => 0,
            };
            result.insert(
                "services.loadbalancers".into(),
                Quantity::from_units(i64::from(kind == "LoadBalancer")),
            );
            result.insert(
                "services.nodeports".into(),
                Quantity::from_units(node_ports as i64),
            );
        }
        ("", "persistentvolumeclaims") => {
            result.insert("persistentvolumeclaims".into(), one);
            result.insert("count/persistentvolumeclaims".into(), one);
            let class = object
                .pointer("/spec/storageClassName")
                .and_then(Value::as_str)
                .or_else(|| {
                    object
                        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
                        .and_then(Value::as_str)
                })
                .unwrap_or("");
            if !class.is_empty() {
                result.insert(
                    format!("{class}{STORAGE_CLASS_INFIX}persistentvolumeclaims"),
                    one,
                );
            }
            let requested = quantity_at(object, "/spec/resources/requests/storage");
            let allocated = quantity_at(object, "/status/allocatedResources/storage");
            let storage = match (requested, allocated) {
                (Some(r), Some(a)) if a > r => Some(a),
                (Some(r), _) => Some(r),
                _ => None,
            };
            if let Some(storage) = storage {
                result.insert("requests.storage".into(), storage);
                if !class.is_empty() {
                    result.insert(
                        format!("{class}{STORAGE_CLASS_INFIX}requests.storage"),
                        storage,
                    );
                }
            }
        }
        _ => {
            result.insert(count_name(group, plural), one);
            if let Some(alias) = legacy_alias(group, plural) {
                result.insert(alias.into(), one);
            }
        }
    }
    result
}

/// A pod's usage (upstream's `PodUsageFunc`): always `count/pods`; its
/// requests and limits while it is not finished and not past its deletion
/// grace period.
pub fn pod_usage(pod: &Value, now_seconds: i64) -> ResourceList {
    let mut result = ResourceList::new();
    result.insert("count/pods".into(), Quantity::from_units(1));
    if !counts_compute(pod, now_seconds) {
        return result;
    }
    let requests = pod_resources(pod, "requests");
    let limits = pod_resources(pod, "limits");
    add_all(&mut result, &compute_usage(&requests, &limits));
    result
}

/// Whether a pod's compute resources count (upstream's `QuotaV1Pod`): not
/// Succeeded or Failed, and not deleted past its grace period.
pub fn counts_compute(pod: &Value, now_seconds: i64) -> bool {
    if matches!(str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
        return false;
    }
    let deleted = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(rfc3339_seconds);
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    !matches!((deleted, grace), (Some(at), Some(grace)) if now_seconds > at + grace)
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2024-01-02T03:04:05Z`).
fn rfc3339_seconds(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['.', '+']).next()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// A container's (or a pod's summed) usage by name (upstream's
/// `podComputeUsageHelper`).
pub fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut result = ResourceList::new();
    result.insert("pods".into(), Quantity::from_units(1));
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(request) = requests.get(resource) {
            result.insert(resource.into(), *request);
            result.insert(format!("requests.{resource}"), *request);
        }
        if let Some(limit) = limits.get(resource) {
            result.insert(format!("limits.{resource}"), *limit);
        }
    }
    for (resource, request) in requests {
        if resource.starts_with("hugepages-") {
            result.insert(resource.clone(), *request);
            result.insert(format!("requests.{resource}"), *request);
        }
        if is_extended(resource) {
            result.insert(format!("requests.{resource}"), *request);
        }
    }
    result
}

/// A container's `resources.<which>` (requests or limits).
pub fn container_resources(container: &Value, which: &str) -> ResourceList {
    resource_list(container.get("resources").and_then(|r| r.get(which)))
}

/// A JSON resource list read as quantities (unparsable ones left out:
/// validation refuses them).
pub fn resource_list(value: Option<&Value>) -> ResourceList {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(name, q)| Some((name.clone(), Quantity::parse(q.as_str()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A pod's effective requests or limits (upstream's `PodRequests` /
/// `PodLimits`): its containers' sum, or more when an init container (with
/// the restartable ones before it) needs more, plus the pod's overhead.
pub fn pod_resources(pod: &Value, which: &str) -> ResourceList {
    let mut total = ResourceList::new();
    for container in array(pod.pointer("/spec/containers")) {
        add_all(&mut total, &container_resources(container, which));
    }
    let mut restartable = ResourceList::new();
    let mut init_max = ResourceList::new();
    for container in array(pod.pointer("/spec/initContainers")) {
        let own = container_resources(container, which);
        let effective = if str_at(container, "/restartPolicy") == "Always" {
            add_all(&mut total, &own);
            add_all(&mut restartable, &own);
            restartable.clone()
        } else {
            let mut tmp = own;
            add_all(&mut tmp, &restartable);
            tmp
        };
        max_all(&mut init_max, &effective);
    }
    max_all(&mut total, &init_max);
    let overhead = resource_list(pod.pointer("/spec/overhead"));
    if !overhead.is_empty() {
        for (name, amount) in &overhead {
            if which == "requests" || total.contains_key(name) {
                let sum = total
                    .get(name)
                    .copied()
                    .unwrap_or(Quantity::ZERO)
                    .plus(*amount);
                total.insert(name.clone(), sum);
            }
        }
    }
    total
}

/// Adds `more` into `into`, name by name.
pub fn add_all(into: &mut ResourceList, more: &ResourceList) {
    for (name, amount) in more {
        let sum = into
            .get(name)
            .copied()
            .unwrap_or(Quantity::ZERO)
            .plus(*amount);
        into.insert(name.clone(), sum);
    }
}

/// Keeps the larger of each name.
fn max_all(into: &mut ResourceList, other: &ResourceList) {
    for (name, amount) in other {
        if into.get(name).is_none_or(|have| amount > have) {
            into.insert(name.clone(), *amount);
        }
    }
}

/// Whether a quota with these scopes and scope selector applies to
/// `object` of `group`/`plural`: pods match scopes by their terminating,
/// best-effort and priority-class facts; other kinds match no scope.
pub fn matches_scopes(quota: &Value, group: &str, plural: &str, object: &Value) -> bool {
    let mut selectors: Vec<(String, String, Vec<String>)> = array(quota.pointer("/spec/scopes"))
        .iter()
        .filter_map(Value::as_str)
        .map(|scope| (scope.to_owned(), "Exists".to_owned(), Vec::new()))
        .collect();
    for expression in array(quota.pointer("/spec/scopeSelector/matchExpressions")) {
        let values = array(expression.get("values"))
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        selectors.push((
            str_at(expression, "/scopeName").to_owned(),
            str_at(expression, "/operator").to_owned(),
            values,
        ));
    }
    if selectors.is_empty() {
        return true;
    }
    if (group, plural) != ("", "pods") {
        return false;
    }
    selectors.iter().all(|(scope, operator, values)| {
        let class = str_at(object, "/spec/priorityClassName");
        match scope.as_str() {
            "Terminating" => is_terminating(object),
            "NotTerminating" => !is_terminating(object),
            "BestEffort" => is_best_effort(object),
            "NotBestEffort" => !is_best_effort(object),
            "PriorityClass" => match operator.as_str() {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => !class.is_empty() && values.iter().any(|v| v == class),
                "NotIn" => class.is_empty() || !values.iter().any(|v| v == class),
                _ => false,
            },
            "CrossNamespacePodAffinity" => false,
            _ => false,
        }
    })
}

/// A pod with an active deadline (upstream's quota `IsTerminating`).
pub fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0)
}

/// A pod none of whose containers requests or limits cpu or memory.
fn is_best_effort(pod: &Value) -> bool {
    let containers = array(pod.pointer("/spec/containers"))
        .iter()
        .chain(array(pod.pointer("/spec/initContainers")));
    !containers.into_iter().any(|c| {
        ["requests", "limits"].iter().any(|which| {
            let list = container_resources(c, which);
            ["cpu", "memory"]
                .iter()
                .any(|r| list.get(*r).is_some_and(|q| !q.is_zero()))
        })
    })
}

/// The names `required` a pod's every container must set (upstream's pod
/// evaluator `Constraints`): `Err("must specify ...")` naming what is
/// missing where.
pub fn pod_constraints(pod: &Value, required: &[String]) -> Result<(), String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| {
            matches!(
                *r,
                "cpu"
                    | "memory"
                    | "requests.cpu"
                    | "requests.memory"
                    | "limits.cpu"
                    | "limits.memory"
            )
        })
        .collect();
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let containers = array(pod.pointer("/spec/containers"))
        .iter()
        .chain(array(pod.pointer("/spec/initContainers")));
    for container in containers {
        let usage = compute_usage(
            &container_resources(container, "requests"),
            &container_resources(container, "limits"),
        );
        for name in &required {
            if !usage.contains_key(*name) {
                missing
                    .entry(name)
                    .or_default()
                    .insert(str_at(container, "/name").to_owned());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(name, containers)| {
            let names: Vec<&str> = containers.iter().map(String::as_str).collect();
            format!("{name} for: {}", names.join(","))
        })
        .collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Upstream's `prettyPrint` of a resource list: `a=1,b=2Gi`, sorted.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(name, amount)| format!("{name}={amount}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `list` with only the names in `names`.
pub fn mask(list: &ResourceList, names: &[String]) -> ResourceList {
    list.iter()
        .filter(|(name, _)| names.contains(name))
        .map(|(n, q)| (n.clone(), *q))
        .collect()
}

/// The JSON form of a resource list, in canonical quantities.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(name, amount)| (name.clone(), Value::String(amount.to_string())))
            .collect(),
    )
}

fn array(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn quantity_at(value: &Value, pointer: &str) -> Option<Quantity> {
    Quantity::parse(value.pointer(pointer)?.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_usage_sums_containers_and_skips_finished_pods() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "400m", "memory": "64Mi"}}},
        ]}});
        let usage = pod_usage(&pod, 0);
        assert_eq!(pretty(&usage), "count/pods=1,cpu=500m,limits.cpu=200m,memory=128Mi,pods=1,requests.cpu=500m,requests.memory=128Mi");
        let mut done = pod.clone();
        done["status"] = json!({"phase": "Succeeded"});
        assert_eq!(pretty(&pod_usage(&done, 0)), "count/pods=1");
        assert_eq!(
            pod_constraints(&pod, &["limits.cpu".into(), "pods".into()]),
            Err("must specify limits.cpu for: b".into())
        );
    }

    #[test]
    fn times_and_counts() {
        assert_eq!(rfc3339_seconds("1970-01-02T00:00:01Z"), Some(86_401));
        assert_eq!(
            counted_resource("count/deployments.apps"),
            Some(("apps".into(), "deployments".into()))
        );
        let svc = json!({"spec": {"type": "NodePort", "ports": [{"port": 1}, {"port": 2}]}});
        assert_eq!(
            pretty(&usage("", "services", &svc, 0)),
            "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2"
        );
    }
}
