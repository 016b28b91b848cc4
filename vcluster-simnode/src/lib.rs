//! A simulated node for a cluster with no container runtime, in the spirit of
//! kwok: it registers a Node, binds pending pods to it (standing in for the
//! default scheduler: pods that name another scheduler are left alone), and
//! reports them Running with ready containers, so the whole
//! round trip of a pod is visible. Pods that do not restart forever
//! (`restartPolicy` Never or OnFailure) finish as Succeeded after a while,
//! so Jobs can complete. A pod being deleted is removed for good at once, as
//! a kubelet does once its containers stopped.
//!
//! It talks to the cluster only through `kube::Client`, so it runs the same
//! on the demo's embedded host and on a real kube-apiserver.
//!
//! ```no_run
//! use vcluster_simnode::{SimulatedNode, SimulatedNodeConfig};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let config = SimulatedNodeConfig { name: "sim-1".into(), ..Default::default() };
//! let node = SimulatedNode::register(client, config).await?;
//! let stop = CancellationToken::new();
//! tokio::spawn(node.run(stop.clone())); // pods bound to sim-1 now run
//! # stop.cancel();
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod kubelet;
pub mod logs;
pub mod streams;

pub use streams::SimulatedStreams;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Settings of the simulated node.
#[derive(Clone, Debug)]
pub struct SimulatedNodeConfig {
    /// The node's name.
    pub name: String,
    /// The node's own address (its `InternalIP`, each pod's `hostIP`).
    pub address: Ipv4Addr,
    /// Pod IPs come from this range (`10.244.0.0/16`).
    pub pod_cidr: String,
    /// How long a pod that does not restart forever runs before it
    /// succeeds.
    pub complete_after: Duration,
    /// Serve the kubelet API's container logs on this port of `address`
    /// (0: any free port), as a real kube-apiserver needs for `kubectl
    /// logs`; `None`: no endpoint (an embedded host reads logs through its
    /// own log source).
    pub kubelet_port: Option<u16>,
    /// How often the node reports its status (a kubelet's node status
    /// update frequency).
    pub heartbeat_interval: Duration,
}

impl Default for SimulatedNodeConfig {
    fn default() -> Self {
        Self {
            name: "demo-node".into(),
            address: Ipv4Addr::new(192, 168, 50, 10),
            pod_cidr: "10.244.0.0/16".into(),
            complete_after: Duration::from_secs(10),
            kubelet_port: None,
            heartbeat_interval: Duration::from_secs(30),
        }
    }
}

/// Why the simulated node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The pod range does not parse.
    #[error("invalid pod CIDR {0:?}: expected an IPv4 range such as 10.244.0.0/16")]
    PodCidr(String),
    /// The kubelet endpoint could not listen or make its certificate.
    #[error("the kubelet endpoint of node {name}: {message}")]
    Kubelet {
        /// The node.
        name: String,
        /// What failed.
        message: String,
    },
    /// Registering the node failed.
    #[error("registering node {name} failed: {source}")]
    Register {
        /// The node.
        name: String,
        /// The client error.
        #[source]
        source: Box<kube::Error>,
    },
}

/// Pod IPs handed out from a range, one per running pod.
struct PodIps {
    base: u32,
    size: u32,
    next: u32,
    by_pod: HashMap<String, Ipv4Addr>,
    used: BTreeSet<u32>,
}

impl PodIps {
    fn new(cidr: &str) -> Result<Self, NodeError> {
        let bad = || NodeError::PodCidr(cidr.to_owned());
        let (addr, bits) = cidr.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let bits: u32 = bits.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&bits) {
            return Err(bad());
        }
        let size = 1u32 << (32 - bits);
        Ok(Self {
            base: u32::from(addr) & !(size - 1),
            size,
            next: 2,
            by_pod: HashMap::new(),
            used: BTreeSet::new(),
        })
    }

    /// The pod's IP, allocated on first use.
    fn for_pod(&mut self, pod: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.by_pod.get(pod) {
            return Some(*ip);
        }
        let usable = self.size - 3;
        for i in 0..usable {
            let offset = 2 + (self.next - 2 + i) % usable;
            if self.used.insert(offset) {
                self.next = offset + 1;
                let ip = Ipv4Addr::from(self.base + offset);
                self.by_pod.insert(pod.to_owned(), ip);
                return Some(ip);
            }
        }
        None
    }

    fn release(&mut self, pod: &str) {
        if let Some(ip) = self.by_pod.remove(pod) {
            self.used.remove(&(u32::from(ip) - self.base));
        }
    }
}

