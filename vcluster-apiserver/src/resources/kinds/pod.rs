//! Pods (core/v1): kubelet-facing defaults, a `Pending` phase and QoS class
//! on create, an update that may change images only, and graceful deletion.

use k8s_openapi::api::core;
use serde_json::{json, Value};

use super::{pod_spec, BuiltinKind};
use crate::error::FieldCause;
use crate::object;
use crate::resources::Typed;
use crate::resources::strategy::{
    bool_field_value, generic_field_value, Strategy, Subresource,
};
use crate::resources::table::{columns, pod, Printer};

/// The Pod kind.
pub(super) const KIND: BuiltinKind =
    BuiltinKind::namespaced("", "pods", "Pod", Typed::of::<core::v1::Pod>(), &Pods)
        .short_names(&["po"])
        .in_all()
        .with_status()
        .subresources(&[ATTACH, BINDING, EPHEMERAL_CONTAINERS, EVICTION, EXEC, LOG, PORT_FORWARD]);

/// The rules of Pod objects.
#[derive(Debug)]
struct Pods;

impl Strategy for Pods {
    /// Old kubelets corrupted owner references through `/status`;
    /// upstream keeps the stored ones there.
    fn prepare_for_status_update(&self, old: &Value, new: &mut Value) {
        super::fields::keep_stored_metadata(old, new, "ownerReferences");
    }

    fn returns_deleted_object(&self) -> bool {
        true
    }

    fn default(&self, object: &mut Value) {
        if let Some(spec) = object.get_mut("spec") {
            pod_spec::default(spec);
            pod_spec::default_pod_only(spec);
        }
    }

    /// What upstream's ServiceAccount and DefaultTolerationSeconds
    /// admission add to a new pod.
    fn prepare_for_create(&self, object: &mut Value) {
        if let Some(spec) = object.get_mut("spec") {
            pod_spec::default_service_account(spec);
            default_toleration_seconds(spec);
        }
    }

    fn initial_status(&self, object: &Value) -> Option<Value> {
        Some(json!({"phase": "Pending", "qosClass": pod_spec::qos_class(object)}))
    }

    fn validate(&self, object: &Value, causes: &mut Vec<FieldCause>) {
        pod_spec::validate(object.get("spec"), "spec", causes);
    }

    fn validate_update(&self, old: &Value, new: &Value, causes: &mut Vec<FieldCause>) {
        if !only_added_tolerations(old, new) {
            causes.push(FieldCause::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
        if mutable_spec_removed(old) != mutable_spec_removed(new) {
            causes.push(FieldCause::forbidden("spec", IMMUTABLE_SPEC));
        }
    }

    fn grace_period(&self, old: &Value, requested: Option<i64>) -> Option<i64> {
        let unsigned = |g: i64| if g < 0 { 1 } else { g };
        let period = requested.map(unsigned).unwrap_or_else(|| {
            old.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .map(unsigned)
                .unwrap_or(0)
        });
        let unscheduled = object::path_str(old, "spec.nodeName").is_empty();
        let done = matches!(
            object::path_str(old, "status.phase"),
            "Succeeded" | "Failed"
        );
        // Nobody runs it (or it is done): nothing to wait for.
        Some(if unscheduled || done { 0 } else { period })
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }

    fn field_value(&self, object: &Value, field: &str) -> String {
        match field {
            "spec.hostNetwork" => bool_field_value(object, field),
            _ => generic_field_value(object, field),
        }
    }

    fn printer(&self) -> Option<Printer> {
        Some(Printer::new(columns::POD, pod::print))
    }
}

/// `pods/binding`: how a scheduler assigns a pod to a node.
const BINDING: Subresource = Subresource {
    name: "binding",
    kind: "Binding",
    verbs: &["create"],
};

/// `pods/ephemeralcontainers`: debugging containers added to a running
/// pod (`kubectl debug`); they can be added, never changed or removed.
const EPHEMERAL_CONTAINERS: Subresource = Subresource {
    name: "ephemeralcontainers",
    kind: "Pod",
    verbs: &["get", "patch", "update"],
};

/// `pods/eviction`: a policy/v1 `Eviction` deletes the pod unless its
/// disruption budget forbids (`Registry::evict_pod`).
const EVICTION: Subresource = Subresource {
    name: "eviction",
    kind: "Eviction",
    verbs: &["create"],
};

/// `pods/attach`, `pods/exec`, `pods/portforward`: container streams,
/// served from `ApiServerConfig::container_streams` (see
/// `vcluster_streams`); `get` for WebSocket clients, `create` for SPDY.
const ATTACH: Subresource = Subresource {
    name: "attach",
    kind: "PodAttachOptions",
    verbs: &["create", "get"],
};

/// See [`ATTACH`].
const EXEC: Subresource = Subresource {
    name: "exec",
    kind: "PodExecOptions",
    verbs: &["create", "get"],
};

/// See [`ATTACH`].
const PORT_FORWARD: Subresource = Subresource {
    name: "portforward",
    kind: "PodPortForwardOptions",
    verbs: &["create", "get"],
};

/// `pods/log`: served from `ApiServerConfig::pod_logs` (see `crate::logs`).
const LOG: Subresource = Subresource {
    name: "log",
    kind: "Pod",
    verbs: &["get"],
};

const IMMUTABLE_SPEC: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod's spec without the fields an update may change.
fn mutable_spec_removed(pod: &Value) -> Value {
    let mut spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    for list in ["containers", "initContainers"] {
        if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.remove("image");
            }
        }
    }
    if let Some(map) = spec.as_object_mut() {
        map.remove("activeDeadlineSeconds");
        map.remove("tolerations");
        map.remove("terminationGracePeriodSeconds");
    }
    spec
}

