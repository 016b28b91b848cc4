//! Events (from the host, one way): what the host's kubelet, scheduler and
//! controllers report about a tenant's objects (image pulls, scheduling
//! failures, probe failures, volume mounts...) shows up in the virtual
//! cluster, so `kubectl describe pod` and `kubectl get events` tell the
//! tenant what happened.
//!
//! A host event (core/v1) in the host namespace is synced when its
//! `involvedObject` is a host object of this virtual cluster: the syncer
//! reads that object (by kind, API version and name) and takes the virtual
//! key from its ownership markers; an event about an object that is not
//! ours, of another namespace, or whose virtual object is gone is ignored.
//! The virtual event:
//! - lives in the virtual object's namespace; its name is the host event's
//!   with the host object's name prefix replaced by the virtual object's
//!   (`web-x-default-x-vc.17d3f...` becomes `web.17d3f...`), or the virtual
//!   object's name plus a hash of the host event's name when the host name
//!   has no such prefix;
//! - has `involvedObject` pointing at the virtual object (kind, API
//!   version, namespace, name, uid of the *virtual* object; `fieldPath`
//!   kept) and the host names in its message replaced by the virtual ones;
//! - copies reason, message, type, count, first/last timestamps, event
//!   time, series, source, action and reporting fields (`related` is
//!   dropped: it names host objects).
//!
//! Updates of the host event (a repeat counts up) update the virtual one;
//! when the host event is deleted (its TTL), the virtual event the syncer
//! wrote in this run is deleted too.
//!
//! Why not the generic engine: the engine maps a host object to its virtual
//! key with a synchronous look at the object's own markers, and a virtual
//! key back to a host name. An event carries no markers (its name is
//! derived from the involved object's host name, which cannot be parsed
//! back), so the mapping needs a lookup of another object on both
//! clusters, and there is no host name to derive from a virtual event. A
//! small dedicated watcher is simpler: a reflector over the host
//! namespace's events, a [`WorkQueue`] of host event names (the same
//! deduplication, per-key serialization and backoff as the engine), and a
//! reconcile that resolves, creates or merge-patches. The virtual side is
//! never watched: the syncer owns every field it writes there.

use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vcluster_core::naming::hash_hex10;
use vcluster_core::VirtualKey;

use crate::engine::{EngineConfig, EngineHandle, MetricsSnapshot, SyncMetrics};
use crate::error::{has_code, Side, SyncError};
use crate::queue::WorkQueue;

use crate::syncer::SyncContext;
use vcluster_core::FieldManager;

const KIND: &str = "events";

/// The event syncer; run it with [`EventSyncer::run`] (or through the
/// runner's [`EngineHandle`]).
#[derive(Clone)]
pub struct EventSyncer {
    inner: Arc<Inner>,
}

type Writer = reflector::store::Writer<Event>;

struct Inner {
    ctx: Arc<SyncContext>,
    config: EngineConfig,
    queue: WorkQueue<String>,
    store: Store<Event>,
    writer: std::sync::Mutex<Option<Writer>>,
    /// Host event name -> the virtual event written for it (this run).
    written: DashMap<String, VirtualKey>,
    metrics: SyncMetrics,
    cancel: CancellationToken,
}

/// The virtual object a host event is about.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The virtual object's key.
    pub key: VirtualKey,
    /// The virtual object's uid.
    pub uid: Option<String>,
    /// The host object's name (to rewrite event names and messages).
    pub host_name: String,
}

impl EventSyncer {
    /// An event syncer between the clusters of `ctx`; it stops when
    /// `cancel` fires.
    pub fn new(ctx: Arc<SyncContext>, config: EngineConfig, cancel: CancellationToken) -> Self {
        let writer = reflector::store::Writer::<Event>::default();
        Self {
            inner: Arc::new(Inner {
                store: writer.as_reader(),
                writer: std::sync::Mutex::new(Some(writer)),
                queue: WorkQueue::new(config.backoff, cancel.clone()),
                ctx,
                config,
                written: DashMap::new(),
                metrics: SyncMetrics::default(),
                cancel,
            }),
        }
    }

    /// Watches the host namespace's events and syncs them until cancelled.
    pub async fn run(&self) {
        let inner = self.inner.clone();
        let Some(writer) = inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            tracing::error!("event syncer started twice");
            return;
        };
        let span = tracing::info_span!("syncer", kind = KIND);
        // Aborted when dropped: at the end, or with this task.
        let mut feed = tokio::task::JoinSet::new();
        feed.spawn(inner.clone().follow(writer).instrument(span.clone()));
        tokio::select! {
            _ = inner.cancel.cancelled() => {}
            _ = inner.store.wait_until_ready() => {
                let mut workers = tokio::task::JoinSet::new();
                for _ in 0..inner.config.workers.clamp(1, 4) {
                    workers.spawn(inner.clone().work().instrument(span.clone()));
                }
                inner.cancel.cancelled().await;
                inner.queue.shut_down();
                while workers.join_next().await.is_some() {}
            }
        }
    }

    /// Counters right now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner
            .metrics
            .snapshot(self.inner.queue.len(), self.inner.queue.in_flight())
    }
}

