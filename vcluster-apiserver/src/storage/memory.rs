//! The embedded default backend: everything in memory, nothing on disk.
//!
//! A multi-version map (every key keeps the versions still inside the
//! history window) behind one lock, so a list at an older revision and a
//! paginated list are consistent snapshots, exactly as with etcd. Writes are
//! published to watchers on a broadcast channel while the lock is held, so
//! watchers see them in revision order; a watcher that falls behind catches
//! up from the bounded event history instead of losing events.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use super::{
    Deleted, EventKind, KeyValue, ListRequest, ListResponse, PendingEvents, Revision, Storage,
    StorageError, WatchEvent, WatchStream,
};

/// How many writes the memory store remembers for watches and old-revision
/// reads, unless configured otherwise.
pub const DEFAULT_HISTORY: usize = 10_000;

/// Capacity of the live event channel per store; a watcher further behind
/// than this recovers from the history.
const LIVE_CHANNEL_CAPACITY: usize = 4_096;

/// An in-memory [`Storage`]: fast, concurrent, and gone when the process ends.
#[derive(Clone)]
pub struct MemoryStorage {
    shared: Arc<Shared>,
}

struct Shared {
    state: RwLock<State>,
    live: broadcast::Sender<Arc<WatchEvent>>,
    history_limit: usize,
}

#[derive(Default)]
struct State {
    revision: Revision,
    /// History at and below this revision is gone.
    compacted: Revision,
    keys: BTreeMap<String, Versions>,
    /// The last writes, oldest first, all with revision > `compacted`.
    events: VecDeque<Arc<WatchEvent>>,
}

/// The versions of one key still inside the history window, oldest first.
/// A `None` value is a tombstone (the key was deleted at that revision).
#[derive(Default)]
struct Versions(Vec<Version>);

struct Version {
    mod_revision: Revision,
    create_revision: Revision,
    value: Option<Bytes>,
}

impl Versions {
    fn latest(&self) -> Option<&Version> {
        self.0.last().filter(|v| v.value.is_some())
    }

    /// The version visible at `revision`, if the key existed then.
    fn at(&self, revision: Revision) -> Option<&Version> {
        let idx = self.0.partition_point(|v| v.mod_revision <= revision);
        idx.checked_sub(1)
            .map(|i| &self.0[i])
            .filter(|v| v.value.is_some())
    }

    /// Drops versions no read at a revision above `compacted` can see.
    fn compact(&mut self, compacted: Revision) {
        // Keep the newest version at or below `compacted` (it is what a read
        // at `compacted + 1` sees) unless it is a tombstone.
        let visible = self.0.partition_point(|v| v.mod_revision <= compacted);
        if visible == 0 {
            return;
        }
        let keep_from = if self.0[visible - 1].value.is_some() {
            visible - 1
        } else {
            visible
        };
        self.0.drain(..keep_from);
    }
}

impl Version {
    fn key_value(&self, key: &str) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
        })
    }
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    /// A new, empty store remembering [`DEFAULT_HISTORY`] writes.
    pub fn new() -> Self {
        Self::with_history(DEFAULT_HISTORY)
    }

    /// A new, empty store that remembers the last `history` writes for
    /// watches and old-revision reads (at least one).
    pub fn with_history(history: usize) -> Self {
        let (live, _) = broadcast::channel(LIVE_CHANNEL_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                state: RwLock::new(State::default()),
                live,
                history_limit: history.max(1),
            }),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written
        // (every write builds its values before mutating), so poisoning is
        // safe to ignore.
        self.shared
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a write under the lock: new version, event, history bound.
    fn commit(
        &self,
        state: &mut State,
        key: &str,
        value: Option<Bytes>,
        create_revision: Option<Revision>,
        prev: Option<Bytes>,
    ) -> Revision {
        state.revision += 1;
        let revision = state.revision;
        let kind = match (&value, &prev) {
            (None, _) => EventKind::Deleted,
            (Some(_), None) => EventKind::Created,
            (Some(_), Some(_)) => EventKind::Updated,
        };
        let event_value = match (&value, &prev) {
            (Some(v), _) => v.clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => Bytes::new(),
        };
        let versions = state.keys.entry(key.to_owned()).or_default();
        versions.0.push(Version {
            mod_revision: revision,
            create_revision: create_revision.unwrap_or(revision),
            value,
        });
        let event = Arc::new(WatchEvent {
            kind,
            key: key.to_owned(),
            value: event_value,
            prev_value: prev,
            revision,
        });
        state.events.push_back(event.clone());
        while state.events.len() > self.shared.history_limit {
            if let Some(evicted) = state.events.pop_front() {
                state.compacted = evicted.revision;
                compact_key(state, &evicted.key);
            }
        }
        // Nobody listening is fine: the history still has the event.
        let _ = self.shared.live.send(event);
        revision
    }

    /// The history after `after` under `prefix` plus a live receiver that
    /// continues exactly where that history ends.
    fn subscribe(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<(VecDeque<WatchEvent>, broadcast::Receiver<Arc<WatchEvent>>), StorageError> {
        let state = self.read();
        if after < state.compacted {
            return Err(StorageError::Expired {
                requested: after,
                oldest: state.compacted,
            });
        }
        let start = state.events.partition_point(|e| e.revision <= after);
        let backlog = state
            .events
            .range(start..)
            .filter(|e| e.key.starts_with(prefix))
            .map(|e| WatchEvent::clone(e))
            .collect();
        // Subscribing under the read lock: no write can slip in between the
        // backlog and the receiver.
        let receiver = self.shared.live.subscribe();
        Ok((backlog, receiver))
    }
}

