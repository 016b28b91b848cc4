//! The real host harness itself: upstream kube-apiserver with its
//! controllers and the simulated node run a pod end to end, kubectl talks
//! to it with the written kubeconfig, and an owned host leaves no process
//! behind.

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;
use vcluster_testkit::eventually;
use vcluster_testkit::real_host::{RealHost, RealHostOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_on_the_real_host_is_admitted_bound_and_running() {
    let host = RealHost::shared();
    let client = host.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "harness-pod"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    // The service-account controller runs: pods can be admitted.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "harness-pod");
    eventually("the default service account", || async {
        accounts.get_opt("default").await.ok().flatten()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "harness-pod");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }))
    .expect("pod");
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    // Upstream's admission, not ours: the token volume and the default
    // tolerations were added.
    let spec = created.spec.expect("spec");
    assert!(
        spec.volumes
            .unwrap_or_default()
            .iter()
            .any(|v| v.name.starts_with("kube-api-access-")),
        "the ServiceAccount admission plugin mounts a token volume"
    );
    let running = eventually("the simulated node runs the pod", || async {
        let pod = pods.get("web").await.ok()?;
        (pod.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(pod)
    })
    .await;
    assert_eq!(
        running.spec.and_then(|s| s.node_name).as_deref(),
        Some(host.node_name())
    );

    // kubectl works with the kubeconfig the harness wrote.
    let output = std::process::Command::new("kubectl")
        .arg(format!("--kubeconfig={}", host.kubeconfig().display()))
        .args(["get", "pods", "-n", "harness-pod", "-o", "name"])
        .output()
        .expect("run kubectl");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "pod/web");
}

#[test]
fn an_owned_real_host_stops_every_process_when_dropped() {
    let host = RealHost::start(RealHostOptions::default()).expect("the real host starts");
    let url = host.url().to_owned();
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let pids = listening_pids(port);
    assert!(!pids.is_empty(), "kube-apiserver listens on {url}");
    drop(host);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is gone after the drop"
        );
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens on {port} any more"
    );
}

/// Process ids holding a listening socket on `port` (from /proc).
fn listening_pids(port: u16) -> Vec<u32> {
    let hex = format!(":{port:04X}");
    let inodes: Vec<String> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.len() > 9 && fields[1].ends_with(&hex) && fields[3] == "0A"
        })
        .map(|l| l.split_whitespace().nth(9).unwrap_or_default().to_owned())
        .collect();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let fds = entry.path().join("fd");
        for fd in std::fs::read_dir(fds).into_iter().flatten().flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if inodes.iter().any(|i| target == format!("socket:[{i}]")) {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}
