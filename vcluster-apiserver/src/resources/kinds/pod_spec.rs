//! The pod spec, shared by every kind that holds one (pods, and the pod
//! templates of workloads, jobs and cron jobs): upstream's defaults for the
//! fields kubelets and controllers rely on, and the checks a pod must pass.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use vcluster_core::validation;

use super::fields::default_field;
use crate::error::FieldCause;

/// Fills a pod spec's defaults (`SetDefaults_PodSpec` and its containers'),
/// those of pods and of pod templates alike.
pub(super) fn default(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    default_field(map, "restartPolicy", json!("Always"));
    default_field(map, "dnsPolicy", json!("ClusterFirst"));
    default_field(map, "terminationGracePeriodSeconds", json!(30));
    default_field(map, "schedulerName", json!("default-scheduler"));
    default_field(map, "securityContext", json!({}));
    mirror_service_account(map);
    for list in ["initContainers", "containers"] {
        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                let image = container
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                default_field(container, "imagePullPolicy", json!(pull_policy(&image)));
                default_field(
                    container,
                    "terminationMessagePath",
                    json!("/dev/termination-log"),
                );
                default_field(container, "terminationMessagePolicy", json!("File"));
                default_field(container, "resources", json!({}));
                if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default_field(port, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

/// What a pod gets besides its spec's defaults, and a pod template does
/// not: service links (`SetDefaults_Pod`) and the `default` service account
/// (the ServiceAccount admission plugin).
pub(super) fn default_pod_only(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    default_field(map, "enableServiceLinks", json!(true));
    mirror_service_account(map);
}

/// A new pod without a service account runs as `default` (upstream's
/// ServiceAccount admission).
pub(super) fn default_service_account(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    default_field(map, "serviceAccountName", json!("default"));
    mirror_service_account(map);
}

/// v1's deprecated `serviceAccount` is the service account name, in both
/// directions of upstream's conversion: it fills an unset
/// `serviceAccountName`, and always shows what that holds.
fn mirror_service_account(map: &mut serde_json::Map<String, Value>) {
    let name = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let account = name(map.get("serviceAccountName")).or_else(|| name(map.get("serviceAccount")));
    if let Some(account) = account {
        map.insert("serviceAccountName".into(), json!(account));
        map.insert("serviceAccount".into(), json!(account));
    }
}

/// Defaults the pod spec of the template at `pointer`, if there is one.
/// (The template's empty `metadata: {}` is written by the serializer, as
/// Go writes a struct held by value; a default here would make the writer
/// own it.)
pub(super) fn default_template(object: &mut Value, pointer: &str) {
    if let Some(spec) = object.pointer_mut(pointer) {
        default(spec);
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise.
fn pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last_segment.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ if image.contains('@') => "IfNotPresent",
        _ => "Always",
    }
}

/// The pod's QoS class from its containers' requests and limits.
pub(super) fn qos_class(pod: &Value) -> &'static str {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut any_set = false;
    let mut all_guaranteed = !containers.is_empty();
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any_set = true;
        }
        let guaranteed = ["cpu", "memory"].iter().all(|res| {
            let limit = limits.and_then(|l| l.get(*res));
            let request = requests.and_then(|r| r.get(*res)).or(limit);
            limit.is_some() && request == limit
        });
        all_guaranteed &= guaranteed;
    }
    match (any_set, all_guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Checks a pod spec found at `at` (`spec`, `spec.template.spec`): named,
/// unique containers with images, and a known restart policy.
pub(super) fn validate(spec: Option<&Value>, at: &str, causes: &mut Vec<FieldCause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        causes.push(FieldCause::required(format!("{at}.containers")));
        return;
    };
    let mut seen = BTreeSet::new();
    for (i, container) in containers.iter().enumerate() {
        let field = format!("{at}.containers[{i}]");
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        let name_errors = validation::dns1123_label_errors(name);
        if name.is_empty() {
            causes.push(FieldCause::required(format!("{field}.name")));
        } else if !name_errors.is_empty() {
            for why in name_errors {
                causes.push(FieldCause::invalid(format!("{field}.name"), name, why));
            }
        } else if !seen.insert(name) {
            causes.push(FieldCause {
                reason: "FieldValueDuplicate",
                field: format!("{field}.name"),
                message: format!("Duplicate value: {name:?}"),
            });
        }
        if container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            causes.push(FieldCause::required(format!("{field}.image")));
        }
    }
    if let Some(policy) = spec
        .and_then(|s| s.get("restartPolicy"))
        .and_then(Value::as_str)
    {
        if !matches!(policy, "Always" | "OnFailure" | "Never") {
            causes.push(FieldCause::not_supported(
                format!("{at}.restartPolicy"),
                policy,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
}
