//! The persistent embedded backend: one SQLite file, laid out like kine.
//!
//! # Layout
//! Every write appends one row to a `log` table whose `INTEGER PRIMARY KEY
//! AUTOINCREMENT` column *is* the [`Revision`]. A row carries the key, the
//! value, the key's `create_revision`, the revision of the key's previous row
//! and a `deleted` flag (a delete stores the last value, so a delete event is
//! self-contained). The single writer numbers rows consecutively itself, and
//! `AUTOINCREMENT` makes SQLite keep the highest revision ever used (in
//! `sqlite_sequence`) even when compaction removes that row; a reopened store
//! continues from there, so revisions never go backwards. A small `meta` table
//! holds the schema version and the compacted revision; the file's
//! `application_id` marks it as ours, so a foreign or newer file is refused
//! with a clear [`SqliteOpenError`] instead of being misread.
//!
//! Reads follow from the layout: a key's value at revision `R` is its newest
//! row with `revision <= R`, absent when that row is a tombstone. A list is
//! one read transaction (a WAL snapshot), so its revision and its rows agree.
//!
//! # Threads
//! SQLite calls block, so none runs on the async runtime's threads:
//! - **One writer thread** owns the only read-write connection. Writes are
//!   sent to it over a bounded channel; it drains whatever is queued (up to
//!   [`MAX_BATCH`] requests) into **one transaction**, so concurrent writers
//!   share one `fsync` (group commit) without giving up anything: each
//!   request is still checked and applied in order inside that transaction,
//!   and no caller hears back before `COMMIT` returned. Compare-and-swap is
//!   trivially atomic because there is exactly one writer.
//! - **Reads** run on tokio's blocking pool (`spawn_blocking`) over a small
//!   pool of read-only connections; in WAL mode they never wait for the
//!   writer.
//!
//! # Durability
//! The file is in WAL mode. With [`Synchronous::Full`] (the default) every
//! commit is `fsync`ed before it is acknowledged, so an acknowledged write
//! survives a crash of the process *and* of the machine. With
//! [`Synchronous::Normal`] the WAL is only synced at checkpoints: a commit is
//! still written to the WAL file (the kernel's page cache) before it is
//! acknowledged, so it survives `SIGKILL` of the process, but a power loss
//! may roll back the last commits. Group commit keeps `Full` affordable.
//!
//! # Watches and compaction
//! After each commit the writer publishes the batch's events on a broadcast
//! channel. A watch first reads the log after its starting revision (in
//! pages), then follows the broadcast; when it falls behind the channel it
//! simply reads the log again from its last revision, so a slow watcher never
//! loses an event. History is bounded: once more than
//! [`SqliteOptions::history`] revisions (plus a slack of one eighth) piled
//! up, the writer compacts in the same transaction as the batch. Compaction
//! deletes rows superseded at or below the bound, plus tombstones there, and
//! records the bound; reads and watches that need older history get
//! [`StorageError::Expired`].
//!
//! One process at a time: the store holds an exclusive lock on a
//! `<file>.lock` file next to the database, so a second server on the same
//! file fails fast instead of splitting the watch stream.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    Deleted, EventKind, KeyValue, ListRequest, ListResponse, Revision, Storage, StorageError,
    WatchEvent, WatchStream,
};

/// How many revisions the store keeps for watches and old-revision reads,
/// unless configured otherwise (the same window as the memory backend).
pub const DEFAULT_HISTORY: u64 = 10_000;

/// The layout version this build reads and writes; bumped on any change an
/// older build could misread.
pub const SCHEMA_VERSION: i64 = 1;

/// `PRAGMA application_id` of our files ("vcls"), so a foreign SQLite file
/// is recognised before anything reads its tables.
const APPLICATION_ID: i32 = 0x7663_6c73;

/// Most write requests folded into one transaction (one `fsync`).
pub const MAX_BATCH: usize = 256;

/// Queued write requests before writers wait (back-pressure).
const WRITE_QUEUE: usize = 1_024;

/// Capacity of the live event channel; a watcher further behind than this
/// catches up from the log instead.
const LIVE_CHANNEL_CAPACITY: usize = 4_096;

/// Rows a catching-up watcher reads from the log per query.
const WATCH_PAGE: usize = 512;

