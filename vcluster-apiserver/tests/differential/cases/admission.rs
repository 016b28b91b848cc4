//! The admission plugins that read other objects: LimitRanger's defaults
//! and bounds, ResourceQuota's charges and refusals, Priority's classes.
//! The compared kube-apiserver runs no quota controller, so the scenario
//! writes the quota's status itself, on both servers alike (a quota
//! without `status.hard` charges nothing).

use serde_json::{json, Value};

use crate::case::{Scenario, Step};

const PODS: &str = "/api/v1/namespaces/{ns}/pods";
const QUOTA: &str = "/api/v1/namespaces/{ns}/resourcequotas/compute";

fn pod(name: &str, spec_extra: Value, resources: Value) -> String {
    let mut spec =
        json!({"containers": [{"name": "app", "image": "nginx", "resources": resources}]});
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), spec_extra) {
        spec.extend(extra);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}).to_string()
}

pub fn admission() -> Scenario {
    let hard = json!({"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi"});
    Scenario::new(
        "admission",
        vec![
            Step::post(
                "admission/create-quota",
                "/api/v1/namespaces/{ns}/resourcequotas",
                json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"}, "spec": {"hard": hard}}).to_string(),
            ),
            Step::post(
                "admission/quota-bad-scope",
                "/api/v1/namespaces/{ns}/resourcequotas",
                json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "scoped"},
                    "spec": {"hard": {"cpu": "1"}, "scopes": ["BestEffort"]}})
                .to_string(),
            ),
            Step::post("admission/quota-without-status", PODS, pod("early", json!({}), json!({}))),
            Step::get("admission/read-quota", QUOTA).setup(),
            Step::put(
                "admission/write-quota-status",
                format!("{QUOTA}/status"),
                json!({"apiVersion": "v1", "kind": "ResourceQuota",
                    "metadata": {"name": "compute", "resourceVersion": "{rv}"},
                    "spec": {"hard": hard},
                    "status": {"hard": hard, "used": {"pods": "1", "requests.cpu": "900m", "limits.memory": "0"}}})
                .to_string(),
            ),
            // kube-apiserver's quota admission reads quotas from its
            // informer, which sees the status just written a moment later.
            Step::post("admission/quota-must-specify", PODS, pod("bare", json!({}), json!({})))
                .until(403),
            Step::post(
                "admission/create-limit-range",
                "/api/v1/namespaces/{ns}/limitranges",
                json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
                    "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"},
                        "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"}}]}})
                .to_string(),
            ),
            Step::post("admission/pod-defaulted", PODS, pod("defaulted", json!({}), json!({}))),
            Step::get("admission/quota-charged", QUOTA),
            Step::post("admission/quota-exceeded", PODS, pod("over", json!({}), json!({}))),
            Step::post(
                "admission/limit-exceeded",
                PODS,
                pod("too-big", json!({}), json!({"limits": {"cpu": "2"}})),
            ),
            Step::post(
                "admission/unknown-priority-class",
                PODS,
                pod("classless", json!({"priorityClassName": "nope"}), json!({})),
            ),
            Step::post(
                "admission/priority-disagrees",
                PODS,
                pod("prioritized", json!({"priority": 5}), json!({})),
            ),
            Step::get(
                "admission/system-priority-class",
                "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical",
            ),
            Step::delete(
                "admission/delete-system-priority-class",
                "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical",
            ),
            Step::post(
                "admission/create-storage-limit-range",
                "/api/v1/namespaces/{ns}/limitranges",
                json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "storage"},
                    "spec": {"limits": [{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]}})
                .to_string(),
            )
            .setup(),
            Step::post(
                "admission/claim-above-max",
                "/api/v1/namespaces/{ns}/persistentvolumeclaims",
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "huge"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}})
                .to_string(),
            ),
        ],
    )
}
