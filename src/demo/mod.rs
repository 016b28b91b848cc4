//! The demo virtual cluster: everything `cargo run --example demo` starts,
//! as a library so tests and benchmarks start the same thing.
//!
//! Without a host kubeconfig it runs an embedded host API server (in
//! memory) with a [`node::SimulatedNode`], a virtual API server over the
//! chosen store, the syncer between them, and the virtual cluster's
//! controllers; with one, it syncs into that real cluster instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;
use vcluster_apiserver::auth::{ServiceAccountKey, StaticTokens};
use vcluster_apiserver::health::Component;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::storage::StorageConfig;
use vcluster_apiserver::{state_files, ApiServer, ApiServerConfig, TlsConfig};
use vcluster_controllers::csrsigning::ClusterSigner;
use vcluster_controllers::{ControllerManager, ControllerOptions};
use vcluster_core::SingleNamespaceTranslator;
use vcluster_syncer::engine::{prometheus_text, MetricsSnapshot};
use vcluster_syncer::syncers::limits::HostLimits;
use vcluster_syncer::syncers::nodes::{NodeMode, NodeSelection};
use vcluster_syncer::{EnabledSyncers, EngineHandle, PodPolicy, SyncConfig, VirtualClusterSyncer};

pub mod audit;
pub mod dns;
pub mod encryption;
pub mod kubeconfig;
pub mod leader;
pub mod node_logs;
pub mod node_streams;
pub mod tls;

/// The embedded host's simulated node (the `vcluster-simnode` crate).
pub use vcluster_simnode as node;

pub use audit::{AuditOptions, AuditSetupError};
pub use leader::LeaderElection;
use node::{SimulatedNode, SimulatedNodeConfig};
use tls::Certificates;

/// The data directory layout version this build writes and understands.
pub const DATA_DIR_VERSION: &str = "1";

/// The host's service range the embedded host uses (and the virtual API
/// server accepts addresses from, so virtual services show host IPs).
pub const HOST_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The virtual API server's own service range (disjoint from the host's).
pub const VIRTUAL_SERVICE_CIDR: &str = "10.128.0.0/16";

/// How to run the demo.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The virtual cluster's name.
    pub name: String,
    /// Where state, certificates and kubeconfigs live.
    pub data_dir: PathBuf,
    /// Where the virtual API server listens.
    pub listen: SocketAddr,
    /// Where the embedded host API server listens.
    pub host_listen: SocketAddr,
    /// The virtual cluster's store (`None`: SQLite in the data directory).
    pub store: Option<StorageConfig>,
    /// A real host cluster instead of the embedded one.
    pub host_kubeconfig: Option<PathBuf>,
    /// The host namespace (default `vcluster-<name>`).
    pub host_namespace: Option<String>,
    /// The host's service range: the embedded host assigns cluster IPs
    /// from it, and the virtual API server accepts them (default
    /// [`HOST_SERVICE_CIDR`]).
    pub host_service_cidr: String,
    /// Serve plain HTTP instead of TLS (then nothing is authenticated
    /// nor authorized: every client is an administrator).
    pub insecure_http: bool,
    /// Static bearer tokens (kube-apiserver's `--token-auth-file` CSV:
    /// `token,user,uid,"group1,group2"`) accepted by the virtual API server.
    pub token_auth_file: Option<PathBuf>,
    /// Secrets encrypted at rest in the virtual cluster's store (default:
    /// a generated aesgcm key in the data directory).
    pub encryption: encryption::Encryption,
    /// The virtual API server's audit log (off by default).
    pub audit: AuditOptions,
    /// The simulated node's settings.
    pub node: SimulatedNodeConfig,
    /// Which host nodes tenants see (`None`: every node of the embedded
    /// host, so DaemonSets run at once; only the used ones of a real host).
    pub nodes: Option<NodeSelection>,
    /// Where the virtual cluster's DNS server listens (UDP and TCP; port
    /// 0: a free one). See [`dns`].
    pub dns_listen: SocketAddr,
    /// Leader election among replicas sharing one store (`None`: this
    /// process is the only one and runs everything). With it, every
    /// replica serves the API and only the lease holder runs the syncer,
    /// the controllers and the garbage collector; see [`leader`].
    pub leader_election: Option<LeaderElection>,
    /// Which built-in syncers run (`sync` of `vcluster.yaml`).
    pub syncers: EnabledSyncers,
    /// Real copies of host nodes, or fake ones.
    pub node_mode: NodeMode,
    /// Which tenant pods may reach the host (default: baseline).
    pub pod_policy: PodPolicy,
    /// A ResourceQuota and LimitRange kept in the host namespace (default:
    /// none).
    pub host_limits: HostLimits,
    /// The cluster domain of the virtual cluster's DNS and of synced pods'
    /// search paths (default [`dns::CLUSTER_DOMAIN`]).
    pub cluster_domain: String,
    /// Where tenant pods on the host reach the virtual API server and its
    /// DNS (`None`: the listen addresses, where the host can reach them).
    /// A control plane in a pod listens on all interfaces and is reached
    /// through its Service's cluster IP, which goes here.
    pub advertise: Option<Advertise>,
    /// Extra names and addresses the serving certificate is valid for
    /// (beside `localhost` and `127.0.0.1`): the control plane Service's
    /// DNS names and IP, so clients in the host cluster verify it.
    pub tls_sans: Vec<String>,
    /// Create the host namespace when it is missing (a control plane in a
    /// pod runs in its namespace, and may not create namespaces).
    pub create_host_namespace: bool,
}

