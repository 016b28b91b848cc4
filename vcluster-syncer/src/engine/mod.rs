//! The sync engine: generic over any [`Syncer`], it watches both clusters,
//! maps every event to the virtual key it concerns, and reconciles each key
//! with the syncer's decisions.
//!
//! Guarantees:
//! - one reconcile per key at a time, `workers` keys in parallel;
//! - nothing is reconciled before both clusters have been listed, and every
//!   key of both lists is reconciled at start-up (so orphans of a crash are
//!   collected and existing host copies are adopted, never duplicated);
//! - a host object is touched only if the translator says it is the copy of
//!   exactly the key being reconciled;
//! - writes carry preconditions (resourceVersion or uid): a write based on
//!   stale data fails with 409 and the key is reconciled again at once;
//! - the engine does every write of a reconcile (syncers only decide), so
//!   the preconditions, the memory of what was written and the metrics are
//!   the same for every kind.
//!
//! Files: `watch` feeds the stores and the queue, `reconcile` takes one key
//! to a decision, `apply` and `recreate` carry decisions out, `blocked`
//! reports objects that must not be synced, `metrics` counts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::Resource;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vcluster_core::{HostKey, VirtualKey};

use crate::error::{Side, SyncError};
use crate::memory::Memory;
use crate::queue::{Backoff, WorkQueue};
use crate::scope::ApiScope;
use crate::syncer::{SyncContext, Syncer};

mod apply;
mod blocked;
mod metrics;
mod reconcile;
mod recreate;
mod watch;

pub use metrics::{prometheus_text, MetricsSnapshot, SyncMetrics};

/// Tunables of an engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Keys reconciled in parallel.
    pub workers: usize,
    /// Backoff of failed keys.
    pub backoff: Backoff,
    /// Delay before retrying a key that lost a race (409).
    pub conflict_delay: Duration,
    /// Every key is reconciled again this often, as a safety net.
    pub resync_interval: Duration,
    /// A reconcile still running after this long is abandoned and retried
    /// with backoff: a request on a connection that died silently never
    /// ends otherwise (clients have no read timeout by default), and would
    /// hold its key and a worker forever.
    pub reconcile_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            workers: 8,
            backoff: Backoff::default(),
            conflict_delay: Duration::from_millis(10),
            resync_interval: Duration::from_secs(300),
            reconcile_timeout: Duration::from_secs(60),
        }
    }
}

/// How soon a key is looked at again when the host store has not caught up
/// with the host yet (the watch also queues it when it does).
const STORE_LAG_RETRY: Duration = Duration::from_millis(500);

/// What a reconcile asks of the queue afterwards.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    RequeueAfter(Duration),
}

/// The engine of one kind. Build it, take handles to its stores and queue
/// if other components need them, then [`SyncEngine::run`] it.
pub struct SyncEngine<S: Syncer> {
    inner: Arc<Inner<S>>,
}

/// The reflector writers of both sides, taken when the engine starts.
type Writers<K> = (reflector::store::Writer<K>, reflector::store::Writer<K>);

struct Inner<S: Syncer> {
    syncer: S,
    ctx: Arc<SyncContext>,
    config: EngineConfig,
    queue: WorkQueue<VirtualKey>,
    virtual_store: Store<S::Object>,
    host_store: Store<S::Object>,
    writers: std::sync::Mutex<Option<Writers<S::Object>>>,
    memory: DashMap<VirtualKey, Memory>,
    metrics: SyncMetrics,
    cancel: CancellationToken,
    observers: std::sync::RwLock<Vec<Observer<S::Object>>>,
    host_observers: std::sync::RwLock<Vec<Observer<S::Object>>>,
    /// Set once each side's store holds a first full list.
    virtual_listed: tokio::sync::watch::Sender<bool>,
    host_listed: tokio::sync::watch::Sender<bool>,
}

