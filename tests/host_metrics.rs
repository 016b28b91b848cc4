//! The autoscaler's metrics from the host: [`HostPodMetrics`] reads the
//! host namespace's `metrics.k8s.io` pod metrics through the host API and
//! answers for virtual pods by their host names; a host without the
//! metrics API leaves the answer to the fallback source. The host here is our API
//! server with `metrics.k8s.io/v1beta1` `PodMetrics` served from a CRD, a
//! stand-in for metrics-server that answers the same list request.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use vcluster::controllers::hpa::{FixedUsage, MetricsSource};
use vcluster::core::{SingleNamespaceTranslator, Translator, VirtualKey};
use vcluster::metrics::HostPodMetrics;
use vcluster_testkit::cluster::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_pods_get_their_host_pods_usage() {
    let host = Cluster::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(host.client());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": "pods.metrics.k8s.io"},
        "spec": {
            "group": "metrics.k8s.io",
            "scope": "Namespaced",
            "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics"},
            "versions": [{"name": "v1beta1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }))
    .expect("crd");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    host.create_namespace("vcluster-vc").await;

    let translator: Arc<dyn Translator> =
        Arc::new(SingleNamespaceTranslator::new("vc", "vcluster-vc").expect("translator"));
    let host_name = translator
        .host_key(&VirtualKey::namespaced("shop", "web-1"))
        .expect("host key")
        .name()
        .to_owned();
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    );
    let metrics: Api<DynamicObject> = Api::namespaced_with(host.client(), "vcluster-vc", &resource);
    let sample = serde_json::from_value(json!({
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": host_name},
        "timestamp": "2026-12-06T12:00:00Z",
        "window": "15s",
        "containers": [{"name": "web", "usage": {"cpu": "250m", "memory": "64Mi"}},
                       {"name": "sidecar", "usage": {"cpu": "10000000n", "memory": "8Mi"}}],
    }))
    .expect("metrics");
    // The CRD takes a moment to be served.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(err) = metrics.create(&PostParams::default(), &sample).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pod metrics not served: {err}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let source =
        Arc::new(HostPodMetrics::new(translator).with_fallback(Arc::new(FixedUsage::cpu(777))));
    let cancel = CancellationToken::new();
    let task = source.spawn(
        host.client(),
        "vcluster-vc",
        Duration::from_millis(50),
        cancel.clone(),
    );
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}]},
    }))
    .expect("pod");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let usage = loop {
        match source.pod_usage(&pod, "cpu") {
            // Until the first read, the fallback answers (for running
            // pods only, and this one is not running).
            Some(usage) if usage.get("web") != Some(&777) => break usage,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no usage read from the host"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(usage["web"], 250);
    assert_eq!(usage["sidecar"], 10, "nanocores are read as millicores");
    let memory = source.pod_usage(&pod, "memory").expect("memory");
    assert_eq!(memory["web"], 64 * 1024 * 1024 * 1000);

    // A pod the host has no metrics for has none.
    let other: Pod = serde_json::from_value(json!({
        "metadata": {"name": "api-1", "namespace": "shop"},
        "spec": {"containers": [{"name": "api", "image": "api"}]},
    }))
    .expect("pod");
    assert!(source.pod_usage(&other, "cpu").is_none());
    cancel.cancel();
    task.await.expect("the poller stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_metrics_api_the_fallback_answers() {
    let host = Cluster::start().await;
    let translator: Arc<dyn Translator> =
        Arc::new(SingleNamespaceTranslator::new("vc", "vcluster-vc").expect("translator"));
    let source =
        Arc::new(HostPodMetrics::new(translator).with_fallback(Arc::new(FixedUsage::cpu(300))));
    let cancel = CancellationToken::new();
    let task = source.spawn(
        host.client(),
        "vcluster-vc",
        Duration::from_millis(20),
        cancel.clone(),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let running: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        "status": {"phase": "Running"},
    }))
    .expect("pod");
    let usage = source
        .pod_usage(&running, "cpu")
        .expect("the fallback's usage");
    assert_eq!(usage["web"], 300);
    cancel.cancel();
    task.await.expect("the poller stops");
}
