//! Tenant isolation on the host, end to end: everything a tenant writes is
//! attacker-controlled, and none of it may make the syncer write outside its
//! host namespace, touch an object it does not own, or run a pod the host
//! isolation policy forbids. One test per attempt; loopback API servers
//! only, every wait a condition with a deadline.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    config, eventually, managed_outside, pod_condition, start_metered_syncer, test_config_map,
    test_pod, Cluster, Host, HostKind, MeteredSyncer, HOST_SERVICE_CIDR,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LimitRange, LimitRangeSpec, Namespace, Pod, ResourceQuota, ResourceQuotaSpec,
    Secret, Service,
};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use vcluster_core::markers::{
    MANAGED_BY_LABEL, NAMESPACE_LABEL, OBJECT_HOST_NAMESPACE_ANNOTATION,
    OBJECT_HOST_NAME_ANNOTATION, OBJECT_NAMESPACE_ANNOTATION, OBJECT_NAME_ANNOTATION,
    OBJECT_UID_ANNOTATION,
};
use vcluster_core::prelude::*;
use vcluster_core::{safe_concat_name, SingleNamespaceTranslator, VirtualKey};
use vcluster_syncer::runner::{Selection, SyncConfig};
use vcluster_syncer::syncers::limits::{HostLimits, HostLimitsSyncer, HOST_LIMITS_LABEL};
use vcluster_syncer::syncers::pods::{PodSecurityLevel, SYNC_BLOCKED};
use vcluster_testkit::eventually_gone;

on_both_hosts!(
    names_crafted_to_collide_never_touch_the_other_object,
    labels_and_annotations_imitating_the_markers_are_not_honoured,
    owner_references_to_host_objects_are_never_copied,
    a_tenants_service_never_selects_another_tenants_pods,
    namespace_names_cannot_escape_the_host_namespace,
    a_pod_cannot_read_another_tenants_configmap_or_secret,
    pods_the_policy_forbids_are_not_synced_and_say_why,
    resource_limits_are_kept_in_the_host_namespace_and_removed_when_disabled,
    slices_and_ingresses_cannot_attach_to_another_tenants_service,
);

/// A virtual cluster with a running syncer whose counters can be read.
struct Tenant {
    cluster: Cluster,
    syncer: MeteredSyncer,
    name: String,
}

impl Tenant {
    async fn start(
        name: &str,
        host: &Host,
        host_namespace: &str,
        configure: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        let cluster =
            Cluster::start_configured(|c| c.extra_service_cidrs = vec![HOST_SERVICE_CIDR.into()])
                .await;
        Self::start_on(cluster, name, host, host_namespace, configure)
    }

    fn start_on(
        cluster: Cluster,
        name: &str,
        host: &Host,
        host_namespace: &str,
        configure: impl FnOnce(&mut SyncConfig),
    ) -> Self {
        let mut sync_config = config(name, host_namespace);
        configure(&mut sync_config);
        let syncer = start_metered_syncer(cluster.client(), host.client.clone(), sync_config);
        Self {
            cluster,
            syncer,
            name: name.to_owned(),
        }
    }

    fn errors(&self, engine: &str) -> u64 {
        self.syncer.metrics_of(engine).errors
    }

    async fn namespace(&self, name: &str) {
        self.cluster.create_namespace(name).await;
    }

    fn translator(&self, host_namespace: &str) -> SingleNamespaceTranslator {
        SingleNamespaceTranslator::new(&self.name, host_namespace).expect("translator")
    }
}

async fn create<K>(api: &Api<K>, object: &K) -> K
where
    K: Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    api.create(&PostParams::default(), object)
        .await
        .unwrap_or_else(|e| panic!("create {:?}: {e}", object.meta().name))
}

/// Waits until `engine` of `tenant` has failed at least `more` more times
/// than `before`: the syncer has looked at (and refused) the key.
async fn refused(tenant: &Tenant, engine: &str, before: u64, more: u64) {
    eventually(&format!("{engine} of {} refusing", tenant.name), || async {
        (tenant.errors(engine) >= before + more).then_some(())
    })
    .await;
}

fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

