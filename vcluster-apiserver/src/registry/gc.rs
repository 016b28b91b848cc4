//! The garbage collector: one background task per server that follows
//! every write through the watch hub ([`WatchHub::subscribe_all`]) and
//! keeps an owner → dependents index by `uid`.
//!
//! - **Background**: a dependent whose owners are all gone (by uid; a
//!   namespaced owner only counts in the dependent's own namespace, as
//!   upstream resolves owner references there) is deleted. Owners of kinds
//!   the server does not serve, and namespaced owners of cluster-scoped
//!   dependents, cannot be verified and never cause a deletion.
//! - **Foreground**: an owner being deleted with the `foregroundDeletion`
//!   finalizer gets its dependents deleted; the finalizer is removed once
//!   no dependent with `blockOwnerDeletion: true` is left.
//! - **Orphan**: an owner being deleted with the `orphan` finalizer has
//!   its reference removed from every dependent, then the finalizer.
//!
//! The same task also empties namespaces and CRDs being deleted
//! ([`Registry::namespace_cleanup_pass`], [`Registry::crd_cleanup_pass`]).
//!
//! The index is rebuilt from one consistent list of the whole store at
//! start (so dependents orphaned while the server was down are collected
//! after a restart) and whenever the task falls too far behind the event
//! stream. The index lives in the task alone: requests never wait on it.
//! Each turn handles a bounded number of work items, and every write goes
//! through the registry (compare-and-swap, preconditions on `uid`), so the
//! collector never holds anything while requests are served.
//!
//! [`WatchHub::subscribe_all`]: crate::watch_cache::WatchHub::subscribe_all

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::namespaces::Progress;
use super::{
    finalizers, is_deleting, DeleteOptions, ObjectAddress, Propagation, Registry,
    FOREGROUND_FINALIZER, ORPHAN_FINALIZER,
};
use crate::error::ApiError;
use crate::object;
use crate::resources::custom;
use crate::resources::Catalog;
use crate::storage::{EventKind, ListRequest, StorageError};
use crate::watch_cache::CachedEvent;

/// Settings of the garbage collector.
#[derive(Clone, Debug)]
pub struct GarbageCollectorOptions {
    /// Work items handled per turn before events are read again.
    pub batch: usize,
    /// Delete calls per pass over a namespace or CRD being emptied.
    pub delete_budget: usize,
    /// Wait before retrying an item that failed.
    pub retry_after: Duration,
    /// Wait before looking again at a namespace or CRD whose contents are
    /// still being deleted (events about them bring it back sooner).
    pub recheck_after: Duration,
    /// Events buffered for the collector; falling further behind makes it
    /// rebuild its index from a full list.
    pub event_buffer: usize,
    /// Objects per storage page while rebuilding the index.
    pub list_page: usize,
}

impl Default for GarbageCollectorOptions {
    fn default() -> Self {
        Self {
            batch: 32,
            delete_budget: 128,
            retry_after: Duration::from_millis(250),
            recheck_after: Duration::from_secs(1),
            event_buffer: 65_536,
            list_page: 1_000,
        }
    }
}

/// Starts the collector over `registry`; it runs until `shutdown`.
pub fn spawn(
    registry: Arc<Registry>,
    options: GarbageCollectorOptions,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let collector = Collector {
        registry,
        options,
        index: Index::default(),
        queue: VecDeque::new(),
        queued: HashSet::new(),
        delayed: Vec::new(),
    };
    tokio::spawn(collector.run(shutdown))
}

/// Something the collector has to look at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    /// A dependent (by uid) whose owners may be gone.
    Dependent(String),
    /// An owner (by uid) being deleted with the foreground or orphan
    /// finalizer.
    Owner(String),
    /// A namespace being deleted.
    Namespace(String),
    /// A CRD being deleted.
    Crd(String),
}

/// One `metadata.ownerReferences` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnerRef {
    uid: String,
    api_version: String,
    kind: String,
    name: String,
    block: bool,
}

/// What the index knows of one object.
#[derive(Clone, Debug)]
struct Node {
    group: String,
    plural: String,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerRef>,
    deleting: bool,
    finalizers: Vec<String>,
}

impl Node {
    fn waits_for_dependents(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER)
    }

    fn orphans_dependents(&self) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == ORPHAN_FINALIZER)
    }
}

