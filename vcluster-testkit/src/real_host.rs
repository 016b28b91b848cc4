//! A real Kubernetes control plane on loopback, the reference host: etcd,
//! kube-apiserver (TLS, client-certificate admin, service-account keys, a
//! service range, the default admission plugins) and kube-controller-manager
//! (the controllers a syncer meets on any cluster), built from their Go
//! modules by `tools/upstream/build`, plus a simulated node
//! (`vcluster-simnode`) that binds and runs pods, since there is no
//! scheduler and no kubelet.
//!
//! Starting one takes seconds, so a test binary normally shares one:
//! [`RealHost::shared`]. Tests keep out of each other's way with their own
//! namespaces. Processes run under a harness thread that lives as long as
//! the test process, and the kernel kills them when it ends; an owned
//! [`RealHost`] stops them when dropped.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use vcluster_simnode::{SimulatedNode, SimulatedNodeConfig};

use crate::etcd::EtcdServer;
use crate::pki::ClusterPki;
use crate::process::Process;
use crate::upstream;

/// How long each component may take to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// Attempts at a fresh port when another process took the API server's.
const PORT_ATTEMPTS: usize = 3;
/// Folder-name prefix of real hosts' state under the temporary directory.
const DIR_PREFIX: &str = "vcluster-realhost-";

/// The controllers kube-controller-manager runs: those a synced workload
/// meets on any cluster. Left out: the scheduler's and kubelet's partners
/// (node lifecycle, taint eviction, pod GC), volume binding (tests play the
/// provisioner) and the workload controllers of kinds neither the syncer
/// nor `vcluster create` (a StatefulSet) writes to the host.
pub const CONTROLLERS: &[&str] = &[
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "replicaset-controller",
    "deployment-controller",
    "statefulset-controller",
    "persistentvolumeclaim-protection-controller",
];

/// How a real host is set up.
#[derive(Clone, Debug)]
pub struct RealHostOptions {
    /// kube-apiserver's `--service-cluster-ip-range`.
    pub service_cidr: String,
    /// The simulated node that runs the host's pods.
    pub node: SimulatedNodeConfig,
    /// Whether the simulated node runs at all: a host compared answer by
    /// answer with our API server must not have pods bound behind its back.
    pub run_node: bool,
    /// The controllers kube-controller-manager runs ([`CONTROLLERS`] by
    /// default; [`QUIET_CONTROLLERS`] for a host whose objects change only
    /// when a client changes them).
    pub controllers: Vec<&'static str>,
}

/// The controllers of a host that is compared with our API server answer
/// by answer: those whose work the API server itself does in ours
/// (namespace deletion, garbage collection) and the `default` service
/// account that pod admission needs. Nothing else writes behind a client's
/// back (no status of workloads, no endpoints, no node).
pub const QUIET_CONTROLLERS: &[&str] = &[
    "namespace-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
];

impl RealHostOptions {
    /// A host whose objects change only when a client changes them (see
    /// [`QUIET_CONTROLLERS`]), for differential tests.
    pub fn quiet() -> Self {
        Self {
            run_node: false,
            controllers: QUIET_CONTROLLERS.to_vec(),
            ..Self::default()
        }
    }
}

impl Default for RealHostOptions {
    fn default() -> Self {
        Self {
            service_cidr: "10.128.0.0/16".into(),
            node: SimulatedNodeConfig {
                name: "real-host-node".into(),
                // kube-apiserver dials a node's address for logs, exec and
                // port-forward: it must be loopback, never a made-up
                // address on some network.
                address: std::net::Ipv4Addr::LOCALHOST,
                // `kubectl logs` through kube-apiserver reaches it here.
                kubelet_port: Some(0),
                ..SimulatedNodeConfig::default()
            },
            run_node: true,
            controllers: CONTROLLERS.to_vec(),
        }
    }
}

/// Why a real host did not start.
#[derive(Debug, thiserror::Error)]
pub enum RealHostError {
    /// The upstream binaries are not built.
    #[error(transparent)]
    Binaries(#[from] upstream::UpstreamError),
    /// A component failed to start or become ready.
    #[error("{component}: {message}")]
    Start {
        /// etcd, kube-apiserver, kube-controller-manager, the node, ...
        component: &'static str,
        /// What happened, with the end of the component's log.
        message: String,
    },
}

fn start_error(component: &'static str) -> impl Fn(String) -> RealHostError {
    move |message| RealHostError::Start { component, message }
}

/// A running real host. Dropping it stops every process and removes its
/// state.
pub struct RealHost {
    url: String,
    etcd_endpoint: String,
    kubeconfig: PathBuf,
    config: kube::Config,
    pki: ClusterPki,
    options: RealHostOptions,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the harness thread hands back once everything is ready.
struct Ready {
    url: String,
    etcd_endpoint: String,
    kubeconfig: PathBuf,
    config: kube::Config,
    pki: ClusterPki,
}

impl RealHost {
    /// The real host of this test process, started on first use and kept
    /// until the process ends. Panics, saying why, if it cannot start (a
    /// missing binary names `tools/upstream/build`).
    pub fn shared() -> &'static RealHost {
        static SHARED: OnceLock<Result<RealHost, String>> = OnceLock::new();
        match SHARED
            .get_or_init(|| RealHost::start(RealHostOptions::default()).map_err(|e| e.to_string()))
        {
            Ok(host) => host,
            Err(err) => panic!("the real Kubernetes host did not start: {err}"),
        }
    }