async fn names_crafted_to_collide_never_touch_the_other_object(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-vc";
    host.create_namespace(host_ns).await;
    let tenant = Tenant::start("vc", &host, host_ns, |c| {
        c.syncers.config_maps = Selection::All
    })
    .await;
    for ns in ["c", "b-x-c"] {
        tenant.namespace(ns).await;
    }
    let hcms = host.api::<ConfigMap>(host_ns);
    let hpods = host.api::<Pod>(host_ns);

    // Short names: `c/a-x-b` and `b-x-c/a` are both `a-x-b-x-c-x-vc`.
    // Long ones: both join to the same 70-odd characters, so both are
    // shortened to the same head and the same hash.
    let long = "l".repeat(60);
    let long_first = format!("{long}-x-b");
    let pairs = [
        ("a-x-b".to_owned(), "a".to_owned()),
        (long_first.clone(), long.clone()),
    ];
    let mut first_copies = Vec::new();
    for (first, _) in &pairs {
        create(
            &tenant.cluster.api::<ConfigMap>("c"),
            &test_config_map(first, "first", &[]),
        )
        .await;
        let host_name = safe_concat_name(&[first, "x", "c", "x", "vc"]);
        let copy = eventually("the first object's host copy", || async {
            hcms.get_opt(&host_name).await.ok().flatten()
        })
        .await;
        first_copies.push(copy);
    }
    assert_eq!(
        safe_concat_name(&[&long_first, "x", "c", "x", "vc"]),
        safe_concat_name(&[&long, "x", "b-x-c", "x", "vc"]),
        "the long pair collides after hashing"
    );
    create(
        &tenant.cluster.api::<Pod>("c"),
        &test_pod("p-x-b", None, &[]),
    )
    .await;
    let first_pod = eventually("the first pod's host copy", || async {
        hpods.get_opt("p-x-b-x-c-x-vc").await.ok().flatten()
    })
    .await;

    // The colliding second objects, created, updated, deleted.
    let cm_errors = tenant.errors("configmaps");
    let pod_errors = tenant.errors("pods");
    let second = tenant.cluster.api::<ConfigMap>("b-x-c");
    for (_, name) in &pairs {
        create(&second, &test_config_map(name, "second", &[])).await;
    }
    create(
        &tenant.cluster.api::<Pod>("b-x-c"),
        &test_pod("p", None, &[]),
    )
    .await;
    refused(&tenant, "configmaps", cm_errors, 2).await;
    refused(&tenant, "pods", pod_errors, 1).await;
    let cm_errors = tenant.errors("configmaps");
    for (_, name) in &pairs {
        second
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"data": {"key": "second, changed"}, "metadata": {"labels": {"x": "y"}}}),
                ),
            )
            .await
            .expect("update the second object");
    }
    refused(&tenant, "configmaps", cm_errors, 2).await;
    let cm_errors = tenant.errors("configmaps");
    for (_, name) in &pairs {
        second
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete the second object");
    }
    tenant
        .cluster
        .api::<Pod>("b-x-c")
        .delete("p", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete the second pod");
    refused(&tenant, "configmaps", cm_errors, 2).await;

    // The first copies are exactly as they were: never written, never deleted.
    for copy in &first_copies {
        let name = copy.metadata.name.clone().expect("name");
        let now = hcms.get(&name).await.expect("the first copy survives");
        assert_eq!(
            now.metadata.resource_version, copy.metadata.resource_version,
            "{name} was written"
        );
        assert_eq!(now.data, copy.data);
        assert_eq!(
            now.annotations()
                .get(OBJECT_NAMESPACE_ANNOTATION)
                .map(String::as_str),
            Some("c")
        );
    }
    let pod_now = hpods
        .get("p-x-b-x-c-x-vc")
        .await
        .expect("the first pod survives");
    assert_eq!(pod_now.metadata.uid, first_pod.metadata.uid);
    assert_eq!(
        pod_now
            .annotations()
            .get(OBJECT_NAMESPACE_ANNOTATION)
            .map(String::as_str),
        Some("c")
    );
    assert_eq!(managed_outside(&host, host_ns).await, Vec::<String>::new());

    // The syncer still works for the rightful owners.
    tenant
        .cluster
        .api::<ConfigMap>("c")
        .delete("a-x-b", &DeleteParams::default())
        .await
        .expect("delete the first object");
    eventually_gone(
        "the first copy deleted with its object",
        &hcms,
        "a-x-b-x-c-x-vc",
    )
    .await;
    tenant.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn labels_and_annotations_imitating_the_markers_are_not_honoured(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-vc";
    host.create_namespace(host_ns).await;
    let hcms = host.api::<ConfigMap>(host_ns);
    // An administrator's object on the host, which the forgery points at.
    let victim = create(
        &hcms,
        &test_config_map("victim-x-kube-system-x-vc", "admin's", &[]),
    )
    .await;
    let tenant = Tenant::start("vc", &host, host_ns, |c| {
        c.syncers.config_maps = Selection::All
    })
    .await;
    let translator = tenant.translator(host_ns);

    let forged_labels = json!({
        MANAGED_BY_LABEL: "other-vc",
        NAMESPACE_LABEL: "kube-system",
        "vcluster.loft.sh/controlled-by": "someone",
        "release": "r1",
        "app": "forger",
    });
    let forged_annotations = json!({
        OBJECT_NAME_ANNOTATION: "victim",
        OBJECT_NAMESPACE_ANNOTATION: "kube-system",
        OBJECT_UID_ANNOTATION: "0000",
        "vcluster.loft.sh/object-kind": "/v1, Kind=Secret",
        OBJECT_HOST_NAME_ANNOTATION: "victim-x-kube-system-x-vc",
        OBJECT_HOST_NAMESPACE_ANNOTATION: "kube-system",
        "vcluster.loft.sh/managed-labels": "owner",
        "vcluster.loft.sh/managed-annotations": "owner",
        "note": "hello",
    });
    let forger: ConfigMap = common::object(json!({
        "metadata": {"name": "forger", "labels": forged_labels, "annotations": forged_annotations},
        "data": {"key": "tenant"},
    }));
    let virtual_forger = create(&tenant.cluster.api::<ConfigMap>("default"), &forger).await;
    let mut pod = test_pod("forger", None, &[]);
    pod.metadata.labels = Some(serde_json::from_value(forged_labels.clone()).expect("labels"));
    pod.metadata.annotations =
        Some(serde_json::from_value(forged_annotations.clone()).expect("annotations"));
    create(&tenant.cluster.api::<Pod>("default"), &pod).await;

    let check = |copy: &dyn Fn() -> (
        BTreeMap<String, String>,
        BTreeMap<String, String>,
        kube::api::ObjectMeta,
    ),
                 name: &str| {
        let (labels, annotations, meta) = copy();
        assert_eq!(labels.get(MANAGED_BY_LABEL).map(String::as_str), Some("vc"));
        assert_eq!(
            labels.get(NAMESPACE_LABEL).map(String::as_str),
            Some("default")
        );
        assert_eq!(
            annotations.get(OBJECT_NAME_ANNOTATION).map(String::as_str),
            Some(name)
        );
        assert_eq!(
            annotations
                .get(OBJECT_NAMESPACE_ANNOTATION)
                .map(String::as_str),
            Some("default")
        );
        assert_eq!(
            annotations
                .get(OBJECT_HOST_NAMESPACE_ANNOTATION)
                .map(String::as_str),
            Some(host_ns)
        );
        assert_eq!(
            annotations
                .get(OBJECT_HOST_NAME_ANNOTATION)
                .map(String::as_str),
            meta.name.as_deref()
        );
        assert_eq!(
            translator.owner_of(&meta),
            Some(VirtualKey::namespaced("default", name))
        );
        // The tenant's values survive under hashed keys.
        for key in [
            MANAGED_BY_LABEL,
            NAMESPACE_LABEL,
            "vcluster.loft.sh/controlled-by",
        ] {
            let hashed = translator.host_label_key(key).expect("hashed key");
            assert_ne!(hashed.as_ref(), key);
            assert!(
                labels.contains_key(hashed.as_ref()),
                "{key} kept as {hashed}"
            );
        }
        assert_eq!(annotations.get("note").map(String::as_str), Some("hello"));
    };
    let cm_copy = eventually("the forger's host copy", || async {
        hcms.get_opt("forger-x-default-x-vc").await.ok().flatten()
    })
    .await;
    check(
        &|| {
            (
                cm_copy.labels().clone(),
                cm_copy.annotations().clone(),
                cm_copy.metadata.clone(),
            )
        },
        "forger",
    );
    assert_eq!(
        cm_copy.annotations().get(OBJECT_UID_ANNOTATION),
        virtual_forger.metadata.uid.as_ref()
    );
    let pod_copy = eventually("the forging pod's host copy", || async {
        host.api::<Pod>(host_ns)
            .get_opt("forger-x-default-x-vc")
            .await
            .ok()
            .flatten()
    })
    .await;
    check(
        &|| {
            (
                pod_copy.labels().clone(),
                pod_copy.annotations().clone(),
                pod_copy.metadata.clone(),
            )
        },
        "forger",
    );

    // Changing the forged keys later goes through the same translation.
    tenant
        .cluster
        .api::<ConfigMap>("default")
        .patch(
            "forger",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {
                "labels": {MANAGED_BY_LABEL: "third-vc", "app": "changed"},
                "annotations": {OBJECT_NAME_ANNOTATION: "other", OBJECT_HOST_NAMESPACE_ANNOTATION: "default"},
            }})),
        )
        .await
        .expect("patch the forger");
    let updated = eventually("the label change on the host", || async {
        let copy = hcms.get_opt("forger-x-default-x-vc").await.ok().flatten()?;
        (copy.labels().get("app").map(String::as_str) == Some("changed")).then_some(copy)
    })
    .await;
    check(
        &|| {
            (
                updated.labels().clone(),
                updated.annotations().clone(),
                updated.metadata.clone(),
            )
        },
        "forger",
    );
    let hashed = translator.host_label_key(MANAGED_BY_LABEL).expect("hashed");
    assert_eq!(
        updated.labels().get(hashed.as_ref()).map(String::as_str),
        Some("third-vc")
    );

    // A label key shaped like this cluster's own hashed keys is refused
    // outright: the object is not synced at all.
    let errors = tenant.errors("configmaps");
    let own_key = format!("vcluster.loft.sh/label-vc-x-{}", "0123456789");
    create(
        &tenant.cluster.api::<ConfigMap>("default"),
        &test_config_map("forged-key", "x", &[(own_key.as_str(), "v")]),
    )
    .await;
    refused(&tenant, "configmaps", errors, 1).await;
    assert!(hcms
        .get_opt("forged-key-x-default-x-vc")
        .await
        .expect("get")
        .is_none());

    let victim_now = hcms.get("victim-x-kube-system-x-vc").await.expect("victim");
    assert_eq!(
        victim_now.metadata.resource_version,
        victim.metadata.resource_version
    );
    assert_eq!(translator.owner_of(&victim_now.metadata), None);
    assert_eq!(managed_outside(&host, host_ns).await, Vec::<String>::new());
    tenant.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn owner_references_to_host_objects_are_never_copied(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-vc";
    host.create_namespace(host_ns).await;
    let hcms = host.api::<ConfigMap>(host_ns);
    let owner = create(&hcms, &test_config_map("owner", "host", &[])).await;
    let owner_uid = owner.metadata.uid.clone().expect("uid");
    // An administrator's dependent of `owner`, to see the host's garbage
    // collector act.
    let mut control = test_config_map("control", "host", &[]);
    control.metadata.owner_references = Some(vec![common::object(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid,
    }))]);
    create(&hcms, &control).await;

    // The virtual cluster does not collect garbage, so its objects keep
    // references to owners it does not have.
    let virtual_cluster = Cluster::start_configured(|c| {
        c.garbage_collector = None;
        c.extra_service_cidrs = vec![HOST_SERVICE_CIDR.into()];
    })
    .await;
    let tenant = Tenant::start_on(virtual_cluster, "vc", &host, host_ns, |c| {
        c.syncers.config_maps = Selection::All
    });
    let reference = json!([{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid,
        "controller": true, "blockOwnerDeletion": true,
    }]);
    let mut dependent = test_config_map("dependent", "tenant", &[]);
    dependent.metadata.owner_references =
        Some(serde_json::from_value(reference.clone()).expect("references"));
    create(&tenant.cluster.api::<ConfigMap>("default"), &dependent).await;
    let mut pod = test_pod("dependent", None, &[]);
    pod.metadata.owner_references =
        Some(serde_json::from_value(reference.clone()).expect("references"));
    create(&tenant.cluster.api::<Pod>("default"), &pod).await;

    let hpods = host.api::<Pod>(host_ns);
    let cm_copy = eventually("the dependent's copy", || async {
        hcms.get_opt("dependent-x-default-x-vc")
            .await
            .ok()
            .flatten()
    })
    .await;
    let pod_copy = eventually("the dependent pod's copy", || async {
        hpods
            .get_opt("dependent-x-default-x-vc")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(cm_copy.metadata.owner_references, None);
    assert_eq!(pod_copy.metadata.owner_references, None);

    // Later changes do not bring them either.
    tenant
        .cluster
        .api::<ConfigMap>("default")
        .patch(
            "dependent",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"changed": "yes"}, "ownerReferences": [{
                "apiVersion": "v1", "kind": "Namespace", "name": host_ns, "uid": "11111111-2222-3333-4444-555555555555",
            }]}})),
        )
        .await
        .expect("patch");
    let changed = eventually("the label change on the host", || async {
        let copy = hcms
            .get_opt("dependent-x-default-x-vc")
            .await
            .ok()
            .flatten()?;
        copy.labels().contains_key("changed").then_some(copy)
    })
    .await;
    assert_eq!(changed.metadata.owner_references, None);

    // Deleting the host owner collects the administrator's dependent, and
    // nothing of the tenant's.
    hcms.delete("owner", &DeleteParams::default())
        .await
        .expect("delete the owner");
    eventually(
        "the host collecting the administrator's dependent",
        || async { hcms.get_opt("control").await.ok()?.is_none().then_some(()) },
    )
    .await;
    assert!(hcms
        .get_opt("dependent-x-default-x-vc")
        .await
        .expect("get")
        .is_some());
    assert!(hpods
        .get_opt("dependent-x-default-x-vc")
        .await
        .expect("get")
        .is_some());
    tenant.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn a_tenants_service_never_selects_another_tenants_pods(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "shared";
    host.create_namespace(host_ns).await;
    let alpha = Tenant::start("alpha", &host, host_ns, |_| {}).await;
    let beta = Tenant::start("beta", &host, host_ns, |_| {}).await;
    let beta_release_key = beta
        .translator(host_ns)
        .host_label_key("release")
        .expect("key")
        .into_owned();

    // Beta's pods and service.
    let beta_pods = beta.cluster.api::<Pod>("default");
    create(
        &beta_pods,
        &test_pod(
            "web",
            None,
            &[("app", "web"), ("release", "v1"), ("tier", "front")],
        ),
    )
    .await;
    create(&beta_pods, &test_pod("db", None, &[("app", "db")])).await;
    let service = |name: &str, selector: serde_json::Value| -> Service {
        common::object(json!({
            "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80}]},
        }))
    };
    create(
        &beta.cluster.api::<Service>("default"),
        &service("web", json!({"app": "web"})),
    )
    .await;

    // Alpha's pods: an ordinary one, and one that imitates beta's markers.
    let alpha_pods = alpha.cluster.api::<Pod>("default");
    create(&alpha_pods, &test_pod("web", None, &[("app", "web")])).await;
    create(
        &alpha_pods,
        &test_pod(
            "impostor",
            None,
            &[
                (MANAGED_BY_LABEL, "beta"),
                (NAMESPACE_LABEL, "default"),
                ("app", "web"),
                ("tier", "front"),
            ],
        ),
    )
    .await;
    // Alpha's services, each trying to capture beta's pods.
    let attempts = [
        ("plain", json!({"app": "web"})),
        ("marker", json!({MANAGED_BY_LABEL: "beta", "app": "web"})),
        ("namespace", json!({NAMESPACE_LABEL: "default"})),
        ("hashed", json!({beta_release_key.as_str(): "v1"})),
        ("db", json!({"app": "db"})),
        ("tier", json!({"tier": "front"})),
        ("none", json!({})),
    ];
    let alpha_services = alpha.cluster.api::<Service>("default");
    for (name, selector) in &attempts {
        create(&alpha_services, &service(name, selector.clone())).await;
    }

    let hservices = host.api::<Service>(host_ns);
    let hpods = host.api::<Pod>(host_ns);
    let (host_services, host_pods) = eventually("every copy on the host", || async {
        let services = hservices.list(&ListParams::default()).await.ok()?.items;
        let pods = hpods.list(&ListParams::default()).await.ok()?.items;
        (services.len() == attempts.len() + 1 && pods.len() == 4).then_some((services, pods))
    })
    .await;
    let pods_of = |vc: &str| -> Vec<(String, BTreeMap<String, String>)> {
        host_pods
            .iter()
            .filter(|p| p.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(vc))
            .map(|p| (p.name_any(), p.labels().clone()))
            .collect()
    };
    let (alpha_host_pods, beta_host_pods) = (pods_of("alpha"), pods_of("beta"));
    assert_eq!((alpha_host_pods.len(), beta_host_pods.len()), (2, 2));
    let mut alpha_selected = Vec::new();
    for service in &host_services {
        let owner = service
            .labels()
            .get(MANAGED_BY_LABEL)
            .cloned()
            .unwrap_or_default();
        let selector = service
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        let (own, others) = if owner == "alpha" {
            (&alpha_host_pods, &beta_host_pods)
        } else {
            (&beta_host_pods, &alpha_host_pods)
        };
        for (pod, pod_labels) in others {
            assert!(
                !selector_matches(&selector, pod_labels),
                "{owner}'s service {} selects the other tenant's pod {pod}",
                service.name_any()
            );
        }
        if owner == "alpha" {
            for (pod, pod_labels) in own {
                if selector_matches(&selector, pod_labels) {
                    alpha_selected.push((service.name_any(), pod.clone()));
                }
            }
        } else {
            // Beta's own service still selects beta's web pod.
            assert!(own.iter().any(|(_, l)| selector_matches(&selector, l)));
        }
        if service
            .annotations()
            .get(OBJECT_NAME_ANNOTATION)
            .map(String::as_str)
            == Some("none")
        {
            assert!(
                selector.is_empty(),
                "an empty selector stays empty: {selector:?}"
            );
        }
    }
    // Alpha's services select alpha's own pods only: the impostor's forged
    // markers are ordinary labels under hashed keys, which alpha's own
    // selectors (translated the same way) match.
    alpha_selected.sort();
    let pair = |s: &str, p: &str| {
        (
            format!("{s}-x-default-x-alpha"),
            format!("{p}-x-default-x-alpha"),
        )
    };
    assert_eq!(
        alpha_selected,
        vec![
            pair("marker", "impostor"),
            pair("namespace", "impostor"),
            pair("plain", "impostor"),
            pair("plain", "web"),
            pair("tier", "impostor"),
        ]
    );
    assert_eq!(managed_outside(&host, host_ns).await, Vec::<String>::new());
    alpha.syncer.stop_within(Duration::from_secs(10)).await;
    beta.syncer.stop_within(Duration::from_secs(10)).await;
}

