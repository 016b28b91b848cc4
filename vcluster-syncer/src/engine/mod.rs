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
//!   stale data fails with 409 and the key is reconciled again at once.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DeleteParams, Patch, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vcluster_core::{GroupVersionKind, HostKey, VirtualKey};

use crate::error::{has_code, Side, SyncError};
use crate::metadata;
use crate::queue::{Backoff, WorkQueue};
use crate::scope::ApiScope;
use crate::syncer::{
    Action, Direction, HostOnly, InStep, Memory, SyncContext, Syncer, VirtualOnly, Written,
};
use crate::writes::{patch_params, post_params};

mod metrics;

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
        let virtual_feed = tokio::spawn(
            inner
                .clone()
                .follow_virtual(virtual_writer)
                .instrument(span.clone()),
        );
        let host_feed = tokio::spawn(
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
                let mut workers = Vec::new();
                for _ in 0..inner.config.workers.max(1) {
                    workers.push(tokio::spawn(inner.clone().work().instrument(span.clone())));
                }
                let resync = tokio::spawn(inner.clone().resync_periodically());
                inner.cancel.cancelled().await;
                inner.queue.shut_down();
                for worker in workers {
                    let _ = worker.await;
                }
                resync.abort();
            }
        }
        virtual_feed.abort();
        host_feed.abort();
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

    /// Queues every key either cluster knows about.
    fn enqueue_all(&self) {
        for object in self.virtual_store.state() {
            if let Some(key) = VirtualKey::of(object.as_ref()) {
                self.queue.add(key);
            }
        }
        for object in self.host_store.state() {
            if let Some(key) = self.syncer.virtual_key(&self.ctx, &object) {
                self.queue.add(key);
            }
        }
    }

    async fn resync_periodically(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.resync_interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.enqueue_all();
        }
    }

    async fn follow_virtual(self: Arc<Self>, writer: reflector::store::Writer<S::Object>) {
        let api = self.virtual_api(None);
        let stream =
            reflector::reflector(writer, watcher(api, self.ctx.watcher_config()).modify(slim))
                .default_backoff();
        self.follow(stream, Side::Virtual).await;
    }

    async fn follow_host(self: Arc<Self>, writer: reflector::store::Writer<S::Object>) {
        let watch = self.syncer.host_watch(&self.ctx);
        let api = self.host_api(watch.namespace.as_deref());
        let mut config = self.ctx.watcher_config();
        if let Some(selector) = &watch.label_selector {
            config = config.labels(selector);
        }
        let stream =
            reflector::reflector(writer, watcher(api, config).modify(slim)).default_backoff();
        self.follow(stream, Side::Host).await;
    }

    /// Turns one side's events into queued keys.
    async fn follow<St>(&self, stream: St, side: Side)
    where
        St: futures::Stream<Item = Result<watcher::Event<S::Object>, watcher::Error>>,
    {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(object)) | Ok(watcher::Event::Delete(object)) => {
                    if let Some(key) = self.key_of(&object, side) {
                        self.queue.add(key);
                    }
                    self.notify_observers(side, &object);
                }
                // The store takes a list's objects only at `InitDone`:
                // observers, which may read the store, hear of them then.
                Ok(watcher::Event::InitApply(object)) => {
                    if let Some(key) = self.key_of(&object, side) {
                        self.queue.add(key);
                    }
                }
                // A fresh list may have missed deletes: look at everything.
                Ok(watcher::Event::InitDone) => {
                    match side {
                        Side::Virtual => self.virtual_listed.send_replace(true),
                        Side::Host => self.host_listed.send_replace(true),
                    };
                    self.enqueue_all();
                    let store = match side {
                        Side::Virtual => &self.virtual_store,
                        Side::Host => &self.host_store,
                    };
                    for object in store.state() {
                        self.notify_observers(side, &object);
                    }
                }
                Ok(watcher::Event::Init) => {}
                Err(err) => tracing::warn!(%side, error = %err, "watch failed; retrying"),
            }
        }
    }

    fn notify_observers(&self, side: Side, object: &S::Object) {
        let observers = match side {
            Side::Virtual => &self.observers,
            Side::Host => &self.host_observers,
        };
        for observer in observers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            observer(object);
        }
    }

    fn key_of(&self, object: &S::Object, side: Side) -> Option<VirtualKey> {
        match side {
            Side::Virtual => VirtualKey::of(object),
            Side::Host => self.syncer.virtual_key(&self.ctx, object),
        }
    }

    async fn work(self: Arc<Self>) {
        while let Some(item) = self.queue.next().await {
            let key = item.key;
            self.metrics.reconciled(item.waited);
            let span = tracing::debug_span!("reconcile", key = %key);
            // Shutdown does not wait for a reconcile: one stuck on a cluster
            // that stopped answering would hold the engine forever. Dropping
            // it half-way is safe: writes carry preconditions, and the next
            // start reconciles every key.
            let limit = self.config.reconcile_timeout;
            let reconcile = tokio::time::timeout(limit, self.reconcile(&key).instrument(span));
            let result = tokio::select! {
                result = reconcile => result.unwrap_or_else(|_| Err(SyncError::TimedOut {
                    kind: self.syncer.name(),
                    key: key.clone(),
                    after: limit,
                })),
                _ = self.cancel.cancelled() => {
                    self.queue.done(&key);
                    break;
                }
            };
            match result {
                Ok(Outcome::Done) => self.queue.forget(&key),
                Ok(Outcome::RequeueAfter(delay)) => {
                    self.queue.forget(&key);
                    self.queue.add_after(key.clone(), delay);
                }
                Err(err) if err.is_conflict() => {
                    self.metrics.conflict();
                    tracing::debug!(%key, error = %err, "lost a race; retrying");
                    self.queue
                        .add_after(key.clone(), self.config.conflict_delay);
                }
                Err(err) => {
                    self.metrics.error();
                    let delay = self.queue.add_rate_limited(key.clone());
                    tracing::warn!(%key, error = %err, retry_in = ?delay, "sync failed");
                }
            }
            self.queue.done(&key);
        }
    }

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

    async fn reconcile(&self, key: &VirtualKey) -> Result<Outcome, SyncError> {
        let virtual_object = self.virtual_store.get(&self.virtual_ref(key));
        let host_key = self.syncer.host_key(&self.ctx, key)?;
        let host_object = self.host_store.get(&self.host_ref(&host_key));
        if let Some(host) = &host_object {
            if self.syncer.direction() == Direction::ToHost
                && !self.ctx.translator.is_owned_by(host.meta(), key)
            {
                return Err(SyncError::NotOwned {
                    kind: self.syncer.name(),
                    key: key.clone(),
                    host: host_key.to_string(),
                });
            }
        }
        let memory = self.memory.get(key).map(|m| m.clone());
        match (virtual_object, host_object) {
            (Some(virt), None) => {
                if memory.as_ref().is_some_and(|m| m.host_seen)
                    && self.host_store_lags(key, &host_key).await?
                {
                    return Ok(Outcome::RequeueAfter(STORE_LAG_RETRY));
                }
                let decision = self
                    .syncer
                    .virtual_only(&self.ctx, &virt, memory.as_ref())
                    .await?;
                self.apply_virtual_only(key, &host_key, &virt, decision)
                    .await
            }
            (Some(virt), Some(host)) => {
                if memory.as_ref().is_some_and(|m| {
                    m.written.lags(
                        virt.meta().resource_version.as_deref(),
                        host.meta().resource_version.as_deref(),
                    )
                }) {
                    // A store still shows what our last write replaced: its
                    // watch event is on the way and queues the key again.
                    return Ok(Outcome::RequeueAfter(STORE_LAG_RETRY));
                }
                let namespace_labels = self.syncer.namespace_labels(&self.ctx, &virt).await;
                let in_step = in_step(virt.as_ref(), host.as_ref(), namespace_labels.as_ref());
                if self.syncer.pair_decides()
                    && memory.as_ref().and_then(|m| m.in_step.as_ref()) == Some(&in_step)
                {
                    // Nothing changed since the pair was last in step (the
                    // watch echo of our own write, a resync): no work.
                    return Ok(Outcome::Done);
                }
                let mut actions = self
                    .syncer
                    .both(&self.ctx, &virt, &host, memory.as_ref())
                    .await?;
                let before = memory.clone();
                let mut remembered = memory.unwrap_or_default();
                if self.syncer.direction() == Direction::ToHost {
                    let overrides = self.syncer.host_label_overrides(&self.ctx, &virt)?;
                    let plan = metadata::plan_with_overrides(
                        self.ctx.translator.as_ref(),
                        &GroupVersionKind::of::<S::Object>(&self.dt()),
                        virt.meta(),
                        host.meta(),
                        Some(&remembered).filter(|m| m.host_seen),
                        namespace_labels.as_ref(),
                        overrides.as_ref(),
                    )
                    .map_err(|source| SyncError::Translation {
                        kind: self.syncer.name(),
                        key: key.clone(),
                        source: Box::new(source),
                    })?;
                    if let Some(patch) = plan.virtual_patch {
                        actions.insert(0, Action::PatchVirtual(patch));
                    }
                    if let Some(patch) = plan.host_patch {
                        actions.insert(0, Action::PatchHost(patch));
                    }
                    remembered = plan.remembered;
                }
                let actions = coalesce(actions);
                // In step only if there was nothing to do; after writes, the
                // next reconcile (on their watch events) finds out.
                remembered.in_step = actions.is_empty().then_some(in_step);
                let mut written = Written::default();
                let applied = self
                    .apply_actions(key, &host_key, &virt, &host, actions, &mut written)
                    .await;
                if let Err(err) = applied {
                    // Some writes may have landed before one failed: keep
                    // the old memory, but wait for the stores to show them.
                    if !written.is_empty() {
                        let mut kept = before.unwrap_or_default();
                        kept.in_step = None;
                        kept.written = written;
                        self.memory.insert(key.clone(), kept);
                    }
                    return Err(err);
                }
                remembered.written = written;
                remembered.host_seen = true;
                self.memory.insert(key.clone(), remembered);
                Ok(Outcome::Done)
            }
            (None, Some(host)) => {
                let decision = self
                    .syncer
                    .host_only(&self.ctx, &host, memory.as_ref())
                    .await?;
                self.apply_host_only(key, &host_key, &host, decision).await
            }
            (None, None) => {
                self.memory.remove(key);
                Ok(Outcome::Done)
            }
        }
    }

    async fn apply_virtual_only(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        virt: &S::Object,
        decision: VirtualOnly<S::Object>,
    ) -> Result<Outcome, SyncError> {
        match decision {
            VirtualOnly::CreateHost(object) => {
                let api = self.host_api(host_key.namespace());
                match api.create(&post_params(), &object).await {
                    Ok(created) => {
                        self.metrics.wrote();
                        let namespace_labels = self.syncer.namespace_labels(&self.ctx, virt).await;
                        // What the host copy was created from is the state
                        // later changes are compared with; the pair is in
                        // step until either side changes.
                        self.memory.insert(
                            key.clone(),
                            Memory {
                                host_seen: true,
                                labels: virt.meta().labels.clone().unwrap_or_default(),
                                annotations: virt.meta().annotations.clone().unwrap_or_default(),
                                in_step: Some(in_step(virt, &created, namespace_labels.as_ref())),
                                written: Written::default(),
                            },
                        );
                        Ok(Outcome::Done)
                    }
                    Err(err) if has_code(&err, 409) => self.name_taken(key, host_key).await,
                    Err(err) => Err(self.api_error(key, "create", Side::Host, err)),
                }
            }
            VirtualOnly::DeleteVirtual => {
                let uid = virt.meta().uid.clone();
                self.delete_virtual(key, uid).await?;
                Ok(Outcome::Done)
            }
            VirtualOnly::Wait(delay, reason) => {
                tracing::debug!(%key, %reason, "waiting");
                Ok(Outcome::RequeueAfter(delay))
            }
            VirtualOnly::Skip => Ok(Outcome::Done),
        }
    }

    /// A create found the host name taken. Either our host store has not
    /// seen our own earlier create yet (look again shortly), or the name
    /// belongs to an object that is not this key's copy: one without our
    /// markers, which the label-filtered host watch never shows, or another
    /// virtual cluster's copy. The store cannot tell, so the ownership check
    /// runs on the object itself; a foreign object is left alone and
    /// reported as an error, which counts it and retries with backoff.
    async fn name_taken(&self, key: &VirtualKey, host_key: &HostKey) -> Result<Outcome, SyncError> {
        match self
            .host_api(host_key.namespace())
            .get_opt(host_key.name())
            .await
        {
            Ok(Some(host)) if !self.ctx.translator.is_owned_by(host.meta(), key) => {
                Err(SyncError::NotOwned {
                    kind: self.syncer.name(),
                    key: key.clone(),
                    host: host_key.to_string(),
                })
            }
            // Ours (or gone again): the watch brings the news.
            Ok(_) => Ok(Outcome::RequeueAfter(STORE_LAG_RETRY)),
            Err(err) => Err(self.api_error(key, "get", Side::Host, err)),
        }
    }

    /// Whether the host copy that the engine knew of, missing from the host
    /// store, still exists on the host: the store lags behind (our own
    /// create not yet watched, or a watch catching up after a failure). A
    /// missing copy must not be taken for a deleted one on the store's word
    /// alone: a syncer would act on it (a pod's would delete the virtual pod
    /// as evicted).
    async fn host_store_lags(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
    ) -> Result<bool, SyncError> {
        match self
            .host_api(host_key.namespace())
            .get_opt(host_key.name())
            .await
        {
            Ok(Some(host)) => Ok(self.syncer.direction() == Direction::FromHost
                || self.ctx.translator.is_owned_by(host.meta(), key)),
            Ok(None) => Ok(false),
            Err(err) => Err(self.api_error(key, "get", Side::Host, err)),
        }
    }

    async fn apply_host_only(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        host: &S::Object,
        decision: HostOnly<S::Object>,
    ) -> Result<Outcome, SyncError> {
        match decision {
            HostOnly::DeleteHost {
                grace_period_seconds,
            } => {
                let params = DeleteParams {
                    grace_period_seconds,
                    preconditions: Some(Preconditions {
                        uid: host.meta().uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match self
                    .host_api(host_key.namespace())
                    .delete(host_key.name(), &params)
                    .await
                {
                    Ok(_) => self.metrics.wrote(),
                    Err(err) if has_code(&err, 404) => {}
                    Err(err) => return Err(self.api_error(key, "delete", Side::Host, err)),
                }
                self.memory.remove(key);
                Ok(Outcome::Done)
            }
            HostOnly::CreateVirtual(object) => {
                match self
                    .virtual_api(key.namespace())
                    .create(&post_params(), &object)
                    .await
                {
                    Ok(_) => self.metrics.wrote(),
                    Err(err) if has_code(&err, 409) => {
                        return Ok(Outcome::RequeueAfter(Duration::from_millis(500)))
                    }
                    Err(err) => return Err(self.api_error(key, "create", Side::Virtual, err)),
                }
                Ok(Outcome::Done)
            }
            HostOnly::Skip => Ok(Outcome::Done),
        }
    }

    async fn delete_virtual(&self, key: &VirtualKey, uid: Option<String>) -> Result<(), SyncError> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self
            .virtual_api(key.namespace())
            .delete(key.name(), &params)
            .await
        {
            Ok(_) => self.metrics.wrote(),
            Err(err) if has_code(&err, 404) => {}
            Err(err) => return Err(self.api_error(key, "delete", Side::Virtual, err)),
        }
        self.memory.remove(key);
        Ok(())
    }

    /// Executes the syncer's actions in order. Patches carry the
    /// resourceVersion they were computed from, so stale data means 409.
    async fn apply_actions(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        virt: &S::Object,
        host: &S::Object,
        actions: Vec<Action>,
        written: &mut Written,
    ) -> Result<(), SyncError> {
        let params = patch_params();
        let host_before = host.meta().resource_version.as_deref();
        let virtual_before = virt.meta().resource_version.as_deref();
        let version = |object: &S::Object| object.meta().resource_version.clone();
        let host_api = self.host_api(host_key.namespace());
        let virtual_api = self.virtual_api(key.namespace());
        for action in actions {
            let result = match action {
                Action::PatchHost(patch) => host_api
                    .patch(host_key.name(), &params, &Patch::Merge(pinned(patch, host)))
                    .await
                    .map(|o| Written::note(&mut written.host, host_before, version(&o).as_deref()))
                    .map_err(|e| self.api_error(key, "patch", Side::Host, e)),
                Action::JsonPatchHost(ops) => {
                    let ops = with_version_test(ops, host);
                    let patch: json_patch::Patch =
                        serde_json::from_value(ops).map_err(|e| SyncError::Invalid {
                            kind: self.syncer.name(),
                            key: key.clone(),
                            message: format!("the syncer built an invalid JSON patch: {e}"),
                        })?;
                    host_api
                        .patch(host_key.name(), &params, &Patch::<()>::Json(patch))
                        .await
                        .map(|o| {
                            Written::note(&mut written.host, host_before, version(&o).as_deref())
                        })
                        .map_err(|e| self.api_error(key, "patch", Side::Host, e))
                }
                Action::PatchHostStatus(patch) => host_api
                    .patch_status(host_key.name(), &params, &Patch::Merge(pinned(patch, host)))
                    .await
                    .map(|o| Written::note(&mut written.host, host_before, version(&o).as_deref()))
                    .map_err(|e| self.api_error(key, "patch status", Side::Host, e)),
                Action::PatchVirtual(patch) => virtual_api
                    .patch(key.name(), &params, &Patch::Merge(pinned(patch, virt)))
                    .await
                    .map(|o| {
                        Written::note(
                            &mut written.virtual_object,
                            virtual_before,
                            version(&o).as_deref(),
                        )
                    })
                    .map_err(|e| self.api_error(key, "patch", Side::Virtual, e)),
                Action::PatchVirtualStatus(patch) => virtual_api
                    .patch_status(key.name(), &params, &Patch::Merge(pinned(patch, virt)))
                    .await
                    .map(|o| {
                        Written::note(
                            &mut written.virtual_object,
                            virtual_before,
                            version(&o).as_deref(),
                        )
                    })
                    .map_err(|e| self.api_error(key, "patch status", Side::Virtual, e)),
                Action::CreateVirtualSubresource { subresource, body } => virtual_api
                    .create_subresource::<Value, Value>(
                        subresource,
                        key.name(),
                        &post_params(),
                        &body,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| self.api_error(key, "create subresource", Side::Virtual, e)),
                Action::RecreateVirtual(replacement) => {
                    self.recreate_virtual(key, virt, replacement).await
                }
                Action::DeleteVirtual => self.delete_virtual(key, virt.meta().uid.clone()).await,
                Action::DeleteHost => {
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: host.meta().uid.clone(),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match host_api.delete(host_key.name(), &params).await {
                        Ok(_) => Ok(()),
                        Err(err) if has_code(&err, 404) => Ok(()),
                        Err(err) => Err(self.api_error(key, "delete", Side::Host, err)),
                    }
                }
            };
            result?;
            self.metrics.wrote();
        }
        Ok(())
    }

    async fn recreate_virtual(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
        replacement: Value,
    ) -> Result<(), SyncError> {
        let typed: S::Object =
            serde_json::from_value(replacement).map_err(|e| SyncError::Invalid {
                kind: self.syncer.name(),
                key: key.clone(),
                message: format!("replacement object does not decode: {e}"),
            })?;
        let api = self.virtual_api(key.namespace());
        // The caches hold no managedFields (see `slim`): read the tenant's
        // field ownership live, so it survives the re-create and their
        // next server-side apply does not conflict with the syncer.
        let managed_fields = match api.get_opt(key.name()).await {
            Ok(Some(live)) if live.meta().uid == virt.meta().uid => {
                live.meta().managed_fields.clone()
            }
            _ => None,
        };
        self.delete_virtual(key, virt.meta().uid.clone()).await?;
        match api.create(&post_params(), &typed).await {
            Ok(created) => {
                self.restore_field_managers(key, &created, managed_fields)
                    .await;
                Ok(())
            }
            Err(err) => Err(self.restore_virtual(key, virt, managed_fields, err).await),
        }
    }

    /// Gives a re-created virtual object the field managers of the one it
    /// replaced: an update that changes only `managedFields` stores them as
    /// sent. A failure is only logged; the object itself is in place.
    async fn restore_field_managers(
        &self,
        key: &VirtualKey,
        created: &S::Object,
        managed_fields: Option<Vec<ManagedFieldsEntry>>,
    ) {
        let Some(managed_fields) = managed_fields else {
            return;
        };
        let restore = json!({"metadata": {
            "managedFields": managed_fields,
            "resourceVersion": created.meta().resource_version,
        }});
        if let Err(err) = self
            .virtual_api(key.namespace())
            .patch(key.name(), &patch_params(), &Patch::Merge(&restore))
            .await
        {
            tracing::warn!(%key, error = %err, "re-created, but its field managers could not be restored");
        }
    }

    /// Puts the original back after its replacement was refused, and says
    /// why the re-create failed.
    async fn restore_virtual(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
        managed_fields: Option<Vec<ManagedFieldsEntry>>,
        err: kube::Error,
    ) -> SyncError {
        let api = self.virtual_api(key.namespace());
        // The replacement was refused after the original was deleted (an
        // address taken meanwhile, say): put the original back rather than
        // lose the tenant's object; the next reconcile tries again.
        let mut original = virt.clone();
        let meta = original.meta_mut();
        meta.uid = None;
        meta.resource_version = None;
        meta.creation_timestamp = None;
        meta.managed_fields = None;
        meta.generation = None;
        match api.create(&post_params(), &original).await {
            Ok(restored) => {
                self.restore_field_managers(key, &restored, managed_fields)
                    .await
            }
            Err(restore) => {
                tracing::error!(%key, error = %restore, "could not restore the virtual object after a failed re-create");
            }
        }
        self.api_error(key, "create (recreate)", Side::Virtual, err)
    }
}

/// Drops what no syncer reads from cached objects: `managedFields` can be
/// as large as the object itself and would double the caches' memory.
fn slim<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The in-step marker of a pair (see [`Memory::in_step`]).
fn in_step<K: Resource>(
    virt: &K,
    host: &K,
    namespace_labels: Option<&std::collections::BTreeMap<String, String>>,
) -> InStep {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    namespace_labels.hash(&mut hasher);
    InStep {
        virtual_version: virt.meta().resource_version.clone().unwrap_or_default(),
        host_version: host.meta().resource_version.clone().unwrap_or_default(),
        namespace_labels: hasher.finish(),
    }
}

/// Folds all patches of the same target into one, so a reconcile writes
/// each object at most once per kind of patch.
fn coalesce(actions: Vec<Action>) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    for action in actions {
        let merged = out
            .iter_mut()
            .find_map(|existing| match (existing, &action) {
                (Action::PatchHost(a), Action::PatchHost(b))
                | (Action::PatchHostStatus(a), Action::PatchHostStatus(b))
                | (Action::PatchVirtual(a), Action::PatchVirtual(b))
                | (Action::PatchVirtualStatus(a), Action::PatchVirtualStatus(b)) => {
                    metadata::merge_patches(a, b.clone());
                    Some(())
                }
                _ => None,
            });
        if merged.is_none() {
            out.push(action);
        }
    }
    out
}

/// Prefixes JSON patch operations with a test of the object's
/// resourceVersion, the JSON patch form of a precondition.
fn with_version_test<K: Resource>(ops: Value, base: &K) -> Value {
    let mut all = Vec::new();
    if let Some(rv) = base.meta().resource_version.as_ref() {
        all.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}));
    }
    if let Value::Array(ops) = ops {
        all.extend(ops);
    }
    Value::Array(all)
}

/// Adds the object's resourceVersion to a merge patch: the write then only
/// succeeds against the version the patch was computed from.
fn pinned<K: Resource>(mut patch: Value, base: &K) -> Value {
    if let (Some(map), Some(rv)) = (patch.as_object_mut(), base.meta().resource_version.as_ref()) {
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
    }
    patch
}
