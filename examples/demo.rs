//! Launches a demo virtual cluster you can point kubectl at.
//!
//! ```sh
//! cargo run --release --example demo
//! export KUBECONFIG=$PWD/.vcluster-demo/kubeconfig
//! kubectl run web --image=nginx && kubectl get pods -w
//! ```
//!
//! With no flags it needs no Kubernetes at all: an embedded host API server
//! with a simulated node stands in for the host cluster. See
//! `docs/quickstart.md`; `--config vcluster.yaml` takes vCluster's config
//! file (`docs/config.md`), and flags given on the command line win over it.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use vcluster::config::VClusterConfig;
use vcluster::demo::{self, DemoOptions};
use vcluster_apiserver::storage::StorageConfig;
use vcluster_syncer::syncers::nodes::NodeSelection;

/// A virtual Kubernetes cluster in one command.
///
/// Starts a virtual API server, a host cluster to sync into (embedded with
/// a simulated node, or a real one with --host-kubeconfig) and the syncer
/// between them, then prints how to use it with kubectl.
#[derive(Parser, Debug)]
#[command(name = "demo", version, about, long_about = None)]
struct Cli {
    /// Name of the virtual cluster (host objects are named <name>-x-<namespace>-x-<this>)
    #[arg(long, default_value = "demo")]
    name: String,

    /// vCluster's config file (vcluster.yaml, see docs/config.md); flags given on the command line win over what it sets
    #[arg(short = 'f', long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Directory for the store, certificates and kubeconfigs; a restart on the same directory finds everything again
    #[arg(long, default_value = ".vcluster-demo")]
    data_dir: PathBuf,

    /// Address of the virtual cluster's API server
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,

    /// Address of the embedded host API server (ignored with --host-kubeconfig)
    #[arg(long, default_value = "127.0.0.1:6444")]
    host_listen: SocketAddr,

    /// Address of the virtual cluster's DNS server (UDP and TCP; port 0 picks a free one). Synced pods name its IP as their nameserver (port 53 implied): a real deployment serves port 53 on a Service IP
    #[arg(long, default_value = "127.0.0.1:0")]
    dns_listen: SocketAddr,

    /// Virtual cluster store: memory://, sqlite:///path/state.db or etcd://host:2379?prefix=/vc (etcd needs a build with `--features etcd`) [default: sqlite in the data directory]
    #[arg(long)]
    store: Option<StorageConfig>,

    /// Sync into this real host cluster instead of the embedded one
    #[arg(long, value_name = "PATH")]
    host_kubeconfig: Option<PathBuf>,

    /// Host namespace to sync into [default: vcluster-<name>]
    #[arg(long)]
    host_namespace: Option<String>,

    /// Service CIDR of the real host cluster (virtual services adopt the host's cluster IPs)
    #[arg(long, default_value = demo::HOST_SERVICE_CIDR)]
    host_service_cidr: String,

    /// Pod IP range of the simulated node
    #[arg(long, default_value = "10.244.0.0/16")]
    pod_cidr: String,

    /// Host nodes tenants see: all, or only those their pods run on [default: all with the embedded host, used with --host-kubeconfig]
    #[arg(long, value_enum)]
    nodes: Option<Nodes>,

    /// Seconds after which simulated pods with restartPolicy Never/OnFailure succeed
    #[arg(long, default_value_t = 10)]
    complete_after: u64,

    /// Serve plain HTTP instead of TLS (kubeconfigs then carry no credentials, and nothing is authenticated)
    #[arg(long)]
    insecure_http: bool,

    /// Static bearer tokens for the virtual API server (CSV lines token,user,uid,"group1,group2")
    #[arg(long, value_name = "PATH")]
    token_auth_file: Option<PathBuf>,

    /// kube-apiserver's EncryptionConfiguration file for encryption at rest (aesgcm, aescbc, secretbox, identity; YAML or JSON), or `none` to store secrets unencrypted [default: an aesgcm key for secrets generated in <data-dir>/encryption-config.yaml (owner-only)]
    #[arg(long, value_name = "PATH|none")]
    encryption_provider_config: Option<demo::encryption::Encryption>,

