//! Metadata a tenant forges: labels and annotations imitating the
//! syncer's markers, owner references to host objects.

use super::*;

on_both_hosts!(
    labels_and_annotations_imitating_the_markers_are_not_honoured,
    owner_references_to_host_objects_are_never_copied,
);

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
