//! Nothing acknowledged is lost when the process holding the data dies.
//!
//! - SQLite: a child process (this test executable, re-run with
//!   [`CHILD_DB_ENV`] set) writes a deterministic stream of creates, updates
//!   and deletes and prints each acknowledged write. The test SIGKILLs it in
//!   the middle of the stream, reopens the file and checks that every
//!   acknowledged write is there (the one write in flight may or may not
//!   be), that revisions continue upward, and that a watch from the last
//!   revision seen resumes without loss (or, below the kept history, is
//!   `Expired`).
//! - etcd: the test writes through [`EtcdStorage`] while it SIGKILLs the
//!   etcd server, restarts it on the same data directory and ports, and
//!   checks the same properties, plus that a watch opened before the crash
//!   resumes across it by itself.
//!
//! Every wait has a deadline; no sleep stands in for synchronisation.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
#[cfg(feature = "etcd")]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
#[cfg(feature = "etcd")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use vcluster_apiserver::storage::sqlite::{SqliteOptions, Synchronous};
use vcluster_apiserver::storage::{
    EventKind, Revision, SqliteStorage, Storage, StorageError, WatchStream,
};

/// Set in the child process: the SQLite file to write to.
const CHILD_DB_ENV: &str = "VCLUSTER_DURABILITY_CHILD_DB";
/// Set in the child process: `full` or `normal`.
const CHILD_SYNC_ENV: &str = "VCLUSTER_DURABILITY_CHILD_SYNC";
/// History window of the SQLite child, small so compaction runs during the
/// stream and a watch from the very start is `Expired`.
const CHILD_HISTORY: u64 = 64;
/// Acknowledged writes to wait for before the kill.
const ACKS_BEFORE_KILL: usize = 300;
/// Starts each acknowledgement line the child prints: `<marker><op> <revision>`.
const ACK_MARKER: &str = "durability-ack ";
/// Upper bound of the child's stream, so it ends even if nobody kills it.
const CHILD_MAX_OPS: usize = 1_000_000;
/// Deadline of each waiting step.
const DEADLINE: Duration = Duration::from_secs(60);

/// The write stream, identical in child and parent: op `i` is
/// - `i == 0`: create `/d/counter` = "0"
/// - `i % 3 == 1`: create `/d/k{i}` = "v{i}"
/// - `i % 3 == 2`: update `/d/counter` = "{i}"
/// - `i % 3 == 0`: delete `/d/k{i-2}`
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Create(String, String),
    Update(String, String),
    Delete(String),
}

fn op(i: usize) -> Op {
    match i % 3 {
        _ if i == 0 => Op::Create("/d/counter".into(), "0".into()),
        1 => Op::Create(format!("/d/k{i:07}"), format!("v{i}")),
        2 => Op::Update("/d/counter".into(), i.to_string()),
        _ => Op::Delete(format!("/d/k{:07}", i - 2)),
    }
}

impl Op {
    fn kind(&self) -> EventKind {
        match self {
            Op::Create(..) => EventKind::Created,
            Op::Update(..) => EventKind::Updated,
            Op::Delete(..) => EventKind::Deleted,
        }
    }
}

/// Applies op `i` to `store`; `counter` is the counter's last revision.
async fn apply(
    store: &dyn Storage,
    i: usize,
    counter: &mut Revision,
) -> Result<Revision, StorageError> {
    match op(i) {
        Op::Create(key, value) => {
            let kv = store.create(&key, Bytes::from(value)).await?;
            if i == 0 {
                *counter = kv.mod_revision;
            }
            Ok(kv.mod_revision)
        }
        Op::Update(key, value) => {
            let kv = store.update(&key, Bytes::from(value), *counter).await?;
            *counter = kv.mod_revision;
            Ok(kv.mod_revision)
        }
        Op::Delete(key) => Ok(store.delete(&key, None).await?.revision),
    }
}

/// What the keys hold after ops `0..n` were applied with `revisions`
/// (`None` for an op whose revision is unknown): key -> (value, mod_revision).
fn expected_state(
    n: usize,
    revisions: &[Option<Revision>],
) -> BTreeMap<String, (String, Option<Revision>)> {
    let mut state = BTreeMap::new();
    for i in 0..n {
        let revision = revisions.get(i).copied().flatten();
        match op(i) {
            Op::Create(key, value) | Op::Update(key, value) => {
                state.insert(key, (value, revision));
            }
            Op::Delete(key) => {
                state.remove(&key);
            }
        }
    }
    state
}

