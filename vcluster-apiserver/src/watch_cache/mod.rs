//! The watch cache: one storage watch feeds every client watch.
//!
//! A single task follows `Storage::watch("/registry/")`, decodes each write
//! once and hands it to the watchers of that resource. Each resource keeps
//! its last events, so a client that re-watches from a recent
//! `resourceVersion` is served from memory. A client that stops reading is
//! cut off once its buffer is full, so it can never hold the others back;
//! it re-watches from the last version it saw and loses nothing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::object;
use crate::storage::{EventKind, Revision, Storage, StorageError};

/// Limits of the watch cache.
#[derive(Clone, Debug)]
pub struct WatchLimits {
    /// Most client watches open at once; more get `429 TooManyRequests`.
    pub max_watchers: usize,
    /// Most client watches one user may have open at once; more get `429
    /// TooManyRequests`. The user is the authenticated user name, or for
    /// unauthenticated requests the client's IP address (see
    /// [`WatchHub::subscribe_as`]), so one tenant cannot take every slot.
    pub max_watchers_per_user: usize,
    /// Events buffered per client before it counts as too slow and is cut off.
    pub client_buffer: usize,
    /// Events remembered per resource for re-watches from a recent version.
    pub history_per_resource: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            max_watchers: 10_000,
            max_watchers_per_user: 2_000,
            client_buffer: 1_024,
            history_per_resource: 1_024,
        }
    }
}

/// A decoded write, shared by every watcher that receives it.
#[derive(Debug)]
pub struct CachedEvent {
    /// Created, updated or deleted.
    pub kind: EventKind,
    /// The storage revision of the write.
    pub revision: Revision,
    /// The storage key.
    pub key: String,
    /// The object after the write (for a delete: its last state), with
    /// `metadata.resourceVersion` set to `revision`.
    pub object: Value,
    /// The object before the write, for selector transitions.
    pub prev_object: Option<Value>,
    /// `object` as JSON, serialised once for every watcher that sends it.
    encoded: std::sync::OnceLock<bytes::Bytes>,
}

impl CachedEvent {
    /// The object as JSON bytes, serialised on first use and shared: with a
    /// thousand watchers, one serialisation instead of a thousand.
    pub fn object_json(&self) -> &bytes::Bytes {
        self.encoded.get_or_init(|| {
            serde_json::to_vec(&crate::request::wire_order::UpstreamOrder(&self.object))
                .map(bytes::Bytes::from)
                .unwrap_or_else(|_| bytes::Bytes::from_static(b"{}"))
        })
    }
}

/// Why a client's event stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// The client fell too far behind and was cut off.
    TooSlow,
    /// The cache lost its storage history and every watcher must re-list.
    Expired,
    /// The server is shutting down.
    Shutdown,
}

/// One client's subscription: events of one resource (and namespace), all
/// with a revision greater than the one it started from.
pub struct Subscription {
    /// The events, in revision order.
    pub events: mpsc::Receiver<Arc<CachedEvent>>,
    /// Set when the stream was ended by the hub rather than by the client.
    pub ended: Arc<Mutex<Option<WatchEnd>>>,
    /// The revision the subscription starts after.
    pub after: Revision,
    _guard: WatcherGuard,
}

/// Open client watches by user.
type PerUser = Arc<Mutex<HashMap<String, usize>>>;

/// Keeps the open-watch counts (all, and the user's) honest however a
/// subscription is dropped.
struct WatcherGuard {
    open: Arc<AtomicUsize>,
    user: Option<(PerUser, String)>,
}

impl WatcherGuard {
    fn counting(open: Arc<AtomicUsize>) -> Self {
        Self { open, user: None }
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some((per_user, user)) = &self.user {
            let mut counts = lock(per_user);
            if let Some(count) = counts.get_mut(user) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(user);
                }
            }
        }
    }
}

/// Where a subscription's events come from.
pub enum Source {
    /// Served by the shared cache.
    Cache(Subscription),
    /// Too old for the cache: a dedicated storage watch from that revision.
    Storage(crate::storage::WatchStream),
}

struct Watcher {
    id: u64,
    /// `/registry/<group>/<resource>/` or, for one namespace, `.../<ns>/`.
    prefix: String,
    after: Revision,
    sender: mpsc::Sender<Arc<CachedEvent>>,
    ended: Arc<Mutex<Option<WatchEnd>>>,
}