/// Read-only connections kept open between reads.
const IDLE_READERS: usize = 4;

/// How long a connection waits for a lock (only checkpoints and recovery
/// take one in WAL mode) before it reports `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const BACKEND: &str = "sqlite";

/// How hard each commit is pushed to disk (SQLite's `PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `fsync` on every commit: acknowledged writes survive a power loss.
    #[default]
    Full,
    /// `fsync` only at checkpoints: acknowledged writes survive a crash of
    /// the process, not of the machine. Faster on slow disks.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// How a [`SqliteStorage`] keeps its history and syncs its commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Revisions kept for watches and old-revision reads (at least one);
    /// older history is compacted automatically.
    pub history: u64,
    /// How commits are synced to disk.
    pub synchronous: Synchronous,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            history: DEFAULT_HISTORY,
            synchronous: Synchronous::Full,
        }
    }
}

/// Why a SQLite file could not be opened as a store.
#[derive(Debug, thiserror::Error)]
pub enum SqliteOpenError {
    /// The directory that should hold the file could not be created.
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The lock file next to the database could not be created or locked.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Another store (in this or another process) has the file open.
    #[error("{path} is already in use by another vcluster storage (lock file {lock} is held)")]
    InUse {
        /// The database file.
        path: PathBuf,
        /// The lock file that is held.
        lock: PathBuf,
    },
    /// The file exists but is not a SQLite database (or is corrupt).
    #[error("{path} is not a SQLite database (or it is corrupt or encrypted)")]
    NotADatabase {
        /// The database file.
        path: PathBuf,
    },
    /// The file is a SQLite database written by another application.
    #[error(
        "{path} is a SQLite database of another application (application_id {application_id:#x}, \
         {tables} tables); refusing to touch it"
    )]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// The file's `PRAGMA application_id`.
        application_id: i32,
        /// How many tables it holds.
        tables: i64,
    },
    /// The file was written by a build with another layout.
    #[error(
        "{path} has storage schema version {found}, but this build only reads version {supported}"
    )]
    IncompatibleSchema {
        /// The database file.
        path: PathBuf,
        /// The version stored in the file.
        found: i64,
        /// The version this build understands.
        supported: i64,
    },
    /// The file system refused write-ahead logging (e.g. some network file
    /// systems); without it readers would block the writer.
    #[error("{path} cannot use write-ahead logging (journal mode stayed {mode:?})")]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// SQLite failed while opening or preparing the file.
    #[error("cannot open {path} while {step}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What the opener was doing.
        step: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the SQLite writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The blocking task that opens the file panicked or was cancelled.
    #[error("opening {path} was interrupted: {message}")]
    Interrupted {
        /// The database file.
        path: PathBuf,
        /// What the runtime reported.
        message: String,
    },
}

/// A persistent [`Storage`] in one SQLite file (see the module docs).
///
/// Cheap to clone; the file is closed (and its lock released) when the last
/// clone is dropped. Watch streams outliving the store end with an error.
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

/// Owned by the store handles: the writer and the file lock.
struct Inner {
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    /// Kept for subscribing new watches; the writer holds the other sender,
    /// so watches see the channel close once the store is gone.
    live: Option<broadcast::Sender<Arc<WatchEvent>>>,
    shared: Arc<Shared>,
    /// Dropped last: released once the writer has closed the file.
    _lock: File,
}

