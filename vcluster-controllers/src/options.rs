//! What a [`crate::ControllerManager`] is told: which controllers run,
//! their timing settings, and the clock they read "now" from.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A source of "now": the system clock, or a test's.
///
/// CronJobs, Job deadlines, TTLs and `minReadySeconds` all compare times;
/// tests move this clock instead of waiting for minutes to pass.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(jiff::Timestamp::now))
    }

    /// A clock that asks `now` (a test's fake or offset clock).
    pub fn from_fn(now: impl Fn() -> jiff::Timestamp + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The current time by this clock.
    pub fn now(&self) -> jiff::Timestamp {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Clock").field(&self.now()).finish()
    }
}

/// Which controllers run. All of them by default; turn one off when
/// something else (a real kube-controller-manager, a test) does its job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnabledControllers {
    /// Deployments -> ReplicaSets.
    pub deployments: bool,
    /// ReplicaSets -> Pods.
    pub replica_sets: bool,
    /// ReplicationControllers -> Pods.
    pub replication_controllers: bool,
    /// StatefulSets -> Pods and PersistentVolumeClaims.
    pub stateful_sets: bool,
    /// DaemonSets -> one Pod per Node.
    pub daemon_sets: bool,
    /// Jobs -> Pods, and their TTL after finishing.
    pub jobs: bool,
    /// CronJobs -> Jobs.
    pub cron_jobs: bool,
    /// PodDisruptionBudgets -> their status (what evictions spend).
    pub disruption: bool,
    /// HorizontalPodAutoscalers -> their target's scale (needs
    /// [`ControllerOptions::metrics`]).
    pub horizontal_pod_autoscaling: bool,
    /// Services -> Endpoints.
    pub endpoints: bool,
    /// Services -> EndpointSlices.
    pub endpoint_slices: bool,
    /// The `default` ServiceAccount of every namespace.
    pub service_accounts: bool,
    /// The `kube-root-ca.crt` ConfigMap of every namespace (needs
    /// [`ControllerOptions::root_ca_pem`]).
    pub root_ca_config_maps: bool,
    /// Approved client certificate requests -> certificates (needs
    /// [`ControllerOptions::signer`]).
    pub certificate_signing: bool,
    /// ResourceQuotas' `status.hard` and `status.used`.
    pub resource_quotas: bool,
}

impl EnabledControllers {
    /// Every controller.
    pub fn all() -> Self {
        Self {
            deployments: true,
            replica_sets: true,
            replication_controllers: true,
            stateful_sets: true,
            daemon_sets: true,
            jobs: true,
            cron_jobs: true,
            disruption: true,
            horizontal_pod_autoscaling: true,
            endpoints: true,
            endpoint_slices: true,
            service_accounts: true,
            root_ca_config_maps: true,
            certificate_signing: true,
            resource_quotas: true,
        }
    }

    /// No controller (turn on the ones you want).
    pub fn none() -> Self {
        Self {
            deployments: false,
            replica_sets: false,
            replication_controllers: false,
            stateful_sets: false,
            daemon_sets: false,
            jobs: false,
            cron_jobs: false,
            disruption: false,
            horizontal_pod_autoscaling: false,
            endpoints: false,
            endpoint_slices: false,
            service_accounts: false,
            root_ca_config_maps: false,
            certificate_signing: false,
            resource_quotas: false,
        }
    }
}

impl Default for EnabledControllers {
    fn default() -> Self {
        Self::all()
    }
}

/// Settings of the controllers.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Which controllers run.
    pub enabled: EnabledControllers,
    /// The virtual cluster's CA certificate (PEM), published as `ca.crt`
    /// of the `kube-root-ca.crt` ConfigMap in every namespace, so pods can
    /// verify the API server. `None`: no such ConfigMaps.
    pub root_ca_pem: Option<String>,
    /// The delay before a Job replaces its first failed pod; doubled per
    /// further failure (upstream: 10 s).
    pub job_backoff: Duration,
    /// The longest such delay (upstream: 6 min).
    pub job_backoff_max: Duration,
    /// How often every object is reconciled even when nothing changed.
    pub resync: Duration,
    /// Where "now" comes from.
    pub clock: Clock,
    /// The CA that signs approved `kubernetes.io/kube-apiserver-client`
    /// requests. `None`: such requests stay unsigned.
    pub signer: Option<crate::csrsigning::ClusterSigner>,
    /// Where the horizontal pod autoscaler reads pods' resource usage;
    /// `None`: it does not run (there is no metrics API to ask).
    pub metrics: Option<Arc<dyn crate::hpa::MetricsSource>>,
    /// How often each autoscaler is synced (upstream's
    /// `--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub hpa_sync_period: Duration,
    /// How long a lower recommendation must last before an autoscaler
    /// without its own `behavior` scales down (upstream's
    /// `--horizontal-pod-autoscaler-downscale-stabilization`, 5 min).
    pub hpa_downscale_stabilization: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            enabled: EnabledControllers::all(),
            root_ca_pem: None,
            job_backoff: Duration::from_secs(10),
            job_backoff_max: Duration::from_secs(360),
            resync: Duration::from_secs(600),
            clock: Clock::system(),
            signer: None,
            metrics: None,
            hpa_sync_period: Duration::from_secs(15),
            hpa_downscale_stabilization: Duration::from_secs(300),
        }
    }
}

impl ControllerOptions {
    /// With `source` as the autoscaler's metrics.
    pub fn with_metrics(mut self, source: Arc<dyn crate::hpa::MetricsSource>) -> Self {
        self.metrics = Some(source);
        self
    }

    /// Defaults, publishing `pem` as the cluster's root CA.
    pub fn with_root_ca(mut self, pem: impl Into<String>) -> Self {
        self.root_ca_pem = Some(pem.into());
        self
    }
}
