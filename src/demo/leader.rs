//! High availability of the demo's control plane: several replicas share
//! one store (etcd), every one serves the API, and only the one holding
//! the `kube-system/vcluster-controller` Lease of the virtual cluster runs
//! what must run once: the syncer, the controllers, the garbage collector
//! and the host pod-metrics poller (see `docs/architecture.md`, "High
//! availability").
//!
//! A replica that loses the lease stops those parts at once (they run
//! under the leadership's token) and [`super::RunningDemo::leadership_lost`]
//! resolves; the demo binary then exits with an error, as
//! kube-controller-manager does, so a supervisor restarts it as a fresh
//! candidate. A replica stopped cleanly stops them first, then gives the
//! lease up so another replica takes over at its next try.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use vcluster_controllers::leader::{
    LeaderElectionConfig, LeaderElector, DEFAULT_LEASE_DURATION, DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
};

use super::DemoError;

/// How replicas elect the one that runs the syncer and the controllers.
/// The default is vCluster's: a 60 s lease, renewed every 15 s, given up
/// after 40 s without a renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// This replica's identity in the lease (`holderIdentity`); unique per
    /// process (default: the host name and a random suffix).
    pub identity: String,
    /// How long a lease that is not renewed keeps other replicas away.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without renewing.
    pub renew_deadline: Duration,
    /// How often replicas try to take the lease and the leader renews it.
    pub retry_period: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            identity: default_identity(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }
}

impl LeaderElection {
    /// The lease configuration (the lease lives in the virtual cluster, so
    /// the host needs no extra permission).
    pub fn config(&self) -> LeaderElectionConfig {
        LeaderElectionConfig {
            identity: self.identity.clone(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            ..LeaderElectionConfig::new(self.identity.clone())
        }
    }
}

/// The host name and a random suffix (client-go's convention: two
/// processes on one machine must not share an identity).
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "vcluster".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}_{}", &suffix[..8])
}

/// What only the leader runs: started with the token of its leadership,
/// returns the tasks to wait for.
pub(super) type LeaderParts =
    Box<dyn FnOnce(CancellationToken) -> Vec<tokio::task::JoinHandle<()>> + Send>;

/// Runs `parts` now (no election), or under a lease: waits to lead, runs
/// them while leading, stops them when leadership is lost (cancelling
/// `lost`) or the demo stops (`cancel`; then the lease is released once
/// they stopped). Returns the tasks to wait for at shutdown.
pub(super) fn supervise(
    election: Option<&LeaderElection>,
    client: kube::Client,
    parts: LeaderParts,
    cancel: CancellationToken,
    lost: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, DemoError> {
    let Some(election) = election else {
        return Ok(parts(cancel));
    };
    let elector = LeaderElector::new(client, election.config()).map_err(|e| DemoError::Start {
        what: "leader election",
        message: e.to_string(),
    })?;
    let supervisor: BoxFuture<'static, ()> = Box::pin(async move {
        let Some(leadership) = elector.acquire(&cancel).await else {
            return;
        };
        let work = leadership.token().child_token();
        let tasks = parts(work.clone());
        tokio::select! {
            _ = leadership.lost() => {
                tracing::error!(
                    identity = leadership.identity(),
                    "leader election lost: stopped the syncer, the controllers and the garbage collector"
                );
                lost.cancel();
                wait_all(tasks).await;
            }
            _ = cancel.cancelled() => {
                work.cancel();
                wait_all(tasks).await;
                leadership.release().await;
            }
        }
    });
    Ok(vec![tokio::spawn(supervisor)])
}

async fn wait_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("a leader-only component did not stop within 10s");
        }
    }
}
