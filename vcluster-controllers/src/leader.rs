//! Leader election over a `coordination.k8s.io/v1` Lease, with the rules
//! of client-go's `leaderelection` package, so several replicas of a
//! control plane can share one store and only one of them runs the parts
//! that must not run twice (controllers, the syncer, the garbage
//! collector).
//!
//! - A candidate takes the lease when nobody holds it, or when the holder
//!   has not renewed it for its `leaseDurationSeconds`. "Not renewed" is
//!   measured on the candidate's own clock, from when it last saw the
//!   record change, never from the `renewTime` written by another machine:
//!   clocks of different machines need not agree.
//! - Every write is a compare-and-swap on the lease's `resourceVersion`,
//!   so of two candidates racing for an expired lease exactly one wins.
//! - The leader renews every retry period; if it has not renewed
//!   successfully within the renew deadline, or it sees that someone else
//!   holds the lease, it stops leading: [`Leadership::lost`] resolves and
//!   its token is cancelled. The renew deadline being shorter than the
//!   lease duration is what keeps the old leader from still acting when a
//!   new one takes over.
//! - On a clean stop the leader gives the lease up
//!   ([`Leadership::release`]), so the next replica does not wait a whole
//!   lease duration.
//!
//! Taking over: `acquireTime` is set and `leaseTransitions` goes up by
//! one; renewing changes only `renewTime` (and the duration, if the
//! configuration changed).
//!
//! [`decide`] is the pure rule (what to do given what was observed), unit
//! tested here; [`LeaderElector`] applies it against an API server.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// vCluster's default lease duration: how long a lease that is not renewed
/// keeps other candidates away.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(60);
/// vCluster's default renew deadline: how long the leader keeps leading
/// without a successful renewal.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(40);
/// vCluster's default retry period: how often candidates try and the
/// leader renews.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(15);
/// The namespace of the lease (in the cluster whose API holds it).
pub const DEFAULT_LEASE_NAMESPACE: &str = "kube-system";
/// The lease's name.
pub const DEFAULT_LEASE_NAME: &str = "vcluster-controller";

/// client-go's jitter: waits between attempts are up to this fraction
/// longer than the retry period, so candidates do not march in step.
const JITTER: f64 = 1.2;