/// Reads every key under `/d/` and compares it with ops `0..acked` applied,
/// allowing the one op in flight at the crash to have landed too. Returns
/// whether it did.
async fn check_state(store: &dyn Storage, acked: &[Revision]) -> bool {
    let listed = store
        .list(vcluster_apiserver::storage::ListRequest::prefix("/d/"))
        .await
        .expect("list after the crash");
    let actual: BTreeMap<String, (String, Revision)> = listed
        .items
        .into_iter()
        .map(|kv| {
            let value = String::from_utf8(kv.value.to_vec()).expect("utf-8 value");
            (kv.key, (value, kv.mod_revision))
        })
        .collect();
    let matches = |n: usize| {
        let revisions: Vec<Option<Revision>> = acked.iter().copied().map(Some).collect();
        let expected = expected_state(n, &revisions);
        expected.len() == actual.len()
            && expected.iter().all(|(key, (value, revision))| {
                actual.get(key).is_some_and(|(v, r)| {
                    v == value && revision.is_none_or(|expected| *r == expected)
                })
            })
    };
    if matches(acked.len()) {
        return false;
    }
    assert!(
        matches(acked.len() + 1),
        "after the crash the store holds neither the {} acknowledged writes nor those plus the \
         one in flight: {actual:?}",
        acked.len()
    );
    true
}

async fn next_event(
    watch: &mut WatchStream,
) -> Result<vcluster_apiserver::storage::WatchEvent, StorageError> {
    match tokio::time::timeout(DEADLINE, watch.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("the watch ended without an error"),
        Err(_) => panic!("no watch event within {DEADLINE:?}"),
    }
}

/// Checks that `watch` yields ops `first..acked.len()` exactly, in order,
/// with their revisions and kinds.
async fn expect_ops(watch: &mut WatchStream, acked: &[Revision], first: usize) {
    for (i, revision) in acked.iter().enumerate().skip(first) {
        let event = next_event(watch).await.expect("watch after the crash");
        assert_eq!(
            (event.revision, event.kind),
            (*revision, op(i).kind()),
            "event of op {i}"
        );
    }
}

/// After the acknowledged ops: the op in flight at the crash (if it
/// landed), then the first write after the restart.
async fn expect_tail(
    watch: &mut WatchStream,
    in_flight_landed: bool,
    last: Revision,
    fresh: Revision,
) {
    let mut event = next_event(watch).await.expect("watch after the crash");
    if in_flight_landed {
        assert_eq!(event.revision, last + 1, "the write in flight at the crash");
        event = next_event(watch).await.expect("watch after the crash");
    }
    assert_eq!(event.revision, fresh, "the first write after the restart");
}

// ---------------------------------------------------------------------------
// SQLite

/// The child side of [`sqlite_acknowledged_writes_survive_sigkill`]; a no-op
/// unless [`CHILD_DB_ENV`] is set (that is, in a normal test run).
#[test]
fn durability_child_process() {
    let Some(path) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let synchronous = match std::env::var(CHILD_SYNC_ENV).as_deref() {
        Ok("normal") => Synchronous::Normal,
        _ => Synchronous::Full,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let options = SqliteOptions {
            history: CHILD_HISTORY,
            synchronous,
        };
        let store = SqliteStorage::open_with(Path::new(&path), options)
            .await
            .expect("child: open");
        let mut counter = 0;
        let mut out = std::io::stdout().lock();
        for i in 0..CHILD_MAX_OPS {
            let revision = apply(&store, i, &mut counter).await.expect("child: write");
            // Written straight to fd 1 (not through the test harness'
            // capture) and flushed: once the parent reads the line, the
            // write was acknowledged.
            writeln!(out, "{ACK_MARKER}{i} {revision}")
                .and_then(|()| out.flush())
                .expect("child: stdout");
        }
    });
}

