//! `/metrics`: the server's gauges and the embedder's extra text, for
//! authorized users only.

use std::sync::Arc;

use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_servers_gauges_and_the_embedders_text() {
    let t = Cluster::start_with(Options {
        secure: true,
        configure: Box::new(|config| {
            config.metrics.push(Arc::new(|| "embedder_up 1".to_owned()));
        }),
        ..Options::default()
    })
    .await;
    let text = t.kubectl_ok(&["get", "--raw", "/metrics"]).await;
    assert!(
        text.contains("# TYPE vcluster_apiserver_watchers gauge\n"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("vcluster_apiserver_dispatched_revision ")),
        "{text}"
    );
    assert!(text.ends_with("embedder_up 1\n"), "{text}");

    // Nobody unauthenticated reads them.
    let anonymous = t.anonymous_kubeconfig();
    let err = t
        .kubectl_err_as(&anonymous, &["get", "--raw", "/metrics"])
        .await;
    assert!(err.contains("Unauthorized"), "{err}");
}
