//! The scripted kubelet of the controllers' scenarios, on our own API
//! server: it binds every unbound pod (to the node a DaemonSet pod's
//! affinity names, else [`NODE`]), starts it at once with an IP, Ready, and
//! finishes run-to-completion pods at once, and removes pods being deleted.
//! Labels on a pod script the rest: [`MANUAL_READY`] (Running but not Ready
//! until [`set_ready`]), [`OUTCOME`] (fail instead of succeed), [`HOLD`]
//! (keep running until [`finish`]).
//!
//! Why not the simulated node (`vcluster-simnode`, which the real host
//! runs)? It is a node: it binds only to itself, completes pods on a timer
//! and cannot be told to fail one or hold it; the controllers' scenarios
//! need exactly those moves, on demand.

use std::sync::atomic::{AtomicU32, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Pods with this label stay Running but not Ready until the test says so.
pub const MANUAL_READY: &str = "test.vcluster.dev/ready";
/// Run-to-completion pods with this label fail instead of succeeding.
pub const OUTCOME: &str = "test.vcluster.dev/outcome";
/// Run-to-completion pods with this label keep running until [`finish`].
pub const HOLD: &str = "test.vcluster.dev/hold";
/// The node the fake kubelet binds pods to (unless pinned elsewhere).
pub const NODE: &str = "test-node";

/// Marks a manual pod Ready (as its readiness probe passing would).
pub async fn set_ready(client: &kube::Client, namespace: &str, name: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"status": {"conditions": conditions(true)}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("mark ready");
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn conditions(ready: bool) -> Value {
    let now = now();
    let status = if ready { "True" } else { "False" };
    json!([
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
        {"type": "Ready", "status": status, "lastTransitionTime": now},
    ])
}

/// Runs the scripted kubelet until `cancel` fires: binds unbound pods (to the node their affinity
/// names, else [`NODE`]), starts bound pending pods with an IP, finishes
/// run-to-completion pods, and removes pods being deleted.
pub async fn run(client: kube::Client, cancel: CancellationToken) {
    let api: Api<Pod> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    let next_ip = AtomicU32::new(2);
    loop {
        let pod = tokio::select! {
            _ = cancel.cancelled() => return,
            item = stream.next() => match item {
                Some(Ok(pod)) => pod,
                Some(Err(_)) => continue,
                None => return,
            },
        };
        let (Some(name), Some(namespace)) =
            (pod.metadata.name.clone(), pod.metadata.namespace.clone())
        else {
            continue;
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let result = kubelet_step(&api, &pod, &name, &next_ip).await;
        if let Err(err) = result {
            tracing::debug!(pod = %name, error = %err, "scripted kubelet step failed");
        }
    }
}

async fn kubelet_step(
    api: &Api<Pod>,
    pod: &Pod,
    name: &str,
    next_ip: &AtomicU32,
) -> Result<(), kube::Error> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    if pod.metadata.deletion_timestamp.is_some() {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        api.delete(name, &params).await?;
        return Ok(());
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty()) else {
        let node =
            vcluster_controllers::daemonset::target_node(pod).unwrap_or_else(|| NODE.to_owned());
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        api.create_subresource::<Value, Value>("binding", name, &PostParams::default(), &binding)
            .await?;
        return Ok(());
    };
    if phase != "Pending" && !phase.is_empty() {
        return Ok(());
    }
    let n = next_ip.fetch_add(1, Ordering::SeqCst);
    let ip = format!("10.244.{}.{}", n / 250, n % 250 + 1);
    let manual = labels.get(MANUAL_READY).is_some_and(|v| v == "manual");
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .map(|c| json!({"name": c.name, "image": c.image, "ready": !manual, "restartCount": 0, "started": true, "state": {"running": {"startedAt": now()}}}))
        .collect();
    let running = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.1",
        "startTime": now(), "conditions": conditions(!manual), "containerStatuses": containers,
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&running))
        .await?;
    tracing::debug!(pod = %name, node = %node, ip = %ip, "started");
    let finishes = matches!(spec.restart_policy.as_deref(), Some("Never" | "OnFailure"));
    if finishes && !labels.contains_key(HOLD) {
        let failed = labels.get(OUTCOME).is_some_and(|v| v == "Failed");
        complete(api, pod, name, failed).await?;
    }
    Ok(())
}

async fn complete(api: &Api<Pod>, pod: &Pod, name: &str, failed: bool) -> Result<(), kube::Error> {
    let (phase, code) = if failed {
        ("Failed", 1)
    } else {
        ("Succeeded", 0)
    };
    let containers: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| json!({"name": c.name, "image": c.image, "ready": false, "restartCount": 0, "started": false, "state": {"terminated": {"exitCode": code, "startedAt": now(), "finishedAt": now()}}}))
        .collect();
    let done = json!({"status": {"phase": phase, "conditions": conditions(false), "containerStatuses": containers}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&done))
        .await?;
    Ok(())
}

/// Lets a held pod (see [`HOLD`]) in namespace `default` succeed.
pub async fn finish(client: &kube::Client, name: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = api.get(name).await.expect("the held pod");
    complete(&api, &pod, name, false)
        .await
        .expect("finish the pod");
}