    /// Audit policy (audit.k8s.io/v1 Policy, YAML or JSON) of the virtual API server; auditing needs it and --audit-log-path [default: off]
    #[arg(long, value_name = "PATH")]
    audit_policy_file: Option<PathBuf>,

    /// Write the virtual API server's audit events to this file as JSON lines (created 0600) [default: off]
    #[arg(long, value_name = "PATH")]
    audit_log_path: Option<PathBuf>,

    /// Rotate the audit log when it reaches this many megabytes (0: 100, as kube-apiserver)
    #[arg(long = "audit-log-maxsize", value_name = "MB", default_value_t = 0)]
    audit_log_maxsize: u64,

    /// Rotated audit logs to keep (0: all)
    #[arg(long = "audit-log-maxbackup", value_name = "N", default_value_t = 0)]
    audit_log_maxbackup: usize,

    /// Run as one of several replicas of this virtual cluster sharing one --store (etcd) and data-directory credentials: every replica serves the API; only the holder of the virtual cluster's kube-system/vcluster-controller Lease runs the syncer, the controllers and the garbage collector. A replica that loses the lease exits with an error (restart it to compete again)
    #[arg(long)]
    leader_elect: bool,

    /// With --leader-elect: how long a lease that is not renewed keeps other replicas away (e.g. 60s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,

    /// With --leader-elect: how long the leader keeps leading without renewing the lease; shorter than the lease duration
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,

    /// With --leader-elect: how often replicas try to take the lease and the leader renews it; renew deadline > 1.2 x this
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,

    /// With --leader-elect: this replica's identity in the lease [default: host name and a random suffix]
    #[arg(long, value_name = "NAME")]
    leader_elect_identity: Option<String>,

    /// Log filter, e.g. info, debug, vcluster_syncer=debug
    #[arg(long, default_value = "info", value_parser = parse_log_filter)]
    log_level: tracing_subscriber::EnvFilter,
}

/// `--nodes`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Nodes {
    /// Every host node.
    All,
    /// Only the nodes the virtual cluster's pods run on (vCluster's default).
    Used,
}

impl From<Nodes> for NodeSelection {
    fn from(nodes: Nodes) -> Self {
        match nodes {
            Nodes::All => NodeSelection::All,
            Nodes::Used => NodeSelection::Used,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // A flag given on the command line wins over the config file; its
    // default does not.
    let explicit = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let leader_election = cli.leader_elect.then(|| {
        let defaults = demo::LeaderElection::default();
        demo::LeaderElection {
            identity: cli
                .leader_elect_identity
                .clone()
                .unwrap_or(defaults.identity),
            lease_duration: cli.leader_elect_lease_duration,
            renew_deadline: cli.leader_elect_renew_deadline,
            retry_period: cli.leader_elect_retry_period,
        }
    });
    // Bad timings are a usage error, before anything is written.
    if let Some(Err(err)) = leader_election.as_ref().map(|e| e.config().validate()) {
        eprintln!("error: --leader-elect timings: {err}");
        return ExitCode::from(2);
    }
    tracing_subscriber::fmt()
        .with_env_filter(cli.log_level)
        .with_writer(std::io::stderr)
        // Colours only for a person: a log file or a pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = match cli.config.as_deref().map(VClusterConfig::load).transpose() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };

    let mut options = DemoOptions::new(&cli.data_dir);
    options.name = cli.name;
    options.listen = cli.listen;
    options.host_listen = cli.host_listen;
    options.dns_listen = cli.dns_listen;
    options.store = cli.store;
    options.host_kubeconfig = cli.host_kubeconfig;
    options.host_namespace = cli.host_namespace;
    options.host_service_cidr = cli.host_service_cidr;
    options.insecure_http = cli.insecure_http;
    options.token_auth_file = cli.token_auth_file;
    options.encryption = cli.encryption_provider_config.unwrap_or_default();
    options.audit = demo::AuditOptions {
        policy_file: cli.audit_policy_file,
        log_path: cli.audit_log_path,
        max_size_mb: cli.audit_log_maxsize,
        max_backup: cli.audit_log_maxbackup,
    };
    options.node.pod_cidr = cli.pod_cidr;
    options.node.complete_after = Duration::from_secs(cli.complete_after);
    options.nodes = cli.nodes.map(NodeSelection::from);
    options.leader_election = leader_election;
    if let Some(config) = &config {
        for key in config.not_used_by_demo() {
            tracing::warn!(
                key,
                "set in the config file but not used by the demo (a deployment's setting, for `vcluster create` and `vcluster run`)"
            );
        }
        let flags = options.clone();
        if let Err(err) = config.apply_to_demo(&mut options) {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
        if explicit("store") {
            options.store = flags.store;
        }
        if explicit("nodes") {
            options.nodes = flags.nodes;
        }
        if explicit("host_service_cidr") {
            options.host_service_cidr = flags.host_service_cidr;
        }
        if explicit("pod_cidr") {
            options.node.pod_cidr = flags.node.pod_cidr;
        }
    }

    let running = match demo::start(options).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    print_banner(&running);

    tokio::select! {
        _ = wait_for_stop_signal() => {}
        _ = running.leadership_lost() => {
            // As kube-controller-manager: a replica that lost the lease
            // must not act on what it believed; start over as a candidate.
            eprintln!("error: leader election lost (another replica holds the lease); exiting");
            running.shutdown().await;
            return ExitCode::FAILURE;
        }
    }
    eprintln!("shutting down...");
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// `90s`, `1m`, `500ms`, or a number of seconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration (e.g. 15s, 1m, 500ms)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(format!(
            "{value:?} has an unknown unit {unit:?} (use ms, s or m)"
        )),
    }
}