/// What readers (including watch streams) share with the writer.
struct Shared {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// The last committed revision.
    committed: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer's loop; waiting for it means the
        // file is closed and unlocked when the last handle is gone, so the
        // same path can be reopened right away.
        self.commands.take();
        self.live.take();
        if let Some(writer) = self.writer.take() {
            if writer.join().is_err() {
                tracing::error!(path = %self.shared.path.display(), "sqlite writer thread panicked");
            }
        }
    }
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Opens (or creates) the store at `path` with the default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, SqliteOpenError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens (or creates) the store at `path`. Missing parent directories
    /// are created. The file I/O runs on the blocking pool.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, SqliteOpenError> {
        let path = path.as_ref().to_path_buf();
        let for_error = path.clone();
        tokio::task::spawn_blocking(move || open_blocking(path, options))
            .await
            .map_err(|err| SqliteOpenError::Interrupted {
                path: for_error,
                message: err.to_string(),
            })?
    }

    /// The database file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    async fn write(&self, op: Op, operation: &'static str) -> Result<Outcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        let closed = || backend(operation, "the writer thread has stopped");
        let commands = self.inner.commands.as_ref().ok_or_else(closed)?;
        commands
            .send(Command { op, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn read<T, F>(&self, operation: &'static str, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    {
        read(&self.inner.shared, operation, f).await
    }
}

fn backend(operation: &'static str, message: impl std::fmt::Display) -> StorageError {
    StorageError::Backend {
        backend: BACKEND,
        operation,
        message: message.to_string(),
    }
}

fn sql(operation: &'static str) -> impl Fn(rusqlite::Error) -> StorageError {
    move |err| backend(operation, err)
}

/// A revision as SQLite stores it; revisions beyond `i64::MAX` cannot exist,
/// so saturating keeps comparisons right.
fn to_sql(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

/// Reads a revision column; a negative value can only come from a corrupt
/// or foreign file and is reported as such.
fn revision_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Revision> {
    let raw: i64 = row.get(idx)?;
    Revision::try_from(raw).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, raw))
}

/// Reads a key column (stored as a BLOB so ordering is byte-wise).
fn key_at(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<String> {
    let raw: Vec<u8> = row.get(idx)?;
    String::from_utf8(raw).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(err))
    })
}

/// The smallest byte string greater than every key starting with `prefix`.
/// Keys are UTF-8, which never contains the byte `0xFF`, so bumping the last
/// byte always works and `[0xFF]` bounds the empty prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.split_last() {
        Some((last, rest)) if *last < 0xFF => {
            let mut end = rest.to_vec();
            end.push(last + 1);
            end
        }
        _ => vec![0xFF],
    }
}

/// The inclusive lower bound of a list: the prefix, or just after
/// `start_after` when that lies inside the prefix range.
fn list_start(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    match start_after {
        Some(after) if after >= prefix => {
            let mut start = after.as_bytes().to_vec();
            start.push(0);
            start
        }
        _ => prefix.as_bytes().to_vec(),
    }
}

// ---------------------------------------------------------------------------
// Opening

fn open_blocking(path: PathBuf, options: SqliteOptions) -> Result<SqliteStorage, SqliteOpenError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SqliteOpenError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let lock = lock_file(&path)?;
    let step = |step: &'static str| {
        let path = path.clone();
        move |source: rusqlite::Error| classify_open_error(&path, step, source)
    };

    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(step("opening the file"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(step("setting the busy timeout"))?;
    // The first statement reads the header: a non-database fails here.
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(step("reading the application id"))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |row| row.get(0),
        )
        .map_err(step("listing tables"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(step("enabling write-ahead logging"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SqliteOpenError::NoWal { path, mode });
    }
    conn.pragma_update(None, "synchronous", options.synchronous.pragma())
        .map_err(step("setting the sync mode"))?;

    match (application_id, tables) {
        (0, 0) => create_schema(&conn).map_err(step("creating the schema"))?,
        (APPLICATION_ID, _) => {}
        (application_id, tables) => {
            return Err(SqliteOpenError::ForeignDatabase {
                path,
                application_id,
                tables,
            })
        }
    }
    let found: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(step("reading the schema version"))?;
    if found != Some(SCHEMA_VERSION) {
        return Err(SqliteOpenError::IncompatibleSchema {
            path,
            found: found.unwrap_or(0),
            supported: SCHEMA_VERSION,
        });
    }
    let (revision, compacted) =
        load_revisions(&conn).map_err(step("reading the current revision"))?;

    let shared = Arc::new(Shared {
        path: path.clone(),
        readers: Mutex::new(Vec::new()),
        committed: AtomicU64::new(revision),
    });
    // Fail now, not on the first read, if readers cannot open the file.
    let reader = open_reader(&path).map_err(step("opening a reader"))?;
    shared.put_reader(reader);

    let (commands, queue) = mpsc::channel(WRITE_QUEUE);
    let (live, _) = broadcast::channel(LIVE_CHANNEL_CAPACITY);
    let writer = Writer {
        conn,
        queue,
        live: live.clone(),
        shared: shared.clone(),
        history: options.history.max(1),
        revision,
        compacted,
    };
    let writer = std::thread::Builder::new()
        .name("vcluster-sqlite-writer".into())
        .spawn(move || writer.run())
        .map_err(SqliteOpenError::Thread)?;
    Ok(SqliteStorage {
        inner: Arc::new(Inner {
            commands: Some(commands),
            writer: Some(writer),
            live: Some(live),
            shared,
            _lock: lock,
        }),
    })
}

fn lock_file(path: &Path) -> Result<File, SqliteOpenError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| SqliteOpenError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(SqliteOpenError::InUse {
            path: path.to_path_buf(),
            lock: lock_path,
        }),
        Err(TryLockError::Error(source)) => Err(SqliteOpenError::Lock {
            path: lock_path,
            source,
        }),
    }
}