fn owner_refs(object: &Value) -> Vec<OwnerRef> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| {
                    let text = |f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                    let uid = text("uid");
                    (!uid.is_empty()).then(|| OwnerRef {
                        uid,
                        api_version: text("apiVersion"),
                        kind: text("kind"),
                        name: text("name"),
                        block: r.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The object's uid and index entry, from its storage key and value.
fn node_of(key: &str, object: &Value) -> Option<(String, Node)> {
    let rest = key.strip_prefix("/registry/")?;
    let mut parts = rest.splitn(3, '/');
    let group = match parts.next()? {
        "core" => "",
        group => group,
    };
    let plural = parts.next()?;
    let uid = object::meta_str(object, "uid");
    if uid.is_empty() {
        return None;
    }
    let namespace = object::namespace(object);
    Some((
        uid.to_owned(),
        Node {
            group: group.to_owned(),
            plural: plural.to_owned(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            name: object::name(object).to_owned(),
            owners: owner_refs(object),
            deleting: is_deleting(object),
            finalizers: finalizers(object),
        },
    ))
}

/// The owner → dependents index, plus what is being deleted.
#[derive(Default)]
struct Index {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
    namespaces_terminating: HashSet<String>,
    /// (group, plural) of a CRD being deleted → the CRD's name.
    crds_terminating: HashMap<(String, String), String>,
}

impl Index {
    fn upsert(&mut self, uid: &str, node: Node) -> Option<Node> {
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.to_owned());
        }
        let previous = self.nodes.insert(uid.to_owned(), node);
        if let Some(previous) = &previous {
            self.unlink(uid, previous, true);
        }
        previous
    }

    /// Drops the links of `node`'s owners that `uid` no longer has.
    fn unlink(&mut self, uid: &str, node: &Node, keep_current: bool) {
        for owner in &node.owners {
            let still = keep_current
                && self
                    .nodes
                    .get(uid)
                    .is_some_and(|n| n.owners.iter().any(|o| o.uid == owner.uid));
            if still {
                continue;
            }
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        self.unlink(uid, &node, false);
        Some(node)
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the index has no object `uid` where `owner` points.
    fn owner_missing(&self, node: &Node, owner: &OwnerRef) -> bool {
        match self.nodes.get(&owner.uid) {
            None => true,
            Some(found) => found.namespace.is_some() && found.namespace != node.namespace,
        }
    }
}

/// How one owner reference of a dependent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnerState {
    /// The owner exists (or cannot be verified): keep the dependent.
    Solid,
    /// The owner is gone.
    Dangling,
    /// The owner is being deleted in the foreground, waiting for its
    /// dependents.
    Waiting,
}

struct Collector {
    registry: Arc<Registry>,
    options: GarbageCollectorOptions,
    index: Index,
    queue: VecDeque<Work>,
    queued: HashSet<Work>,
    delayed: Vec<(Instant, Work)>,
}

impl Collector {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let mut subscription = self.registry.hub().subscribe_all(self.options.event_buffer);
            let rebuilt = tokio::select! {
                _ = shutdown.cancelled() => return,
                rebuilt = self.rebuild(subscription.after) => rebuilt,
            };
            if let Err(err) = rebuilt {
                tracing::warn!(error = %err, "garbage collector could not list the store; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = Duration::from_millis(100);
            loop {
                let next_due = self.delayed.iter().map(|(at, _)| *at).min();
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    event = subscription.events.recv() => match event {
                        Some(event) => {
                            self.observe(&event);
                            for _ in 0..1_024 {
                                match subscription.events.try_recv() {
                                    Ok(event) => self.observe(&event),
                                    Err(_) => break,
                                }
                            }
                        }
                        // The hub closes every subscription when the server
                        // stops: that is no lag.
                        None if shutdown.is_cancelled() => return,
                        None => {
                            tracing::info!("garbage collector fell behind the event stream; rebuilding its index");
                            break;
                        }
                    },
                    _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                        self.promote_due();
                    }
                    _ = std::future::ready(()), if !self.queue.is_empty() => {
                        self.work(&shutdown).await;
                    }
                }
            }
        }
    }

    fn enqueue(&mut self, work: Work) {
        if self.queued.insert(work.clone()) {
            self.queue.push_back(work);
        }
    }

    fn delay(&mut self, work: Work, after: Duration) {
        if !self.queued.contains(&work) && !self.delayed.iter().any(|(_, w)| *w == work) {
            self.delayed.push((Instant::now() + after, work));
        }
    }

    fn promote_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.delayed = later;
        for (_, work) in due {
            self.enqueue(work);
        }
    }

    /// Rebuilds the index from the whole store at `revision` (the
    /// subscription's start), then queues whatever needs a look.
    async fn rebuild(&mut self, revision: u64) -> Result<(), ApiError> {
        self.index = Index::default();
        self.queue.clear();
        self.queued.clear();
        self.delayed.clear();
        let storage = self.registry.storage().clone();
        let mut at = (revision > 0).then_some(revision);
        let mut start_after = None;
        loop {
            let page = storage
                .list(ListRequest {
                    prefix: "/registry/".to_owned(),
                    revision: at,
                    start_after: start_after.clone(),
                    limit: Some(self.options.list_page),
                })
                .await
                .map_err(|err: StorageError| ApiError::from(err))?;
            at = Some(page.revision);
            for kv in &page.items {
                let Ok(object) = object::decode_stored(&kv.value, kv.mod_revision) else {
                    continue;
                };
                self.track_terminating(&kv.key, &object);
                if let Some((uid, node)) = node_of(&kv.key, &object) {
                    self.index.upsert(&uid, node);
                }
            }
            if page.remaining == 0 {
                break;
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
        }
        let mut work = Vec::new();
        for (uid, node) in &self.index.nodes {
            if node.waits_for_dependents() || node.orphans_dependents() {
                work.push(Work::Owner(uid.clone()));
            }
            if node
                .owners
                .iter()
                .any(|o| self.index.owner_missing(node, o))
            {
                work.push(Work::Dependent(uid.clone()));
            }
        }
        work.extend(
            self.index
                .namespaces_terminating
                .iter()
                .map(|ns| Work::Namespace(ns.clone())),
        );
        work.extend(
            self.index
                .crds_terminating
                .values()
                .map(|name| Work::Crd(name.clone())),
        );
        for item in work {
            self.enqueue(item);
        }
        tracing::debug!(
            objects = self.index.nodes.len(),
            "garbage collector index built"
        );
        Ok(())
    }

    /// Notes namespaces and CRDs being deleted.
    fn track_terminating(&mut self, key: &str, object: &Value) {
        let Some((_, node)) = node_of(key, object) else {
            return;
        };
        if node.group.is_empty() && node.plural == "namespaces" {
            if node.deleting {
                self.index.namespaces_terminating.insert(node.name);
            } else {
                self.index.namespaces_terminating.remove(&node.name);
            }
        } else if node.group == custom::GROUP && node.plural == custom::PLURAL {
            let served = (
                object::path_str(object, "spec.group").to_owned(),
                object::path_str(object, "spec.names.plural").to_owned(),
            );
            if node.deleting {
                self.index.crds_terminating.insert(served, node.name);
            } else {
                self.index.crds_terminating.remove(&served);
            }
        }
    }

    /// Takes one write into the index and queues what it affects.
    fn observe(&mut self, event: &CachedEvent) {
        let Some((uid, node)) = node_of(&event.key, &event.object) else {
            return;
        };
        let is_namespace = node.group.is_empty() && node.plural == "namespaces";
        let is_crd = node.group == custom::GROUP && node.plural == custom::PLURAL;
        if event.kind == EventKind::Deleted {
            let removed = self.index.remove(&uid);
            for dependent in self.index.dependents_of(&uid) {
                self.enqueue(Work::Dependent(dependent));
            }
            for owner in removed.map(|n| n.owners).unwrap_or_default() {
                if self
                    .index
                    .nodes
                    .get(&owner.uid)
                    .is_some_and(Node::waits_for_dependents)
                {
                    self.enqueue(Work::Owner(owner.uid));
                }
            }
            if is_namespace {
                self.index.namespaces_terminating.remove(&node.name);
            }
            if is_crd {
                self.index
                    .crds_terminating
                    .retain(|_, name| *name != node.name);
            }
            if let Some(namespace) = &node.namespace {
                if self.index.namespaces_terminating.contains(namespace) {
                    self.enqueue(Work::Namespace(namespace.clone()));
                }
            }
            let served = (node.group.clone(), node.plural.clone());
            if let Some(name) = self.index.crds_terminating.get(&served).cloned() {
                self.enqueue(Work::Crd(name));
            }
            return;
        }
        self.track_terminating(&event.key, &event.object);
        let previous = self.index.upsert(&uid, node.clone());
        for owner in &node.owners {
            if self.index.owner_missing(&node, owner) {
                self.enqueue(Work::Dependent(uid.clone()));
            } else if self
                .index
                .nodes
                .get(&owner.uid)
                .is_some_and(|o| o.waits_for_dependents() || o.orphans_dependents())
            {
                self.enqueue(Work::Owner(owner.uid.clone()));
            }
        }
        for owner in previous.map(|p| p.owners).unwrap_or_default() {
            let dropped = !node.owners.iter().any(|o| o.uid == owner.uid);
            if dropped
                && self
                    .index
                    .nodes
                    .get(&owner.uid)
                    .is_some_and(Node::waits_for_dependents)
            {
                self.enqueue(Work::Owner(owner.uid));
            }
        }
        if node.waits_for_dependents() || node.orphans_dependents() {
            self.enqueue(Work::Owner(uid.clone()));
        }
        if is_namespace && node.deleting {
            self.enqueue(Work::Namespace(node.name.clone()));
        }
        if is_crd && node.deleting {
            self.enqueue(Work::Crd(node.name.clone()));
        }
    }

    /// Handles up to `batch` queued items.
    async fn work(&mut self, shutdown: &CancellationToken) {
        for _ in 0..self.options.batch {
            if shutdown.is_cancelled() {
                return;
            }
            let Some(work) = self.queue.pop_front() else {
                return;
            };
            self.queued.remove(&work);
            let outcome = match &work {
                Work::Dependent(uid) => self.attempt_to_delete(uid).await.map(|()| None),
                Work::Owner(uid) => self.process_owner(uid).await.map(|()| None),
                Work::Namespace(name) => self
                    .registry
                    .namespace_cleanup_pass(name, self.options.delete_budget)
                    .await
                    .map(Some),
                Work::Crd(name) => self
                    .registry
                    .crd_cleanup_pass(name, self.options.delete_budget)
                    .await
                    .map(Some),
            };
            match outcome {
                Ok(None) | Ok(Some(Progress::Done)) => {}
                Ok(Some(Progress::More)) => self.enqueue(work),
                Ok(Some(Progress::Waiting)) => self.delay(work, self.options.recheck_after),
                Err(err) => {
                    tracing::debug!(?work, error = %err, "garbage collection step failed; retrying");
                    self.delay(work, self.options.retry_after);
                }
            }
        }
    }

    fn address(&self, catalog: &Catalog, node: &Node) -> Option<ObjectAddress> {
        let resource = catalog.by_resource(&node.group, &node.plural)?;
        Some(ObjectAddress {
            namespace: if resource.namespaced {
                node.namespace.clone()
            } else {
                None
            },
            resource,
            name: node.name.clone(),
        })
    }

    /// How `owner` of a dependent in `namespace` stands: from the index,
    /// or, when the index does not know it (yet), from the store.
    async fn owner_state(
        &self,
        catalog: &Catalog,
        owner: &OwnerRef,
        namespace: Option<&str>,
    ) -> Result<OwnerState, ApiError> {
        let group = owner
            .api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or("");
        let Some(resource) = catalog.by_kind(group, &owner.kind) else {
            // A kind this server does not serve cannot be verified.
            return Ok(OwnerState::Solid);
        };
        let namespace = match (resource.namespaced, namespace) {
            (false, _) => None,
            (true, Some(namespace)) => Some(namespace.to_owned()),
            // A namespaced owner of a cluster-scoped dependent cannot be
            // resolved (upstream rule): never collected through it.
            (true, None) => return Ok(OwnerState::Solid),
        };
        if let Some(node) = self.index.nodes.get(&owner.uid) {
            if node.group == resource.group
                && node.plural == resource.plural
                && node.namespace == namespace
            {
                return Ok(if node.waits_for_dependents() {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                });
            }
        }
        let address = ObjectAddress {
            resource,
            namespace,
            name: owner.name.clone(),
        };
        match self.registry.get(&address).await {
            Ok(found) if object::meta_str(&found, "uid") == owner.uid => {
                let waiting = is_deleting(&found)
                    && finalizers(&found).iter().any(|f| f == FOREGROUND_FINALIZER);
                Ok(if waiting {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                })
            }
            Ok(_) => Ok(OwnerState::Dangling),
            Err(err) if err.reason == "NotFound" => Ok(OwnerState::Dangling),
            Err(err) => Err(err),
        }
    }

    /// Deletes a dependent whose owners are all gone (or waiting for it),
    /// or drops the references to gone owners when others remain.
    async fn attempt_to_delete(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(node) = self.index.nodes.get(uid).cloned() else {
            return Ok(());
        };
        if node.owners.is_empty() || node.deleting {
            return Ok(());
        }
        let catalog = self.registry.catalog();
        let Some(address) = self.address(&catalog, &node) else {
            return Ok(());
        };
        let live = match self.registry.get(&address).await {
            Ok(live) => live,
            Err(err) if err.reason == "NotFound" => return Ok(()),
            Err(err) => return Err(err),
        };
        if object::meta_str(&live, "uid") != uid || is_deleting(&live) {
            return Ok(());
        }
        let owners = owner_refs(&live);
        if owners.is_empty() {
            return Ok(());
        }
        let (mut solid, mut gone, mut waiting) = (0, HashSet::new(), 0);
        for owner in &owners {
            match self
                .owner_state(&catalog, owner, node.namespace.as_deref())
                .await?
            {
                OwnerState::Solid => solid += 1,
                OwnerState::Dangling => {
                    gone.insert(owner.uid.clone());
                }
                OwnerState::Waiting => {
                    waiting += 1;
                    gone.insert(owner.uid.clone());
                }
            }
        }
        if solid > 0 {
            if !gone.is_empty() {
                self.registry
                    .modify(&address, Some(uid), |object| {
                        remove_owner_refs(object, &gone)
                    })
                    .await?;
            }
            return Ok(());
        }
        let live_finalizers = finalizers(&live);
        let propagation = if waiting > 0 && !self.index.dependents_of(uid).is_empty() {
            Propagation::Foreground
        } else if live_finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
            Propagation::Orphan
        } else if live_finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        let options = DeleteOptions {
            uid: Some(uid.to_owned()),
            propagation: Some(propagation),
            ..DeleteOptions::default()
        };
        tracing::debug!(kind = %node.plural, namespace = ?node.namespace, name = %node.name, ?propagation, "garbage collecting");
        match self.registry.delete(&address, &options).await {
            Ok(_) => Ok(()),
            Err(err) if err.reason == "NotFound" || err.reason == "Conflict" => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Acts on an owner being deleted with the orphan or foreground
    /// finalizer.
    async fn process_owner(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(node) = self.index.nodes.get(uid).cloned() else {
            return Ok(());
        };
        if !node.deleting {
            return Ok(());
        }
        let catalog = self.registry.catalog();
        let Some(address) = self.address(&catalog, &node) else {
            return Ok(());
        };
        let live = match self.registry.get(&address).await {
            Ok(live) => live,
            Err(err) if err.reason == "NotFound" => return Ok(()),
            Err(err) => return Err(err),
        };
        if object::meta_str(&live, "uid") != uid || !is_deleting(&live) {
            return Ok(());
        }
        let live_finalizers = finalizers(&live);
        let dependents = self.index.dependents_of(uid);
        if live_finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
            let owner = HashSet::from([uid.to_owned()]);
            for dependent in &dependents {
                let Some(dependent_node) = self.index.nodes.get(dependent) else {
                    continue;
                };
                let Some(dependent_address) = self.address(&catalog, dependent_node) else {
                    continue;
                };
                self.registry
                    .modify(&dependent_address, Some(dependent), |object| {
                        remove_owner_refs(object, &owner)
                    })
                    .await?;
            }
            self.registry
                .modify(&address, Some(uid), |object| {
                    remove_finalizer(object, ORPHAN_FINALIZER)
                })
                .await?;
            return Ok(());
        }
        if live_finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            let blocking = dependents.iter().any(|dependent| {
                self.index
                    .nodes
                    .get(dependent)
                    .is_some_and(|d| d.owners.iter().any(|o| o.uid == uid && o.block))
            });
            if blocking {
                for dependent in dependents {
                    self.enqueue(Work::Dependent(dependent));
                }
            } else {
                self.registry
                    .modify(&address, Some(uid), |object| {
                        remove_finalizer(object, FOREGROUND_FINALIZER)
                    })
                    .await?;
            }
        }
        Ok(())
    }
}

