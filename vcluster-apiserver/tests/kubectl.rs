//! End-to-end tests with the real `kubectl` against a server on a loopback
//! port: every test checks what kubectl printed and what the server stored.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::kubectl::Table;

const MANIFESTS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: team-a
  labels:
    owner: alice
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: team-a
  labels:
    app: web
spec:
  containers:
  - name: app
    image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: team-a
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team-a
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: team-a
data:
  a: "1"
  b: "2"
"#;

fn pod_yaml(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  containers:\n  - name: app\n    image: nginx:1.27\n"
    )
}

fn stdout_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

fn names(text: &str) -> BTreeSet<String> {
    stdout_lines(text).into_iter().map(str::to_owned).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A server whose services get addresses from 10.77.0.0/24.
async fn server_with_small_service_range() -> Cluster {
    Cluster::start_with(Options {
        configure: Box::new(|config| config.service_cidr = "10.77.0.0/24".into()),
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_from_yaml_then_get_prints_tables() {
    let t = server_with_small_service_range().await;
    let file = t.write_file("all.yaml", MANIFESTS);
    let out = t
        .kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    assert_eq!(
        stdout_lines(&out),
        [
            "namespace/team-a created",
            "pod/web created",
            "service/web created",
            "deployment.apps/web created",
            "configmap/settings created",
        ]
    );

    // Stored state.
    let ns = t.stored("", "namespaces", None, "team-a").await.unwrap();
    assert_eq!(ns["metadata"]["labels"]["owner"], "alice");
    assert_eq!(ns["status"]["phase"], "Active");
    let pod = t.stored("", "pods", Some("team-a"), "web").await.unwrap();
    assert!(!pod["metadata"]["uid"].as_str().unwrap().is_empty());
    assert_eq!(pod["metadata"]["namespace"], "team-a");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["spec"]["containers"][0]["image"], "nginx:1.27");
    let svc = t
        .stored("", "services", Some("team-a"), "web")
        .await
        .unwrap();
    let cluster_ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(cluster_ip.octets()[..3], [10, 77, 0], "{cluster_ip}");
    assert_ne!(
        cluster_ip,
        Ipv4Addr::new(10, 77, 0, 1),
        "taken by `kubernetes`"
    );
    let deploy = t
        .stored("apps", "deployments", Some("team-a"), "web")
        .await
        .unwrap();
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["metadata"]["generation"], 1);
    let cm = t
        .stored("", "configmaps", Some("team-a"), "settings")
        .await
        .unwrap();
    assert_eq!(cm["data"], json!({"a": "1", "b": "2"}));

    // Tables.
    let pods = Table::parse(&t.kubectl_ok(&["get", "pods", "-n", "team-a"]).await);
    assert_eq!(pods.header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(pods.rows.len(), 1);
    let row = pods.row("web");
    assert_eq!(pods.cell(row, "READY"), "0/1");
    assert_eq!(pods.cell(row, "STATUS"), "Pending");
    assert_eq!(pods.cell(row, "RESTARTS"), "0");
    assert!(pods.cell(row, "AGE").ends_with('s'), "{row:?}");

    let svcs = Table::parse(&t.kubectl_ok(&["get", "svc", "-n", "team-a"]).await);
    assert_eq!(
        svcs.header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let row = svcs.row("web");
    assert_eq!(svcs.cell(row, "TYPE"), "ClusterIP");
    assert_eq!(svcs.cell(row, "CLUSTER-IP"), cluster_ip.to_string());
    assert_eq!(svcs.cell(row, "EXTERNAL-IP"), "<none>");
    assert_eq!(svcs.cell(row, "PORT(S)"), "80/TCP");
    let kubernetes = Table::parse(&t.kubectl_ok(&["get", "svc", "kubernetes"]).await);
    let row = kubernetes.row("kubernetes");
    assert_eq!(kubernetes.cell(row, "CLUSTER-IP"), "10.77.0.1");
    assert_eq!(kubernetes.cell(row, "PORT(S)"), "443/TCP");

    let deploys = Table::parse(&t.kubectl_ok(&["get", "deploy", "-n", "team-a"]).await);
    assert_eq!(
        deploys.header,
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    let row = deploys.row("web");
    assert_eq!(deploys.cell(row, "READY"), "0/2");

    let cms = Table::parse(&t.kubectl_ok(&["get", "configmaps", "-n", "team-a"]).await);
    assert_eq!(cms.header, ["NAME", "DATA", "AGE"]);
    assert_eq!(cms.cell(cms.row("settings"), "DATA"), "2");

    let nss = Table::parse(&t.kubectl_ok(&["get", "namespaces"]).await);
    assert_eq!(nss.header, ["NAME", "STATUS", "AGE"]);
    let listed: BTreeSet<&str> = nss.rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        listed,
        BTreeSet::from([
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "team-a"
        ])
    );
    assert_eq!(nss.cell(nss.row("team-a"), "STATUS"), "Active");

    // All namespaces: a NAMESPACE column first.
    let all = Table::parse(&t.kubectl_ok(&["get", "services", "-A"]).await);
    assert_eq!(all.header[..2], ["NAMESPACE", "NAME"]);
    let pairs: BTreeSet<(String, String)> = all
        .rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    assert_eq!(
        pairs,
        BTreeSet::from([
            ("default".to_owned(), "kubernetes".to_owned()),
            ("team-a".to_owned(), "web".to_owned())
        ])
    );

    // Wide output adds the pod columns.
    let wide = Table::parse(
        &t.kubectl_ok(&["get", "pods", "-n", "team-a", "-o", "wide"])
            .await,
    );
    assert_eq!(
        wide.header,
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ]
    );
    assert_eq!(wide.cell(wide.row("web"), "NODE"), "<none>");
}

/// Drops `null`s and empty objects, recursively: the zero values Go writes
/// for fields without omitempty, which the stored form leaves out.
fn without_go_zero_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(without_go_zero_values);
            map.retain(|_, v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
        }
        Value::Array(items) => items.iter_mut().for_each(without_go_zero_values),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_yaml_json_names_and_jsonpath() {
    let t = Cluster::start().await;
    let file = t.write_file("pod.yaml", &pod_yaml("web", "app: web"));
    t.kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    let mut stored = t.stored("", "pods", Some("default"), "web").await.unwrap();
    // kubectl hides managedFields unless --show-managed-fields.
    if let Some(meta) = stored["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }

    // The server writes what Go writes: fields without omitempty are
    // there even when empty (`creationTimestamp: null`, `resources: {}`).
    without_go_zero_values(&mut stored);
    let yaml = t.kubectl_ok(&["get", "pod", "web", "-o", "yaml"]).await;
    let mut from_yaml: Value = serde_yaml::from_str(&yaml).expect("kubectl printed YAML");
    without_go_zero_values(&mut from_yaml);
    assert_eq!(from_yaml, stored, "-o yaml prints the stored object");

    let json_text = t.kubectl_ok(&["get", "pod", "web", "-o", "json"]).await;
    let mut from_json: Value = serde_json::from_str(&json_text).expect("kubectl printed JSON");
    without_go_zero_values(&mut from_json);
    assert_eq!(from_json, stored, "-o json prints the stored object");

    let list: Value =
        serde_json::from_str(&t.kubectl_ok(&["get", "pods", "-o", "json"]).await).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["items"][0]["metadata"]["uid"],
        stored["metadata"]["uid"]
    );

    let name = t.kubectl_ok(&["get", "pods", "-o", "name"]).await;
    assert_eq!(stdout_lines(&name), ["pod/web"]);

    let rv = t
        .kubectl_ok(&[
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion} {.status.phase}",
        ])
        .await;
    assert_eq!(
        rv,
        format!(
            "{} Pending",
            stored["metadata"]["resourceVersion"].as_str().unwrap()
        )
    );

    let missing = t.kubectl_err(&["get", "pod", "nope"]).await;
    assert!(
        missing.contains(r#"Error from server (NotFound): pods "nope" not found"#),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_filters_with_label_and_field_selectors() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.server.client(), "default");
    for (name, labels, node) in [
        ("a", json!({"app": "web", "tier": "fe"}), None),
        ("b", json!({"app": "web", "tier": "be"}), None),
        ("c", json!({"app": "db"}), Some("node-1")),
    ] {
        let mut pod = vcluster_testkit::http::pod_json(name, &[]);
        pod["metadata"]["labels"] = labels;
        if let Some(node) = node {
            pod["spec"]["nodeName"] = json!(node);
        }
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }
    let get = |args: Vec<&'static str>| {
        let mut full = vec!["get", "pods", "-o", "name"];
        full.extend(args);
        full
    };
    for (args, expected) in [
        (vec!["-l", "app=web"], set(&["pod/a", "pod/b"])),
        (vec!["-l", "app==web,tier=be"], set(&["pod/b"])),
        (vec!["-l", "app!=web"], set(&["pod/c"])),
        (vec!["-l", "tier in (fe,be)"], set(&["pod/a", "pod/b"])),
        (vec!["-l", "tier notin (fe)"], set(&["pod/b", "pod/c"])),
        (vec!["-l", "tier"], set(&["pod/a", "pod/b"])),
        (vec!["-l", "!tier"], set(&["pod/c"])),
        (vec!["--field-selector", "metadata.name=b"], set(&["pod/b"])),
        (
            vec!["--field-selector", "metadata.name!=b"],
            set(&["pod/a", "pod/c"]),
        ),
        (
            vec!["--field-selector", "spec.nodeName=node-1"],
            set(&["pod/c"]),
        ),
        (
            vec!["--field-selector", "status.phase=Pending", "-l", "app=web"],
            set(&["pod/a", "pod/b"]),
        ),
    ] {
        let out = t.kubectl_ok(&get(args.clone())).await;
        assert_eq!(names(&out), expected, "kubectl get pods {args:?}");
    }

    // Nothing matches: kubectl says so on stderr.
    let output = t
        .kubectl(&["get", "pods", "--field-selector", "status.phase=Running"])
        .await;
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr)
        .contains("No resources found in default namespace."));

    // A field the server cannot select on is a 400 that kubectl reports.
    let err = t
        .kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=x"])
        .await;
    assert!(
        err.contains("Error from server (BadRequest)") && err.contains("spec.bogus"),
        "{err}"
    );
    let err = t.kubectl_err(&["get", "pods", "-l", "a in ("]).await;
    assert!(err.contains("unable to parse requirement"), "{err}");

    // The table keeps only the selected rows.
    let table = Table::parse(&t.kubectl_ok(&["get", "pods", "-l", "app=web"]).await);
    let rows: BTreeSet<&str> = table.rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rows, BTreeSet::from(["a", "b"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_updates_the_stored_object_and_refuses_stale_versions() {
    let t = Cluster::start().await;
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: slow\n";
    let file = t.write_file("cm.yaml", manifest);
    t.kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    let before = t
        .stored("", "configmaps", Some("default"), "settings")
        .await
        .unwrap();

    // Edit what kubectl printed and replace it.
    let printed = t
        .kubectl_ok(&["get", "configmap", "settings", "-o", "yaml"])
        .await;
    let mut edited: Value = serde_yaml::from_str(&printed).unwrap();
    edited["data"] = json!({"mode": "fast", "extra": "on-demand"});
    let edited_file = t.write_file("cm-edited.yaml", &serde_yaml::to_string(&edited).unwrap());
    let out = t
        .kubectl_ok(&["replace", "-f", edited_file.to_str().unwrap()])
        .await;
    assert_eq!(stdout_lines(&out), ["configmap/settings replaced"]);
    let after = t
        .stored("", "configmaps", Some("default"), "settings")
        .await
        .unwrap();
    assert_eq!(after["data"], json!({"mode": "fast", "extra": "on-demand"}));
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    let rv = |o: &Value| -> u64 {
        o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rv(&after) > rv(&before));

    // The edited file still carries the old resourceVersion: stale.
    edited["data"] = json!({"mode": "lost-update"});
    let stale_file = t.write_file("cm-stale.yaml", &serde_yaml::to_string(&edited).unwrap());
    let err = t
        .kubectl_err(&["replace", "-f", stale_file.to_str().unwrap()])
        .await;
    assert!(
        err.contains("Error from server (Conflict)")
            && err.contains(r#"Operation cannot be fulfilled on configmaps "settings": the object has been modified"#),
        "{err}"
    );
    let unchanged = t
        .stored("", "configmaps", Some("default"), "settings")
        .await
        .unwrap();
    assert_eq!(unchanged, after, "a refused replace stores nothing");

    // A file without resourceVersion replaces unconditionally; spec changes
    // of a deployment bump its generation.
    let deploy = |replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n"
        )
    };
    let d1 = t.write_file("d1.yaml", &deploy(1));
    t.kubectl_ok(&["create", "-f", d1.to_str().unwrap()]).await;
    let d3 = t.write_file("d3.yaml", &deploy(3));
    let out = t.kubectl_ok(&["replace", "-f", d3.to_str().unwrap()]).await;
    assert_eq!(stdout_lines(&out), ["deployment.apps/web replaced"]);
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 3);
    assert_eq!(stored["metadata"]["generation"], 2);

    // Replacing something that does not exist is a NotFound.
    let ghost = t.write_file("ghost.yaml", &pod_yaml("ghost", "app: x"));
    let err = t
        .kubectl_err(&["replace", "-f", ghost.to_str().unwrap()])
        .await;
    assert!(
        err.contains(r#"Error from server (NotFound)"#)
            && err.contains(r#"pods "ghost" not found"#),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_objects_from_storage() {
    let t = server_with_small_service_range().await;
    let file = t.write_file("all.yaml", MANIFESTS);
    t.kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;

    let out = t
        .kubectl_ok(&["delete", "pod", "web", "-n", "team-a"])
        .await;
    assert_eq!(stdout_lines(&out), [r#"pod "web" deleted"#]);
    let err = t
        .stored("", "pods", Some("team-a"), "web")
        .await
        .expect_err("deleted");
    assert_eq!((err.code.as_u16(), err.reason), (404, "NotFound"));

    let err = t
        .kubectl_err(&["delete", "pod", "web", "-n", "team-a"])
        .await;
    assert!(
        err.contains(r#"Error from server (NotFound): pods "web" not found"#),
        "{err}"
    );

    // The service's cluster IP is released and can be requested again.
    let svc = t
        .stored("", "services", Some("team-a"), "web")
        .await
        .unwrap();
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    let out = t
        .kubectl_ok(&["delete", "service", "web", "-n", "team-a"])
        .await;
    assert_eq!(stdout_lines(&out), [r#"service "web" deleted"#]);
    let again = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: again\n  namespace: team-a\nspec:\n  clusterIP: {ip}\n  ports:\n  - port: 80\n"
    );
    let again = t.write_file("again.yaml", &again);
    t.kubectl_ok(&["create", "-f", again.to_str().unwrap()])
        .await;
    let stored = t
        .stored("", "services", Some("team-a"), "again")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["clusterIP"], ip.as_str());

    // Delete by file.
    let rest = t.write_file(
        "rest.yaml",
        &MANIFESTS
            .split("---\n")
            .filter(|doc| doc.contains("kind: Deployment") || doc.contains("kind: ConfigMap"))
            .collect::<Vec<_>>()
            .join("---\n"),
    );
    let out = t
        .kubectl_ok(&["delete", "-f", rest.to_str().unwrap()])
        .await;
    assert_eq!(
        stdout_lines(&out),
        [
            r#"deployment.apps "web" deleted"#,
            r#"configmap "settings" deleted"#
        ]
    );
    assert!(t.stored_names("apps", "deployments", None).await.is_empty());
    assert!(t.stored_names("", "configmaps", None).await.is_empty());

    // Deleting a namespace deletes what is in it.
    let out = t.kubectl_ok(&["delete", "namespace", "team-a"]).await;
    assert_eq!(stdout_lines(&out), [r#"namespace "team-a" deleted"#]);
    assert!(!t
        .stored_names("", "namespaces", None)
        .await
        .contains(&"team-a".to_owned()));
    assert!(t
        .stored_names("", "services", Some("team-a"))
        .await
        .is_empty());
    // System namespaces cannot be deleted.
    let err = t.kubectl_err(&["delete", "namespace", "default"]).await;
    assert!(err.contains("Forbidden"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_changes_made_meanwhile() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.server.client(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(vcluster_testkit::http::pod_json("web", &[("app", "web")]))
            .unwrap(),
    )
    .await
    .unwrap();

    let watch = t.kubectl_stream(&["get", "pods", "-w", "--output-watch-events"]);
    watch
        .wait_for_line("the initial row of web", |l| {
            l.starts_with("ADDED") && l.contains(" web ") && l.contains("Pending")
        })
        .await;
    let header = watch.lines()[0].clone();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    );

    // Changes made while kubectl watches.
    pods.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(vcluster_testkit::http::pod_json("late", &[])).unwrap(),
    )
    .await
    .unwrap();
    pods.delete("late", &Default::default()).await.unwrap();

    watch
        .wait_for_line("web running", |l| {
            l.starts_with("MODIFIED") && l.contains(" web ") && l.contains("Running")
        })
        .await;
    watch
        .wait_for_line("late added", |l| {
            l.starts_with("ADDED") && l.contains(" late ")
        })
        .await;
    watch
        .wait_for_line("late deleted", |l| {
            l.starts_with("DELETED") && l.contains(" late ")
        })
        .await;
    let lines = watch.stop().await;
    let events: Vec<(String, String)> = lines[1..]
        .iter()
        .map(|l| {
            let mut cells = l.split_whitespace();
            (
                cells.next().unwrap_or("").to_owned(),
                cells.next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("ADDED", "web"),
        ("MODIFIED", "web"),
        ("ADDED", "late"),
        ("DELETED", "late"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    // Deletion without a grace period may be printed as a MODIFIED first
    // on real clusters; here it is one DELETED, and nothing else appears.
    assert_eq!(events, expected, "{lines:#?}");

    // Plain `get -w` (table rows without event types) sees a change too.
    let plain = t.kubectl_stream(&["get", "pods", "-w"]);
    plain
        .wait_for_line("web", |l| l.starts_with("web ") && l.contains("Running"))
        .await;
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(vcluster_testkit::http::pod_json("later", &[])).unwrap(),
    )
    .await
    .unwrap();
    plain
        .wait_for_line("later", |l| {
            l.starts_with("later ") && l.contains("Pending")
        })
        .await;
    plain.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_and_api_versions_list_what_is_served() {
    let t = Cluster::start().await;
    let table = Table::parse(&t.kubectl_ok(&["api-resources"]).await);
    assert_eq!(
        table.header,
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    let find = |name: &str, version: &str| -> Vec<String> {
        table
            .rows
            .iter()
            .find(|r| r[0] == name && r[2] == version)
            .unwrap_or_else(|| panic!("{name} ({version}) missing: {:?}", table.rows))
            .clone()
    };
    for (name, short, version, namespaced, kind) in [
        ("pods", "po", "v1", "true", "Pod"),
        ("services", "svc", "v1", "true", "Service"),
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("secrets", "", "v1", "true", "Secret"),
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("nodes", "no", "v1", "false", "Node"),
        ("persistentvolumes", "pv", "v1", "false", "PersistentVolume"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("statefulsets", "sts", "apps/v1", "true", "StatefulSet"),
        ("daemonsets", "ds", "apps/v1", "true", "DaemonSet"),
        ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
        (
            "endpointslices",
            "",
            "discovery.k8s.io/v1",
            "true",
            "EndpointSlice",
        ),
        ("events", "ev", "events.k8s.io/v1", "true", "Event"),
        (
            "ingresses",
            "ing",
            "networking.k8s.io/v1",
            "true",
            "Ingress",
        ),
        (
            "networkpolicies",
            "netpol",
            "networking.k8s.io/v1",
            "true",
            "NetworkPolicy",
        ),
        (
            "storageclasses",
            "sc",
            "storage.k8s.io/v1",
            "false",
            "StorageClass",
        ),
    ] {
        assert_eq!(
            find(name, version),
            [name, short, version, namespaced, kind],
            "api-resources row of {name}"
        );
    }
    // Short names and kinds resolve through discovery.
    let out = t.kubectl_ok(&["get", "po"]).await;
    assert!(out.is_empty(), "{out}");
    let out = t.kubectl_ok(&["get", "ns", "-o", "name"]).await;
    assert!(stdout_lines(&out).contains(&"namespace/default"));

    let apps = t
        .kubectl_ok(&["api-resources", "--api-group=apps", "-o", "name"])
        .await;
    assert_eq!(
        names(&apps),
        set(&[
            "controllerrevisions.apps",
            "daemonsets.apps",
            "deployments.apps",
            "replicasets.apps",
            "statefulsets.apps"
        ])
    );
    let cluster_scoped = t
        .kubectl_ok(&["api-resources", "--namespaced=false", "-o", "name"])
        .await;
    assert!(names(&cluster_scoped).contains("namespaces"));
    assert!(!names(&cluster_scoped).contains("pods"));

    let versions = t.kubectl_ok(&["api-versions"]).await;
    let versions = names(&versions);
    for expected in [
        "v1",
        "apps/v1",
        "batch/v1",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "networking.k8s.io/v1",
        "storage.k8s.io/v1",
    ] {
        assert!(versions.contains(expected), "{expected} in {versions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_annotate_patch_the_stored_object() {
    let t = Cluster::start().await;
    let file = t.write_file("pod.yaml", &pod_yaml("web", "app: web"));
    t.kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    let labels = |o: &Value| o["metadata"]["labels"].clone();

    let out = t.kubectl_ok(&["label", "pod", "web", "tier=fe"]).await;
    assert_eq!(stdout_lines(&out), ["pod/web labeled"]);
    let pod = t.stored("", "pods", Some("default"), "web").await.unwrap();
    assert_eq!(labels(&pod), json!({"app": "web", "tier": "fe"}));

    let err = t.kubectl_err(&["label", "pod", "web", "tier=be"]).await;
    assert!(err.contains("--overwrite is false"), "{err}");
    t.kubectl_ok(&["label", "pod", "web", "tier=be", "--overwrite"])
        .await;
    let pod = t.stored("", "pods", Some("default"), "web").await.unwrap();
    assert_eq!(labels(&pod), json!({"app": "web", "tier": "be"}));
    t.kubectl_ok(&["label", "pod", "web", "tier-"]).await;
    let pod = t.stored("", "pods", Some("default"), "web").await.unwrap();
    assert_eq!(labels(&pod), json!({"app": "web"}));

    let out = t
        .kubectl_ok(&["annotate", "pod", "web", "note=hello world"])
        .await;
    assert_eq!(stdout_lines(&out), ["pod/web annotated"]);
    let pod = t.stored("", "pods", Some("default"), "web").await.unwrap();
    assert_eq!(
        pod["metadata"]["annotations"],
        json!({"note": "hello world"})
    );
    assert_eq!(pod["metadata"]["generation"], 1, "metadata is not spec");
    t.kubectl_ok(&["annotate", "pod", "web", "note-"]).await;
    let pod = t.stored("", "pods", Some("default"), "web").await.unwrap();
    assert!(pod["metadata"]["annotations"]
        .as_object()
        .is_none_or(|a| a.is_empty()));

    // Cluster-scoped objects and several at once.
    t.kubectl_ok(&["label", "namespace", "default", "env=test"])
        .await;
    let ns = t.stored("", "namespaces", None, "default").await.unwrap();
    assert_eq!(ns["metadata"]["labels"]["env"], "test");
    let second = t.write_file("pod2.yaml", &pod_yaml("api", "app: api"));
    t.kubectl_ok(&["create", "-f", second.to_str().unwrap()])
        .await;
    t.kubectl_ok(&["label", "pods", "--all", "team=core"]).await;
    for name in ["web", "api"] {
        let pod = t.stored("", "pods", Some("default"), name).await.unwrap();
        assert_eq!(pod["metadata"]["labels"]["team"], "core", "{name}");
    }
    let selected = t
        .kubectl_ok(&["get", "pods", "-l", "team=core", "-o", "name"])
        .await;
    assert_eq!(names(&selected), set(&["pod/api", "pod/web"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_with_kubectls_error_text() {
    let t = Cluster::start().await;

    // 422 for an invalid name, with the field cause kubectl prints.
    let bad = t.write_file("bad.yaml", &pod_yaml("Bad_Name", "app: web"));
    let err = t
        .kubectl_err(&["create", "-f", bad.to_str().unwrap()])
        .await;
    assert!(
        err.contains(r#"The Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"#),
        "{err}"
    );
    let svc = t.write_file(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\nspec:\n  ports:\n  - port: 80\n",
    );
    let err = t
        .kubectl_err(&["create", "-f", svc.to_str().unwrap()])
        .await;
    assert!(
        err.contains(r#"The Service "1web" is invalid: metadata.name: Invalid value: "1web": a DNS-1035 label"#),
        "{err}"
    );
    let no_containers = t.write_file(
        "empty.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: empty\nspec:\n  containers: []\n",
    );
    let err = t
        .kubectl_err(&["create", "-f", no_containers.to_str().unwrap()])
        .await;
    assert!(
        err.contains(r#"The Pod "empty" is invalid: spec.containers: Required value"#),
        "{err}"
    );

    // 404 for a namespace that does not exist.
    let good = t.write_file("good.yaml", &pod_yaml("good", "app: web"));
    let err = t
        .kubectl_err(&["create", "-f", good.to_str().unwrap(), "-n", "missing"])
        .await;
    assert!(
        err.contains(&format!(
            r#"Error from server (NotFound): error when creating "{}": namespaces "missing" not found"#,
            good.display()
        )),
        "{err}"
    );

    // 409 for a second create.
    t.kubectl_ok(&["create", "-f", good.to_str().unwrap()])
        .await;
    let err = t
        .kubectl_err(&["create", "-f", good.to_str().unwrap()])
        .await;
    assert!(
        err.contains(r#"Error from server (AlreadyExists)"#)
            && err.contains(r#"pods "good" already exists"#),
        "{err}"
    );

    // Server-side dry run stores nothing.
    let dry = t.write_file("dry.yaml", &pod_yaml("dry", "app: web"));
    let out = t
        .kubectl_ok(&["create", "-f", dry.to_str().unwrap(), "--dry-run=server"])
        .await;
    assert_eq!(stdout_lines(&out), ["pod/dry created (server dry run)"]);

    // Nothing but the one good pod was stored anywhere.
    assert_eq!(t.stored_names("", "pods", None).await, ["good"]);
    assert_eq!(t.stored_names("", "services", None).await, ["kubernetes"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_over_tls_with_a_self_signed_certificate() {
    let t = Cluster::start_tls().await;
    assert!(t.url.starts_with("https://127.0.0.1:"));
    let table = Table::parse(&t.kubectl_ok(&["get", "namespaces"]).await);
    assert_eq!(table.rows.len(), 4, "{:?}", table.rows);
    let file = t.write_file("pod.yaml", &pod_yaml("secure", "app: web"));
    let out = t
        .kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    assert_eq!(stdout_lines(&out), ["pod/secure created"]);
    assert!(t
        .stored("", "pods", Some("default"), "secure")
        .await
        .is_ok());
    let watch = t.kubectl_stream(&["get", "pods", "-w"]);
    watch
        .wait_for_line("secure", |l| l.starts_with("secure "))
        .await;
    watch.stop().await;

    // A client that does not trust the certificate is refused.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other_ca = t.write_file("other-ca.pem", &other.cert.pem());
    let err = t
        .kubectl_err(&[
            "get",
            "pods",
            &format!("--certificate-authority={}", other_ca.display()),
        ])
        .await;
    assert!(err.contains("certificate"), "{err}");
}

/// `kubectl create namespace|configmap|deployment` send protobuf bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imperative_create_commands_send_protobuf() {
    let t = Cluster::start().await;
    let out = t.kubectl_ok(&["create", "namespace", "team-b"]).await;
    assert_eq!(stdout_lines(&out), ["namespace/team-b created"]);
    let ns = t.stored("", "namespaces", None, "team-b").await.unwrap();
    assert_eq!(ns["status"]["phase"], "Active");

    let out = t
        .kubectl_ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "team-b",
            "--from-literal=mode=fast",
        ])
        .await;
    assert_eq!(stdout_lines(&out), ["configmap/settings created"]);
    let cm = t
        .stored("", "configmaps", Some("team-b"), "settings")
        .await
        .unwrap();
    assert_eq!(cm["data"], json!({"mode": "fast"}));

    let out = t
        .kubectl_ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            "team-b",
            "--image=nginx:1.27",
            "--replicas=2",
        ])
        .await;
    assert_eq!(stdout_lines(&out), ["deployment.apps/web created"]);
    let deploy = t
        .stored("apps", "deployments", Some("team-b"), "web")
        .await
        .unwrap();
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"],
        json!({"app": "web"})
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
}
