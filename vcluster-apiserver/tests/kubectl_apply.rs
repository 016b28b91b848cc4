//! End to end: what kubectl and kube-rs send beyond plain CRUD. Client-side
//! apply (3-way strategic merge), server-side apply with field managers and
//! conflicts, `edit` through an editor script, `patch` of every type, `set
//! image`, `explain` (OpenAPI schemas), and every kube-rs `Patch` variant.

use std::os::unix::fs::PermissionsExt;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;

fn deployment_yaml(replicas: u32, image: &str, labels: &str, extra_container: bool) -> String {
    let mut yaml = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{{labels}}}
spec:
  replicas: {replicas}
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
        image: {image}
        env:
        - name: MODE
          value: one
"
    );
    if extra_container {
        yaml.push_str("      - name: sidecar\n        image: busybox\n");
    }
    yaml
}

fn managers(object: &Value) -> Vec<(String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or("").to_owned(),
                        e["operation"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn owns(object: &Value, manager: &str, pointer: &str) -> bool {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["manager"] == manager)
        .any(|e| e["fieldsV1"].pointer(pointer).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_merges_three_ways() {
    let t = Cluster::start().await;
    let first = t.write_file(
        "v1.yaml",
        &deployment_yaml(2, "nginx:1.27", "app: web, tier: front", false),
    );
    let out = t
        .kubectl_ok(&["apply", "-f", first.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web created");
    // Someone else changes the live object meanwhile.
    t.kubectl_ok(&["label", "deployment", "web", "owner=ops"])
        .await;

    // Second apply: new image, a sidecar, the `tier` label dropped.
    let second = t.write_file(
        "v2.yaml",
        &deployment_yaml(2, "nginx:1.28", "app: web", true),
    );
    let out = t
        .kubectl_ok(&["apply", "-f", second.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web configured");
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    let containers = &stored["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "app");
    assert_eq!(containers[0]["image"], "nginx:1.28");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "MODE", "value": "one"}])
    );
    assert_eq!(containers[1]["name"], "sidecar");
    // Removed from the configuration: deleted; set by someone else: kept.
    assert_eq!(
        stored["metadata"]["labels"],
        json!({"app": "web", "owner": "ops"})
    );
    let last_applied = stored["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("last-applied annotation");
    assert!(last_applied.contains("nginx:1.28"), "{last_applied}");
    assert!(managers(&stored).contains(&("kubectl-client-side-apply".into(), "Update".into())));

    let out = t
        .kubectl_ok(&["apply", "-f", second.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web unchanged");
    // Back to one container.
    let out = t
        .kubectl_ok(&["apply", "-f", first.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web configured");
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(stored["metadata"]["labels"]["tier"], "front");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_tracks_managers_and_conflicts() {
    let t = Cluster::start().await;
    let base = t.write_file(
        "base.yaml",
        &deployment_yaml(2, "nginx:1.27", "app: web", false),
    );
    let out = t
        .kubectl_ok(&["apply", "--server-side", "-f", base.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(
        managers(&stored),
        [("kubectl".to_owned(), "Apply".to_owned())]
    );
    assert!(owns(&stored, "kubectl", "/f:spec/f:replicas"));
    assert!(owns(
        &stored,
        "kubectl",
        "/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"app\"}/f:image"
    ));

    // Another manager wants 3 replicas: a conflict, nothing changes.
    let scale = t.write_file(
        "scale.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n",
    );
    let err = t
        .kubectl_err(&[
            "apply",
            "--server-side",
            "--field-manager=autoscaler",
            "-f",
            scale.to_str().unwrap(),
        ])
        .await;
    assert!(err.contains("conflict with \"kubectl\""), "{err}");
    assert!(err.contains(".spec.replicas"), "{err}");
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 2);

    // Forced: the field moves to the new manager.
    let out = t
        .kubectl_ok(&[
            "apply",
            "--server-side",
            "--field-manager=autoscaler",
            "--force-conflicts",
            "-f",
            scale.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 3);
    assert!(owns(&stored, "autoscaler", "/f:spec/f:replicas"));
    assert!(!owns(&stored, "kubectl", "/f:spec/f:replicas"));

    // The first manager now conflicts the other way.
    let err = t
        .kubectl_err(&["apply", "--server-side", "-f", base.to_str().unwrap()])
        .await;
    assert!(err.contains("conflict with \"autoscaler\""), "{err}");
    // Dropping replicas from its configuration, it applies cleanly and
    // the autoscaler's value stays.
    let without =
        deployment_yaml(2, "nginx:1.29", "app: web", false).replace("  replicas: 2\n", "");
    let without = t.write_file("without.yaml", &without);
    t.kubectl_ok(&["apply", "--server-side", "-f", without.to_str().unwrap()])
        .await;
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 3);
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.29"
    );

    // kubectl reads managedFields back.
    let shown = t
        .kubectl_ok(&[
            "get",
            "deployment",
            "web",
            "--show-managed-fields",
            "-o",
            "json",
        ])
        .await;
    let shown: Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(managers(&shown).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_runs_the_editor_and_patches() {
    let t = Cluster::start().await;
    let file = t.write_file(
        "d.yaml",
        &deployment_yaml(1, "nginx:1.27", "app: web", false),
    );
    t.kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    let script = t.write_file(
        "editor.sh",
        "#!/bin/sh\nsed -i -e 's/nginx:1.27/nginx:1.30/' -e 's/replicas: 1/replicas: 4/' \"$1\"\n",
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut command = t.kubectl_command(&["edit", "deployment", "web"], "10s");
    command.env("KUBE_EDITOR", &script).env("EDITOR", &script);
    let output = command.output().await.expect("kubectl edit");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "edit failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "deployment.apps/web edited");
    let stored = t
        .stored("apps", "deployments", Some("default"), "web")
        .await
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 4);
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.30"
    );
    assert!(owns(&stored, "kubectl-edit", "/f:spec/f:replicas"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_of_every_type_and_set_image() {
    let t = Cluster::start().await;
    let file = t.write_file(
        "d.yaml",
        &deployment_yaml(1, "nginx:1.27", "app: web", false),
    );
    t.kubectl_ok(&["create", "-f", file.to_str().unwrap()])
        .await;
    let get = || async {
        t.stored("apps", "deployments", Some("default"), "web")
            .await
            .unwrap()
    };

    t.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
    ])
    .await;
    assert_eq!(get().await["spec"]["replicas"], 3);

    t.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
    ])
    .await;
    assert_eq!(get().await["metadata"]["labels"]["patched"], "merge");

    // Strategic: the container list merges by name.
    let out = t
        .kubectl_ok(&[
            "patch",
            "deployment",
            "web",
            "--type=strategic",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let containers = get().await["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().map(Vec::len), Some(2), "{containers}");
    // And `$patch: delete` removes one.
    t.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
    ])
    .await;
    let containers = get().await["spec"]["template"]["spec"]["containers"].clone();
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");

    let out = t
        .kubectl_ok(&["set", "image", "deployment/web", "app=nginx:1.31"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    let stored = get().await;
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.31"
    );
    assert_eq!(
        stored["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"],
        "MODE"
    );

    let out = t
        .kubectl_ok(&["rollout", "restart", "deployment/web"])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web restarted");
    let stored = get().await;
    assert!(stored["spec"]["template"]["metadata"]["annotations"]
        ["kubectl.kubernetes.io/restartedAt"]
        .is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_the_openapi_schemas() {
    let t = Cluster::start().await;
    let out = t.kubectl_ok(&["explain", "pod.spec.containers"]).await;
    assert!(out.contains("KIND:") && out.contains("Pod"), "{out}");
    assert!(
        out.contains("FIELD:") && out.contains("containers <[]Container>"),
        "{out}"
    );
    assert!(
        out.contains("List of containers belonging to the pod."),
        "{out}"
    );
    assert!(
        out.contains("image\t<string>")
            || out.contains("image <string>")
            || out.contains("image\t"),
        "{out}"
    );
    let out = t
        .kubectl_ok(&["explain", "deployment.spec.strategy.type"])
        .await;
    assert!(out.contains("GROUP:") && out.contains("apps"), "{out}");

    // The documents are cacheable: ETag and 304.
    let root = t.raw("GET", "/openapi/v3", &[], b"").await;
    let url = root.json()["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_owned();
    let doc = t.raw("GET", &url, &[], b"").await;
    assert_eq!(doc.status, 200);
    assert!(doc
        .header("cache-control")
        .is_some_and(|c| c.contains("immutable")));
    let etag = doc.header("etag").expect("etag").to_owned();
    let again = t
        .raw("GET", &url, &[("If-None-Match", etag.as_str())], b"")
        .await;
    assert_eq!(again.status, 304);
    let v2 = t
        .raw("GET", "/openapi/v2", &[("Accept", "application/json")], b"")
        .await;
    assert_eq!(v2.status, 200);
    assert!(v2.json()["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
}

/// The move every kubectl user makes from client-side to server-side
/// apply: the first `apply --server-side` of a changed manifest takes over
/// what the client-side applies set, without `--force-conflicts`, and
/// kubectl's migration of the managed fields keeps every field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_takes_over_from_client_side_apply() {
    let t = Cluster::start().await;
    let deployment = |replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, labels: {{app: web}}}}\n\
             spec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n\
             \x20 template:\n    metadata: {{labels: {{app: web}}}}\n\
             \x20   spec: {{containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]}}\n"
        )
    };
    let first = t.write_file("web.yaml", &deployment(2));
    t.kubectl_ok(&["apply", "-f", first.to_str().expect("UTF-8 path")])
        .await;
    let changed = t.write_file("web-changed.yaml", &deployment(4));
    let out = t
        .kubectl(&[
            "apply",
            "--server-side",
            "-f",
            changed.to_str().expect("UTF-8 path"),
        ])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "no conflict, no failed migration: {stderr}"
    );
    let replicas = t
        .kubectl_ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.metadata.labels.app}",
        ])
        .await;
    assert_eq!(replicas.trim(), "4 web");
    // A second server-side apply changes nothing and removes nothing.
    t.kubectl_ok(&[
        "apply",
        "--server-side",
        "-f",
        changed.to_str().expect("UTF-8 path"),
    ])
    .await;
    let ports = t
        .kubectl_ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}",
        ])
        .await;
    assert_eq!(ports.trim(), "80");
}

/// A manifest with a kind the server does not serve: kubectl's validation
/// reads /openapi/v2 in protobuf (the v3 document does not cover the kind)
/// and the apply ends with upstream's answer, after applying the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_of_an_unknown_kind_says_no_matches_for_kind() {
    let t = Cluster::start().await;
    let manifest = t.write_file(
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n---\n\
         apiVersion: widgets.example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    );
    let err = t
        .kubectl_err(&["apply", "-f", manifest.to_str().expect("UTF-8 path")])
        .await;
    assert!(
        err.contains(r#"no matches for kind "Widget" in version "widgets.example.com/v1""#),
        "{err}"
    );
    let created = t
        .kubectl_ok(&["get", "configmap", "settings", "-o", "name"])
        .await;
    assert_eq!(created.trim(), "configmap/settings");
    // The protobuf form itself, as client-go asks for it.
    let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let v2 = t.raw("GET", "/openapi/v2", &[("Accept", pb)], b"").await;
    assert_eq!(v2.status, 200);
    assert_eq!(
        v2.header("content-type"),
        Some("application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    );
    let body = String::from_utf8_lossy(&v2.body);
    assert!(
        body.contains("io.k8s.api.core.v1.Pod"),
        "definitions are encoded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_patches_of_every_variant() {
    let t = Cluster::start().await;
    let client = t.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let deployments: Api<Deployment> = Api::namespaced(client, "default");

    // Apply creates, then a second manager conflicts unless forced.
    let config: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"},
    }))
    .expect("configmap");
    let ssa = PatchParams::apply("controller-a");
    let created = maps
        .patch("settings", &ssa, &Patch::Apply(&config))
        .await
        .expect("apply creates");
    assert_eq!(
        created
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("1")
    );
    let managed = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("controller-a"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    assert_eq!(managed[0].fields_type.as_deref(), Some("FieldsV1"));

    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "9"}});
    let err = maps
        .patch(
            "settings",
            &PatchParams::apply("controller-b"),
            &Patch::Apply(&other),
        )
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
            assert!(
                status
                    .message
                    .contains("conflict with \"controller-a\": .data.a"),
                "{}",
                status.message
            );
        }
        other => panic!("unexpected error {other:?}"),
    }
    let forced = maps
        .patch(
            "settings",
            &PatchParams::apply("controller-b").force(),
            &Patch::Apply(&other),
        )
        .await
        .expect("forced apply");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("9")
    );

    // Apply without the key removes what the manager applied before.
    let smaller = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {}});
    let pruned = maps
        .patch("settings", &ssa, &Patch::Apply(&smaller))
        .await
        .expect("apply again");
    let data = pruned.data.unwrap_or_default();
    assert_eq!(
        data.get("a").map(String::as_str),
        Some("9"),
        "owned by controller-b"
    );
    assert!(!data.contains_key("b"), "no longer applied");

    // Merge, JSON and strategic patches on a typed deployment.
    let deployment: Deployment =
        serde_yaml::from_str(&deployment_yaml(1, "nginx:1.27", "app: web", false)).expect("yaml");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create");
    let params = PatchParams::default();
    let merged = deployments
        .patch(
            "web",
            &params,
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("merge");
    assert_eq!(merged.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let patched = deployments
        .patch(
            "web",
            &params,
            &Patch::<Value>::Json(
                serde_json::from_value(
                    json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]),
                )
                .expect("json patch"),
            ),
        )
        .await
        .expect("json");
    assert_eq!(patched.spec.as_ref().and_then(|s| s.replicas), Some(5));
    let strategic = deployments
        .patch(
            "web",
            &params,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}, {"name": "log", "image": "busybox"}]}}}})),
        )
        .await
        .expect("strategic");
    let containers = strategic
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].image.as_deref(), Some("nginx:2"));
    assert_eq!(
        containers[0].env.as_ref().map(Vec::len),
        Some(1),
        "env kept by the merge"
    );

    // Server-side apply onto the deployment someone else updated: the
    // updater owns replicas, so the apply conflicts on it.
    let apply_replicas = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 7}});
    let err = deployments
        .patch(
            "web",
            &PatchParams::apply("ssa"),
            &Patch::Apply(&apply_replicas),
        )
        .await
        .expect_err("conflict with the updater");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
}