/// Which lease to compete for, as whom, and how fast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    /// The lease's namespace.
    pub namespace: String,
    /// The lease's name.
    pub name: String,
    /// This candidate's identity (`holderIdentity`); unique per process.
    pub identity: String,
    /// How long a lease that is not renewed stays with its holder.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// vCluster's defaults ([`DEFAULT_LEASE_NAMESPACE`]/[`DEFAULT_LEASE_NAME`],
    /// 60 s / 40 s / 15 s) for the candidate `identity`.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            namespace: DEFAULT_LEASE_NAMESPACE.into(),
            name: DEFAULT_LEASE_NAME.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// Checks the timings as client-go does: lease duration > renew
    /// deadline > 1.2 × retry period, none zero, and an identity.
    pub fn validate(&self) -> Result<(), LeaderElectionError> {
        let invalid = |message: String| Err(LeaderElectionError::Invalid(message));
        if self.identity.trim().is_empty() {
            return invalid("the identity must not be empty".into());
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return invalid("the lease needs a name and a namespace".into());
        }
        if self.retry_period.is_zero() {
            return invalid("the retry period must be greater than zero".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(format!(
                "the lease duration ({:?}) must be greater than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER * self.retry_period.as_secs_f64() {
            return invalid(format!(
                "the renew deadline ({:?}) must be greater than {JITTER} × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration.as_secs() == 0 || self.lease_duration.as_secs() > i32::MAX as u64 {
            return invalid(format!(
                "the lease duration ({:?}) must be a whole number of seconds, at least one",
                self.lease_duration
            ));
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// Why leader election could not run.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The configuration is unusable.
    #[error("invalid leader election configuration: {0}")]
    Invalid(String),
}

/// The parts of a lease that say who leads (what client-go calls the
/// leader election record).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseRecord {
    /// `holderIdentity` (`None` or empty: nobody).
    pub holder: Option<String>,
    /// `leaseDurationSeconds` the holder wrote.
    pub lease_duration_seconds: Option<i32>,
    /// `acquireTime`.
    pub acquire_time: Option<MicroTime>,
    /// `renewTime`.
    pub renew_time: Option<MicroTime>,
    /// `leaseTransitions`.
    pub transitions: i32,
}

impl LeaseRecord {
    /// The record of a lease's spec.
    pub fn of(spec: Option<&LeaseSpec>) -> Self {
        let Some(spec) = spec else {
            return Self::default();
        };
        Self {
            holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
            lease_duration_seconds: spec.lease_duration_seconds,
            acquire_time: spec.acquire_time.clone(),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions.unwrap_or(0),
        }
    }
}

/// What a candidate does with the lease it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or its holder let it run out: take it over.
    Acquire,
    /// This candidate holds it: renew it.
    Renew,
    /// Someone else holds it, for at least `remaining` more.
    Held {
        /// The holder.
        holder: String,
        /// How long until it runs out unless renewed (by our clock).
        remaining: Duration,
    },
}

/// The rule of client-go's `tryAcquireOrRenew`: `record` is the lease as
/// just read (`None`: it does not exist), `unchanged_for` how long ago (by
/// this candidate's clock) the record was first seen as it is now, and
/// `lease_duration` this candidate's duration, used when the record names
/// none.
pub fn decide(
    record: Option<&LeaseRecord>,
    identity: &str,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Decision {
    let Some(record) = record else {
        return Decision::Acquire;
    };
    let Some(holder) = record.holder.as_deref().filter(|h| !h.is_empty()) else {
        return Decision::Acquire;
    };
    if holder == identity {
        return Decision::Renew;
    }
    let duration = record
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
        .unwrap_or(lease_duration);
    match duration.checked_sub(unchanged_for) {
        Some(remaining) if !remaining.is_zero() => Decision::Held {
            holder: holder.to_owned(),
            remaining,
        },
        _ => Decision::Acquire,
    }
}

/// The spec to write after `decision` (`Acquire` or `Renew`) on a lease
/// whose record is `current`, at `now`.
pub fn next_spec(
    current: &LeaseRecord,
    decision: &Decision,
    config: &LeaderElectionConfig,
    now: MicroTime,
) -> LeaseSpec {
    let taking_over = *decision == Decision::Acquire
        && current.holder.as_deref() != Some(config.identity.as_str());
    let (acquire_time, transitions) = if taking_over {
        let transitions = if current.holder.is_some() {
            current.transitions.saturating_add(1)
        } else {
            current.transitions
        };
        (Some(now.clone()), transitions)
    } else {
        (
            current.acquire_time.clone().or_else(|| Some(now.clone())),
            current.transitions,
        )
    };
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.lease_seconds()),
        acquire_time,
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// The outcome of one attempt to acquire or renew.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This candidate holds the lease now.
    Leading,
    /// Someone else does (or won the race to write it).
    Follower {
        /// Who holds it, when known.
        holder: Option<String>,
    },
}

/// Competes for one lease through an API server (see the module docs).
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    /// The record last read and when it was first seen like that.
    observed: Option<(LeaseRecord, Instant)>,
}

impl LeaderElector {
    /// A candidate for `config`'s lease, through `client`.
    pub fn new(
        client: kube::Client,
        config: LeaderElectionConfig,
    ) -> Result<Self, LeaderElectionError> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LeaderElectionConfig {
        &self.config
    }

    /// Remembers `record` as observed now, unless it is the one already
    /// observed (then the first sighting counts); returns how long it has
    /// been unchanged.
    fn observe(&mut self, record: &LeaseRecord) -> Duration {
        match &self.observed {
            Some((seen, at)) if seen == record => at.elapsed(),
            _ => {
                self.observed = Some((record.clone(), Instant::now()));
                Duration::ZERO
            }
        }
    }

    /// One round of client-go's `tryAcquireOrRenew`: read the lease, decide,
    /// and write with a compare-and-swap. Errors are the API server's
    /// (a lost race is not an error: it is [`Attempt::Follower`]).
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let current = self.api.get_opt(&self.config.name).await?;
        let Some(mut lease) = current else {
            let record = LeaseRecord::default();
            let spec = next_spec(&record, &Decision::Acquire, &self.config, now());
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&LeaseRecord::of(created.spec.as_ref()));
                    Ok(Attempt::Leading)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::Follower { holder: None })
                }
                Err(err) => Err(err),
            };
        };
        let record = LeaseRecord::of(lease.spec.as_ref());
        let unchanged_for = self.observe(&record);
        let decision = decide(
            Some(&record),
            &self.config.identity,
            unchanged_for,
            self.config.lease_duration,
        );
        if let Decision::Held { holder, .. } = decision {
            return Ok(Attempt::Follower {
                holder: Some(holder),
            });
        }
        lease.spec = Some(next_spec(&record, &decision, &self.config, now()));
        // `resourceVersion` is kept: the replace is a compare-and-swap.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observe(&LeaseRecord::of(written.spec.as_ref()));
                Ok(Attempt::Leading)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Follower {
                holder: record.holder,
            }),
            Err(err) => Err(err),
        }
    }

    /// Tries every retry period (with jitter) until this candidate holds
    /// the lease, then returns the [`Leadership`], which renews in the
    /// background until lost or released (`cancel` only ends the
    /// waiting). `None` when `cancel` fired first.
    pub async fn acquire(mut self, cancel: &CancellationToken) -> Option<Leadership> {
        let mut last_holder: Option<String> = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(
                        identity = %self.config.identity,
                        lease = %format!("{}/{}", self.config.namespace, self.config.name),
                        "acquired the lease: leading"
                    );
                    return Some(Leadership::start(self));
                }
                Ok(Attempt::Follower { holder }) => {
                    if holder.is_some() && holder != last_holder {
                        tracing::info!(
                            identity = %self.config.identity,
                            leader = holder.as_deref().unwrap_or_default(),
                            "the lease is held by another replica: waiting"
                        );
                    }
                    last_holder = holder;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reading or writing the leader lease failed");
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(jittered(self.config.retry_period)) => {}
            }
        }
    }

    /// Gives the lease up if this candidate holds it (client-go's release
    /// on cancel): the holder becomes empty and the duration one second, so
    /// the next candidate takes over at its next try.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let record = LeaseRecord::of(lease.spec.as_ref());
        if record.holder.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let now = now();
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(record.transitions),
            ..LeaseSpec::default()
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // Someone else wrote it meanwhile: it is not ours to release.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// The retry period stretched by a random part of client-go's jitter.
fn jittered(period: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let fraction = f64::from(nanos % 1000) / 1000.0 * (JITTER - 1.0);
    period.mul_f64(1.0 + fraction)
}

