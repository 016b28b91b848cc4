//! What the command line's real-host scenarios share: running the
//! `vcluster` binary against the host (bounded), and `vcluster run` as the
//! control plane pod would run it.
#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio::process::{Child, Command};
use vcluster_testkit::free_port;
use vcluster_testkit::in_cluster::InClusterEnv;
use vcluster_testkit::real_host::RealHost;

/// How long one `vcluster` command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the syncer may take to make a host object.
pub const SYNC_DEADLINE: Duration = Duration::from_secs(60);

pub fn vcluster_binary() -> &'static str {
    env!("CARGO_BIN_EXE_vcluster")
}

/// Runs `vcluster args...` against the host to its end (bounded).
pub async fn vcluster(host: &RealHost, args: &[&str]) -> std::process::Output {
    vcluster_within(host, args, COMMAND_TIMEOUT).await
}

/// [`vcluster`] with its own time limit.
pub async fn vcluster_within(
    host: &RealHost,
    args: &[&str],
    limit: Duration,
) -> std::process::Output {
    vcluster_with_kubeconfig(host.kubeconfig(), args, limit).await
}

/// Runs `vcluster args...` with `--kubeconfig kubeconfig` to its end
/// (within `limit`).
pub async fn vcluster_with_kubeconfig(
    kubeconfig: &Path,
    args: &[&str],
    limit: Duration,
) -> std::process::Output {
    let mut command = Command::new(vcluster_binary());
    // The host flag right after the subcommand: whatever follows `--`
    // belongs to the command `connect` runs.
    let (subcommand, rest) = args.split_first().expect("a subcommand");
    command
        .arg(subcommand)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(rest)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("the vcluster binary starts");
    tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("vcluster {args:?} did not finish within {limit:?}"))
        .expect("vcluster runs")
}

/// [`vcluster_with_kubeconfig`] as a user with their own kubeconfig file
/// types it, requiring success; its stdout and stderr.
pub async fn vcluster_as_user(kubeconfig: &Path, args: &[&str]) -> (String, String) {
    succeeded(
        args,
        vcluster_with_kubeconfig(kubeconfig, args, COMMAND_TIMEOUT).await,
    )
}

/// [`vcluster`], requiring success; its stdout and stderr.
pub async fn vcluster_ok(host: &RealHost, args: &[&str]) -> (String, String) {
    succeeded(args, vcluster(host, args).await)
}

/// The stdout and stderr of `vcluster args...`, which must have succeeded.
fn succeeded(args: &[&str], out: std::process::Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "vcluster {args:?} failed:\n{stdout}{stderr}"
    );
    (stdout, stderr)
}

/// `vcluster run` as the control plane pod would run it (killed on drop).
pub struct ControlPlaneProcess {
    child: Child,
    port: u16,
    log: PathBuf,
    _env: InClusterEnv,
}

impl ControlPlaneProcess {
    /// `vcluster run --name name` as `namespace/account` would run it.
    pub async fn start(
        host: &RealHost,
        namespace: &str,
        account: &str,
        name: &str,
        data_dir: &Path,
    ) -> Self {
        Self::start_as(host, namespace, account, name, data_dir, None, None).await
    }

    /// [`ControlPlaneProcess::start`] with a `vcluster.yaml` and the pod's
    /// name (`POD_NAME`, a replica's identity in the leader election).
    pub async fn start_as(
        host: &RealHost,
        namespace: &str,
        account: &str,
        name: &str,
        data_dir: &Path,
        config: Option<&Path>,
        pod_name: Option<&str>,
    ) -> Self {
        let env = InClusterEnv::for_service_account(host, namespace, account).await;
        let port = free_port();
        let log = data_dir.with_extension(format!("{port}.log"));
        let log_file = std::fs::File::create(&log).expect("the control plane's log file");
        let mut command = Command::new(vcluster_binary());
        command
            .args(["run", "--name", name, "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--dns-listen", "127.0.0.1:0"])
            .arg("--service-account-dir")
            .arg(env.service_account_dir())
            .envs(env.vars().iter().map(|(k, v)| (k, v)))
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        if let Some(pod) = pod_name {
            command.env("POD_NAME", pod);
        }
        let child = command.spawn().expect("vcluster run starts");
        Self {
            child,
            port,
            log,
            _env: env,
        }
    }

    pub fn server(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Waits for the process to exit by itself (bounded); its status and stderr.
    pub async fn exit(mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("vcluster run exits by itself")
            .expect("wait");
        (status, self.log())
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, as a node failure would.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// The host pods the syncer made for virtual cluster `name` (its
/// `managed-by` label), terminating ones included.
pub async fn synced_host_pods(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<Pod>, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("vcluster.loft.sh/managed-by={name}");
    pods.list(&ListParams::default().labels(&selector))
        .await
        .map(|list| list.items)
        .map_err(|e| format!("listing the synced host pods: {e}"))
}

pub fn unique_namespace(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like()[..8])
}

pub fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or_default();
    format!("{:08x}{:08x}", nanos, std::process::id())
}

/// A config that needs no storage provisioner (the harness has none).
pub fn config_without_volume(dir: &Path) -> PathBuf {
    let path = dir.join("vcluster.yaml");
    std::fs::write(
        &path,
        "controlPlane:\n  statefulSet:\n    persistence:\n      volumeClaim:\n        enabled: false\n",
    )
    .expect("write vcluster.yaml");
    path
}
