//! The orphan collector: garbage collection by owner references, until
//! the API server has a garbage collector of its own.
//!
//! Every object the controllers create carries a controller owner
//! reference, so that deleting a Deployment removes its ReplicaSets and
//! their Pods, a CronJob its Jobs, a Service its EndpointSlices. The API
//! server does not act on owner references yet (a delete removes the
//! object at once, whatever the `propagationPolicy`), so this collector
//! does what kube-controller-manager's garbage collector does for the
//! common case:
//!
//! - when an owner is deleted, its dependents are looked up at once and
//!   deleted (in the background, so theirs follow);
//! - a dependent created with an owner that was just deleted (a
//!   controller racing the deletion) is deleted when it shows up;
//! - every [`crate::ControllerOptions::orphan_sweep_interval`], all
//!   dependents are checked, for owners deleted while nothing watched.
//!
//! A dependent is deleted only when *all* its owners are gone (checked
//! with a live GET, uid included); when only some are, the dangling
//! references are removed, as upstream's collector does. Owners of kinds
//! it does not know are assumed alive.
//!
//! It is harmless once the API server collects garbage itself: that
//! collector acts first (a foreground deletion keeps the owner until its
//! dependents are gone; an orphaning deletion removes the references
//! before the owner goes), so this one finds nothing dangling, and every
//! delete it sends is preconditioned on the dependent's uid. Until then,
//! `--cascade=orphan` cannot be honoured: the owner is gone before anyone
//! can tell its dependents were meant to stay.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, Preconditions, PropagationPolicy,
};
use kube::core::ApiResource;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{is_status, ApiContext, Result};
use crate::runtime::Shared;
use vcluster_core::FieldManager;

/// How long a deleted owner's uid is remembered, to catch dependents
/// created right after it went.
const TOMBSTONE_TTL: Duration = Duration::from_secs(600);
/// Most remembered deleted owners.
const MAX_TOMBSTONES: usize = 10_000;

/// A kind the collector knows: as an owner (can be looked up), as a
/// dependent (is watched and swept), or both.
#[derive(Clone)]
struct KnownKind {
    resource: ApiResource,
    owner: bool,
    dependent: bool,
}

fn known<K: Resource<DynamicType = ()>>(owner: bool, dependent: bool) -> KnownKind {
    KnownKind {
        resource: ApiResource::erase::<K>(&()),
        owner,
        dependent,
    }
}

fn kinds() -> Vec<KnownKind> {
    vec![
        known::<Deployment>(true, false),
        known::<ReplicaSet>(true, true),
        known::<StatefulSet>(true, false),
        known::<DaemonSet>(true, false),
        known::<Job>(true, true),
        known::<CronJob>(true, false),
        known::<Service>(true, false),
        known::<Pod>(true, true),
        known::<PersistentVolumeClaim>(false, true),
        known::<EndpointSlice>(false, true),
        known::<ConfigMap>(false, true),
        known::<Secret>(false, true),
    ]
}

struct Collector {
    client: kube::Client,
    kinds: Vec<KnownKind>,
    tombstones: Mutex<HashMap<String, Instant>>,
}

impl Collector {
    /// The owner kind a reference points at, if known.
    fn owner_kind(&self, reference: &OwnerReference) -> Option<&ApiResource> {
        self.kinds
            .iter()
            .filter(|k| k.owner)
            .map(|k| &k.resource)
            .find(|r| r.api_version == reference.api_version && r.kind == reference.kind)
    }

    fn bury(&self, uid: &str) {
        let mut tombstones = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        if tombstones.len() >= MAX_TOMBSTONES {
            let now = Instant::now();
            tombstones.retain(|_, at| now.duration_since(*at) < TOMBSTONE_TTL);
            if tombstones.len() >= MAX_TOMBSTONES {
                tombstones.clear();
            }
        }
        tombstones.insert(uid.to_owned(), Instant::now());
    }

    fn is_buried(&self, uid: &str) -> bool {
        let tombstones = self.tombstones.lock().unwrap_or_else(|p| p.into_inner());
        tombstones
            .get(uid)
            .is_some_and(|at| at.elapsed() < TOMBSTONE_TTL)
    }

    /// Whether the owner `reference` points at (in `namespace`) exists.
    async fn owner_alive(
        &self,
        namespace: Option<&str>,
        reference: &OwnerReference,
        cache: &mut HashMap<String, bool>,
    ) -> Result<bool> {
        if let Some(alive) = cache.get(&reference.uid) {
            return Ok(*alive);
        }
        let Some(resource) = self.owner_kind(reference) else {
            return Ok(true);
        };
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        let found = api.get_opt(&reference.name).await.context(
            "get",
            "owner",
            &format!("{}/{}", reference.kind, reference.name),
        )?;
        let alive =
            found.is_some_and(|o| o.metadata.uid.as_deref() == Some(reference.uid.as_str()));
        cache.insert(reference.uid.clone(), alive);
        Ok(alive)
    }

