//! The revision log inside the writer's transaction: each write appends one
//! row with the next revision after checking the key's latest row, and
//! compaction drops rows no read at or after the bound can see.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection};

use super::readers::{latest_row, LatestRow};
use super::schema::to_sql;
use crate::storage::{Deleted, EventKind, KeyValue, Revision, StorageError, WatchEvent};

/// What a successful write request produced, sent back to its caller.
pub(super) enum WriteOutcome {
    /// A created or updated key.
    Written(KeyValue),
    /// A deleted key.
    Deleted(Deleted),
    /// The compaction bound moved (or already was there).
    Compacted,
}

/// What one batch produced before its commit.
pub(super) struct AppliedBatch {
    /// One outcome per request, in order.
    pub(super) outcomes: Vec<Result<WriteOutcome, StorageError>>,
    /// The events to publish once the batch committed.
    pub(super) events: Vec<Arc<WatchEvent>>,
    /// The last revision handed out so far.
    pub(super) revision: Revision,
    /// The compaction bound so far.
    pub(super) compacted: Revision,
}

/// Appends a row with the next revision.
fn append(
    tx: &Connection,
    applied: &mut AppliedBatch,
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
pub(super) type OpResult = rusqlite::Result<Result<WriteOutcome, StorageError>>;

/// The latest row of `key` for a change guarded by `expected`: `NotFound`
/// when the key does not exist (or is deleted), `Conflict` when its
/// revision is not the expected one.
fn live_row(
    tx: &Connection,
    key: &str,
    expected: Option<Revision>,
) -> rusqlite::Result<Result<LatestRow, StorageError>> {
    let Some(row) = latest_row(tx, key)?.filter(|row| !row.deleted) else {
        return Ok(Err(StorageError::NotFound {
            key: key.to_owned(),
        }));
    };
    match expected {
        Some(expected) if row.revision != expected => Ok(Err(StorageError::Conflict {
            key: key.to_owned(),
            expected,
            current: row.revision,
        })),
        _ => Ok(Ok(row)),
    }
}

/// Creates `key`, unless it exists.
pub(super) fn create(
    tx: &Connection,
    applied: &mut AppliedBatch,
    key: &str,
    value: &Bytes,
) -> OpResult {
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
    Ok(Ok(WriteOutcome::Written(KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: revision,
        mod_revision: revision,
    })))
}

/// Replaces `key`'s value if its revision is still `expected`.
pub(super) fn update(
    tx: &Connection,
    applied: &mut AppliedBatch,
    key: &str,
    value: &Bytes,
    expected: Revision,
) -> OpResult {
    let row = match live_row(tx, key, Some(expected))? {
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
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
    Ok(Ok(WriteOutcome::Written(KeyValue {
        key: key.to_owned(),
        value: value.clone(),
        create_revision: row.create_revision,
        mod_revision: revision,
    })))
}

/// Writes a tombstone for `key`, if its revision is `expected` (when given).
pub(super) fn delete(
    tx: &Connection,
    applied: &mut AppliedBatch,
    key: &str,
    expected: Option<Revision>,
) -> OpResult {
    let row = match live_row(tx, key, expected)? {
        Ok(row) => row,
        Err(refusal) => return Ok(Err(refusal)),
    };
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
    Ok(Ok(WriteOutcome::Deleted(Deleted {
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
pub(super) fn compact(tx: &Connection, from: Revision, to: Revision) -> rusqlite::Result<()> {
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
