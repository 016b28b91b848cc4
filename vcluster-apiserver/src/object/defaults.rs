//! Defaults kube-apiserver fills in on create, for the fields clients and
//! controllers rely on seeing (a pod's `restartPolicy`, a service's
//! `type`, a deployment's `replicas`, a new pod's `Pending` phase). Only a
//! useful subset of upstream defaulting is applied; `docs/apiserver.md`
//! lists it.

use serde_json::{json, Map, Value};

use crate::resources::ResourceInfo;

fn obj_mut<'a>(parent: &'a mut Value, field: &str) -> Option<&'a mut Map<String, Value>> {
    let map = parent.as_object_mut()?;
    let child = map.entry(field).or_insert_with(|| json!({}));
    if child.is_null() {
        *child = json!({});
    }
    child.as_object_mut()
}

fn default_field(map: &mut Map<String, Value>, field: &str, value: Value) {
    let slot = map.entry(field).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value;
    }
}

/// Fills the defaults of an object of `resource` about to be stored (on
/// create and on update, as upstream's decoding does).
pub fn apply_defaults(resource: &ResourceInfo, object: &mut Value) {
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => {
            if let Some(spec) = object.get_mut("spec") {
                pod_spec(spec);
            }
        }
        ("", "Service") => {
            if let Some(spec) = obj_mut(object, "spec") {
                service_spec(spec);
            }
        }
        ("", "Namespace") => {
            if let Some(spec) = obj_mut(object, "spec") {
                default_field(spec, "finalizers", json!(["kubernetes"]));
            }
            let name = super::name(object).to_owned();
            if let Some(labels) = obj_mut(&mut object["metadata"], "labels") {
                labels.insert("kubernetes.io/metadata.name".into(), Value::String(name));
            }
        }
        ("", "PersistentVolumeClaim") | ("", "PersistentVolume") => {
            if let Some(spec) = obj_mut(object, "spec") {
                default_field(spec, "volumeMode", json!("Filesystem"));
            }
        }
        ("", "Secret") => {
            if let Some(map) = object.as_object_mut() {
                default_field(map, "type", json!("Opaque"));
            }
        }
        ("apps", kind @ ("Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")) => {
            workload(kind, object);
        }
        ("batch", "Job") => job(object),
        ("batch", "CronJob") => {
            if let Some(spec) = obj_mut(object, "spec") {
                default_field(spec, "concurrencyPolicy", json!("Allow"));
                default_field(spec, "suspend", json!(false));
                default_field(spec, "successfulJobsHistoryLimit", json!(3));
                default_field(spec, "failedJobsHistoryLimit", json!(1));
            }
            if let Some(template_spec) = object.pointer_mut("/spec/jobTemplate/spec/template/spec")
            {
                pod_spec(template_spec);
            }
        }
        _ => {}
    }
}

/// Sets the status a new object starts with. Clients cannot create an
/// object that claims to be running already; whoever owns the status (the
/// kubelet, a controller, the syncer) reports it through `/status`.
/// Nodes keep theirs, as upstream allows.
pub fn set_initial_status(resource: &ResourceInfo, object: &mut Value) {
    let status = match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => json!({"phase": "Pending", "qosClass": qos_class(object)}),
        ("", "Service") => json!({"loadBalancer": {}}),
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolumeClaim") | ("", "PersistentVolume") => json!({"phase": "Pending"}),
        ("", "Node") => return,
        _ if resource.status_subresource => json!({}),
        _ => return,
    };
    if let Some(map) = object.as_object_mut() {
        if status.as_object().is_some_and(|s| s.is_empty()) {
            map.remove("status");
        } else {
            map.insert("status".into(), status);
        }
    }
}

