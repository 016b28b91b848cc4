//! The single writer: one thread owns the only read-write connection,
//! drains queued requests into one transaction (group commit), then
//! publishes the batch's events to live watches and answers the callers.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::backend;
use super::readers::Shared;
use super::revision_log::{self, AppliedBatch, WriteOutcome};
use crate::storage::{Revision, StorageError, WatchEvent};

/// Most write requests folded into one transaction (one `fsync`).
pub const MAX_BATCH: usize = 256;

/// Queued write requests before writers wait (back-pressure).
const WRITE_QUEUE: usize = 1_024;

/// Capacity of the live event channel; a watcher further behind than this
/// catches up from the log instead.
const LIVE_CHANNEL_CAPACITY: usize = 4_096;

/// One write request and where to send its outcome.
pub(super) struct WriteRequest {
    /// What to write.
    pub(super) op: WriteOp,
    /// Where the writer sends the outcome once the batch committed.
    pub(super) reply: oneshot::Sender<Result<WriteOutcome, StorageError>>,
}

/// A change the writer applies; each is checked against the key's latest row.
pub(super) enum WriteOp {
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

impl WriteOp {
    /// The storage operation, for error messages.
    fn name(&self) -> &'static str {
        match self {
            WriteOp::Create { .. } => "create",
            WriteOp::Update { .. } => "update",
            WriteOp::Delete { .. } => "delete",
            WriteOp::Compact { .. } => "compact",
        }
    }
}

/// The writer thread's state: the only read-write connection.
struct Writer {
    conn: Connection,
    queue: mpsc::Receiver<WriteRequest>,
    live: broadcast::Sender<Arc<WatchEvent>>,
    shared: Arc<Shared>,
    /// Revisions kept before automatic compaction.
    history: u64,
    /// Last committed revision.
    revision: Revision,
    /// Last committed compaction bound.
    compacted: Revision,
}

/// A started writer thread and the channels that reach it.
pub(super) struct SpawnedWriter {
    /// Where write requests are queued.
    pub(super) requests: mpsc::Sender<WriteRequest>,
    /// Where committed events are published; kept for subscribing watches.
    pub(super) live: broadcast::Sender<Arc<WatchEvent>>,
    /// The thread; it ends once every request sender is dropped.
    pub(super) thread: JoinHandle<()>,
}

/// Starts the writer thread on `conn`, the only read-write connection, at
/// the file's last `revision` and `compacted` bound, keeping `history`
/// revisions (at least one).
pub(super) fn spawn(
    conn: Connection,
    shared: Arc<Shared>,
    history: u64,
    revision: Revision,
    compacted: Revision,
) -> std::io::Result<SpawnedWriter> {
    let (requests, queue) = mpsc::channel(WRITE_QUEUE);
    let (live, _) = broadcast::channel(LIVE_CHANNEL_CAPACITY);
    let writer = Writer {
        conn,
        queue,
        live: live.clone(),
        shared,
        history: history.max(1),
        revision,
        compacted,
    };
    let thread = std::thread::Builder::new()
        .name("vcluster-sqlite-writer".into())
        .spawn(move || writer.run())?;
    Ok(SpawnedWriter {
        requests,
        live,
        thread,
    })
}

impl Writer {
    /// Serves batches until every request sender is gone.
    fn run(mut self) {
        while let Some(first) = self.queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.queue.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            let ops: Vec<&WriteOp> = batch.iter().map(|c| &c.op).collect();
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
    fn apply(&mut self, ops: &[&WriteOp]) -> rusqlite::Result<AppliedBatch> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut applied = AppliedBatch {
            outcomes: Vec::with_capacity(ops.len()),
            events: Vec::new(),
            revision: self.revision,
            compacted: self.compacted,
        };
        for op in ops {
            let outcome = match op {
                WriteOp::Create { key, value } => {
                    revision_log::create(&tx, &mut applied, key, value)?
                }
                WriteOp::Update {
                    key,
                    value,
                    expected,
                } => revision_log::update(&tx, &mut applied, key, value, *expected)?,
                WriteOp::Delete { key, expected } => {
                    revision_log::delete(&tx, &mut applied, key, *expected)?
                }
                WriteOp::Compact { revision } => {
                    let target = (*revision).min(applied.revision);
                    if target > applied.compacted {
                        revision_log::compact(&tx, applied.compacted, target)?;
                        applied.compacted = target;
                    }
                    Ok(WriteOutcome::Compacted)
                }
            };
            applied.outcomes.push(outcome);
        }
        // Automatic compaction rides along in the same transaction, in steps
        // of an eighth of the window so it runs rarely.
        let step = (self.history / 8).max(1);
        if applied.revision.saturating_sub(applied.compacted) >= self.history + step {
            let target = applied.revision - self.history;
            revision_log::compact(&tx, applied.compacted, target)?;
            applied.compacted = target;
        }
        tx.commit()?;
        Ok(applied)
    }
}
