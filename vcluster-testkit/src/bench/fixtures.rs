//! The objects the benchmarks write: small, typical tenant objects.

use bytes::Bytes;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use serde_json::json;

/// A configmap of ~300 bytes of JSON: two labels, a sequence number and a
/// 128-byte payload.
pub fn config_map(namespace: &str, name: &str, seq: u64) -> ConfigMap {
    serde_json::from_value(config_map_json(namespace, name, seq))
        .expect("the configmap fixture is a valid ConfigMap")
}

/// [`config_map`] as JSON.
pub fn config_map_json(namespace: &str, name: &str, seq: u64) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "bench", "tier": "config"},
        },
        "data": {"seq": seq.to_string(), "payload": "x".repeat(128)},
    })
}

/// [`config_map`] as a request body.
pub fn config_map_body(namespace: &str, name: &str, seq: u64) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&config_map_json(namespace, name, seq))
            .expect("JSON values always encode"),
    )
}

/// A one-container pod that refers to nothing else (so the pod syncer
/// creates it on the host at once).
pub fn pod(namespace: &str, name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": "bench", "tier": "web"},
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "registry.example/bench/app:1.0",
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": [{"name": "MODE", "value": "bench"}],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }],
        },
    }))
    .expect("the pod fixture is a valid Pod")
}

/// A pod as a tenant's deployment makes it, with every kind of reference
/// the pod translation rewrites: configmap and secret volumes and env,
/// a projected volume, an image pull secret, an init container.
pub fn rich_pod(namespace: &str, name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "resourceVersion": "12345",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {
                "app.kubernetes.io/name": "shop",
                "app.kubernetes.io/component": "web",
                "pod-template-hash": "5d8f7c9b6",
                "tier": "frontend",
            },
            "annotations": {"kubectl.kubernetes.io/default-container": "app"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b6",
                "uid": "2c5ea4c0-4067-11e9-8bad-9b1deb4d3b7d", "controller": true,
            }],
        },
        "spec": {
            "serviceAccountName": "web",
            "imagePullSecrets": [{"name": "registry-credentials"}],
            "initContainers": [{
                "name": "migrate",
                "image": "registry.example/shop/migrate:2.1",
                "envFrom": [{"configMapRef": {"name": "db-settings"}}],
            }],
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example/shop/web:2.1",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [
                        {"name": "MODE", "value": "production"},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "FEATURES", "valueFrom": {"configMapKeyRef": {"name": "features", "key": "flags"}}},
                    ],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/shop"},
                        {"name": "tls", "mountPath": "/etc/tls"},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                },
                {
                    "name": "proxy",
                    "image": "registry.example/proxy:1.4",
                    "args": ["--upstream=127.0.0.1:8080"],
                },
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "shop-config"}},
                {"name": "tls", "secret": {"secretName": "shop-tls"}},
                {"name": "bundle", "projected": {"sources": [
                    {"configMap": {"name": "ca-bundle"}},
                    {"secret": {"name": "extra-certs"}},
                ]}},
            ],
        },
    }))
    .expect("the rich pod fixture is a valid Pod")
}
