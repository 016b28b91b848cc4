//! Robustness end to end: a syncer restarted in the middle of its work, two
//! virtual clusters sharing one host namespace, a host that fails and drops
//! connections for a while, and a key updated faster than it can be synced.
//! Loopback API servers only; every wait is a condition with a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{
    clusters, config, copies_by_virtual_key, eventually, start_metered_syncer, test_config_map,
    test_pod, Cluster, Host, HostKind, MeteredSyncer,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Resource;
use serde_json::json;
use vcluster_core::markers::{
    MANAGED_BY_LABEL, OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION, OBJECT_UID_ANNOTATION,
};
use vcluster_syncer::queue::Backoff;
use vcluster_syncer::runner::Selection;
use vcluster_testkit::eventually_within;
use vcluster_testkit::fault_proxy::{Fault, FaultProxy};

on_both_hosts!(
    a_syncer_restarted_in_the_middle_converges_without_duplicates_or_orphans,
    two_virtual_clusters_in_one_host_namespace_never_touch_each_others_objects,
    a_flaky_host_loses_nothing_once_it_recovers,
    rapid_updates_of_one_key_are_coalesced_and_the_last_one_wins,
    a_lagging_host_watch_is_not_taken_for_a_deleted_host_pod,
    requests_that_never_return_are_abandoned_and_retried,
    configmaps_of_pods_listed_late_at_start_up_are_still_synced,
    a_host_watch_on_a_silently_dead_connection_is_replaced,
    a_lagging_host_store_never_undoes_a_tenants_fresh_label,
);

