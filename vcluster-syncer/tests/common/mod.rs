//! Two API servers on loopback (a virtual and a host cluster) and a syncer
//! between them, for end-to-end tests; plus bounded waiting.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};
use vcluster_syncer::runner::{SyncConfig, VirtualClusterSyncer};
use vcluster_testkit::real_host::RealHost;

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
        create_namespace(&self.client, name).await;
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
    pub host: Host,
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
    start_syncer_to(virtual_cluster, host.client.clone(), config)
}

/// Starts a syncer for `config` from `virtual_cluster` to the host behind
/// `host`.
pub fn start_syncer_to(
    virtual_cluster: &Cluster,
    host: kube::Client,
    config: SyncConfig,
) -> RunningSyncer {
    let syncer = VirtualClusterSyncer::new(config, virtual_cluster.client.clone(), host)
        .expect("syncer config");
    let cancel = syncer.cancel_token();
    let task = tokio::spawn(syncer.run());
    RunningSyncer { cancel, task }
}

// ---------------------------------------------------------------------------
// The host a syncer writes to: our own API server, or the real one.
// ---------------------------------------------------------------------------

/// Which host a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// Our in-memory API server, fresh for the test (fast; no admission,
    /// no controllers, no kubelet: the test plays them).
    Ours,
    /// Upstream kube-apiserver with kube-controller-manager and a
    /// simulated node, shared by the tests of one binary
    /// ([`vcluster_testkit::real_host::RealHost::shared`]).
    Real,
}

/// A host cluster of either kind, with the admin's client.
pub struct Host {
    pub kind: HostKind,
    pub client: kube::Client,
    /// Our server, for a host of kind [`HostKind::Ours`].
    ours: Option<Cluster>,
    /// A real host of this test's own (see [`Host::start_isolated`]);
    /// `None` for the shared one.
    own_real: Option<RealHost>,
}

impl Host {
    /// A host of `kind` whose services take addresses from
    /// [`HOST_SERVICE_CIDR`].
    pub async fn start(kind: HostKind) -> Self {
        match kind {
            HostKind::Ours => {
                let cluster =
                    Cluster::start_with(|h| h.service_cidr = HOST_SERVICE_CIDR.to_owned()).await;
                Self {
                    kind,
                    client: cluster.client.clone(),
                    ours: Some(cluster),
                    own_real: None,
                }
            }
            HostKind::Real => {
                let real = tokio::task::block_in_place(RealHost::shared);
                assert_eq!(real.service_cidr(), HOST_SERVICE_CIDR);
                Self {
                    kind,
                    client: real.client(),
                    ours: None,
                    own_real: None,
                }
            }
        }
    }

    /// Like [`Host::start`], but a real host is the test's own, stopped when
    /// this is dropped: for scenarios that look at the whole host (fixed
    /// namespace and tenant names, checks across every namespace).
    pub async fn start_isolated(kind: HostKind) -> Self {
        match kind {
            HostKind::Ours => Self::start(kind).await,
            HostKind::Real => {
                let real = tokio::task::block_in_place(|| {
                    RealHost::start(vcluster_testkit::real_host::RealHostOptions::default())
                })
                .unwrap_or_else(|e| panic!("the real Kubernetes host did not start: {e}"));
                assert_eq!(real.service_cidr(), HOST_SERVICE_CIDR);
                Self {
                    kind,
                    client: real.client(),
                    ours: None,
                    own_real: Some(real),
                }
            }
        }
    }

    /// The real host behind this one.
    fn real(&self) -> &RealHost {
        match &self.own_real {
            Some(real) => real,
            None => tokio::task::block_in_place(RealHost::shared),
        }
    }

    /// Our API server behind a host of kind [`HostKind::Ours`].
    pub fn ours(&self) -> &Cluster {
        self.ours
            .as_ref()
            .expect("this scenario needs our own host server")
    }

    /// A [`FaultProxy`] in front of this host (plain HTTP towards the
    /// test's clients either way).
    pub async fn fault_proxy(&self) -> FaultProxy {
        let upstream = match &self.ours {
            Some(cluster) => Upstream::Plain(cluster.addr()),
            None => {
                let (addr, connector, name) = self
                    .real()
                    .tls_connector()
                    .expect("a TLS connector to the real host");
                Upstream::Tls {
                    addr,
                    connector,
                    name,
                }
            }
        };
        FaultProxy::start_to(upstream).await
    }

