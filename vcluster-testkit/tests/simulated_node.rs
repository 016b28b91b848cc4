//! The simulated node as the API server sees it over time.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio_util::sync::CancellationToken;
use vcluster_simnode::{SimulatedNode, SimulatedNodeConfig};
use vcluster_testkit::cluster::Cluster;

/// kube-apiserver dials a node's kubelet at the port its status
/// advertises (`kubectl logs`): every heartbeat must keep reporting it, not
/// only the one at registration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_advertising_the_kubelet_port() {
    let t = Cluster::start().await;
    let config = SimulatedNodeConfig {
        name: "beating".into(),
        address: std::net::Ipv4Addr::LOCALHOST,
        kubelet_port: Some(0),
        heartbeat_interval: Duration::from_millis(50),
        ..SimulatedNodeConfig::default()
    };
    let node = SimulatedNode::register(t.client(), config)
        .await
        .expect("the node registers");
    let cancel = CancellationToken::new();
    let running = tokio::spawn(node.run(cancel.clone()));
    let nodes: Api<Node> = Api::all(t.client());
    // Several heartbeats after the node started serving its endpoint.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = nodes.get("beating").await.expect("the node").status;
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), running).await;
    let port = status
        .and_then(|s| s.daemon_endpoints)
        .and_then(|d| d.kubelet_endpoint)
        .map(|k| k.port);
    assert!(
        port.is_some_and(|p| p > 0),
        "the kubelet port is still advertised: {port:?}"
    );
}
