//! API services (apiregistration.k8s.io/v1), a kind added as one file plus
//! one catalog line: the group is in discovery (kube-rs's group discovery
//! finds it), objects are validated as kube-aggregator validates them, the
//! status is a subresource, and `kubectl get apiservices` prints
//! upstream's columns.

use std::process::Command;
use std::sync::Arc;

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery;
use serde_json::json;
use vcluster_apiserver::storage::MemoryStorage;
use vcluster_apiserver::{ApiServer, ApiServerConfig};

fn api_service(name: &str, spec: serde_json::Value) -> APIService {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
        .expect("a valid APIService")
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

fn rows(table: &str) -> Vec<Vec<&str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_services_are_served_like_upstream() {
    let server = ApiServer::start(ApiServerConfig::new(Arc::new(MemoryStorage::new())))
        .await
        .expect("server starts");
    let addr = server
        .spawn("127.0.0.1:0".parse().expect("address"), None)
        .await
        .expect("server listens");
    let client = server.client();

    // kube-rs's one-group discovery finds the group and its kind.
    let group = discovery::group(&client, "apiregistration.k8s.io")
        .await
        .expect("the group is discovered");
    let (resource, caps) = group
        .recommended_kind("APIService")
        .expect("APIService is in the group");
    assert_eq!(
        (resource.version.as_str(), resource.plural.as_str()),
        ("v1", "apiservices")
    );
    assert_eq!(caps.scope, discovery::Scope::Cluster);
    let dynamic: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    assert!(dynamic
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .is_empty());

    let services: Api<APIService> = Api::all(client.clone());
    services
        .create(
            &PostParams::default(),
            &api_service(
                "v1beta1.metrics.k8s.io",
                json!({
                    "group": "metrics.k8s.io", "version": "v1beta1",
                    "groupPriorityMinimum": 100, "versionPriority": 100,
                    "insecureSkipTLSVerify": true,
                    "service": {"namespace": "kube-system", "name": "metrics-server"},
                }),
            ),
        )
        .await
        .expect("an aggregated APIService is accepted");
    let created = services
        .get("v1beta1.metrics.k8s.io")
        .await
        .expect("and read back");
    let backend = created
        .spec
        .and_then(|spec| spec.service)
        .expect("the service reference is kept");
    assert_eq!(backend.port, Some(443), "the port defaults to 443");

    let refused = services
        .create(
            &PostParams::default(),
            &api_service(
                "metrics",
                json!({"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100}),
            ),
        )
        .await
        .expect_err("a name that is not version.group is invalid");
    let kube::Error::Api(status) = refused else {
        panic!("expected a Status, got {refused:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("metadata.name")
            && status.message.contains("v1beta1.metrics.k8s.io"),
        "{}",
        status.message
    );

    // Availability is reported through the status subresource.
    services
        .patch_status(
            "v1beta1.metrics.k8s.io",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{
                "type": "Available", "status": "False", "reason": "MissingEndpoints",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }]}})),
        )
        .await
        .expect("the status is patched");

    let url = format!("http://{addr}");
    let resources = kubectl(
        &url,
        &["api-resources", "--api-group=apiregistration.k8s.io"],
    );
    assert!(
        rows(&resources).iter().any(|r| *r
            == [
                "apiservices",
                "apiregistration.k8s.io/v1",
                "false",
                "APIService"
            ]),
        "{resources}"
    );
    let table = kubectl(&url, &["get", "apiservices"]);
    let lines = rows(&table);
    assert_eq!(lines[0], ["NAME", "SERVICE", "AVAILABLE", "AGE"], "{table}");
    assert_eq!(
        lines[1][..4],
        [
            "v1beta1.metrics.k8s.io",
            "kube-system/metrics-server",
            "False",
            "(MissingEndpoints)"
        ],
        "{table}"
    );
    server.shutdown();
}
