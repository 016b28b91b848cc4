//! End to end: a virtual and a host API server on loopback with the syncer
//! between them. Every wait has a deadline.

mod common;

use common::{eventually, Environment, HostKind};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vcluster_testkit::eventually_gone;

fn pod(name: &str, config_map: Option<&str>) -> Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "nginx:1.27"}]});
    if let Some(cm) = config_map {
        spec["volumes"] = json!([{"name": "cfg", "configMap": {"name": cm}}]);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }))
    .expect("pod")
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"key": value},
    }))
    .expect("configmap")
}

on_both_hosts!(
    a_pod_and_its_configmap_reach_the_host_and_status_flows_back,
    a_host_pod_deleted_behind_the_syncers_back_deletes_the_virtual_pod,
);

async fn a_pod_and_its_configmap_reach_the_host_and_status_flows_back(host: HostKind) {
    let env = Environment::start(host, "vc1").await;
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let vcms = env.virtual_cluster.api::<ConfigMap>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    let hcms = env.host.api::<ConfigMap>(&env.host_namespace);

    // An unreferenced configmap stays virtual; the pod's one is synced.
    vcms.create(&PostParams::default(), &config_map("unused", "x"))
        .await
        .expect("create unused");
    vcms.create(&PostParams::default(), &config_map("settings", "v1"))
        .await
        .expect("create cm");
    vpods
        .create(&PostParams::default(), &pod("web", Some("settings")))
        .await
        .expect("create pod");

    let host_pod_name = env.host_name("default", "web");
    let host_pod = eventually("the host pod", || async {
        hpods.get_opt(&host_pod_name).await.ok().flatten()
    })
    .await;
    let labels = host_pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        labels
            .get("vcluster.loft.sh/managed-by")
            .map(String::as_str),
        Some("vc1")
    );
    let volume_cm = host_pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v[0].config_map.as_ref())
        .map(|c| c.name.clone());
    assert_eq!(volume_cm, Some(env.host_name("default", "settings")));
    let host_cm = hcms
        .get(&env.host_name("default", "settings"))
        .await
        .expect("the configmap was synced before the pod");
    assert_eq!(
        host_cm
            .data
            .unwrap_or_default()
            .get("key")
            .map(String::as_str),
        Some("v1")
    );
    assert!(
        hcms.get_opt(&env.host_name("default", "unused"))
            .await
            .expect("get")
            .is_none(),
        "unreferenced configmaps stay virtual"
    );

    // The host reports the pod running (the real host's simulated node
    // does; on ours the test plays the kubelet): the virtual pod follows.
    if !env.host.is_real() {
        let status =
            json!({"status": {"phase": "Running", "podIP": "10.244.0.7", "hostIP": "192.168.0.2"}});
        hpods
            .patch_status(
                &host_pod_name,
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await
            .expect("host status");
    }
    let host_ip = eventually("the host pod running", || async {
        let s = hpods.get(&host_pod_name).await.ok()?.status?;
        (s.phase.as_deref() == Some("Running")).then_some(s.pod_ip?)
    })
    .await;
    eventually("the virtual pod running", || async {
        let p = vpods.get("web").await.ok()?;
        let s = p.status?;
        (s.phase.as_deref() == Some("Running") && s.pod_ip.as_deref() == Some(host_ip.as_str()))
            .then_some(())
    })
    .await;

    // Virtual label and data changes follow to the host.
    let labels = json!({"metadata": {"labels": {"tier": "frontend"}}});
    vpods
        .patch("web", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .expect("label");
    eventually("the host pod relabelled", || async {
        let p = hpods.get(&host_pod_name).await.ok()?;
        (p.metadata.labels?.get("tier").map(String::as_str) == Some("frontend")).then_some(())
    })
    .await;
    let data = json!({"data": {"key": "v2"}});
    vcms.patch("settings", &PatchParams::default(), &Patch::Merge(&data))
        .await
        .expect("data");
    eventually("the host configmap updated", || async {
        let cm = hcms.get(&env.host_name("default", "settings")).await.ok()?;
        (cm.data?.get("key").map(String::as_str) == Some("v2")).then_some(())
    })
    .await;

    // Deleting the virtual pod deletes the host pod.
    vpods
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_gone("the host pod gone", &hpods, &host_pod_name).await;
}

async fn a_host_pod_deleted_behind_the_syncers_back_deletes_the_virtual_pod(host: HostKind) {
    let env = Environment::start(host, "vc2").await;
    let vpods = env.virtual_cluster.api::<Pod>("default");
    let hpods = env.host.api::<Pod>(&env.host_namespace);
    vpods
        .create(&PostParams::default(), &pod("job", None))
        .await
        .expect("create pod");
    let host_pod_name = env.host_name("default", "job");
    eventually("the host pod", || async {
        hpods.get_opt(&host_pod_name).await.ok().flatten()
    })
    .await;
    // The syncer created the host pod, so it knows it existed: a host-side
    // delete now is an eviction.
    hpods
        .delete(&host_pod_name, &DeleteParams::default())
        .await
        .expect("host delete");
    eventually_gone("the virtual pod gone", &vpods, "job").await;
}
