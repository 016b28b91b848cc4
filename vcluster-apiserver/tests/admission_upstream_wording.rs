//! The same webhook and policy configured on our API server and on a real
//! kube-apiserver 1.34 (the test kit's `RealHost`): a denial, a broken
//! webhook with `failurePolicy: Fail`, and a ValidatingAdmissionPolicy
//! denial must come back with the same code, reason and message (up to
//! the transport error text Go's HTTP client words its own way).

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::Api;
use serde_json::json;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::eventually_within;
use vcluster_testkit::real_host::RealHost;
use vcluster_testkit::webhook::{Answer, WebhookServer};

/// Sets up the same objects on `client`'s server.
async fn configure(client: &kube::Client, deny: &WebhookServer, garbage: &WebhookServer) {
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "wording"}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let hook = |name: &str, server: &WebhookServer, resource: &str| {
        json!({
            "name": name,
            "clientConfig": {"url": server.url("/"), "caBundle": server.ca_bundle()},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": [resource]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "wording"}},
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        })
    };
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "wording"},
        "webhooks": [hook("deny.example.com", deny, "configmaps"), hook("garbage.example.com", garbage, "secrets")],
    }))
    .expect("config");
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &config)
        .await
        .expect("webhook configuration");
    let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": "wording"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["serviceaccounts"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "wording"}},
            },
            "validations": [{"expression": "object.metadata.name.startsWith('ok')", "message": "names start with ok"}],
        },
    }))
    .expect("policy");
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .expect("policy");
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": "wording"},
        "spec": {"policyName": "wording", "validationActions": ["Deny"]},
    }))
    .expect("binding");
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
}

/// The refusal of creating `object` in `wording`, once the server acts
/// on its configuration (kube-apiserver takes a moment).
async fn refusal<K>(client: &kube::Client, object: &K) -> kube::core::Status
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), "wording");
    let name = object.meta().name.clone().unwrap_or_default();
    eventually_within(Duration::from_secs(30), "the write is refused", || async {
        match api.create(&PostParams::default(), object).await {
            Err(kube::Error::Api(status)) => Some(*status),
            Ok(_) => {
                let _ = api.delete(&name, &Default::default()).await;
                None
            }
            Err(_) => None,
        }
    })
    .await
}

fn object<K: serde::de::DeserializeOwned>(name: &str) -> K {
    serde_json::from_value(json!({"metadata": {"name": name}})).expect("an object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_read_as_kube_apiserver_words_them() {
    let deny = WebhookServer::start(&["127.0.0.1"], |review| {
        Answer::deny(&review, "configmaps are closed", 403)
    })
    .await;
    let garbage = WebhookServer::start(&["127.0.0.1"], |_| Answer::Raw("{}".into())).await;
    let host = RealHost::shared();
    let cluster = Cluster::start().await;
    let sides = [
        ("ours", cluster.client()),
        ("kube-apiserver", host.client()),
    ];
    for (_, client) in &sides {
        configure(client, &deny, &garbage).await;
    }
    let mut answers = Vec::new();
    for (_, client) in &sides {
        answers.push([
            (
                "configmaps",
                refusal::<ConfigMap>(client, &object("c")).await,
            ),
            ("secrets", refusal::<Secret>(client, &object("s")).await),
            (
                "serviceaccounts",
                refusal::<ServiceAccount>(client, &object("bad")).await,
            ),
        ]);
    }
    // Go's JSON decoder words a bad body its own way: compare up to it.
    let cut = |m: &str| match m.find("received invalid webhook response: ") {
        Some(at) => m[..at + "received invalid webhook response: ".len()].to_owned(),
        None => m.to_owned(),
    };
    for ((resource, ours), (_, upstream)) in answers[0].iter().zip(answers[1].iter()) {
        assert_eq!(
            (ours.code, &ours.reason),
            (upstream.code, &upstream.reason),
            "{resource}: ours {ours:?}, upstream {upstream:?}"
        );
        assert_eq!(cut(&ours.message), cut(&upstream.message), "{resource}");
    }
    deny.stop().await;
    garbage.stop().await;
}