/// Whether one side of an engine has been listed: its store holds a full
/// list. Any number of tasks may wait on it. (kube-runtime's
/// `Store::wait_until_ready` wakes only the last of several waiters, so an
/// engine that waited on its own store while another syncer waited on the
/// same store could hang forever, depending on who polled last.)
#[derive(Clone, Debug)]
pub struct Listed(pub(crate) tokio::sync::watch::Receiver<bool>);

impl Listed {
    /// A side that is listed already (for a syncer built outside an
    /// engine, e.g. over a store an embedder filled itself).
    pub fn done() -> Self {
        Listed(tokio::sync::watch::Sender::new(true).subscribe())
    }

    /// Resolves once the side is listed; `false` if the engine is gone
    /// without ever listing it.
    pub async fn wait(&self) -> bool {
        let mut receiver = self.0.clone();
        let listed = receiver.wait_for(|listed| *listed).await.is_ok();
        listed
    }
}

/// A callback told about every virtual object the engine sees.
type Observer<K> = Box<dyn Fn(&K) + Send + Sync>;

impl<S: Syncer> Clone for SyncEngine<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Syncer> SyncEngine<S> {
    /// An engine for `syncer`; it stops when `cancel` fires.
    pub fn new(
        syncer: S,
        ctx: Arc<SyncContext>,
        config: EngineConfig,
        cancel: CancellationToken,
    ) -> Self {
        let dt = syncer.dynamic_type();
        let virtual_writer = reflector::store::Writer::new(dt.clone());
        let host_writer = reflector::store::Writer::new(dt);
        let inner = Inner {
            queue: WorkQueue::new(config.backoff, cancel.clone()),
            virtual_store: virtual_writer.as_reader(),
            host_store: host_writer.as_reader(),
            writers: std::sync::Mutex::new(Some((virtual_writer, host_writer))),
            syncer,
            ctx,
            config,
            memory: DashMap::new(),
            metrics: SyncMetrics::default(),
            virtual_listed: tokio::sync::watch::Sender::new(false),
            host_listed: tokio::sync::watch::Sender::new(false),
            cancel,
            observers: std::sync::RwLock::new(Vec::new()),
            host_observers: std::sync::RwLock::new(Vec::new()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The virtual objects of this kind, as the engine last saw them.
    pub fn virtual_store(&self) -> Store<S::Object> {
        self.inner.virtual_store.clone()
    }

    /// The watched host objects of this kind.
    pub fn host_store(&self) -> Store<S::Object> {
        self.inner.host_store.clone()
    }

    /// Whether the host store holds a full list yet (wait on this, not on
    /// the store's `wait_until_ready`: see [`Listed`]).
    pub fn host_listed(&self) -> Listed {
        Listed(self.inner.host_listed.subscribe())
    }

    /// The queue, for components that need a key reconciled (e.g. the pod
    /// syncer asking for the configmaps a new pod mounts).
    pub fn queue(&self) -> WorkQueue<VirtualKey> {
        self.inner.queue.clone()
    }

    /// Calls `observer` with every virtual object the engine sees added or
    /// changed (and with every object of a fresh list, once the store holds
    /// the list), e.g. to queue the configmaps a pod needs in their engine.
    pub fn observe_virtual(&self, observer: impl Fn(&S::Object) + Send + Sync + 'static) {
        self.inner
            .observers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(observer));
    }

    /// Calls `observer` with every watched host object the engine sees
    /// added, changed or deleted, after the host store has taken the change
    /// (so the observer may read the store), e.g. to queue the node a host
    /// pod runs on in the node syncer.
    pub fn observe_host(&self, observer: impl Fn(&S::Object) + Send + Sync + 'static) {
        self.inner
            .host_observers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(observer));
    }

    /// The engine's counters right now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner
            .metrics
            .snapshot(self.inner.queue.len(), self.inner.queue.in_flight())
    }