/// A running simulated node.
pub struct SimulatedNode {
    config: SimulatedNodeConfig,
    client: kube::Client,
    ips: Arc<Mutex<PodIps>>,
    /// The kubelet endpoint's listener, its TLS and its port (taken when
    /// the node runs).
    kubelet: Option<(tokio::net::TcpListener, tokio_rustls::TlsAcceptor, u16)>,
    /// The kubelet endpoint's port, 0 without one: every heartbeat reports
    /// it, also once the listener was handed to the serving task.
    kubelet_port: u16,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl SimulatedNode {
    /// Registers the node on the cluster behind `client`.
    pub async fn register(
        client: kube::Client,
        config: SimulatedNodeConfig,
    ) -> Result<Self, NodeError> {
        let ips = PodIps::new(&config.pod_cidr)?;
        let kubelet = match config.kubelet_port {
            None => None,
            Some(port) => {
                let failed = |message: String| NodeError::Kubelet {
                    name: config.name.clone(),
                    message,
                };
                let address = std::net::IpAddr::V4(config.address);
                let listener = tokio::net::TcpListener::bind((address, port))
                    .await
                    .map_err(|e| failed(format!("cannot listen on {address}:{port}: {e}")))?;
                let port = listener
                    .local_addr()
                    .map_err(|e| failed(e.to_string()))?
                    .port();
                let acceptor =
                    kubelet::acceptor(address, &config.name).map_err(|e| failed(e.to_string()))?;
                Some((listener, acceptor, port))
            }
        };
        let nodes: Api<Node> = Api::all(client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": config.name,
                "labels": {
                    "kubernetes.io/hostname": config.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": std::env::consts::ARCH,
                    "type": "simulated",
                },
            },
            "spec": {"podCIDR": config.pod_cidr},
        }))
        .map_err(|e| NodeError::PodCidr(e.to_string()))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(NodeError::Register {
                    name: config.name.clone(),
                    source: Box::new(source),
                })
            }
        }
        let simulated = Self {
            config,
            client,
            ips: Arc::new(Mutex::new(ips)),
            kubelet_port: kubelet.as_ref().map_or(0, |k| k.2),
            kubelet,
        };
        simulated
            .heartbeat()
            .await
            .map_err(|source| NodeError::Register {
                name: simulated.config.name.clone(),
                source: Box::new(source),
            })?;
        Ok(simulated)
    }

    /// Reports the node Ready, with its capacity and addresses.
    async fn heartbeat(&self) -> Result<(), kube::Error> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let now = now();
        let capacity =
            json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
        let status = json!({"status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "simulated node is ready", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": now, "lastTransitionTime": now},
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.config.address.to_string()},
                {"type": "Hostname", "address": self.config.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "kubeletVersion": "v1.33.0-simulated",
                "kubeProxyVersion": "v1.33.0-simulated",
                "containerRuntimeVersion": "simulated://1.0",
                "operatingSystem": "linux",
                "architecture": std::env::consts::ARCH,
                "osImage": "vcluster-rs simulated node",
                "kernelVersion": "n/a",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        }});
        nodes
            .patch_status(
                &self.config.name,
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
            .map(|_| ())
    }

    /// Runs the node until `cancel` fires: schedules, starts and finishes
    /// pods, and serves its kubelet endpoint if it has one.
    pub async fn run(mut self, cancel: CancellationToken) {
        if let Some((listener, acceptor, _)) = self.kubelet.take() {
            tokio::spawn(kubelet::serve(
                listener,
                acceptor,
                self.config.name.clone(),
                self.client.clone(),
                Arc::new(SimulatedStreams::new(self.client.clone())),
                cancel.clone(),
            ));
        }
        let pods: Api<Pod> = Api::all(self.client.clone());
        let stream = watcher(pods, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = heartbeat.tick() => {
                    if let Err(err) = self.heartbeat().await {
                        tracing::warn!(error = %err, "node heartbeat failed");
                    }
                }
                item = stream.next() => match item {
                    Some(Ok(pod)) => self.handle(pod, &cancel),
                    Some(Err(err)) => tracing::debug!(error = %err, "pod watch error; retrying"),
                    None => break,
                },
            }
        }
    }

    fn handle(&self, pod: Pod, cancel: &CancellationToken) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let key = format!("{namespace}/{name}");
        if pod.metadata.deletion_timestamp.is_some() {
            self.lock_ips().release(&key);
            // Like a kubelet: a pod of this node being deleted gracefully
            // has "stopped" at once, so it is deleted for good (grace 0),
            // once its finalizers are done.
            let bound_here = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
                == Some(self.config.name.as_str());
            let finalizers_done = pod.metadata.finalizers.as_ref().is_none_or(Vec::is_empty);
            if bound_here && finalizers_done {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: pod.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                tokio::spawn(async move {
                    if let Err(err) = api.delete(&name, &params).await {
                        tracing::debug!(pod = %name, error = %err, "final delete failed");
                    }
                });
            }
            return;
        }
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        match node.as_deref() {
            // Like kube-scheduler: a pod that names another scheduler is
            // left for it.
            None if !wants_default_scheduler(&pod) => {}
            None => {
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name, "namespace": namespace},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.config.name},
                });
                tokio::spawn(async move {
                    if let Err(err) = api
                        .create_subresource::<Value, Value>(
                            "binding",
                            &name,
                            &PostParams::default(),
                            &binding,
                        )
                        .await
                    {
                        tracing::debug!(pod = %name, error = %err, "binding failed");
                    }
                });
            }
            Some(node) if node == self.config.name && (phase == "Pending" || phase.is_empty()) => {
                let Some(ip) = self.lock_ips().for_pod(&key) else {
                    tracing::warn!(pod = %key, "pod range exhausted");
                    return;
                };
                let status = running_status(&pod, ip, self.config.address);
                let finishes = matches!(
                    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()),
                    Some("Never" | "OnFailure")
                );
                let complete_after = self.config.complete_after;
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    if let Err(err) = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                    {
                        tracing::debug!(pod = %name, error = %err, "status update failed");
                        return;
                    }
                    if !finishes {
                        return;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(complete_after) => {
                            if let Ok(current) = api.get(&name).await {
                                let done = succeeded_status(&current);
                                let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&done)).await;
                            }
                        }
                    }
                });
            }
            _ => {}
        }
    }

    fn lock_ips(&self) -> std::sync::MutexGuard<'_, PodIps> {
        self.ips.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The scheduler kube-scheduler answers for (a pod that names none gets it
/// by defaulting).
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Whether the pod is for the default scheduler, which this node stands in
/// for.
fn wants_default_scheduler(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|name| name.is_empty() || name == DEFAULT_SCHEDULER)
}

