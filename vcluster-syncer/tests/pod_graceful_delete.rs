//! Graceful pod deletion across the syncer: a virtual pod bound to a node
//! is only marked when deleted (the API server keeps it with
//! `deletionTimestamp`); the syncer deletes the host pod, the host's node
//! (a tiny kubelet stand-in here) finishes it, and the syncer then deletes
//! the virtual pod with grace 0. Every wait has a deadline.

mod common;

use common::{eventually, Environment, HostKind};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

on_both_hosts!(deleting_a_bound_virtual_pod_waits_for_the_host_and_then_completes,);

/// What a kubelet does for these tests: binds pending host pods to `node`
/// and deletes pods of that node for good (grace 0) once they are being
/// deleted.
fn kubelet(client: kube::Client, namespace: String, node: &'static str) -> CancellationToken {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client, &namespace);
        let stream = watcher(pods.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        loop {
            let pod = tokio::select! {
                _ = stop.cancelled() => return,
                item = stream.next() => match item {
                    Some(Ok(pod)) => pod,
                    Some(Err(_)) => continue,
                    None => return,
                },
            };
            let Some(name) = pod.metadata.name.clone() else {
                continue;
            };
            let bound = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            if pod.metadata.deletion_timestamp.is_some() {
                if bound.as_deref() == Some(node) {
                    let params = DeleteParams {
                        grace_period_seconds: Some(0),
                        preconditions: Some(Preconditions {
                            uid: pod.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    let _ = pods.delete(&name, &params).await;
                }
            } else if bound.is_none() {
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                });
                let _ = pods
                    .create_subresource::<Value, Value>(
                        "binding",
                        &name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await;
            }
        }
    });
    cancel
}

async fn deleting_a_bound_virtual_pod_waits_for_the_host_and_then_completes(host: HostKind) {
    let env = Environment::start(host, "vc-grace").await;
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    let node = kubelet(
        env.host.client.clone(),
        env.host_namespace.clone(),
        "node-1",
    );

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
        (p.spec?.node_name.as_deref() == Some("node-1")).then_some(())
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
    eventually("the host pod gone", || async {
        hpods
            .get_opt(&host_name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    eventually("the virtual pod gone", || async {
        vpods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    node.cancel();
}