    /// Makes our host serve resource quotas and limit ranges, as a real
    /// one does (see [`Cluster::serve_quota_kinds`]); the real host does
    /// already.
    pub fn serve_quota_kinds(&self) {
        if let Some(cluster) = &self.ours {
            cluster.serve_quota_kinds();
        }
    }

    /// Whether this is the real kube-apiserver.
    pub fn is_real(&self) -> bool {
        self.kind == HostKind::Real
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// An API of a cluster-scoped kind (nodes, storage classes).
    pub fn cluster_api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
        K::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }

    /// Creates namespace `name` (if missing) and, on the real host, waits
    /// for what its controllers add before pods can be admitted.
    pub async fn create_namespace(&self, name: &str) {
        create_namespace(&self.client, name).await;
        if self.is_real() {
            let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
                Api::namespaced(self.client.clone(), name);
            eventually("the namespace's default service account", || async {
                accounts.get_opt("default").await.ok().flatten()
            })
            .await;
        }
    }
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_owned());
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => panic!("creating namespace {name}: {err}"),
    }
}

/// Runs each scenario `async fn name(host: HostKind)` as two tests, one per
/// host: `name::our_host` and `name::real_host`.
#[macro_export]
macro_rules! on_both_hosts {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn our_host() {
                super::$scenario($crate::common::HostKind::Ours).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn real_host() {
                super::$scenario($crate::common::HostKind::Real).await
            }
        }
    )*};
}

impl Environment {
    /// A fresh virtual cluster, a host of `kind` and a syncer of virtual
    /// cluster `name` (host namespace `vcluster-<name>`).
    pub async fn start(kind: HostKind, name: &str) -> Self {
        Self::start_with(kind, name, |_| {}).await
    }

    pub fn host_name(&self, namespace: &str, name: &str) -> String {
        vcluster_core::safe_concat_name(&[name, "x", namespace, "x", &self.name])
    }
}

pub use vcluster_testkit::{eventually, DEADLINE};

/// Logs to the test's output when `RUST_LOG` asks for it (shown for a
/// failing test).
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

// ---------------------------------------------------------------------------
// Robustness helpers: a syncer whose metrics stay readable while it runs, a
// fault-injecting proxy in front of an API server, fixtures and listings.
// ---------------------------------------------------------------------------

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use vcluster_syncer::engine::MetricsSnapshot;
use vcluster_syncer::EngineHandle;

impl Cluster {
    /// The server's loopback address (what a proxy forwards to).
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("http://")
            .parse()
            .expect("cluster address")
    }
}

/// A client of the API server at `url` (plain HTTP).
pub fn client_for(url: &str) -> kube::Client {
    kube::Client::try_from(kube::Config::new(url.parse().expect("url"))).expect("client")
}

/// A syncer running in the background whose engines' counters can be read.
pub struct MeteredSyncer {
    pub cancel: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub engines: Vec<Arc<dyn EngineHandle>>,
}

impl MeteredSyncer {
    /// Every engine's counters, by syncer name.
    pub fn metrics(&self) -> BTreeMap<&'static str, MetricsSnapshot> {
        self.engines
            .iter()
            .map(|e| (e.name(), e.metrics()))
            .collect()
    }

    /// One engine's counters.
    pub fn metrics_of(&self, name: &str) -> MetricsSnapshot {
        self.engines
            .iter()
            .find(|e| e.name() == name)
            .unwrap_or_else(|| panic!("no engine {name}"))
            .metrics()
    }

    /// Cancels the syncer and waits at most `bound` for it to stop; returns
    /// how long it took. Fails the test if it takes longer or panicked.
    pub async fn stop_within(self, bound: Duration) -> Duration {
        let start = Instant::now();
        self.cancel.cancel();
        tokio::time::timeout(bound, self.task)
            .await
            .unwrap_or_else(|_| panic!("syncer did not stop within {bound:?}"))
            .expect("syncer task did not panic");
        start.elapsed()
    }
}