/// This process leads, until [`lost`](Self::lost) or
/// [`release`](Self::release). While it lasts, a background task renews
/// the lease every retry period. Dropping it stops leading and releases
/// the lease in the background (without waiting, unlike `release`).
pub struct Leadership {
    leading: CancellationToken,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    identity: String,
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Leadership {
    fn start(elector: LeaderElector) -> Self {
        let leading = CancellationToken::new();
        let stop = CancellationToken::new();
        let identity = elector.config.identity.clone();
        let task = tokio::spawn(renew(elector, leading.clone(), stop.clone()));
        Self {
            leading,
            stop,
            task: Some(task),
            identity,
        }
    }

    /// Cancelled when leadership ends (lost or released): run what only
    /// the leader may run under it. Stopping the process cleanly is the
    /// caller's: stop that work first, then [`release`](Self::release),
    /// so no other replica starts while it still writes.
    pub fn token(&self) -> CancellationToken {
        self.leading.clone()
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Resolves when leadership ends.
    pub async fn lost(&self) {
        self.leading.cancelled().await;
    }

    /// Whether leadership has ended.
    pub fn is_lost(&self) -> bool {
        self.leading.is_cancelled()
    }

    /// Stops leading and gives the lease up (when still held), so another
    /// replica takes over at its next try.
    pub async fn release(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The leader's loop: renew every retry period; stop leading when a renewal
/// has not succeeded within the renew deadline or another holder shows up;
/// on `stop`, stop leading and release.
async fn renew(mut elector: LeaderElector, leading: CancellationToken, stop: CancellationToken) {
    let mut last_renewed = Instant::now();
    let config = elector.config.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(config.retry_period) => {}
        }
        let left = config.renew_deadline.saturating_sub(last_renewed.elapsed());
        let attempt = tokio::select! {
            _ = stop.cancelled() => break,
            attempt = tokio::time::timeout(left, elector.try_acquire_or_renew()) => attempt,
        };
        match attempt {
            Ok(Ok(Attempt::Leading)) => last_renewed = Instant::now(),
            Ok(Ok(Attempt::Follower { holder })) => {
                tracing::error!(
                    identity = %config.identity,
                    leader = holder.as_deref().unwrap_or("unknown"),
                    "leader election lost: another replica holds the lease"
                );
                leading.cancel();
                return;
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "renewing the leader lease failed");
            }
            Err(_) => {}
        }
        if last_renewed.elapsed() >= config.renew_deadline {
            tracing::error!(
                identity = %config.identity,
                renew_deadline = ?config.renew_deadline,
                "leader election lost: the lease was not renewed within the renew deadline"
            );
            leading.cancel();
            return;
        }
    }
    // A clean stop (lost leadership returned above): stop leading first,
    // then hand the lease over.
    leading.cancel();
    match tokio::time::timeout(config.retry_period, elector.release()).await {
        Ok(Ok(())) => tracing::info!(identity = %config.identity, "released the leader lease"),
        Ok(Err(err)) => tracing::warn!(error = %err, "releasing the leader lease failed"),
        Err(_) => tracing::warn!("releasing the leader lease timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_by(holder: &str, seconds: i32) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.into()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(MicroTime(jiff::Timestamp::UNIX_EPOCH)),
            renew_time: Some(MicroTime(jiff::Timestamp::UNIX_EPOCH)),
            transitions: 3,
        }
    }

    const SIXTY: Duration = Duration::from_secs(60);

    #[test]
    fn an_absent_or_released_lease_is_taken() {
        assert_eq!(decide(None, "a", Duration::ZERO, SIXTY), Decision::Acquire);
        let released = LeaseRecord {
            holder: Some(String::new()),
            ..held_by("x", 1)
        };
        assert_eq!(
            decide(Some(&released), "a", Duration::ZERO, SIXTY),
            Decision::Acquire
        );
    }

    #[test]
    fn a_live_lease_of_another_is_respected_until_it_runs_out_on_our_clock() {
        let record = held_by("b", 10);
        assert_eq!(
            decide(Some(&record), "a", Duration::from_secs(4), SIXTY),
            Decision::Held {
                holder: "b".into(),
                remaining: Duration::from_secs(6)
            }
        );
        // The holder's own duration counts, not ours.
        assert_eq!(
            decide(Some(&record), "a", Duration::from_secs(10), SIXTY),
            Decision::Acquire
        );
        let no_duration = LeaseRecord {
            lease_duration_seconds: None,
            ..record
        };
        assert!(matches!(
            decide(Some(&no_duration), "a", Duration::from_secs(30), SIXTY),
            Decision::Held { .. }
        ));
    }

    #[test]
    fn the_holder_renews() {
        let record = held_by("a", 10);
        assert_eq!(
            decide(Some(&record), "a", Duration::from_secs(100), SIXTY),
            Decision::Renew
        );
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let config = LeaderElectionConfig::new("a");
        let now = MicroTime(jiff::Timestamp::from_second(1000).expect("time"));
        let taken = next_spec(&held_by("b", 10), &Decision::Acquire, &config, now.clone());
        assert_eq!(taken.holder_identity.as_deref(), Some("a"));
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.acquire_time, Some(now.clone()));
        assert_eq!(taken.renew_time, Some(now.clone()));
        assert_eq!(taken.lease_duration_seconds, Some(60));

        let renewed = next_spec(&held_by("a", 60), &Decision::Renew, &config, now.clone());
        assert_eq!(renewed.lease_transitions, Some(3));
        assert_eq!(
            renewed.acquire_time,
            Some(MicroTime(jiff::Timestamp::UNIX_EPOCH))
        );
        assert_eq!(renewed.renew_time, Some(now.clone()));

        // The first holder of a new or released lease is no transition.
        let first = next_spec(&LeaseRecord::default(), &Decision::Acquire, &config, now);
        assert_eq!(first.lease_transitions, Some(0));
    }

    #[test]
    fn timings_are_checked_like_client_go() {
        assert!(LeaderElectionConfig::new("a").validate().is_ok());
        let mut config = LeaderElectionConfig::new("a");
        config.renew_deadline = SIXTY;
        assert!(config.validate().is_err());
        let mut config = LeaderElectionConfig::new("a");
        config.retry_period = Duration::from_secs(35);
        assert!(config.validate().is_err());
        assert!(LeaderElectionConfig::new(" ").validate().is_err());
        let mut config = LeaderElectionConfig::new("a");
        config.lease_duration = Duration::from_millis(500);
        config.renew_deadline = Duration::from_millis(400);
        config.retry_period = Duration::from_millis(100);
        assert!(config.validate().is_err(), "whole seconds only");
    }
}
