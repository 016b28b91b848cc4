//! The SQLite backend: the shared conformance suite plus what only a
//! persistent file can get wrong (reopening, compaction on disk, file
//! errors, lagging watchers reading the log).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use vcluster_apiserver::storage::sqlite::{
    SqliteOpenError, SqliteOptions, Synchronous, SCHEMA_VERSION,
};
use vcluster_apiserver::storage::{
    conformance, EventKind, ListRequest, SqliteStorage, Storage, StorageError,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn value(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

fn fast(history: u64) -> SqliteOptions {
    SqliteOptions {
        history,
        synchronous: Synchronous::Normal,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let next = AtomicUsize::new(0);
    conformance::run(|| {
        let path = dir
            .path()
            .join(format!("store-{}.db", next.fetch_add(1, Ordering::Relaxed)));
        async move { SqliteStorage::open(path).await.expect("open store") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_revisions_and_compaction_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/dir/state.db");
    let (a, deleted) = {
        let store = SqliteStorage::open(&path).await.expect("open");
        let a = store.create("/k/a", value("1")).await.expect("create a");
        let a = store
            .update("/k/a", value("2"), a.mod_revision)
            .await
            .expect("update a");
        store.create("/k/b", value("b")).await.expect("create b");
        let deleted = store.delete("/k/b", None).await.expect("delete b");
        // Compacting at the very last write drops the newest row (the
        // tombstone): the next revision must still be higher.
        store.compact(deleted.revision).await.expect("compact");
        (a, deleted)
    };
    let store = SqliteStorage::open(&path).await.expect("reopen");
    assert_eq!(
        store.current_revision().await.expect("revision"),
        deleted.revision
    );
    assert_eq!(store.get("/k/a").await.expect("get"), Some(a.clone()));
    assert_eq!(store.get("/k/b").await.expect("get"), None);
    match store
        .list(ListRequest {
            revision: Some(a.mod_revision),
            ..ListRequest::prefix("/k/")
        })
        .await
    {
        Err(StorageError::Expired { oldest, .. }) => assert_eq!(oldest, deleted.revision),
        other => panic!("a list below the persisted compaction must be Expired, got {other:?}"),
    }
    let c = store.create("/k/c", value("c")).await.expect("create c");
    assert_eq!(
        c.mod_revision,
        deleted.revision + 1,
        "revisions continue upward"
    );
    let again = store
        .create("/k/b", value("b2"))
        .await
        .expect("re-create b");
    assert!(again.create_revision > c.mod_revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_compaction_keeps_a_bounded_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let history = 16;
    let store = SqliteStorage::open_with(&path, fast(history))
        .await
        .expect("open");
    let first = store
        .create("/h/counter", value("0"))
        .await
        .expect("create");
    let mut last = first.clone();
    for i in 1..200 {
        last = store
            .update("/h/counter", value(&i.to_string()), last.mod_revision)
            .await
            .expect("update");
    }
    match store.watch("/h/", first.mod_revision).await {
        Err(StorageError::Expired { oldest, .. }) => {
            assert!(
                oldest + history <= last.mod_revision,
                "keeps at least `history` revisions"
            );
            assert!(
                oldest + history + history / 8 + 1 >= last.mod_revision,
                "compacts once the slack is used up (oldest {oldest}, latest {})",
                last.mod_revision
            );
        }
        Ok(_) => panic!("history beyond the window must be compacted"),
        Err(other) => panic!("expected Expired, got {other}"),
    }
    // The window itself is still readable and watchable.
    let mut watch = store
        .watch("/h/", last.mod_revision - history)
        .await
        .expect("watch inside the window");
    let event = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("event in time")
        .expect("stream open")
        .expect("event");
    assert_eq!(event.kind, EventKind::Updated);
    assert!(
        event.prev_value.is_some(),
        "updates in the window keep their previous value"
    );
    assert_eq!(store.get("/h/counter").await.expect("get"), Some(last));
    drop(watch);
    drop(store);
    // Superseded rows are really gone from the file.
    let conn = rusqlite::Connection::open(&path).expect("inspect");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM log", [], |row| row.get(0))
        .expect("count rows");
    assert!(
        rows as u64 <= history + history / 8 + 2,
        "{rows} rows left in the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_catches_up_from_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStorage::open_with(dir.path().join("state.db"), fast(100_000))
        .await
        .expect("open");
    let start = store.current_revision().await.expect("revision");
    let mut watch = store.watch("/lag/", start).await.expect("watch");
    // Far more writes than the live channel holds, while nobody polls.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..750 {
                    store
                        .create(&format!("/lag/{w}/{i:04}"), value("x"))
                        .await
                        .expect("create");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let total = 8 * 750;
    let mut previous = start;
    for _ in 0..total {
        let event = tokio::time::timeout(DEADLINE, watch.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("no error");
        assert!(event.revision > previous, "strictly increasing revisions");
        previous = event.revision;
    }
    assert_eq!(previous, store.current_revision().await.expect("revision"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_gives_every_writer_its_own_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStorage::open(dir.path().join("state.db"))
        .await
        .expect("open");
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revisions = Vec::new();
                for i in 0..10 {
                    let kv = store
                        .create(&format!("/g/{w}/{i}"), value("x"))
                        .await
                        .expect("create");
                    revisions.push(kv.mod_revision);
                }
                revisions
            })
        })
        .collect();
    let mut all = Vec::new();
    for writer in writers {
        all.extend(writer.await.expect("writer"));
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=320).collect::<Vec<u64>>(),
        "dense, distinct revisions"
    );
}

#[tokio::test]
async fn a_watch_outliving_its_store_ends_with_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStorage::open_with(dir.path().join("state.db"), fast(100))
        .await
        .expect("open");
    let mut watch = store.watch("/", 0).await.expect("watch");
    store.create("/x", value("1")).await.expect("create");
    drop(store);
    let first = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("in time");
    assert!(
        matches!(first, Some(Ok(ref e)) if e.key == "/x"),
        "{first:?}"
    );
    let end = tokio::time::timeout(DEADLINE, watch.next())
        .await
        .expect("in time");
    assert!(
        matches!(end, Some(Err(StorageError::Backend { .. }))),
        "{end:?}"
    );
}

#[tokio::test]
async fn unusable_files_give_clear_errors() {
    let dir = tempfile::tempdir().expect("temp dir");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x42u8; 8192]).expect("write garbage");
    match SqliteStorage::open(&garbage).await {
        Err(err @ SqliteOpenError::NotADatabase { .. }) => {
            assert!(err.to_string().contains("garbage.db"), "{err}")
        }
        other => panic!("expected NotADatabase, got {other:?}"),
    }

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .and_then(|conn| conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)"))
        .expect("foreign database");
    assert!(matches!(
        SqliteStorage::open(&foreign).await,
        Err(SqliteOpenError::ForeignDatabase { tables: 1, .. })
    ));

    let newer = dir.path().join("newer.db");
    drop(SqliteStorage::open(&newer).await.expect("create"));
    rusqlite::Connection::open(&newer)
        .and_then(|conn| {
            conn.execute(
                "UPDATE meta SET value = ?1 WHERE name = 'schema_version'",
                [SCHEMA_VERSION + 1],
            )
        })
        .expect("bump schema version");
    match SqliteStorage::open(&newer).await {
        Err(
            err @ SqliteOpenError::IncompatibleSchema {
                found, supported, ..
            },
        ) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            assert!(err.to_string().contains("schema version"), "{err}");
        }
        other => panic!("expected IncompatibleSchema, got {other:?}"),
    }

    let shared = dir.path().join("shared.db");
    let first = SqliteStorage::open(&shared).await.expect("first open");
    assert!(matches!(
        SqliteStorage::open(&shared).await,
        Err(SqliteOpenError::InUse { .. })
    ));
    drop(first);
    SqliteStorage::open(&shared)
        .await
        .expect("the lock is released with the last handle");
}
