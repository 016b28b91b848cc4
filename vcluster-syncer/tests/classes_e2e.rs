//! End to end: the host's ingress and priority classes are shown to
//! tenants when asked for, and follow the host's changes; the virtual
//! cluster's own `system-*` priority classes stay its own. Every wait has a
//! deadline.

mod common;

use common::{eventually, object, Environment, HostKind};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_syncer::syncers::FROM_HOST_LABEL;
use vcluster_testkit::eventually_gone;

on_both_hosts!(host_ingress_and_priority_classes_are_shown_to_tenants);

async fn host_ingress_and_priority_classes_are_shown_to_tenants(host: HostKind) {
    let env = Environment::start_with(host, "classes1", |c| {
        c.syncers.ingress_classes = true;
        c.syncers.priority_classes = true;
    })
    .await;
    let host_ingress = env.host.cluster_api::<IngressClass>();
    let virtual_ingress = env.virtual_cluster.cluster_api::<IngressClass>();
    let host_priority = env.host.cluster_api::<PriorityClass>();
    let virtual_priority = env.virtual_cluster.cluster_api::<PriorityClass>();

    let nginx: IngressClass = object(json!({
        "metadata": {"name": "classes1-nginx",
                     "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }));
    host_ingress
        .create(&PostParams::default(), &nginx)
        .await
        .expect("host ingress class");
    let batch: PriorityClass = object(json!({
        "metadata": {"name": "classes1-batch"},
        "value": 1000,
        "description": "batch work",
    }));
    host_priority
        .create(&PostParams::default(), &batch)
        .await
        .expect("host priority class");

    let copy = eventually("the ingress class copy", || async {
        virtual_ingress
            .get_opt("classes1-nginx")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(
        copy.spec.and_then(|s| s.controller).as_deref(),
        Some("k8s.io/ingress-nginx")
    );
    assert_eq!(
        copy.metadata.labels.expect("labels")[FROM_HOST_LABEL],
        "true"
    );
    let copy = eventually("the priority class copy", || async {
        virtual_priority
            .get_opt("classes1-batch")
            .await
            .ok()
            .flatten()
    })
    .await;
    assert_eq!(copy.value, 1000);

    // A description changes in place.
    host_priority
        .patch(
            "classes1-batch",
            &PatchParams::default(),
            &Patch::Merge(&json!({"description": "night batch"})),
        )
        .await
        .expect("host change");
    eventually("the description follows", || async {
        let c = virtual_priority.get("classes1-batch").await.ok()?;
        (c.description.as_deref() == Some("night batch")).then_some(())
    })
    .await;

    // The virtual cluster's own system classes are not copies.
    let system = virtual_priority
        .get("system-cluster-critical")
        .await
        .expect("the virtual cluster's system class");
    assert!(
        !system
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(FROM_HOST_LABEL),
        "a system class was overwritten by the host's"
    );

    host_ingress
        .delete("classes1-nginx", &DeleteParams::default())
        .await
        .expect("host delete");
    host_priority
        .delete("classes1-batch", &DeleteParams::default())
        .await
        .expect("host delete");
    eventually_gone(
        "the ingress class copy gone",
        &virtual_ingress,
        "classes1-nginx",
    )
    .await;
    eventually_gone(
        "the priority class copy gone",
        &virtual_priority,
        "classes1-batch",
    )
    .await;
}
