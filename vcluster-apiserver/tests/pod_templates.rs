//! Pod templates, the kind added as one file plus one catalog line: served
//! to kube-rs and kubectl as kube-apiserver serves them (discovery,
//! defaults, validation, `kubectl get` columns).

use std::process::Command;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PodTemplate;
use kube::api::{Api, PostParams};
use serde_json::json;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};

fn template(name: &str, container: serde_json::Value) -> PodTemplate {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [container]},
        },
    }))
    .expect("a valid pod template")
}

fn kubectl(server: &str, args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .args(["--server", server, "--request-timeout=20s"])
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_templates_are_served_like_upstream() {
    let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
        .await
        .expect("server starts");
    let addr = server
        .spawn("127.0.0.1:0".parse().expect("address"), None)
        .await
        .expect("server listens");
    let templates: Api<PodTemplate> = Api::namespaced(server.client(), "default");

    let created = templates
        .create(
            &PostParams::default(),
            &template("web", json!({"name": "app", "image": "nginx:1.27"})),
        )
        .await
        .expect("create a pod template");
    let spec = created
        .template
        .and_then(|t| t.spec)
        .expect("the template keeps its pod spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );

    let refused = templates
        .create(
            &PostParams::default(),
            &template("nameless", json!({"image": "nginx"})),
        )
        .await
        .expect_err("a container without a name is invalid");
    let kube::Error::Api(status) = refused else {
        panic!("expected a Status, got {refused:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .contains("template.spec.containers[0].name: Required value"),
        "{}",
        status.message
    );

    let url = format!("http://{addr}");
    let resources = kubectl(&url, &["api-resources", "--api-group="]);
    assert!(
        resources
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["podtemplates", "v1", "true", "PodTemplate"]),
        "{resources}"
    );
    let table = kubectl(&url, &["get", "podtemplates"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"],
            vec!["web", "app", "nginx:1.27", "app=web"],
        ]
    );
    server.shutdown();
}
