//! Objects the syncer scenarios write, and ways to look at what the syncer
//! made of them on the host.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;

use super::Host;

/// A typed object from JSON (test fixtures).
pub fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a valid test object")
}

/// A pod with one container, mounting configmap `config_map` if given.
pub fn test_pod(name: &str, config_map: Option<&str>, labels: &[(&str, &str)]) -> Pod {
    let mut spec = serde_json::json!({"containers": [{"name": "app", "image": "nginx:1.27"}]});
    if let Some(cm) = config_map {
        spec["volumes"] = serde_json::json!([{"name": "cfg", "configMap": {"name": cm}}]);
    }
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .expect("pod")
}

/// A configmap with one data key.
pub fn test_config_map(name: &str, value: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"key": value},
    }))
    .expect("configmap")
}

/// The host objects managed by virtual cluster `vcluster`, grouped by the
/// virtual object they are a copy of (`(namespace, name)` from the
/// `object-namespace` / `object-name` annotations).
pub fn copies_by_virtual_key<K: kube::Resource + Clone>(
    objects: &[K],
    vcluster: &str,
) -> BTreeMap<(String, String), Vec<K>> {
    use vcluster_core::markers::{
        MANAGED_BY_LABEL, OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION,
    };
    let mut out: BTreeMap<(String, String), Vec<K>> = BTreeMap::new();
    for object in objects {
        let meta = object.meta();
        let managed_by = meta.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL));
        if managed_by.map(String::as_str) != Some(vcluster) {
            continue;
        }
        let annotations = meta.annotations.clone().unwrap_or_default();
        let key = (
            annotations
                .get(OBJECT_NAMESPACE_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
            annotations
                .get(OBJECT_NAME_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
        );
        out.entry(key).or_default().push(object.clone());
    }
    out
}

/// `namespace/name` of every object on `host` (pods, configmaps, secrets,
/// services, serviceaccounts, endpoints, PVCs) that carries a `managed-by`
/// marker but lies outside `host_namespace`: must always be empty.
pub async fn managed_outside(host: &Host, host_namespace: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::{
        Endpoints, PersistentVolumeClaim, Secret, Service, ServiceAccount,
    };
    use vcluster_core::markers::MANAGED_BY_LABEL;

    async fn outside<K>(host: &Host, host_namespace: &str, out: &mut Vec<String>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::all(host.client.clone());
        let list = api
            .list(&kube::api::ListParams::default().labels(MANAGED_BY_LABEL))
            .await
            .expect("list across namespaces");
        for object in list.items {
            let meta = object.meta();
            let namespace = meta.namespace.clone().unwrap_or_default();
            if namespace != host_namespace {
                out.push(format!(
                    "{}/{}",
                    namespace,
                    meta.name.clone().unwrap_or_default()
                ));
            }
        }
    }
    let mut out = Vec::new();
    outside::<Pod>(host, host_namespace, &mut out).await;
    outside::<ConfigMap>(host, host_namespace, &mut out).await;
    outside::<Secret>(host, host_namespace, &mut out).await;
    outside::<Service>(host, host_namespace, &mut out).await;
    outside::<ServiceAccount>(host, host_namespace, &mut out).await;
    outside::<Endpoints>(host, host_namespace, &mut out).await;
    outside::<PersistentVolumeClaim>(host, host_namespace, &mut out).await;
    out
}

/// The condition of type `kind` of a pod, if it has one.
pub fn pod_condition(pod: &Pod, kind: &str) -> Option<k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .cloned()
}
