//! Service addresses when several API servers share one store (replicas
//! of a control plane over one etcd): each allocation is recorded in the
//! store, so no two services get the same cluster IP or node port
//! whichever server they were created through; released addresses are
//! free again for every server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::IPAddress;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_testkit::cluster::{Cluster, Options};

/// A server over `store` with a service range of 14 usable addresses
/// and 20 node ports, so servers that did not share their allocations
/// would collide at once.
async fn replica(store: &MemoryStorage) -> Cluster {
    Cluster::start_with(Options {
        storage: store.clone(),
        configure: Box::new(|config| {
            config.service_cidr = "10.77.0.0/28".into();
            config.node_ports = 30000..=30019;
            // One collector is enough for the shared objects.
            config.garbage_collector = None;
        }),
        ..Options::default()
    })
    .await
}

fn node_port_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]},
    }))
    .expect("a service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_store_never_hand_out_the_same_address() {
    let store = MemoryStorage::new();
    let a = replica(&store).await;
    let b = replica(&store).await;
    let apis: [Api<Service>; 2] = [a.api("default"), b.api("default")];

    // 12 services (14 addresses, one is `kubernetes`'s), alternately
    // through each server, half of them concurrently.
    let mut created = Vec::new();
    for round in 0..6 {
        let pp = PostParams::default();
        let (first, second) = (
            node_port_service(&format!("a-{round}")),
            node_port_service(&format!("b-{round}")),
        );
        let (x, y) = tokio::join!(apis[0].create(&pp, &first), apis[1].create(&pp, &second));
        created.push(x.expect("created through a"));
        created.push(y.expect("created through b"));
    }
    let mut ips = BTreeMap::new();
    let mut ports = BTreeMap::new();
    for service in &created {
        let name = service.metadata.name.clone().expect("name");
        let spec = service.spec.clone().expect("spec");
        let ip = spec.cluster_ip.expect("a cluster IP");
        assert!(ip.starts_with("10.77.0."), "{ip}");
        assert_ne!(ip, "10.77.0.1", "kubernetes's");
        if let Some(other) = ips.insert(ip.clone(), name.clone()) {
            panic!("{name} and {other} both got {ip}");
        }
        let port = spec.ports.expect("ports")[0]
            .node_port
            .expect("a node port");
        if let Some(other) = ports.insert(port, name.clone()) {
            panic!("{name} and {other} both got node port {port}");
        }
    }

    // Each address is an IPAddress object naming its service, as
    // kube-apiserver records them; both servers list the same ones.
    let addresses: Api<IPAddress> = a.cluster_api();
    let listed = addresses
        .list(&ListParams::default())
        .await
        .expect("ipaddresses");
    for (ip, name) in &ips {
        let record = listed
            .items
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(ip.as_str()))
            .unwrap_or_else(|| panic!("no IPAddress {ip}"));
        let parent = record.spec.clone().expect("spec").parent_ref;
        assert_eq!(parent.resource, "services");
        assert_eq!(parent.namespace.as_deref(), Some("default"));
        assert_eq!(&parent.name, name);
    }
    let through_b: Api<IPAddress> = b.cluster_api();
    assert_eq!(
        through_b
            .list(&ListParams::default())
            .await
            .expect("ipaddresses")
            .items
            .len(),
        listed.items.len()
    );

    // A requested address another server handed out is refused.
    let (taken_ip, holder) = ips.iter().next().expect("one");
    let mut wants = node_port_service("wants-taken");
    if let Some(spec) = wants.spec.as_mut() {
        spec.cluster_ip = Some(taken_ip.clone());
    }
    let holder_api = if holder.starts_with("a-") {
        &apis[1]
    } else {
        &apis[0]
    };
    let refused = holder_api
        .create(&PostParams::default(), &wants)
        .await
        .expect_err("the address is taken");
    assert!(
        refused.to_string().contains("already allocated"),
        "{refused}"
    );

    // The 13th and last address, then the range is full for both
    // servers, until a service goes: its address then serves the other
    // server too.
    let last = apis[1]
        .create(&PostParams::default(), &node_port_service("last"))
        .await
        .expect("the last address");
    let last_ip = last.spec.expect("spec").cluster_ip.expect("ip");
    assert!(
        !ips.contains_key(&last_ip),
        "{last_ip} was handed out twice"
    );
    let full = apis[0]
        .create(&PostParams::default(), &node_port_service("over"))
        .await
        .expect_err("the range is full");
    assert!(full.to_string().contains("is full"), "{full}");
    apis[0]
        .delete("a-0", &DeleteParams::default())
        .await
        .expect("delete a-0");
    let freed = created[0]
        .spec
        .clone()
        .expect("spec")
        .cluster_ip
        .expect("ip");
    let reused = apis[1]
        .create(&PostParams::default(), &node_port_service("reuses"))
        .await
        .expect("the freed address, through the other server");
    assert_eq!(reused.spec.expect("spec").cluster_ip, Some(freed.clone()));
    let record = addresses.get(&freed).await.expect("recorded again");
    assert_eq!(record.spec.expect("spec").parent_ref.name, "reuses");
}
