//! Names: crafted to collide, not Kubernetes names at all, or meant to
//! escape the host namespace.

use super::*;

on_both_hosts!(
    names_crafted_to_collide_never_touch_the_other_object,
    namespace_names_cannot_escape_the_host_namespace,
);

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
