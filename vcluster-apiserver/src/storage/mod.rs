//! The storage contract of the virtual control plane.
//!
//! The API server never talks to a database directly: it talks to a
//! [`Storage`], an ordered key-value store with one global, monotonic
//! [`Revision`], in the shape kube-apiserver expects from etcd. Keeping the
//! contract this small is what lets the same server run on memory, on an
//! embedded SQLite file or on a real etcd cluster.
//!
//! Rules every backend follows (checked by [`conformance`]):
//! - Keys are ordered byte-wise; objects live at
//!   `/registry/<group>/<resource>/<namespace>/<name>` (see [`registry_key`]).
//! - Every successful write (create, update, delete) gets the next revision;
//!   revisions only go up, also across restarts of a persistent backend.
//! - A list reads every key under a prefix at **one** revision, so a paginated
//!   list is a consistent snapshot.
//! - `update` and guarded `delete` are compare-and-swap on the key's
//!   `mod_revision`: of two concurrent writers holding the same revision,
//!   exactly one wins.
//! - A watch from revision `r` yields every write with a revision `> r` under
//!   its prefix, exactly once, in revision order. When the history it would
//!   need was compacted it fails with [`StorageError::Expired`], which the
//!   HTTP layer turns into `410 Gone`.

use std::collections::VecDeque;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub mod conformance;
pub mod encryption;
/// etcd v3 backend; behind the cargo feature `etcd`, which needs `protoc` at
/// build time (see [`url`] for what a build without it answers).
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod memory;
pub mod sqlite;
pub mod url;

pub use encryption::{EncryptedStorage, EncryptionConfig};
#[cfg(feature = "etcd")]
pub use etcd::EtcdStorage;
pub use memory::MemoryStorage;
pub use sqlite::SqliteStorage;
pub use url::StorageConfig;

/// A point in the store's history. Every write gets the next one; it becomes
/// the `metadata.resourceVersion` clients see.
pub type Revision = u64;

/// One key as stored, with the revisions that identify its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/core/pods/default/web`.
    pub key: String,
    /// The stored object (JSON, without `metadata.resourceVersion`).
    pub value: Bytes,
    /// The revision that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key: its `resourceVersion`.
    pub mod_revision: Revision,
}

/// What to list: a key prefix, at which revision, and which page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// Only keys starting with this prefix.
    pub prefix: String,
    /// Read the keys as they were at this revision; `None` reads the latest.
    pub revision: Option<Revision>,
    /// Only keys strictly greater than this one (pagination).
    pub start_after: Option<String>,
    /// At most this many items; `None` means all.
    pub limit: Option<usize>,
}

impl ListRequest {
    /// Lists everything under `prefix` at the latest revision.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }
}

/// A page of keys read at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResponse {
    /// The keys in order.
    pub items: Vec<KeyValue>,
    /// The revision the page was read at; continue a paginated list there.
    pub revision: Revision,
    /// How many more keys match after the last item, at that revision.
    pub remaining: usize,
}

/// The outcome of a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The revision of the delete itself.
    pub revision: Revision,
    /// The key as it was just before it was deleted.
    pub previous: KeyValue,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key did not exist before this write.
    Created,
    /// The key existed and got a new value.
    Updated,
    /// The key was removed.
    Deleted,
}

/// One write, as a watch sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// Created, updated or deleted.
    pub kind: EventKind,
    /// The key written.
    pub key: String,
    /// The new value; for a delete, the last value the key had.
    pub value: Bytes,
    /// The value before this write (`None` for a create). A filtered watch
    /// needs it to tell that an object left its selector.
    pub prev_value: Option<Bytes>,
    /// The revision of this write.
    pub revision: Revision,
}

/// A stream of watch events in revision order. It ends with an error item
/// when the backend can no longer guarantee an unbroken history (for
/// example [`StorageError::Expired`]); the consumer must re-list then.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StorageError>> + Send>>;

/// What a backend's watch stream has yet to hand out. A backend that
/// replays history and then follows live events can meet one event twice;
/// handing out only events after the last one keeps every event exactly
/// once and in revision order.
struct PendingEvents {
    /// Revision of the last event handed out (or the watch's start).
    last: Revision,
    queue: VecDeque<WatchEvent>,
}

impl PendingEvents {
    /// A watch that starts after revision `last` with `queue` to replay.
    fn new(last: Revision, queue: VecDeque<WatchEvent>) -> Self {
        Self { last, queue }
    }

    /// The next event after the last one handed out, dropping duplicates.
    fn next_new(&mut self) -> Option<WatchEvent> {
        while let Some(event) = self.queue.pop_front() {
            if event.revision > self.last {
                self.last = event.revision;
                return Some(event);
            }
        }
        None
    }

