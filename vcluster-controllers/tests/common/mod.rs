//! An in-process virtual cluster for the controllers' end-to-end tests:
//! the real API server (in memory), the controller manager against its
//! in-process client, and a tiny fake kubelet that binds pods, makes them
//! Running and Ready with an IP (and finishes run-to-completion pods), as
//! the syncer and a host node would.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};
use vcluster_controllers::{Clock, ControllerManager, ControllerOptions};

/// How long any wait in these tests may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Pods with this label stay Running but not Ready until the test says so.
pub const MANUAL_READY: &str = "test.vcluster.dev/ready";
/// Run-to-completion pods with this label fail instead of succeeding.
pub const OUTCOME: &str = "test.vcluster.dev/outcome";
/// Run-to-completion pods with this label keep running until [`finish`].
pub const HOLD: &str = "test.vcluster.dev/hold";
/// The node the fake kubelet binds pods to (unless pinned elsewhere).
pub const NODE: &str = "test-node";

/// A running test cluster; stops everything when dropped.
pub struct Cluster {
    pub server: ApiServer,
    pub client: kube::Client,
    cancel: CancellationToken,
    clock_offset: Arc<AtomicI64>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.server.shutdown();
    }
}

impl Cluster {
    /// A cluster with every controller and the fake kubelet.
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// A cluster whose server and controller settings `configure` adjusts.
    pub async fn start_with(
        configure: impl FnOnce(&mut ApiServerConfig, &mut ControllerOptions),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let mut config = ApiServerConfig::new(Arc::new(MemoryStorage::new()));
        let clock_offset = Arc::new(AtomicI64::new(0));
        let offset = clock_offset.clone();
        let mut options = ControllerOptions::default()
            .with_root_ca("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n");
        options.job_backoff = Duration::ZERO;
        options.clock = Clock::from_fn(move || {
            let now = jiff::Timestamp::now();
            let offset = jiff::SignedDuration::from_secs(offset.load(Ordering::SeqCst));
            now.checked_add(offset).unwrap_or(now)
        });
        configure(&mut config, &mut options);
        let server = ApiServer::start(config)
            .await
            .expect("start the API server");
        let client = server.client();
        let cancel = CancellationToken::new();
        ControllerManager::new(client.clone(), options).spawn(cancel.clone());
        tokio::spawn(run_kubelet(client.clone(), cancel.clone()));
        Self {
            server,
            client,
            cancel,
            clock_offset,
        }
    }

    /// Namespaced objects of `K` in `default`.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Moves the controllers' clock forward.
    pub fn advance_clock(&self, seconds: i64) {
        self.clock_offset.fetch_add(seconds, Ordering::SeqCst);
    }

    /// Creates `object` (JSON) through `api`.
    pub async fn create<K>(&self, api: &Api<K>, object: Value) -> K
    where
        K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let typed: K = serde_json::from_value(object).expect("a valid object");
        api.create(&PostParams::default(), &typed)
            .await
            .expect("create")
    }

    /// Registers a node with `labels`.
    pub async fn add_node(&self, name: &str, labels: Value) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
        }))
        .expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }
}

/// Polls `check` until it returns `Some`, failing after [`DEADLINE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The pods in `default` whose labels include `selector` (`k=v,...`).
pub async fn pods(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut items = api
        .list(&kube::api::ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}

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

/// The fake kubelet: binds unbound pods (to the node their affinity
/// names, else [`NODE`]), starts bound pending pods with an IP, finishes
/// run-to-completion pods, and removes pods being deleted.
async fn run_kubelet(client: kube::Client, cancel: CancellationToken) {
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
            tracing::debug!(pod = %name, error = %err, "fake kubelet step failed");
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

/// Lets a held pod (see [`HOLD`]) in `default` succeed.
pub async fn finish(client: &kube::Client, name: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = api.get(name).await.expect("the held pod");
    complete(&api, &pod, name, false)
        .await
        .expect("finish the pod");
}
