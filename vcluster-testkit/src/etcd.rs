//! A real, throw-away etcd server for tests.
//!
//! [`EtcdServer::start`] runs an `etcd` binary (see [`etcd_binary`] for which)
//! on free loopback ports with a
//! temporary data directory, and waits until it reports healthy. The server
//! is killed when the guard is dropped, also when the test panics. A test
//! can [`kill`](EtcdServer::kill) it with SIGKILL and
//! [`restart`](EtcdServer::restart) it on the same data directory and ports.
//! [`EtcdServer::start_tls`] serves clients over TLS only and requires a
//! client certificate signed by the given CA, as production etcd runs;
//! health is polled on a separate plain-HTTP metrics listener either way.
//!
//! [`EtcdCluster::start`] runs several members as one cluster (three for a
//! quorum that survives one member killed with [`EtcdCluster::kill`]).
//!
//! A missing binary is a failure, not a skip: CI must not go green without
//! having talked to a real etcd.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a starting etcd may take to report healthy.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Attempts at a fresh pair of ports when another process grabbed ours.
const PORT_ATTEMPTS: usize = 3;

/// PEM files of a TLS etcd: its serving certificate and key, and the CA
/// its clients' certificates must chain to.
#[derive(Clone, Debug)]
pub struct EtcdTlsFiles {
    /// The CA that signed the client certificates.
    pub client_ca: PathBuf,
    /// etcd's serving certificate (for 127.0.0.1).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// A running etcd, killed on drop.
pub struct EtcdServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    tls: Option<EtcdTlsFiles>,
    child: Option<Child>,
    /// Killed by the kernel when the thread that started it ends (see
    /// [`crate::process::die_with_spawning_thread`]).
    die_with_thread: bool,
}

impl EtcdServer {
    /// Starts a single-member etcd on free loopback ports and waits until it
    /// is healthy. Panics with a clear message if `etcd` is not installed.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Like [`start`](Self::start), but clients must use TLS with a
    /// certificate signed by `files.client_ca`.
    pub fn start_tls(files: EtcdTlsFiles) -> Self {
        Self::start_with(Some(files))
    }

