//! ResourceQuotas: the API server charges creates against them and refuses
//! what exceeds them; the resource-quota controller keeps their status.

use super::*;
use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::time::Duration;

fn used(quota: &ResourceQuota, name: &str) -> Option<String> {
    Some(quota.status.as_ref()?.used.as_ref()?.get(name)?.0.clone())
}

fn pod(name: &str, cpu: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx",
            "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]},
    })
}

#[tokio::test]
async fn the_controller_keeps_quota_status_and_admission_refuses_what_exceeds_it() {
    let cluster = ControlPlane::start().await;
    let quotas: Api<ResourceQuota> = cluster.api();
    cluster
        .create(&quotas, json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": "default"},
            "spec": {"hard": {"pods": "2", "requests.cpu": "2", "count/configmaps": "10", "services": "5"}},
        }))
        .await;
    // The controller fills status.hard and counts what is already there:
    // the `kubernetes` service and the root CA config map.
    let counted = eventually_within(DEADLINE, "the quota's status counted", || async {
        let quota = quotas.get("compute").await.ok()?;
        let hard = quota.status.as_ref()?.hard.as_ref()?.len();
        (hard == 4
            && used(&quota, "pods").as_deref() == Some("0")
            && used(&quota, "services").as_deref() == Some("1")
            && used(&quota, "count/configmaps").as_deref() == Some("1"))
        .then_some(quota)
    })
    .await;
    assert_eq!(used(&counted, "requests.cpu").as_deref(), Some("0"));

    let pods_api: Api<Pod> = cluster.api();
    cluster.create(&pods_api, pod("first", "500m")).await;
    cluster.create(&pods_api, pod("second", "1")).await;
    eventually_within(DEADLINE, "two pods counted", || async {
        let quota = quotas.get("compute").await.ok()?;
        (used(&quota, "pods").as_deref() == Some("2")
            && used(&quota, "requests.cpu").as_deref() == Some("1500m"))
        .then_some(())
    })
    .await;

    let third: Pod = serde_json::from_value(pod("third", "100m")).expect("pod");
    let refused = pods_api
        .create(&PostParams::default(), &third)
        .await
        .expect_err("a third pod exceeds the quota");
    let kube::Error::Api(status) = refused else {
        panic!("not an API error: {refused}");
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "pods \"third\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
    );

    // A pod that goes is no longer counted: the controller lowers the use.
    pods_api
        .delete("first", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete a pod");
    eventually_within(DEADLINE, "the deleted pod uncounted", || async {
        let quota = quotas.get("compute").await.ok()?;
        (used(&quota, "pods").as_deref() == Some("1")
            && used(&quota, "requests.cpu").as_deref() == Some("1"))
        .then_some(())
    })
    .await;
    cluster.create(&pods_api, pod("third", "100m")).await;
}

/// A charge lands before its object is stored; a recount in between would
/// take it back and let the next create exceed the quota. So, as upstream,
/// the controller recounts when usage can drop (a delete) or the limits
/// change, not on the admission's charges nor on creates.
#[tokio::test]
async fn the_controller_leaves_charges_alone_and_recounts_on_deletes() {
    let cluster = ControlPlane::start().await;
    let quotas: Api<ResourceQuota> = cluster.api();
    let services: Api<k8s_openapi::api::core::v1::Service> = cluster.api();
    cluster
        .create(
            &quotas,
            json!({
                "apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": {"name": "ports", "namespace": "default"},
                "spec": {"hard": {"services.nodeports": "1", "services": "5"}},
            }),
        )
        .await;
    let counted = eventually_within(DEADLINE, "the quota counted", || async {
        let quota = quotas.get("ports").await.ok()?;
        (used(&quota, "services.nodeports").as_deref() == Some("0")).then_some(quota)
    })
    .await;

    // What the admission writes for a node port service about to be
    // stored, then a create of another service: neither recounts.
    let mut charged = counted.clone();
    if let Some(used) = charged.status.as_mut().and_then(|s| s.used.as_mut()) {
        used.insert("services.nodeports".into(), Quantity("1".into()));
    }
    quotas
        .replace_status("ports", &PostParams::default(), &charged)
        .await
        .expect("charge");
    cluster
        .create(
            &services,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "plain", "namespace": "default"},
                "spec": {"ports": [{"port": 80}]},
            }),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let quota = quotas.get("ports").await.expect("quota");
    assert_eq!(
        used(&quota, "services.nodeports").as_deref(),
        Some("1"),
        "a recount took the charge back"
    );

    // A delete may free usage: the quota is recounted.
    services
        .delete("plain", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_within(DEADLINE, "the quota recounted after a delete", || async {
        let quota = quotas.get("ports").await.ok()?;
        (used(&quota, "services.nodeports").as_deref() == Some("0")).then_some(())
    })
    .await;

    // A changed limit is recounted.
    let raise = json!({"spec": {"hard": {"services.nodeports": "2", "services": "5"}}});
    quotas
        .patch(
            "ports",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&raise),
        )
        .await
        .expect("raise the limit");
    eventually_within(DEADLINE, "the new limit in the status", || async {
        let quota = quotas.get("ports").await.ok()?;
        let hard = quota.status?.hard?;
        (hard.get("services.nodeports")?.0 == "2").then_some(())
    })
    .await;
}
