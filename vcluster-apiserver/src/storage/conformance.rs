//! The storage conformance suite: every rule of the [`Storage`] contract,
//! as one function a backend runs against itself.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use vcluster_apiserver::storage::{conformance, MemoryStorage};
//! conformance::run(|| async { MemoryStorage::new() }).await;
//! # }
//! ```
//!
//! `new_store` is called once per case and must return an empty store (or an
//! empty view of one, such as a fresh key prefix on a shared etcd). Revisions
//! are only required to increase, not to be consecutive, so backends whose
//! revision is shared with other writers (etcd) pass too. A broken rule
//! panics with the case's name and what differed: this is meant to run
//! inside a `#[test]`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{EventKind, KeyValue, ListRequest, Revision, Storage, StorageError, WatchStream};

/// How long a case waits for a watch event before declaring it lost.
const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// Runs every case against stores made by `new_store`.
pub async fn run<S, F, Fut>(new_store: F)
where
    S: Storage,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    create_get_and_already_exists(&new_store().await).await;
    update_is_compare_and_swap(&new_store().await).await;
    delete_returns_previous_and_honours_preconditions(&new_store().await).await;
    revisions_only_increase(&new_store().await).await;
    list_is_prefix_scoped_and_ordered(&new_store().await).await;
    list_at_an_older_revision_sees_the_old_state(&new_store().await).await;
    pagination_is_a_consistent_snapshot(&new_store().await).await;
    list_at_a_future_revision_fails(&new_store().await).await;
    watch_delivers_every_write_in_order(&new_store().await).await;
    watch_is_prefix_scoped(&new_store().await).await;
    watch_resumes_without_loss_or_duplicates(&new_store().await).await;
    compaction_expires_old_reads_but_keeps_latest(&new_store().await).await;
    let store = Arc::new(new_store().await);
    concurrent_compare_and_swap_has_one_winner(&store).await;
    concurrent_creates_of_one_key_have_one_winner(&store).await;
    concurrent_writers_get_distinct_ordered_revisions(&store).await;
}

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn expect<T>(case: &str, what: &str, result: Result<T, StorageError>) -> T {
    match result {
        Ok(v) => v,
        Err(err) => panic!("[{case}] {what} failed: {err}"),
    }
}

async fn next_event(case: &str, watch: &mut WatchStream) -> super::WatchEvent {
    match tokio::time::timeout(EVENT_DEADLINE, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("[{case}] watch failed: {err}"),
        Ok(None) => panic!("[{case}] watch ended early"),
        Err(_) => panic!("[{case}] no watch event within {EVENT_DEADLINE:?}"),
    }
}

/// Asserts that the watch has nothing more to say for a short while.
async fn assert_quiet(case: &str, watch: &mut WatchStream) {
    if let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
        panic!("[{case}] unexpected extra watch item: {item:?}");
    }
}

async fn create_get_and_already_exists(store: &impl Storage) {
    let case = "create_get_and_already_exists";
    assert!(
        expect(case, "get missing", store.get("/t/a").await).is_none(),
        "[{case}] a key that was never written must read as None"
    );
    let created = expect(case, "create", store.create("/t/a", value("1")).await);
    assert_eq!(created.key, "/t/a");
    assert_eq!(created.value, value("1"));
    assert_eq!(
        created.create_revision, created.mod_revision,
        "[{case}] a new key's create and mod revisions are the same"
    );
    let read = expect(case, "get", store.get("/t/a").await);
    assert_eq!(
        read.as_ref(),
        Some(&created),
        "[{case}] get returns what create stored"
    );
    match store.create("/t/a", value("2")).await {
        Err(StorageError::AlreadyExists { key }) => assert_eq!(key, "/t/a"),
        other => panic!("[{case}] second create must be AlreadyExists, got {other:?}"),
    }
    let after = expect(case, "get after failed create", store.get("/t/a").await);
    assert_eq!(
        after,
        Some(created),
        "[{case}] a failed create changes nothing"
    );
}

