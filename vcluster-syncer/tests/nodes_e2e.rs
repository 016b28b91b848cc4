//! End to end: the virtual cluster shows the host nodes its pods run on,
//! as copies or as fake nodes, and only while they do. Every wait has a
//! deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use vcluster_syncer::syncers::nodes::{NodeMode, FAKE_NODE_LABEL};
use vcluster_syncer::syncers::FROM_HOST_LABEL;
use vcluster_testkit::eventually_gone;

on_both_hosts!(
    nodes_running_tenant_pods_are_shown_while_they_do,
    fake_nodes_show_no_host_details,
);

fn host_node(name: &str) -> Node {
    object(json!({
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "eu-1a"}},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": "192.168.0.10"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }))
}

/// A pod the test schedules itself (the real host's simulated node stands
/// in for the default scheduler and leaves it alone).
fn pod(name: &str) -> Pod {
    object(json!({
        "metadata": {"name": name},
        "spec": {
            "schedulerName": "test-scheduler",
            "containers": [{"name": "app", "image": "nginx"}],
        },
    }))
}

/// Creates a virtual pod and schedules its host copy onto `node`.
async fn run_pod_on(env: &Environment, name: &str, node: &str) {
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    vpods
        .create(&PostParams::default(), &pod(name))
        .await
        .expect("pod");
    let host_name = env.host_name("default", name);
    eventually("the host pod", || async {
        hpods.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": host_name, "namespace": env.host_namespace},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    hpods
        .create_subresource::<Value, Value>("binding", &host_name, &PostParams::default(), &binding)
        .await
        .expect("bind the host pod");
}

async fn nodes_running_tenant_pods_are_shown_while_they_do(host: HostKind) {
    let env = Environment::start_with(host, "node1", |_| {}).await;
    let hnodes = env.host.cluster_api::<Node>();
    let vnodes = env.virtual_cluster.cluster_api::<Node>();
    for name in ["worker-1", "worker-2"] {
        hnodes
            .create(&PostParams::default(), &host_node(name))
            .await
            .expect("host node");
    }
    // A tenant's own node (e.g. made by hand) is never touched.
    vnodes
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "own"}})),
        )
        .await
        .expect("tenant node");

    run_pod_on(&env, "web", "worker-1").await;
    let node = eventually("the virtual node", || async {
        vnodes.get_opt("worker-1").await.ok().flatten()
    })
    .await;
    let labels = node.metadata.labels.clone().expect("labels");
    assert_eq!(labels["topology.kubernetes.io/zone"], "eu-1a");
    assert_eq!(labels[FROM_HOST_LABEL], "true");
    eventually("the virtual node's status", || async {
        let n = vnodes.get("worker-1").await.ok()?;
        let status = n.status?;
        (status.capacity?.get("cpu")?.0 == "4" && status.conditions?.first()?.type_ == "Ready")
            .then_some(())
    })
    .await;
    // The virtual pod shows the node.
    eventually("the virtual pod bound", || async {
        let p = env
            .virtual_cluster
            .api::<Pod>("default")
            .get("web")
            .await
            .ok()?;
        (p.spec?.node_name.as_deref() == Some("worker-1")).then_some(())
    })
    .await;

    // Host status and labels follow.
    hnodes
        .patch_status(
            "worker-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"capacity": {"cpu": "8"}}})),
        )
        .await
        .expect("host status");
    hnodes
        .patch(
            "worker-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"pool": "big"}}})),
        )
        .await
        .expect("host labels");
    eventually("the virtual node updated", || async {
        let n = vnodes.get("worker-1").await.ok()?;
        (n.status?.capacity?.get("cpu")?.0 == "8"
            && n.metadata.labels?.get("pool").map(String::as_str) == Some("big"))
        .then_some(())
    })
    .await;
    assert!(
        vnodes.get_opt("worker-2").await.expect("get").is_none(),
        "a node without tenant pods stays hidden"
    );

    // The last tenant pod leaves: the virtual node goes. The pod is bound,
    // so its deletion is graceful on both sides; there is no kubelet here,
    // so the test confirms the host pod's end as a kubelet would.
    env.virtual_cluster
        .api::<Pod>("default")
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete pod");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    let host_pod_name = env.host_name("default", "web");
    eventually("the host pod terminating", || async {
        let p = hpods.get_opt(&host_pod_name).await.ok()?;
        p.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    match hpods
        .delete(&host_pod_name, &DeleteParams::default().grace_period(0))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => panic!("kubelet-style delete: {err}"),
    }
    eventually_gone("the virtual node gone", &vnodes, "worker-1").await;
    assert!(vnodes.get_opt("own").await.expect("get").is_some());
}

async fn fake_nodes_show_no_host_details(host: HostKind) {
    let env = Environment::start_with(host, "node2", |c| c.node_mode = NodeMode::fake()).await;
    let hnodes = env.host.cluster_api::<Node>();
    let vnodes = env.virtual_cluster.cluster_api::<Node>();
    hnodes
        .create(&PostParams::default(), &host_node("worker-3"))
        .await
        .expect("host node");
    run_pod_on(&env, "web", "worker-3").await;
    let node = eventually("the fake node", || async {
        vnodes.get_opt("worker-3").await.ok().flatten()
    })
    .await;
    let labels = node.metadata.labels.clone().expect("labels");
    assert_eq!(labels[FAKE_NODE_LABEL], "true");
    assert!(!labels.contains_key("topology.kubernetes.io/zone"));
    let node = eventually("the fake node's status", || async {
        let n = vnodes.get("worker-3").await.ok()?;
        n.status.as_ref()?.capacity.as_ref()?;
        Some(n)
    })
    .await;
    let status = node.status.expect("status");
    assert_eq!(status.capacity.expect("capacity")["pods"].0, "110");
    assert!(status.addresses.is_none_or(|a| a.is_empty()));
    assert_eq!(status.conditions.expect("conditions")[0].type_, "Ready");
}
