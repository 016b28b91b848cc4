//! [`ControllerManager`]: the enabled controllers, started together
//! against one `kube::Client` and stopped by one `CancellationToken`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::options::ControllerOptions;
use crate::runtime::Shared;

/// The virtual cluster's controller manager: what kube-controller-manager
/// is to a real cluster, for the controllers this crate has.
///
/// It talks only to the virtual API server, through the `kube::Client` it
/// is given (in-process or over HTTPS); it knows nothing of the host.
pub struct ControllerManager {
    shared: Arc<Shared>,
}

impl ControllerManager {
    /// A manager of the controllers `options` enables, against `client`.
    pub fn new(client: kube::Client, options: ControllerOptions) -> Self {
        Self {
            shared: Arc::new(Shared::new(client, options)),
        }
    }

    /// Runs every enabled controller until `cancel` fires, then waits for
    /// them to stop (each finishes the reconciles it has started).
    pub async fn run(self, cancel: CancellationToken) {
        let shared = self.shared;
        let enabled = shared.options.enabled.clone();
        let mut tasks = tokio::task::JoinSet::new();
        macro_rules! start {
            ($on:expr, $module:ident) => {
                if $on {
                    tasks.spawn(crate::$module::run(shared.clone(), cancel.clone()));
                }
            };
        }
        start!(enabled.deployments, deployment);
        start!(enabled.replica_sets, replicaset);
        if enabled.replication_controllers {
            tasks.spawn(crate::replicaset::run_replication(
                shared.clone(),
                cancel.clone(),
            ));
        }
        start!(enabled.stateful_sets, statefulset);
        start!(enabled.daemon_sets, daemonset);
        start!(enabled.jobs, job);
        start!(enabled.cron_jobs, cronjob);
        start!(
            enabled.certificate_signing && shared.options.signer.is_some(),
            csrsigning
        );
        start!(enabled.disruption, disruption);
        start!(enabled.horizontal_pod_autoscaling, hpa);
        start!(enabled.endpoints || enabled.endpoint_slices, endpoints);
        start!(
            enabled.service_accounts
                || (enabled.root_ca_config_maps && shared.options.root_ca_pem.is_some()),
            serviceaccounts
        );
        start!(enabled.resource_quotas, resourcequota);
        tracing::info!(?enabled, "controllers started");
        cancel.cancelled().await;
        let stopping = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), stopping)
            .await
            .is_err()
        {
            tracing::warn!("controllers did not stop within 10s");
        }
    }

    /// Starts [`ControllerManager::run`] on the current runtime.
    pub fn spawn(self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(cancel))
    }
}