fn classify_open_error(
    path: &Path,
    step: &'static str,
    source: rusqlite::Error,
) -> SqliteOpenError {
    if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
        SqliteOpenError::NotADatabase {
            path: path.to_path_buf(),
        }
    } else {
        SqliteOpenError::Sqlite {
            path: path.to_path_buf(),
            step,
            source,
        }
    }
}

fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         CREATE TABLE meta (
             name  TEXT PRIMARY KEY NOT NULL,
             value INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE TABLE log (
             revision        INTEGER PRIMARY KEY AUTOINCREMENT,
             key             BLOB    NOT NULL,
             value           BLOB    NOT NULL,
             create_revision INTEGER NOT NULL,
             prev_revision   INTEGER NOT NULL,
             deleted         INTEGER NOT NULL
         );
         CREATE INDEX log_key_revision ON log (key, revision);
         INSERT INTO meta (name, value) VALUES ('schema_version', {SCHEMA_VERSION}), ('compacted', 0);
         PRAGMA application_id = {APPLICATION_ID};
         COMMIT;"
    ))
}

/// The highest revision ever handed out and the compacted revision.
fn load_revisions(conn: &Connection) -> rusqlite::Result<(Revision, Revision)> {
    let (revision, compacted): (i64, i64) = conn.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0),
                (SELECT value FROM meta WHERE name = 'compacted')",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let revision = Revision::try_from(revision).unwrap_or(0);
    let compacted = Revision::try_from(compacted).unwrap_or(0);
    Ok((revision.max(compacted), compacted))
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

// ---------------------------------------------------------------------------
// Reading

impl Shared {
    fn take_reader(&self) -> rusqlite::Result<Connection> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    fn put_reader(&self, conn: Connection) {
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
    }
}

/// Runs `f` on a pooled read-only connection on the blocking pool.
async fn read<T, F>(shared: &Arc<Shared>, operation: &'static str, f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
{
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = shared.take_reader().map_err(sql(operation))?;
        let result = f(&mut conn);
        // A failed read leaves no transaction open (the guard rolled back),
        // so the connection is fine to reuse.
        shared.put_reader(conn);
        result
    })
    .await
    .map_err(|err| backend(operation, format!("read task failed: {err}")))?
}

/// The latest row of a key, tombstones included.
struct Row {
    revision: Revision,
    create_revision: Revision,
    value: Vec<u8>,
    deleted: bool,
}

fn latest_row(conn: &Connection, key: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(
        "SELECT revision, create_revision, value, deleted FROM log
         WHERE key = ?1 ORDER BY revision DESC LIMIT 1",
    )?
    .query_row([key.as_bytes()], |row| {
        Ok(Row {
            revision: revision_at(row, 0)?,
            create_revision: revision_at(row, 1)?,
            value: row.get(2)?,
            deleted: row.get(3)?,
        })
    })
    .optional()
}

/// The current and compacted revisions as seen by this transaction.
fn snapshot_revisions(
    conn: &Connection,
    operation: &'static str,
) -> Result<(Revision, Revision), StorageError> {
    load_revisions(conn).map_err(sql(operation))
}

