//! LimitRanges with the real kubectl, and the LimitRanger admission plugin:
//! a new pod's containers get the namespace's defaults (noted in the
//! `kubernetes.io/limit-ranger` annotation), and pods outside its bounds
//! are refused with upstream's 403.

use serde_json::Value;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::kubectl::Table;

const RANGE: &str = r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: limits
  namespace: lr
spec:
  limits:
  - type: Container
    min: {cpu: 50m}
    max: {cpu: "1"}
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 100m}
"#;

fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: lr}}\nspec:\n  containers:\n  - name: app\n    image: nginx\n    resources: {resources}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ranges_default_and_bound_pods() {
    let cluster = Cluster::start().await;
    cluster.create_namespace("lr").await;
    let file = cluster.write_file("range.yaml", RANGE);
    let created = cluster
        .kubectl_ok(&["apply", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert_eq!(created.trim(), "limitrange/limits created");

    // Upstream's defaults: the default request follows the default limit.
    let stored: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "limits", "limits", "-n", "lr", "-o", "json"])
            .await,
    )
    .expect("json");
    assert_eq!(
        stored["spec"]["limits"][0]["defaultRequest"],
        serde_json::json!({"cpu": "100m", "memory": "256Mi"})
    );
    let table = Table::parse(
        &cluster
            .kubectl_ok(&["get", "limitranges", "-n", "lr"])
            .await,
    );
    assert_eq!(table.header, ["NAME", "CREATED AT"]);
    assert!(table.cell(table.row("limits"), "CREATED AT").ends_with('Z'));
    let described = cluster
        .kubectl_ok(&["describe", "limitrange", "limits", "-n", "lr"])
        .await;
    let memory = described
        .lines()
        .find(|l| l.starts_with("Container") && l.contains("memory"))
        .unwrap_or_else(|| panic!("no memory line in {described}"));
    assert_eq!(
        memory.split_whitespace().collect::<Vec<_>>(),
        ["Container", "memory", "-", "-", "256Mi", "256Mi", "-"]
    );

    // A pod without resources gets the defaults, and the annotation says so.
    let file = cluster.write_file("plain.yaml", &pod("plain", "{}"));
    cluster
        .kubectl_ok(&["apply", "-f", file.to_str().unwrap_or_default()])
        .await;
    let plain: Value = serde_json::from_str(
        &cluster
            .kubectl_ok(&["get", "pod", "plain", "-n", "lr", "-o", "json"])
            .await,
    )
    .expect("json");
    assert_eq!(
        plain["spec"]["containers"][0]["resources"],
        serde_json::json!({
            "limits": {"cpu": "500m", "memory": "256Mi"},
            "requests": {"cpu": "100m", "memory": "256Mi"},
        })
    );
    assert_eq!(
        plain["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"
    );

    // Outside the bounds: refused as upstream refuses it.
    let file = cluster.write_file("big.yaml", &pod("big", "{limits: {cpu: \"2\"}}"));
    let refused = cluster
        .kubectl_err(&["apply", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        refused.contains("Error from server (Forbidden)")
            && refused.contains(
                "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
            ),
        "{refused}"
    );
    let file = cluster.write_file(
        "small.yaml",
        &pod("small", "{requests: {cpu: 10m}, limits: {cpu: 10m}}"),
    );
    let refused = cluster
        .kubectl_err(&["create", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        refused.contains(
            "pods \"small\" is forbidden: minimum cpu usage per Container is 50m, but request is 10m"
        ),
        "{refused}"
    );

    // An invalid range is refused by validation.
    let bad = RANGE
        .replace("name: limits", "name: bad")
        .replace("min: {cpu: 50m}", "min: {cpu: \"2\"}");
    let file = cluster.write_file("bad.yaml", &bad);
    let refused = cluster
        .kubectl_err(&["apply", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        refused.contains("LimitRange \"bad\" is invalid")
            && refused.contains("spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"),
        "{refused}"
    );

    let deleted = cluster
        .kubectl_ok(&["delete", "limits", "limits", "-n", "lr"])
        .await;
    assert_eq!(deleted.trim(), "limitrange \"limits\" deleted");
    let file = cluster.write_file("after.yaml", &pod("after", "{}"));
    cluster
        .kubectl_ok(&["apply", "-f", file.to_str().unwrap_or_default()])
        .await;
    let after = cluster
        .kubectl_ok(&[
            "get",
            "pod",
            "after",
            "-n",
            "lr",
            "-o",
            "jsonpath={.spec.containers[0].resources}",
        ])
        .await;
    assert_eq!(after, "{}", "no range, no defaults");
}