/// Starts a syncer for `config` between two clients (the host one may go
/// through a [`FaultProxy`]).
pub fn start_metered_syncer(
    virtual_client: kube::Client,
    host_client: kube::Client,
    config: SyncConfig,
) -> MeteredSyncer {
    let syncer =
        VirtualClusterSyncer::new(config, virtual_client, host_client).expect("syncer config");
    let cancel = syncer.cancel_token();
    let engines = syncer.engines();
    let task = tokio::spawn(syncer.run());
    MeteredSyncer {
        cancel,
        task,
        engines,
    }
}

/// What a [`FaultProxy`] does to the traffic it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Forward, holding every chunk the client sends for this long.
    Delay(Duration),
    /// Forward, holding requests whose request line contains the string
    /// (e.g. `/pods`) for this long.
    DelayPath(&'static str, Duration),
    /// Cut every open connection (mid-request if one is in flight); answer
    /// each new request with HTTP 500 and a `metav1.Status`, then close.
    Error500,
    /// Cut every open connection; close new ones after the first bytes of
    /// their request, before any answer.
    Drop,
    /// Blackhole: open and new connections carry no more bytes, without
    /// being closed; when the fault ends they are closed.
    Hang,
    /// Like `Hang`, but the connections it catches stay dead after the
    /// fault ends (a flow the network dropped: no FIN, no RST, ever); only
    /// new connections work again.
    Blackhole,
    /// Watches lag: nothing more reaches or leaves a watch request until
    /// the fault ends (then everything held back is delivered); every
    /// other request works.
    StallWatches,
}

impl Fault {
    fn breaks_connections(self) -> bool {
        matches!(
            self,
            Fault::Error500 | Fault::Drop | Fault::Hang | Fault::Blackhole
        )
    }
}

/// Where a [`FaultProxy`] forwards to.
#[derive(Clone)]
pub enum Upstream {
    /// Our API server, plain HTTP.
    Plain(SocketAddr),
    /// The real kube-apiserver: the proxy speaks TLS to it as the admin,
    /// and plain HTTP to its own clients (like `kubectl proxy`), so every
    /// fault works on the requests it can read.
    Tls {
        addr: SocketAddr,
        connector: tokio_rustls::TlsConnector,
        name: rustls_pki_types::ServerName<'static>,
    },
}

/// A connection to the upstream, plain or TLS.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

impl Upstream {
    async fn connect(&self) -> std::io::Result<Box<dyn Connection>> {
        match self {
            Upstream::Plain(addr) => {
                let stream = TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(stream))
            }
            Upstream::Tls {
                addr,
                connector,
                name,
            } => {
                let stream = TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(connector.connect(name.clone(), stream).await?))
            }
        }
    }
}

/// A TCP proxy on loopback in front of an API server that injects faults:
/// the test switches between [`Fault`]s at any time.
pub struct FaultProxy {
    pub url: String,
    fault: watch::Sender<Fault>,
    faults: Arc<AtomicUsize>,
    shutdown: CancellationToken,
}

impl FaultProxy {
    /// A proxy to our API server at `upstream`, forwarding until told
    /// otherwise.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_to(Upstream::Plain(upstream)).await
    }

    /// A proxy to `upstream`, forwarding until told otherwise.
    pub async fn start_to(upstream: Upstream) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let (fault, receiver) = watch::channel(Fault::None);
        let faults = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (counter, stop) = (faults.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((socket, _)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                tokio::spawn(proxy_connection(
                    socket,
                    upstream.clone(),
                    receiver.clone(),
                    counter.clone(),
                    stop.clone(),
                ));
            }
        });
        Self {
            url,
            fault,
            faults,
            shutdown,
        }
    }

    /// Switches the fault (applies to open connections at once).
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Connections that met a fault (answered 500, cut or blackholed).
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::Relaxed)
    }

    /// A client that talks through the proxy.
    pub fn client(&self) -> kube::Client {
        client_for(&self.url)
    }

    /// A client through the proxy whose reads time out: without one, a
    /// request that picks a pooled connection the network dropped waits
    /// forever (kube-rs sets no read timeout by default).
    pub fn client_with_read_timeout(&self, timeout: Duration) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("url"));
        config.read_timeout = Some(timeout);
        kube::Client::try_from(config).expect("client")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits until the fault is no longer `current` (or the proxy stops).
