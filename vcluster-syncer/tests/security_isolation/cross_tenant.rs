//! One tenant reaching for another's objects: services selecting its
//! pods, pods mounting its configmaps and secrets, slices and ingresses
//! attaching to its services.

use super::*;

on_both_hosts!(
    a_tenants_service_never_selects_another_tenants_pods,
    a_pod_cannot_read_another_tenants_configmap_or_secret,
    slices_and_ingresses_cannot_attach_to_another_tenants_service,
);

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