/// Trims one key's versions to the history window; forgets a key whose
/// last version is a compacted tombstone.
fn compact_key(state: &mut State, key: &str) {
    let compacted = state.compacted;
    if let Some(versions) = state.keys.get_mut(key) {
        versions.compact(compacted);
        if versions.0.is_empty() {
            state.keys.remove(key);
        }
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StorageError> {
        let state = self.read();
        Ok(state
            .keys
            .get(key)
            .and_then(Versions::latest)
            .and_then(|v| v.key_value(key)))
    }

    async fn list(&self, request: ListRequest) -> Result<ListResponse, StorageError> {
        let state = self.read();
        let revision = match request.revision {
            None | Some(0) => state.revision,
            Some(r) if r > state.revision => {
                return Err(StorageError::FutureRevision {
                    requested: r,
                    current: state.revision,
                })
            }
            Some(r) if r < state.compacted => {
                return Err(StorageError::Expired {
                    requested: r,
                    oldest: state.compacted,
                })
            }
            Some(r) => r,
        };
        let lower = match &request.start_after {
            Some(after) if after.as_str() >= request.prefix.as_str() => {
                Bound::Excluded(after.clone())
            }
            _ => Bound::Included(request.prefix.clone()),
        };
        let limit = request.limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut remaining = 0;
        for (key, versions) in state.keys.range((lower, Bound::Unbounded)) {
            if !key.starts_with(&request.prefix) {
                break;
            }
            let Some(version) = versions.at(revision) else {
                continue;
            };
            if items.len() < limit {
                items.extend(version.key_value(key));
            } else {
                remaining += 1;
            }
        }
        Ok(ListResponse {
            items,
            revision,
            remaining,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        let mut state = self.write();
        if state.keys.get(key).and_then(Versions::latest).is_some() {
            return Err(StorageError::AlreadyExists {
                key: key.to_owned(),
            });
        }
        let revision = self.commit(&mut state, key, Some(value.clone()), None, None);
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StorageError> {
        let mut state = self.write();
        let Some(current) = state.keys.get(key).and_then(Versions::latest) else {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        };
        if current.mod_revision != expected {
            return Err(StorageError::Conflict {
                key: key.to_owned(),
                expected,
                current: current.mod_revision,
            });
        }
        let create_revision = current.create_revision;
        let prev = current.value.clone();
        let revision = self.commit(
            &mut state,
            key,
            Some(value.clone()),
            Some(create_revision),
            prev,
        );
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted, StorageError> {
        let mut state = self.write();
        let Some(current) = state.keys.get(key).and_then(Versions::latest) else {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        };
        if let Some(expected) = expected {
            if current.mod_revision != expected {
                return Err(StorageError::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: current.mod_revision,
                });
            }
        }
        let Some(previous) = current.key_value(key) else {
            return Err(StorageError::NotFound {
                key: key.to_owned(),
            });
        };
        let revision = self.commit(&mut state, key, None, None, Some(previous.value.clone()));
        Ok(Deleted { revision, previous })
    }

    async fn current_revision(&self) -> Result<Revision, StorageError> {
        Ok(self.read().revision)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StorageError> {
        let (backlog, receiver) = self.subscribe(prefix, after)?;
        let watch = MemoryWatch {
            store: self.clone(),
            prefix: prefix.to_owned(),
            pending: PendingEvents::new(after, backlog),
            receiver,
            failed: false,
        };
        Ok(Box::pin(futures::stream::unfold(watch, MemoryWatch::next)))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StorageError> {
        let mut state = self.write();
        let revision = revision.min(state.revision);
        if revision <= state.compacted {
            return Ok(());
        }
        state.compacted = revision;
        let start = state.events.partition_point(|e| e.revision <= revision);
        let dropped: Vec<String> = state.events.drain(..start).map(|e| e.key.clone()).collect();
        for key in dropped {
            compact_key(&mut state, &key);
        }
        Ok(())
    }
}

/// State of one storage watch between two polls.
struct MemoryWatch {
    store: MemoryStorage,
    prefix: String,
    /// Events yet to hand out, and the last revision handed out.
    pending: PendingEvents,
    receiver: broadcast::Receiver<Arc<WatchEvent>>,
    failed: bool,
}

impl MemoryWatch {
    async fn next(mut self) -> Option<(Result<WatchEvent, StorageError>, Self)> {
        loop {
            if let Some(event) = self.pending.next_new() {
                return Some((Ok(event), self));
            }
            if self.failed {
                return None;
            }
            match self.receiver.recv().await {
                Ok(event) => {
                    self.pending.push_live(&event, &self.prefix);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the live channel: continue from the
                    // history, which is larger, or fail if it is gone too.
                    match self.store.subscribe(&self.prefix, self.pending.last) {
                        Ok((backlog, receiver)) => {
                            self.pending.queue = backlog;
                            self.receiver = receiver;
                        }
                        Err(err) => {
                            self.failed = true;
                            return Some((Err(err), self));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        super::super::conformance::run(|| async { MemoryStorage::with_history(64) }).await;
    }

    #[tokio::test]
    async fn a_bounded_history_expires_old_revisions_but_keeps_latest_values() {
        let store = MemoryStorage::with_history(3);
        for i in 0..10u8 {
            store
                .create(&format!("/k/{i}"), Bytes::from(vec![i]))
                .await
                .expect("create");
        }
        let err = store.watch("/k/", 1).await.err().expect("expired");
        assert!(matches!(err, StorageError::Expired { requested: 1, .. }));
        let list = store.list(ListRequest::prefix("/k/")).await.expect("list");
        assert_eq!(list.items.len(), 10);
        assert!(store.watch("/k/", 7).await.is_ok());
    }
}