    /// Queues a live event if it is new and under `prefix`.
    fn push_live(&mut self, event: &WatchEvent, prefix: &str) {
        if event.revision > self.last && event.key.starts_with(prefix) {
            self.queue.push_back(event.clone());
        }
    }
}

/// Why a storage call failed. Each variant maps to one Kubernetes status
/// reason in the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key does not exist (404 NotFound).
    #[error("key {key:?} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A create hit a key that exists (409 AlreadyExists).
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key asked for.
        key: String,
    },
    /// A compare-and-swap lost: the key changed since `expected` (409 Conflict).
    #[error("key {key:?} was modified: expected revision {expected}, current revision {current}")]
    Conflict {
        /// The key asked for.
        key: String,
        /// The revision the caller held.
        expected: Revision,
        /// The key's revision now.
        current: Revision,
    },
    /// The history needed to serve `requested` was compacted (410 Gone).
    #[error("revision {requested} is too old: the oldest revision still available is {oldest}")]
    Expired {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision one can still list at or watch from.
        oldest: Revision,
    },
    /// A read at a revision the store has not reached yet (504 Timeout).
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's revision now.
        current: Revision,
    },
    /// The backend itself failed: I/O, a lost connection, corrupt data (500).
    #[error("{backend} storage failed to {operation}: {message}")]
    Backend {
        /// Which backend (`memory`, `sqlite`, `etcd`).
        backend: &'static str,
        /// What it was doing.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// An ordered, revisioned key-value store the API server persists objects in.
///
/// Implementations must be cheap to share (`Arc<dyn Storage>`) and safe to
/// call concurrently. Run [`conformance::run`] against a new backend: it
/// checks every rule in the module docs.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads one key at the latest revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError>;

    /// Reads the keys under a prefix at one revision, in key order.
    async fn list(&self, request: ListRequest) -> Result<ListResponse, StorageError>;

    /// Creates a key that must not exist yet.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError>;

    /// Replaces the value of a key whose `mod_revision` is still `expected`.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StorageError>;

    /// Deletes a key; with `expected`, only if its `mod_revision` is still that.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError>;

    /// The revision of the last write (0 for an empty, new store).
    async fn current_revision(&self) -> Result<Revision, StorageError>;

    /// Streams every write under `prefix` with a revision greater than `after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError>;

    /// Discards history at and below `revision`: lists and watches that need
    /// it fail with [`StorageError::Expired`] afterwards. The latest value
    /// of every key is kept.
    async fn compact(&self, revision: Revision) -> Result<(), StorageError>;

    /// Whether the key's stored value at `revision` must be rewritten even
    /// by an update that changes nothing: an encrypted value read with a
    /// key that no longer writes (see [`encryption`]; upstream's "stale"
    /// values, which make `kubectl replace` rotate keys). Plain backends
    /// never need it.
    fn needs_rewrite(&self, _key: &str, _revision: Revision) -> bool {
        false
    }
}

/// The storage key of an object, as kube-apiserver lays them out:
/// `/registry/<group>/<resource>/<namespace>/<name>` (group `core` for the
/// legacy API group; no namespace segment for cluster-scoped resources).
pub fn registry_key(group: &str, resource: &str, namespace: Option<&str>, name: &str) -> String {
    let group = if group.is_empty() { "core" } else { group };
    match namespace {
        Some(ns) => format!("/registry/{group}/{resource}/{ns}/{name}"),
        None => format!("/registry/{group}/{resource}/{name}"),
    }
}

/// The prefix under which all objects of a resource (optionally of one
/// namespace) are stored; always ends with `/` so `pods` never matches
/// `podtemplates`.
pub fn registry_prefix(group: &str, resource: &str, namespace: Option<&str>) -> String {
    let group = if group.is_empty() { "core" } else { group };
    match namespace {
        Some(ns) => format!("/registry/{group}/{resource}/{ns}/"),
        None => format!("/registry/{group}/{resource}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_kube_apiserver_layout() {
        assert_eq!(
            registry_key("", "pods", Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        assert_eq!(
            registry_key("apps", "deployments", Some("ns"), "d"),
            "/registry/apps/deployments/ns/d"
        );
        assert_eq!(
            registry_key("", "nodes", None, "n1"),
            "/registry/core/nodes/n1"
        );
        assert_eq!(registry_prefix("", "pods", None), "/registry/core/pods/");
        assert_eq!(
            registry_prefix("", "pods", Some("kube-system")),
            "/registry/core/pods/kube-system/"
        );
    }
}
