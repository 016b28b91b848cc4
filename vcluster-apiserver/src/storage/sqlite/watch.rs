//! Watch streams: a watch first reads the log after its starting revision
//! in pages, then follows the writer's live channel; when it falls behind
//! that channel it reads the log again from its last revision, so a slow
//! watcher never loses an event.

use std::sync::Arc;

use bytes::Bytes;
use rusqlite::{params, Connection};
use tokio::sync::broadcast;

use super::readers::{read, snapshot_revisions, Shared};
use super::schema::{key_at, prefix_end, revision_at, to_sql};
use super::{backend, sql};
use crate::storage::{EventKind, PendingEvents, Revision, StorageError, WatchEvent, WatchStream};

/// Rows a catching-up watcher reads from the log per query.
const WATCH_PAGE: usize = 512;

/// Starts a watch of the keys under `prefix` after revision `after`.
pub(super) async fn start(
    shared: &Arc<Shared>,
    live: &broadcast::Sender<Arc<WatchEvent>>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StorageError> {
    // Subscribe before reading the log: every commit the first read
    // misses is then on the channel.
    let receiver = live.subscribe();
    let owned_prefix = prefix.to_owned();
    let first = read(shared, "watch", move |conn| {
        read_events(conn, &owned_prefix, after, WATCH_PAGE)
    })
    .await?;
    let watch = SqliteWatch {
        shared: shared.clone(),
        prefix: prefix.to_owned(),
        catching_up: first.len() == WATCH_PAGE,
        pending: PendingEvents::new(after, first.into()),
        receiver,
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(watch, SqliteWatch::next)))
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

/// State of one watch between two polls.
struct SqliteWatch {
    shared: Arc<Shared>,
    prefix: String,
    /// Events yet to hand out, and the last revision handed out.
    pending: PendingEvents,
    /// Reading the log (the channel may hold only part of what is missing).
    catching_up: bool,
    receiver: broadcast::Receiver<Arc<WatchEvent>>,
    done: bool,
}

impl SqliteWatch {
    /// The next event, reading the log or waiting on the channel as needed.
    async fn next(mut self) -> Option<(Result<WatchEvent, StorageError>, Self)> {
        loop {
            if let Some(event) = self.pending.next_new() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            if self.catching_up {
                let prefix = self.prefix.clone();
                let after = self.pending.last;
                match read(&self.shared, "watch", move |conn| {
                    read_events(conn, &prefix, after, WATCH_PAGE)
                })
                .await
                {
                    Ok(page) => {
                        self.catching_up = page.len() == WATCH_PAGE;
                        self.pending.queue.extend(page);
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
                    self.pending.push_live(&event, &self.prefix);
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