fn list_blocking(
    conn: &mut Connection,
    request: &ListRequest,
) -> Result<ListResponse, StorageError> {
    const OP: &str = "list";
    // One read transaction: the revision and the rows come from one snapshot.
    let tx = conn.transaction().map_err(sql(OP))?;
    let (current, compacted) = snapshot_revisions(&tx, OP)?;
    let revision = match request.revision {
        None | Some(0) => current,
        Some(r) if r > current => {
            return Err(StorageError::FutureRevision {
                requested: r,
                current,
            })
        }
        Some(r) if r < compacted => {
            return Err(StorageError::Expired {
                requested: r,
                oldest: compacted,
            })
        }
        Some(r) => r,
    };
    let end = prefix_end(request.prefix.as_bytes());
    let start = list_start(&request.prefix, request.start_after.as_deref());
    let limit = request
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut items = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT l.key, l.value, l.create_revision, l.revision
                 FROM (SELECT MAX(revision) AS r FROM log
                       WHERE key >= ?1 AND key < ?2 AND revision <= ?3
                       GROUP BY key) AS m
                 JOIN log AS l ON l.revision = m.r
                 WHERE l.deleted = 0
                 ORDER BY l.key
                 LIMIT ?4",
            )
            .map_err(sql(OP))?;
        let mut rows = stmt
            .query(params![start, end, to_sql(revision), limit])
            .map_err(sql(OP))?;
        while let Some(row) = rows.next().map_err(sql(OP))? {
            items.push(key_value(row).map_err(sql(OP))?);
        }
    }
    let remaining = match request.limit {
        Some(limit) if items.len() >= limit => {
            // Keys after the page (or all of them, for a zero-sized page).
            let from = items
                .last()
                .map_or(start, |kv| list_start(&request.prefix, Some(&kv.key)));
            let count: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*)
                     FROM (SELECT MAX(revision) AS r FROM log
                           WHERE key >= ?1 AND key < ?2 AND revision <= ?3
                           GROUP BY key) AS m
                     JOIN log AS l ON l.revision = m.r
                     WHERE l.deleted = 0",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![from, end, to_sql(revision)], |row| row.get(0))
                })
                .map_err(sql(OP))?;
            usize::try_from(count).unwrap_or(0)
        }
        _ => 0,
    };
    Ok(ListResponse {
        items,
        revision,
        remaining,
    })
}

/// A list row: key, value, create and mod revision.
fn key_value(row: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_at(row, 0)?,
        value: Bytes::from(row.get::<_, Vec<u8>>(1)?),
        create_revision: revision_at(row, 2)?,
        mod_revision: revision_at(row, 3)?,
    })
}

/// A log row as a watch event; the kind follows from the row itself.
fn event_at(row: &rusqlite::Row<'_>) -> rusqlite::Result<WatchEvent> {
    let revision = revision_at(row, 0)?;
    let key = key_at(row, 1)?;
    let value = Bytes::from(row.get::<_, Vec<u8>>(2)?);
    let create_revision = revision_at(row, 3)?;
    let deleted: bool = row.get(4)?;
    let prev: Option<Vec<u8>> = row.get(5)?;
    let (kind, prev_value) = if deleted {
        (EventKind::Deleted, Some(value.clone()))
    } else if create_revision == revision {
        (EventKind::Created, None)
    } else {
        (EventKind::Updated, prev.map(Bytes::from))
    };
    Ok(WatchEvent {
        kind,
        key,
        value,
        prev_value,
        revision,
    })
}

/// Up to `page` events under `prefix` after revision `after`, read from the
/// log in one snapshot; [`StorageError::Expired`] when that history is gone.
fn read_events(
    conn: &mut Connection,
    prefix: &str,
    after: Revision,
    page: usize,
) -> Result<Vec<WatchEvent>, StorageError> {
    const OP: &str = "watch";
    let tx = conn.transaction().map_err(sql(OP))?;
    let (_, compacted) = snapshot_revisions(&tx, OP)?;
    if after < compacted {
        return Err(StorageError::Expired {
            requested: after,
            oldest: compacted,
        });
    }
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.revision, l.key, l.value, l.create_revision, l.deleted, p.value
             FROM log AS l
             LEFT JOIN log AS p ON p.revision = l.prev_revision
                 AND l.deleted = 0 AND l.create_revision != l.revision
             WHERE l.revision > ?1 AND l.key >= ?2 AND l.key < ?3
             ORDER BY l.revision
             LIMIT ?4",
        )
        .map_err(sql(OP))?;
    let mut rows = stmt
        .query(params![
            to_sql(after),
            prefix.as_bytes(),
            prefix_end(prefix.as_bytes()),
            i64::try_from(page).unwrap_or(i64::MAX)
        ])
        .map_err(sql(OP))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(sql(OP))? {
        events.push(event_at(row).map_err(sql(OP))?);
    }
    Ok(events)
}

