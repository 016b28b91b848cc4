//! Graceful shutdown: cancelling the token stops every engine within a
//! bound, whether the syncer is busy or stuck on a host that does not
//! answer, and nothing panics. (A file of its own: it counts panics with a
//! process-wide hook.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use common::{
    clusters, config, eventually, start_metered_syncer, test_config_map, test_pod, Cluster,
    HostKind,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, PostParams};
use vcluster_testkit::fault_proxy::Fault;

on_both_hosts!(
    cancelling_a_busy_syncer_stops_every_engine_promptly,
    cancelling_while_the_host_hangs_stops_every_engine_promptly,
);

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic of the process (in any task of any runtime).
fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// How long a stop may take. The runner gives a stuck engine 10 s before
/// it gives up on it, so anything under that means every engine stopped.
const STOP_BOUND: Duration = Duration::from_secs(3);

async fn create(cluster: &Cluster, from: usize, count: usize) {
    let pods = cluster.api::<Pod>("default");
    let cms = cluster.api::<ConfigMap>("default");
    for i in from..from + count {
        let cm = format!("cm-{i}");
        cms.create(&PostParams::default(), &test_config_map(&cm, "v1", &[]))
            .await
            .expect("create configmap");
        pods.create(
            &PostParams::default(),
            &test_pod(&format!("pod-{i}"), Some(&cm), &[]),
        )
        .await
        .expect("create pod");
    }
}

async fn cancelling_a_busy_syncer_stops_every_engine_promptly(kind: HostKind) {
    count_panics();
    let host_namespace = "vcluster-busy";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    proxy.set(Fault::Delay(Duration::from_millis(10)));
    create(&virtual_cluster, 0, 40).await;
    let syncer = start_metered_syncer(
        virtual_cluster.client(),
        proxy.client(),
        config("busy", host_namespace),
    );
    let hpods = host.api::<Pod>(host_namespace);
    eventually("the syncer at work", || async {
        let pods = hpods.list(&ListParams::default()).await.ok()?.items;
        (pods.len() >= 3).then_some(())
    })
    .await;
    let engines = syncer.engines.clone();
    let took = syncer.stop_within(STOP_BOUND).await;
    eprintln!("busy syncer stopped in {took:?}");
    for engine in &engines {
        let m = engine.metrics();
        assert_eq!(
            m.in_flight,
            0,
            "{}: reconciles left running: {m:?}",
            engine.name()
        );
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

async fn cancelling_while_the_host_hangs_stops_every_engine_promptly(kind: HostKind) {
    count_panics();
    let host_namespace = "vcluster-hung";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    let syncer = start_metered_syncer(
        virtual_cluster.client(),
        proxy.client(),
        config("hung", host_namespace),
    );
    create(&virtual_cluster, 0, 1).await;
    let hpods = host.api::<Pod>(host_namespace);
    eventually("the first pod synced", || async {
        let pods = hpods.list(&ListParams::default()).await.ok()?.items;
        (!pods.is_empty()).then_some(())
    })
    .await;

    // The host stops answering; new work gets stuck in host requests.
    proxy.set(Fault::Hang);
    create(&virtual_cluster, 1, 6).await;
    eventually("reconciles stuck on the host", || async {
        let in_flight: usize = syncer.metrics().values().map(|m| m.in_flight).sum();
        (in_flight > 0).then_some(())
    })
    .await;
    let engines = syncer.engines.clone();
    let took = syncer.stop_within(STOP_BOUND).await;
    eprintln!("hung syncer stopped in {took:?}");
    for engine in &engines {
        let m = engine.metrics();
        assert_eq!(
            m.in_flight,
            0,
            "{}: reconciles left running: {m:?}",
            engine.name()
        );
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}