#[derive(Default)]
struct ResourceCache {
    events: VecDeque<Arc<CachedEvent>>,
    /// Every event of the resource with a revision above this is in `events`.
    complete_after: Revision,
    watchers: Vec<Watcher>,
}

struct HubState {
    /// Every write up to here has been dispatched.
    revision: Revision,
    /// Caches by resource prefix (`/registry/<group>/<resource>/`).
    caches: HashMap<String, ResourceCache>,
    /// Server-internal subscribers of every write (the garbage collector).
    global: Vec<Watcher>,
}

/// The shared watch cache of one server.
#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    storage: Arc<dyn Storage>,
    limits: WatchLimits,
    state: Mutex<HubState>,
    open: Arc<AtomicUsize>,
    /// Open client watches by user (entries removed at zero).
    per_user: PerUser,
    next_id: AtomicU64,
    shutdown: CancellationToken,
}

/// The resource part of a key: `/registry/<group>/<resource>/`.
pub fn resource_prefix(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("/registry/")?;
    let group_end = rest.find('/')?;
    let resource_end = rest[group_end + 1..].find('/')?;
    Some(&key[..10 + group_end + 1 + resource_end + 1])
}

impl WatchHub {
    /// Starts the hub at the store's current revision; it runs until
    /// `shutdown` is cancelled.
    pub async fn start(
        storage: Arc<dyn Storage>,
        limits: WatchLimits,
        shutdown: CancellationToken,
    ) -> Result<Self, StorageError> {
        let revision = storage.current_revision().await?;
        let hub = Self {
            inner: Arc::new(HubInner {
                storage,
                limits,
                state: Mutex::new(HubState {
                    revision,
                    caches: HashMap::new(),
                    global: Vec::new(),
                }),
                open: Arc::new(AtomicUsize::new(0)),
                per_user: Arc::new(Mutex::new(HashMap::new())),
                next_id: AtomicU64::new(0),
                shutdown,
            }),
        };
        tokio::spawn(hub.clone().follow_storage());
        Ok(hub)
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many client watches are open.
    pub fn open_watchers(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// The revision up to which every write has been dispatched.
    pub fn revision(&self) -> Revision {
        self.state().revision
    }

    /// Client watches open per user right now (users with none are absent).
    pub fn open_watchers_by_user(&self) -> HashMap<String, usize> {
        lock(&self.inner.per_user).clone()
    }

    /// Client watches the cache is feeding right now: open ones not yet
    /// cut off (a watch cut off for not reading still holds its slot until
    /// its connection ends, but receives nothing more).
    pub fn live_watchers(&self) -> usize {
        self.state()
            .caches
            .values()
            .map(|cache| {
                cache
                    .watchers
                    .iter()
                    .filter(|w| !w.sender.is_closed())
                    .count()
            })
            .sum()
    }

    /// Events buffered for live client watches and not yet taken by them:
    /// at most [`WatchLimits::client_buffer`] each, since a watch whose
    /// buffer is full is cut off.
    pub fn queued_events(&self) -> usize {
        self.state()
            .caches
            .values()
            .flat_map(|cache| cache.watchers.iter())
            .map(|w| w.sender.max_capacity() - w.sender.capacity())
            .sum()
    }

    fn reserve_slot(&self, user: Option<&str>) -> Result<WatcherGuard, ApiError> {
        let open = self.inner.open.fetch_add(1, Ordering::Relaxed);
        let mut guard = WatcherGuard::counting(self.inner.open.clone());
        if open >= self.inner.limits.max_watchers {
            return Err(ApiError::too_many_requests(format!(
                "too many open watches (limit {})",
                self.inner.limits.max_watchers
            )));
        }
        if let Some(user) = user {
            let mut counts = lock(&self.inner.per_user);
            let count = counts.entry(user.to_owned()).or_insert(0);
            if *count >= self.inner.limits.max_watchers_per_user {
                let limit = self.inner.limits.max_watchers_per_user;
                if *count == 0 {
                    counts.remove(user);
                }
                return Err(ApiError::too_many_requests(format!(
                    "too many open watches for {user} (limit {limit} per user)"
                )));
            }
            *count += 1;
            guard.user = Some((self.inner.per_user.clone(), user.to_owned()));
        }
        Ok(guard)
    }

    /// Subscribes to writes under `prefix` (a resource prefix, optionally
    /// narrowed to a namespace) after `after`. When `after` is `None`, the
    /// subscription starts at the cache's current revision, which is
    /// returned in [`Subscription::after`] so the caller can list the
    /// initial state at exactly that revision. Counts against the server's
    /// limit only; client requests go through [`WatchHub::subscribe_as`].
    pub fn subscribe(&self, prefix: &str, after: Option<Revision>) -> Result<Source, ApiError> {
        self.subscribe_as(None, prefix, after)
    }

    /// Like [`WatchHub::subscribe`], for a client watch of `user` (an
    /// opaque key: `user:<name>` or `peer:<address>`), which also counts
    /// against [`WatchLimits::max_watchers_per_user`].
    pub fn subscribe_as(
        &self,
        user: Option<&str>,
        prefix: &str,
        after: Option<Revision>,
    ) -> Result<Source, ApiError> {
        let guard = self.reserve_slot(user)?;
        let resource = resource_prefix(prefix)
            .ok_or_else(|| ApiError::internal(format!("not a resource prefix: {prefix}")))?
            .to_owned();
        let (sender, events) = mpsc::channel(self.inner.limits.client_buffer);
        let ended = Arc::new(Mutex::new(None));
        let mut state = self.state();
        let current = state.revision;
        let cache = state
            .caches
            .entry(resource)
            .or_insert_with(|| ResourceCache {
                complete_after: current,
                ..ResourceCache::default()
            });
        let after = after.unwrap_or(current);
        if after < cache.complete_after {
            drop(state);
            return Ok(Source::Storage(Box::pin(
                self.storage_watch(prefix, after, guard),
            )));
        }
        // Replay what the cache holds after `after`, then go live; both
        // under the lock, so nothing slips in between or comes twice.
        for event in cache.events.iter().filter(|e| e.revision > after) {
            if event.key.starts_with(prefix) && sender.try_send(event.clone()).is_err() {
                // The replay alone overflows the client buffer: too far behind.
                *lock(&ended) = Some(WatchEnd::TooSlow);
                break;
            }
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        if lock(&ended).is_none() {
            cache.watchers.push(Watcher {
                id,
                prefix: prefix.to_owned(),
                after,
                sender,
                ended: ended.clone(),
            });
        }
        Ok(Source::Cache(Subscription {
            events,
            ended,
            after,
            _guard: guard,
        }))
    }

    /// Subscribes to every write under `/registry/`, from the hub's current
    /// revision (returned in [`Subscription::after`]) on, with room for
    /// `buffer` undelivered events. For server-internal controllers such as
    /// the garbage collector: it does not count against the client watch
    /// limit, and one that falls `buffer` events behind is cut off
    /// ([`WatchEnd::TooSlow`]) and must list everything again.
    pub fn subscribe_all(&self, buffer: usize) -> Subscription {
        let (sender, events) = mpsc::channel(buffer.max(1));
        let ended = Arc::new(Mutex::new(None));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        // Not a client watch: it has a counter of its own, so
        // `open_watchers` and the client limit only see clients.
        let guard = WatcherGuard::counting(Arc::new(AtomicUsize::new(1)));
        let mut state = self.state();
        let after = state.revision;
        state.global.push(Watcher {
            id,
            prefix: "/registry/".to_owned(),
            after,
            sender,
            ended: ended.clone(),
        });
        Subscription {
            events,
            ended,
            after,
            _guard: guard,
        }
    }

    /// A dedicated storage watch for a client older than the cache window.
    fn storage_watch(
        &self,
        prefix: &str,
        after: Revision,
        guard: WatcherGuard,
    ) -> impl futures::Stream<Item = Result<crate::storage::WatchEvent, StorageError>> + Send {
        let storage = self.inner.storage.clone();
        let prefix = prefix.to_owned();
        futures::stream::once(async move { storage.watch(&prefix, after).await }).flat_map(
            move |result| {
                let _keep = &guard;
                match result {
                    Ok(stream) => stream.left_stream(),
                    Err(err) => futures::stream::iter([Err(err)]).right_stream(),
                }
            },
        )
    }

    /// Follows the store from the hub's revision until shutdown, restarting
    /// after errors; history lost for good resets every watcher.
    async fn follow_storage(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let from = self.revision();
            let stream = tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                stream = self.inner.storage.watch("/registry/", from) => stream,
            };
            match stream {
                Ok(mut stream) => loop {
                    let item = tokio::select! {
                        _ = self.inner.shutdown.cancelled() => {
                            self.end_all(WatchEnd::Shutdown);
                            return;
                        }
                        item = stream.next() => item,
                    };
                    match item {
                        Some(Ok(event)) => {
                            backoff = Duration::from_millis(100);
                            self.dispatch(event);
                        }
                        Some(Err(err)) => {
                            self.recover(err).await;
                            break;
                        }
                        None => break,
                    }
                },
                Err(err) => self.recover(err).await,
            }
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        self.end_all(WatchEnd::Shutdown);
    }

    async fn recover(&self, err: StorageError) {
        tracing::warn!(error = %err, "watch cache lost its storage watch");
        if matches!(err, StorageError::Expired { .. }) {
            // The gap cannot be filled: every watcher must re-list.
            if let Ok(current) = self.inner.storage.current_revision().await {
                let mut state = self.state();
                for cache in state.caches.values_mut() {
                    end_watchers(&mut cache.watchers, WatchEnd::Expired);
                    cache.events.clear();
                    cache.complete_after = current;
                }
                end_watchers(&mut state.global, WatchEnd::Expired);
                state.revision = current;
            }
        }
    }

    fn end_all(&self, why: WatchEnd) {
        let mut state = self.state();
        for cache in state.caches.values_mut() {
            end_watchers(&mut cache.watchers, why.clone());
        }
        end_watchers(&mut state.global, why);
    }

    fn dispatch(&self, event: crate::storage::WatchEvent) {
        let revision = event.revision;
        let mut state = self.state();
        let state = &mut *state;
        let cache = resource_prefix(&event.key).and_then(|prefix| state.caches.get_mut(prefix));
        // Decoding under the lock: a cache created a moment ago already
        // counts on this event, so the check and the hand-off must be atomic.
        if cache.is_some() || !state.global.is_empty() {
            if let Some(event) = decode_event(event) {
                let event = Arc::new(event);
                if let Some(cache) = cache {
                    cache.events.push_back(event.clone());
                    if cache.events.len() > self.inner.limits.history_per_resource {
                        if let Some(evicted) = cache.events.pop_front() {
                            cache.complete_after = evicted.revision;
                        }
                    }
                    fan_out(&mut cache.watchers, &event);
                }
                fan_out(&mut state.global, &event);
            }
        }
        state.revision = state.revision.max(revision);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn end_watchers(watchers: &mut Vec<Watcher>, why: WatchEnd) {
    for watcher in watchers.drain(..) {
        lock(&watcher.ended).get_or_insert(why.clone());
    }
}

/// Hands one event to every watcher of its resource; drops watchers that
/// are gone or too slow.
fn fan_out(watchers: &mut Vec<Watcher>, event: &Arc<CachedEvent>) {
    watchers.retain(|watcher| {
        if event.revision <= watcher.after || !event.key.starts_with(&watcher.prefix) {
            return !watcher.sender.is_closed();
        }
        match watcher.sender.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(watcher = watcher.id, key = %event.key, "cutting off a watch client that stopped reading");
                lock(&watcher.ended).get_or_insert(WatchEnd::TooSlow);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}

/// Decodes a storage event into the shape every watcher shares.
fn decode_event(event: crate::storage::WatchEvent) -> Option<CachedEvent> {
    let object = match object::decode_stored(&event.value, event.revision) {
        Ok(object) => object,
        Err(err) => {
            tracing::error!(key = %event.key, error = %err, "skipping an undecodable stored object");
            return None;
        }
    };
    let prev_object = event
        .prev_value
        .as_ref()
        .and_then(|bytes| object::decode_stored(bytes, event.revision).ok());
    Some(CachedEvent {
        kind: event.kind,
        revision: event.revision,
        key: event.key,
        object,
        prev_object,
        encoded: std::sync::OnceLock::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_prefixes_are_cut_at_the_resource() {
        assert_eq!(
            resource_prefix("/registry/core/pods/default/web"),
            Some("/registry/core/pods/")
        );
        assert_eq!(
            resource_prefix("/registry/core/nodes/n1"),
            Some("/registry/core/nodes/")
        );
        assert_eq!(
            resource_prefix("/registry/apps/deployments/"),
            Some("/registry/apps/deployments/")
        );
        assert_eq!(resource_prefix("/registry/core"), None);
        assert_eq!(resource_prefix("/other/core/pods/x"), None);
    }
}
