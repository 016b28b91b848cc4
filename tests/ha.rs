//! High availability: three replicas of the demo's control plane share a
//! three-member etcd and sync into one real host (upstream kube-apiserver,
//! the test kit's `RealHost`). Every replica serves the API; the one
//! holding the virtual cluster's `kube-system/vcluster-controller` Lease
//! runs the syncer and the controllers. Under a write load spread over all
//! replicas the leader is killed with SIGKILL: another replica takes the
//! lease within the lease duration, no acknowledged write is lost, no two
//! services share an address, and once the new leader's syncer settles
//! the host holds exactly one copy of every synced object and nothing
//! without its virtual object. An etcd member killed afterwards does not
//! stop the writes either, and a leader whose lease is taken from it exits
//! rather than keep writing.
#![cfg(feature = "etcd")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service, ServiceAccount};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use vcluster_testkit::demo::{copy_credentials, DemoProcess};
use vcluster_testkit::etcd::EtcdCluster;
use vcluster_testkit::real_host::RealHost;
use vcluster_testkit::{eventually_every, free_port};

const REPLICAS: usize = 3;
/// Short lease timings for the test (the defaults are 60 s / 40 s / 15 s).
const LEASE_DURATION: Duration = Duration::from_secs(6);
const RENEW_DEADLINE: &str = "4s";
const RETRY_PERIOD: Duration = Duration::from_secs(1);
/// The host namespace the replicas sync into.
const HOST_NAMESPACE: &str = "vcluster-ha";
/// Every replica's virtual cluster name (the demo's default).
const NAME: &str = "demo";

fn identity(index: usize) -> String {
    format!("replica-{index}")
}

/// One replica: its process, data directory and client.
struct Replica {
    process: Option<DemoProcess>,
    data_dir: PathBuf,
}

fn start_replica(index: usize, data_dir: &Path, store: &str, host: &RealHost) -> Replica {
    let host_kubeconfig = host.kubeconfig().to_str().expect("a UTF-8 path").to_owned();
    let identity = identity(index);
    let lease = format!("{}s", LEASE_DURATION.as_secs());
    let retry = format!("{}ms", RETRY_PERIOD.as_millis());
    let args = [
        "--store",
        store,
        "--host-kubeconfig",
        &host_kubeconfig,
        "--host-service-cidr",
        host.service_cidr(),
        "--host-namespace",
        HOST_NAMESPACE,
        "--leader-elect",
        "--leader-elect-identity",
        &identity,
        "--leader-elect-lease-duration",
        &lease,
        "--leader-elect-renew-deadline",
        RENEW_DEADLINE,
        "--leader-elect-retry-period",
        &retry,
    ];
    let process = DemoProcess::start(data_dir, free_port(), free_port(), &args);
    Replica {
        process: Some(process),
        data_dir: data_dir.to_owned(),
    }
}

/// A client of a replica's API server (its kubeconfig, short timeouts: a
/// killed replica must fail a request at once, not hang the load).
async fn client(data_dir: &Path) -> kube::Client {
    let file =
        Kubeconfig::read_from(data_dir.join("kubeconfig")).expect("the replica's kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("client configuration");
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(10));
    kube::Client::try_from(config).expect("client")
}