async fn fault_changes(fault: &mut watch::Receiver<Fault>, current: Fault) {
    loop {
        if *fault.borrow_and_update() != current {
            return;
        }
        if fault.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits until a fault that breaks connections begins.
async fn breaking_fault(fault: &mut watch::Receiver<Fault>) -> Fault {
    loop {
        if fault.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let now = *fault.borrow_and_update();
        if now.breaks_connections() {
            return now;
        }
    }
}

async fn proxy_connection(
    mut client: TcpStream,
    upstream: Upstream,
    mut fault: watch::Receiver<Fault>,
    faults: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    let current = *fault.borrow_and_update();
    match current {
        Fault::Error500 => {
            faults.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = answer_500(&mut client) => {}
                _ = shutdown.cancelled() => {}
            }
            return;
        }
        Fault::Drop => {
            faults.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf)).await;
            return; // dropped with the rest of the request unread: a reset
        }
        Fault::Hang | Fault::Blackhole => {
            faults.fetch_add(1, Ordering::Relaxed);
            hold(&mut fault, current, &shutdown).await;
            return;
        }
        Fault::None | Fault::Delay(_) | Fault::DelayPath(..) | Fault::StallWatches => {}
    }
    let Ok(server) = upstream.connect().await else {
        return;
    };
    let (delays, stalls) = (fault.clone(), fault.clone());
    // Whether the request this connection carries now is a watch.
    let watching = std::sync::atomic::AtomicBool::new(false);
    let began = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = tokio::io::split(server);
        let requests = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut stalls = stalls.clone();
            loop {
                let n = client_read.read(&mut buf).await?;
                if n == 0 {
                    return server_write.shutdown().await;
                }
                let line = request_line(&buf[..n]);
                if let Some(line) = &line {
                    let watch = line.contains("watch=true") || line.contains("watch=1");
                    watching.store(watch, Ordering::Relaxed);
                }
                if watching.load(Ordering::Relaxed) {
                    fault_changes(&mut stalls, Fault::StallWatches).await;
                }
                let delay = match *delays.borrow() {
                    Fault::Delay(delay) => Some(delay),
                    Fault::DelayPath(path, delay)
                        if line.as_deref().is_some_and(|l| l.contains(path)) =>
                    {
                        Some(delay)
                    }
                    _ => None,
                };
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                server_write.write_all(&buf[..n]).await?;
            }
        };
        let responses = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut stalls = stalls.clone();
            loop {
                let n = server_read.read(&mut buf).await?;
                if n == 0 {
                    return client_write.shutdown().await;
                }
                if watching.load(Ordering::Relaxed) {
                    fault_changes(&mut stalls, Fault::StallWatches).await;
                }
                client_write.write_all(&buf[..n]).await?;
            }
        };
        tokio::select! {
            _ = async { let _ = tokio::try_join!(requests, responses); } => None,
            began = breaking_fault(&mut fault) => Some(began),
            _ = shutdown.cancelled() => None,
        }
    };
    match began {
        Some(silent @ (Fault::Hang | Fault::Blackhole)) => {
            // Keep both sockets open and silent.
            faults.fetch_add(1, Ordering::Relaxed);
            hold(&mut fault, silent, &shutdown).await;
        }
        Some(_) => {
            faults.fetch_add(1, Ordering::Relaxed);
        }
        None => {}
    }
    // Dropping the sockets closes (or, with unread data, resets) them.
}