async fn update_is_compare_and_swap(store: &impl Storage) {
    let case = "update_is_compare_and_swap";
    let created = expect(case, "create", store.create("/t/u", value("1")).await);
    let updated = expect(
        case,
        "update",
        store.update("/t/u", value("2"), created.mod_revision).await,
    );
    assert!(
        updated.mod_revision > created.mod_revision,
        "[{case}] update gets a new revision"
    );
    assert_eq!(
        updated.create_revision, created.create_revision,
        "[{case}] update keeps the create revision"
    );
    match store.update("/t/u", value("3"), created.mod_revision).await {
        Err(StorageError::Conflict {
            expected, current, ..
        }) => {
            assert_eq!(expected, created.mod_revision);
            assert_eq!(
                current, updated.mod_revision,
                "[{case}] conflict reports the current revision"
            );
        }
        other => panic!("[{case}] stale update must be Conflict, got {other:?}"),
    }
    let read = expect(case, "get", store.get("/t/u").await);
    assert_eq!(
        read.map(|kv| kv.value),
        Some(value("2")),
        "[{case}] stale update changed nothing"
    );
    match store.update("/t/missing", value("x"), 1).await {
        Err(StorageError::NotFound { key }) => assert_eq!(key, "/t/missing"),
        other => panic!("[{case}] update of a missing key must be NotFound, got {other:?}"),
    }
}

async fn delete_returns_previous_and_honours_preconditions(store: &impl Storage) {
    let case = "delete_returns_previous_and_honours_preconditions";
    let created = expect(case, "create", store.create("/t/d", value("v")).await);
    match store
        .delete("/t/d", Some(created.mod_revision + 1_000_000))
        .await
    {
        Err(StorageError::Conflict { current, .. }) => assert_eq!(current, created.mod_revision),
        other => {
            panic!("[{case}] guarded delete with a wrong revision must be Conflict, got {other:?}")
        }
    }
    let deleted = expect(
        case,
        "guarded delete",
        store.delete("/t/d", Some(created.mod_revision)).await,
    );
    assert_eq!(
        deleted.previous, created,
        "[{case}] delete returns the last version"
    );
    assert!(deleted.revision > created.mod_revision);
    assert!(expect(case, "get deleted", store.get("/t/d").await).is_none());
    match store.delete("/t/d", None).await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("[{case}] deleting twice must be NotFound, got {other:?}"),
    }
    let again = expect(case, "re-create", store.create("/t/d", value("w")).await);
    assert!(
        again.create_revision > deleted.revision,
        "[{case}] a re-created key is a new incarnation"
    );
    expect(case, "unguarded delete", store.delete("/t/d", None).await);
}

async fn revisions_only_increase(store: &impl Storage) {
    let case = "revisions_only_increase";
    let start = expect(case, "current_revision", store.current_revision().await);
    let a = expect(case, "create", store.create("/t/r", value("1")).await).mod_revision;
    assert!(a > start);
    assert!(expect(case, "current_revision", store.current_revision().await) >= a);
    let b = expect(case, "update", store.update("/t/r", value("2"), a).await).mod_revision;
    let c = expect(case, "delete", store.delete("/t/r", None).await).revision;
    assert!(a < b && b < c, "[{case}] {a} < {b} < {c}");
    assert!(expect(case, "current_revision", store.current_revision().await) >= c);
}

async fn list_is_prefix_scoped_and_ordered(store: &impl Storage) {
    let case = "list_is_prefix_scoped_and_ordered";
    for key in [
        "/l/pods/b",
        "/l/pods/a",
        "/l/pods/c",
        "/l/podsx/a",
        "/l/pod",
        "/l/a",
    ] {
        expect(case, "create", store.create(key, value(key)).await);
    }
    let list = expect(
        case,
        "list",
        store.list(ListRequest::prefix("/l/pods/")).await,
    );
    let keys: Vec<_> = list.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/l/pods/a", "/l/pods/b", "/l/pods/c"],
        "[{case}] prefix and order"
    );
    assert_eq!(list.remaining, 0);
    assert!(list.items.iter().all(|kv| kv.value == value(&kv.key)));
    assert!(
        list.revision
            >= list
                .items
                .iter()
                .map(|kv| kv.mod_revision)
                .max()
                .unwrap_or(0)
    );
    let empty = expect(
        case,
        "empty list",
        store.list(ListRequest::prefix("/nothing/")).await,
    );
    assert!(empty.items.is_empty());
}

