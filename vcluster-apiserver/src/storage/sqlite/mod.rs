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
//!
//! # Where each part lives
//! - `open.rs`: options, opening a file (lock, pragmas, schema checks) and
//!   why an open can fail.
//! - `schema.rs`: the tables and how revisions and keys are stored in them.
//! - `readers.rs`: the pool of read-only connections, point reads and lists.
//! - `writer.rs`: the single writer thread, its batches and compaction.
//! - `watch.rs`: watch streams over the log and the live channel.
//! - `store.rs`: [`SqliteStorage`], which ties them to the [`Storage`] trait.
//!
//! [`Revision`]: super::Revision
//! [`Storage`]: super::Storage
//! [`StorageError`]: super::StorageError

mod open;
mod readers;
mod revision_log;
mod schema;
mod store;
mod watch;
mod writer;

pub use open::{SqliteOpenError, SqliteOptions, Synchronous, DEFAULT_HISTORY};
pub use schema::SCHEMA_VERSION;
pub use store::SqliteStorage;
pub use writer::MAX_BATCH;

use super::StorageError;

/// The backend name in [`StorageError::Backend`] errors.
const BACKEND: &str = "sqlite";

/// A failure of this backend while doing `operation`.
fn backend(operation: &'static str, message: impl std::fmt::Display) -> StorageError {
    StorageError::Backend {
        backend: BACKEND,
        operation,
        message: message.to_string(),
    }
}

/// Maps a SQLite error during `operation` to a [`StorageError`].
fn sql(operation: &'static str) -> impl Fn(rusqlite::Error) -> StorageError {
    move |err| backend(operation, err)
}
