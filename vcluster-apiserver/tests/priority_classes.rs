//! PriorityClasses with the real kubectl, the system classes every cluster
//! has, and the Priority admission plugin: a pod's class decides its
//! priority; unknown classes and disagreeing priorities are refused.

use serde_json::Value;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::kubectl::Table;

fn class(name: &str, value: i64, global: bool) -> String {
    format!(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {{name: {name}}}\nvalue: {value}\nglobalDefault: {global}\ndescription: test\n"
    )
}

fn pod(name: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  {spec_extra}\n  containers:\n  - name: app\n    image: nginx\n"
    )
}

async fn apply(cluster: &Cluster, name: &str, yaml: &str) -> std::process::Output {
    let file = cluster.write_file(name, yaml);
    cluster
        .kubectl(&["create", "-f", file.to_str().unwrap_or_default()])
        .await
}

async fn priority(cluster: &Cluster, pod: &str) -> (Value, Value, Value) {
    let pod: Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "pod", pod, "-o", "json"]).await)
            .expect("json");
    let spec = &pod["spec"];
    (
        spec["priority"].clone(),
        spec["priorityClassName"].clone(),
        spec["preemptionPolicy"].clone(),
    )
}

fn stderr(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_classes_decide_pods_priorities() {
    let cluster = Cluster::start().await;

    // The system classes are there from the start.
    let table = Table::parse(&cluster.kubectl_ok(&["get", "pc"]).await);
    assert_eq!(
        table.header,
        ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    );
    let node = table.row("system-node-critical");
    assert_eq!(table.cell(node, "VALUE"), "2000001000");
    assert_eq!(table.cell(node, "GLOBAL-DEFAULT"), "false");
    assert_eq!(table.cell(node, "PREEMPTIONPOLICY"), "PreemptLowerPriority");
    let cluster_critical = table.row("system-cluster-critical");
    assert_eq!(table.cell(cluster_critical, "VALUE"), "2000000000");

    // A class and a pod of it.
    let created = apply(&cluster, "high.yaml", &class("high", 1000, false)).await;
    assert!(created.status.success(), "{created:?}");
    let described = cluster
        .kubectl_ok(&["describe", "priorityclass", "high"])
        .await;
    assert!(
        described.contains("Value:") && described.contains("1000"),
        "{described}"
    );
    let made = apply(&cluster, "p1.yaml", &pod("p1", "priorityClassName: high")).await;
    assert!(made.status.success(), "{made:?}");
    assert_eq!(
        priority(&cluster, "p1").await,
        (1000.into(), "high".into(), "PreemptLowerPriority".into())
    );

    // No class and no default: priority 0.
    let made = apply(&cluster, "p0.yaml", &pod("p0", "restartPolicy: Always")).await;
    assert!(made.status.success(), "{made:?}");
    assert_eq!(
        priority(&cluster, "p0").await,
        (0.into(), Value::Null, "PreemptLowerPriority".into())
    );

    // Refusals, in upstream's words.
    let refused = stderr(
        &apply(
            &cluster,
            "nope.yaml",
            &pod("nope", "priorityClassName: nope"),
        )
        .await,
    );
    assert!(
        refused.contains("Error from server (Forbidden)")
            && refused
                .contains("pods \"nope\" is forbidden: no PriorityClass with name nope was found"),
        "{refused}"
    );
    let refused = stderr(
        &apply(
            &cluster,
            "five.yaml",
            &pod("five", "priorityClassName: high\n  priority: 5"),
        )
        .await,
    );
    assert!(
        refused.contains("pods \"five\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"),
        "{refused}"
    );
    let refused = stderr(&apply(&cluster, "sys.yaml", &class("system-mine", 10, false)).await);
    assert!(
        refused.contains("\"system-mine\" is invalid")
            && refused.contains(
                "priority class names with 'system-' prefix are reserved for system use only"
            ),
        "{refused}"
    );
    let refused = cluster
        .kubectl_err(&[
            "patch",
            "pc",
            "high",
            "--type=merge",
            "-p",
            "{\"value\": 7}",
        ])
        .await;
    assert!(
        refused.contains("value: Forbidden: may not be changed in an update."),
        "{refused}"
    );

    // A global default applies to pods without a class; only one may exist.
    let created = apply(&cluster, "low.yaml", &class("low", 10, true)).await;
    assert!(created.status.success(), "{created:?}");
    let made = apply(&cluster, "pd.yaml", &pod("pd", "restartPolicy: Always")).await;
    assert!(made.status.success(), "{made:?}");
    assert_eq!(
        priority(&cluster, "pd").await,
        (10.into(), "low".into(), "PreemptLowerPriority".into())
    );
    let refused = stderr(&apply(&cluster, "other.yaml", &class("other", 20, true)).await);
    assert!(
        refused.contains("is forbidden: PriorityClass low is already marked as default. Only one default can exist"),
        "{refused}"
    );

    let refused = cluster
        .kubectl_err(&["delete", "pc", "system-node-critical"])
        .await;
    assert!(
        refused.contains("priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted"),
        "{refused}"
    );
    let deleted = cluster.kubectl_ok(&["delete", "pc", "high"]).await;
    assert_eq!(
        deleted.trim(),
        "priorityclass.scheduling.k8s.io \"high\" deleted"
    );
}