async fn list_at_an_older_revision_sees_the_old_state(store: &impl Storage) {
    let case = "list_at_an_older_revision_sees_the_old_state";
    let a = expect(case, "create a", store.create("/o/a", value("a1")).await);
    let b = expect(case, "create b", store.create("/o/b", value("b1")).await);
    let snapshot = b.mod_revision;
    expect(
        case,
        "update a",
        store.update("/o/a", value("a2"), a.mod_revision).await,
    );
    expect(case, "delete b", store.delete("/o/b", None).await);
    expect(case, "create c", store.create("/o/c", value("c1")).await);
    let old = expect(
        case,
        "list at snapshot",
        store
            .list(ListRequest {
                revision: Some(snapshot),
                ..ListRequest::prefix("/o/")
            })
            .await,
    );
    assert_eq!(old.revision, snapshot);
    let seen: BTreeMap<_, _> = old
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(
        seen,
        BTreeMap::from([("/o/a", value("a1")), ("/o/b", value("b1"))]),
        "[{case}] the old revision shows old values, deleted keys, and not later keys"
    );
    let now = expect(
        case,
        "list now",
        store.list(ListRequest::prefix("/o/")).await,
    );
    let seen: Vec<_> = now
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(seen, [("/o/a", value("a2")), ("/o/c", value("c1"))]);
}

async fn pagination_is_a_consistent_snapshot(store: &impl Storage) {
    let case = "pagination_is_a_consistent_snapshot";
    for i in 0..10 {
        expect(
            case,
            "create",
            store.create(&format!("/p/k{i:02}"), value("x")).await,
        );
    }
    let first = expect(
        case,
        "first page",
        store
            .list(ListRequest {
                limit: Some(4),
                ..ListRequest::prefix("/p/")
            })
            .await,
    );
    assert_eq!(first.items.len(), 4);
    assert_eq!(
        first.remaining, 6,
        "[{case}] remaining counts the keys after the page"
    );
    // Writes between pages must not show up in later pages.
    expect(case, "delete k05", store.delete("/p/k05", None).await);
    expect(
        case,
        "create k051",
        store.create("/p/k051", value("y")).await,
    );
    let mut keys: Vec<String> = first.items.iter().map(|kv| kv.key.clone()).collect();
    let mut after = keys.last().cloned();
    loop {
        let page = expect(
            case,
            "next page",
            store
                .list(ListRequest {
                    prefix: "/p/".into(),
                    revision: Some(first.revision),
                    start_after: after.clone(),
                    limit: Some(4),
                })
                .await,
        );
        assert_eq!(
            page.revision, first.revision,
            "[{case}] pages share one revision"
        );
        keys.extend(page.items.iter().map(|kv| kv.key.clone()));
        after = page.items.last().map(|kv| kv.key.clone());
        if page.remaining == 0 {
            break;
        }
        assert!(
            after.is_some(),
            "[{case}] a page with remaining items cannot be empty"
        );
    }
    let expected: Vec<String> = (0..10).map(|i| format!("/p/k{i:02}")).collect();
    assert_eq!(keys, expected, "[{case}] pages add up to the snapshot");
}

async fn list_at_a_future_revision_fails(store: &impl Storage) {
    let case = "list_at_a_future_revision_fails";
    let current = expect(case, "current_revision", store.current_revision().await);
    match store
        .list(ListRequest {
            revision: Some(current + 1_000_000),
            ..ListRequest::prefix("/f/")
        })
        .await
    {
        Err(StorageError::FutureRevision { .. }) => {}
        other => panic!("[{case}] must be FutureRevision, got {other:?}"),
    }
}