#[async_trait]
impl EngineHandle for EventSyncer {
    fn name(&self) -> &'static str {
        KIND
    }

    async fn run(&self) {
        EventSyncer::run(self).await
    }

    fn metrics(&self) -> MetricsSnapshot {
        EventSyncer::metrics(self)
    }
}

/// The name of the virtual event for host event `host_event` about the
/// host object `host_object`, which is the copy of virtual `virtual_name`.
pub(crate) fn virtual_event_name(
    host_event: &str,
    host_object: &str,
    virtual_name: &str,
) -> String {
    match host_event.strip_prefix(host_object) {
        Some(rest) if rest.starts_with('.') => format!("{virtual_name}{rest}"),
        _ => format!("{virtual_name}.{}", hash_hex10(host_event).as_str()),
    }
}

/// The virtual copy of host event `event` about `target`.
pub fn virtual_event(event: &Event, target: &Target, host_namespace: &str) -> Event {
    let namespace = target.key.namespace().unwrap_or_default().to_owned();
    let host_object = &target.host_name;
    let virtual_name = target.key.name();
    let name = virtual_event_name(
        event.metadata.name.as_deref().unwrap_or_default(),
        host_object,
        virtual_name,
    );
    let message = event.message.as_ref().map(|m| {
        m.replace(
            &format!("{host_namespace}/{host_object}"),
            &format!("{namespace}/{virtual_name}"),
        )
        .replace(host_object.as_str(), virtual_name)
    });
    let involved = &event.involved_object;
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: involved.api_version.clone(),
            kind: involved.kind.clone(),
            name: Some(virtual_name.to_owned()),
            namespace: Some(namespace),
            uid: target.uid.clone(),
            field_path: involved.field_path.clone(),
            resource_version: None,
        },
        message,
        related: None,
        ..event.clone()
    }
}

/// The group and version of an `apiVersion` (`v1`, `apps/v1`).
fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

