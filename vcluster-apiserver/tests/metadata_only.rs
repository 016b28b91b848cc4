//! Metadata-only clients (kube-rs' `get_metadata`, `list_metadata`,
//! `patch_metadata`, client-go's metadata informers) ask for
//! `PartialObjectMetadata`: every verb answers in that form, as
//! kube-apiserver does. This is kube-rs's own `can_operate_on_pod_metadata`
//! cluster test, on our server.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMetaExt;
use kube::ResourceExt;
use serde_json::json;
use vcluster_testkit::cluster::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_clients_get_list_and_patch_partial_objects() {
    let cluster = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "busybox-kube-meta", "labels": {"app": "kube-rs-test"}},
        "spec": {"containers": [{"name": "busybox", "image": "busybox:1.34.1"}]},
    }))
    .expect("a pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");

    let got = pods.get_metadata("busybox-kube-meta").await.expect("get");
    assert_eq!(
        got.labels().get("app").map(String::as_str),
        Some("kube-rs-test")
    );
    let types = got.types.expect("typed");
    assert_eq!(
        (types.kind.as_str(), types.api_version.as_str()),
        ("PartialObjectMetadata", "meta.k8s.io/v1")
    );

    let listed = pods
        .list_metadata(&ListParams::default())
        .await
        .expect("list");
    assert!(listed
        .items
        .iter()
        .any(|p| p.name_any() == "busybox-kube-meta"));

    // The patch body itself is a PartialObjectMetadata, as kube-rs sends it.
    let patch = ObjectMeta {
        annotations: Some([("test".to_owned(), "123".to_owned())].into()),
        ..ObjectMeta::default()
    }
    .into_request_partial::<Pod>();
    let patched = pods
        .patch_metadata(
            "busybox-kube-meta",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch the metadata");
    assert_eq!(
        patched.annotations().get("test").map(String::as_str),
        Some("123")
    );
    let types = patched.types.expect("typed");
    assert_eq!(
        (types.kind.as_str(), types.api_version.as_str()),
        ("PartialObjectMetadata", "meta.k8s.io/v1")
    );
    // The stored pod is still a pod, with its spec.
    let stored = pods.get("busybox-kube-meta").await.expect("get the pod");
    assert_eq!(
        stored.annotations().get("test").map(String::as_str),
        Some("123")
    );
    assert_eq!(
        stored.spec.expect("spec").containers[0].image.as_deref(),
        Some("busybox:1.34.1")
    );
}