/// Every toleration of `old` is still in `new`, up to its
/// `tolerationSeconds`: an update may only add tolerations.
fn only_added_tolerations(old: &Value, new: &Value) -> bool {
    let list = |pod: &Value| -> Vec<Value> {
        pod.pointer("/spec/tolerations")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|t| {
                        let mut t = t.clone();
                        if let Some(map) = t.as_object_mut() {
                            map.remove("tolerationSeconds");
                        }
                        t
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let after = list(new);
    list(old).iter().all(|t| after.contains(t))
}

/// A pod tolerates a not-ready or unreachable node for five minutes before
/// it is evicted, unless it says otherwise (the DefaultTolerationSeconds
/// admission plugin, on creates and updates).
fn default_toleration_seconds(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    let list = map.entry("tolerations").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let tolerated = list.iter().any(|t| {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            let own_key = t.get("key").and_then(Value::as_str).unwrap_or("");
            (effect.is_empty() || effect == "NoExecute") && (own_key == key || own_key.is_empty())
        });
        if !tolerated {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds::{defaulted, invalid_fields};

    #[test]
    fn pods_get_kubelet_facing_defaults_and_a_pending_status() {
        let pod = defaulted(
            &KIND,
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
        assert_eq!(pod["spec"]["serviceAccount"], "default");
        let keys: Vec<&str> = pod["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["key"].as_str())
            .collect();
        assert_eq!(
            keys,
            ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
        );
        let mut fewer = pod.clone();
        fewer["spec"]["tolerations"] = json!([pod["spec"]["tolerations"][0].clone()]);
        let mut causes = Vec::new();
        KIND.strategy.validate_update(&pod, &fewer, &mut causes);
        assert_eq!(causes[0].field, "spec.tolerations");
    }

    #[test]
    fn qos_follows_requests_and_limits() {
        let guaranteed = json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        assert_eq!(pod_spec::qos_class(&guaranteed), "Guaranteed");
        let burstable =
            json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}});
        assert_eq!(pod_spec::qos_class(&burstable), "Burstable");
    }

    #[test]
    fn pods_need_named_containers_with_images() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}, {"image": "x"}]}});
        assert_eq!(
            invalid_fields(&KIND, &pod),
            ["spec.containers[0].image", "spec.containers[1].name"]
        );
        let ok = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        assert!(invalid_fields(&KIND, &ok).is_empty());
    }

    #[test]
    fn updates_may_change_images_but_not_the_rest_of_the_spec() {
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a"}], "nodeName": "n"}});
        let image = json!({"spec": {"containers": [{"name": "c", "image": "b"}], "nodeName": "n"}});
        let node = json!({"spec": {"containers": [{"name": "c", "image": "a"}], "nodeName": "m"}});
        let mut causes = Vec::new();
        KIND.strategy.validate_update(&old, &image, &mut causes);
        assert!(causes.is_empty());
        KIND.strategy.validate_update(&old, &node, &mut causes);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].reason, "FieldValueForbidden");
    }

    #[test]
    fn only_running_pods_wait_for_their_grace_period() {
        let running = json!({"spec": {"nodeName": "n", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(KIND.strategy.grace_period(&running, None), Some(30));
        assert_eq!(KIND.strategy.grace_period(&running, Some(-5)), Some(1));
        let pending = json!({"spec": {"terminationGracePeriodSeconds": 30}});
        assert_eq!(KIND.strategy.grace_period(&pending, None), Some(0));
        let done = json!({"spec": {"nodeName": "n"}, "status": {"phase": "Succeeded"}});
        assert_eq!(KIND.strategy.grace_period(&done, Some(10)), Some(0));
    }
}
