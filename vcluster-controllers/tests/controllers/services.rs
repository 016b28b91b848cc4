//! Endpoints and EndpointSlices of services, from ready pods.

use super::*;

#[tokio::test]
async fn a_service_gets_endpoints_and_slices_of_its_ready_pods() {
    let cluster = ControlPlane::start().await;
    let deployments: Api<Deployment> = cluster.api();
    cluster
        .create(
            &deployments,
            deployment("web", 3, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&deployments, "web", 3).await;
    let services: Api<Service> = cluster.api();
    let svc: Service = cluster
        .create(&services, json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }))
        .await;
    let web_pods = pods(&cluster.client, "app=web").await;
    let mut ips: Vec<String> = web_pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    ips.sort();
    assert_eq!(ips.len(), 3);
    let endpoints: Api<Endpoints> = cluster.api();
    let ep = eventually_within(DEADLINE, "endpoints with the pods' IPs", || async {
        let ep = endpoints.get("web").await.ok()?;
        let subset = ep.subsets.as_ref()?.first()?.clone();
        let mut found: Vec<String> = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| a.ip.clone())
            .collect();
        found.sort();
        (found == ips).then_some(ep)
    })
    .await;
    let subset = &ep.subsets.as_ref().expect("subsets")[0];
    let port = &subset.ports.as_ref().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), 8080),
        "the named target port resolved"
    );
    let address = &subset.addresses.as_ref().expect("addresses")[0];
    let target = address.target_ref.as_ref().expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert!(web_pods.iter().any(|p| p.metadata.uid == target.uid));
    assert_eq!(
        ep.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("front")
    );

    let slices: Api<EndpointSlice> = cluster.api();
    let slice = eventually_within(
        DEADLINE,
        "an endpoint slice with 3 ready endpoints",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?;
            let slice = list.items.into_iter().next()?;
            let ready = slice
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            (ready == 3).then_some(slice)
        },
    )
    .await;
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("endpointslice.kubernetes.io/managed-by"))
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        (
            "Service",
            svc.metadata.uid.as_deref().unwrap_or(""),
            Some(true)
        )
    );

    // A pod that stops being ready moves to notReadyAddresses.
    let victim = web_pods[0].metadata.name.clone().expect("name");
    let unready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    cluster
        .api::<Pod>()
        .patch_status(&victim, &PatchParams::default(), &Patch::Merge(&unready))
        .await
        .expect("unready");
    eventually_within(DEADLINE, "the unready pod in notReadyAddresses", || async {
        let ep = endpoints.get("web").await.ok()?;
        let not_ready: Vec<String> = ep
            .subsets?
            .iter()
            .flat_map(|s| {
                s.not_ready_addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.target_ref.as_ref()?.name.clone())
            })
            .collect();
        (not_ready == [victim.clone()]).then_some(())
    })
    .await;
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    eventually_within(
        DEADLINE,
        "the endpoints deleted with the service",
        || async { endpoints.get_opt("web").await.ok()?.is_none().then_some(()) },
    )
    .await;
    eventually_within(DEADLINE, "the slices deleted with the service", || async {
        slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn pods_leaving_a_selector_leave_the_endpoints() {
    let cluster = ControlPlane::start().await;
    let services: Api<Service> = cluster.api();
    cluster
        .create(
            &services,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 9000}]},
            }),
        )
        .await;
    let pods_api: Api<Pod> = cluster.api();
    for name in ["api-a", "api-b"] {
        cluster
            .create(
                &pods_api,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": "default", "labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "c", "image": "api"}]},
                }),
            )
            .await;
    }
    let endpoints: Api<Endpoints> = cluster.api();
    let names = || async {
        let ep = endpoints.get("api").await.ok();
        let mut names: Vec<String> = ep
            .and_then(|e| e.subsets)
            .unwrap_or_default()
            .iter()
            .flat_map(|s| {
                s.addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.target_ref.as_ref()?.name.clone())
            })
            .collect();
        names.sort();
        names
    };
    eventually_within(DEADLINE, "both pods", || async {
        (names().await == ["api-a", "api-b"]).then_some(())
    })
    .await;
    pods_api
        .patch(
            "api-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
    eventually_within(DEADLINE, "only api-a", || async {
        (names().await == ["api-a"]).then_some(())
    })
    .await;
}
