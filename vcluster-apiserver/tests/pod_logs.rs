//! `kubectl logs` against the server: the pod and container are checked as
//! kube-apiserver checks them, the bytes come from the configured
//! `PodLogs` source, `--limit-bytes` and RBAC on `pods/log` hold, and a
//! server without a source says so.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;
use vcluster_apiserver::error::ApiError;
use vcluster_apiserver::logs::{LogStream, PodLogRequest, PodLogs};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;

/// Three lines naming the pod and container, and how they were asked for.
struct ThreeLines;

#[async_trait]
impl PodLogs for ThreeLines {
    async fn logs(&self, request: PodLogRequest) -> Result<LogStream, ApiError> {
        let lines: Vec<Result<Bytes, std::io::Error>> = (1..=3)
            .map(|i| {
                Ok(Bytes::from(format!(
                    "{}/{} {} line {i} follow={} tail={:?}\n",
                    request.namespace,
                    request.pod_name,
                    request.container,
                    request.options.follow,
                    request.options.tail_lines,
                )))
            })
            .collect();
        Ok(Box::pin(futures::stream::iter(lines)))
    }
}

async fn with_pod(t: &Cluster) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}, {"name": "proxy", "image": "envoy"}]},
    }))
    .expect("a valid pod");
    Api::<Pod>::namespaced(t.server.client(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
}

fn with_source() -> Options {
    Options {
        configure: Box::new(|config| config.pod_logs = Some(Arc::new(ThreeLines))),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_reads_the_configured_source() {
    let t = Cluster::start_with(with_source()).await;
    with_pod(&t).await;

    let out = t.kubectl_ok(&["logs", "web", "-c", "proxy"]).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "default/web proxy line 1 follow=false tail=None",
            "default/web proxy line 2 follow=false tail=None",
            "default/web proxy line 3 follow=false tail=None",
        ]
    );
    let out = t
        .kubectl_ok(&["logs", "web", "-c", "app", "-f", "--tail=2"])
        .await;
    assert!(
        out.starts_with("default/web app line 1 follow=true tail=Some(2)\n"),
        "{out}"
    );
    let out = t
        .kubectl_ok(&["logs", "web", "-c", "app", "--limit-bytes=11"])
        .await;
    assert_eq!(out, "default/web");

    // kubectl picks the first container itself; other clients meet the
    // server's rule.
    let answer = t
        .raw("GET", "/api/v1/namespaces/default/pods/web/log", &[], b"")
        .await;
    assert_eq!(answer.status, 400);
    let status: serde_json::Value = serde_json::from_slice(&answer.body).expect("a Status");
    assert_eq!(
        status["message"],
        "a container name must be specified for pod web, choose one of: [app proxy]"
    );
    let err = t.kubectl_err(&["logs", "web", "-c", "db"]).await;
    assert!(
        err.contains("container db is not valid for pod web"),
        "{err}"
    );
    let err = t.kubectl_err(&["logs", "gone"]).await;
    assert!(err.contains("pods \"gone\" not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_source_logs_are_unavailable() {
    let t = Cluster::start().await;
    with_pod(&t).await;
    let err = t.kubectl_err(&["logs", "web", "-c", "app"]).await;
    assert!(err.contains("no source of container logs"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_logs_needs_get_on_pods_log() {
    let t = Cluster::start_with(Options {
        secure: true,
        ..with_source()
    })
    .await;
    with_pod(&t).await;
    t.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
    ])
    .await;
    t.kubectl_ok(&[
        "create",
        "rolebinding",
        "pod-reader",
        "--role=pod-reader",
        "--user=pat",
    ])
    .await;
    let pat = t.cert_kubeconfig("pat", "pat", &[]);
    let err = t.kubectl_err_as(&pat, &["logs", "web", "-c", "app"]).await;
    assert!(
        err.contains(
            "cannot get resource \"pods/log\" in API group \"\" in the namespace \"default\""
        ),
        "{err}"
    );
    // The built-in `view` role reads logs.
    t.kubectl_ok(&[
        "create",
        "rolebinding",
        "viewer",
        "--clusterrole=view",
        "--user=pat",
    ])
    .await;
    let out = t.kubectl_ok_as(&pat, &["logs", "web", "-c", "app"]).await;
    assert!(out.contains("default/web app line 1"), "{out}");
}