/// Holds a silent connection: until a `Hang` ends, or for good (until the
/// proxy stops) if it is a `Blackhole`.
async fn hold(fault: &mut watch::Receiver<Fault>, silent: Fault, shutdown: &CancellationToken) {
    if silent == Fault::Blackhole {
        shutdown.cancelled().await;
        return;
    }
    tokio::select! {
        _ = fault_changes(fault, silent) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// The request line, if `chunk` starts an HTTP/1.1 request.
fn request_line(chunk: &[u8]) -> Option<String> {
    const METHODS: [&[u8]; 5] = [b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE "];
    if !METHODS.iter().any(|m| chunk.starts_with(m)) {
        return None;
    }
    let end = chunk.windows(2).position(|w| w == b"\r\n")?;
    Some(String::from_utf8_lossy(&chunk[..end]).into_owned())
}

/// Reads one HTTP/1.1 request and answers it with a 500 `metav1.Status`.
async fn answer_500(client: &mut TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body_read = request.len() - head_end;
    while body_read < length {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body_read += n,
        }
    }
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "injected fault: the host is failing",
        "reason": "InternalError", "code": 500,
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// A pod with one container, mounting configmap `config_map` if given.
pub fn test_pod(name: &str, config_map: Option<&str>, labels: &[(&str, &str)]) -> Pod {
    let mut spec = serde_json::json!({"containers": [{"name": "app", "image": "nginx:1.27"}]});
    if let Some(cm) = config_map {
        spec["volumes"] = serde_json::json!([{"name": "cfg", "configMap": {"name": cm}}]);
    }
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .expect("pod")
}

/// A configmap with one data key.
pub fn test_config_map(name: &str, value: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"key": value},
    }))
    .expect("configmap")
}

