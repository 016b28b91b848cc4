//! Admission webhooks called as kube-apiserver calls them: real webhook
//! servers over TLS on 127.0.0.1 (the test kit's `WebhookServer`, its CA
//! in `caBundle`), configured with Mutating/ValidatingWebhookConfigurations
//! through kube-rs, and writes through kube-rs and the real kubectl.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::pki::TestCa;
use vcluster_testkit::webhook::{Answer, WebhookServer};

/// A webhook on configmaps, reached at `client_config`.
fn hook(name: &str, client_config: Value, extra: Value) -> Value {
    let mut hook = json!({
        "name": name,
        "clientConfig": client_config,
        "rules": [{
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"],
        }],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(hook), Some(extra)) = (hook.as_object_mut(), extra.as_object()) {
        hook.extend(extra.clone());
    }
    hook
}

/// `clientConfig` for `server`'s `path`.
fn at(server: &WebhookServer, path: &str) -> Value {
    json!({"url": server.url(path), "caBundle": server.ca_bundle()})
}

async fn validating(cluster: &Cluster, name: &str, hooks: Vec<Value>) {
    let api: Api<ValidatingWebhookConfiguration> = cluster.cluster_api();
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": hooks,
    });
    let config = serde_json::from_value(config).expect("a configuration");
    api.create(&PostParams::default(), &config)
        .await
        .expect("create the validating configuration");
}

async fn mutating(cluster: &Cluster, name: &str, hooks: Vec<Value>) {
    let api: Api<MutatingWebhookConfiguration> = cluster.cluster_api();
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": hooks,
    });
    let config = serde_json::from_value(config).expect("a configuration");
    api.create(&PostParams::default(), &config)
        .await
        .expect("create the mutating configuration");
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("a configmap")
}

