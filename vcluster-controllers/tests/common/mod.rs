//! The controllers' scenarios run on our own API server (the test kit's
//! [`Cluster`], in memory) with the controller manager on its in-process
//! client and the test kit's scripted kubelet, which binds pods, makes them
//! Running and Ready with an IP and finishes run-to-completion pods, as the
//! syncer and a host node would.

#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, PostParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::ApiServerConfig;
use vcluster_controllers::{Clock, ControllerManager, ControllerOptions};
use vcluster_testkit::cluster::Cluster;

pub use vcluster_testkit::kubelet::{finish, set_ready, HOLD, MANUAL_READY, OUTCOME};

/// How long any wait in these tests may take: a rollout is many steps of
/// several controllers.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Our API server with every controller and the scripted kubelet running
/// against it; stops them when dropped.
pub struct ControlPlane {
    /// The API server.
    pub cluster: Cluster,
    /// Its in-process client (the one the controllers use).
    pub client: kube::Client,
    cancel: CancellationToken,
    clock_offset: Arc<AtomicI64>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl ControlPlane {
    /// Every controller and the scripted kubelet.
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// A control plane whose server and controller settings `configure`
    /// adjusts.
    pub async fn start_with(
        configure: impl FnOnce(&mut ApiServerConfig, &mut ControllerOptions),
    ) -> Self {
        vcluster_testkit::init_logging("warn");
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
        let cluster = Cluster::start_configured(|config| configure(config, &mut options)).await;
        let client = cluster.server.client();
        let cancel = CancellationToken::new();
        ControllerManager::new(client.clone(), options).spawn(cancel.clone());
        tokio::spawn(vcluster_testkit::kubelet::run(
            client.clone(),
            cancel.clone(),
        ));
        Self {
            cluster,
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