/// A bad `--log-level` is a usage error, not a silent fallback to `info`.
fn parse_log_filter(value: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    tracing_subscriber::EnvFilter::try_new(value).map_err(|e| format!("not a log filter: {e}"))
}

/// Ctrl-C (SIGINT) or SIGTERM (what `kill`, systemd and container runtimes
/// send): either one shuts down cleanly, so the store is always flushed.
async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    result = tokio::signal::ctrl_c() => report_signal_error(result),
                    _ = terminate.recv() => {}
                }
            }
            Err(err) => {
                eprintln!("warning: cannot listen for SIGTERM ({err}); only Ctrl-C stops cleanly");
                report_signal_error(tokio::signal::ctrl_c().await);
            }
        }
    }
    #[cfg(not(unix))]
    report_signal_error(tokio::signal::ctrl_c().await);
}

fn report_signal_error(result: std::io::Result<()>) {
    if let Err(err) = result {
        eprintln!("error: cannot wait for Ctrl-C: {err}");
    }
}

/// Tells the user how to reach the cluster. Written without `println!`:
/// a closed stdout (a pipe whose reader went away) must not take the
/// running cluster down.
fn print_banner(running: &demo::RunningDemo) {
    use std::io::Write as _;
    let kubeconfig =
        std::fs::canonicalize(&running.kubeconfig).unwrap_or(running.kubeconfig.clone());
    let mut banner = format!(
        "virtual cluster ready on {}\n\n  export KUBECONFIG={}\n\nthen try:\n  kubectl run web --image=nginx\n  kubectl expose pod web --port 80\n  kubectl get pods,svc -o wide\n",
        running.virtual_addr,
        kubeconfig.display()
    );
    if let Some(host) = &running.host_kubeconfig {
        let host = std::fs::canonicalize(host).unwrap_or(host.clone());
        banner.push_str(&format!(
            "\nthe host side: kubectl --kubeconfig {} -n {} get pods,svc\n",
            host.display(),
            running.host_namespace
        ));
    }
    banner.push_str(&format!(
        "\nthe cluster's DNS (UDP and TCP): dig -p {} @{} kubernetes.default.svc.cluster.local\n",
        running.dns_addr.port(),
        running.dns_addr.ip()
    ));
    banner.push_str("\nCtrl-C stops it; start it again on the same --data-dir to continue.\n");
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(banner.as_bytes());
    let _ = stdout.flush();
}