    /// The syncer's name.
    pub fn name(&self) -> &'static str {
        self.inner.syncer.name()
    }

    /// Watches both clusters and reconciles until cancelled.
    pub async fn run(&self) {
        let inner = self.inner.clone();
        let Some((virtual_writer, host_writer)) = inner
            .writers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            tracing::error!(syncer = inner.syncer.name(), "engine started twice");
            return;
        };
        let span = tracing::info_span!("syncer", kind = inner.syncer.name());
        // Every task this engine starts lives in these sets: dropping them,
        // at the end or when the runner aborts an engine that would not
        // stop, aborts them all.
        let mut feeds = tokio::task::JoinSet::new();
        feeds.spawn(
            inner
                .clone()
                .follow_virtual(virtual_writer)
                .instrument(span.clone()),
        );
        feeds.spawn(
            inner
                .clone()
                .follow_host(host_writer)
                .instrument(span.clone()),
        );

        // Both sides listed before the first reconcile.
        let ready = async {
            let virtual_listed = Listed(inner.virtual_listed.subscribe());
            let host_listed = Listed(inner.host_listed.subscribe());
            virtual_listed.wait().await;
            host_listed.wait().await;
        };
        tokio::select! {
            _ = inner.cancel.cancelled() => {}
            _ = ready => {
                tracing::info!(parent: &span, "both clusters listed; reconciling");
                inner.enqueue_all();
                let mut workers = tokio::task::JoinSet::new();
                for _ in 0..inner.config.workers.max(1) {
                    workers.spawn(inner.clone().work().instrument(span.clone()));
                }
                feeds.spawn(inner.clone().resync_periodically());
                inner.cancel.cancelled().await;
                inner.queue.shut_down();
                while workers.join_next().await.is_some() {}
            }
        }
    }
}

impl<S: Syncer> Inner<S> {
    fn dt(&self) -> S::DynamicType {
        self.syncer.dynamic_type()
    }

    fn virtual_api(&self, namespace: Option<&str>) -> Api<S::Object> {
        <<S::Object as Resource>::Scope as ApiScope>::api(
            self.ctx.virtual_client.clone(),
            namespace,
            &self.dt(),
        )
    }

    fn host_api(&self, namespace: Option<&str>) -> Api<S::Object> {
        <<S::Object as Resource>::Scope as ApiScope>::api(
            self.ctx.host_client.clone(),
            namespace,
            &self.dt(),
        )
    }

    fn virtual_ref(&self, key: &VirtualKey) -> ObjectRef<S::Object> {
        let r = ObjectRef::new_with(key.name(), self.dt());
        match key.namespace() {
            Some(ns) => r.within(ns),
            None => r,
        }
    }

    fn host_ref(&self, key: &HostKey) -> ObjectRef<S::Object> {
        let r = ObjectRef::new_with(key.name(), self.dt());
        match key.namespace() {
            Some(ns) => r.within(ns),
            None => r,
        }
    }

    /// A failed request, as the [`SyncError`] that says which key, side
    /// and operation it was.
    fn api_error(
        &self,
        key: &VirtualKey,
        operation: &'static str,
        side: Side,
        source: kube::Error,
    ) -> SyncError {
        SyncError::Api {
            kind: self.syncer.name(),
            key: key.clone(),
            operation,
            side,
            source: Box::new(source),
        }
    }
}

/// An engine of any kind, for running a heterogeneous set (the
/// [`VirtualClusterSyncer`](crate::VirtualClusterSyncer) runs one per
/// kind; syncers that are not [`Syncer`]s, like events, implement it too).
#[async_trait]
pub trait EngineHandle: Send + Sync {
    /// The syncer's name.
    fn name(&self) -> &'static str;
    /// Runs until cancelled.
    async fn run(&self);
    /// Counters right now.
    fn metrics(&self) -> MetricsSnapshot;
}

#[async_trait]
impl<S: Syncer> EngineHandle for SyncEngine<S> {
    fn name(&self) -> &'static str {
        SyncEngine::name(self)
    }

    async fn run(&self) {
        SyncEngine::run(self).await
    }

    fn metrics(&self) -> MetricsSnapshot {
        SyncEngine::metrics(self)
    }
}

#[cfg(test)]
mod tests;
