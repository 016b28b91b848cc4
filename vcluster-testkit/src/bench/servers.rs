//! API servers to benchmark against: in this process over any storage
//! backend, or in a child process (so that this process's memory is the
//! syncer's alone).

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
#[cfg(feature = "etcd")]
use vcluster_apiserver::storage::EtcdStorage;
use vcluster_apiserver::storage::{MemoryStorage, SqliteStorage, Storage};
use vcluster_apiserver::{ApiServer, ApiServerConfig};

use super::http::Target;

// The test kit's etcd launcher: a throw-away etcd on free loopback ports
// with a temporary data directory, killed on drop.
#[cfg(feature = "etcd")]
use crate::etcd;

/// A storage backend of the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `MemoryStorage`.
    Memory,
    /// `SqliteStorage` in a temporary directory (default options: WAL,
    /// `synchronous=FULL`, so every commit is fsynced).
    Sqlite,
    /// `EtcdStorage` against an etcd started on loopback (cargo feature
    /// `etcd`).
    #[cfg(feature = "etcd")]
    Etcd,
}

impl Backend {
    /// Every backend this build has (etcd with the cargo feature `etcd`).
    #[cfg(feature = "etcd")]
    pub const ALL: &'static [Backend] = &[Backend::Memory, Backend::Sqlite, Backend::Etcd];
    /// Every backend this build has (etcd with the cargo feature `etcd`).
    #[cfg(not(feature = "etcd"))]
    pub const ALL: &'static [Backend] = &[Backend::Memory, Backend::Sqlite];

    /// `memory`, `sqlite` or `etcd`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Sqlite => "sqlite",
            #[cfg(feature = "etcd")]
            Backend::Etcd => "etcd",
        }
    }

    /// The backends named in `VCLUSTER_BENCH_BACKENDS` (comma-separated),
    /// or all of them.
    pub fn from_env() -> Vec<Backend> {
        let Ok(list) = std::env::var("VCLUSTER_BENCH_BACKENDS") else {
            return Backend::ALL.to_vec();
        };
        list.split(',')
            .map(|name| {
                Backend::ALL
                    .iter()
                    .copied()
                    .find(|b| b.name() == name.trim())
                    .unwrap_or_else(|| {
                        panic!(
                            "VCLUSTER_BENCH_BACKENDS: unknown backend {name:?} (this build has {:?}; \
                             etcd needs `--features etcd`)",
                            Backend::ALL
                        )
                    })
            })
            .collect()
    }
}

/// Opens fresh, empty stores; starts one etcd the first time it is asked
/// for and gives every store its own key prefix in it.
#[derive(Default)]
pub struct Stores {
    #[cfg(feature = "etcd")]
    etcd: Option<etcd::EtcdServer>,
    /// An etcd started by someone else (the real host's), used instead of
    /// starting one: comparisons with kube-apiserver run on the same etcd.
    pub external_etcd: Option<String>,
    opened: usize,
}

/// A store and what must live as long as it (its temporary directory).
pub struct Store {
    /// The backend.
    pub backend: Backend,
    /// The store.
    pub storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
}

impl Stores {
    /// A fresh store of `backend`.
    pub async fn open(&mut self, backend: Backend) -> Store {
        self.opened += 1;
        let (storage, dir): (Arc<dyn Storage>, _) = match backend {
            Backend::Memory => (Arc::new(MemoryStorage::new()), None),
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("vcluster-bench-sqlite-")
                    .tempdir()
                    .expect("a temporary directory for SQLite");
                let storage = SqliteStorage::open(dir.path().join("store.db"))
                    .await
                    .expect("SQLite store opens in a fresh directory");
                (Arc::new(storage), Some(dir))
            }
            #[cfg(feature = "etcd")]
            Backend::Etcd => {
                let endpoint = match &self.external_etcd {
                    Some(endpoint) => endpoint.clone(),
                    None => {
                        if self.etcd.is_none() {
                            // Starting etcd polls its health synchronously.
                            self.etcd = Some(tokio::task::block_in_place(etcd::EtcdServer::start));
                        }
                        self.etcd.as_ref().map(|e| e.endpoint()).unwrap_or_default()
                    }
                };
                let prefix = format!("/vcluster-bench-{}", self.opened);
                let storage = EtcdStorage::connect(&[endpoint], &prefix)
                    .await
                    .expect("etcd on loopback accepts a client");
                (Arc::new(storage), None)
            }
        };
        Store {
            backend,
            storage,
            _dir: dir,
        }
    }
}

/// How a client reaches a [`LocalServer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 over loopback TCP.
    Tcp,
    /// HTTP/1.1 over TLS on loopback, authenticated by a client
    /// certificate and authorized (RBAC), as kube-apiserver serves: the
    /// transport of comparisons with it.
    Tls,
    /// The router as a tower service.
    InProcess,
}

/// An API server in this process, listening on a loopback port (and, when
/// started with a PKI, on a TLS one); shut down on drop.
pub struct LocalServer {
    /// The server.
    pub server: ApiServer,
    /// Its loopback address.
    pub addr: SocketAddr,
    /// Its TLS listener and the admin's connector.
    tls: Option<(SocketAddr, tokio_rustls::TlsConnector)>,
    store: Store,
}