    /// Starts a real host of its own (blocking until it is ready, some
    /// seconds).
    pub fn start(options: RealHostOptions) -> Result<Self, RealHostError> {
        // Fail fast, in the caller's thread, when nothing is built.
        let binaries = Binaries::locate()?;
        sweep_stale_dirs();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread_options = options.clone();
        let thread = std::thread::Builder::new()
            .name("real-host".into())
            .spawn(move || run(binaries, thread_options, ready_tx, stop_rx))
            .map_err(|e| start_error("the harness thread")(e.to_string()))?;
        let ready = match ready_rx.recv() {
            Ok(result) => result?,
            Err(_) => {
                return Err(start_error("the harness thread")(
                    "it ended before the host was ready".into(),
                ))
            }
        };
        Ok(Self {
            url: ready.url,
            etcd_endpoint: ready.etcd_endpoint,
            kubeconfig: ready.kubeconfig,
            config: ready.config,
            pki: ready.pki,
            options,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// A client for the admin, bound to the caller's runtime (each test
    /// runs its own).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config.clone()).expect("the real host's client configuration")
    }

    /// The admin's client configuration (TLS, client certificate), e.g. to
    /// point at a proxy in front of the API server.
    pub fn config(&self) -> kube::Config {
        self.config.clone()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file for the admin (for kubectl and for programs under
    /// test).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The PKI the API server and its clients use.
    pub fn pki(&self) -> &ClusterPki {
        &self.pki
    }

    /// The etcd kube-apiserver stores in (`http://127.0.0.1:<port>`), for
    /// comparisons on the same etcd.
    pub fn etcd_endpoint(&self) -> &str {
        &self.etcd_endpoint
    }

    /// The service range kube-apiserver allocates cluster IPs from.
    pub fn service_cidr(&self) -> &str {
        &self.options.service_cidr
    }

    /// The name of the simulated node that runs the host's pods.
    pub fn node_name(&self) -> &str {
        &self.options.node.name
    }

    /// The API server's address and a TLS connector that authenticates as
    /// the admin, for a test proxy that speaks plain HTTP to its clients
    /// and TLS to the API server (as `kubectl proxy` does).
    pub fn tls_connector(&self) -> Result<(SocketAddr, TlsConnector, ServerName<'static>), String> {
        let addr: SocketAddr = self
            .url
            .trim_start_matches("https://")
            .parse()
            .map_err(|e| format!("{}: {e}", self.url))?;
        let connector = self.pki.admin_tls_connector()?;
        let name = ServerName::IpAddress(addr.ip().into());
        Ok((addr, connector, name))
    }
}

impl Drop for RealHost {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The three binaries.
struct Binaries {
    etcd: PathBuf,
    apiserver: PathBuf,
    controller_manager: PathBuf,
}

impl Binaries {
    fn locate() -> Result<Self, upstream::UpstreamError> {
        Ok(Self {
            etcd: upstream::binary("etcd")?,
            apiserver: upstream::binary("kube-apiserver")?,
            controller_manager: upstream::binary("kube-controller-manager")?,
        })
    }
}

/// The harness thread: starts everything, reports, then holds it all until
/// told to stop (or until the process ends, when the kernel kills the
/// children spawned from this thread).
fn run(
    binaries: Binaries,
    options: RealHostOptions,
    ready: mpsc::Sender<Result<Ready, RealHostError>>,
    stop: mpsc::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("real-host-rt")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = ready.send(Err(start_error("the harness runtime")(err.to_string())));
            return;
        }
    };
    let dir = match tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
        .tempdir()
    {
        Ok(dir) => dir,
        Err(err) => {
            let _ = ready.send(Err(start_error("the state folder")(err.to_string())));
            return;
        }
    };
    // `block_on` runs on this thread, so every process spawned in it is
    // tied to this thread's life.
    let started = runtime.block_on(start_all(&binaries, &options, dir.path()));
    let (processes, ready_info, node) = match started {
        Ok(started) => started,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let cancel = CancellationToken::new();
    let node_task = node.map(|node| runtime.spawn(node.run(cancel.clone())));
    if ready.send(Ok(ready_info)).is_err() {
        return;
    }
    // Until the owner drops its sender (a shared host: never).
    let _ = stop.recv();
    cancel.cancel();
    if let Some(node_task) = node_task {
        let _ = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), node_task).await });
    }
    drop(processes);
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(dir);
}

/// The processes of a running host, stopped in reverse order on drop.
struct Processes {
    controller_manager: Option<Process>,
    apiserver: Option<Process>,
    etcd: Option<EtcdServer>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        drop(self.controller_manager.take());
        drop(self.apiserver.take());
        drop(self.etcd.take());
    }
}