async fn lease_holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = leases.get_opt("vcluster-controller").await.ok()??;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// What a write load had acknowledged: kind and name.
type Acknowledged = Arc<Mutex<Vec<(&'static str, String)>>>;

/// Creates configmaps, services (every other one a NodePort) and pods in
/// turn, each through the next replica, until `stop`; records every write
/// a replica acknowledged.
async fn write_load(
    clients: Vec<kube::Client>,
    acknowledged: Acknowledged,
    stop: CancellationToken,
) {
    let mut i = 0usize;
    while !stop.is_cancelled() {
        let client = clients[i % clients.len()].clone();
        let pp = PostParams::default();
        let written = match i % 3 {
            0 => {
                let name = format!("cm-{i}");
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([("i".to_owned(), i.to_string())])),
                    ..ConfigMap::default()
                };
                let api: Api<ConfigMap> = Api::namespaced(client, "default");
                api.create(&pp, &cm).await.map(|_| ("configmap", name))
            }
            1 => {
                let name = format!("svc-{i}");
                let kind = if i.is_multiple_of(2) {
                    "ClusterIP"
                } else {
                    "NodePort"
                };
                let svc: Service = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"type": kind, "selector": {"app": name}, "ports": [{"port": 80}]},
                }))
                .expect("a service");
                let api: Api<Service> = Api::namespaced(client, "default");
                api.create(&pp, &svc).await.map(|_| ("service", name))
            }
            _ => {
                let name = format!("pod-{i}");
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": "nginx"}]},
                }))
                .expect("a pod");
                let api: Api<Pod> = Api::namespaced(client, "default");
                api.create(&pp, &pod).await.map(|_| ("pod", name))
            }
        };
        if let Ok(write) = written {
            acknowledged.lock().expect("lock").push(write);
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The virtual keys (`namespace/name`) the host copies of `kind` in the
/// host namespace stand for, by the syncer's annotations, with how often.
async fn host_copies<K>(host: &kube::Client) -> Result<BTreeMap<String, usize>, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(host.clone(), HOST_NAMESPACE);
    let list = api
        .list(&ListParams::default().labels(&format!("vcluster.loft.sh/managed-by={NAME}")))
        .await
        .map_err(|e| e.to_string())?;
    let mut copies = BTreeMap::new();
    for item in list.items {
        let annotations = item.meta().annotations.clone().unwrap_or_default();
        let key = format!(
            "{}/{}",
            annotations
                .get("vcluster.loft.sh/object-namespace")
                .cloned()
                .unwrap_or_default(),
            annotations
                .get("vcluster.loft.sh/object-name")
                .cloned()
                .unwrap_or_default()
        );
        *copies.entry(key).or_insert(0) += 1;
    }
    Ok(copies)
}

async fn virtual_keys<K>(client: &kube::Client) -> Result<BTreeSet<String>, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .map(|o| {
            format!(
                "{}/{}",
                o.meta().namespace.clone().unwrap_or_default(),
                o.meta().name.clone().unwrap_or_default()
            )
        })
        .filter(|key| key != "default/kubernetes")
        .collect())
}

/// Whether the host holds exactly one copy of each of `expected` and no
/// copy of anything else.
fn exactly_once(
    kind: &str,
    copies: &BTreeMap<String, usize>,
    expected: &BTreeSet<String>,
) -> Result<(), String> {
    let orphans: Vec<&String> = copies.keys().filter(|k| !expected.contains(*k)).collect();
    let duplicates: Vec<&String> = copies
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|k| !copies.contains_key(*k))
        .collect();
    if orphans.is_empty() && duplicates.is_empty() && missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{kind}: orphans on the host {orphans:?}, duplicates {duplicates:?}, not synced {missing:?}"
        ))
    }
}

