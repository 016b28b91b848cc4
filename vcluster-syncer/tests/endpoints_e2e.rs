//! End to end: endpoints and endpoint slices that tenants manage by hand
//! reach the host pointing at host pods; the ones Kubernetes manages do
//! not. Every wait has a deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_core::markers::OBJECT_NAME_ANNOTATION;
use vcluster_testkit::eventually_gone;

on_both_hosts!(
    endpoints_of_services_without_selector_are_synced,
    hand_made_endpoint_slices_name_the_host_service,
);

const SERVICE_NAME: &str = "kubernetes.io/service-name";

fn endpoints(name: &str, ip: &str) -> Endpoints {
    object(json!({
        "metadata": {"name": name},
        "subsets": [{
            "addresses": [{"ip": ip, "targetRef": {"kind": "Pod", "name": "db-0", "namespace": "default"}}],
            "ports": [{"port": 5432, "name": "pg"}],
        }],
    }))
}

/// Whether a host object is the syncer's copy of a virtual one (rather than,
/// say, what the host's own endpoints controller wrote).
fn is_synced_copy(object: &Endpoints) -> bool {
    object
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(OBJECT_NAME_ANNOTATION))
}

async fn endpoints_of_services_without_selector_are_synced(host: HostKind) {
    let env = Environment::start_with(host, "ep1", |_| {}).await;
    let vsvc = env.virtual_cluster.api::<Service>("default");
    let vep = env.virtual_cluster.api::<Endpoints>("default");
    let hep = env.host.api::<Endpoints>(&env.host_namespace);

    // A service with a selector: the host's controller owns its endpoints.
    vsvc.create(
        &PostParams::default(),
        &object(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})),
    )
    .await
    .expect("selector service");
    vep.create(&PostParams::default(), &endpoints("web", "10.0.0.9"))
        .await
        .expect("selector endpoints");
    // A service without: its endpoints are copied.
    vsvc.create(
        &PostParams::default(),
        &object(
            json!({"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432, "name": "pg"}]}}),
        ),
    )
    .await
    .expect("selectorless service");
    vep.create(&PostParams::default(), &endpoints("db", "10.0.0.1"))
        .await
        .expect("endpoints");

    let host_db = env.host_name("default", "db");
    let host = eventually("the host endpoints", || async {
        hep.get_opt(&host_db).await.ok().flatten()
    })
    .await;
    let subset = &host.subsets.expect("subsets")[0];
    let address = &subset.addresses.as_ref().expect("addresses")[0];
    assert_eq!(address.ip, "10.0.0.1");
    let target = address.target_ref.as_ref().expect("target");
    assert_eq!(
        target.name.as_deref(),
        Some(env.host_name("default", "db-0").as_str())
    );
    assert_eq!(
        target.namespace.as_deref(),
        Some(env.host_namespace.as_str())
    );
    assert_eq!(subset.ports.as_ref().expect("ports")[0].port, 5432);
    // (A real host's endpoints controller writes its own for the host
    // service; the syncer's copy is what must not be there.)
    let web = hep
        .get_opt(&env.host_name("default", "web"))
        .await
        .expect("get");
    assert!(
        !web.as_ref().is_some_and(is_synced_copy),
        "endpoints of a selector service stay virtual: {web:?}"
    );

    // Address changes follow.
    vep.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"subsets": [{"addresses": [{"ip": "10.0.0.2"}], "ports": [{"port": 5432, "name": "pg"}]}]})),
    )
    .await
    .expect("update");
    eventually("the host endpoints updated", || async {
        let e = hep.get(&host_db).await.ok()?;
        (e.subsets?.first()?.addresses.as_ref()?.first()?.ip == "10.0.0.2").then_some(())
    })
    .await;

    // The service gains a selector: the host's controller takes over.
    vsvc.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"selector": {"app": "db"}}})),
    )
    .await
    .expect("selector");
    eventually("the copied endpoints removed", || async {
        let host = hep.get_opt(&host_db).await.ok()?;
        (!host.as_ref().is_some_and(is_synced_copy)).then_some(())
    })
    .await;
}

fn slice(name: &str, labels: serde_json::Value, ip: &str) -> EndpointSlice {
    object(json!({
        "metadata": {"name": name, "labels": labels},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "targetRef": {"kind": "Pod", "name": "db-0", "namespace": "default"}}],
        "ports": [{"port": 5432, "name": "pg", "protocol": "TCP"}],
    }))
}

async fn hand_made_endpoint_slices_name_the_host_service(host: HostKind) {
    let env = Environment::start_with(host, "ep2", |_| {}).await;
    let vslices = env.virtual_cluster.api::<EndpointSlice>("default");
    let hslices = env.host.api::<EndpointSlice>(&env.host_namespace);
    // A slice is copied once the host service it names is the tenant's own.
    env.virtual_cluster
        .api::<Service>("default")
        .create(
            &PostParams::default(),
            &object(json!({"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}})),
        )
        .await
        .expect("the slices' service");
    vslices
        .create(
            &PostParams::default(),
            &slice(
                "db-auto",
                json!({SERVICE_NAME: "db", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}),
                "10.0.0.5",
            ),
        )
        .await
        .expect("controller slice");
    vslices
        .create(
            &PostParams::default(),
            &slice("db-manual", json!({SERVICE_NAME: "db"}), "10.0.0.1"),
        )
        .await
        .expect("manual slice");

    let host_name = env.host_name("default", "db-manual");
    let host = eventually("the host slice", || async {
        hslices.get_opt(&host_name).await.ok().flatten()
    })
    .await;
    let labels = host.metadata.labels.clone().expect("labels");
    assert_eq!(labels[SERVICE_NAME], env.host_name("default", "db"));
    let target = host.endpoints[0].target_ref.as_ref().expect("target");
    assert_eq!(
        target.name.as_deref(),
        Some(env.host_name("default", "db-0").as_str())
    );
    assert!(
        hslices
            .get_opt(&env.host_name("default", "db-auto"))
            .await
            .expect("get")
            .is_none(),
        "controller-managed slices stay virtual"
    );

    // Endpoint and label changes follow; the service name stays the
    // host's on the host and the virtual one in the virtual cluster.
    vslices
        .patch(
            "db-manual",
            &PatchParams::default(),
            &Patch::Merge(&json!({
                "metadata": {"labels": {"extra": "yes"}},
                "endpoints": [{"addresses": ["10.0.0.3"]}],
            })),
        )
        .await
        .expect("update");
    let host = eventually("the host slice updated", || async {
        let s = hslices.get(&host_name).await.ok()?;
        let labels = s.metadata.labels.as_ref()?;
        (s.endpoints.first()?.addresses == vec!["10.0.0.3".to_owned()]
            && labels.get("extra").map(String::as_str) == Some("yes"))
        .then_some(s)
    })
    .await;
    assert_eq!(
        host.metadata.labels.expect("labels")[SERVICE_NAME],
        env.host_name("default", "db")
    );
    let virt = vslices.get("db-manual").await.expect("virtual slice");
    assert_eq!(virt.metadata.labels.expect("labels")[SERVICE_NAME], "db");

    vslices
        .delete("db-manual", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_gone("the host slice gone", &hslices, &host_name).await;
}
