//! ResourceQuotas with the real kubectl, and the quota admission plugin:
//! creates are charged against the namespace's quotas (their
//! `status.used` rises at once) and refused, with upstream's messages,
//! when they would exceed one. With no controller here, the test writes
//! the status a quota controller would have written first.

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::kubectl::Table;

fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: q}}\nspec:\n  containers:\n  - name: app\n    image: nginx\n    resources: {resources}\n"
    )
}

/// Writes a quota's status as the resource-quota controller does: its
/// hard limits and nothing used.
async fn counted(quotas: &Api<ResourceQuota>, name: &str) {
    let mut quota = quotas.get(name).await.expect("quota");
    let hard = quota
        .spec
        .as_ref()
        .and_then(|s| s.hard.clone())
        .unwrap_or_default();
    let used = hard
        .keys()
        .map(|k| {
            (
                k.clone(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("0".into()),
            )
        })
        .collect();
    quota.status = Some(k8s_openapi::api::core::v1::ResourceQuotaStatus {
        hard: Some(hard),
        used: Some(used),
    });
    quotas
        .replace_status(name, &PostParams::default(), &quota)
        .await
        .expect("write the status");
}

async fn used(cluster: &Cluster, name: &str) -> Value {
    let quota: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "quota", name, "-n", "q", "-o", "json"])
            .await,
    )
    .expect("json");
    quota["status"]["used"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_charge_and_refuse_creates() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("q").await;
    let created = cluster
        .kubectl_ok(&[
            "create",
            "quota",
            "compute",
            "-n",
            "q",
            "--hard=pods=2,requests.cpu=1,limits.memory=1Gi",
        ])
        .await;
    assert_eq!(created.trim(), "resourcequota/compute created");
    let created = cluster
        .kubectl_ok(&[
            "create",
            "quota",
            "objects",
            "-n",
            "q",
            "--hard=count/configmaps=1",
        ])
        .await;
    assert_eq!(created.trim(), "resourcequota/objects created");
    let quotas: Api<ResourceQuota> = Api::namespaced(cluster.client(), "q");
    counted(&quotas, "compute").await;
    counted(&quotas, "objects").await;

    // Every container must say what the quota limits.
    let file = cluster.write_file("bare.yaml", &pod("bare", "{}"));
    let refused = cluster
        .kubectl_err(&["create", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        refused.contains("Error from server (Forbidden)")
            && refused.contains("pods \"bare\" is forbidden: failed quota: compute: must specify limits.memory for: app; requests.cpu for: app"),
        "{refused}"
    );

    // An admitted pod is charged at once.
    let sized = "{requests: {cpu: 600m}, limits: {memory: 512Mi}}";
    let file = cluster.write_file("one.yaml", &pod("one", sized));
    cluster
        .kubectl_ok(&["create", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert_eq!(
        used(&cluster, "compute").await,
        json!({"limits.memory": "512Mi", "pods": "1", "requests.cpu": "600m"})
    );
    let table = Table::parse(&cluster.kubectl_ok(&["get", "quota", "-n", "q"]).await);
    assert_eq!(table.header, ["NAME", "REQUEST", "LIMIT", "AGE"]);
    let row = table.row("compute");
    assert_eq!(
        table.cell(row, "REQUEST"),
        "pods: 1/2, requests.cpu: 600m/1"
    );
    assert_eq!(table.cell(row, "LIMIT"), "limits.memory: 512Mi/1Gi");
    let described = cluster
        .kubectl_ok(&["describe", "quota", "compute", "-n", "q"])
        .await;
    assert!(
        described
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["requests.cpu", "600m", "1"]),
        "{described}"
    );

    // A dry run is checked but charges nothing.
    let file = cluster.write_file(
        "dry.yaml",
        &pod("dry", "{requests: {cpu: 100m}, limits: {memory: 1Mi}}"),
    );
    cluster
        .kubectl_ok(&[
            "create",
            "--dry-run=server",
            "-f",
            file.to_str().unwrap_or_default(),
        ])
        .await;
    assert_eq!(used(&cluster, "compute").await["pods"], "1");

    // What would exceed the quota is refused, naming what exceeds it.
    let file = cluster.write_file("two.yaml", &pod("two", sized));
    let refused = cluster
        .kubectl_err(&["create", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        refused.contains("pods \"two\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"),
        "{refused}"
    );

    // count/<resource>: any kind can be counted.
    cluster
        .kubectl_ok(&[
            "create",
            "configmap",
            "first",
            "-n",
            "q",
            "--from-literal=k=v",
        ])
        .await;
    let refused = cluster
        .kubectl_err(&[
            "create",
            "configmap",
            "second",
            "-n",
            "q",
            "--from-literal=k=v",
        ])
        .await;
    assert!(
        refused.contains("configmaps \"second\" is forbidden: exceeded quota: objects, requested: count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1"),
        "{refused}"
    );

    // Invalid quotas are refused by validation.
    let refused = cluster
        .kubectl_err(&["create", "quota", "bad", "-n", "q", "--hard=pods=-1"])
        .await;
    assert!(
        refused.contains("ResourceQuota \"bad\" is invalid")
            && refused.contains(
                "spec.hard[pods]: Invalid value: \"-1\": must be greater than or equal to 0"
            ),
        "{refused}"
    );
    // Services: node ports are counted per port.
    cluster
        .kubectl_ok(&[
            "create",
            "quota",
            "ports",
            "-n",
            "q",
            "--hard=services.nodeports=1",
        ])
        .await;
    counted(&quotas, "ports").await;
    let refused = cluster
        .kubectl_err(&[
            "create",
            "service",
            "nodeport",
            "web",
            "-n",
            "q",
            "--tcp=80:80",
            "--tcp=443:443",
        ])
        .await;
    assert!(
        refused.contains("services \"web\" is forbidden: exceeded quota: ports, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1"),
        "{refused}"
    );

    // A quota whose use is not counted yet refuses what it limits.
    cluster.create_namespace("fresh").await;
    cluster
        .kubectl_ok(&["create", "quota", "pending", "-n", "fresh", "--hard=pods=5"])
        .await;
    let fresh: Api<ResourceQuota> = Api::namespaced(cluster.client(), "fresh");
    let mut pending = fresh.get("pending").await.expect("quota");
    pending.status = Some(k8s_openapi::api::core::v1::ResourceQuotaStatus {
        hard: pending.spec.as_ref().and_then(|s| s.hard.clone()),
        used: None,
    });
    fresh
        .replace_status("pending", &PostParams::default(), &pending)
        .await
        .expect("status without use");
    let file = cluster.write_file(
        "fresh.yaml",
        &pod("early", "{}").replace("namespace: q", "namespace: fresh"),
    );
    let refused = cluster
        .kubectl_err(&["create", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        refused.contains(
            "pods \"early\" is forbidden: status unknown for quota: pending, resources: pods"
        ),
        "{refused}"
    );

    let deleted = cluster
        .kubectl_ok(&["delete", "quota", "objects", "-n", "q"])
        .await;
    assert_eq!(deleted.trim(), "resourcequota \"objects\" deleted");
    cluster
        .kubectl_ok(&[
            "create",
            "configmap",
            "second",
            "-n",
            "q",
            "--from-literal=k=v",
        ])
        .await;
}