    /// Deletes `obj` if all its owners are gone, or drops the references
    /// to the gone ones if only some are.
    async fn check(
        &self,
        resource: &ApiResource,
        obj: &DynamicObject,
        cache: &mut HashMap<String, bool>,
    ) -> Result<()> {
        let refs = obj.metadata.owner_references.clone().unwrap_or_default();
        if refs.is_empty() || obj.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let namespace = obj.metadata.namespace.as_deref();
        let mut alive = Vec::new();
        for reference in &refs {
            if self.owner_alive(namespace, reference, cache).await? {
                alive.push(reference.clone());
            }
        }
        if alive.len() == refs.len() {
            return Ok(());
        }
        let Some(name) = obj.metadata.name.clone() else {
            return Ok(());
        };
        let key = format!("{}/{}", namespace.unwrap_or(""), name);
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        if alive.is_empty() {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: obj.metadata.uid.clone(),
                    resource_version: None,
                }),
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(kind = %resource.kind, object = %key, "deleted a dependent whose owners are gone");
                }
                Err(err) if is_status(&err, 404) || is_status(&err, 409) => {}
                Err(err) => return Err(err).context("delete orphaned", "dependent", &key),
            }
        } else {
            let patch = json!({"metadata": {
                "ownerReferences": alive,
                "resourceVersion": obj.metadata.resource_version,
            }});
            match api
                .patch(
                    &name,
                    &FieldManager::CONTROLLERS.patch_params(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(kind = %resource.kind, object = %key, "removed references to deleted owners")
                }
                Err(err) if is_status(&err, 404) || is_status(&err, 409) => {}
                Err(err) => {
                    return Err(err).context(
                        "remove dangling owner references of",
                        "dependent",
                        &key,
                    )
                }
            }
        }
        Ok(())
    }

    /// Deletes the dependents of the owner with `uid` in `namespace`.
    async fn collect(&self, namespace: Option<&str>, uid: &str) -> Result<()> {
        let mut cache = HashMap::from([(uid.to_owned(), false)]);
        for kind in self.kinds.iter().filter(|k| k.dependent) {
            let api: Api<DynamicObject> = match namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
                None => Api::all_with(self.client.clone(), &kind.resource),
            };
            let list = api.list(&ListParams::default()).await.context(
                "list",
                "dependents",
                namespace.unwrap_or(""),
            )?;
            for obj in list.items.iter().filter(|o| owned_by(o, uid)) {
                self.check(&kind.resource, obj, &mut cache).await?;
            }
        }
        Ok(())
    }

    /// Checks every dependent of every known kind.
    async fn sweep(&self) -> Result<()> {
        let mut cache = HashMap::new();
        for kind in self.kinds.iter().filter(|k| k.dependent) {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &kind.resource);
            let list = api.list(&ListParams::default()).await.context(
                "list",
                "dependents",
                &kind.resource.plural,
            )?;
            for obj in list.items.iter().filter(|o| {
                o.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|r| !r.is_empty())
            }) {
                self.check(&kind.resource, obj, &mut cache).await?;
            }
        }
        Ok(())
    }
}

fn owned_by(obj: &DynamicObject, uid: &str) -> bool {
    obj.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == uid)
}

type KindEvent = (usize, watcher::Result<watcher::Event<DynamicObject>>);

fn watch_kind(
    client: kube::Client,
    index: usize,
    resource: ApiResource,
) -> impl Stream<Item = KindEvent> + Send {
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    watcher(api, watcher::Config::default())
        .default_backoff()
        .map(move |event| (index, event))
}

/// Runs the orphan collector until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let collector = Arc::new(Collector {
        client: shared.client.clone(),
        kinds: kinds(),
        tombstones: Mutex::new(HashMap::new()),
    });
    let streams: Vec<_> = collector
        .kinds
        .iter()
        .enumerate()
        .map(|(i, k)| watch_kind(collector.client.clone(), i, k.resource.clone()).boxed())
        .collect();
    let mut events = futures::stream::select_all(streams);
    let mut sweep = tokio::time::interval(shared.options.orphan_sweep_interval);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut recently_checked: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sweep.tick() => {
                recently_checked.clear();
                let collector = collector.clone();
                in_flight.spawn(async move {
                    if let Err(err) = collector.sweep().await {
                        tracing::warn!(error = %err, "orphan sweep failed; trying again at the next one");
                    }
                });
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            event = events.next() => {
                let Some((index, event)) = event else { break };
                let kind = collector.kinds[index].clone();
                match event {
                    Ok(watcher::Event::Delete(obj)) if kind.owner => {
                        let Some(uid) = obj.metadata.uid.clone() else { continue };
                        collector.bury(&uid);
                        let collector = collector.clone();
                        let namespace = obj.metadata.namespace.clone();
                        let span = tracing::info_span!("collect", kind = %kind.resource.kind, owner = %format!("{}/{}", namespace.as_deref().unwrap_or(""), obj.metadata.name.as_deref().unwrap_or("")));
                        in_flight.spawn(tracing::Instrument::instrument(async move {
                            if let Err(err) = collector.collect(namespace.as_deref(), &uid).await {
                                tracing::warn!(error = %err, "collecting the dependents of a deleted owner failed; the next sweep retries");
                            }
                        }, span));
                    }
                    Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::InitApply(obj)) if kind.dependent => {
                        let buried = obj
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|r| collector.is_buried(&r.uid));
                        let Some(uid) = obj.metadata.uid.clone() else { continue };
                        if buried && recently_checked.insert(uid) {
                            let collector = collector.clone();
                            in_flight.spawn(async move {
                                let mut cache = HashMap::new();
                                if let Err(err) = collector.check(&kind.resource, &obj, &mut cache).await {
                                    tracing::warn!(error = %err, "checking a dependent of a deleted owner failed; the next sweep retries");
                                }
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::debug!(error = %err, "watch error; retrying"),
                }
            }
        }
    }
    in_flight.abort_all();
    tracing::debug!(controller = "orphans", "stopped");
}