/// The `Status` of a refused kube-rs call.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutating_webhook_patches_what_is_created() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::patch(
            &review,
            json!([{"op": "add", "path": "/metadata/labels", "value": {"patched": "yes"}}]),
        )
    })
    .await;
    let cluster = Cluster::start().await;
    cluster.create_namespace("team").await;
    mutating(
        &cluster,
        "label",
        vec![hook("label.example.com", at(&server, "/mutate"), json!({}))],
    )
    .await;

    let api: Api<ConfigMap> = cluster.api("team");
    let created = api
        .create(&PostParams::default(), &configmap("a"))
        .await
        .expect("created");
    assert_eq!(
        created.metadata.labels.unwrap_or_default()["patched"],
        "yes"
    );
    let stored = cluster
        .kubectl_ok(&[
            "get",
            "configmap",
            "a",
            "-n",
            "team",
            "-o",
            "jsonpath={.metadata.labels.patched}",
        ])
        .await;
    assert_eq!(stored, "yes");

    // What the webhook saw: upstream's AdmissionReview.
    let review = &server.received()[0];
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    let request = &review["request"];
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(request["namespace"], "team");
    assert_eq!(request["name"], "a");
    assert_eq!(
        request["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        request["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(request["object"]["data"]["k"], "v");
    assert_eq!(request["oldObject"], Value::Null);
    assert_eq!(request["dryRun"], false);
    assert_eq!(request["options"]["kind"], "CreateOptions");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validating_webhook_denies_with_its_message_and_warns() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| {
        let name = review["request"]["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("");
        if name == "bad" {
            Answer::deny(&review, "bad names are not welcome", 403)
        } else {
            Answer::review(
                &review,
                json!({"allowed": true, "warnings": ["think twice"]}),
            )
        }
    })
    .await;
    let cluster = Cluster::start().await;
    cluster.create_namespace("team").await;
    validating(
        &cluster,
        "names",
        vec![hook(
            "names.example.com",
            at(&server, "/validate"),
            json!({}),
        )],
    )
    .await;

    let api: Api<ConfigMap> = cluster.api("team");
    let status = refusal(api.create(&PostParams::default(), &configmap("bad")).await);
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "admission webhook \"names.example.com\" denied the request: bad names are not welcome"
    );
    // Nothing half-written: the denied object is not stored.
    assert!(api.get_opt("bad").await.expect("read").is_none());

    // kubectl prints the denial, and an admitted write's warning.
    let file = cluster.write_file(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad, namespace: team}\n",
    );
    let stderr = cluster
        .kubectl_err(&["create", "-f", file.to_str().unwrap_or_default()])
        .await;
    assert!(
        stderr.contains(
            "admission webhook \"names.example.com\" denied the request: bad names are not welcome"
        ),
        "{stderr}"
    );
    let output = cluster
        .kubectl(&[
            "create",
            "configmap",
            "good",
            "-n",
            "team",
            "--from-literal=k=v",
        ])
        .await;
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Warning: think twice"), "{stderr}");

    // Deletes go to the webhook too: a denied delete leaves the object.
    let deletes = WebhookServer::start(&["127.0.0.1"], |review| {
        if review["request"]["operation"] == "DELETE" {
            Answer::deny(&review, "keep it", 403)
        } else {
            Answer::allow(&review)
        }
    })
    .await;
    validating(
        &cluster,
        "keep",
        vec![hook("keep.example.com", at(&deletes, "/"), json!({}))],
    )
    .await;
    let status = refusal(api.delete("good", &DeleteParams::default()).await);
    assert_eq!(
        status.message,
        "admission webhook \"keep.example.com\" denied the request: keep it"
    );
    assert!(api.get_opt("good").await.expect("read").is_some());
    let delete = deletes
        .received()
        .into_iter()
        .find(|r| r["request"]["operation"] == "DELETE")
        .expect("the delete was reviewed");
    assert_eq!(delete["request"]["oldObject"]["metadata"]["name"], "good");
    assert_eq!(delete["request"]["object"], Value::Null);
    deletes.stop().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_policy_decides_for_broken_down_and_slow_webhooks() {
    let garbage =
        WebhookServer::start(&["127.0.0.1"], |_| Answer::Raw("not a review".into())).await;
    let slow = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::After(
            std::time::Duration::from_secs(3),
            Box::new(Answer::allow(&review)),
        )
    })
    .await;
    let down = WebhookServer::start(&["127.0.0.1"], |review| Answer::allow(&review)).await;
    let down_config = at(&down, "/");
    down.stop().await;
    let cluster = Cluster::start().await;
    let api: Api<ConfigMap> = cluster.api("default");

    let cases = [
        (
            "garbage",
            at(&garbage, "/"),
            json!({}),
            "received invalid webhook response",
        ),
        (
            "down",
            down_config,
            json!({}),
            "failed to call webhook: Post",
        ),
        (
            "slow",
            at(&slow, "/"),
            json!({"timeoutSeconds": 1}),
            "context deadline exceeded",
        ),
    ];
    for (name, client, extra, why) in cases {
        let hook_name = format!("{name}.example.com");
        let config = format!("{name}-fail");
        let mut fail = extra.clone();
        fail["failurePolicy"] = json!("Fail");
        validating(
            &cluster,
            &config,
            vec![hook(&hook_name, client.clone(), fail)],
        )
        .await;
        let status = refusal(api.create(&PostParams::default(), &configmap(name)).await);
        assert_eq!(status.code, 500, "{name}: {}", status.message);
        assert!(
            status.message.starts_with(&format!(
                "Internal error occurred: failed calling webhook \"{hook_name}\": "
            )) && status.message.contains(why),
            "{name}: {}",
            status.message
        );
        assert!(
            api.get_opt(name).await.expect("read").is_none(),
            "{name} stored"
        );
        let configs: Api<ValidatingWebhookConfiguration> = cluster.cluster_api();
        configs
            .delete(&config, &DeleteParams::default())
            .await
            .expect("delete the configuration");

        // The same webhook with `Ignore`: the write goes through.
        let mut ignore = extra;
        ignore["failurePolicy"] = json!("Ignore");
        validating(
            &cluster,
            &format!("{name}-ignore"),
            vec![hook(&hook_name, client, ignore)],
        )
        .await;
        api.create(&PostParams::default(), &configmap(name))
            .await
            .unwrap_or_else(|e| panic!("{name} with Ignore: {e}"));
        configs
            .delete(&format!("{name}-ignore"), &DeleteParams::default())
            .await
            .expect("delete the configuration");
    }
    garbage.stop().await;
    slow.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_ca_bundle_is_refused() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| Answer::allow(&review)).await;
    let other = TestCa::new();
    let cluster = Cluster::start().await;
    let wrong = json!({
        "url": server.url("/"),
        "caBundle": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &other.ca_pem),
    });
    validating(
        &cluster,
        "wrong-ca",
        vec![hook("ca.example.com", wrong, json!({}))],
    )
    .await;
    let api: Api<ConfigMap> = cluster.api("default");
    let status = refusal(api.create(&PostParams::default(), &configmap("a")).await);
    assert_eq!(status.code, 500);
    assert!(
        status
            .message
            .contains("failed calling webhook \"ca.example.com\""),
        "{}",
        status.message
    );
    assert!(status.message.contains("certificate"), "{}", status.message);
    // The webhook never got a request.
    assert!(server.received().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_and_match_conditions_pick_what_a_webhook_sees() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::deny(&review, "selected", 400)
    })
    .await;
    let cluster = Cluster::start().await;
    let client = cluster.client();
    for (name, labels) in [("watched", json!({"watch": "yes"})), ("free", json!({}))] {
        let ns: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                .expect("ns");
        Api::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    validating(
        &cluster,
        "selected",
        vec![
            hook("ns.example.com", at(&server, "/ns"), json!({"namespaceSelector": {"matchLabels": {"watch": "yes"}}})),
            hook(
                "obj.example.com",
                at(&server, "/obj"),
                json!({"objectSelector": {"matchExpressions": [{"key": "checked", "operator": "Exists"}]}}),
            ),
            hook(
                "cond.example.com",
                at(&server, "/cond"),
                json!({"matchConditions": [{"name": "picked", "expression": "object.metadata.name == 'picked'"}]}),
            ),
        ],
    )
    .await;
    let watched: Api<ConfigMap> = cluster.api("watched");
    let free: Api<ConfigMap> = cluster.api("free");
    let status = refusal(
        watched
            .create(&PostParams::default(), &configmap("a"))
            .await,
    );
    assert!(
        status.message.contains("\"ns.example.com\""),
        "{}",
        status.message
    );
    free.create(&PostParams::default(), &configmap("a"))
        .await
        .expect("not selected");
    let mut checked = configmap("b");
    checked.metadata.labels = Some([("checked".to_owned(), "1".to_owned())].into());
    let status = refusal(free.create(&PostParams::default(), &checked).await);
    assert!(
        status.message.contains("\"obj.example.com\""),
        "{}",
        status.message
    );
    // matchConditions (CEL): only the object they pick is sent.
    let status = refusal(
        free.create(&PostParams::default(), &configmap("picked"))
            .await,
    );
    assert!(
        status.message.contains("\"cond.example.com\""),
        "{}",
        status.message
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_calls_only_webhooks_without_side_effects() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| Answer::allow(&review)).await;
    let cluster = Cluster::start().await;
    validating(
        &cluster,
        "effects",
        vec![hook(
            "effects.example.com",
            at(&server, "/"),
            json!({"sideEffects": "NoneOnDryRun"}),
        )],
    )
    .await;
    let api: Api<ConfigMap> = cluster.api("default");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&dry, &configmap("a"))
        .await
        .expect("dry run admitted");
    assert_eq!(server.received()[0]["request"]["dryRun"], true);
    assert!(api.get_opt("a").await.expect("read").is_none());

    // v1 leaves only `None` and `NoneOnDryRun`: a webhook with side
    // effects cannot be configured, so no dry run can reach one.
    let configs: Api<ValidatingWebhookConfiguration> = cluster.cluster_api();
    let mut some = hook("some.example.com", at(&server, "/"), json!({}));
    some["sideEffects"] = json!("Some");
    let config = serde_json::from_value(json!({"metadata": {"name": "some"}, "webhooks": [some]}))
        .expect("a configuration");
    let status = refusal(configs.create(&PostParams::default(), &config).await);
    assert_eq!(status.code, 422);
    assert!(status.message.contains("sideEffects"), "{}", status.message);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_if_needed_webhook_is_called_again_after_a_later_change() {
    // The first webhook stamps `first`; the second one adds `second`,
    // which changes what the first one saw.
    let first = WebhookServer::start(&["127.0.0.1"], |review| {
        let labels = &review["request"]["object"]["metadata"]["labels"];
        let patch = if labels.is_object() {
            json!([{"op": "add", "path": "/metadata/labels/first", "value": "x"}])
        } else {
            json!([{"op": "add", "path": "/metadata/labels", "value": {"first": "x"}}])
        };
        Answer::patch(&review, patch)
    })
    .await;
    let second = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::patch(
            &review,
            json!([{"op": "add", "path": "/metadata/labels/second", "value": "y"}]),
        )
    })
    .await;
    let cluster = Cluster::start().await;
    mutating(
        &cluster,
        "a-first",
        vec![hook(
            "first.example.com",
            at(&first, "/"),
            json!({"reinvocationPolicy": "IfNeeded"}),
        )],
    )
    .await;
    mutating(
        &cluster,
        "b-second",
        vec![hook("second.example.com", at(&second, "/"), json!({}))],
    )
    .await;
    let api: Api<ConfigMap> = cluster.api("default");
    let created = api
        .create(&PostParams::default(), &configmap("a"))
        .await
        .expect("created");
    let labels = created.metadata.labels.unwrap_or_default();
    assert_eq!(
        (labels["first"].as_str(), labels["second"].as_str()),
        ("x", "y")
    );
    let calls = first.received();
    assert_eq!(
        calls.len(),
        2,
        "called once, then again after the second webhook"
    );
    assert_eq!(
        calls[1]["request"]["object"]["metadata"]["labels"]["second"],
        "y"
    );
    assert_eq!(second.received().len(), 1);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_behind_a_service_is_reached_through_its_endpoints() {
    let server = WebhookServer::start(&["hook.hooks.svc"], |review| {
        Answer::deny(&review, "via the service", 403)
    })
    .await;
    let cluster = Cluster::start().await;
    cluster.create_namespace("hooks").await;
    let client = cluster.client();
    // A selectorless service and the slice that points it at the server.
    let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "hook", "namespace": "hooks"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": server.addr().port()}]},
    }))
    .expect("service");
    Api::namespaced(client.clone(), "hooks")
        .create(&PostParams::default(), &service)
        .await
        .expect("service");
    let slice: k8s_openapi::api::discovery::v1::EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "hook-1", "namespace": "hooks", "labels": {"kubernetes.io/service-name": "hook"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": server.addr().port(), "protocol": "TCP"}],
    }))
    .expect("slice");
    Api::namespaced(client.clone(), "hooks")
        .create(&PostParams::default(), &slice)
        .await
        .expect("slice");
    let by_service = json!({
        "service": {"namespace": "hooks", "name": "hook", "path": "/check", "port": 443},
        "caBundle": server.ca_bundle(),
    });
    validating(
        &cluster,
        "svc",
        vec![hook("svc.example.com", by_service, json!({}))],
    )
    .await;
    let api: Api<ConfigMap> = cluster.api("default");
    let status = refusal(api.create(&PostParams::default(), &configmap("a")).await);
    assert_eq!(
        status.message,
        "admission webhook \"svc.example.com\" denied the request: via the service"
    );
    assert_eq!(server.received().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_speaks_v1beta1_gets_a_v1beta1_review() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::deny(&review, "old reviews work too", 422)
    })
    .await;
    let cluster = Cluster::start().await;
    validating(
        &cluster,
        "old",
        vec![hook(
            "old.example.com",
            at(&server, "/"),
            json!({"admissionReviewVersions": ["v1beta1"]}),
        )],
    )
    .await;
    let api: Api<ConfigMap> = cluster.api("default");
    let status = refusal(api.create(&PostParams::default(), &configmap("a")).await);
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "admission webhook \"old.example.com\" denied the request: old reviews work too"
    );
    assert_eq!(
        server.received()[0]["apiVersion"],
        "admission.k8s.io/v1beta1"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivalent_match_policy_sees_the_request_at_the_version_it_names() {
    let server = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::patch(
            &review,
            json!([{"op": "add", "path": "/metadata/labels", "value": {"seen": "v2"}}]),
        )
    })
    .await;
    let cluster = Cluster::start().await;
    let rule = |policy: &str| {
        json!({
            "matchPolicy": policy,
            "rules": [{
                "operations": ["CREATE"], "apiGroups": ["autoscaling"],
                "apiVersions": ["v2"], "resources": ["horizontalpodautoscalers"],
            }],
        })
    };
    mutating(
        &cluster,
        "equivalent",
        vec![
            hook("exact.example.com", at(&server, "/exact"), rule("Exact")),
            hook(
                "equivalent.example.com",
                at(&server, "/equivalent"),
                rule("Equivalent"),
            ),
        ],
    )
    .await;
    // Created at autoscaling/v1: only the Equivalent webhook is called,
    // at v2, and its patch lands on the v1 object.
    let api: Api<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler> =
        cluster.api("default");
    let hpa = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    }))
    .expect("an hpa");
    let created = api
        .create(&PostParams::default(), &hpa)
        .await
        .expect("created");
    assert_eq!(created.metadata.labels.unwrap_or_default()["seen"], "v2");
    let reviews = server.received();
    assert_eq!(reviews.len(), 1, "only the Equivalent webhook");
    let request = &reviews[0]["request"];
    assert_eq!(request["kind"]["version"], "v2");
    assert_eq!(request["requestKind"]["version"], "v1");
    assert_eq!(request["object"]["apiVersion"], "autoscaling/v2");
    assert_eq!(request["object"]["spec"]["maxReplicas"], 3);
    server.stop().await;
}
