//! kube-rs against the server over real TCP: CRUD and its errors,
//! pagination, selectors, cluster-scoped kinds, the status subresource,
//! watches (every event, bookmarks, streaming lists), the runtime watcher's
//! recovery from `410 Gone`, and slow watch clients being cut off.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vcluster_apiserver::storage::{MemoryStorage, Storage};
use vcluster_apiserver::watch_cache::WatchLimits;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::eventually;
use vcluster_testkit::within;

fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    serde_json::from_value(vcluster_testkit::http::pod_json(name, labels)).expect("a valid pod")
}

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_owned());
    cm.data = Some(data);
    cm
}

fn rv<K: ResourceExt>(object: &K) -> u64 {
    object
        .resource_version()
        .expect("a resourceVersion")
        .parse()
        .expect("a numeric resourceVersion")
}

/// The `Status` of a failed call: (code, reason).
fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone(), status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }))
    .expect("a valid deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_create_get_list_replace_delete() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");

    let created = pods
        .create(&PostParams::default(), &pod("web", &[("app", "web")]))
        .await
        .unwrap();
    assert!(created.uid().is_some_and(|u| !u.is_empty()));
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );

    let got = pods.get("web").await.unwrap();
    assert_eq!(got.uid(), created.uid());
    assert_eq!(rv(&got), rv(&created));

    let listed = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        ["web"]
    );
    let list_rv: u64 = listed
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_rv >= rv(&created));

    // Replace: a label change is stored, the RV moves, the uid stays, and
    // metadata changes do not bump the generation.
    let mut changed = got.clone();
    changed
        .labels_mut()
        .insert("tier".into(), "frontend".into());
    let replaced = pods
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        replaced.labels().get("tier").map(String::as_str),
        Some("frontend")
    );
    assert!(rv(&replaced) > rv(&got));
    assert_eq!(replaced.uid(), created.uid());
    assert_eq!(replaced.metadata.generation, Some(1));
    assert_eq!(
        t.stored("", "pods", Some("default"), "web").await.unwrap()["metadata"]["labels"]["tier"],
        "frontend"
    );

    // generateName.
    let mut generated = pod("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("batch-".into());
    let generated = pods
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = generated.name_any();
    assert!(
        name.starts_with("batch-") && name.len() == "batch-".len() + 5,
        "{name}"
    );

    // Dry run stores nothing.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    pods.create(&dry, &pod("dry", &[])).await.unwrap();
    assert!(pods.get_opt("dry").await.unwrap().is_none());

    // Delete returns the object, and it is gone.
    let deleted = pods.delete("web", &DeleteParams::default()).await.unwrap();
    let deleted = deleted.left().expect("the deleted pod");
    assert_eq!(deleted.uid(), created.uid());
    assert!(pods.get_opt("web").await.unwrap().is_none());
    let err = t
        .stored("", "pods", Some("default"), "web")
        .await
        .unwrap_err();
    assert_eq!(err.code.as_u16(), 404);
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<Vec<_>>(),
        [name]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_not_found_are_api_errors() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let first = pods
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .unwrap();

    let (code, reason, message) =
        api_error(pods.create(&PostParams::default(), &pod("web", &[])).await);
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(message, r#"pods "web" already exists"#);

    // Move the object on, then write with the first version: stale.
    let mut newer = first.clone();
    newer.labels_mut().insert("v".into(), "2".into());
    let newer = pods
        .replace("web", &PostParams::default(), &newer)
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.labels_mut().insert("v".into(), "stale".into());
    let (code, reason, message) =
        api_error(pods.replace("web", &PostParams::default(), &stale).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    let stored = pods.get("web").await.unwrap();
    assert_eq!(rv(&stored), rv(&newer), "the stale write stored nothing");
    assert_eq!(stored.labels().get("v").map(String::as_str), Some("2"));

    // Delete with a stale resourceVersion precondition is a conflict too.
    let stale_delete = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: first.resource_version(),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    let (code, reason, _) = api_error(pods.delete("web", &stale_delete).await);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(pods.get_opt("web").await.unwrap().is_some());

    // 404s.
    let (code, reason, message) = api_error(pods.get("nope").await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, r#"pods "nope" not found"#);
    let (code, reason, _) = api_error(pods.delete("nope", &DeleteParams::default()).await);
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    let (code, reason, _) = api_error(
        pods.replace("nope", &PostParams::default(), &pod("nope", &[]))
            .await,
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    let elsewhere: Api<Pod> = Api::namespaced(t.client(), "missing");
    let (code, reason, message) = api_error(
        elsewhere
            .create(&PostParams::default(), &pod("web", &[]))
            .await,
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
    assert_eq!(message, r#"namespaces "missing" not found"#);

    // 422 with causes for an invalid name.
    match pods
        .create(&PostParams::default(), &pod("Not_Valid", &[]))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.clone())
                .unwrap_or_default();
            assert_eq!(causes.len(), 1, "{causes:?}");
            assert_eq!(causes[0].field, "metadata.name");
            assert_eq!(causes[0].reason, "FieldValueInvalid");
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_are_one_consistent_snapshot() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let mut expected = BTreeSet::new();
    for i in 0..23 {
        let name = format!("pod-{i:02}");
        pods.create(&PostParams::default(), &pod(&name, &[("app", "paged")]))
            .await
            .unwrap();
        expected.insert(name);
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut snapshot_rv: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = ListParams::default().limit(5);
        if let Some(token) = &token {
            params = params.continue_token(token);
        }
        let page = pods.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 5);
        let page_rv = page.metadata.resource_version.clone().unwrap();
        match &snapshot_rv {
            None => snapshot_rv = Some(page_rv),
            Some(first) => assert_eq!(&page_rv, first, "every page is read at one revision"),
        }
        for item in &page.items {
            assert!(rv(item) <= snapshot_rv.as_deref().unwrap().parse().unwrap());
        }
        seen.extend(page.items.iter().map(|p| p.name_any()));
        // Writes between pages: none of them may show up in this list.
        let i = pages;
        pods.create(
            &PostParams::default(),
            &pod(&format!("pod-{i:02}-late"), &[]),
        )
        .await
        .unwrap();
        pods.delete(&format!("pod-{:02}", 22 - i), &DeleteParams::default())
            .await
            .unwrap();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => {
                let remaining = page
                    .metadata
                    .remaining_item_count
                    .expect("remainingItemCount");
                assert_eq!(remaining as usize, 23 - seen.len());
                token = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23, "no item twice: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let sorted = {
        let mut s = seen.clone();
        s.sort();
        s
    };
    assert_eq!(seen, sorted, "pages come in key order");

    // A fresh list sees the writes.
    let now = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(now.items.len(), 23);
    assert!(now.items.iter().any(|p| p.name_any() == "pod-01-late"));

    // A token for another resource, or garbage, is refused.
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    let first = pods.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    let (code, reason, _) = api_error(
        cms.list(&ListParams::default().limit(2).continue_token(&token))
            .await,
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors_filter_lists() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    for (name, labels) in [
        ("a", vec![("app", "web"), ("tier", "fe")]),
        ("b", vec![("app", "web"), ("tier", "be")]),
        ("c", vec![("app", "db")]),
    ] {
        pods.create(&PostParams::default(), &pod(name, &labels))
            .await
            .unwrap();
    }
    pods.patch_status(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .unwrap();
    let names = |list: kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items.iter().map(|p| p.name_any()).collect()
    };
    for (labels, fields, expected) in [
        (Some("app=web"), None, vec!["a", "b"]),
        (Some("app in (db, web),tier!=fe"), None, vec!["b", "c"]),
        (Some("tier"), None, vec!["a", "b"]),
        (Some("!tier"), None, vec!["c"]),
        (None, Some("status.phase=Running"), vec!["c"]),
        (None, Some("status.phase!=Running"), vec!["a", "b"]),
        (None, Some("metadata.name=a"), vec!["a"]),
        (Some("app=web"), Some("metadata.name!=a"), vec!["b"]),
        (
            None,
            Some("metadata.namespace=default"),
            vec!["a", "b", "c"],
        ),
        (None, Some("metadata.namespace=other"), vec![]),
    ] {
        let mut params = ListParams::default();
        if let Some(l) = labels {
            params = params.labels(l);
        }
        if let Some(f) = fields {
            params = params.fields(f);
        }
        assert_eq!(
            names(pods.list(&params).await.unwrap()),
            expected,
            "labels {labels:?} fields {fields:?}"
        );
    }
    // Paginated and filtered at once.
    let page = pods
        .list(&ListParams::default().labels("app=web").limit(1))
        .await
        .unwrap();
    assert_eq!(names(page.clone()), ["a"]);
    let page = pods
        .list(
            &ListParams::default()
                .labels("app=web")
                .limit(1)
                .continue_token(&page.metadata.continue_.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(names(page), ["b"]);

    let (code, reason, _) = api_error(
        pods.list(&ListParams::default().fields("spec.bogus=1"))
            .await,
    );
    assert_eq!((code, reason.as_str()), (400, "BadRequest"));
    let (code, _, _) = api_error(pods.list(&ListParams::default().labels("a in (")).await);
    assert_eq!(code, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_cluster_scoped() {
    let t = Cluster::start().await;
    let namespaces: Api<Namespace> = Api::all(t.client());
    let names: BTreeSet<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    );

    let mut ns = Namespace::default();
    ns.metadata.name = Some("team-a".into());
    ns.metadata.namespace = None;
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(
        created.namespace(),
        None,
        "cluster-scoped objects have none"
    );
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Active")
    );
    let got = namespaces.get("team-a").await.unwrap();
    assert_eq!(got.uid(), created.uid());

    // Objects can now live in it; all-namespace lists see them.
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "team-a");
    cms.create(
        &PostParams::default(),
        &config_map("settings", &[("a", "1")]),
    )
    .await
    .unwrap();
    let all: Api<ConfigMap> = Api::all(t.client());
    let listed = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|c| (c.namespace().unwrap(), c.name_any()))
            .collect::<Vec<_>>(),
        [("team-a".to_owned(), "settings".to_owned())]
    );

    // An invalid namespace name is a 422 (namespaces are DNS-1123 labels).
    let mut bad = Namespace::default();
    bad.metadata.name = Some("team.a".into());
    let (code, reason, _) = api_error(namespaces.create(&PostParams::default(), &bad).await);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));

    // System namespaces cannot be deleted; others can, with their content.
    let (code, reason, _) = api_error(namespaces.delete("default", &DeleteParams::default()).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    namespaces
        .delete("team-a", &DeleteParams::default())
        .await
        .unwrap();
    // The namespace goes once its content is gone, which the server's
    // namespace deletion does in the background.
    vcluster_testkit::eventually_gone("namespace team-a to go", &namespaces, "team-a").await;
    assert!(all
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_keeps_spec_and_status_apart() {
    let t = Cluster::start().await;
    let deployments: Api<Deployment> = Api::namespaced(t.client(), "default");
    let created = deployments
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // The main resource ignores status but takes spec (generation + 1).
    let mut main = created.clone();
    main.spec.as_mut().unwrap().replicas = Some(3);
    main.status = Some(serde_json::from_value(json!({"replicas": 42})).unwrap());
    let updated = deployments
        .replace("web", &PostParams::default(), &main)
        .await
        .unwrap();
    assert_eq!(updated.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(updated.metadata.generation, Some(2));
    assert_ne!(
        updated.status.as_ref().and_then(|s| s.replicas),
        Some(42),
        "status ignored by the main resource"
    );

    // The status subresource takes status and ignores spec and labels.
    let mut status_write = updated.clone();
    status_write.spec.as_mut().unwrap().replicas = Some(7);
    status_write
        .labels_mut()
        .insert("ignored".into(), "yes".into());
    status_write.status = Some(
        serde_json::from_value(json!({"replicas": 3, "readyReplicas": 2, "observedGeneration": 2}))
            .unwrap(),
    );
    let after_status = deployments
        .replace_status("web", &PostParams::default(), &status_write)
        .await
        .unwrap();
    let status = after_status.status.as_ref().unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(3), Some(2)));
    assert_eq!(after_status.spec.as_ref().unwrap().replicas, Some(3));
    assert!(!after_status.labels().contains_key("ignored"));
    assert_eq!(
        after_status.metadata.generation,
        Some(2),
        "status is not spec"
    );

    // Merge patches of status.
    let patched = deployments
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 3}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().unwrap().ready_replicas, Some(3));
    assert_eq!(patched.status.as_ref().unwrap().replicas, Some(3));
    assert_eq!(patched.spec.as_ref().unwrap().replicas, Some(3));
    let read = deployments.get_status("web").await.unwrap();
    assert_eq!(read.status.as_ref().unwrap().ready_replicas, Some(3));

    // A merge patch of the main resource leaves status alone.
    let patched = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}, "status": {"readyReplicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.as_ref().unwrap().replicas, Some(4));
    assert_eq!(patched.status.as_ref().unwrap().ready_replicas, Some(3));
    assert_eq!(patched.metadata.generation, Some(3));

    // Stale status writes conflict.
    let (code, reason, _) = api_error(
        deployments
            .replace_status("web", &PostParams::default(), &status_write)
            .await,
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    // Pods too: status through /status only.
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .unwrap();
    let mut running = created.clone();
    running.status.as_mut().unwrap().phase = Some("Running".into());
    let ignored = pods
        .replace("web", &PostParams::default(), &running)
        .await
        .unwrap();
    assert_eq!(
        ignored.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    assert_eq!(rv(&ignored), rv(&created), "a no-op update writes nothing");
    let running = pods
        .replace_status("web", &PostParams::default(), &running)
        .await
        .unwrap();
    assert_eq!(
        running.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_every_event_in_order() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let list = pods.list(&ListParams::default()).await.unwrap();
    let from = list.metadata.resource_version.unwrap();
    let stream = pods
        .watch(
            &WatchParams::default()
                .labels("app=stream")
                .disable_bookmarks(),
            &from,
        )
        .await
        .unwrap();
    let mut stream = stream.boxed();

    const N: usize = 12;
    let mut expected = Vec::new();
    for i in 0..N {
        let name = format!("p{i:02}");
        let created = pods
            .create(&PostParams::default(), &pod(&name, &[("app", "stream")]))
            .await
            .unwrap();
        expected.push(("ADDED", name.clone(), rv(&created)));
        let patched = pods
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"step": "1"}}})),
            )
            .await
            .unwrap();
        expected.push(("MODIFIED", name.clone(), rv(&patched)));
        // An object not selected by the watch: never seen.
        pods.create(&PostParams::default(), &pod(&format!("other{i}"), &[]))
            .await
            .unwrap();
        if i % 2 == 0 {
            pods.delete(&name, &DeleteParams::default()).await.unwrap();
            expected.push(("DELETED", name.clone(), 0));
        }
    }
    // Leaving the selection reads as DELETED, entering it as ADDED.
    pods.patch(
        "p01",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    expected.push(("DELETED", "p01".into(), 0));
    pods.patch(
        "other0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "stream"}}})),
    )
    .await
    .unwrap();
    expected.push(("ADDED", "other0".into(), 0));

    let mut got = Vec::new();
    let mut last_rv = from.parse::<u64>().unwrap();
    while got.len() < expected.len() {
        let event = within("the next watch event", stream.next())
            .await
            .expect("the watch stays open")
            .expect("a decodable event");
        let (kind, pod) = match event {
            WatchEvent::Added(p) => ("ADDED", p),
            WatchEvent::Modified(p) => ("MODIFIED", p),
            WatchEvent::Deleted(p) => ("DELETED", p),
            other => panic!("unexpected {other:?}"),
        };
        assert!(rv(&pod) > last_rv, "revisions increase");
        last_rv = rv(&pod);
        got.push((kind, pod.name_any(), rv(&pod)));
    }
    let strip = |v: &[(&'static str, String, u64)]| -> Vec<(&'static str, String)> {
        v.iter().map(|(k, n, _)| (*k, n.clone())).collect()
    };
    assert_eq!(strip(&got), strip(&expected));
    // ADDED and MODIFIED carry exactly the revision of the write.
    for ((kind, _, want), (_, _, have)) in expected.iter().zip(&got) {
        if *want != 0 {
            assert_eq!(want, have, "{kind}");
        }
    }

    // Re-watching from a revision in the middle replays exactly the rest.
    let (_, _, middle) = got[got.len() / 2].clone();
    let replay = pods
        .watch(
            &WatchParams::default()
                .labels("app=stream")
                .disable_bookmarks(),
            &middle.to_string(),
        )
        .await
        .unwrap();
    let replayed: Vec<u64> = within(
        "the replay",
        replay
            .take(got.len() - got.len() / 2 - 1)
            .map(|e| match e.unwrap() {
                WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p) => rv(&p),
                other => panic!("unexpected {other:?}"),
            })
            .collect(),
    )
    .await;
    let rest: Vec<u64> = got[got.len() / 2 + 1..]
        .iter()
        .map(|(_, _, r)| *r)
        .collect();
    assert_eq!(replayed, rest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_sees_every_change_and_matches_a_fresh_list() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("seed{i}"), &[]))
            .await
            .unwrap();
    }
    let (store, writer) = reflector::store();
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    let task = tokio::spawn(
        reflector(writer, watcher(pods.clone(), watcher::Config::default())).for_each(
            move |event| {
                let line = match event {
                    Ok(watcher::Event::Apply(p)) => format!("apply {}", p.name_any()),
                    Ok(watcher::Event::Delete(p)) => format!("delete {}", p.name_any()),
                    Ok(watcher::Event::InitApply(p)) => format!("init {}", p.name_any()),
                    Ok(watcher::Event::Init) => "init-start".into(),
                    Ok(watcher::Event::InitDone) => "init-done".into(),
                    Err(e) => format!("error {e}"),
                };
                sink.lock().unwrap().push(line);
                futures::future::ready(())
            },
        ),
    );
    within("the initial list", store.wait_until_ready())
        .await
        .unwrap();

    let mut expected = Vec::new();
    for i in 0..8 {
        let name = format!("w{i}");
        pods.create(&PostParams::default(), &pod(&name, &[]))
            .await
            .unwrap();
        expected.push(format!("apply {name}"));
        pods.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"n": i.to_string()}}})),
        )
        .await
        .unwrap();
        expected.push(format!("apply {name}"));
        if i % 3 == 0 {
            pods.delete(&name, &DeleteParams::default()).await.unwrap();
            expected.push(format!("delete {name}"));
        }
    }
    let total = 5 + expected.len();
    let seen = eventually("every watcher event", || {
        let events = events.lock().unwrap().clone();
        async move { (events.len() >= total).then_some(events) }
    })
    .await;
    assert_eq!(
        seen[..5],
        [
            "init-start",
            "init seed0",
            "init seed1",
            "init seed2",
            "init-done"
        ]
    );
    assert_eq!(seen[5..], expected[..]);

    let fresh = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(snapshot(&store.state()), snapshot(&fresh.items));
    task.abort();
}

