//! [`SqliteStorage`]: the handle that owns the writer thread and the file
//! lock, and maps the [`Storage`] trait onto readers, writer and watches.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::open::{open_file, SqliteOpenError, SqliteOptions};
use super::readers::{latest_row, list_at_snapshot, read, Shared};
use super::revision_log::WriteOutcome;
use super::writer::{self, WriteOp, WriteRequest};
use super::{backend, sql, watch};
use crate::storage::{
    Deleted, KeyValue, ListRequest, ListResponse, Revision, Storage, StorageError, WatchEvent,
    WatchStream,
};

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
    commands: Option<mpsc::Sender<WriteRequest>>,
    writer: Option<JoinHandle<()>>,
    /// Kept for subscribing new watches; the writer holds the other sender,
    /// so watches see the channel close once the store is gone.
    live: Option<broadcast::Sender<Arc<WatchEvent>>>,
    shared: Arc<Shared>,
    /// Dropped last: released once the writer has closed the file.
    _lock: File,
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

    async fn write(
        &self,
        op: WriteOp,
        operation: &'static str,
    ) -> Result<WriteOutcome, StorageError> {
        let (reply, answer) = oneshot::channel();
        let closed = || backend(operation, "the writer thread has stopped");
        let commands = self.inner.commands.as_ref().ok_or_else(closed)?;
        commands
            .send(WriteRequest { op, reply })
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

/// Opens the file and starts the writer thread. Blocking.
fn open_blocking(path: PathBuf, options: SqliteOptions) -> Result<SqliteStorage, SqliteOpenError> {
    let opened = open_file(&path, options)?;
    let shared = Arc::new(Shared::new(path, opened.revision));
    shared.put_reader(opened.first_reader);
    let writer = writer::spawn(
        opened.writer_conn,
        shared.clone(),
        options.history,
        opened.revision,
        opened.compacted,
    )
    .map_err(SqliteOpenError::Thread)?;
    Ok(SqliteStorage {
        inner: Arc::new(Inner {
            commands: Some(writer.requests),
            writer: Some(writer.thread),
            live: Some(writer.live),
            shared,
            _lock: opened.lock,
        }),
    })
}

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
        self.read("list", move |conn| list_at_snapshot(conn, &request))
            .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let op = WriteOp::Create {
            key: key.to_owned(),
            value,
        };
        match self.write(op, "create").await? {
            WriteOutcome::Written(kv) => Ok(kv),
            _ => Err(backend("create", "unexpected writer outcome")),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        let op = WriteOp::Update {
            key: key.to_owned(),
            value,
            expected,
        };
        match self.write(op, "update").await? {
            WriteOutcome::Written(kv) => Ok(kv),
            _ => Err(backend("update", "unexpected writer outcome")),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        let op = WriteOp::Delete {
            key: key.to_owned(),
            expected,
        };
        match self.write(op, "delete").await? {
            WriteOutcome::Deleted(deleted) => Ok(deleted),
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
        watch::start(&self.inner.shared, live, prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        self.write(WriteOp::Compact { revision }, "compact").await?;
        Ok(())
    }
}