// ---------------------------------------------------------------------------
// Writing

/// One write request and where to send its outcome.
struct Command {
    op: Op,
    reply: oneshot::Sender<Result<Outcome, StorageError>>,
}

enum Op {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Update { .. } => "update",
            Op::Delete { .. } => "delete",
            Op::Compact { .. } => "compact",
        }
    }
}

enum Outcome {
    Written(KeyValue),
    Deleted(Deleted),
    Compacted,
}

/// The writer thread's state: the only read-write connection.
struct Writer {
    conn: Connection,
    queue: mpsc::Receiver<Command>,
    live: broadcast::Sender<Arc<WatchEvent>>,
    shared: Arc<Shared>,
    history: u64,
    /// Last committed revision.
    revision: Revision,
    /// Last committed compaction bound.
    compacted: Revision,
}

/// What one batch produced before its commit.
struct Applied {
    outcomes: Vec<Result<Outcome, StorageError>>,
    events: Vec<Arc<WatchEvent>>,
    revision: Revision,
    compacted: Revision,
}

impl Writer {
    fn run(mut self) {
        while let Some(first) = self.queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let ops: Vec<&Op> = batch.iter().map(|c| &c.op).collect();
            match self.apply(&ops) {
                Ok(applied) => {
                    self.revision = applied.revision;
                    self.compacted = applied.compacted;
                    self.shared
                        .committed
                        .store(applied.revision, Ordering::Release);
                    for event in applied.events {
                        // Nobody listening is fine: the log has the event.
                        let _ = self.live.send(event);
                    }
                    for (command, outcome) in batch.into_iter().zip(applied.outcomes) {
                        // The caller may have given up; the write stands.
                        let _ = command.reply.send(outcome);
                    }
                }
                Err(err) => {
                    // The transaction rolled back: nothing of this batch was
                    // written, so every request fails.
                    tracing::error!(path = %self.shared.path.display(), error = %err, "sqlite write batch failed");
                    for command in batch {
                        let operation = command.op.name();
                        let _ = command.reply.send(Err(backend(operation, &err)));
                    }
                }
            }
        }
    }

    /// Applies `ops` in order inside one transaction and commits it.
    fn apply(&mut self, ops: &[&Op]) -> rusqlite::Result<Applied> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut applied = Applied {
            outcomes: Vec::with_capacity(ops.len()),
            events: Vec::new(),
            revision: self.revision,
            compacted: self.compacted,
        };
        for op in ops {
            let outcome = match op {
                Op::Create { key, value } => create_in(&tx, &mut applied, key, value)?,
                Op::Update {
                    key,
                    value,
                    expected,
                } => update_in(&tx, &mut applied, key, value, *expected)?,
                Op::Delete { key, expected } => delete_in(&tx, &mut applied, key, *expected)?,
                Op::Compact { revision } => {
                    let target = (*revision).min(applied.revision);
                    if target > applied.compacted {
                        compact_in(&tx, applied.compacted, target)?;
                        applied.compacted = target;
                    }
                    Ok(Outcome::Compacted)
                }
            };
            applied.outcomes.push(outcome);
        }
        // Automatic compaction rides along in the same transaction, in steps
        // of an eighth of the window so it runs rarely.
        let step = (self.history / 8).max(1);
        if applied.revision.saturating_sub(applied.compacted) >= self.history + step {
            let target = applied.revision - self.history;
            compact_in(&tx, applied.compacted, target)?;
            applied.compacted = target;
        }
        tx.commit()?;
        Ok(applied)
    }
}

/// Appends a row with the next revision.
fn append(
    tx: &Connection,
    applied: &mut Applied,
    key: &str,
    value: &[u8],
    create_revision: Option<Revision>,
    prev_revision: Revision,
    deleted: bool,
) -> rusqlite::Result<Revision> {
    let revision = applied.revision + 1;
    tx.prepare_cached(
        "INSERT INTO log (revision, key, value, create_revision, prev_revision, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        to_sql(revision),
        key.as_bytes(),
        value,
        to_sql(create_revision.unwrap_or(revision)),
        to_sql(prev_revision),
        deleted
    ])?;
    applied.revision = revision;
    Ok(revision)
}

