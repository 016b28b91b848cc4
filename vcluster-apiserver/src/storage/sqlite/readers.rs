//! The read side: a small pool of read-only connections used on tokio's
//! blocking pool, point reads and snapshot lists. In WAL mode a reader never
//! waits for the writer.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};

use super::open::open_reader;
use super::schema::{key_at, list_start, load_revisions, prefix_end, revision_at, to_sql};
use super::{backend, sql};
use crate::storage::{KeyValue, ListRequest, ListResponse, Revision, StorageError};

/// Read-only connections kept open between reads.
const IDLE_READERS: usize = 4;

/// What readers (including watch streams) share with the writer: the file,
/// the idle read connections and the last committed revision.
pub(super) struct Shared {
    /// The database file.
    pub(super) path: PathBuf,
    /// Read-only connections waiting for the next read.
    idle_readers: Mutex<Vec<Connection>>,
    /// The last committed revision.
    pub(super) committed: AtomicU64,
}

impl Shared {
    /// State for a file whose last committed revision is `committed`.
    pub(super) fn new(path: PathBuf, committed: Revision) -> Self {
        Self {
            path,
            idle_readers: Mutex::new(Vec::new()),
            committed: AtomicU64::new(committed),
        }
    }

    /// An idle read connection, or a new one when none is idle.
    fn take_reader(&self) -> rusqlite::Result<Connection> {
        let pooled = self
            .idle_readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    /// Returns a read connection to the pool (closing it when the pool is full).
    pub(super) fn put_reader(&self, conn: Connection) {
        let mut readers = self
            .idle_readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
    }
}

/// Runs `f` on a pooled read-only connection on the blocking pool.
pub(super) async fn read<T, F>(
    shared: &Arc<Shared>,
    operation: &'static str,
    f: F,
) -> Result<T, StorageError>
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
pub(super) struct LatestRow {
    pub(super) revision: Revision,
    pub(super) create_revision: Revision,
    pub(super) value: Vec<u8>,
    pub(super) deleted: bool,
}

/// The latest row of `key` (tombstones included), if the key was ever written.
pub(super) fn latest_row(conn: &Connection, key: &str) -> rusqlite::Result<Option<LatestRow>> {
    conn.prepare_cached(
        "SELECT revision, create_revision, value, deleted FROM log
         WHERE key = ?1 ORDER BY revision DESC LIMIT 1",
    )?
    .query_row([key.as_bytes()], |row| {
        Ok(LatestRow {
            revision: revision_at(row, 0)?,
            create_revision: revision_at(row, 1)?,
            value: row.get(2)?,
            deleted: row.get(3)?,
        })
    })
    .optional()
}

/// The current and compacted revisions as seen by this transaction.
pub(super) fn snapshot_revisions(
    conn: &Connection,
    operation: &'static str,
) -> Result<(Revision, Revision), StorageError> {
    load_revisions(conn).map_err(sql(operation))
}

/// One page of a list, read in one transaction (a WAL snapshot).
pub(super) fn list_at_snapshot(
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