/// Runs the child against `path` until `ACKS_BEFORE_KILL` acknowledgements
/// arrived, SIGKILLs it and returns every acknowledged revision, in op order.
fn run_child_and_kill(path: &Path, sync: &str) -> Vec<Revision> {
    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new(exe)
        .args([
            "durability_child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, path)
        .env(CHILD_SYNC_ENV, sync)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let record = |acked: &mut Vec<Revision>, line: String| {
        // The harness may print its own text before ours on the same line.
        let Some((_, ack)) = line.split_once(ACK_MARKER) else {
            return;
        };
        let mut parts = ack.split_whitespace();
        let index: usize = parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("ack index");
        let revision: Revision = parts
            .next()
            .and_then(|p| p.parse().ok())
            .expect("ack revision");
        assert_eq!(index, acked.len(), "the child acknowledges ops in order");
        acked.push(revision);
    };
    let deadline = Instant::now() + DEADLINE;
    while acked.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => record(&mut acked, line),
            Err(err) => {
                let _ = child.kill();
                panic!(
                    "the child acknowledged only {} writes in time: {err}",
                    acked.len()
                );
            }
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    // Lines already in the pipe were acknowledged before the kill: keep them.
    while let Ok(line) = received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        record(&mut acked, line);
    }
    reader.join().expect("reader thread");
    acked
}

async fn sqlite_survives_sigkill(sync: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let acked = run_child_and_kill(&path, sync);
    let last = *acked.last().expect("acknowledged writes");
    assert!(
        acked.windows(2).all(|w| w[0] < w[1]),
        "acknowledged revisions increase"
    );

    let store = SqliteStorage::open_with(
        &path,
        SqliteOptions {
            history: CHILD_HISTORY,
            synchronous: Synchronous::Full,
        },
    )
    .await
    .expect("reopen after SIGKILL");
    let in_flight_landed = check_state(&store, &acked).await;
    let current = store.current_revision().await.expect("revision");
    assert_eq!(current, last + u64::from(in_flight_landed));

    // A watch from the last revision the parent saw (a little behind the
    // end) resumes with exactly the writes after it.
    let from = acked.len() - 20;
    let mut watch = store.watch("/d/", acked[from]).await.expect("resume watch");
    expect_ops(&mut watch, &acked, from + 1).await;
    // New writes continue upward and reach the resumed watch.
    let fresh = store
        .create("/d/after-crash", Bytes::from_static(b"x"))
        .await
        .expect("write after reopen");
    assert!(fresh.mod_revision > current, "revisions continue upward");
    expect_tail(&mut watch, in_flight_landed, last, fresh.mod_revision).await;

    // History older than the window was compacted before the crash: a
    // watch from there says so instead of skipping events.
    match store.watch("/d/", acked[0]).await {
        Err(StorageError::Expired { requested, oldest }) => {
            assert_eq!(requested, acked[0]);
            assert!(oldest > acked[0]);
        }
        Ok(_) => panic!("a watch from before the kept history must be Expired"),
        Err(other) => panic!("expected Expired, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_writes_survive_sigkill() {
    sqlite_survives_sigkill("full").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_with_normal_sync_survives_sigkill_too() {
    sqlite_survives_sigkill("normal").await;
}

// ---------------------------------------------------------------------------
// etcd

/// The etcd half needs the etcd client (cargo feature `etcd`).
#[cfg(feature = "etcd")]
mod etcd {
    use super::*;
    use vcluster_apiserver::storage::etcd::EtcdOptions;
    use vcluster_apiserver::storage::EtcdStorage;
    use vcluster_testkit::etcd::EtcdServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn etcd_acknowledged_writes_survive_sigkill_of_the_server() {
        let mut etcd = EtcdServer::start();
        let options = EtcdOptions {
            request_timeout: Duration::from_secs(2),
            ..EtcdOptions::with_prefix("/durability")
        };
        let store = Arc::new(
            EtcdStorage::connect_with(&[etcd.endpoint()], options.clone())
                .await
                .expect("connect"),
        );
        let start = store.current_revision().await.expect("revision");
        // Opened before the crash; must carry on across it by itself.
        let mut early_watch = store.watch("/d/", start).await.expect("watch");

        let (acks, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<Revision>();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut counter = 0;
                let mut i = 0;
                // Stops at its first failure: whether that write landed is
                // unknown, and the acknowledged stream must stay a prefix of op().
                while !stop.load(Ordering::Acquire) && i < CHILD_MAX_OPS {
                    match apply(store.as_ref(), i, &mut counter).await {
                        Ok(revision) => {
                            if acks.send(revision).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                    i += 1;
                }
            })
        };
        let mut acked = Vec::new();
        while acked.len() < ACKS_BEFORE_KILL {
            match tokio::time::timeout(DEADLINE, acked_rx.recv()).await {
                Ok(Some(revision)) => acked.push(revision),
                Ok(None) => panic!(
                    "the writer failed after {} writes, before the crash",
                    acked.len()
                ),
                Err(_) => panic!(
                    "the writer acknowledged only {} writes in time",
                    acked.len()
                ),
            }
        }
        // SIGKILL while the writer keeps going: some write is in flight.
        etcd.kill();
        stop.store(true, Ordering::Release);
        tokio::time::timeout(DEADLINE, writer)
            .await
            .expect("the writer notices the dead server in time")
            .expect("writer task");
        while let Ok(revision) = acked_rx.try_recv() {
            acked.push(revision);
        }
        let last = *acked.last().expect("acknowledged writes");
        assert!(
            acked.windows(2).all(|w| w[0] < w[1]),
            "acknowledged revisions increase"
        );

        etcd.restart();
        let reconnected = EtcdStorage::connect_with(&[etcd.endpoint()], options)
            .await
            .expect("reconnect after the restart");
        let in_flight_landed = check_state(&reconnected, &acked).await;
        let current = reconnected.current_revision().await.expect("revision");
        assert!(
            current >= last,
            "no acknowledged revision is lost ({current} < {last})"
        );

        // The old client reconnects on its own.
        tokio::time::timeout(DEADLINE, async {
            while store.current_revision().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the old client recovers in time");
        // A new watch from the last revision seen resumes without loss.
        let from = acked.len() - 20;
        let mut watch = reconnected.watch("/d/", acked[from]).await.expect("watch");
        expect_ops(&mut watch, &acked, from + 1).await;
        // The watch opened before the crash resumed by itself: every write.
        expect_ops(&mut early_watch, &acked, 0).await;

        let fresh = store
            .create("/d/after-crash", Bytes::from_static(b"x"))
            .await
            .expect("write after the restart");
        assert!(fresh.mod_revision > current, "revisions continue upward");
        expect_tail(&mut watch, in_flight_landed, last, fresh.mod_revision).await;
        expect_tail(&mut early_watch, in_flight_landed, last, fresh.mod_revision).await;
    }
}