/// A logical refusal (the request fails, the batch goes on) inside an
/// otherwise healthy transaction; the outer `Result` carries SQLite errors,
/// which abort the whole batch.
type Applies = rusqlite::Result<Result<Outcome, StorageError>>;

fn create_in(tx: &Connection, applied: &mut Applied, key: &str, value: &Bytes) -> Applies {
    let existing = latest_row(tx, key)?;
    if existing.as_ref().is_some_and(|row| !row.deleted) {
        return Ok(Err(StorageError::AlreadyExists {
            key: key.to_owned(),
        }));
    }
    let prev_revision = existing.map_or(0, |row| row.revision);
    let revision = append(tx, applied, key, value, None, prev_revision, false)?;
    applied.events.push(Arc::new(WatchEvent {
        kind: EventKind::Created,
        key: key.to_owned(),
        value: value.clone(),
        prev_value: None,
        revision,
    }));
    Ok(Ok(Outcome::Written(KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: revision,
        mod_revision: revision,
    })))
}

fn update_in(
    tx: &Connection,
    applied: &mut Applied,
    key: &str,
    value: &Bytes,
    expected: Revision,
) -> Applies {
    let row = match latest_row(tx, key)? {
        Some(row) if !row.deleted => row,
        _ => {
            return Ok(Err(StorageError::NotFound {
                key: key.to_owned(),
            }))
        }
    };
    if row.revision != expected {
        return Ok(Err(StorageError::Conflict {
            key: key.to_owned(),
            expected,
            current: row.revision,
        }));
    }
    let revision = append(
        tx,
        applied,
        key,
        value,
        Some(row.create_revision),
        row.revision,
        false,
    )?;
    applied.events.push(Arc::new(WatchEvent {
        kind: EventKind::Updated,
        key: key.to_owned(),
        value: value.clone(),
        prev_value: Some(Bytes::from(row.value)),
        revision,
    }));
    Ok(Ok(Outcome::Written(KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: row.create_revision,
        mod_revision: revision,
    })))
}

fn delete_in(
    tx: &Connection,
    applied: &mut Applied,
    key: &str,
    expected: Option<Revision>,
) -> Applies {
    let row = match latest_row(tx, key)? {
        Some(row) if !row.deleted => row,
        _ => {
            return Ok(Err(StorageError::NotFound {
                key: key.to_owned(),
            }))
        }
    };
    if let Some(expected) = expected {
        if row.revision != expected {
            return Ok(Err(StorageError::Conflict {
                key: key.to_owned(),
                expected,
                current: row.revision,
            }));
        }
    }
    // The tombstone keeps the last value, so the delete event needs no join.
    let revision = append(
        tx,
        applied,
        key,
        &row.value,
        Some(row.create_revision),
        row.revision,
        true,
    )?;
    let value = Bytes::from(row.value);
    applied.events.push(Arc::new(WatchEvent {
        kind: EventKind::Deleted,
        key: key.to_owned(),
        value: value.clone(),
        prev_value: Some(value.clone()),
        revision,
    }));
    Ok(Ok(Outcome::Deleted(Deleted {
        revision,
        previous: KeyValue {
            key: key.to_owned(),
            value,
            create_revision: row.create_revision,
            mod_revision: row.revision,
        },
    })))
}

/// Moves the compaction bound from `from` to `to`: deletes every row at or
/// below `to` that a read at `to` or later cannot see (rows superseded at or
/// below `to`, and tombstones there). Only keys written in `(from, to]` can
/// have new such rows, which keeps each step proportional to its writes.
fn compact_in(tx: &Connection, from: Revision, to: Revision) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "DELETE FROM log WHERE revision IN (
             SELECT o.revision FROM log AS o
             WHERE o.revision <= ?2
               AND o.key IN (SELECT key FROM log WHERE revision > ?1 AND revision <= ?2)
               AND (o.deleted = 1 OR EXISTS (
                     SELECT 1 FROM log AS n
                     WHERE n.key = o.key AND n.revision > o.revision AND n.revision <= ?2)))",
    )?
    .execute(params![to_sql(from), to_sql(to)])?;
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?
        .execute([to_sql(to)])?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The trait

