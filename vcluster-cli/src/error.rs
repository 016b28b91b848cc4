//! What can go wrong, each saying what to do next.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The host kubeconfig cannot be read or used.
    #[error("cannot use the host kubeconfig ({source_name}): {message} (pass --kubeconfig or --context)")]
    Kubeconfig {
        /// The file or variable it came from.
        source_name: String,
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
    /// A request to the host failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The virtual cluster does not exist.
    #[error("virtual cluster {name} not found in namespace {namespace} (`vcluster list` shows the existing ones)")]
    NotFound {
        /// Its name.
        name: String,
        /// The namespace searched.
        namespace: String,
    },
    /// The virtual cluster exists already.
    #[error("virtual cluster {name} already exists in namespace {namespace} (use --upgrade to apply the new configuration, or `vcluster connect {name} -n {namespace}`)")]
    Exists {
        /// Its name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// Something did not happen in time.
    #[error("timed out waiting for {what}; {hint}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// What to check.
        hint: String,
    },
    /// The configuration file is wrong.
    #[error("{0}")]
    Config(String),
    /// The in-cluster environment is incomplete.
    #[error("not running in a pod: {0} (`vcluster run` is what the control plane pod executes; to run it elsewhere, set KUBERNETES_SERVICE_HOST/PORT and --service-account-dir)")]
    InCluster(String),
    /// A local file or socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The control plane failed to start or stopped.
    #[error("{0}")]
    ControlPlane(String),
    /// The command given to `connect -- COMMAND` failed to start.
    #[error("cannot run {command}: {source}")]
    Command {
        /// The program.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