async fn watch_delivers_every_write_in_order(store: &impl Storage) {
    let case = "watch_delivers_every_write_in_order";
    let start = expect(case, "current_revision", store.current_revision().await);
    let mut watch = expect(case, "watch", store.watch("/w/", start).await);
    let created = expect(case, "create", store.create("/w/a", value("1")).await);
    let updated = expect(
        case,
        "update",
        store.update("/w/a", value("2"), created.mod_revision).await,
    );
    let deleted = expect(case, "delete", store.delete("/w/a", None).await);

    let e1 = next_event(case, &mut watch).await;
    assert_eq!(
        (e1.kind, e1.key.as_str(), &e1.value),
        (EventKind::Created, "/w/a", &value("1"))
    );
    assert_eq!((e1.revision, &e1.prev_value), (created.mod_revision, &None));
    let e2 = next_event(case, &mut watch).await;
    assert_eq!(
        (e2.kind, &e2.value, e2.revision),
        (EventKind::Updated, &value("2"), updated.mod_revision)
    );
    assert_eq!(
        e2.prev_value,
        Some(value("1")),
        "[{case}] update events carry the previous value"
    );
    let e3 = next_event(case, &mut watch).await;
    assert_eq!(e3.kind, EventKind::Deleted);
    assert_eq!(e3.revision, deleted.revision);
    assert_eq!(
        e3.value,
        value("2"),
        "[{case}] a delete event carries the last value"
    );
    assert_quiet(case, &mut watch).await;

    // A watch started later from the same revision replays the same history.
    let mut replay = expect(case, "replay watch", store.watch("/w/", start).await);
    let replayed = [
        next_event(case, &mut replay).await,
        next_event(case, &mut replay).await,
        next_event(case, &mut replay).await,
    ];
    assert_eq!(
        replayed,
        [e1, e2, e3],
        "[{case}] history replays identically"
    );
}

async fn watch_is_prefix_scoped(store: &impl Storage) {
    let case = "watch_is_prefix_scoped";
    let start = expect(case, "current_revision", store.current_revision().await);
    let mut watch = expect(case, "watch", store.watch("/ws/pods/", start).await);
    expect(
        case,
        "create other",
        store.create("/ws/podsx/a", value("no")).await,
    );
    expect(
        case,
        "create other",
        store.create("/ws/other", value("no")).await,
    );
    let mine = expect(
        case,
        "create mine",
        store.create("/ws/pods/a", value("yes")).await,
    );
    let event = next_event(case, &mut watch).await;
    assert_eq!(
        (event.key.as_str(), event.revision),
        ("/ws/pods/a", mine.mod_revision)
    );
    assert_quiet(case, &mut watch).await;
}

async fn watch_resumes_without_loss_or_duplicates(store: &impl Storage) {
    let case = "watch_resumes_without_loss_or_duplicates";
    let start = expect(case, "current_revision", store.current_revision().await);
    let mut watch = expect(case, "watch", store.watch("/wr/", start).await);
    let mut written: Vec<Revision> = Vec::new();
    for i in 0..20 {
        let kv = expect(
            case,
            "create",
            store.create(&format!("/wr/{i:02}"), value("x")).await,
        );
        written.push(kv.mod_revision);
    }
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(next_event(case, &mut watch).await.revision);
    }
    drop(watch);
    let last_seen = seen[seen.len() - 1];
    // Writes while nobody watches must not be lost either.
    for i in 20..30 {
        let kv = expect(
            case,
            "create",
            store.create(&format!("/wr/{i:02}"), value("x")).await,
        );
        written.push(kv.mod_revision);
    }
    let mut resumed = expect(case, "resume", store.watch("/wr/", last_seen).await);
    while seen.len() < written.len() {
        seen.push(next_event(case, &mut resumed).await.revision);
    }
    assert_eq!(seen, written, "[{case}] every write exactly once, in order");
    assert_quiet(case, &mut resumed).await;
}

