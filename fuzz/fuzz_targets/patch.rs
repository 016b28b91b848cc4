//! Patches (`PATCH` with JSON patch, JSON merge patch or strategic merge
//! patch): the registry's patch function on a few stored-object shapes,
//! with any patch body, never panics and never recurses without bound.
//! The first byte picks the patch kind and the target document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use vcluster_apiserver::registry::{apply_patch, PatchKind};

fuzz_target!(|data: &[u8]| {
    let Some((&which, patch)) = data.split_first() else {
        return;
    };
    let kind = match which % 3 {
        0 => PatchKind::Json,
        1 => PatchKind::Merge,
        _ => PatchKind::StrategicMerge,
    };
    let documents = [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}, "finalizers": ["x"]}, "data": {"k": "v"}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}],
                "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "emptyDir": {}}], "tolerations": [{"key": "k"}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": [1, 2, {"b": null}]}}),
    ];
    let document = &documents[usize::from(which / 3) % documents.len()];
    if let Ok(patched) = apply_patch(document, kind, patch) {
        let _ = serde_json::to_vec(&patched);
    }
});