/// name -> resourceVersion of a set of pods.
fn snapshot<P: std::borrow::Borrow<Pod>>(pods: &[P]) -> BTreeMap<String, String> {
    pods.iter()
        .map(|p| {
            (
                p.borrow().name_any(),
                p.borrow().resource_version().unwrap(),
            )
        })
        .collect()
}

/// How the watcher's resourceVersion is made to expire.
enum Expiry {
    /// The store keeps only a short history.
    SmallHistory,
    /// The store is compacted explicitly.
    Compaction,
}

async fn watcher_recovers_from_410(expiry: Expiry) {
    let storage = match expiry {
        Expiry::SmallHistory => MemoryStorage::with_history(32),
        Expiry::Compaction => MemoryStorage::new(),
    };
    let t = Cluster::start_with(Options {
        storage,
        configure: Box::new(|config| {
            config.watch = WatchLimits {
                history_per_resource: 4,
                ..WatchLimits::default()
            }
        }),
        ..Options::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    for i in 0..3 {
        pods.create(&PostParams::default(), &pod(&format!("old{i}"), &[]))
            .await
            .unwrap();
    }
    let (store, writer) = reflector::store();
    // Each watch request lasts one second on the server; the watcher then
    // re-watches from the last resourceVersion it saw.
    let mut stream = reflector(
        writer,
        watcher(pods.clone(), watcher::Config::default().timeout(1)),
    )
    .boxed();
    let mut log = Vec::new();
    let mut next = async |log: &mut Vec<String>| {
        let event = within("the next watcher event", stream.next())
            .await
            .expect("the watcher never ends");
        let line = match &event {
            Ok(watcher::Event::Apply(p)) => format!("apply {}", p.name_any()),
            Ok(watcher::Event::Delete(p)) => format!("delete {}", p.name_any()),
            Ok(watcher::Event::InitApply(p)) => format!("init {}", p.name_any()),
            Ok(watcher::Event::Init) => "init-start".into(),
            Ok(watcher::Event::InitDone) => "init-done".into(),
            Err(watcher::Error::WatchError(status)) => {
                format!("error {} {}", status.code, status.reason)
            }
            Err(e) => format!("other error {e}"),
        };
        log.push(line.clone());
        line
    };
    while next(&mut log).await != "init-done" {}
    // Open the watch and see one live event through it.
    pods.create(&PostParams::default(), &pod("marker", &[]))
        .await
        .unwrap();
    while next(&mut log).await != "apply marker" {}

    // Stop polling. Once the server has ended that watch, write far more
    // than the history holds.
    let hub = t.server.registry().hub().clone();
    eventually("the server to end the one-second watch", || {
        let open = hub.open_watchers();
        async move { (open == 0).then_some(()) }
    })
    .await;
    for i in 0..12 {
        let name = format!("new{i}");
        pods.create(&PostParams::default(), &pod(&name, &[]))
            .await
            .unwrap();
        pods.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"n": i.to_string()}}})),
        )
        .await
        .unwrap();
    }
    for name in ["old0", "marker", "new3", "new7"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    for i in 0..10 {
        cms.create(&PostParams::default(), &config_map(&format!("cm{i}"), &[]))
            .await
            .unwrap();
    }
    if let Expiry::Compaction = expiry {
        let current = t.storage.current_revision().await.unwrap();
        t.storage.compact(current).await.unwrap();
    }

    // Resume: the re-watch from the old version gets 410, the watcher
    // re-lists and ends up with exactly the current state.
    let before = log.len();
    loop {
        let line = next(&mut log).await;
        if line == "init-done" && log[before..].iter().any(|l| l.starts_with("error 410")) {
            break;
        }
    }
    let recovery = &log[before..];
    assert_eq!(recovery[0], "error 410 Expired", "{recovery:?}");
    assert_eq!(recovery[1], "init-start", "{recovery:?}");
    assert!(
        !recovery
            .iter()
            .any(|l| l.starts_with("apply") || l.starts_with("delete")),
        "nothing of the lost window is replayed: {recovery:?}"
    );
    let fresh = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(snapshot(&store.state()), snapshot(&fresh.items));
    assert_eq!(store.state().len(), 2 + 12 - 2);

    // And it keeps following live changes afterwards.
    pods.create(&PostParams::default(), &pod("after", &[]))
        .await
        .unwrap();
    while next(&mut log).await != "apply after" {}
    assert!(store
        .get(&reflector::ObjectRef::new("after").within("default"))
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_relists_when_history_is_gone() {
    watcher_recovers_from_410(Expiry::SmallHistory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_relists_after_compaction() {
    watcher_recovers_from_410(Expiry::Compaction).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_bookmarks_when_asked() {
    let t = Cluster::start_with(Options {
        configure: Box::new(|config| {
            config.http.bookmark_interval = Duration::from_millis(100);
        }),
        ..Options::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let from = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = pods
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    // A write elsewhere moves the cluster's revision: the idle pod watch
    // hears about it through a bookmark.
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    let cm = cms
        .create(&PostParams::default(), &config_map("elsewhere", &[]))
        .await
        .unwrap();
    let bookmark = match within("a bookmark", stream.next()).await.unwrap().unwrap() {
        WatchEvent::Bookmark(b) => b,
        other => panic!("only a bookmark is expected, got {other:?}"),
    };
    let bookmark_rv: u64 = bookmark.metadata.resource_version.parse().unwrap();
    assert_eq!(bookmark_rv, rv(&cm));
    assert_eq!(bookmark.types.kind, "Pod");

    // Events still come, after the bookmark's revision.
    let created = pods
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .unwrap();
    loop {
        match within("the pod event", stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(p) => {
                assert_eq!(p.name_any(), "web");
                assert!(rv(&p) > bookmark_rv);
                assert_eq!(rv(&p), rv(&created));
                break;
            }
            WatchEvent::Bookmark(b) => {
                assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= bookmark_rv)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_send_initial_events_then_changes() {
    let t = Cluster::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    for i in 0..4 {
        pods.create(&PostParams::default(), &pod(&format!("seed{i}"), &[]))
            .await
            .unwrap();
    }
    let (store, writer) = reflector::store();
    let mut stream = reflector(
        writer,
        watcher(pods.clone(), watcher::Config::default().streaming_lists()),
    )
    .boxed();
    let mut log = Vec::new();
    loop {
        let event = within("streaming list events", stream.next())
            .await
            .unwrap()
            .expect("no watcher error");
        let done = matches!(event, watcher::Event::InitDone);
        log.push(match event {
            watcher::Event::Init => "init-start".to_owned(),
            watcher::Event::InitApply(p) => format!("init {}", p.name_any()),
            watcher::Event::InitDone => "init-done".to_owned(),
            other => panic!("unexpected before the end of the initial events: {other:?}"),
        });
        if done {
            break;
        }
    }
    assert_eq!(
        log,
        [
            "init-start",
            "init seed0",
            "init seed1",
            "init seed2",
            "init seed3",
            "init-done"
        ]
    );
    assert_eq!(store.state().len(), 4);
    pods.create(&PostParams::default(), &pod("live", &[]))
        .await
        .unwrap();
    pods.delete("seed0", &DeleteParams::default())
        .await
        .unwrap();
    let mut live = Vec::new();
    while live.len() < 2 {
        match within("live events", stream.next()).await.unwrap().unwrap() {
            watcher::Event::Apply(p) => live.push(format!("apply {}", p.name_any())),
            watcher::Event::Delete(p) => live.push(format!("delete {}", p.name_any())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(live, ["apply live", "delete seed0"]);
    let fresh = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(snapshot(&store.state()), snapshot(&fresh.items));

    // The raw stream: ADDED for each object, then a bookmark marking the
    // end of the initial events.
    let raw = pods
        .watch(&WatchParams::streaming_lists(), "0")
        .await
        .unwrap();
    let mut raw = raw.boxed();
    let mut added = BTreeSet::new();
    loop {
        match within("raw streaming list", raw.next())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(p) => {
                added.insert(p.name_any());
            }
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                assert_eq!(
                    b.metadata.resource_version,
                    fresh.metadata.resource_version.clone().unwrap()
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        added,
        fresh
            .items
            .iter()
            .map(|p| p.name_any())
            .collect::<BTreeSet<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_client_that_never_reads_is_cut_off_without_blocking_others() {
    let t = Cluster::start_with(Options {
        configure: Box::new(|config| {
            config.watch = WatchLimits {
                client_buffer: 8,
                ..WatchLimits::default()
            }
        }),
        ..Options::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    let from = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let hub = t.server.registry().hub().clone();

    // The slow client: a raw watch with a tiny receive buffer, never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = within("connect", socket.connect(t.addr)).await.unwrap();
    slow.write_all(
        format!(
            "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={from} HTTP/1.1\r\nHost: {}\r\n\r\n",
            t.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    eventually("the slow watch to open", || {
        let open = hub.open_watchers();
        async move { (open == 1).then_some(()) }
    })
    .await;

    // A normal watcher, read all the time.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    let mut normal = cms
        .watch(&WatchParams::default().disable_bookmarks(), &from)
        .await
        .unwrap()
        .boxed();
    let reader = tokio::spawn(async move {
        while let Some(event) = normal.next().await {
            let line = match event {
                Ok(WatchEvent::Added(cm)) => cm.name_any(),
                other => format!("unexpected {other:?}"),
            };
            sink.lock().unwrap().push(line);
        }
    });
    eventually("the normal watch to open", || {
        let open = hub.open_watchers();
        async move { (open == 2).then_some(()) }
    })
    .await;

    // Big objects, far more than the slow client's socket buffers and
    // its 8-event queue hold. The writer paces itself on the normal
    // watcher, which must see every one of them.
    let payload = "x".repeat(128 * 1024);
    let in_process: Api<ConfigMap> = Api::namespaced(t.server.client(), "default");
    const N: usize = 100;
    for i in 0..N {
        let name = format!("big{i:03}");
        in_process
            .create(
                &PostParams::default(),
                &config_map(&name, &[("blob", &payload)]),
            )
            .await
            .unwrap();
        eventually("the normal watcher to keep up", || {
            let got = received.lock().unwrap().len();
            async move { (got > i).then_some(()) }
        })
        .await;
    }
    let got = received.lock().unwrap().clone();
    let expected: Vec<String> = (0..N).map(|i| format!("big{i:03}")).collect();
    assert_eq!(
        got, expected,
        "the normal watcher saw every event, in order"
    );

    // Now read the slow client: what fitted in its buffers, then an
    // ERROR (410 Expired) saying it was cut off, then the end of the stream.
    let mut raw = Vec::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let body = within("the slow client's stream to end", async {
        loop {
            let n = slow.read(&mut buffer).await.unwrap();
            raw.extend_from_slice(&buffer[..n]);
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let (body, complete) = vcluster_testkit::http::dechunk(&raw[split + 4..]);
                if complete {
                    return body;
                }
            }
            assert!(
                n > 0,
                "the server closed the connection without ending the stream"
            );
        }
    })
    .await;
    let head =
        String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
            .into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = vcluster_testkit::http::watch_lines(&body);
    let (last, events) = lines.split_last().expect("some frames");
    assert!(
        events.len() < N,
        "the slow client was cut off before the end ({} events)",
        events.len()
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["type"], "ADDED");
        assert_eq!(event["object"]["metadata"]["name"], format!("big{i:03}"));
    }
    assert_eq!(last["type"], "ERROR", "{last}");
    assert_eq!(last["object"]["kind"], "Status");
    assert_eq!(last["object"]["code"], 410);
    assert_eq!(last["object"]["reason"], "Expired");
    assert!(last["object"]["message"]
        .as_str()
        .unwrap()
        .contains("did not keep up"));

    // The normal watcher is still open and still served.
    in_process
        .create(&PostParams::default(), &config_map("after", &[]))
        .await
        .unwrap();
    eventually("the normal watcher to see one more", || {
        let last = received.lock().unwrap().last().cloned();
        async move { (last.as_deref() == Some("after")).then_some(()) }
    })
    .await;
    eventually("the slow watch to be released", || {
        let open = hub.open_watchers();
        async move { (open == 1).then_some(()) }
    })
    .await;
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_client_over_tls() {
    let t = Cluster::start_tls().await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("secure", &[]))
        .await
        .unwrap();
    assert_eq!(pods.get("secure").await.unwrap().uid(), created.uid());
    let events: Vec<_> = within(
        "a watch over TLS",
        watcher(pods.clone(), watcher::Config::default())
            .applied_objects()
            .take(1)
            .try_collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    assert_eq!(events[0].name_any(), "secure");

    // A client that trusts another certificate is refused.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let mut config = kube::Config::new(t.url.parse().unwrap());
    config.root_cert = Some(vec![other.cert.der().to_vec()]);
    let untrusting: Api<Pod> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    let result = within("an untrusted TLS call", untrusting.get("secure")).await;
    assert!(
        !matches!(result, Ok(_) | Err(kube::Error::Api(_))),
        "the TLS handshake must fail: {result:?}"
    );
}
