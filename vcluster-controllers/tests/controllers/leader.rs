//! Leader election over a Lease on our API server, as replicas of a
//! control plane compete for it: one leads, another takes over only once
//! the lease ran out (or was released), a leader that sees another holder
//! stops leading.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;
use vcluster_controllers::leader::{Attempt, LeaderElectionConfig, LeaderElector};
use vcluster_testkit::cluster::Cluster;

/// Short timings: a 2 s lease, renewed every 300 ms, lost after 1 s
/// without renewal.
fn config(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(300),
        ..LeaderElectionConfig::new(identity)
    }
}

async fn lease(leases: &Api<Lease>) -> Lease {
    leases.get("vcluster-controller").await.expect("the lease")
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.clone())
}

#[tokio::test]
async fn one_replica_leads_and_another_takes_over_only_when_the_lease_runs_out() {
    let cluster = Cluster::start().await;
    takeover_scenario(cluster.client(), "vcluster-controller").await;
}

/// The same rules hold against kube-apiserver (the real host's), whose
/// Lease validation and compare-and-swap are the reference.
#[tokio::test]
async fn the_takeover_rules_hold_on_kube_apiserver() {
    let host = vcluster_testkit::real_host::RealHost::shared();
    takeover_scenario(host.client(), "vcluster-controller-leader-test").await;
}

async fn takeover_scenario(client: kube::Client, lease_name: &str) {
    let config = |identity: &str| LeaderElectionConfig {
        name: lease_name.to_owned(),
        ..config(identity)
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = |leases: &Api<Lease>| {
        let leases = leases.clone();
        let name = lease_name.to_owned();
        async move { leases.get(&name).await.expect("the lease") }
    };

    // A takes the new lease (no transition: nobody held it before).
    let mut a = LeaderElector::new(client.clone(), config("a")).expect("config");
    assert_eq!(a.try_acquire_or_renew().await.expect("a"), Attempt::Leading);
    let first = lease(&leases).await;
    let spec = first.spec.clone().expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("a"));
    assert_eq!(spec.lease_duration_seconds, Some(2));
    assert_eq!(spec.lease_transitions, Some(0));
    assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());

    // B only waits while A renews.
    let mut b = LeaderElector::new(client.clone(), config("b")).expect("config");
    for _ in 0..4 {
        assert_eq!(
            b.try_acquire_or_renew().await.expect("b"),
            Attempt::Follower {
                holder: Some("a".into())
            }
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(a.try_acquire_or_renew().await.expect("a"), Attempt::Leading);
    }
    let renewed = lease(&leases).await.spec.expect("spec");
    assert_eq!(
        renewed.acquire_time, spec.acquire_time,
        "renewing keeps acquireTime"
    );
    assert!(renewed.renew_time > spec.renew_time);

    // A stops renewing (it crashed): B takes over once the 2 s have passed
    // on its own clock, not before.
    let started = tokio::time::Instant::now();
    let cancel = CancellationToken::new();
    let leadership = tokio::time::timeout(Duration::from_secs(10), b.acquire(&cancel))
        .await
        .expect("B leads within the lease duration and a retry")
        .expect("not cancelled");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "B waited for the lease to run out ({:?})",
        started.elapsed()
    );
    let taken = lease(&leases).await.spec.expect("spec");
    assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    assert_eq!(taken.lease_transitions, Some(1));
    assert!(taken.acquire_time > spec.acquire_time);

    // A, back, finds B leading.
    assert_eq!(
        a.try_acquire_or_renew().await.expect("a"),
        Attempt::Follower {
            holder: Some("b".into())
        }
    );
    // B keeps renewing in the background.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!leadership.is_lost());
    assert_eq!(holder(&lease(&leases).await).as_deref(), Some("b"));

    // Released on a clean stop: A takes it at its next try.
    leadership.release().await;
    let released = lease(&leases).await.spec.expect("spec");
    assert_eq!(released.holder_identity, None);
    assert_eq!(a.try_acquire_or_renew().await.expect("a"), Attempt::Leading);
    assert_eq!(holder(&lease(&leases).await).as_deref(), Some("a"));
}

#[tokio::test]
async fn a_leader_that_sees_another_holder_stops_leading() {
    let cluster = Cluster::start().await;
    let leases: Api<Lease> = Api::namespaced(cluster.client(), "kube-system");
    let cancel = CancellationToken::new();
    let elector = LeaderElector::new(cluster.client(), config("c")).expect("config");
    let leadership = elector.acquire(&cancel).await.expect("leads");
    let work = leadership.token();

    // Someone overwrites the lease (a split brain the store resolved
    // against us): the leader notices at its next renewal.
    let mut stolen = lease(&leases).await;
    if let Some(spec) = stolen.spec.as_mut() {
        spec.holder_identity = Some("intruder".into());
    }
    leases
        .replace("vcluster-controller", &PostParams::default(), &stolen)
        .await
        .expect("overwrite");
    tokio::time::timeout(Duration::from_secs(3), work.cancelled())
        .await
        .expect("leadership ends within a retry period");
    assert!(leadership.is_lost());
    // It does not give away a lease that is not its own.
    leadership.release().await;
    assert_eq!(holder(&lease(&leases).await).as_deref(), Some("intruder"));
}

#[tokio::test]
async fn cancelling_a_waiting_candidate_returns_without_leading() {
    let cluster = Cluster::start().await;
    let mut a = LeaderElector::new(cluster.client(), config("a")).expect("config");
    assert_eq!(a.try_acquire_or_renew().await.expect("a"), Attempt::Leading);
    let cancel = CancellationToken::new();
    let b = LeaderElector::new(cluster.client(), config("b")).expect("config");
    let waiting = tokio::spawn({
        let cancel = cancel.clone();
        async move { b.acquire(&cancel).await.is_some() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel();
    let led = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("returns at once")
        .expect("task");
    assert!(!led);
}