fn container_names(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

fn running_status(pod: &Pod, ip: Ipv4Addr, host: Ipv4Addr) -> Value {
    let now = now();
    let containers: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("simulated://{image}"),
                "containerID": format!("simulated://{}", uuid_like(&name)),
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    json!({"status": {
        "phase": "Running",
        "hostIP": host.to_string(),
        "hostIPs": [{"ip": host.to_string()}],
        "podIP": ip.to_string(),
        "podIPs": [{"ip": ip.to_string()}],
        "startTime": now,
        "conditions": [condition("PodReadyToStartContainers"), condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
        "containerStatuses": containers,
    }})
}

fn succeeded_status(pod: &Pod) -> Value {
    let now = now();
    let containers: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({
                "name": name, "image": image, "imageID": format!("simulated://{image}"),
                "containerID": format!("simulated://{}", uuid_like(&name)),
                "ready": false, "started": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}},
            })
        })
        .collect();
    let condition = |kind: &str, status: &str| json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now, "reason": if status == "False" { "PodCompleted" } else { "" }});
    json!({"status": {
        "phase": "Succeeded",
        "conditions": [condition("Initialized", "True"), condition("Ready", "False"), condition("ContainersReady", "False"), condition("PodScheduled", "True")],
        "containerStatuses": containers,
    }})
}

/// A stable, container-ID-looking string.
fn uuid_like(seed: &str) -> String {
    let hash = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ips_are_unique_stable_and_reused_after_release() {
        let mut ips = PodIps::new("10.244.0.0/29").expect("range");
        let a = ips.for_pod("ns/a").expect("a");
        assert_eq!(ips.for_pod("ns/a"), Some(a), "stable per pod");
        let mut all = BTreeSet::from([a]);
        for i in 0..4 {
            all.insert(ips.for_pod(&format!("ns/p{i}")).expect("free"));
        }
        assert_eq!(all.len(), 5);
        assert_eq!(ips.for_pod("ns/full"), None);
        ips.release("ns/a");
        assert_eq!(ips.for_pod("ns/again"), Some(a));
        assert!(PodIps::new("nonsense").is_err());
        assert!(PodIps::new("10.0.0.0/31").is_err());
    }

    #[test]
    fn statuses_describe_running_and_finished_containers() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})).expect("pod");
        let running = running_status(
            &pod,
            Ipv4Addr::new(10, 244, 0, 2),
            Ipv4Addr::new(192, 168, 0, 1),
        );
        assert_eq!(running["status"]["phase"], "Running");
        assert_eq!(running["status"]["podIP"], "10.244.0.2");
        assert_eq!(running["status"]["containerStatuses"][0]["ready"], true);
        let done = succeeded_status(&pod);
        assert_eq!(done["status"]["phase"], "Succeeded");
        assert_eq!(
            done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            0
        );
    }
}