#[test]
fn replicas_over_etcd_fail_over_without_losing_writes() {
    let started = Instant::now();
    let host = RealHost::shared();
    let mut etcd = EtcdCluster::start(3);
    let store = etcd.store_url("/ha");
    let dir = tempfile::tempdir().expect("tempdir");

    // The credentials (CA, service-account key, encryption key) come from
    // a demo run once on its own; then all three replicas start at once
    // on the empty etcd, racing to write the cluster's built-in objects.
    let seed = dir.path().join("seed");
    DemoProcess::start(&seed, free_port(), free_port(), &["--store", "memory://"]).terminate();
    let dirs: Vec<PathBuf> = (0..REPLICAS)
        .map(|i| dir.path().join(format!("replica-{i}")))
        .collect();
    for replica_dir in &dirs {
        copy_credentials(&seed, replica_dir).expect("seed a replica's data directory");
    }
    let mut replicas: Vec<Replica> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..REPLICAS)
            .map(|i| {
                let (dir, store) = (&dirs[i], &store);
                scope.spawn(move || start_replica(i, dir, store, host))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a replica started"))
            .collect()
    });
    eprintln!("{REPLICAS} replicas serve after {:?}", started.elapsed());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let etcd = &mut etcd;
    runtime.block_on(async {
        let mut clients = Vec::new();
        for replica in &replicas {
            clients.push(client(&replica.data_dir).await);
        }
        let identities: Vec<String> = (0..REPLICAS).map(identity).collect();

        // One leader, whose controllers made the `default` service account
        // pods need.
        let leader = eventually_every(
            Duration::from_secs(30),
            Duration::from_millis(200),
            "a replica holds the lease",
            || async {
                match lease_holder(&clients[0]).await {
                    Some(holder) => identities
                        .iter()
                        .position(|i| *i == holder)
                        .ok_or(format!("unknown holder {holder}")),
                    None => Err("no holder".into()),
                }
            },
        )
        .await;
        let accounts: Api<ServiceAccount> = Api::namespaced(clients[0].clone(), "default");
        eventually_every(
            Duration::from_secs(30),
            Duration::from_millis(200),
            "the default service account",
            || async {
                match accounts.get_opt("default").await {
                    Ok(Some(_)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
        // Every replica sees the same leader (one store).
        for client in &clients {
            assert_eq!(lease_holder(client).await, Some(identity(leader)));
        }
        eprintln!("replica {leader} leads after {:?}", started.elapsed());

        // Writes through every replica; the leader dies half-way.
        let acknowledged: Acknowledged = Arc::default();
        let stop = CancellationToken::new();
        let load = tokio::spawn(write_load(
            clients.clone(),
            acknowledged.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(4)).await;
        replicas[leader]
            .process
            .as_mut()
            .expect("the leader runs")
            .kill();
        let killed_at = Instant::now();
        let survivors: Vec<usize> = (0..REPLICAS).filter(|i| *i != leader).collect();
        let slack = Duration::from_secs(4);
        let new_leader = eventually_every(
            LEASE_DURATION + RETRY_PERIOD + slack,
            Duration::from_millis(100),
            "another replica takes the lease",
            || async {
                match lease_holder(&clients[survivors[0]]).await {
                    Some(holder) if holder != identity(leader) => identities
                        .iter()
                        .position(|i| *i == holder)
                        .ok_or(format!("unknown holder {holder}")),
                    other => Err(format!("holder {other:?}")),
                }
            },
        )
        .await;
        let takeover = killed_at.elapsed();
        eprintln!("replica {new_leader} took over {takeover:?} after the leader was killed");
        assert!(survivors.contains(&new_leader));
        assert!(
            takeover <= LEASE_DURATION + RETRY_PERIOD + slack,
            "takeover took {takeover:?}"
        );
        // Writes go on through the new leader's reign, and on when an etcd
        // member dies too (the other two keep a quorum; the replicas'
        // clients go to them).
        tokio::time::sleep(Duration::from_secs(2)).await;
        // A follower member: the replicas' clients fail over to the
        // others (killing etcd's leader adds an election, which the
        // storage tests cover).
        let follower = (0..etcd.size())
            .find(|i| Some(*i) != etcd.leader())
            .expect("a follower member");
        etcd.kill(follower);
        let member_killed_at = Instant::now();
        let acknowledged_before = acknowledged.lock().expect("lock").len();
        eventually_every(
            Duration::from_secs(30),
            Duration::from_millis(200),
            "writes go on after an etcd member died",
            || async {
                let now = acknowledged.lock().expect("lock").len();
                (now >= acknowledged_before + 5)
                    .then_some(())
                    .ok_or(format!("{} writes since", now - acknowledged_before))
            },
        )
        .await;
        eprintln!(
            "writes went on {:?} after an etcd member died",
            member_killed_at.elapsed()
        );
        stop.cancel();
        load.await.expect("the write load");
        let acknowledged = acknowledged.lock().expect("lock").clone();
        eprintln!(
            "{} writes acknowledged, {} after an etcd member died",
            acknowledged.len(),
            acknowledged.len() - acknowledged_before
        );

        assert!(
            acknowledged.len() >= 30,
            "the load wrote too little: {acknowledged:?}"
        );

        // The follower that did not win still serves (it never led).
        for &i in &survivors {
            assert!(
                replicas[i]
                    .process
                    .as_mut()
                    .expect("a survivor")
                    .is_running(),
                "replica {i} stopped"
            );
        }

        // No acknowledged write is lost: each is there, through every survivor.
        for &i in &survivors {
            let client = &clients[i];
            for (kind, name) in &acknowledged {
                let found = match *kind {
                    "configmap" => Api::<ConfigMap>::namespaced(client.clone(), "default")
                        .get_opt(name)
                        .await
                        .map(|o| o.is_some()),
                    "service" => Api::<Service>::namespaced(client.clone(), "default")
                        .get_opt(name)
                        .await
                        .map(|o| o.is_some()),
                    _ => Api::<Pod>::namespaced(client.clone(), "default")
                        .get_opt(name)
                        .await
                        .map(|o| o.is_some()),
                };
                assert!(
                    matches!(found, Ok(true)),
                    "{kind} {name} was acknowledged but replica {i} answers {found:?}"
                );
            }
        }

        // No two services share a cluster IP or a node port.
        let services = Api::<Service>::all(clients[survivors[0]].clone())
            .list(&ListParams::default())
            .await
            .expect("services");
        let mut ips = BTreeMap::new();
        let mut node_ports = BTreeMap::new();
        for service in &services.items {
            let name = service.metadata.name.clone().unwrap_or_default();
            let spec = service.spec.clone().unwrap_or_default();
            if let Some(ip) = spec.cluster_ip.filter(|ip| ip != "None" && !ip.is_empty()) {
                if let Some(other) = ips.insert(ip.clone(), name.clone()) {
                    panic!("{name} and {other} share the cluster IP {ip}");
                }
            }
            for port in spec.ports.unwrap_or_default() {
                if let Some(node_port) = port.node_port {
                    if let Some(other) = node_ports.insert(node_port, name.clone()) {
                        panic!("{name} and {other} share the node port {node_port}");
                    }
                }
            }
        }

        // A leader that finds the lease taken from it (a split brain the
        // store settled against it) must not keep writing: it exits with
        // an error; the last replica takes over once the intruder's lease
        // runs out.
        let leases: Api<Lease> = Api::namespaced(clients[new_leader].clone(), "kube-system");
        let mut lease = leases.get("vcluster-controller").await.expect("the lease");
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = Some("intruder".into());
            spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        }
        leases
            .replace("vcluster-controller", &PostParams::default(), &lease)
            .await
            .expect("take the lease");
        let stolen_at = Instant::now();
        let status = eventually_every(
            RETRY_PERIOD * 2 + Duration::from_secs(4),
            Duration::from_millis(100),
            "the leader that lost its lease exits",
            || {
                let status = replicas[new_leader]
                    .process
                    .as_mut()
                    .expect("the new leader")
                    .exit_status();
                async move { status.ok_or_else(|| "still running".to_owned()) }
            },
        )
        .await;
        assert_eq!(status.code(), Some(1), "an error exit: {status}");
        eprintln!(
            "replica {new_leader} exited {:?} after losing its lease",
            stolen_at.elapsed()
        );
        let last = survivors
            .iter()
            .copied()
            .find(|i| *i != new_leader)
            .expect("the third replica");
        eventually_every(
            LEASE_DURATION + RETRY_PERIOD + slack,
            Duration::from_millis(100),
            "the last replica takes the lease",
            || async {
                match lease_holder(&clients[last]).await {
                    Some(holder) if holder == identity(last) => Ok(()),
                    other => Err(format!("holder {other:?}")),
                }
            },
        )
        .await;

        // The last leader's syncer settles: every pod and service exactly
        // once on the host, and no managed host object without its
        // virtual object.
        let host_client = host.client();
        let virtual_client = clients[last].clone();
        eventually_every(
            Duration::from_secs(60),
            Duration::from_millis(500),
            "the host holds exactly the virtual objects",
            || async {
                let pods = virtual_keys::<Pod>(&virtual_client).await?;
                exactly_once("pods", &host_copies::<Pod>(&host_client).await?, &pods)?;
                let services = virtual_keys::<Service>(&virtual_client).await?;
                exactly_once(
                    "services",
                    &host_copies::<Service>(&host_client).await?,
                    &services,
                )?;
                // Config maps are synced when a pod needs them: none may be
                // an orphan or a duplicate.
                let config_maps = virtual_keys::<ConfigMap>(&virtual_client).await?;
                let copies = host_copies::<ConfigMap>(&host_client).await?;
                let synced: BTreeSet<String> = copies
                    .keys()
                    .filter(|k| config_maps.contains(*k))
                    .cloned()
                    .collect();
                exactly_once("configmaps", &copies, &synced)?;
                Ok(())
            },
        )
        .await;
    });

    for replica in &mut replicas {
        if let Some(mut process) = replica.process.take() {
            process.kill();
        }
    }
    eprintln!("the HA scenario took {:?}", started.elapsed());
}