/// The host objects managed by virtual cluster `vcluster`, grouped by the
/// virtual object they are a copy of (`(namespace, name)` from the
/// `object-namespace` / `object-name` annotations).
pub fn copies_by_virtual_key<K: kube::Resource + Clone>(
    objects: &[K],
    vcluster: &str,
) -> BTreeMap<(String, String), Vec<K>> {
    use vcluster_core::markers::{
        MANAGED_BY_LABEL, OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION,
    };
    let mut out: BTreeMap<(String, String), Vec<K>> = BTreeMap::new();
    for object in objects {
        let meta = object.meta();
        let managed_by = meta.labels.as_ref().and_then(|l| l.get(MANAGED_BY_LABEL));
        if managed_by.map(String::as_str) != Some(vcluster) {
            continue;
        }
        let annotations = meta.annotations.clone().unwrap_or_default();
        let key = (
            annotations
                .get(OBJECT_NAMESPACE_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
            annotations
                .get(OBJECT_NAME_ANNOTATION)
                .cloned()
                .unwrap_or_default(),
        );
        out.entry(key).or_default().push(object.clone());
    }
    out
}

/// The host's service range in environments that give the two clusters
/// different ranges (as a real host and its virtual cluster have).
pub const HOST_SERVICE_CIDR: &str = "10.128.0.0/16";

impl Cluster {
    /// Starts an in-memory API server configured by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut ApiServerConfig)) -> Self {
        let mut config = ApiServerConfig::new(Arc::new(MemoryStorage::new()));
        configure(&mut config);
        let server = ApiServer::start(config).await.expect("API server starts");
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

    /// An API of a cluster-scoped kind (nodes, storage classes).
    pub fn cluster_api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
        K::DynamicType: Default,
    {
        Api::all(self.client.clone())
    }
}

impl Environment {
    /// A fresh virtual cluster accepting the host's service addresses (as a
    /// virtual cluster must for the service syncer to show host cluster
    /// IPs), a host of `kind` with its own service range
    /// ([`HOST_SERVICE_CIDR`]), and a syncer whose configuration
    /// `configure` adjusts.
    pub async fn start_with(
        kind: HostKind,
        name: &str,
        configure: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        Self::start_custom(
            kind,
            name,
            |v| v.extra_service_cidrs = vec![HOST_SERVICE_CIDR.to_owned()],
            configure,
        )
        .await
    }

    /// A fresh virtual cluster configured by `configure_virtual`, a host
    /// of `kind`, and a syncer; new virtual services get their addresses
    /// from the host at creation (as in the demo).
    pub async fn start_custom(
        kind: HostKind,
        name: &str,
        configure_virtual: impl FnOnce(&mut ApiServerConfig),
        configure_sync: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        Self::start_inner(kind, name, configure_virtual, configure_sync, true).await
    }

    /// Like [`Environment::start_with`], but the virtual API server
    /// allocates service addresses itself, so the syncer re-creates each
    /// virtual service with the host's (the fallback path).
    pub async fn start_without_host_addresses(kind: HostKind, name: &str) -> Self {
        Self::start_inner(
            kind,
            name,
            |v| v.extra_service_cidrs = vec![HOST_SERVICE_CIDR.to_owned()],
            |_| {},
            false,
        )
        .await
    }

    async fn start_inner(
        kind: HostKind,
        name: &str,
        configure_virtual: impl FnOnce(&mut ApiServerConfig),
        configure_sync: impl FnOnce(&mut SyncConfig),
        host_addresses: bool,
    ) -> Self {
        init_logging();
        let host = Host::start(kind).await;
        let host_namespace = format!("vcluster-{name}");
        host.create_namespace(&host_namespace).await;
        let mut sync_config = config(name, &host_namespace);
        configure_sync(&mut sync_config);
        let provider = host_addresses.then(|| {
            sync_config
                .host_service_addresses(host.client.clone())
                .expect("a service address provider")
        });
        let virtual_cluster = Cluster::start_with(|v| {
            if let Some(provider) = provider {
                v.service_addresses = Some(Arc::new(provider));
            }
            configure_virtual(v);
        })
        .await;
        let syncer = start_syncer_to(&virtual_cluster, host.client.clone(), sync_config);
        Self {
            virtual_cluster,
            host,
            host_namespace,
            name: name.to_owned(),
            syncer: Some(syncer),
        }
    }
}

/// A typed object from JSON (test fixtures).
pub fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> K {
    serde_json::from_value(value).expect("a valid test object")
}

// ---------------------------------------------------------------------------
// Security helpers: kinds a real host serves that the test host must be told
// about, objects of a virtual cluster found outside its host namespace, pod
// conditions.
// ---------------------------------------------------------------------------

impl Cluster {
    /// Makes this server serve `resourcequotas` and `limitranges` (core
    /// `v1`), as a real host does (the in-memory API server does not list
    /// them among its built-in kinds).
    pub fn serve_quota_kinds(&self) {
        use vcluster_apiserver::resources::ResourceInfo;
        let quota = ResourceInfo {
            group: String::new(),
            version: "v1".into(),
            plural: "resourcequotas".into(),
            singular: "resourcequota".into(),
            kind: "ResourceQuota".into(),
            namespaced: true,
            short_names: vec!["quota".into()],
            status_subresource: true,
            ..ResourceInfo::default()
        };
        let limits = ResourceInfo {
            group: String::new(),
            version: "v1".into(),
            plural: "limitranges".into(),
            singular: "limitrange".into(),
            kind: "LimitRange".into(),
            namespaced: true,
            short_names: vec!["limits".into()],
            ..ResourceInfo::default()
        };
        self.server.registry().shared_catalog().update(|catalog| {
            catalog.insert(quota);
            catalog.insert(limits);
        });
    }
}

/// `namespace/name` of every object on `host` (pods, configmaps, secrets,
/// services, serviceaccounts, endpoints, PVCs) that carries a `managed-by`
/// marker but lies outside `host_namespace`: must always be empty.
pub async fn managed_outside(host: &Host, host_namespace: &str) -> Vec<String> {
    use k8s_openapi::api::core::v1::{
        Endpoints, PersistentVolumeClaim, Secret, Service, ServiceAccount,
    };
    use vcluster_core::markers::MANAGED_BY_LABEL;

    async fn outside<K>(host: &Host, host_namespace: &str, out: &mut Vec<String>)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::all(host.client.clone());
        let list = api
            .list(&kube::api::ListParams::default().labels(MANAGED_BY_LABEL))
            .await
            .expect("list across namespaces");
        for object in list.items {
            let meta = object.meta();
            let namespace = meta.namespace.clone().unwrap_or_default();
            if namespace != host_namespace {
                out.push(format!(
                    "{}/{}",
                    namespace,
                    meta.name.clone().unwrap_or_default()
                ));
            }
        }
    }
    let mut out = Vec::new();
    outside::<Pod>(host, host_namespace, &mut out).await;
    outside::<ConfigMap>(host, host_namespace, &mut out).await;
    outside::<Secret>(host, host_namespace, &mut out).await;
    outside::<Service>(host, host_namespace, &mut out).await;
    outside::<ServiceAccount>(host, host_namespace, &mut out).await;
    outside::<Endpoints>(host, host_namespace, &mut out).await;
    outside::<PersistentVolumeClaim>(host, host_namespace, &mut out).await;
    out
}

/// The condition of type `kind` of a pod, if it has one.
pub fn pod_condition(pod: &Pod, kind: &str) -> Option<k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .cloned()
}