async fn compaction_expires_old_reads_but_keeps_latest(store: &impl Storage) {
    let case = "compaction_expires_old_reads_but_keeps_latest";
    let a = expect(case, "create", store.create("/c/a", value("1")).await);
    let b = expect(
        case,
        "update",
        store.update("/c/a", value("2"), a.mod_revision).await,
    );
    let gone = expect(case, "create", store.create("/c/gone", value("x")).await);
    expect(case, "delete", store.delete("/c/gone", None).await);
    let c = expect(case, "create", store.create("/c/b", value("3")).await);
    expect(case, "compact", store.compact(c.mod_revision).await);

    match store
        .list(ListRequest {
            revision: Some(a.mod_revision),
            ..ListRequest::prefix("/c/")
        })
        .await
    {
        Err(StorageError::Expired { requested, .. }) => assert_eq!(requested, a.mod_revision),
        other => panic!("[{case}] list below the compaction must be Expired, got {other:?}"),
    }
    match store.watch("/c/", gone.mod_revision).await {
        Err(StorageError::Expired { .. }) => {}
        Ok(mut stream) => match tokio::time::timeout(EVENT_DEADLINE, stream.next()).await {
            Ok(Some(Err(StorageError::Expired { .. }))) => {}
            other => panic!("[{case}] watch below the compaction must be Expired, got {other:?}"),
        },
        Err(other) => panic!("[{case}] watch below the compaction must be Expired, got {other:?}"),
    }
    let now = expect(case, "list", store.list(ListRequest::prefix("/c/")).await);
    let latest: Vec<KeyValue> = now.items;
    assert_eq!(latest.len(), 2, "[{case}] compaction keeps every live key");
    assert_eq!(latest[0].value, value("2"));
    assert_eq!(latest[0].mod_revision, b.mod_revision);
    assert_eq!(latest[1].mod_revision, c.mod_revision);
    // Reading and watching from the compaction point itself still works.
    let mut watch = expect(
        case,
        "watch at compaction",
        store.watch("/c/", c.mod_revision).await,
    );
    let d = expect(case, "create", store.create("/c/d", value("4")).await);
    assert_eq!(next_event(case, &mut watch).await.revision, d.mod_revision);
}

async fn concurrent_compare_and_swap_has_one_winner<S: Storage>(store: &Arc<S>) {
    let case = "concurrent_compare_and_swap_has_one_winner";
    let base = expect(case, "create", store.create("/race/cas", value("0")).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update("/race/cas", value(&format!("w{i}")), base.mod_revision)
                .await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(kv) => winners.push(kv),
            Err(StorageError::Conflict { .. }) => {}
            Err(other) => panic!("[{case}] a losing CAS must be Conflict, got {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "[{case}] exactly one writer wins");
    let stored = expect(case, "get", store.get("/race/cas").await);
    assert_eq!(
        stored.as_ref(),
        winners.first(),
        "[{case}] the winner's value is stored"
    );
}

async fn concurrent_creates_of_one_key_have_one_winner<S: Storage>(store: &Arc<S>) {
    let case = "concurrent_creates_of_one_key_have_one_winner";
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create("/race/create", value(&format!("c{i}"))).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("task panicked") {
            Ok(_) => wins += 1,
            Err(StorageError::AlreadyExists { .. }) => {}
            Err(other) => panic!("[{case}] a losing create must be AlreadyExists, got {other}"),
        }
    }
    assert_eq!(wins, 1, "[{case}] exactly one create wins");
}

async fn concurrent_writers_get_distinct_ordered_revisions<S: Storage>(store: &Arc<S>) {
    let case = "concurrent_writers_get_distinct_ordered_revisions";
    let start = expect(case, "current_revision", store.current_revision().await);
    let mut watch = expect(case, "watch", store.watch("/many/", start).await);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..25 {
                let key = format!("/many/{w}/{i}");
                let kv = store.create(&key, value("1")).await?;
                let kv = store.update(&key, value("2"), kv.mod_revision).await?;
                revisions.push(kv.mod_revision);
            }
            Ok::<_, StorageError>(revisions)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += expect(case, "writer", task.await.expect("task panicked")).len() * 2;
    }
    let mut previous = start;
    for _ in 0..total {
        let event = next_event(case, &mut watch).await;
        assert!(
            event.revision > previous,
            "[{case}] watch revisions strictly increase ({} after {previous})",
            event.revision
        );
        previous = event.revision;
    }
    assert_quiet(case, &mut watch).await;
}
