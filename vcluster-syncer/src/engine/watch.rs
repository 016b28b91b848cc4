//! Following both clusters: each side's watch fills its store and queues
//! the virtual key of every object that changed.

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Resource;
use vcluster_core::VirtualKey;

use super::Inner;
use crate::error::Side;
use crate::syncer::Syncer;

impl<S: Syncer> Inner<S> {
    /// Queues every key either cluster knows about.
    pub(super) fn enqueue_all(&self) {
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

    pub(super) async fn resync_periodically(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.config.resync_interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.enqueue_all();
        }
    }

    pub(super) async fn follow_virtual(
        self: Arc<Self>,
        writer: reflector::store::Writer<S::Object>,
    ) {
        let api = self.virtual_api(None);
        let stream =
            reflector::reflector(writer, watcher(api, self.ctx.watcher_config()).modify(slim))
                .default_backoff();
        self.follow(stream, Side::Virtual).await;
    }

    pub(super) async fn follow_host(self: Arc<Self>, writer: reflector::store::Writer<S::Object>) {
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
}

/// Drops what no syncer reads from cached objects: `managedFields` can be
/// as large as the object itself and would double the caches' memory.
fn slim<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}