async fn start_all(
    binaries: &Binaries,
    options: &RealHostOptions,
    dir: &Path,
) -> Result<(Processes, Ready, Option<SimulatedNode>), RealHostError> {
    let mut processes = Processes {
        controller_manager: None,
        apiserver: None,
        etcd: None,
    };
    let service_ip =
        first_service_ip(&options.service_cidr).map_err(start_error("the service range"))?;
    let pki =
        ClusterPki::generate(dir, service_ip).map_err(|e| start_error("the PKI")(e.to_string()))?;

    let etcd = EtcdServer::try_start(binaries.etcd.clone(), None, Some(dir))
        .map_err(start_error("etcd"))?;
    let etcd_url = etcd.endpoint();
    processes.etcd = Some(etcd);

    // kube-apiserver, retried on a new port if another process took ours.
    let kubeconfig = dir.join("admin.kubeconfig");
    let mut last_error = String::new();
    let mut config = None;
    for attempt in 0..PORT_ATTEMPTS {
        let [port] = crate::free_ports();
        let url = format!("https://127.0.0.1:{port}");
        pki.write_admin_kubeconfig(&kubeconfig, &url)
            .map_err(|e| start_error("the admin kubeconfig")(e.to_string()))?;
        let log = dir.join(format!("kube-apiserver-{attempt}.log"));
        let command = apiserver_command(&binaries.apiserver, options, &pki, &etcd_url, port, dir);
        let mut apiserver = Process::spawn("kube-apiserver", command, &log)
            .map_err(start_error("kube-apiserver"))?;
        let client_config = admin_config(&kubeconfig).await?;
        match wait_apiserver_ready(&client_config, &mut apiserver).await {
            Ok(()) => {
                processes.apiserver = Some(apiserver);
                config = Some((url, client_config));
                break;
            }
            // Only a port someone else took is worth another try.
            Err(err) if err.contains("address already in use") => last_error = err,
            Err(err) => return Err(start_error("kube-apiserver")(err)),
        }
    }
    let Some((url, config)) = config else {
        return Err(start_error("kube-apiserver")(last_error));
    };
    let client = kube::Client::try_from(config.clone())
        .map_err(|e| start_error("the admin client")(e.to_string()))?;

    let command = controller_manager_command(
        &binaries.controller_manager,
        &options.controllers,
        &pki,
        &kubeconfig,
    );
    let mut controller_manager = Process::spawn(
        "kube-controller-manager",
        command,
        &dir.join("kube-controller-manager.log"),
    )
    .map_err(start_error("kube-controller-manager"))?;
    wait_controllers_ready(&client, &options.controllers, &mut controller_manager)
        .await
        .map_err(start_error("kube-controller-manager"))?;
    processes.controller_manager = Some(controller_manager);

    let node = if options.run_node {
        let node = SimulatedNode::register(client, options.node.clone())
            .await
            .map_err(|e| start_error("the simulated node")(e.to_string()))?;
        Some(node)
    } else {
        None
    };
    Ok((
        processes,
        Ready {
            url,
            etcd_endpoint: etcd_url,
            kubeconfig,
            config,
            pki,
        },
        node,
    ))
}