#[test]
fn the_translator_refuses_names_that_are_not_kubernetes_names() {
    let translator = SingleNamespaceTranslator::new("vc", "vcluster-vc").expect("translator");
    for (namespace, name) in [
        ("a.b", "x"),
        ("..", "x"),
        ("kube-system/..", "x"),
        ("", "x"),
        (&"n".repeat(64), "x"),
        ("ok", "a/b"),
        ("ok", "../x"),
        ("ok", ""),
        ("ok", "UPPER"),
        ("ok", &"a".repeat(254)),
    ] {
        assert!(
            translator
                .host_key(&VirtualKey::namespaced(namespace, name))
                .is_err(),
            "{namespace:?}/{name:?} was translated"
        );
    }
}

async fn namespace_names_cannot_escape_the_host_namespace(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-vc";
    host.create_namespace(host_ns).await;
    host.create_namespace("victim").await;
    let tenant = Tenant::start("vc", &host, host_ns, |c| {
        c.syncers.config_maps = Selection::All
    })
    .await;

    // Names that are not DNS labels never become namespaces, and nothing can
    // be created in them.
    let namespaces: Api<Namespace> = Api::all(tenant.cluster.client());
    for bad in ["a.b", "victim.vcluster-vc", "UPPER", &"n".repeat(64), "-x-"] {
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(bad.to_owned());
        assert!(
            namespaces
                .create(&PostParams::default(), &namespace)
                .await
                .is_err(),
            "namespace {bad:?} was accepted"
        );
        let in_bad = tenant.cluster.api::<ConfigMap>(bad);
        assert!(in_bad
            .create(&PostParams::default(), &test_config_map("x", "y", &[]))
            .await
            .is_err());
    }

    // Valid names that look like host namespaces, or are as long as can be.
    let long_ns = "n".repeat(63);
    let tricky = [
        "victim",
        host_ns,
        "kube-system",
        "default",
        long_ns.as_str(),
    ];
    let long_name = format!("{}.{}", "a".repeat(120), "b".repeat(120));
    for ns in tricky {
        tenant.namespace(ns).await;
        let cms = tenant.cluster.api::<ConfigMap>(ns);
        create(&cms, &test_config_map("cfg", ns, &[])).await;
        create(&cms, &test_config_map(&long_name, ns, &[])).await;
        create(
            &tenant.cluster.api::<Pod>(ns),
            &test_pod(&"p".repeat(63), Some("cfg"), &[]),
        )
        .await;
    }
    let translator = tenant.translator(host_ns);
    let hcms = host.api::<ConfigMap>(host_ns);
    let hpods = host.api::<Pod>(host_ns);
    let (copies, pods) = eventually("every copy in the host namespace", || async {
        let managed = ListParams::default().labels(MANAGED_BY_LABEL);
        let cms = hcms.list(&managed).await.ok()?.items;
        let pods = hpods.list(&managed).await.ok()?.items;
        (cms.len() == 2 * tricky.len() && pods.len() == tricky.len()).then_some((cms, pods))
    })
    .await;
    for meta in copies
        .iter()
        .map(|c| &c.metadata)
        .chain(pods.iter().map(|p| &p.metadata))
    {
        let name = meta.name.clone().unwrap_or_default();
        assert!(name.len() <= 63, "{name}");
        assert_eq!(meta.namespace.as_deref(), Some(host_ns));
        let owner = translator
            .owner_of(meta)
            .expect("a copy of a virtual object");
        assert!(tricky.contains(&owner.namespace().unwrap_or_default()));
    }
    assert_eq!(managed_outside(&host, host_ns).await, Vec::<String>::new());
    // Nothing but what the host itself keeps there (a real host publishes
    // its CA bundle in every namespace).
    let in_victim: Vec<String> = host
        .api::<ConfigMap>("victim")
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|cm| cm.name_any())
        .filter(|name| name != "kube-root-ca.crt")
        .collect();
    assert_eq!(in_victim, Vec::<String>::new());
    tenant.syncer.stop_within(Duration::from_secs(10)).await;
}