/// Job defaults, and the selector upstream generates: unless the job
/// asks for `manualSelector`, its pods are selected by the job's uid, so
/// two jobs never adopt each other's pods.
fn job(object: &mut Value) {
    let uid = super::meta_str(object, "uid").to_owned();
    let name = super::name(object).to_owned();
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
    if let Some(template_spec) = object.pointer_mut("/spec/template/spec") {
        pod_spec(template_spec);
    }
}

fn pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    default_field(map, "restartPolicy", json!("Always"));
    default_field(map, "dnsPolicy", json!("ClusterFirst"));
    default_field(map, "terminationGracePeriodSeconds", json!(30));
    default_field(map, "schedulerName", json!("default-scheduler"));
    default_field(map, "securityContext", json!({}));
    default_field(map, "enableServiceLinks", json!(true));
    default_field(map, "serviceAccountName", json!("default"));
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
fn qos_class(pod: &Value) -> &'static str {
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

fn service_spec(spec: &mut Map<String, Value>) {
    default_field(spec, "type", json!("ClusterIP"));
    default_field(spec, "sessionAffinity", json!("None"));
    let service_type = spec.get("type").and_then(Value::as_str).unwrap_or("");
    if service_type == "ExternalName" {
        return;
    }
    if matches!(service_type, "NodePort" | "LoadBalancer") {
        default_field(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    default_field(spec, "internalTrafficPolicy", json!("Cluster"));
    default_field(spec, "ipFamilies", json!(["IPv4"]));
    default_field(spec, "ipFamilyPolicy", json!("SingleStack"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            default_field(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                default_field(port, "targetPort", number);
            }
        }
    }
}

fn workload(kind: &str, object: &mut Value) {
    let Some(spec) = obj_mut(object, "spec") else {
        return;
    };
    if kind != "DaemonSet" {
        default_field(spec, "replicas", json!(1));
    }
    match kind {
        "Deployment" => {
            default_field(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            default_field(spec, "revisionHistoryLimit", json!(10));
            default_field(spec, "progressDeadlineSeconds", json!(600));
        }
        "StatefulSet" => {
            default_field(spec, "podManagementPolicy", json!("OrderedReady"));
            default_field(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_field(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            default_field(spec, "revisionHistoryLimit", json!(10));
        }
        "DaemonSet" => {
            default_field(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            default_field(spec, "revisionHistoryLimit", json!(10));
        }
        _ => {}
    }
    if let Some(template_spec) = object.pointer_mut("/spec/template/spec") {
        pod_spec(template_spec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Catalog;

    fn defaulted(group: &str, plural: &str, mut object: Value) -> Value {
        let info = Catalog::builtin().get(group, "v1", plural).expect("served");
        apply_defaults(&info, &mut object);
        set_initial_status(&info, &mut object);
        object
    }

    #[test]
    fn pods_get_kubelet_facing_defaults_and_a_pending_status() {
        let pod = defaulted(
            "",
            "pods",
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}, {"name": "d", "image": "busybox"}]}, "status": {"phase": "Running"}}),
        );
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["spec"]["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn qos_follows_requests_and_limits() {
        let guaranteed = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let burstable =
            json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(qos_class(&burstable), "Burstable");
    }

    #[test]
    fn services_default_type_and_target_ports() {
        let svc = defaulted(
            "",
            "services",
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
        );
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn jobs_get_a_uid_selector_and_keep_work_queue_semantics() {
        let job = defaulted(
            "batch",
            "jobs",
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
            "batch",
            "jobs",
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
            "batch",
            "jobs",
            json!({"metadata": {"name": "j", "uid": "u-3"}, "spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(manual["spec"]["selector"]["matchLabels"], json!({"a": "b"}));
    }

    #[test]
    fn namespaces_are_active_and_labelled_with_their_name() {
        let ns = defaulted("", "namespaces", json!({"metadata": {"name": "team-a"}}));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
    }

    #[test]
    fn deployments_get_replicas_and_a_rolling_strategy() {
        let d = defaulted(
            "apps",
            "deployments",
            json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }
}