impl LocalServer {
    /// Starts a server over `store`.
    pub async fn start(store: Store) -> Self {
        let server = ApiServer::start(ApiServerConfig::new(store.storage.clone()))
            .await
            .expect("the API server starts");
        let addr = server
            .spawn(loopback(), None)
            .await
            .expect("the API server listens on loopback");
        Self {
            server,
            addr,
            tls: None,
            store,
        }
    }

    /// Starts a server over `store` that also serves TLS with `pki`'s
    /// serving certificate and requires its clients' certificates (so
    /// every request is authenticated and authorized).
    pub async fn start_with_tls(store: Store, pki: &crate::pki::ClusterPki) -> Self {
        let mut local = Self::start(store).await;
        let read = |path: &std::path::Path| std::fs::read(path).expect("a PKI file");
        let tls = vcluster_apiserver::TlsConfig::from_pem_with_client_ca(
            &read(&pki.server_cert),
            &read(&pki.server_key),
            &read(&pki.ca_cert),
        )
        .expect("the PKI makes a TLS configuration");
        let addr = local
            .server
            .spawn(loopback(), Some(tls))
            .await
            .expect("the API server listens on loopback with TLS");
        let connector = pki.admin_tls_connector().expect("an admin TLS connector");
        local.tls = Some((addr, connector));
        local
    }

    /// The store's backend.
    pub fn backend(&self) -> Backend {
        self.store.backend
    }

    /// Where raw clients send requests.
    pub fn target(&self, transport: Transport) -> Target {
        match transport {
            Transport::Tcp => Target::Tcp(self.addr),
            Transport::Tls => {
                let (addr, connector) = self
                    .tls
                    .clone()
                    .expect("a server started with start_with_tls");
                Target::Tls {
                    addr,
                    connector,
                    name: rustls_pki_types::ServerName::IpAddress(addr.ip().into()),
                }
            }
            Transport::InProcess => Target::InProcess(self.server.router()),
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A kube-rs client of the server at `addr` over plain HTTP.
pub fn kube_client(addr: SocketAddr) -> kube::Client {
    let url = format!("http://{addr}")
        .parse()
        .expect("a loopback URL parses");
    kube::Client::try_from(kube::Config::new(url)).expect("a kube client for a loopback URL")
}

/// Set in the environment of a child process: the role it plays.
const CHILD_ENV: &str = "VCLUSTER_BENCH_CHILD";
/// The role of a [`ChildServer`].
const SERVER_ROLE: &str = "server";

/// The role this process was started in by [`ChildServer::spawn`]
/// (`server`) or [`run_child`], if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// The body of a [`ChildServer`]: serves an in-memory API server on
/// loopback, says `LISTENING <addr>` on stdout, and returns when stdin
/// closes (the parent is done with it, or died).
pub fn serve_child_server() {
    assert_eq!(child_role().as_deref(), Some(SERVER_ROLE));
    super::runtime().block_on(async {
        let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
            .await
            .expect("the child API server starts");
        let addr = server
            .spawn(loopback(), None)
            .await
            .expect("the child API server listens on loopback");
        println!("LISTENING {addr}");
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
        server.shutdown();
    });
}

/// Runs this bench binary again as a child in `role` (its output goes to
/// ours) and waits for it; panics if it fails. For measurements that need
/// a fresh process, such as resident memory.
pub async fn run_child(role: &str) {
    let exe = std::env::current_exe().expect("the bench binary knows its path");
    let status = tokio::process::Command::new(exe)
        .env(CHILD_ENV, role)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .expect("the bench binary starts as a child");
    assert!(status.success(), "child {role:?} failed: {status}");
}

/// An in-memory API server in a child process (this bench binary,
/// started again); killed on drop.
pub struct ChildServer {
    child: tokio::process::Child,
    /// Its loopback address.
    pub addr: SocketAddr,
}

impl ChildServer {
    /// Starts one and waits until it listens.
    pub async fn spawn() -> Self {
        let exe = std::env::current_exe().expect("the bench binary knows its path");
        let mut child = tokio::process::Command::new(exe)
            .env(CHILD_ENV, SERVER_ROLE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the bench binary starts as a child server");
        let stdout = child.stdout.take().expect("the child's stdout is piped");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .await
            .expect("the child server reports its address");
        let addr = first
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the child server said {first:?}, not LISTENING <addr>"));
        Self { child, addr }
    }

    /// A kube-rs client of it.
    pub fn kube_client(&self) -> kube::Client {
        kube_client(self.addr)
    }

    /// Where raw clients send requests.
    pub fn target(&self) -> Target {
        Target::Tcp(self.addr)
    }

    /// The child's resident set size.
    pub fn rss_bytes(&self) -> Option<u64> {
        super::memory::rss_bytes_of(self.child.id()?)
    }

    /// The CPU time the child has used so far.
    pub fn cpu_time(&self) -> Duration {
        self.child
            .id()
            .and_then(super::memory::cpu_time_of)
            .unwrap_or_default()
    }
}