/// Creates `count` configmaps `cm-<i>` and pods `pod-<i>` mounting them,
/// starting at `from`, a few at a time.
async fn create_pods_with_config_maps(cluster: &Cluster, from: usize, count: usize) {
    let pods = cluster.api::<Pod>("default");
    let cms = cluster.api::<ConfigMap>("default");
    futures::stream::iter(from..from + count)
        .map(|i| {
            let (pods, cms) = (pods.clone(), cms.clone());
            async move {
                let cm = format!("cm-{i}");
                cms.create(
                    &PostParams::default(),
                    &test_config_map(&cm, "v1", &[("app", "demo")]),
                )
                .await
                .expect("create configmap");
                let labels = [("app", "demo"), ("tier", "v1")];
                pods.create(
                    &PostParams::default(),
                    &test_pod(&format!("pod-{i}"), Some(&cm), &labels),
                )
                .await
                .expect("create pod");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// Names of the objects of a virtual namespace.
async fn virtual_names<K>(api: &Api<K>) -> BTreeSet<String>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("virtual list")
        .items
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

/// `Some(copies)` when every virtual object of `virtual_api` has exactly one
/// host copy in `host_api` and no host copy lacks its virtual object.
async fn in_step<K>(
    virtual_api: &Api<K>,
    host_api: &Api<K>,
    vcluster: &str,
) -> Option<BTreeMap<String, K>>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let wanted = virtual_names(virtual_api).await;
    let host = host_api.list(&ListParams::default()).await.ok()?.items;
    let copies = copies_by_virtual_key(&host, vcluster);
    let mut out = BTreeMap::new();
    for ((namespace, name), group) in copies {
        if namespace != "default" || !wanted.contains(&name) {
            return None; // an orphan still there
        }
        assert_eq!(
            group.len(),
            1,
            "{name} has {} host copies (duplicates)",
            group.len()
        );
        out.insert(name, group.into_iter().next().expect("one"));
    }
    (out.len() == wanted.len()).then_some(out)
}

fn label<'a, K: Resource>(object: &'a K, key: &str) -> Option<&'a str> {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

fn annotation<'a, K: Resource>(object: &'a K, key: &str) -> Option<&'a str> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// A host object's uid and resourceVersion: any write changes them.
type Identity = (Option<String>, Option<String>);

/// The [`Identity`] of every host pod and configmap of `vcluster`, by
/// kind and name.
async fn identities(
    pods: &Api<Pod>,
    cms: &Api<ConfigMap>,
    vcluster: &str,
) -> BTreeMap<String, Identity> {
    fn of<K: Resource>(kind: &str, objects: &[K], vcluster: &str) -> Vec<(String, Identity)> {
        objects
            .iter()
            .filter(|o| label(*o, MANAGED_BY_LABEL) == Some(vcluster))
            .map(|o| {
                let meta = o.meta();
                (
                    format!("{kind}/{}", meta.name.clone().unwrap_or_default()),
                    (meta.uid.clone(), meta.resource_version.clone()),
                )
            })
            .collect()
    }
    let pods = pods
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items;
    let cms = cms
        .list(&ListParams::default())
        .await
        .expect("list configmaps")
        .items;
    of("pod", &pods, vcluster)
        .into_iter()
        .chain(of("configmap", &cms, vcluster))
        .collect()
}

/// How long keys stuck on dead connections may take to sync once the
/// network is back (see the blackhole scenario).
const RECOVERY_DEADLINE: Duration = Duration::from_secs(60);

fn total_errors(syncer: &MeteredSyncer) -> u64 {
    syncer.metrics().values().map(|m| m.errors).sum()
}

async fn a_syncer_restarted_in_the_middle_converges_without_duplicates_or_orphans(kind: HostKind) {
    const N: usize = 50;
    const VC: &str = "restart";
    let host_namespace = "vcluster-restart";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let vpods = virtual_cluster.api::<Pod>("default");
    let vcms = virtual_cluster.api::<ConfigMap>("default");
    let hpods = host.api::<Pod>(host_namespace);
    let hcms = host.api::<ConfigMap>(host_namespace);

    // The first syncer works through a slow link, so it is stopped with
    // much of its work still to do.
    let slow = host.fault_proxy().await;
    slow.set(Fault::Delay(Duration::from_millis(15)));
    let first = start_metered_syncer(
        virtual_cluster.client(),
        slow.client(),
        config(VC, host_namespace),
    );
    create_pods_with_config_maps(&virtual_cluster, 0, N).await;
    eventually("the first syncer's first host pods", || async {
        let pods = hpods.list(&ListParams::default()).await.ok()?.items;
        (pods.len() >= 3).then_some(())
    })
    .await;
    first.stop_within(Duration::from_secs(5)).await;

    let host_pods = hpods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    let synced: BTreeSet<String> = copies_by_virtual_key(&host_pods, VC)
        .into_keys()
        .map(|(_, name)| name)
        .collect();
    assert!(
        synced.len() < N,
        "the syncer must be stopped mid-work (it had synced {} of {N} pods)",
        synced.len()
    );

    // While it is down: delete synced objects (their host copies become
    // orphans), relabel some, create new ones.
    let deleted: Vec<String> = synced.iter().take(5).cloned().collect();
    assert!(!deleted.is_empty());
    for pod in &deleted {
        let i = pod.trim_start_matches("pod-");
        vpods
            .delete(pod, &DeleteParams::default())
            .await
            .expect("delete pod");
        vcms.delete(&format!("cm-{i}"), &DeleteParams::default())
            .await
            .expect("delete cm");
    }
    // Some relabelled pods had host copies, some not yet.
    let relabelled: Vec<usize> = (0..N)
        .filter(|i| !deleted.contains(&format!("pod-{i}")))
        .step_by(5)
        .collect();
    let relabel = json!({"metadata": {"labels": {"tier": "v2", "app": null}}});
    for i in &relabelled {
        vpods
            .patch(
                &format!("pod-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&relabel),
            )
            .await
            .expect("relabel pod");
        vcms.patch(
            &format!("cm-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&relabel),
        )
        .await
        .expect("relabel cm");
    }
    create_pods_with_config_maps(&virtual_cluster, N, 10).await;

    // A new syncer (straight to the host) takes over and converges.
    let second = start_metered_syncer(
        virtual_cluster.client(),
        host.client.clone(),
        config(VC, host_namespace),
    );
    let pods = eventually("every pod exactly once on the host, no orphans", || {
        in_step(&vpods, &hpods, VC)
    })
    .await;
    let cms = eventually(
        "every configmap exactly once on the host, no orphans",
        || in_step(&vcms, &hcms, VC),
    )
    .await;
    assert_eq!(pods.len(), N + 10 - deleted.len());
    assert_eq!(cms.len(), N + 10 - deleted.len());
    for pod in &deleted {
        assert!(!pods.contains_key(pod), "orphan {pod} was collected");
    }

    // Labels are the current virtual ones.
    eventually(
        "host labels follow the relabelling done while down",
        || async {
            let pods = in_step(&vpods, &hpods, VC).await?;
            let cms = in_step(&vcms, &hcms, VC).await?;
            relabelled
                .iter()
                .all(|i| {
                    let pod = &pods[&format!("pod-{i}")];
                    let cm = &cms[&format!("cm-{i}")];
                    label(pod, "tier") == Some("v2")
                        && label(pod, "app").is_none()
                        && label(cm, "tier") == Some("v2")
                        && label(cm, "app").is_none()
                })
                .then_some(())
        },
    )
    .await;
    for (name, pod) in &pods {
        let i: usize = name.trim_start_matches("pod-").parse().expect("index");
        if !relabelled.contains(&i) {
            assert_eq!(label(pod, "tier"), Some("v1"), "{name}");
            assert_eq!(label(pod, "app"), Some("demo"), "{name}");
        }
        // Every host copy carries the uid of the virtual object of now.
        let virtual_pod = vpods.get(name).await.expect("virtual pod");
        assert_eq!(
            annotation(pod, OBJECT_UID_ANNOTATION),
            virtual_pod.metadata.uid.as_deref(),
            "{name}"
        );
    }
    second.stop_within(Duration::from_secs(5)).await;
}

/// Two virtual cluster names whose translations collide: object `web` in
/// namespace `default-x-beta` of `alpha` and object `web` in namespace
/// `default` of `beta-x-alpha` both become `web-x-default-x-beta-x-alpha`.
const VC_A: &str = "alpha";
const VC_B: &str = "beta-x-alpha";

async fn two_virtual_clusters_in_one_host_namespace_never_touch_each_others_objects(
    kind: HostKind,
) {
    let host = Host::start(kind).await;
    let vc_a = Cluster::start().await;
    let vc_b = Cluster::start().await;
    let shared = "shared";
    host.create_namespace(shared).await;
    let hpods = host.api::<Pod>(shared);
    let hcms = host.api::<ConfigMap>(shared);

    // Identical objects in both virtual clusters.
    create_pods_with_config_maps(&vc_a, 0, 8).await;
    create_pods_with_config_maps(&vc_b, 0, 8).await;
    let mut config_a = config(VC_A, shared);
    config_a.syncers.config_maps = Selection::All;
    let mut config_b = config(VC_B, shared);
    config_b.syncers.config_maps = Selection::All;
    let syncer_a = start_metered_syncer(vc_a.client(), host.client.clone(), config_a);
    let syncer_b = start_metered_syncer(vc_b.client(), host.client.clone(), config_b);

    let (a_pods, a_cms) = (vc_a.api::<Pod>("default"), vc_a.api::<ConfigMap>("default"));
    let (b_pods, b_cms) = (vc_b.api::<Pod>("default"), vc_b.api::<ConfigMap>("default"));
    eventually("both clusters' copies on the host", || async {
        in_step(&a_pods, &hpods, VC_A).await?;
        in_step(&a_cms, &hcms, VC_A).await?;
        in_step(&b_pods, &hpods, VC_B).await?;
        in_step(&b_cms, &hcms, VC_B).await
    })
    .await;

    // Everything either syncer wrote in the host namespace is a copy of
    // exactly one virtual object of the cluster its marker names, with that
    // object's uid. (A real host keeps objects of its own there too, such
    // as the kube-root-ca.crt configmap; they carry no marker.)
    let managed = ListParams::default().labels(MANAGED_BY_LABEL);
    let all_pods = hpods.list(&managed).await.expect("list").items;
    let all_cms = hcms.list(&managed).await.expect("list").items;
    assert_eq!(all_pods.len(), 16);
    assert_eq!(all_cms.len(), 16);
    for (vc, virtual_cluster) in [(VC_A, &vc_a), (VC_B, &vc_b)] {
        let vpods = virtual_cluster.api::<Pod>("default");
        for pod in all_pods
            .iter()
            .filter(|p| label(*p, MANAGED_BY_LABEL) == Some(vc))
        {
            let name = annotation(pod, OBJECT_NAME_ANNOTATION).expect("object-name");
            assert_eq!(
                annotation(pod, OBJECT_NAMESPACE_ANNOTATION),
                Some("default")
            );
            let expected_host_name =
                vcluster_core::safe_concat_name(&[name, "x", "default", "x", vc]);
            assert_eq!(
                pod.metadata.name.as_deref(),
                Some(expected_host_name.as_str())
            );
            let virtual_pod = vpods.get(name).await.expect("virtual pod");
            assert_eq!(
                annotation(pod, OBJECT_UID_ANNOTATION),
                virtual_pod.metadata.uid.as_deref()
            );
        }
    }

    // A genuine name collision: vc-b's copy exists first; vc-a's object
    // with the same host name must never modify it.
    b_cms
        .create(&PostParams::default(), &test_config_map("web", "b's", &[]))
        .await
        .expect("create b's web");
    let collided = "web-x-default-x-beta-x-alpha";
    let b_copy = eventually("vc-b's colliding copy", || async {
        hcms.get_opt(collided).await.ok().flatten()
    })
    .await;
    // And a host object without any marker under the name vc-a's `plain`
    // translates to.
    let unmarked_name = "plain-x-default-x-alpha";
    let unmarked = hcms
        .create(
            &PostParams::default(),
            &test_config_map(unmarked_name, "not the syncer's", &[("owner", "someone")]),
        )
        .await
        .expect("create unmarked");
    let errors_before = syncer_a.metrics_of("configmaps").errors;
    let namespaces: Api<Namespace> = Api::all(vc_a.client());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some("default-x-beta".into());
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("namespace");
    vc_a.api::<ConfigMap>("default-x-beta")
        .create(&PostParams::default(), &test_config_map("web", "a's", &[]))
        .await
        .expect("create a's web");
    a_cms
        .create(
            &PostParams::default(),
            &test_config_map("plain", "a's", &[]),
        )
        .await
        .expect("create a's plain");

    // vc-a reports both conflicts as errors and keeps retrying (backoff).
    eventually("vc-a counting its conflicts as errors, retried", || async {
        (syncer_a.metrics_of("configmaps").errors >= errors_before + 6).then_some(())
    })
    .await;
    let now_b = hcms.get(collided).await.expect("b's copy");
    assert_eq!(
        now_b.metadata.resource_version, b_copy.metadata.resource_version,
        "vc-a modified vc-b's copy"
    );
    assert_eq!(label(&now_b, MANAGED_BY_LABEL), Some(VC_B));
    assert_eq!(now_b.data, b_copy.data);
    let now_unmarked = hcms.get(unmarked_name).await.expect("unmarked");
    assert_eq!(
        now_unmarked.metadata.resource_version, unmarked.metadata.resource_version,
        "vc-a modified an object without its marker"
    );

    // vc-a's errors back off: a fixed short retry would run far more often.
    let failures_at = syncer_a.metrics_of("configmaps").errors;
    eventually("vc-a still retrying", || async {
        (syncer_a.metrics_of("configmaps").errors > failures_at).then_some(())
    })
    .await;

    // Delete everything in vc-a: its copies go, vc-b's stay untouched.
    let b_before = identities(&hpods, &hcms, VC_B).await;
    assert_eq!(b_before.len(), 17);
    for namespace in ["default", "default-x-beta"] {
        let pods = vc_a.api::<Pod>(namespace);
        let cms = vc_a.api::<ConfigMap>(namespace);
        pods.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .expect("delete a's pods");
        cms.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .expect("delete a's configmaps");
    }
    eventually("vc-a's copies all gone from the host", || async {
        let pods = hpods.list(&ListParams::default()).await.ok()?.items;
        let cms = hcms.list(&ListParams::default()).await.ok()?.items;
        (copies_by_virtual_key(&pods, VC_A).is_empty()
            && copies_by_virtual_key(&cms, VC_A).is_empty())
        .then_some(())
    })
    .await;
    let b_after = identities(&hpods, &hcms, VC_B).await;
    assert_eq!(b_before, b_after, "vc-b's copies changed when vc-a emptied");
    let still_unmarked = hcms.get(unmarked_name).await.expect("unmarked survives");
    assert_eq!(
        still_unmarked.metadata.resource_version,
        unmarked.metadata.resource_version
    );
    assert_eq!(syncer_b.metrics_of("configmaps").errors, 0);
    assert_eq!(syncer_b.metrics_of("pods").errors, 0);

    syncer_a.stop_within(Duration::from_secs(5)).await;
    syncer_b.stop_within(Duration::from_secs(5)).await;
}

async fn a_flaky_host_loses_nothing_once_it_recovers(kind: HostKind) {
    const VC: &str = "flaky";
    let host_namespace = "vcluster-flaky";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    let syncer = start_metered_syncer(
        virtual_cluster.client(),
        proxy.client(),
        config(VC, host_namespace),
    );
    let vpods = virtual_cluster.api::<Pod>("default");
    let vcms = virtual_cluster.api::<ConfigMap>("default");
    let hpods = host.api::<Pod>(host_namespace);
    let hcms = host.api::<ConfigMap>(host_namespace);

    create_pods_with_config_maps(&virtual_cluster, 0, 10).await;
    eventually("the first pods synced", || async {
        in_step(&vpods, &hpods, VC).await?;
        in_step(&vcms, &hcms, VC).await
    })
    .await;

    let data_v2 = json!({"data": {"key": "v2"}});
    let relabel = json!({"metadata": {"labels": {"tier": "v2"}}});
    let delete = |i: usize| {
        let (vpods, vcms) = (vpods.clone(), vcms.clone());
        async move {
            vpods
                .delete(&format!("pod-{i}"), &DeleteParams::default())
                .await
                .expect("delete pod");
            vcms.delete(&format!("cm-{i}"), &DeleteParams::default())
                .await
                .expect("delete cm");
        }
    };
    let mut faults_seen = 0;
    let mut errors_seen = total_errors(&syncer);

    // Phase 1: every host request fails with 500; open connections are cut.
    proxy.set(Fault::Error500);
    create_pods_with_config_maps(&virtual_cluster, 10, 5).await;
    for i in 0..3 {
        delete(i).await;
    }
    for i in 3..6 {
        vcms.patch(
            &format!("cm-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&data_v2),
        )
        .await
        .expect("update cm");
    }
    for i in 6..8 {
        vpods
            .patch(
                &format!("pod-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&relabel),
            )
            .await
            .expect("relabel pod");
    }
    eventually("500s met and counted as errors", || async {
        (proxy.faults() >= faults_seen + 5 && total_errors(&syncer) >= errors_seen + 5)
            .then_some(())
    })
    .await;
    faults_seen = proxy.faults();
    errors_seen = total_errors(&syncer);

    // Phase 2: connections are dropped mid-request.
    proxy.set(Fault::Drop);
    create_pods_with_config_maps(&virtual_cluster, 15, 5).await;
    delete(10).await; // created during the first fault: maybe never on the host
    delete(8).await;
    eventually("dropped connections met and counted as errors", || async {
        (proxy.faults() >= faults_seen + 5 && total_errors(&syncer) >= errors_seen + 5)
            .then_some(())
    })
    .await;
    faults_seen = proxy.faults();

    // Phase 3: the host stops answering at all (a blackhole), then the
    // connections are reset.
    proxy.set(Fault::Hang);
    create_pods_with_config_maps(&virtual_cluster, 20, 3).await;
    vcms.patch("cm-9", &PatchParams::default(), &Patch::Merge(&data_v2))
        .await
        .expect("update cm");
    eventually("requests stuck in the blackhole", || async {
        let in_flight: usize = syncer.metrics().values().map(|m| m.in_flight).sum();
        (proxy.faults() >= faults_seen + 2 && in_flight > 0).then_some(())
    })
    .await;

    // Recovery.
    proxy.set(Fault::None);
    let deleted = [0, 1, 2, 8, 10];
    let pods = eventually("every pod on the host once, deletions applied", || {
        in_step(&vpods, &hpods, VC)
    })
    .await;
    assert_eq!(pods.len(), 23 - deleted.len());
    for i in deleted {
        assert!(!pods.contains_key(&format!("pod-{i}")));
    }
    eventually(
        "every configmap on the host with its current data",
        || async {
            let cms = in_step(&vcms, &hcms, VC).await?;
            let pods = in_step(&vpods, &hpods, VC).await?;
            let data_ok = [3, 4, 5, 9].iter().all(|i| {
                cms.get(&format!("cm-{i}"))
                    .and_then(|c| c.data.as_ref())
                    .and_then(|d| d.get("key"))
                    .map(String::as_str)
                    == Some("v2")
            });
            let labels_ok = [6, 7].iter().all(|i| {
                pods.get(&format!("pod-{i}")).and_then(|p| label(p, "tier")) == Some("v2")
            });
            (data_ok && labels_ok).then_some(())
        },
    )
    .await;

    // The host watches are alive again: host status still flows back.
    let host_pod = pods["pod-21"].metadata.name.clone().expect("name");
    let status = json!({"status": {"phase": "Running", "podIP": "10.1.2.3"}});
    hpods
        .patch_status(&host_pod, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("host status");
    eventually(
        "status of a pod created during the faults flows back",
        || async {
            let pod = vpods.get("pod-21").await.ok()?;
            (pod.status?.pod_ip.as_deref() == Some("10.1.2.3")).then_some(())
        },
    )
    .await;

    let metrics = syncer.metrics();
    eprintln!(
        "flaky host: {} faulted connections; {metrics:#?}",
        proxy.faults()
    );
    for kind in ["pods", "configmaps"] {
        let m = &metrics[kind];
        assert!(m.errors > 0, "{kind}: errors counted: {m:?}");
        assert!(
            m.reconciles > m.errors,
            "{kind}: retried after errors: {m:?}"
        );
    }
    syncer.stop_within(Duration::from_secs(5)).await;
}

async fn rapid_updates_of_one_key_are_coalesced_and_the_last_one_wins(kind: HostKind) {
    const VC: &str = "hot";
    const UPDATES: usize = 200;
    let host_namespace = "vcluster-hot";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    // Every host write takes a while, so updates pile up behind it.
    let proxy = host.fault_proxy().await;
    proxy.set(Fault::Delay(Duration::from_millis(40)));
    let mut config = config(VC, host_namespace);
    config.syncers.pods = false;
    config.syncers.config_maps = Selection::All;
    config.syncers.secrets = Selection::Off;
    let syncer = start_metered_syncer(virtual_cluster.client(), proxy.client(), config);
    let vcms = virtual_cluster.api::<ConfigMap>("default");
    let hcms = host.api::<ConfigMap>(host_namespace);
    vcms.create(&PostParams::default(), &test_config_map("hot", "v0", &[]))
        .await
        .expect("create");
    let host_name = vcluster_core::safe_concat_name(&["hot", "x", "default", "x", VC]);
    eventually("the first copy", || async {
        hcms.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let before = syncer.metrics_of("configmaps");

    // Eight writers at once, then one last update after all of them.
    let update = |i: usize| {
        let vcms = vcms.clone();
        async move {
            let patch = json!({
                "data": {"key": format!("v{i}")},
                "metadata": {"labels": {"rev": format!("r{i}")}},
            });
            vcms.patch("hot", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("update");
        }
    };
    futures::stream::iter(1..UPDATES)
        .map(update)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    update(UPDATES).await;
    let last = format!("v{UPDATES}");
    eventually("the last update on the host", || async {
        let cm = hcms.get(&host_name).await.ok()?;
        let data = cm.data.as_ref()?.get("key")?.clone();
        (data == last && label(&cm, "rev") == Some(format!("r{UPDATES}").as_str())).then_some(())
    })
    .await;
    eventually("the queue drained", || async {
        let m = syncer.metrics_of("configmaps");
        (m.queue_depth == 0 && m.in_flight == 0).then_some(())
    })
    .await;
    let after = syncer.metrics_of("configmaps");
    let reconciles = after.reconciles - before.reconciles;
    let writes = after.writes - before.writes;
    eprintln!("{UPDATES} updates: {reconciles} reconciles, {writes} writes");
    assert!(
        reconciles * 4 < UPDATES as u64,
        "{UPDATES} updates took {reconciles} reconciles: not coalesced ({after:?})"
    );
    assert!(
        writes <= reconciles,
        "{writes} writes in {reconciles} reconciles"
    );
    assert_eq!(after.errors, 0, "{after:?}");
    // Still the last update (nothing older overwrote it late).
    let cm = hcms.get(&host_name).await.expect("host copy");
    assert_eq!(cm.data.unwrap_or_default().get("key"), Some(&last));
    syncer.stop_within(Duration::from_secs(5)).await;
}

async fn a_lagging_host_watch_is_not_taken_for_a_deleted_host_pod(kind: HostKind) {
    const VC: &str = "lag";
    let host_namespace = "vcluster-lag";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    let syncer = start_metered_syncer(
        virtual_cluster.client(),
        proxy.client(),
        config(VC, host_namespace),
    );
    let vpods = virtual_cluster.api::<Pod>("default");
    let hpods = host.api::<Pod>(host_namespace);
    vpods
        .create(&PostParams::default(), &test_pod("steady", None, &[]))
        .await
        .expect("create");
    eventually("the first pod synced both ways", || async {
        in_step(&vpods, &hpods, VC).await.filter(|p| p.len() == 1)
    })
    .await;

    // The host watches fall behind; other host requests still work.
    proxy.set(Fault::StallWatches);
    vpods
        .create(
            &PostParams::default(),
            &test_pod("fresh", None, &[("tier", "v1")]),
        )
        .await
        .expect("create");
    let host_name = vcluster_core::safe_concat_name(&["fresh", "x", "default", "x", VC]);
    eventually("the new pod created on the host", || async {
        hpods.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    // A change of the virtual pod now finds its host copy missing from the
    // (lagging) store: that must not read as "deleted on the host", nor
    // wait for the watch; the live copy is reconciled with.
    let relabel = json!({"metadata": {"labels": {"tier": "v2"}}});
    vpods
        .patch("fresh", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .expect("relabel");
    eventually("the relabel on the host while its watch lags", || async {
        let pod = hpods.get(&host_name).await.ok()?;
        (label(&pod, "tier") == Some("v2")).then_some(())
    })
    .await;
    assert!(
        vpods.get_opt("fresh").await.expect("get").is_some(),
        "the virtual pod was deleted because the host watch lagged"
    );

    proxy.set(Fault::None);
    let relabel = json!({"metadata": {"labels": {"tier": "v3"}}});
    vpods
        .patch("fresh", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .expect("relabel");
    eventually("the next relabel once the watch caught up", || async {
        let pod = hpods.get(&host_name).await.ok()?;
        (label(&pod, "tier") == Some("v3")).then_some(())
    })
    .await;
    assert!(vpods.get_opt("fresh").await.expect("get").is_some());
    syncer.stop_within(Duration::from_secs(5)).await;
}

async fn requests_that_never_return_are_abandoned_and_retried(kind: HostKind) {
    const VC: &str = "void";
    let host_namespace = "vcluster-void";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    let mut config = config(VC, host_namespace);
    config.syncers.pods = false;
    config.syncers.config_maps = Selection::All;
    config.syncers.secrets = Selection::Off;
    config.engine.reconcile_timeout = Duration::from_secs(1);
    // Every request that lands on a pooled connection the blackhole killed
    // costs a timeout and a failure; how many there are depends on the
    // connection pool, so cap the backoff below the wait's deadline rather
    // than let a dozen failures push the next retry past it.
    config.engine.backoff = Backoff {
        base: Duration::from_millis(5),
        max: Duration::from_secs(2),
    };
    let syncer = start_metered_syncer(virtual_cluster.client(), proxy.client(), config);
    let vcms = virtual_cluster.api::<ConfigMap>("default");
    let hcms = host.api::<ConfigMap>(host_namespace);
    vcms.create(&PostParams::default(), &test_config_map("first", "v1", &[]))
        .await
        .expect("create");
    eventually("the first configmap synced", || async {
        in_step(&vcms, &hcms, VC).await.filter(|c| c.len() == 1)
    })
    .await;

    // The host's network drops every open flow for good; the requests on
    // them never get an answer, nor an error.
    proxy.set(Fault::Blackhole);
    for name in ["second", "third"] {
        vcms.create(&PostParams::default(), &test_config_map(name, "v1", &[]))
            .await
            .expect("create");
    }
    let data_v2 = json!({"data": {"key": "v2"}});
    vcms.patch("first", &PatchParams::default(), &Patch::Merge(&data_v2))
        .await
        .expect("update");
    eventually("reconciles stuck on dead connections", || async {
        (syncer.metrics_of("configmaps").in_flight > 0).then_some(())
    })
    .await;
    // New connections work again; the dead ones stay dead. Every request
    // that still lands on a dead pooled connection costs a reconcile
    // timeout and a backoff; on the real host under the whole suite's
    // parallel load (TLS handshakes, the other scenarios' pods) that took
    // more than the usual 20 s once in a fresh clone's CI run, so this wait
    // has a bound of its own (the recovery is still required).
    proxy.set(Fault::None);
    eventually_within(
        RECOVERY_DEADLINE,
        "the stuck keys retried and synced",
        || async {
            let cms = in_step(&vcms, &hcms, VC).await?;
            let first = cms.get("first")?.data.as_ref()?.get("key")?.clone();
            (cms.len() == 3 && first == "v2").then_some(())
        },
    )
    .await;
    assert!(syncer.metrics_of("configmaps").errors > 0);
    syncer.stop_within(Duration::from_secs(5)).await;
}

async fn configmaps_of_pods_listed_late_at_start_up_are_still_synced(kind: HostKind) {
    const VC: &str = "late";
    let host_namespace = "vcluster-late";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let vpods = virtual_cluster.api::<Pod>("default");
    let vcms = virtual_cluster.api::<ConfigMap>("default");
    vcms.create(
        &PostParams::default(),
        &test_config_map("a-config", "v1", &[]),
    )
    .await
    .expect("create configmap");
    vpods
        .create(
            &PostParams::default(),
            &test_pod("a-app", Some("a-config"), &[]),
        )
        .await
        .expect("create pod");
    // Enough pods for the start-up list to come in two pages (of 500):
    // `a-app` is on the first, and the second is slow to come.
    futures::stream::iter(0..500)
        .map(|i| {
            let vpods = vpods.clone();
            async move {
                vpods
                    .create(
                        &PostParams::default(),
                        &test_pod(&format!("filler-{i:03}"), None, &[]),
                    )
                    .await
                    .expect("create filler");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let slow_pages = FaultProxy::start(virtual_cluster.addr).await;
    slow_pages.set(Fault::DelayPath("continue=", Duration::from_millis(500)));
    let syncer = start_metered_syncer(
        slow_pages.client(),
        host.client.clone(),
        config(VC, host_namespace),
    );
    // Meanwhile the configmap engine looks at `a-config` while the pod
    // store has not taken the first page yet: it must look again once it
    // has, or the pod waits for its configmap forever.
    let hpods = host.api::<Pod>(host_namespace);
    let host_pod = vcluster_core::safe_concat_name(&["a-app", "x", "default", "x", VC]);
    eventually("the pod and its configmap on the host", || async {
        hpods.get_opt(&host_pod).await.ok().flatten()
    })
    .await;
    syncer.stop_within(Duration::from_secs(5)).await;
}

async fn a_host_watch_on_a_silently_dead_connection_is_replaced(kind: HostKind) {
    const VC: &str = "silent";
    let host_namespace = "vcluster-silent";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    let mut config = config(VC, host_namespace);
    config.syncers.config_maps = Selection::Off;
    config.syncers.secrets = Selection::Off;
    // Far below the 20 s deadline of `eventually`; kube-rs' default would
    // leave the dead watch in place for 295 s.
    config.watch_timeout = Duration::from_secs(2);
    // The re-list after the new watch must not pick a pooled connection
    // the network dropped and wait on it forever: reads time out, as a
    // production host client should be configured.
    let host_client = proxy.client_with_read_timeout(Duration::from_secs(4));
    let syncer = start_metered_syncer(virtual_cluster.client(), host_client, config);
    let vpods = virtual_cluster.api::<Pod>("default");
    let hpods = host.api::<Pod>(host_namespace);
    vpods
        .create(&PostParams::default(), &test_pod("web", None, &[]))
        .await
        .expect("create");
    let host_name = eventually("the pod on the host", || async {
        in_step(&vpods, &hpods, VC)
            .await?
            .get("web")
            .and_then(|p| p.metadata.name.clone())
    })
    .await;

    // Every open flow to the host dies without a FIN or RST, the host
    // watches' included; new connections work again at once.
    proxy.set(Fault::Blackhole);
    eventually("the open connections caught", || async {
        (proxy.faults() > 0).then_some(())
    })
    .await;
    proxy.set(Fault::None);

    // Only a new host watch can tell the syncer about this.
    let status = json!({"status": {"phase": "Running", "podIP": "10.9.8.7"}});
    hpods
        .patch_status(&host_name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("host status");
    eventually("the host status on the virtual pod", || async {
        let pod = vpods.get("web").await.ok()?;
        (pod.status?.pod_ip.as_deref() == Some("10.9.8.7")).then_some(())
    })
    .await;
    syncer.stop_within(Duration::from_secs(5)).await;
}

async fn a_lagging_host_store_never_undoes_a_tenants_fresh_label(kind: HostKind) {
    const VC: &str = "stale";
    let host_namespace = "vcluster-stale";
    let (virtual_cluster, host) = clusters(kind, host_namespace).await;
    let proxy = host.fault_proxy().await;
    let mut config = config(VC, host_namespace);
    config.syncers.pods = false;
    config.syncers.config_maps = Selection::All;
    // Every key is looked at again often, as a resync would.
    config.engine.resync_interval = Duration::from_millis(200);
    let syncer = start_metered_syncer(virtual_cluster.client(), proxy.client(), config);
    let vcms = virtual_cluster.api::<ConfigMap>("default");
    let hcms = host.api::<ConfigMap>(host_namespace);
    vcms.create(
        &PostParams::default(),
        &test_config_map("settings", "v1", &[("app", "web")]),
    )
    .await
    .expect("create");
    eventually("the configmap synced", || async {
        in_step(&vcms, &hcms, VC).await.filter(|c| c.len() == 1)
    })
    .await;
    let host_name = vcluster_core::safe_concat_name(&["settings", "x", "default", "x", VC]);
    // The scenario starts from a host store that has seen the copy: while
    // it has not, every resync tries the create again (and meets a
    // conflict), and under load the stall below could begin before the
    // store caught up. Three resyncs in a row that write nothing and meet
    // no conflict or error show it has.
    let deadline = std::time::Instant::now() + common::DEADLINE;
    let mut base = syncer.metrics_of("configmaps");
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = syncer.metrics_of("configmaps");
        if (now.writes, now.conflicts, now.errors) != (base.writes, base.conflicts, base.errors) {
            base = now;
        } else if now.reconciles >= base.reconciles + 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the syncer's host store never showed the copy"
        );
    }

    // The host watch falls behind; the tenant's new label still reaches the
    // host (other requests work).
    proxy.set(Fault::StallWatches);
    let label_patch = json!({"metadata": {"labels": {"tier": "gold"}}});
    vcms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(&label_patch),
    )
    .await
    .expect("label");
    eventually("the label on the host", || async {
        let cm = hcms.get(&host_name).await.ok()?;
        (label(&cm, "tier") == Some("gold")).then_some(())
    })
    .await;
    // The syncer looks again (a resync) while its host store still shows
    // the copy without the label: that must not read as "the host removed
    // it".
    let reconciles = syncer.metrics_of("configmaps").reconciles;
    eventually("reconciles against the lagging store", || async {
        (syncer.metrics_of("configmaps").reconciles >= reconciles + 3).then_some(())
    })
    .await;
    let virt = vcms.get("settings").await.expect("get");
    assert_eq!(
        label(&virt, "tier"),
        Some("gold"),
        "the tenant's label was taken back because the host store lagged"
    );

    proxy.set(Fault::None);
    eventually("the label kept on both sides", || async {
        let cm = hcms.get(&host_name).await.ok()?;
        let virt = vcms.get("settings").await.ok()?;
        (label(&cm, "tier") == Some("gold") && label(&virt, "tier") == Some("gold")).then_some(())
    })
    .await;
    syncer.stop_within(Duration::from_secs(5)).await;
}
