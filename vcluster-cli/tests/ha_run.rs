//! High availability as `vcluster create` deploys it: three `vcluster run`
//! replicas (run beside the real host with their pods' in-cluster
//! environment, as in real_host.rs) over one external etcd, configured by
//! `controlPlane.statefulSet.highAvailability` and
//! `controlPlane.backingStore.etcd.external`. They share one CA (the
//! `<name>-certs` Secret, raced for by three replicas starting at once),
//! all serve, and one leader syncs; when it is killed another takes over.
#![cfg(feature = "etcd")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{synced_host_pods, unique_namespace, vcluster_ok, ControlPlaneProcess, SYNC_DEADLINE};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use vcluster_testkit::etcd::EtcdServer;
use vcluster_testkit::real_host::RealHost;
use vcluster_testkit::{eventually_explained, kubectl};

/// The lease timings of the test (the defaults stay 60 / 40 / 15 s).
const LEASE_SECONDS: u64 = 6;

fn ha_config(dir: &Path, etcd: &str) -> std::path::PathBuf {
    let path = dir.join("vcluster.yaml");
    std::fs::write(
        &path,
        format!(
            "controlPlane:\n  backingStore:\n    etcd:\n      external:\n        enabled: true\n        endpoint: {etcd}\n  statefulSet:\n    highAvailability:\n      replicas: 3\n      leaseDuration: {LEASE_SECONDS}\n      renewDeadline: 4\n      retryPeriod: 1\n"
        ),
    )
    .expect("write vcluster.yaml");
    path
}

/// The replica holding the lease, asked through `kubeconfig`.
fn holder(kubeconfig: &Path) -> Result<String, String> {
    let out = kubectl::run(
        kubeconfig,
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "vcluster-controller",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    );
    let holder = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !holder.is_empty() {
        Ok(holder)
    } else {
        Err(format!(
            "no holder yet: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_run_replicas_share_one_etcd_and_fail_over() {
    let host = RealHost::shared();
    let client = host.client();
    let etcd = EtcdServer::start();
    let namespace = unique_namespace("vc-ha");
    let name = "my-vc";
    let scratch = tempfile::tempdir().expect("tempdir");
    let config = ha_config(scratch.path(), &etcd.endpoint());
    let config_arg = config.to_str().expect("utf-8 path");

    // create: three replicas, no data claims (the store is etcd).
    vcluster_ok(
        host,
        &[
            "create",
            name,
            "-n",
            &namespace,
            "-f",
            config_arg,
            "--no-wait",
        ],
    )
    .await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let spec = sets
        .get(name)
        .await
        .expect("statefulset")
        .spec
        .expect("spec");
    assert_eq!(spec.replicas, Some(3));
    assert!(spec.volume_claim_templates.is_none());

    // The three replicas start at once, each named by its pod.
    let mut replicas = Vec::new();
    for i in 0..3 {
        let pod = format!("{name}-{i}");
        replicas.push(Some(
            ControlPlaneProcess::start_as(
                host,
                &namespace,
                "vc-my-vc",
                name,
                &scratch.path().join(format!("data-{i}")),
                Some(&config),
                Some(&pod),
            )
            .await,
        ));
    }

    // Every replica serves the same kubeconfig: one CA, one admin.
    let mut kubeconfigs = Vec::new();
    for (i, replica) in replicas.iter().enumerate() {
        let replica = replica.as_ref().expect("running");
        let path = scratch.path().join(format!("kubeconfig-{i}.yaml"));
        let path_arg = path.to_str().expect("utf-8 path").to_owned();
        let server = replica.server();
        eventually_explained(SYNC_DEADLINE, "the replica serves", || async {
            let out = common::vcluster(
                host,
                &[
                    "connect",
                    name,
                    "-n",
                    &namespace,
                    "--server",
                    &server,
                    "--kube-config",
                    &path_arg,
                    "--",
                    kubectl::kubectl_path().to_str().unwrap_or("kubectl"),
                    "get",
                    "namespace",
                    "default",
                    "-o",
                    "name",
                ],
            )
            .await;
            let said = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && said.contains("namespace/default") {
                Ok(())
            } else {
                Err(format!(
                    "{said}{}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    replica.log()
                ))
            }
        })
        .await;
        kubeconfigs.push(path);
    }

    // One leader, named by its pod.
    let first = eventually_explained(SYNC_DEADLINE, "a replica leads", || async {
        holder(&kubeconfigs[0])
    })
    .await;
    let leader: usize = first
        .strip_prefix("my-vc-")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("the holder {first:?} is not a replica's pod"));
    let survivor = (leader + 1) % 3;

    // A workload through a follower is synced by the leader.
    kubectl::run_ok(
        &kubeconfigs[survivor],
        &["create", "deployment", "before", "--image=nginx"],
    );
    let running_host_pods = || async {
        Ok::<_, String>(
            synced_host_pods(&client, &namespace, name)
                .await?
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.metadata.name)
                .collect::<Vec<_>>(),
        )
    };
    eventually_explained(SYNC_DEADLINE, "the first workload on the host", || async {
        let pods = running_host_pods().await?;
        (pods.len() == 1).then_some(()).ok_or(format!("{pods:?}"))
    })
    .await;

    // SIGKILL the leader: another replica takes the lease within its
    // duration (plus a retry and slack for a loaded machine).
    replicas[leader]
        .take()
        .expect("the leader runs")
        .stop()
        .await;
    let killed_at = tokio::time::Instant::now();
    let next = eventually_explained(
        Duration::from_secs(LEASE_SECONDS + 1 + 8),
        "another replica leads",
        || async {
            let now = holder(&kubeconfigs[survivor])?;
            (now != first)
                .then_some(now.clone())
                .ok_or(format!("still {now}"))
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    assert_ne!(next, first);
    eprintln!("takeover by {next} after {takeover:?}");

    // The new leader syncs: a workload made now reaches the host, and
    // neither pod is duplicated.
    kubectl::run_ok(
        &kubeconfigs[survivor],
        &["create", "deployment", "after", "--image=nginx"],
    );
    eventually_explained(
        SYNC_DEADLINE,
        "both workloads on the host, once each",
        || async {
            let pods = running_host_pods().await?;
            let before = pods.iter().filter(|p| p.starts_with("before-")).count();
            let after = pods.iter().filter(|p| p.starts_with("after-")).count();
            (before == 1 && after == 1)
                .then_some(())
                .ok_or(format!("{pods:?}"))
        },
    )
    .await;
    for replica in replicas.into_iter().flatten() {
        replica.stop().await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&namespace, &Default::default()).await;
}