/// Removes the owner references to `uids`; says whether any was there.
fn remove_owner_refs(object: &mut Value, uids: &HashSet<String>) -> bool {
    let Some(refs) = object
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = refs.len();
    refs.retain(|r| {
        !r.get("uid")
            .and_then(Value::as_str)
            .is_some_and(|uid| uids.contains(uid))
    });
    let changed = refs.len() != before;
    if refs.is_empty() {
        object::metadata_mut(object).remove("ownerReferences");
    }
    changed
}

/// Removes one finalizer; says whether it was there.
fn remove_finalizer(object: &mut Value, finalizer: &str) -> bool {
    let list = finalizers(object);
    if !list.iter().any(|f| f == finalizer) {
        return false;
    }
    super::set_finalizers(
        object,
        list.into_iter().filter(|f| f != finalizer).collect(),
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(uid: &str, namespace: &str, owners: &[(&str, bool)]) -> Value {
        let refs: Vec<Value> = owners
            .iter()
            .map(|(uid, block)| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "blockOwnerDeletion": block}))
            .collect();
        json!({"metadata": {"name": format!("n-{uid}"), "namespace": namespace, "uid": uid, "ownerReferences": refs}})
    }

    #[test]
    fn keys_and_objects_make_index_nodes() {
        let (uid, node) = node_of(
            "/registry/core/pods/team/web",
            &object("p1", "team", &[("rs1", true)]),
        )
        .expect("node");
        assert_eq!(
            (uid.as_str(), node.group.as_str(), node.plural.as_str()),
            ("p1", "", "pods")
        );
        assert_eq!(node.namespace.as_deref(), Some("team"));
        assert!(node.owners[0].block);
        let (_, node) = node_of(
            "/registry/apps/replicasets/team/rs",
            &json!({"metadata": {"name": "rs", "namespace": "team", "uid": "rs1", "deletionTimestamp": "x", "finalizers": ["foregroundDeletion"]}}),
        )
        .expect("node");
        assert_eq!(node.group, "apps");
        assert!(node.waits_for_dependents() && !node.orphans_dependents());
        assert!(node_of("/registry/core/pods/team/x", &json!({"metadata": {}})).is_none());
    }

    #[test]
    fn the_index_follows_owner_reference_changes() {
        let mut index = Index::default();
        let (uid, node) = node_of(
            "/registry/core/pods/a/p",
            &object("p1", "a", &[("o1", false), ("o2", false)]),
        )
        .expect("node");
        index.upsert(&uid, node);
        assert_eq!(index.dependents_of("o1"), ["p1"]);
        let (uid, node) = node_of(
            "/registry/core/pods/a/p",
            &object("p1", "a", &[("o2", false)]),
        )
        .expect("node");
        index.upsert(&uid, node.clone());
        assert!(index.dependents_of("o1").is_empty());
        assert_eq!(index.dependents_of("o2"), ["p1"]);
        assert!(index.owner_missing(&node, &node.owners[0]));
        let (owner_uid, owner) =
            node_of("/registry/apps/replicasets/b/rs", &object("o2", "b", &[])).expect("owner");
        index.upsert(&owner_uid, owner);
        assert!(
            index.owner_missing(&node, &node.owners[0]),
            "an owner in another namespace does not count"
        );
        index.remove("p1");
        assert!(index.dependents_of("o2").is_empty());
    }

    #[test]
    fn owner_references_and_finalizers_are_removed_by_uid() {
        let mut pod = object("p1", "a", &[("o1", true), ("o2", false)]);
        assert!(remove_owner_refs(
            &mut pod,
            &HashSet::from(["o1".to_owned()])
        ));
        assert_eq!(owner_refs(&pod).len(), 1);
        assert!(!remove_owner_refs(
            &mut pod,
            &HashSet::from(["o9".to_owned()])
        ));
        assert!(remove_owner_refs(
            &mut pod,
            &HashSet::from(["o2".to_owned()])
        ));
        assert!(pod["metadata"].get("ownerReferences").is_none());
        let mut owner = json!({"metadata": {"finalizers": ["orphan", "x"]}});
        assert!(remove_finalizer(&mut owner, "orphan"));
        assert_eq!(owner["metadata"]["finalizers"], json!(["x"]));
        assert!(!remove_finalizer(&mut owner, "orphan"));
    }
}