#[async_trait]
impl Storage for SqliteStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let key = key.to_owned();
        self.read("get", move |conn| {
            Ok(latest_row(conn, &key)
                .map_err(sql("get"))?
                .filter(|row| !row.deleted)
                .map(|row| KeyValue {
                    key,
                    value: Bytes::from(row.value),
                    create_revision: row.create_revision,
                    mod_revision: row.revision,
                }))
        })
        .await
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse, StorageError> {
        self.read("list", move |conn| list_blocking(conn, &request))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let op = Op::Create {
            key: key.to_owned(),
            value,
        };
        match self.write(op, "create").await? {
            Outcome::Written(kv) => Ok(kv),
            _ => Err(backend("create", "unexpected writer outcome")),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        let op = Op::Update {
            key: key.to_owned(),
            value,
            expected,
        };
        match self.write(op, "update").await? {
            Outcome::Written(kv) => Ok(kv),
            _ => Err(backend("update", "unexpected writer outcome")),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        let op = Op::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.write(op, "delete").await? {
            Outcome::Deleted(deleted) => Ok(deleted),
            _ => Err(backend("delete", "unexpected writer outcome")),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.inner.shared.committed.load(Ordering::Acquire))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let live = self
            .inner
            .live
            .as_ref()
            .ok_or_else(|| backend("watch", "the store is closed"))?;
        // Subscribe before reading the log: every commit the first read
        // misses is then on the channel.
        let receiver = live.subscribe();
        let owned_prefix = prefix.to_owned();
        let first = self
            .read("watch", move |conn| {
                read_events(conn, &owned_prefix, after, WATCH_PAGE)
            })
            .await?;
        let watch = SqliteWatch {
            shared: self.inner.shared.clone(),
            prefix: prefix.to_owned(),
            last: after,
            catching_up: first.len() == WATCH_PAGE,
            pending: first.into(),
            receiver,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(watch, SqliteWatch::next)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.write(Op::Compact { revision }, "compact").await?;
        Ok(())
    }
}

/// State of one watch between two polls.
struct SqliteWatch {
    shared: Arc<Shared>,
    prefix: String,
    /// Revision of the last event handed out (or the starting point).
    last: Revision,
    pending: VecDeque<WatchEvent>,
    /// Reading the log (the channel may hold only part of what is missing).
    catching_up: bool,
    receiver: broadcast::Receiver<Arc<WatchEvent>>,
    done: bool,
}

impl SqliteWatch {
    async fn next(mut self) -> Option<(Result<WatchEvent, StorageError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.revision > self.last {
                    self.last = event.revision;
                    return Some((Ok(event), self));
                }
                continue;
            }
            if self.done {
                return None;
            }
            if self.catching_up {
                let prefix = self.prefix.clone();
                let after = self.last;
                match read(&self.shared, "watch", move |conn| {
                    read_events(conn, &prefix, after, WATCH_PAGE)
                })
                .await
                {
                    Ok(page) => {
                        self.catching_up = page.len() == WATCH_PAGE;
                        self.pending.extend(page);
                    }
                    Err(err) => {
                        self.done = true;
                        return Some((Err(err), self));
                    }
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) => {
                    if event.revision > self.last && event.key.starts_with(&self.prefix) {
                        self.pending.push_back(WatchEvent::clone(&event));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Resubscribe first, then read the log from where we
                    // are: nothing can fall between the two.
                    self.receiver = self.receiver.resubscribe();
                    self.catching_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.done = true;
                    return Some((Err(backend("watch", "the store was closed")), self));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_every_key_under_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b""), vec![0xFF]);
        assert!(b"/a/\xF4\x8F\xBF\xBF".as_slice() < prefix_end(b"/a/").as_slice());
        assert_eq!(list_start("/p/", Some("/p/k")), b"/p/k\0".to_vec());
        assert_eq!(list_start("/p/", Some("/a")), b"/p/".to_vec());
        assert_eq!(list_start("/p/", None), b"/p/".to_vec());
    }
}