    fn start_with(tls: Option<EtcdTlsFiles>) -> Self {
        Self::try_start(etcd_binary(), tls, None).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts `binary` as a single-member etcd on free loopback ports. With
    /// `owner_dir` (a harness that may outlive its guard), its state goes in
    /// that folder and the kernel kills it when the calling thread ends.
    pub(crate) fn try_start(
        binary: PathBuf,
        tls: Option<EtcdTlsFiles>,
        owner_dir: Option<&Path>,
    ) -> Result<Self, String> {
        let die_with_thread = owner_dir.is_some();
        let mut builder = tempfile::Builder::new();
        builder.prefix("vcluster-etcd-");
        let dir = match owner_dir {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        }
        .map_err(|err| format!("cannot create a temporary directory for etcd: {err}"))?;
        let (client_port, peer_port, metrics_port) = free_ports();
        let mut server = Self {
            binary,
            dir,
            client_port,
            peer_port,
            metrics_port,
            tls,
            child: None,
            die_with_thread,
        };
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(err) => {
                    // Most likely a port was taken in the meantime: start
                    // over on new ports with an empty data directory.
                    last_error = err;
                    server.kill();
                    let _ = std::fs::remove_dir_all(server.data_dir());
                    (server.client_port, server.peer_port, server.metrics_port) = free_ports();
                }
            }
        }
        Err(format!(
            "etcd did not start after {PORT_ATTEMPTS} attempts: {last_error}"
        ))
    }

    /// The client URL, e.g. `http://127.0.0.1:40123` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// `host:port` of the client listener (for `etcd://` URLs).
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The member's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and reaps
    /// it. Does nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already gone is fine: the point is that it is not running.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and ports (after
    /// [`kill`](Self::kill)) and waits until it is healthy.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(err) = self.spawn() {
            panic!("etcd did not restart: {err}");
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("etcd.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|err| format!("cannot open {}: {err}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|err| format!("cannot share {}: {err}", log_path.display()))?;
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let metrics = format!("http://127.0.0.1:{}", self.metrics_port);
        let mut command = Command::new(&self.binary);
        if self.die_with_thread {
            crate::process::die_with_spawning_thread(&mut command);
        }
        // The tests own the whole configuration: no inherited ETCD_* knobs.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        command
            .arg("--name=vcluster-test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=vcluster-test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg(format!("--listen-metrics-urls={metrics}"))
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--cert-file={}", tls.cert.display()))
                .arg(format!("--key-file={}", tls.key.display()))
                .arg("--client-cert-auth")
                .arg(format!("--trusted-ca-file={}", tls.client_ca.display()));
        }
        let child = command
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", self.binary.display()))?;
        self.child = Some(child);
        self.wait_ready(&log_path)
    }

    /// Polls `/health` until etcd has a leader, the process died, or the
    /// deadline passed.
    fn wait_ready(&mut self, log_path: &Path) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "etcd exited with {status} before it was ready; log:\n{}",
                        crate::process::tail(log_path)
                    ));
                }
            }
            if healthy(self.metrics_port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "etcd was not healthy within {READY_DEADLINE:?}; log:\n{}",
                    crate::process::tail(log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The etcd binary the tests run: `VCLUSTER_ETCD_BIN` if set, else `etcd`
/// on `PATH` (Debian's `etcd-server`), else the etcd that
/// `tools/upstream/build` built. Panics saying what to install when none
/// runs.
pub fn etcd_binary() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("VCLUSTER_ETCD_BIN") {
        Some(path) => vec![PathBuf::from(path)],
        None => {
            let mut list = vec![PathBuf::from("etcd")];
            if let Ok(dir) = crate::upstream::binaries_dir() {
                list.push(dir.join("etcd"));
            }
            list
        }
    };
    let mut failures = Vec::new();
    for binary in &candidates {
        match Command::new(binary).arg("--version").output() {
            Ok(output) if output.status.success() => return binary.clone(),
            Ok(output) => failures.push(format!(
                "`{} --version` failed ({}): {}",
                binary.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
            Err(err) => failures.push(format!("`{}` cannot be run ({err})", binary.display())),
        }
    }
    panic!(
        "these tests need a real etcd server, and none runs: {}. Run `tools/upstream/build` \
         (builds etcd from its Go module; `bash tools/test` does), install Debian's \
         `etcd-server`, or point VCLUSTER_ETCD_BIN at an etcd binary.",
        failures.join("; ")
    )
}

fn free_ports() -> (u16, u16, u16) {
    let [a, b, c] = crate::free_ports();
    (a, b, c)
}

/// Whether etcd's `/health` (on the metrics listener at `port`) says it has
/// a leader and serves requests.
pub(crate) fn healthy(port: u16) -> bool {
    http_get(port, "/health").is_some_and(|response| response.contains("\"health\":\"true\""))
}

/// A plain HTTP GET of `path` on 127.0.0.1:`port`: the whole response, or
/// `None` when nothing answers.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    Some(response)
}

/// One member of an [`EtcdCluster`].
struct Member {
    name: String,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    child: Option<Child>,
}

impl Member {
    fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A real etcd cluster of several members on loopback (for tests of
/// what survives a member's death: replicas of a control plane, a client
/// that fails over). Every member is killed when the guard is dropped,
/// also when the test panics.
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts `size` members as one new cluster (`--initial-cluster`) on
    /// free loopback ports and waits until every one reports healthy.
    /// Panics with a clear message if `etcd` is not installed or the
    /// cluster does not come up.
    pub fn start(size: usize) -> Self {
        let binary = etcd_binary();
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match Self::try_start(&binary, size) {
                Ok(cluster) => return cluster,
                // Most likely a port was taken meanwhile: start over.
                Err(err) => last_error = err,
            }
        }
        panic!("a {size}-member etcd cluster did not start after {PORT_ATTEMPTS} attempts: {last_error}")
    }

    fn try_start(binary: &Path, size: usize) -> Result<Self, String> {
        assert!(size > 0, "an etcd cluster needs at least one member");
        let dir = tempfile::Builder::new()
            .prefix("vcluster-etcd-cluster-")
            .tempdir()
            .map_err(|err| format!("cannot create a temporary directory for etcd: {err}"))?;
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            let (client_port, peer_port, metrics_port) = free_ports();
            let member_dir = dir.path().join(format!("member-{i}"));
            std::fs::create_dir_all(&member_dir)
                .map_err(|err| format!("cannot create {}: {err}", member_dir.display()))?;
            members.push(Member {
                name: format!("member-{i}"),
                dir: member_dir,
                client_port,
                peer_port,
                metrics_port,
                child: None,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        // A token of its own, so a member never joins another test's cluster.
        let token = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "vcluster-test".into());
        let mut cluster = Self { dir, members };
        for member in &mut cluster.members {
            let log = File::options()
                .create(true)
                .append(true)
                .open(member.log_path())
                .map_err(|err| format!("cannot open {}: {err}", member.log_path().display()))?;
            let log_err = log
                .try_clone()
                .map_err(|err| format!("cannot share the etcd log: {err}"))?;
            let client = format!("http://127.0.0.1:{}", member.client_port);
            let peer = format!("http://127.0.0.1:{}", member.peer_port);
            let mut command = Command::new(binary);
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("ETCD_") {
                    command.env_remove(name);
                }
            }
            command
                .arg(format!("--name={}", member.name))
                .arg(format!("--data-dir={}", member.dir.join("data").display()))
                .arg(format!("--listen-client-urls={client}"))
                .arg(format!("--advertise-client-urls={client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg(format!("--initial-cluster-token={token}"))
                .arg("--initial-cluster-state=new")
                .arg(format!(
                    "--listen-metrics-urls=http://127.0.0.1:{}",
                    member.metrics_port
                ))
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .arg("--log-level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(log_err));
            let child = command
                .spawn()
                .map_err(|err| format!("cannot run {}: {err}", binary.display()))?;
            member.child = Some(child);
        }
        // Members elect a leader only once a quorum runs: wait for all.
        let deadline = Instant::now() + READY_DEADLINE;
        for member in &mut cluster.members {
            loop {
                if let Some(child) = member.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!(
                            "etcd {} exited with {status} before it was ready; log:\n{}",
                            member.name,
                            crate::process::tail(&member.log_path())
                        ));
                    }
                }
                if healthy(member.metrics_port) {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "etcd {} was not healthy within {READY_DEADLINE:?}; log:\n{}",
                        member.name,
                        crate::process::tail(&member.log_path())
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    /// `host:port` of every member's client listener, in member order.
    pub fn addresses(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// A `--store` URL naming every member, with a key prefix:
    /// `etcd://127.0.0.1:a,127.0.0.1:b,...?prefix=<prefix>`.
    pub fn store_url(&self, prefix: &str) -> String {
        format!("etcd://{}?prefix={prefix}", self.addresses().join(","))
    }

    /// How many members the cluster was started with.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Kills member `index` with SIGKILL (no chance to flush) and reaps it.
    /// The others keep a quorum as long as a majority runs.
    pub fn kill(&mut self, index: usize) {
        if let Some(member) = self.members.get_mut(index) {
            member.kill();
        }
    }

    /// Whether member `index` runs and reports healthy.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.members
            .get(index)
            .is_some_and(|m| m.child.is_some() && healthy(m.metrics_port))
    }

    /// The member that is etcd's Raft leader now (from its metrics), if
    /// one says so: killing another one tests clients' failover without
    /// an election.
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(|m| {
            m.child.is_some()
                && http_get(m.metrics_port, "/metrics")
                    .is_some_and(|body| body.lines().any(|l| l.trim() == "etcd_server_is_leader 1"))
        })
    }

    /// Where the members' data and logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}