impl Inner {
    async fn follow(self: Arc<Self>, writer: Writer) {
        let api: Api<Event> =
            Api::namespaced(self.ctx.host_client.clone(), &self.ctx.host_namespace);
        let stream =
            reflector::reflector(writer, watcher(api, self.ctx.watcher_config())).default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(e))
                | Ok(watcher::Event::Delete(e))
                | Ok(watcher::Event::InitApply(e)) => {
                    if let Some(name) = e.metadata.name {
                        self.queue.add(name);
                    }
                }
                // A relist may have missed deletes: forget what is gone.
                Ok(watcher::Event::InitDone) => {
                    let gone: Vec<String> = self
                        .written
                        .iter()
                        .map(|e| e.key().clone())
                        .filter(|name| self.store.get(&self.host_ref(name)).is_none())
                        .collect();
                    for name in gone {
                        self.queue.add(name);
                    }
                }
                Ok(watcher::Event::Init) => {}
                Err(err) => tracing::warn!(error = %err, "host event watch failed; retrying"),
            }
        }
    }

    fn host_ref(&self, name: &str) -> ObjectRef<Event> {
        ObjectRef::new(name).within(&self.ctx.host_namespace)
    }

    async fn work(self: Arc<Self>) {
        while let Some(item) = self.queue.next().await {
            let name = item.key;
            self.metrics.reconciled(item.waited);
            let span = tracing::debug_span!("reconcile", event = %name);
            // Shutdown does not wait for a reconcile stuck on a cluster that
            // stopped answering; a dropped write is redone at the next start.
            let result = tokio::select! {
                result = self.reconcile(&name).instrument(span) => result,
                _ = self.cancel.cancelled() => {
                    self.queue.done(&name);
                    break;
                }
            };
            match result {
                Ok(()) => self.queue.forget(&name),
                Err(err) if err.is_conflict() => {
                    self.metrics.conflict();
                    self.queue
                        .add_after(name.clone(), self.config.conflict_delay);
                }
                Err(err) => {
                    self.metrics.error();
                    let delay = self.queue.add_rate_limited(name.clone());
                    tracing::warn!(event = %name, error = %err, retry_in = ?delay, "event sync failed");
                }
            }
            self.queue.done(&name);
        }
    }

    fn host_key(&self, name: &str) -> VirtualKey {
        VirtualKey::namespaced(self.ctx.host_namespace.as_str(), name)
    }

    fn api_error(
        &self,
        key: &VirtualKey,
        operation: &'static str,
        side: Side,
        source: kube::Error,
    ) -> SyncError {
        SyncError::Api {
            kind: KIND,
            key: key.clone(),
            operation,
            side,
            source: Box::new(source),
        }
    }

    async fn reconcile(&self, name: &str) -> Result<(), SyncError> {
        let Some(event) = self.store.get(&self.host_ref(name)) else {
            if let Some((_, key)) = self.written.remove(name) {
                self.delete_virtual(&key).await?;
            }
            return Ok(());
        };
        let Some(target) = self.resolve(name, &event).await? else {
            return Ok(());
        };
        let desired = virtual_event(&event, &target, &self.ctx.host_namespace);
        let key = VirtualKey::of(&desired).unwrap_or_else(|| self.host_key(name));
        self.write(&key, &desired).await?;
        self.written.insert(name.to_owned(), key);
        Ok(())
    }

    /// The virtual object a host event is about, if it is one of ours.
    async fn resolve(&self, name: &str, event: &Event) -> Result<Option<Target>, SyncError> {
        let involved = &event.involved_object;
        let (Some(kind), Some(object_name)) = (involved.kind.as_deref(), involved.name.as_deref())
        else {
            return Ok(None);
        };
        if involved.namespace.as_deref() != Some(self.ctx.host_namespace.as_str()) {
            return Ok(None);
        }
        let (group, version) = group_version(involved.api_version.as_deref().unwrap_or("v1"));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let key = self.host_key(name);
        let host_api: Api<DynamicObject> = Api::namespaced_with(
            self.ctx.host_client.clone(),
            &self.ctx.host_namespace,
            &resource,
        );
        let host_object = match host_api.get_opt(object_name).await {
            Ok(Some(object)) => object,
            Ok(None) => return Ok(None),
            // A kind the host does not serve, or that we may not read.
            Err(err) if [403, 404, 405].iter().any(|c| has_code(&err, *c)) => return Ok(None),
            Err(err) => {
                return Err(self.api_error(&key, "get the involved object", Side::Host, err))
            }
        };
        let Some(virtual_key) = self.ctx.translator.owner_of(&host_object.metadata) else {
            return Ok(None);
        };
        let virtual_api: Api<DynamicObject> = Api::namespaced_with(
            self.ctx.virtual_client.clone(),
            virtual_key.namespace().unwrap_or_default(),
            &resource,
        );
        let virtual_object = match virtual_api.get_opt(virtual_key.name()).await {
            Ok(Some(object)) => object,
            Ok(None) => return Ok(None),
            Err(err) if [403, 404, 405].iter().any(|c| has_code(&err, *c)) => return Ok(None),
            Err(err) => {
                return Err(self.api_error(&key, "get the virtual object", Side::Virtual, err))
            }
        };
        Ok(Some(Target {
            key: virtual_key,
            uid: virtual_object.metadata.uid,
            host_name: object_name.to_owned(),
        }))
    }

    /// Creates the virtual event, or brings an existing one up to date.
    async fn write(&self, key: &VirtualKey, desired: &Event) -> Result<(), SyncError> {
        let api: Api<Event> = Api::namespaced(
            self.ctx.virtual_client.clone(),
            key.namespace().unwrap_or_default(),
        );
        match api
            .create(&FieldManager::SYNCER.post_params(), desired)
            .await
        {
            Ok(_) => {
                self.metrics.wrote();
                return Ok(());
            }
            Err(err) if has_code(&err, 409) => {}
            // The namespace is gone or terminating: nothing to show it in.
            Err(err) if has_code(&err, 404) || has_code(&err, 403) => return Ok(()),
            Err(err) => return Err(self.api_error(key, "create", Side::Virtual, err)),
        }
        let existing = api
            .get_opt(key.name())
            .await
            .map_err(|e| self.api_error(key, "get", Side::Virtual, e))?;
        let Some(existing) = existing else {
            // Deleted meanwhile: create it at the next attempt.
            return Err(SyncError::Invalid {
                kind: KIND,
                key: key.clone(),
                message: "the virtual event vanished while being updated".into(),
            });
        };
        let mut body = serde_json::to_value(desired).map_err(|e| SyncError::Invalid {
            kind: KIND,
            key: key.clone(),
            message: format!("cannot be encoded: {e}"),
        })?;
        let current = serde_json::to_value(&existing).map_err(|e| SyncError::Invalid {
            kind: KIND,
            key: key.clone(),
            message: format!("cannot be encoded: {e}"),
        })?;
        if let Some(map) = body.as_object_mut() {
            map.remove("metadata");
        }
        let mut wanted = current.clone();
        crate::patch::apply(&mut wanted, &body);
        let Some(mut patch) = crate::patch::diff(&current, &wanted) else {
            return Ok(());
        };
        if let (Some(map), Some(rv)) = (patch.as_object_mut(), existing.metadata.resource_version) {
            map.insert("metadata".into(), json!({ "resourceVersion": rv }));
        }
        api.patch(
            key.name(),
            &FieldManager::SYNCER.patch_params(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|e| self.api_error(key, "patch", Side::Virtual, e))?;
        self.metrics.wrote();
        Ok(())
    }

    async fn delete_virtual(&self, key: &VirtualKey) -> Result<(), SyncError> {
        let api: Api<Event> = Api::namespaced(
            self.ctx.virtual_client.clone(),
            key.namespace().unwrap_or_default(),
        );
        match api.delete(key.name(), &DeleteParams::default()).await {
            Ok(_) => {
                self.metrics.wrote();
                Ok(())
            }
            Err(err) if has_code(&err, 404) => Ok(()),
            Err(err) => Err(self.api_error(key, "delete", Side::Virtual, err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_event() -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": "web-x-default-x-vc.17d3f0a1b2c3", "namespace": "host-ns", "uid": "e1", "resourceVersion": "5"},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "name": "web-x-default-x-vc", "namespace": "host-ns",
                "uid": "host-uid", "resourceVersion": "4", "fieldPath": "spec.containers{app}",
            },
            "reason": "Pulled",
            "message": "Successfully pulled image for host-ns/web-x-default-x-vc (web-x-default-x-vc)",
            "type": "Normal",
            "count": 3,
            "firstTimestamp": "2024-01-01T00:00:00Z",
            "lastTimestamp": "2024-01-01T00:01:00Z",
            "source": {"component": "kubelet", "host": "worker-1"},
            "related": {"kind": "Node", "name": "worker-1"},
        }))
        .expect("event")
    }

    fn target() -> Target {
        Target {
            key: VirtualKey::namespaced("default", "web"),
            uid: Some("virtual-uid".into()),
            host_name: "web-x-default-x-vc".into(),
        }
    }

    #[test]
    fn the_virtual_event_points_at_the_virtual_object() {
        let virt = virtual_event(&host_event(), &target(), "host-ns");
        assert_eq!(virt.metadata.name.as_deref(), Some("web.17d3f0a1b2c3"));
        assert_eq!(virt.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(virt.metadata.uid, None);
        assert_eq!(virt.metadata.resource_version, None);
        let involved = &virt.involved_object;
        assert_eq!(involved.name.as_deref(), Some("web"));
        assert_eq!(involved.namespace.as_deref(), Some("default"));
        assert_eq!(involved.uid.as_deref(), Some("virtual-uid"));
        assert_eq!(involved.kind.as_deref(), Some("Pod"));
        assert_eq!(involved.api_version.as_deref(), Some("v1"));
        assert_eq!(involved.field_path.as_deref(), Some("spec.containers{app}"));
        assert_eq!(involved.resource_version, None);
        assert_eq!(
            virt.message.as_deref(),
            Some("Successfully pulled image for default/web (web)")
        );
        assert_eq!(virt.count, Some(3));
        assert_eq!(virt.reason.as_deref(), Some("Pulled"));
        assert_eq!(virt.type_.as_deref(), Some("Normal"));
        assert_eq!(virt.last_timestamp, host_event().last_timestamp);
        assert_eq!(virt.related, None);
    }

    #[test]
    fn names_without_the_host_prefix_get_a_stable_hash() {
        let a = virtual_event_name("something-else", "web-x-default-x-vc", "web");
        assert!(a.starts_with("web."));
        assert_eq!(
            a,
            virtual_event_name("something-else", "web-x-default-x-vc", "web")
        );
        assert_ne!(
            a,
            virtual_event_name("something-other", "web-x-default-x-vc", "web")
        );
        // A longer host name that merely starts with the object's name.
        assert!(
            virtual_event_name("web-x-default-x-vc2.abc", "web-x-default-x-vc", "web")
                .starts_with("web.")
        );
        assert_ne!(
            virtual_event_name("web-x-default-x-vc2.abc", "web-x-default-x-vc", "web"),
            "web2.abc"
        );
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(group_version("v1"), ("", "v1"));
        assert_eq!(
            group_version("networking.k8s.io/v1"),
            ("networking.k8s.io", "v1")
        );
    }
}