/// How tenant pods on the host reach the virtual control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advertise {
    /// The virtual API server (the `KUBERNETES_SERVICE_*` of tenant pods).
    pub api_server: SocketAddr,
    /// The DNS server tenant pods resolve through (port 53).
    pub dns_server: std::net::IpAddr,
}

impl DemoOptions {
    /// Defaults for a demo in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: "demo".into(),
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
            host_listen: SocketAddr::from(([127, 0, 0, 1], 6444)),
            store: None,
            host_kubeconfig: None,
            host_namespace: None,
            host_service_cidr: HOST_SERVICE_CIDR.into(),
            insecure_http: false,
            token_auth_file: None,
            encryption: encryption::Encryption::default(),
            audit: AuditOptions::default(),
            node: SimulatedNodeConfig::default(),
            nodes: None,
            dns_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            leader_election: None,
            syncers: EnabledSyncers::default(),
            node_mode: NodeMode::default(),
            pod_policy: PodPolicy::default(),
            host_limits: HostLimits::default(),
            cluster_domain: dns::CLUSTER_DOMAIN.to_owned(),
            advertise: None,
            tls_sans: Vec::new(),
            create_host_namespace: true,
        }
    }

    /// The syncer's configuration these options give: what `start`
    /// runs, and what a deployment must grant on the host
    /// ([`vcluster_syncer::permissions::host_rules`] of it). The pod
    /// environment's addresses are filled in by [`start`].
    pub fn sync_config(&self) -> SyncConfig {
        let mut config = SyncConfig::new(self.name.clone(), self.host_namespace());
        config.syncers = self.syncers.clone();
        config.node_mode = self.node_mode.clone();
        config.pod_policy = self.pod_policy.clone();
        config.host_limits = self.host_limits.clone();
        config.pod_environment.cluster_domain = self.cluster_domain.clone();
        // Tenant pods hold tokens of the virtual API server, not the host's.
        config.pod_environment.service_account_tokens = true;
        let embedded = self.host_kubeconfig.is_none();
        config.node_selection = self.nodes.unwrap_or(if embedded {
            NodeSelection::All
        } else {
            NodeSelection::Used
        });
        config
    }

    /// The host namespace (default `vcluster-<name>`).
    pub fn host_namespace(&self) -> String {
        self.host_namespace
            .clone()
            .unwrap_or_else(|| format!("vcluster-{}", self.name))
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The data directory cannot be used.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// The directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The address is taken or not bindable.
    #[error("cannot listen on {addr}: {message} (pick another address with {flag})")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        message: String,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// The store could not be opened.
    #[error("cannot open the virtual cluster's store {store}: {message}")]
    Store {
        /// The store URL.
        store: String,
        /// Why.
        message: String,
    },
    /// The host kubeconfig cannot be read or used.
    #[error("host kubeconfig {path}: {message}")]
    HostKubeconfig {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The host cluster did not answer.
    #[error("cannot reach the host cluster at {url}: {message}")]
    HostUnreachable {
        /// Where it was expected.
        url: String,
        /// Why.
        message: String,
    },
    /// Anything else that failed while starting.
    #[error("{what}: {message}")]
    Start {
        /// What was being started.
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// A running demo.
pub struct RunningDemo {
    /// The virtual cluster's kubeconfig.
    pub kubeconfig: PathBuf,
    /// The embedded host's kubeconfig (`None` with a real host).
    pub host_kubeconfig: Option<PathBuf>,
    /// The virtual API server's address.
    pub virtual_addr: SocketAddr,
    /// The host namespace objects are synced into.
    pub host_namespace: String,
    /// Where the virtual cluster's DNS server answers (UDP and TCP).
    pub dns_addr: SocketAddr,
    virtual_server: ApiServer,
    host_server: Option<ApiServer>,
    cancel: CancellationToken,
    leadership_lost: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningDemo {
    /// Resolves when this replica led and lost the lease (with
    /// [`DemoOptions::leader_election`]; never without): its syncer,
    /// controllers and garbage collector have stopped, and the process
    /// should exit so it can start over as a candidate.
    pub async fn leadership_lost(&self) {
        self.leadership_lost.cancelled().await;
    }

    /// Stops the syncer, the node and the servers, and waits for them.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.virtual_server.shutdown();
        if let Some(host) = &self.host_server {
            host.shutdown();
        }
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a component did not stop within 10s");
            }
        }
    }
}

fn data_dir_error(path: &Path, message: impl Into<String>) -> DemoError {
    DemoError::DataDir {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Creates the data directory (owner-only: it holds the admin key and
/// every Secret), or checks that an existing one was written by a
/// compatible version and tightens what an older build left readable by
/// other users, naming each path in a warning.
fn prepare_data_dir(dir: &Path) -> Result<(), DemoError> {
    state_files::create_private_dir(dir)
        .map_err(|e| data_dir_error(dir, format!("cannot be created: {e}")))?;
    let loosened = state_files::tighten(dir)
        .map_err(|e| data_dir_error(dir, format!("cannot be made owner-only: {e}")))?;
    for path in loosened {
        tracing::warn!(
            path = %path.display(),
            "was readable by other users; made owner-only (0700 directories, 0600 files)"
        );
    }
    let marker = dir.join("VERSION");
    match std::fs::read_to_string(&marker) {
        Ok(found) if found.trim() == DATA_DIR_VERSION => Ok(()),
        Ok(found) => Err(data_dir_error(
            dir,
            format!(
                "was written by an incompatible version (layout {:?}, this build uses {DATA_DIR_VERSION:?}); use another --data-dir or remove it",
                found.trim()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_content = std::fs::read_dir(dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if has_content {
                return Err(data_dir_error(
                    dir,
                    "is not empty and is not a demo data directory (no VERSION file); use an empty or new --data-dir",
                ));
            }
            state_files::write_private_file(&marker, format!("{DATA_DIR_VERSION}\n").as_bytes())
                .map_err(|e| data_dir_error(dir, format!("cannot be written: {e}")))
        }
        Err(e) => Err(data_dir_error(dir, format!("cannot be read: {e}"))),
    }
}

async fn bind(addr: SocketAddr, flag: &'static str) -> Result<tokio::net::TcpListener, DemoError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| DemoError::Listen {
            addr,
            message: if e.kind() == std::io::ErrorKind::AddrInUse {
                "the address is already in use".into()
            } else {
                e.to_string()
            },
            flag,
        })
}

fn start_error(what: &'static str) -> impl Fn(String) -> DemoError {
    move |message| DemoError::Start { what, message }
}

/// The files of a data directory that every replica of one virtual
/// cluster must share: the CA (client certificates and kubeconfigs stay
/// valid whichever replica answers), the admin's certificate, the
/// service-account signing key (tokens verify on every replica) and the
/// key secrets are encrypted with in the shared store. The serving
/// certificate is each replica's own, signed by that CA.
pub const SHARED_FILES: &[&str] = &[
    "VERSION",
    "ca.crt",
    "ca.key",
    "admin.crt",
    "admin.key",
    "sa.key",
    encryption::GENERATED_FILE,
];

/// Makes the data directory and its credentials (what [`start`] does
/// first), without starting anything: so a control plane can publish
/// its [`SHARED_FILES`] for other replicas before it serves.
pub fn prepare_credentials(options: &DemoOptions) -> Result<(), DemoError> {
    prepare_data_dir(&options.data_dir)?;
    Certificates::load_or_create(&options.data_dir, &options.tls_sans)
        .map_err(|e| data_dir_error(&options.data_dir, e.to_string()))?;
    ServiceAccountKey::load_or_create(&options.data_dir.join("sa.key"))
        .map_err(|e| data_dir_error(&options.data_dir, e.to_string()))?;
    options.encryption.load(&options.data_dir)?;
    Ok(())
}

/// Writes another replica's [`SHARED_FILES`] into `data_dir`, so this
/// replica takes its CA and keys. A serving certificate signed by a
/// different CA (this replica made its own before it lost the race to
/// publish them) is removed, so [`start`] signs a new one with the shared
/// CA.
pub fn adopt_shared_files(
    data_dir: &Path,
    files: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<(), DemoError> {
    state_files::create_private_dir(data_dir)
        .map_err(|e| data_dir_error(data_dir, format!("cannot be created: {e}")))?;
    let ca_before = std::fs::read(data_dir.join("ca.crt")).ok();
    for name in SHARED_FILES {
        let content = files.get(*name).ok_or_else(|| {
            data_dir_error(data_dir, format!("the shared credentials lack {name}"))
        })?;
        state_files::write_private_file(&data_dir.join(name), content)
            .map_err(|e| data_dir_error(data_dir, format!("{name} cannot be written: {e}")))?;
    }
    if ca_before.as_deref() != files.get("ca.crt").map(Vec::as_slice) {
        for stale in ["server.crt", "server.key"] {
            match std::fs::remove_file(data_dir.join(stale)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(data_dir_error(
                        data_dir,
                        format!("{stale} (signed by another CA) cannot be removed: {e}"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Starts the demo and returns once everything serves.
pub async fn start(options: DemoOptions) -> Result<RunningDemo, DemoError> {
    if let Some(election) = &options.leader_election {
        election
            .config()
            .validate()
            .map_err(|e| start_error("leader election")(e.to_string()))?;
    }
    prepare_data_dir(&options.data_dir)?;
    let certs = Certificates::load_or_create(&options.data_dir, &options.tls_sans)
        .map_err(|e| data_dir_error(&options.data_dir, e.to_string()))?;
    // Client certificates signed by the demo CA authenticate (the admin
    // kubeconfig's CN=admin, O=system:masters), so both API servers
    // enforce authentication and RBAC; their in-process clients (syncer,
    // controllers, simulated node) act as `system:apiserver`.
    let tls = if options.insecure_http {
        None
    } else {
        Some(
            TlsConfig::from_pem_with_client_ca(
                certs.server_cert.as_bytes(),
                certs.server_key.as_bytes(),
                certs.ca_cert.as_bytes(),
            )
            .map_err(|e| start_error("TLS")(e.to_string()))?,
        )
    };
    // Service-account tokens stay valid across restarts.
    let service_account_key = ServiceAccountKey::load_or_create(&options.data_dir.join("sa.key"))
        .map_err(|e| data_dir_error(&options.data_dir, e.to_string()))?;
    let static_tokens = match &options.token_auth_file {
        Some(path) => {
            StaticTokens::load(path).map_err(|e| start_error("the token file")(e.to_string()))?
        }
        None => StaticTokens::default(),
    };
    let audit = options
        .audit
        .config()
        .map_err(|e| start_error("the audit log")(e.to_string()))?;
    let scheme = if options.insecure_http {
        "http"
    } else {
        "https"
    };
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    let host_namespace = options.host_namespace();

    // Bind both ports first: a port in use is the most common mistake.
    let virtual_listener = bind(options.listen, "--listen").await?;
    let host_listener = if options.host_kubeconfig.is_none() {
        Some(bind(options.host_listen, "--host-listen").await?)
    } else {
        None
    };

    // The host: embedded, or a real cluster.
    // The syncer's host client times reads out (see `connect_host`); the
    // one `kubectl logs -f` streams through must not.
    let (host_client, host_streams, host_server, host_kubeconfig) = match &options.host_kubeconfig {
        Some(path) => {
            let (syncer_client, streams) = connect_host(path).await?;
            (syncer_client, streams, None, None)
        }
        None => {
            let mut host_config = ApiServerConfig::new(Arc::new(MemoryStorage::new()));
            host_config.service_cidr = options.host_service_cidr.clone();
            host_config.pod_logs = Some(Arc::new(node_logs::SimulatedNodeLogs::new(
                options.node.name.clone(),
            )));
            let node_streams = Arc::new(node_streams::NodeStreams::default());
            host_config.container_streams = Some(node_streams.clone());
            let server = ApiServer::start(host_config)
                .await
                .map_err(|e| start_error("the embedded host API server")(e.to_string()))?;
            let listener = host_listener
                .ok_or_else(|| start_error("the embedded host")("no listener".into()))?;
            let addr = listener
                .local_addr()
                .map_err(|e| start_error("the embedded host")(e.to_string()))?;
            let serving = server.clone();
            let host_tls = tls.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(err) = serving.serve(listener, host_tls).await {
                    tracing::error!(error = %err, "host API server stopped");
                }
            }));
            let path = options.data_dir.join("host.kubeconfig");
            kubeconfig::write(
                &path,
                "host",
                &format!("{scheme}://{addr}"),
                &certs,
                options.insecure_http,
            )
            .map_err(|e| data_dir_error(&options.data_dir, e.to_string()))?;
            node_streams.set(vcluster_simnode::SimulatedStreams::new(server.client()));
            // Logs and container streams go over the network, as to a real
            // host: an in-process client cannot upgrade a connection.
            let (_, streams) = connect_host(&path).await?;
            (server.client(), streams, Some(server), Some(path))
        }
    };
    if options.create_host_namespace {
        ensure_namespace(&host_client, &host_namespace).await?;
    }
    if host_server.is_some() {
        let node = SimulatedNode::register(host_client.clone(), options.node.clone())
            .await
            .map_err(|e| start_error("the simulated node")(e.to_string()))?;
        let node_cancel = cancel.clone();
        tasks.push(tokio::spawn(node.run(node_cancel)));
    }

    // The virtual control plane.
    let store = options
        .store
        .clone()
        .unwrap_or_else(|| StorageConfig::Sqlite {
            path: options.data_dir.join("virtual.db"),
            options: Default::default(),
        });
    let storage = store.open().await.map_err(|e| DemoError::Store {
        store: store.to_string(),
        message: e.to_string(),
    })?;
    let mut config = ApiServerConfig::new(storage);
    config.encryption = options.encryption.load(&options.data_dir)?;
    config.service_cidr = VIRTUAL_SERVICE_CIDR.into();
    config.extra_service_cidrs = vec![options.host_service_cidr.clone()];
    config.advertised_port = options.listen.port();
    config.auth.service_account_key = Some(service_account_key);
    config.auth.static_tokens = static_tokens;
    config.audit = audit;
    // Replicas sharing the store collect garbage only while they lead.
    let garbage_collector = if options.leader_election.is_some() {
        config.garbage_collector.take()
    } else {
        None
    };
    // New services get the host's addresses at creation (the host copy is
    // made first), so they are never re-created to adopt them.
    let mut sync_config = options.sync_config();
    // A real host: stop now, naming every missing permission, rather than
    // fail object by object later (a control plane deployed without its
    // Role, or with an older one).
    if host_server.is_none() {
        let rules = vcluster_syncer::permissions::host_rules(&sync_config);
        vcluster_syncer::permissions::check_host_access(&host_client, &host_namespace, &rules)
            .await
            .map_err(|e| start_error("the host's RBAC")(e.to_string()))?;
    }
    let addresses = sync_config
        .host_service_addresses(host_client.clone())
        .map_err(|e| start_error("the syncer")(e.to_string()))?;
    config.service_addresses = Some(Arc::new(addresses));
    // `kubectl logs` reads the host pod the syncer made of a virtual pod.
    let translator = SingleNamespaceTranslator::new(&options.name, &host_namespace)
        .map_err(|e| start_error("the virtual API server")(e.to_string()))?;
    let translator: Arc<dyn vcluster_core::Translator> = Arc::new(translator);
    config.pod_logs = Some(Arc::new(crate::logs::HostPodLogs::new(
        host_streams.clone(),
        translator.clone(),
    )));
    // `kubectl exec`, `attach`, `cp` and `port-forward` open on the host pod.
    config.container_streams = Some(Arc::new(
        vcluster_syncer::streams::HostContainerStreams::new(host_streams, translator),
    ));
    // The controllers run in this process; the host schedules the synced
    // pods: both are what `kubectl get componentstatuses` asks about.
    config.components = vec![
        Component::in_process("scheduler", "ok"),
        Component::in_process("controller-manager", "ok"),
    ];
    // `/metrics` of the virtual API server carries the syncer's counters;
    // the syncer is made after the server, so its engines are filled in
    // then. Weak: the engines hold clients of this very server, and a
    // strong reference would keep the server (and its store) alive forever.
    let engines: Arc<std::sync::OnceLock<Vec<Weak<dyn EngineHandle>>>> = Arc::default();
    let scraped = engines.clone();
    config.metrics.push(Arc::new(move || {
        let snapshots: Vec<(&str, MetricsSnapshot)> = scraped
            .get()
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
            .map(|e| (e.name(), e.metrics()))
            .collect();
        prometheus_text(snapshots.iter().map(|(name, m)| (*name, m)))
    }));
    let virtual_server = ApiServer::start(config)
        .await
        .map_err(|e| start_error("the virtual API server")(e.to_string()))?;
    let virtual_addr = virtual_listener
        .local_addr()
        .map_err(|e| start_error("the virtual API server")(e.to_string()))?;
    let serving = virtual_server.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(err) = serving.serve(virtual_listener, tls).await {
            tracing::error!(error = %err, "virtual API server stopped");
        }
    }));
    let kubeconfig_path = options.data_dir.join("kubeconfig");
    kubeconfig::write(
        &kubeconfig_path,
        &options.name,
        &format!("{scheme}://{virtual_addr}"),
        &certs,
        options.insecure_http,
    )
    .map_err(|e| data_dir_error(&options.data_dir, e.to_string()))?;

    // The virtual cluster's DNS, which synced pods resolve through, and
    // the virtual API server as their `kubernetes` service.
    // A loopback address means something to the embedded host's pods (the
    // simulated node runs on this machine) but not to a real host's.
    let reachable = |ip: std::net::IpAddr| host_server.is_some() || !ip.is_loopback();
    let dns_addr = dns::start(
        virtual_server.client(),
        options.dns_listen,
        &options.cluster_domain,
        match options.advertise {
            Some(advertise) => Some(advertise.api_server.ip()),
            None => Some(virtual_addr.ip()).filter(|ip| reachable(*ip)),
        },
        cancel.clone(),
        &mut tasks,
    )
    .await?;
    let pods = &mut sync_config.pod_environment;
    match options.advertise {
        Some(advertise) => {
            pods.dns_server = Some(advertise.dns_server.to_string());
            pods.api_server = Some((
                advertise.api_server.ip().to_string(),
                advertise.api_server.port(),
            ));
        }
        None => {
            if reachable(dns_addr.ip()) {
                pods.dns_server = Some(dns_addr.ip().to_string());
            }
            if reachable(virtual_addr.ip()) {
                pods.api_server = Some((virtual_addr.ip().to_string(), virtual_addr.port()));
            }
        }
    }

    // The autoscaler's usage: the host's metrics API, measuring the host
    // pods the syncer made; while the host has none (the simulated node
    // has none), simulated usage: a pod's `metrics.vcluster.dev/<resource>`
    // annotation (`cpu: 400m`) or else half of what its containers request
    // (see `AnnotatedUsage`).
    let metrics_translator = SingleNamespaceTranslator::new(&options.name, &host_namespace)
        .map_err(|e| start_error("the autoscaler's metrics")(e.to_string()))?;
    let host_namespace_for_metrics = host_namespace.clone();
    let pod_metrics = Arc::new(
        crate::metrics::HostPodMetrics::new(Arc::new(metrics_translator)).with_fallback(Arc::new(
            vcluster_controllers::AnnotatedUsage {
                percent_of_request: 50,
            },
        )),
    );
    let syncer =
        VirtualClusterSyncer::new(sync_config, virtual_server.client(), host_client.clone())
            .map_err(|e| start_error("the syncer")(e.to_string()))?;
    let _ = engines.set(syncer.engines().iter().map(Arc::downgrade).collect());

    // The virtual controllers (Deployments, Jobs, Endpoints, ...), against
    // the virtual API server only; the autoscaler reads `pod_metrics`.
    // Approved client certificate requests are signed by the cluster CA.
    let mut controller_options = ControllerOptions::default()
        .with_root_ca(certs.ca_cert.clone())
        .with_metrics(pod_metrics.clone());
    controller_options.signer = Some(ClusterSigner::new(
        certs.ca_cert.clone(),
        certs.ca_key.clone(),
    ));
    let controllers = ControllerManager::new(virtual_server.client(), controller_options);

    // What runs once among replicas (all of it without leader election):
    // the pod-metrics poller, the syncer, the controllers, the collector.
    let leader_server = virtual_server.clone();
    let parts: leader::LeaderParts = Box::new(move |token: CancellationToken| {
        let mut tasks = vec![pod_metrics.spawn(
            host_client,
            &host_namespace_for_metrics,
            std::time::Duration::from_secs(15),
            token.clone(),
        )];
        let syncer_cancel = syncer.cancel_token();
        let outer = token.clone();
        tasks.push(tokio::spawn(async move {
            tokio::select! {
                _ = syncer.run() => {}
                _ = async { outer.cancelled().await; syncer_cancel.cancel(); std::future::pending::<()>().await } => {}
            }
        }));
        tasks.push(controllers.spawn(token.clone()));
        if let Some(gc) = garbage_collector {
            tasks.push(leader_server.spawn_garbage_collector(gc, token));
        }
        tasks
    });
    let leadership_lost = CancellationToken::new();
    tasks.extend(leader::supervise(
        options.leader_election.as_ref(),
        virtual_server.client(),
        parts,
        cancel.clone(),
        leadership_lost.clone(),
    )?);

    Ok(RunningDemo {
        kubeconfig: kubeconfig_path,
        host_kubeconfig,
        virtual_addr,
        host_namespace,
        dns_addr,
        virtual_server,
        host_server,
        cancel,
        leadership_lost,
        tasks,
    })
}

/// A client of a real host cluster, checked to answer.
/// A real host cluster's read timeout for the syncer's client: longer than
/// a watch lasts (60 s), so only a request on a connection the network
/// dropped runs into it (kube-rs sets none by default, and such a request
/// would wait forever).
const HOST_READ_TIMEOUT: Duration = Duration::from_secs(90);

/// Clients of a real host: the syncer's (with [`HOST_READ_TIMEOUT`]) and one
/// for long streams such as `kubectl logs -f`.
async fn connect_host(path: &Path) -> Result<(kube::Client, kube::Client), DemoError> {
    let kubeconfig_error = |message: String| DemoError::HostKubeconfig {
        path: path.display().to_string(),
        message,
    };
    let file =
        kube::config::Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| kubeconfig_error(e.to_string()))?;
    let url = config.cluster_url.to_string();
    let streams =
        kube::Client::try_from(config.clone()).map_err(|e| kubeconfig_error(e.to_string()))?;
    let mut timed = config;
    timed.read_timeout = Some(HOST_READ_TIMEOUT);
    let client = kube::Client::try_from(timed).map_err(|e| kubeconfig_error(e.to_string()))?;
    match tokio::time::timeout(Duration::from_secs(10), client.apiserver_version()).await {
        Ok(Ok(_)) => Ok((client, streams)),
        Ok(Err(e)) => Err(DemoError::HostUnreachable {
            url,
            message: e.to_string(),
        }),
        Err(_) => Err(DemoError::HostUnreachable {
            url,
            message: "no answer within 10s".into(),
        }),
    }
}

async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<(), DemoError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.to_owned());
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(start_error("creating the host namespace")(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopting_another_replicas_ca_drops_the_serving_certificate_it_did_not_sign() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = dir.path().join("ours");
        let theirs = dir.path().join("theirs");
        for path in [&ours, &theirs] {
            let options = DemoOptions::new(path);
            prepare_credentials(&options).expect("credentials");
        }
        let files = SHARED_FILES
            .iter()
            .map(|f| {
                (
                    (*f).to_owned(),
                    std::fs::read(theirs.join(f)).expect("read"),
                )
            })
            .collect();
        adopt_shared_files(&ours, &files).expect("adopt");
        assert_eq!(
            std::fs::read(ours.join("ca.crt")).expect("ca"),
            std::fs::read(theirs.join("ca.crt")).expect("ca")
        );
        assert!(!ours.join("server.crt").exists());
        // The next start signs one with the shared CA.
        let certs = Certificates::load_or_create(&ours, &[]).expect("certs");
        let ca_key = rcgen::KeyPair::from_pem(&certs.ca_key).expect("key");
        assert!(rcgen::Issuer::from_ca_cert_pem(&certs.ca_cert, ca_key).is_ok());
        vcluster_apiserver::TlsConfig::from_pem_with_client_ca(
            certs.server_cert.as_bytes(),
            certs.server_key.as_bytes(),
            certs.ca_cert.as_bytes(),
        )
        .expect("a usable serving certificate");
        // Adopting the same CA again keeps the serving certificate.
        adopt_shared_files(&ours, &files).expect("adopt again");
        assert!(ours.join("server.crt").exists());
    }

    #[test]
    fn data_dirs_are_versioned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state");
        prepare_data_dir(&path).expect("new dir");
        prepare_data_dir(&path).expect("same version");
        std::fs::write(path.join("VERSION"), "99\n").expect("write");
        let err = prepare_data_dir(&path).expect_err("incompatible");
        assert!(err.to_string().contains("incompatible version"), "{err}");
        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(&foreign).expect("mkdir");
        std::fs::write(foreign.join("something"), "x").expect("write");
        assert!(prepare_data_dir(&foreign).is_err());
    }
}
