//! Graceful pod deletion across the syncer: a virtual pod bound to a node
//! is only marked when deleted (the API server keeps it with
//! `deletionTimestamp`); the syncer deletes the host pod, the host's node
//! (the simulated node) finishes it, and the syncer then deletes
//! the virtual pod with grace 0. Every wait has a deadline.

mod common;

use common::{eventually, Environment, HostKind};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use vcluster_testkit::eventually_gone;

on_both_hosts!(deleting_a_bound_virtual_pod_waits_for_the_host_and_then_completes,);

async fn deleting_a_bound_virtual_pod_waits_for_the_host_and_then_completes(host: HostKind) {
    let env = Environment::start(host, "vc-grace").await;
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    let (node, _running) = env.host.node().await;

    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }))
    .expect("pod");
    vpods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let host_name = env.host_name("default", "web");
    // The host pod is bound; the syncer binds the virtual pod likewise.
    eventually("the virtual pod bound to the host's node", || async {
        let p = vpods.get("web").await.ok()?;
        (p.spec?.node_name.as_deref() == Some(node.as_str())).then_some(())
    })
    .await;

    // A graceful delete only marks the bound virtual pod...
    let answer = vpods
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("the marked pod comes back");
    assert_eq!(answer.metadata.deletion_grace_period_seconds, Some(30));
    // ...the syncer deletes the host pod, the node finishes it, and the
    // syncer then removes the virtual pod.
    eventually_gone("the host pod gone", &hpods, &host_name).await;
    eventually_gone("the virtual pod gone", &vpods, "web").await;
}
