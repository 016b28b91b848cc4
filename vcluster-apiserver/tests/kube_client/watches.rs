//! Watches through kube-rs: every event in order, the runtime watcher
//! (and its recovery from `410 Gone`), bookmarks and streaming lists.

use super::*;

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
