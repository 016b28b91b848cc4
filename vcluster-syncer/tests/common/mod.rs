//! Two API servers on loopback (a virtual and a host cluster) and a syncer
//! between them, for end-to-end tests; plus bounded waiting.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};
use vcluster_syncer::runner::{SyncConfig, VirtualClusterSyncer};

/// How long any condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running API server and a client of it over TCP.
pub struct Cluster {
    pub server: ApiServer,
    pub client: kube::Client,
    pub url: String,
}

impl Cluster {
    /// Starts an in-memory API server on a free loopback port.
    pub async fn start() -> Self {
        let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
            .await
            .expect("API server starts");
        let addr = server
            .spawn("127.0.0.1:0".parse().expect("addr"), None)
            .await
            .expect("API server listens");
        let url = format!("http://{addr}");
        let config = kube::Config::new(url.parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        Self {
            server,
            client,
            url,
        }
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub async fn create_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.to_owned());
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => panic!("creating namespace {name}: {err}"),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// A virtual cluster, a host cluster and a running syncer.
pub struct Environment {
    pub virtual_cluster: Cluster,
    pub host: Cluster,
    pub host_namespace: String,
    pub name: String,
    pub syncer: Option<RunningSyncer>,
}

/// A syncer running in the background.
pub struct RunningSyncer {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

impl RunningSyncer {
    /// Stops the syncer and waits for it.
    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("syncer stops in time")
            .expect("syncer task");
    }
}

pub fn config(name: &str, host_namespace: &str) -> SyncConfig {
    let mut config = SyncConfig::new(name, host_namespace);
    config.engine.workers = 4;
    config
}

/// Starts a syncer for `config` between the two clusters.
pub fn start_syncer(
    virtual_cluster: &Cluster,
    host: &Cluster,
    config: SyncConfig,
) -> RunningSyncer {
    let syncer =
        VirtualClusterSyncer::new(config, virtual_cluster.client.clone(), host.client.clone())
            .expect("syncer config");
    let cancel = syncer.cancel_token();
    let task = tokio::spawn(syncer.run());
    RunningSyncer { cancel, task }
}

impl Environment {
    /// Two fresh clusters and a syncer of virtual cluster `name`.
    pub async fn start(name: &str) -> Self {
        let virtual_cluster = Cluster::start().await;
        let host = Cluster::start().await;
        let host_namespace = format!("vcluster-{name}");
        host.create_namespace(&host_namespace).await;
        let syncer = start_syncer(&virtual_cluster, &host, config(name, &host_namespace));
        Self {
            virtual_cluster,
            host,
            host_namespace,
            name: name.to_owned(),
            syncer: Some(syncer),
        }
    }

    pub fn host_name(&self, namespace: &str, name: &str) -> String {
        vcluster_core::safe_concat_name(&[name, "x", namespace, "x", &self.name])
    }
}

/// Polls `condition` until it returns `Some`, or fails the test after
/// [`DEADLINE`] saying what was awaited.
pub async fn eventually<T, F, Fut>(what: &str, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        if start.elapsed() > DEADLINE {
            panic!("timed out after {DEADLINE:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