fn stealing_pod(name: &str, secret: &str, config_map: Option<&str>) -> Pod {
    let mut volumes = vec![json!({"name": "s", "secret": {"secretName": secret}})];
    if let Some(cm) = config_map {
        volumes.push(json!({"name": "c", "configMap": {"name": cm}}));
    }
    common::object(json!({
        "metadata": {"name": name},
        "spec": {
            "volumes": volumes,
            "containers": [{
                "name": "app", "image": "busybox",
                "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": secret, "key": "pw"}}}],
            }],
        },
    }))
}

async fn a_pod_cannot_read_another_tenants_configmap_or_secret(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "shared";
    host.create_namespace(host_ns).await;
    // Legitimate names whose host names overlap: beta's `default/creds`
    // is `creds-x-default-x-b-x-a`, which alpha (`a`) reaches as
    // `b/creds-x-default`.
    let alpha = Tenant::start("a", &host, host_ns, |c| {
        c.syncers.secrets = Selection::All;
        c.syncers.config_maps = Selection::All;
    })
    .await;
    let beta = Tenant::start("b-x-a", &host, host_ns, |c| {
        c.syncers.secrets = Selection::All
    })
    .await;
    let hsecrets = host.api::<Secret>(host_ns);
    let hpods = host.api::<Pod>(host_ns);
    let secret = |name: &str, value: &str| -> Secret {
        common::object(json!({"metadata": {"name": name}, "stringData": {"pw": value}}))
    };
    create(
        &beta.cluster.api::<Secret>("default"),
        &secret("creds", "beta's"),
    )
    .await;
    let beta_copy = eventually("beta's secret on the host", || async {
        hsecrets
            .get_opt("creds-x-default-x-b-x-a")
            .await
            .ok()
            .flatten()
    })
    .await;

    // 1. Across tenants, through the overlap.
    alpha.namespace("b").await;
    create(
        &alpha.cluster.api::<Pod>("b"),
        &stealing_pod("thief", "creds-x-default", None),
    )
    .await;
    // 2. Within the tenant, across namespaces: alpha's `c/s-x-b` is
    //    `s-x-b-x-c-x-a`, which `b-x-c/s` translates to as well.
    alpha.namespace("c").await;
    alpha.namespace("b-x-c").await;
    create(&alpha.cluster.api::<Secret>("c"), &secret("s-x-b", "c's")).await;
    eventually("alpha's c/s-x-b on the host", || async {
        hsecrets.get_opt("s-x-b-x-c-x-a").await.ok().flatten()
    })
    .await;
    create(
        &alpha.cluster.api::<Pod>("b-x-c"),
        &stealing_pod("peek", "s", None),
    )
    .await;
    // 3. By the other tenant's host name, as is: translated again, it
    //    names nothing of beta's.
    create(
        &alpha.cluster.api::<Pod>("default"),
        &stealing_pod(
            "direct",
            "creds-x-default-x-b-x-a",
            Some("creds-x-default-x-b-x-a"),
        ),
    )
    .await;

    for (namespace, name, what) in [("b", "thief", "secret"), ("b-x-c", "peek", "secret")] {
        let pods = alpha.cluster.api::<Pod>(namespace);
        let condition = eventually(&format!("{name} reported as blocked"), || async {
            let pod = pods.get(name).await.ok()?;
            pod_condition(&pod, "PodScheduled")
                .filter(|c| c.reason.as_deref() == Some(SYNC_BLOCKED))
        })
        .await;
        assert_eq!(condition.status, "False");
        let message = condition.message.unwrap_or_default();
        assert!(
            message.contains(what) && message.contains("not its copy"),
            "{message}"
        );
        let host_name = safe_concat_name(&[name, "x", namespace, "x", "a"]);
        assert!(
            hpods.get_opt(&host_name).await.expect("get").is_none(),
            "{name} runs on the host"
        );
    }
    // The direct one waits for its own (translated) objects; once alpha
    // has them, it runs with alpha's copies only.
    assert!(hpods
        .get_opt("direct-x-default-x-a")
        .await
        .expect("get")
        .is_none());
    create(
        &alpha.cluster.api::<Secret>("default"),
        &secret("creds-x-default-x-b-x-a", "alpha's own"),
    )
    .await;
    create(
        &alpha.cluster.api::<ConfigMap>("default"),
        &test_config_map("creds-x-default-x-b-x-a", "alpha's own", &[]),
    )
    .await;
    let direct = eventually("the direct pod with alpha's own objects", || async {
        hpods.get_opt("direct-x-default-x-a").await.ok().flatten()
    })
    .await;
    let own = "creds-x-default-x-b-x-a-x-default-x-a";
    let volumes = direct
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    assert_eq!(
        volumes[0]
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref()),
        Some(own)
    );
    assert_eq!(
        volumes[1].config_map.as_ref().map(|c| c.name.as_str()),
        Some(own)
    );

    let beta_now = hsecrets
        .get("creds-x-default-x-b-x-a")
        .await
        .expect("beta's secret");
    assert_eq!(
        beta_now.metadata.resource_version,
        beta_copy.metadata.resource_version
    );
    assert_eq!(managed_outside(&host, host_ns).await, Vec::<String>::new());
    alpha.syncer.stop_within(Duration::from_secs(10)).await;
    beta.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn pods_the_policy_forbids_are_not_synced_and_say_why(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    let host_ns = "vcluster-vc";
    host.create_namespace(host_ns).await;
    let baseline = Tenant::start("vc", &host, host_ns, |c| {
        c.pod_policy.allow.host_path_prefixes = vec!["/var/log".into()]
    })
    .await;
    let pods = baseline.cluster.api::<Pod>("default");
    let hostile: [(&str, serde_json::Value, &str); 4] = [
        ("host-net", json!({"hostNetwork": true}), "spec.hostNetwork"),
        ("host-pid", json!({"hostPID": true}), "spec.hostPID"),
        (
            "root-fs",
            json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            "hostPath",
        ),
        (
            "escape",
            json!({"volumes": [{"name": "up", "hostPath": {"path": "/var/log/../../etc"}}]}),
            "hostPath",
        ),
    ];
    for (name, extra, _) in &hostile {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        create(
            &pods,
            &common::object(json!({"metadata": {"name": name}, "spec": spec})),
        )
        .await;
    }
    let privileged: Pod = common::object(json!({
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}]},
    }));
    create(&pods, &privileged).await;
    create(&pods, &test_pod("fine", None, &[])).await;
    let logs: Pod = common::object(json!({
        "metadata": {"name": "logs"},
        "spec": {"volumes": [{"name": "l", "hostPath": {"path": "/var/log/pods"}}], "containers": [{"name": "app", "image": "nginx"}]},
    }));
    create(&pods, &logs).await;

    let hpods = host.api::<Pod>(host_ns);
    for name in ["fine", "logs"] {
        eventually(&format!("{name} on the host"), || async {
            hpods
                .get_opt(&format!("{name}-x-default-x-vc"))
                .await
                .ok()
                .flatten()
        })
        .await;
    }
    let events = baseline.cluster.api::<Event>("default");
    let blocked = hostile
        .iter()
        .map(|(name, _, field)| (*name, *field))
        .chain([("privileged", "securityContext.privileged")]);
    for (name, field) in blocked {
        let condition = eventually(&format!("{name} reported as blocked"), || async {
            let pod = pods.get(name).await.ok()?;
            pod_condition(&pod, "PodScheduled")
                .filter(|c| c.reason.as_deref() == Some(SYNC_BLOCKED))
        })
        .await;
        let message = condition.message.unwrap_or_default();
        assert!(
            message.contains(field) && message.contains("baseline"),
            "{name}: {message}"
        );
        let event = eventually(&format!("an event about {name}"), || async {
            let list = events.list(&ListParams::default()).await.ok()?.items;
            list.into_iter().find(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(SYNC_BLOCKED)
            })
        })
        .await;
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert!(hpods
            .get_opt(&format!("{name}-x-default-x-vc"))
            .await
            .expect("get")
            .is_none());
    }
    let privileged_message =
        pod_condition(&pods.get("privileged").await.expect("pod"), "PodScheduled")
            .and_then(|c| c.message)
            .unwrap_or_default();
    assert!(
        privileged_message.contains("SYS_ADMIN"),
        "{privileged_message}"
    );
    // One event per pod, not one per reconcile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let count = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("privileged"))
        .count();
    assert_eq!(count, 1);
    baseline.syncer.stop_within(Duration::from_secs(10)).await;

    // Restricted: a default pod is refused, a hardened one runs.
    let restricted_ns = "vcluster-strict";
    host.create_namespace(restricted_ns).await;
    let strict = Tenant::start("strict", &host, restricted_ns, |c| {
        c.pod_policy.level = PodSecurityLevel::Restricted
    })
    .await;
    let pods = strict.cluster.api::<Pod>("default");
    create(&pods, &test_pod("plain", None, &[])).await;
    let hardened: Pod = common::object(json!({
        "metadata": {"name": "hardened"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "nginx", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}
            }}],
        },
    }));
    create(&pods, &hardened).await;
    let hpods = host.api::<Pod>(restricted_ns);
    eventually("the hardened pod on the host", || async {
        hpods
            .get_opt("hardened-x-default-x-strict")
            .await
            .ok()
            .flatten()
    })
    .await;
    let condition = eventually("the plain pod reported as blocked", || async {
        let pod = pods.get("plain").await.ok()?;
        pod_condition(&pod, "PodScheduled").filter(|c| c.reason.as_deref() == Some(SYNC_BLOCKED))
    })
    .await;
    let message = condition.message.unwrap_or_default();
    for expected in [
        "restricted",
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "seccomp",
        "ALL",
    ] {
        assert!(message.contains(expected), "{expected} missing: {message}");
    }
    assert!(hpods
        .get_opt("plain-x-default-x-strict")
        .await
        .expect("get")
        .is_none());
    strict.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn resource_limits_are_kept_in_the_host_namespace_and_removed_when_disabled(kind: HostKind) {
    let host = Host::start_isolated(kind).await;
    host.serve_quota_kinds();
    let host_ns = "vcluster-lim";
    host.create_namespace(host_ns).await;
    let quotas = host.api::<ResourceQuota>(host_ns);
    let ranges = host.api::<LimitRange>(host_ns);
    // An administrator's LimitRange already holds the name the syncer would use.
    let range_name = HostLimitsSyncer::object_name("lim", "limits");
    let foreign: LimitRange = common::object(json!({
        "metadata": {"name": range_name},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "8"}}]},
    }));
    let foreign = create(&ranges, &foreign).await;

    let quota_spec: ResourceQuotaSpec = common::object(
        json!({"hard": {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"}}),
    );
    let range_spec: LimitRangeSpec = common::object(json!({
        "limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]
    }));
    let limits = HostLimits {
        quota: Some(quota_spec.clone()),
        limit_range: Some(range_spec.clone()),
    };
    let tenant = Tenant::start("lim", &host, host_ns, |c| c.host_limits = limits.clone()).await;
    let quota_name = HostLimitsSyncer::object_name("lim", "quota");
    let quota = eventually("the quota on the host", || async {
        quotas.get_opt(&quota_name).await.ok().flatten()
    })
    .await;
    assert_eq!(quota.spec.as_ref(), Some(&quota_spec));
    assert_eq!(
        quota.labels().get(MANAGED_BY_LABEL).map(String::as_str),
        Some("lim")
    );
    assert_eq!(
        quota.labels().get(HOST_LIMITS_LABEL).map(String::as_str),
        Some("true")
    );
    // The foreign LimitRange is refused, not overwritten.
    refused(&tenant, "hostlimits", 0, 1).await;
    let range_now = ranges.get(&range_name).await.expect("foreign range");
    assert_eq!(
        range_now.metadata.resource_version,
        foreign.metadata.resource_version
    );

    // Changed or deleted behind the syncer's back: put back.
    quotas
        .patch(
            &quota_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hard": {"pods": "1000"}}})),
        )
        .await
        .expect("tamper");
    eventually("the quota restored", || async {
        let quota = quotas.get_opt(&quota_name).await.ok().flatten()?;
        (quota.spec.as_ref() == Some(&quota_spec)).then_some(())
    })
    .await;
    quotas
        .delete(&quota_name, &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the quota re-created", || async {
        quotas.get_opt(&quota_name).await.ok().flatten()
    })
    .await;
    tenant.syncer.stop_within(Duration::from_secs(10)).await;

    // Once the administrator's range is gone, the syncer's takes its place.
    ranges
        .delete(&range_name, &DeleteParams::default())
        .await
        .expect("delete the foreign range");
    let tenant = Tenant::start_on(tenant.cluster, "lim", &host, host_ns, |c| {
        c.host_limits = limits.clone()
    });
    let range = eventually("the syncer's LimitRange", || async {
        ranges.get_opt(&range_name).await.ok().flatten()
    })
    .await;
    assert_eq!(range.spec.as_ref(), Some(&range_spec));
    tenant.syncer.stop_within(Duration::from_secs(10)).await;

    // Disabled: both removed; an unmarked quota elsewhere in the namespace stays.
    let unrelated = create(
        &quotas,
        &common::object(
            json!({"metadata": {"name": "admin-quota"}, "spec": {"hard": {"pods": "100"}}}),
        ),
    )
    .await;
    let tenant = Tenant::start_on(tenant.cluster, "lim", &host, host_ns, |_| {});
    eventually("the limits removed", || async {
        let quota = quotas.get_opt(&quota_name).await.ok()?;
        let range = ranges.get_opt(&range_name).await.ok()?;
        (quota.is_none() && range.is_none()).then_some(())
    })
    .await;
    let still = quotas
        .get("admin-quota")
        .await
        .expect("admin's quota stays");
    assert_eq!(still.metadata.uid, unrelated.metadata.uid);
    tenant.syncer.stop_within(Duration::from_secs(10)).await;
}

async fn slices_and_ingresses_cannot_attach_to_another_tenants_service(kind: HostKind) {
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use k8s_openapi::api::networking::v1::Ingress;

    let host = Host::start_isolated(kind).await;
    let host_ns = "shared";
    host.create_namespace(host_ns).await;
    // As above: beta's `default/svc` is `svc-x-default-x-b-x-a` on the
    // host, which alpha reaches as `b/svc-x-default`.
    let alpha = Tenant::start("a", &host, host_ns, |c| {
        c.syncers.ingresses = true;
        c.syncers.secrets = Selection::All;
    })
    .await;
    let beta = Tenant::start("b-x-a", &host, host_ns, |c| {
        c.syncers.secrets = Selection::All
    })
    .await;
    let service = |name: &str| -> Service {
        common::object(json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}))
    };
    create(&beta.cluster.api::<Service>("default"), &service("svc")).await;
    create(
        &beta.cluster.api::<Secret>("default"),
        &common::object(
            json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": "beta's certificate", "tls.key": "beta's key"}}),
        ),
    )
    .await;
    let hservices = host.api::<Service>(host_ns);
    let hsecrets = host.api::<Secret>(host_ns);
    let beta_service = eventually("beta's service on the host", || async {
        hservices
            .get_opt("svc-x-default-x-b-x-a")
            .await
            .ok()
            .flatten()
    })
    .await;
    eventually("beta's secret on the host", || async {
        hsecrets
            .get_opt("tls-x-default-x-b-x-a")
            .await
            .ok()
            .flatten()
    })
    .await;

    alpha.namespace("b").await;
    let slice = |name: &str, service: &str| -> EndpointSlice {
        common::object(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.66.0.1"]}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        }))
    };
    let ingress = |name: &str, service: &str, secret: &str| -> Ingress {
        common::object(json!({
            "metadata": {"name": name},
            "spec": {
                "tls": [{"hosts": ["beta.example.com"], "secretName": secret}],
                "rules": [{"host": "beta.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}],
            },
        }))
    };
    let slice_errors = alpha.errors("endpointslices");
    let ingress_errors = alpha.errors("ingresses");
    create(
        &alpha.cluster.api::<EndpointSlice>("b"),
        &slice("hijack", "svc-x-default"),
    )
    .await;
    create(
        &alpha.cluster.api::<Ingress>("b"),
        &ingress("expose", "svc-x-default", "own-tls"),
    )
    .await;
    create(
        &alpha.cluster.api::<Ingress>("b"),
        &ingress("steal-cert", "own", "tls-x-default"),
    )
    .await;
    refused(&alpha, "endpointslices", slice_errors, 1).await;
    refused(&alpha, "ingresses", ingress_errors, 2).await;
    let hslices = host.api::<EndpointSlice>(host_ns);
    let hingresses = host.api::<Ingress>(host_ns);
    let attached = hslices
        .list(&ListParams::default().labels("kubernetes.io/service-name=svc-x-default-x-b-x-a"))
        .await
        .expect("list slices");
    assert!(
        attached.items.is_empty(),
        "alpha's endpoints joined beta's service"
    );
    for name in ["hijack"] {
        assert!(hslices
            .get_opt(&format!("{name}-x-b-x-a"))
            .await
            .expect("get")
            .is_none());
    }
    for name in ["expose", "steal-cert"] {
        assert!(hingresses
            .get_opt(&format!("{name}-x-b-x-a"))
            .await
            .expect("get")
            .is_none());
    }

    // Alpha's own service and slice: synced as usual.
    create(&alpha.cluster.api::<Service>("b"), &service("own")).await;
    create(
        &alpha.cluster.api::<EndpointSlice>("b"),
        &slice("mine", "own"),
    )
    .await;
    let mine = eventually("alpha's own slice on the host", || async {
        hslices.get_opt("mine-x-b-x-a").await.ok().flatten()
    })
    .await;
    assert_eq!(
        mine.labels()
            .get("kubernetes.io/service-name")
            .map(String::as_str),
        Some("own-x-b-x-a")
    );
    // Once alpha's service goes, so does the slice that pointed at it.
    // (First the syncer re-creates the virtual service with the host's
    // cluster IP; deleting it in between would find nothing.)
    eventually("alpha's service showing the host's cluster IP", || async {
        let host_ip = hservices
            .get_opt("own-x-b-x-a")
            .await
            .ok()??
            .spec?
            .cluster_ip?;
        let virtual_ip = alpha
            .cluster
            .api::<Service>("b")
            .get_opt("own")
            .await
            .ok()??
            .spec?
            .cluster_ip?;
        (host_ip == virtual_ip).then_some(())
    })
    .await;
    alpha
        .cluster
        .api::<Service>("b")
        .delete("own", &DeleteParams::default())
        .await
        .expect("delete alpha's service");
    eventually_gone("the orphaned slice removed", &hslices, "mine-x-b-x-a").await;

    // Beta's service is still beta's (beta's own syncer may have updated it).
    let beta_now = hservices
        .get("svc-x-default-x-b-x-a")
        .await
        .expect("beta's service");
    assert_eq!(beta_now.metadata.uid, beta_service.metadata.uid);
    assert_eq!(
        beta.translator(host_ns).owner_of(&beta_now.metadata),
        Some(VirtualKey::namespaced("default", "svc"))
    );
    assert_eq!(managed_outside(&host, host_ns).await, Vec::<String>::new());
    alpha.syncer.stop_within(Duration::from_secs(10)).await;
    beta.syncer.stop_within(Duration::from_secs(10)).await;
}