fn apiserver_command(
    binary: &Path,
    options: &RealHostOptions,
    pki: &ClusterPki,
    etcd_url: &str,
    port: u16,
    dir: &Path,
) -> Command {
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let mut command = Command::new(binary);
    command
        .arg(format!("--etcd-servers={etcd_url}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg("--advertise-address=127.0.0.1")
        .arg(format!(
            "--cert-dir={}",
            dir.join("apiserver-certs").display()
        ))
        .arg(format!("--tls-cert-file={}", pki.server_cert.display()))
        .arg(format!(
            "--tls-private-key-file={}",
            pki.server_key.display()
        ))
        .arg(format!("--client-ca-file={}", pki.ca_cert.display()))
        .arg(format!("--service-account-issuer={issuer}"))
        .arg(format!("--api-audiences={issuer}"))
        .arg(format!(
            "--service-account-key-file={}",
            pki.service_account_public_key.display()
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            pki.service_account_key.display()
        ))
        .arg(format!(
            "--service-cluster-ip-range={}",
            options.service_cidr
        ))
        .arg("--authorization-mode=RBAC")
        .arg("--allow-privileged=true")
        // Loopback is not a valid endpoint address: no `kubernetes`
        // endpoints are published (nothing in the tests dials them).
        .arg("--endpoint-reconciler-type=none")
        // Reach nodes by their (loopback) InternalIP only: never resolve a
        // node's host name through whatever DNS the machine has.
        .arg("--kubelet-preferred-address-types=InternalIP")
        .arg("--profiling=false")
        .arg("--v=1");
    command
}

fn controller_manager_command(
    binary: &Path,
    controllers: &[&str],
    pki: &ClusterPki,
    kubeconfig: &Path,
) -> Command {
    let mut command = Command::new(binary);
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--controllers={}", controllers.join(",")))
        .arg(format!(
            "--service-account-private-key-file={}",
            pki.service_account_key.display()
        ))
        .arg(format!("--root-ca-file={}", pki.ca_cert.display()))
        .arg("--leader-elect=false")
        // No serving port: readiness is what the controllers did.
        .arg("--secure-port=0")
        .arg("--v=1");
    command
}

async fn admin_config(kubeconfig: &Path) -> Result<kube::Config, RealHostError> {
    let failed = start_error("the admin kubeconfig");
    let file = Kubeconfig::read_from(kubeconfig).map_err(|e| failed(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|e| failed(e.to_string()))?;
    // A request on a pooled connection the server dropped must not hang a
    // test forever; watches are renewed well within this.
    config.read_timeout = Some(Duration::from_secs(295));
    Ok(config)
}

/// Polls `/readyz` until it answers `ok`.
async fn wait_apiserver_ready(config: &kube::Config, process: &mut Process) -> Result<(), String> {
    let client = kube::Client::try_from(config.clone()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        process.check_running()?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(request))
            .await
        {
            Ok(Ok(text)) if text.trim() == "ok" => return Ok(()),
            Ok(Ok(text)) => text,
            Ok(Err(err)) => err.to_string(),
            Err(_) => "a /readyz request timed out".into(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready within {READY_DEADLINE:?} (last answer: {last}); the end of its log:\n{}",
                process.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the controllers did what every namespace needs before it
/// can run a pod: the `default` service account and `kube-root-ca.crt`
/// (each only when its controller runs).
async fn wait_controllers_ready(
    client: &kube::Client,
    controllers: &[&str],
    process: &mut Process,
) -> Result<(), String> {
    let wants_account = controllers.contains(&"serviceaccount-controller");
    let wants_root_ca = controllers.contains(&"root-ca-certificate-publisher-controller");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        process.check_running()?;
        let account = !wants_account || accounts.get_opt("default").await.ok().flatten().is_some();
        let root_ca = !wants_root_ca
            || config_maps
                .get_opt("kube-root-ca.crt")
                .await
                .ok()
                .flatten()
                .is_some();
        if account && root_ca {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the default service account and kube-root-ca.crt did not appear within \
                 {READY_DEADLINE:?}; the end of its log:\n{}",
                process.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first usable address of an IPv4 range (`10.128.0.0/16` ->
/// `10.128.0.1`): the `kubernetes` service's cluster IP.
fn first_service_ip(cidr: &str) -> Result<IpAddr, String> {
    let bad = || format!("{cidr:?} is not an IPv4 range such as 10.96.0.0/12");
    let (addr, bits) = cidr.split_once('/').ok_or_else(bad)?;
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    let bits: u32 = bits.parse().map_err(|_| bad())?;
    if !(1..=30).contains(&bits) {
        return Err(bad());
    }
    let mask = u32::MAX << (32 - bits);
    Ok(IpAddr::from(std::net::Ipv4Addr::from(
        (u32::from(addr) & mask) + 1,
    )))
}

/// Removes the state folders of real hosts whose test process is gone (a
/// shared host's folder outlives its process: statics are never dropped).
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_service_ip_is_the_ranges_first_address() {
        assert_eq!(
            first_service_ip("10.128.0.0/16"),
            Ok(IpAddr::from([10, 128, 0, 1]))
        );
        assert_eq!(
            first_service_ip("10.96.0.0/12"),
            Ok(IpAddr::from([10, 96, 0, 1]))
        );
        assert!(first_service_ip("10.96.0.0").is_err());
        assert!(first_service_ip("fd00::/108").is_err());
    }
}
