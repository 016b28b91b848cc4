//! A CRD served at two versions with `conversion.strategy: Webhook`: a
//! real conversion webhook (the test kit's `WebhookServer` over TLS)
//! converts objects written and read at the version that is not stored,
//! and its failure fails the request with upstream's wording.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, PostParams, WatchEvent, WatchParams,
};
use kube::Api;
use serde_json::{json, Value};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::eventually;
use vcluster_testkit::webhook::{Answer, WebhookServer};

/// v1 keeps `spec.count`, v2 calls it `spec.total`.
fn convert(object: &Value, desired: &str) -> Value {
    let mut object = object.clone();
    let spec = object["spec"].as_object().cloned().unwrap_or_default();
    let (from, to) = if desired.ends_with("/v2") {
        ("count", "total")
    } else {
        ("total", "count")
    };
    let mut spec = spec;
    if let Some(value) = spec.remove(from) {
        spec.insert(to.into(), value);
    }
    object["spec"] = Value::Object(spec);
    object["apiVersion"] = json!(desired);
    object
}

fn widgets(cluster: &Cluster, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("stable.example.com", version, "Widget");
    Api::namespaced_with(cluster.client(), "default", &ApiResource::from_gvk(&gvk))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_converted_by_the_crd_webhook() {
    let broken = Arc::new(AtomicBool::new(false));
    let fail = broken.clone();
    let server = WebhookServer::start(&["127.0.0.1"], move |review| {
        let request = &review["request"];
        let desired = request["desiredAPIVersion"].as_str().unwrap_or("");
        let result = if fail.load(Ordering::SeqCst) {
            json!({"status": "Failure", "message": "cannot convert today"})
        } else {
            json!({"status": "Success"})
        };
        let converted: Vec<Value> = request["objects"]
            .as_array()
            .map(|objects| objects.iter().map(|o| convert(o, desired)).collect())
            .unwrap_or_default();
        Answer::Json(json!({
            "apiVersion": review["apiVersion"].clone(),
            "kind": "ConversionReview",
            "response": {"uid": request["uid"].clone(), "result": result, "convertedObjects": converted},
        }))
    })
    .await;
    let cluster = Cluster::start().await;
    let open = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "widgets.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": open},
                {"name": "v2", "served": true, "storage": false, "schema": open},
            ],
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"url": server.url("/convert"), "caBundle": server.ca_bundle()},
                    "conversionReviewVersions": ["v1"],
                },
            },
        },
    }))
    .expect("a CRD");
    let crds: Api<CustomResourceDefinition> = cluster.cluster_api();
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create the CRD");
    let v2 = widgets(&cluster, "v2");
    let v1 = widgets(&cluster, "v1");
    eventually("the CRD is served", || async {
        v2.list(&Default::default()).await.ok()
    })
    .await;

    // Written at v2: stored at v1 through the webhook.
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stable.example.com/v2", "kind": "Widget",
        "metadata": {"name": "w", "labels": {"app": "demo"}}, "spec": {"total": 3},
    }))
    .expect("a widget");
    let created = v2
        .create(&PostParams::default(), &widget)
        .await
        .expect("created at v2");
    assert_eq!(created.data["spec"]["total"], 3);
    let stored = v1.get("w").await.expect("read at the storage version");
    assert_eq!(stored.data["spec"], json!({"count": 3}));
    // Read at v2: converted back, metadata kept.
    let read = v2.get("w").await.expect("read at v2");
    assert_eq!(read.data["spec"], json!({"total": 3}));
    assert_eq!(read.metadata.uid, stored.metadata.uid);
    assert_eq!(read.metadata.labels.unwrap_or_default()["app"], "demo");
    let listed = v2.list(&Default::default()).await.expect("list at v2");
    assert_eq!(listed.items[0].data["spec"], json!({"total": 3}));
    // Watched at v2: an update made at v1 arrives converted.
    let since = read.metadata.resource_version.clone().unwrap_or_default();
    let mut events = v2
        .watch(&WatchParams::default(), &since)
        .await
        .expect("watch at v2")
        .boxed();
    let mut bumped = stored.clone();
    bumped.data["spec"] = json!({"count": 5});
    v1.replace("w", &PostParams::default(), &bumped)
        .await
        .expect("updated at v1");
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.try_next())
        .await
        .expect("an event in time")
        .expect("a watch event")
        .expect("the stream goes on");
    let WatchEvent::Modified(modified) = event else {
        panic!("expected MODIFIED, got {event:?}");
    };
    assert_eq!(modified.data["spec"], json!({"total": 5}));
    assert_eq!(
        modified.types.map(|t| t.api_version).unwrap_or_default(),
        "stable.example.com/v2"
    );
    drop(events);
    let reviews = server.received();
    assert_eq!(reviews[0]["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(
        reviews[0]["request"]["desiredAPIVersion"],
        "stable.example.com/v1"
    );

    // A failing webhook fails the read, with upstream's wording.
    broken.store(true, Ordering::SeqCst);
    let refused = v2.get("w").await;
    let Err(kube::Error::Api(status)) = refused else {
        panic!("expected a failure, got {refused:?}");
    };
    assert_eq!(status.code, 500);
    assert!(
        status.message.contains(
            "conversion webhook for stable.example.com/v1, Kind=Widget failed: response.result.status was 'Failure', not 'Success'"
        ),
        "{}",
        status.message
    );
    // The storage version needs no webhook.
    v1.get("w").await.expect("read at v1 without the webhook");
    server.stop().await;
}
