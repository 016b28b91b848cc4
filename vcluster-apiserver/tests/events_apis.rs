//! Both events APIs are one set of objects, as in kube-apiserver: what a
//! controller records through `events.k8s.io/v1` (kube-rs' `Recorder`)
//! shows in `kubectl get events` and `kubectl describe`, core events read
//! through `events.k8s.io/v1`, and selectors, watches and deletes work
//! across the two.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Pod};
use k8s_openapi::api::events::v1::Event as NewerEvent;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::within;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }))
    .expect("a valid pod")
}

fn core_event(name: &str, pod: &Pod, message: &str) -> CoreEvent {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "namespace": "default",
            "name": pod.metadata.name, "uid": pod.metadata.uid,
        },
        "reason": "Pulled", "message": message, "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2026-11-25T10:00:00Z", "lastTimestamp": "2026-11-25T10:00:00Z",
        "count": 1,
    }))
    .expect("a valid event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_events_apis_show_the_same_events() {
    let t = Cluster::start().await;
    let client = t.server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = pods
        .create(&PostParams::default(), &pod("web"))
        .await
        .expect("create the pod");
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let newer: Api<NewerEvent> = Api::namespaced(client.clone(), "default");

    // A controller records through events.k8s.io/v1, twice (a series).
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "example.com/operator".into(),
            instance: Some("operator-0".into()),
        },
    );
    let recorded = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("synced the pod".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = web.object_ref(&());
    for _ in 0..2 {
        recorder
            .publish(&recorded, &reference)
            .await
            .expect("publish");
    }

    // The core API sees it, with the core field names.
    let core_view = core.list(&ListParams::default()).await.expect("list");
    let synced = core_view
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Synced"))
        .expect("the recorded event through core/v1");
    assert_eq!(synced.message.as_deref(), Some("synced the pod"));
    assert_eq!(synced.involved_object.name.as_deref(), Some("web"));
    assert_eq!(
        synced.reporting_component.as_deref(),
        Some("example.com/operator")
    );
    assert_eq!(synced.series.as_ref().and_then(|s| s.count), Some(2));

    // kubectl shows it, as it would on a real cluster.
    let listed = t.kubectl_ok(&["get", "events", "-n", "default"]).await;
    assert!(listed.contains("synced the pod"), "{listed}");
    let described = t.kubectl_ok(&["describe", "pod", "web"]).await;
    assert!(
        described.contains("Synced") && described.contains("synced the pod"),
        "{described}"
    );

    // A core event reads through events.k8s.io/v1, selectable by the
    // newer API's field names.
    core.create(
        &PostParams::default(),
        &core_event("web.pulled", &web, "pulled nginx"),
    )
    .await
    .expect("create a core event");
    let about_web = newer
        .list(&ListParams::default().fields("regarding.name=web,reason=Pulled"))
        .await
        .expect("list events.k8s.io");
    assert_eq!(about_web.items.len(), 1, "{:?}", about_web.items);
    let pulled = &about_web.items[0];
    assert_eq!(pulled.note.as_deref(), Some("pulled nginx"));
    assert_eq!(
        pulled.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );
    assert_eq!(
        pulled
            .deprecated_source
            .as_ref()
            .and_then(|s| s.host.as_deref()),
        Some("node-1")
    );
    assert_eq!(pulled.deprecated_count, Some(1));
    let selected = newer
        .list(&ListParams::default().fields("regarding.name=other"))
        .await
        .expect("list events.k8s.io");
    assert!(selected.items.is_empty());

    // A watch of events.k8s.io/v1 sees core writes in the newer form.
    let from = about_web
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let mut stream = newer
        .watch(&WatchParams::default().fields("regarding.name=web"), &from)
        .await
        .expect("watch")
        .boxed();
    core.create(
        &PostParams::default(),
        &core_event("web.started", &web, "started the container"),
    )
    .await
    .expect("create another core event");
    let seen = within("the core event on the events.k8s.io watch", async {
        while let Some(event) = stream.try_next().await.expect("watch stream") {
            if let WatchEvent::Added(event) = event {
                return event;
            }
        }
        panic!("the watch ended");
    })
    .await;
    assert_eq!(seen.note.as_deref(), Some("started the container"));
    assert_eq!(seen.metadata.name.as_deref(), Some("web.started"));

    // One object: deleted through one API, gone from the other.
    newer
        .delete("web.pulled", &DeleteParams::default())
        .await
        .expect("delete through events.k8s.io");
    assert!(core.get_opt("web.pulled").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_deletes_its_events_once() {
    let t = Cluster::start().await;
    let client = t.server.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("doomed".into());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    let web = pods
        .create(&PostParams::default(), &pod("web"))
        .await
        .expect("create the pod");
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "doomed");
    core.create(&PostParams::default(), &core_event("e1", &web, "one"))
        .await
        .expect("create an event");
    let out = t
        .kubectl_ok(&["delete", "namespace", "doomed", "--timeout=20s"])
        .await;
    assert!(out.contains("deleted"), "{out}");
    assert!(namespaces.get_opt("doomed").await.expect("get").is_none());
}
