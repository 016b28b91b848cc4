//! Deployments: one ReplicaSet per pod template, rolled out by the
//! Deployment's strategy, as upstream's deployment controller does.
//!
//! - The current template's ReplicaSet ("new") is found by comparing
//!   templates (ignoring `pod-template-hash`), so `kubectl rollout undo`,
//!   which copies an old ReplicaSet's template back, reuses that
//!   ReplicaSet and raises its revision.
//! - RollingUpdate grows the new ReplicaSet up to `replicas + maxSurge`
//!   pods in total and shrinks old ones while at least
//!   `replicas - maxUnavailable` stay available; Recreate scales old
//!   ReplicaSets to zero, waits for their pods to go, then scales up.
//! - Scaling mid-rollout shares the change in proportion (the
//!   `max-replicas` annotations); scaling a settled Deployment scales its
//!   one active ReplicaSet.
//! - Status: `observedGeneration`, replica counts summed from the
//!   ReplicaSets, conditions `Available` and `Progressing` (with the
//!   progress deadline), so `kubectl rollout status` finishes; revision
//!   annotations so `kubectl rollout history` lists revisions; old
//!   ReplicaSets beyond `revisionHistoryLimit` are deleted.
//!
//! Children are read with live LISTs rather than informer caches: each
//! reconcile sees every write made before it, so no "expectations" are
//! needed to avoid double creations.

pub mod util;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{is_status, ApiContext, Error, Result};
use crate::hash::{template_hash, templates_equal_ignoring_hash, POD_TEMPLATE_HASH_LABEL};
use crate::meta::{
    classify, controller_ref, delete_exact, is_controlled_by, name_of, namespace_of, selector_of,
    settle_claim, uid_of,
};
use crate::runtime::{drive, Shared};
use util::{reason, REVISION_ANNOTATION};
use vcluster_core::FieldManager;

const KIND: &str = "Deployment";
/// The reporting controller of its events.
const CONTROLLER: &str = "deployment-controller";

/// Runs the deployment controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<ReplicaSet>::all(client), watcher::Config::default());
    drive("deployment", controller, shared, reconcile, cancel).await;
}

async fn reconcile(obj: Arc<Deployment>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<Deployment> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(d) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let mut sync = Sync {
        shared: shared.clone(),
        now: shared.now(),
        rs_api: Api::namespaced(shared.client.clone(), &namespace),
        pod_api: Api::namespaced(shared.client.clone(), &namespace),
        api,
        d,
        key,
        requeue: None,
    };
    sync.run().await?;
    Ok(Action::requeue(
        sync.requeue.unwrap_or(shared.options.resync),
    ))
}

/// One reconcile of one Deployment; `d` is kept current after each write.
struct Sync {
    shared: Arc<Shared>,
    api: Api<Deployment>,
    rs_api: Api<ReplicaSet>,
    pod_api: Api<Pod>,
    d: Deployment,
    key: String,
    now: jiff::Timestamp,
    requeue: Option<Duration>,
}

/// Replaces the ReplicaSet with the same name in `list`.
fn replace(list: &mut [ReplicaSet], rs: ReplicaSet) {
    if let Some(slot) = list
        .iter_mut()
        .find(|r| r.metadata.name == rs.metadata.name)
    {
        *slot = rs;
    }
}

impl Sync {
    fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    fn requeue_after(&mut self, after: Duration) {
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    fn paused(&self) -> bool {
        self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
    }

    async fn run(&mut self) -> Result<()> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let selector = selector_of(KIND, &self.key, Some(&spec.selector))?;
        if selector.is_empty() {
            // Upstream refuses a selector that selects everything; it only
            // records that it saw this generation.
            tracing::warn!("the selector selects every pod; not acting on it");
            let generation = self.d.metadata.generation;
            if self.status().observed_generation < generation {
                let mut status = self.status();
                status.observed_generation = generation;
                self.update_status(status).await?;
            }
            return Ok(());
        }
        util::fenceposts(&self.d).map_err(|message| Error::InvalidSpec {
            kind: KIND,
            key: self.key.clone(),
            message,
        })?;
        let rs_list = self.claim_replica_sets(&selector).await?;
        if self.d.metadata.deletion_timestamp.is_some() {
            let (new_rs, old) = self.all_replica_sets(rs_list, false).await?;
            return self.sync_deployment_status(&old, new_rs.as_ref()).await;
        }
        self.check_paused_conditions().await?;
        if self.paused() {
            return self.sync(rs_list).await;
        }
        if self.is_scaling_event(&rs_list).await? {
            return self.sync(rs_list).await;
        }
        if util::is_rolling(&self.d) {
            self.rollout_rolling(rs_list).await
        } else {
            self.rollout_recreate(rs_list).await
        }
    }

    /// The ReplicaSets this Deployment controls, after adopting orphans
    /// its selector matches and releasing ones it no longer matches.
    async fn claim_replica_sets(
        &self,
        selector: &vcluster_core::Selector,
    ) -> Result<Vec<ReplicaSet>> {
        let all = self
            .rs_api
            .list(&ListParams::default())
            .await
            .context("list", "ReplicaSet", &self.key)?
            .items;
        let uid = uid_of(&self.d)?;
        let claim = classify(
            &uid,
            selector,
            self.d.metadata.deletion_timestamp.is_some(),
            all,
        );
        settle_claim(&self.rs_api, &controller_ref(&self.d)?, claim).await
    }

    /// Splits the ReplicaSets into the new one (creating it when asked)
    /// and the old ones, and syncs revisions (upstream's
    /// `getAllReplicaSetsAndSyncRevision`).
    async fn all_replica_sets(
        &mut self,
        mut rs_list: Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        rs_list.sort_by(util::by_creation);
        let template = self.d.spec.clone().unwrap_or_default().template;
        let position = rs_list.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| templates_equal_ignoring_hash(t, &template))
        });
        let existing = position.map(|i| rs_list.remove(i));
        let old = rs_list;
        let new_rs = self.new_replica_set(existing, &old, create).await?;
        Ok((new_rs, old))
    }

    async fn new_replica_set(
        &mut self,
        existing: Option<ReplicaSet>,
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>> {
        let new_revision = util::max_revision(old) + 1;
        if let Some(mut rs) = existing {
            let annotations_changed =
                util::set_new_rs_annotations(&self.d, &mut rs, new_revision, true);
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs_min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs = if annotations_changed || min_ready.unwrap_or(0) != rs_min_ready.unwrap_or(0) {
                let patch = json!({
                    "metadata": {
                        "annotations": rs.metadata.annotations,
                        "resourceVersion": rs.metadata.resource_version,
                    },
                    "spec": {"minReadySeconds": min_ready},
                });
                self.patch_rs(&rs, &patch, "update annotations of").await?
            } else {
                rs
            };
            let revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION_ANNOTATION))
                .cloned()
                .unwrap_or_default();
            self.set_deployment_revision(&revision).await?;
            if util::has_progress_deadline(&self.d)
                && util::condition(&self.status(), reason::PROGRESSING).is_none()
            {
                let mut status = self.status();
                let message = format!(
                    "Found new replica set {:?}",
                    rs.metadata.name.clone().unwrap_or_default()
                );
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        reason::PROGRESSING,
                        "True",
                        reason::FOUND_NEW_RS,
                        message,
                        self.now,
                    ),
                );
                self.update_status(status).await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        self.create_replica_set(old, new_revision).await.map(Some)
    }

    async fn create_replica_set(
        &mut self,
        old: &[ReplicaSet],
        new_revision: i64,
    ) -> Result<ReplicaSet> {
        let spec = self.d.spec.clone().unwrap_or_default();
        let name = name_of(&self.d)?;
        let collision_count = self.status().collision_count;
        let hash = template_hash(&spec.template, collision_count);
        let mut template = spec.template.clone();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{name}-{hash}")),
                namespace: self.d.metadata.namespace.clone(),
                owner_references: Some(vec![controller_ref(&self.d)?]),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&rs)).collect();
        let replicas = util::new_rs_new_replicas(&self.d, &all, &rs).map_err(|message| {
            Error::InvalidSpec {
                kind: KIND,
                key: self.key.clone(),
                message,
            }
        })?;
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        util::set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let (created, already_existed) = match self
            .rs_api
            .create(&FieldManager::CONTROLLERS.post_params(), &rs)
            .await
        {
            Ok(created) => {
                tracing::info!(replica_set = %rs_name, replicas, "created replica set");
                if replicas > 0 {
                    let note = format!("Scaled up replica set {rs_name} from 0 to {replicas}");
                    self.shared
                        .event(CONTROLLER, &self.d, false, "ScalingReplicaSet", note)
                        .await;
                }
                (created, false)
            }
            Err(err) if is_status(&err, 409) => {
                let found = self.rs_api.get_opt(&rs_name).await.context(
                    "get",
                    "ReplicaSet",
                    &format!("{}/{rs_name}", self.key),
                )?;
                let uid = uid_of(&self.d)?;
                match found {
                    Some(found)
                        if is_controlled_by(&found.metadata, &uid)
                            && found
                                .spec
                                .as_ref()
                                .and_then(|s| s.template.as_ref())
                                .is_some_and(|t| {
                                    templates_equal_ignoring_hash(t, &spec.template)
                                }) =>
                    {
                        (found, true)
                    }
                    _ => {
                        // A hash collision: count it, so the next hash differs.
                        let mut status = self.status();
                        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                        tracing::info!(replica_set = %rs_name, "pod template hash collision");
                        self.update_status(status).await?;
                        return Err(err).context("create", "ReplicaSet", &rs_name);
                    }
                }
            }
            Err(err) => {
                if util::has_progress_deadline(&self.d) {
                    let mut status = self.status();
                    let message = format!("Failed to create new replica set {rs_name:?}: {err}");
                    util::set_condition(
                        &mut status,
                        util::new_condition(
                            reason::PROGRESSING,
                            "False",
                            reason::RS_CREATE_ERROR,
                            message,
                            self.now,
                        ),
                    );
                    if let Err(status_err) = self.update_status(status).await {
                        tracing::debug!(error = %status_err, "could not record the failure in the status");
                    }
                }
                return Err(err).context("create", "ReplicaSet", &rs_name);
            }
        };
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        if !already_existed && util::has_progress_deadline(&self.d) {
            let mut status = self.status();
            let message = format!("Created new replica set {rs_name:?}");
            util::set_condition(
                &mut status,
                util::new_condition(
                    reason::PROGRESSING,
                    "True",
                    reason::NEW_RS_CREATED,
                    message,
                    self.now,
                ),
            );
            self.update_status(status).await?;
        }
        Ok(created)
    }

    /// Sets the Deployment's revision annotation (what `kubectl rollout
    /// history` and `undo` read).
    async fn set_deployment_revision(&mut self, revision: &str) -> Result<()> {
        let current = self
            .d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION));
        if current.map(String::as_str) == Some(revision) || revision.is_empty() {
            return Ok(());
        }
        let name = name_of(&self.d)?;
        let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision}}});
        self.d = self
            .api
            .patch(
                &name,
                &FieldManager::CONTROLLERS.patch_params(),
                &Patch::Merge(&patch),
            )
            .await
            .context("set the revision of", KIND, &self.key)?;
        Ok(())
    }

    async fn update_status(&mut self, status: DeploymentStatus) -> Result<()> {
        let name = name_of(&self.d)?;
        let mut d = self.d.clone();
        d.status = Some(status);
        self.d = self
            .api
            .replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &d)
            .await
            .context("update status of", KIND, &self.key)?;
        Ok(())
    }

    async fn patch_rs(
        &self,
        rs: &ReplicaSet,
        patch: &serde_json::Value,
        verb: &'static str,
    ) -> Result<ReplicaSet> {
        let name = name_of(rs)?;
        self.rs_api
            .patch(
                &name,
                &FieldManager::CONTROLLERS.patch_params(),
                &Patch::Merge(patch),
            )
            .await
            .context(
                verb,
                "ReplicaSet",
                &format!(
                    "{}/{name}",
                    self.d.metadata.namespace.as_deref().unwrap_or("")
                ),
            )
    }

    /// Scales `rs` unless it already has `scale` (upstream's
    /// `scaleReplicaSetAndRecordEvent`).
    async fn scale_if_needed(&self, rs: &ReplicaSet, scale: i32) -> Result<(bool, ReplicaSet)> {
        if util::rs_replicas(rs) == scale {
            return Ok((false, rs.clone()));
        }
        self.scale(rs, scale).await
    }

    /// Sets `rs`'s replicas and its desired/max annotations.
    async fn scale(&self, rs: &ReplicaSet, scale: i32) -> Result<(bool, ReplicaSet)> {
        let desired = util::replicas(&self.d);
        let max = desired + util::max_surge(&self.d);
        let size_changes = util::rs_replicas(rs) != scale;
        if !size_changes && !util::replicas_annotations_need_update(rs, desired, max) {
            return Ok((false, rs.clone()));
        }
        let patch = json!({
            "metadata": {
                "annotations": {
                    util::DESIRED_REPLICAS_ANNOTATION: desired.to_string(),
                    util::MAX_REPLICAS_ANNOTATION: max.to_string(),
                },
                "resourceVersion": rs.metadata.resource_version,
            },
            "spec": {"replicas": scale},
        });
        let updated = self.patch_rs(rs, &patch, "scale").await?;
        if size_changes {
            let name = rs.metadata.name.as_deref().unwrap_or("");
            let from = util::rs_replicas(rs);
            tracing::info!(replica_set = %name, from, to = scale, "scaled replica set");
            let direction = if scale > from { "up" } else { "down" };
            let note = format!("Scaled {direction} replica set {name} from {from} to {scale}");
            self.shared
                .event(CONTROLLER, &self.d, false, "ScalingReplicaSet", note)
                .await;
        }
        Ok((size_changes, updated))
    }

    async fn check_paused_conditions(&mut self) -> Result<()> {
        if !util::has_progress_deadline(&self.d) {
            return Ok(());
        }
        let status = self.status();
        let cond = util::condition(&status, reason::PROGRESSING);
        if cond.is_some_and(|c| c.reason.as_deref() == Some(reason::TIMED_OUT)) {
            return Ok(());
        }
        let paused_cond = cond.is_some_and(|c| c.reason.as_deref() == Some(reason::PAUSED));
        let mut status = status.clone();
        if self.paused() && !paused_cond {
            util::set_condition(
                &mut status,
                util::new_condition(
                    reason::PROGRESSING,
                    "Unknown",
                    reason::PAUSED,
                    "Deployment is paused".into(),
                    self.now,
                ),
            );
        } else if !self.paused() && paused_cond {
            util::set_condition(
                &mut status,
                util::new_condition(
                    reason::PROGRESSING,
                    "Unknown",
                    reason::RESUMED,
                    "Deployment is resumed".into(),
                    self.now,
                ),
            );
        } else {
            return Ok(());
        }
        self.update_status(status).await
    }

    /// Whether the Deployment's replicas changed since its active
    /// ReplicaSets were last scaled.
    async fn is_scaling_event(&mut self, rs_list: &[ReplicaSet]) -> Result<bool> {
        let (new_rs, old) = self.all_replica_sets(rs_list.to_vec(), false).await?;
        let desired = util::replicas(&self.d).to_string();
        Ok(old
            .iter()
            .chain(new_rs.as_ref())
            .filter(|rs| util::is_active(rs))
            .any(|rs| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(util::DESIRED_REPLICAS_ANNOTATION))
                    .is_some_and(|d| *d != desired)
            }))
    }

    /// Scaling without rolling (a paused Deployment, or a change of
    /// replicas).
    async fn sync(&mut self, rs_list: Vec<ReplicaSet>) -> Result<()> {
        let (mut new_rs, mut old) = self.all_replica_sets(rs_list, false).await?;
        self.scale_replica_sets(&mut new_rs, &mut old).await?;
        if self.paused() {
            self.cleanup(&old).await?;
        }
        self.sync_deployment_status(&old, new_rs.as_ref()).await
    }

    async fn scale_replica_sets(
        &mut self,
        new_rs: &mut Option<ReplicaSet>,
        old: &mut [ReplicaSet],
    ) -> Result<()> {
        let desired = util::replicas(&self.d);
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        if let Some(target) = util::find_active_or_latest(new_rs.as_ref(), &old_refs).cloned() {
            let (_, updated) = self.scale_if_needed(&target, desired).await?;
            self.put(new_rs, old, updated);
            return Ok(());
        }
        if util::is_saturated(&self.d, new_rs.as_ref()) {
            for rs in old.to_vec().iter().filter(|rs| util::is_active(rs)) {
                let (_, updated) = self.scale_if_needed(rs, 0).await?;
                replace(old, updated);
            }
            return Ok(());
        }
        if util::is_rolling(&self.d) {
            let active: Vec<ReplicaSet> = old
                .iter()
                .chain(new_rs.as_ref())
                .filter(|rs| util::is_active(rs))
                .cloned()
                .collect();
            let refs: Vec<&ReplicaSet> = active.iter().collect();
            let sizes = util::proportional_sizes(&self.d, &refs);
            for rs in &active {
                let size = rs
                    .metadata
                    .name
                    .as_ref()
                    .and_then(|n| sizes.get(n))
                    .copied()
                    .unwrap_or_else(|| util::rs_replicas(rs));
                let (_, updated) = self.scale(rs, size).await?;
                self.put(new_rs, old, updated);
            }
        }
        Ok(())
    }

    /// Puts an updated ReplicaSet back where it came from.
    fn put(&self, new_rs: &mut Option<ReplicaSet>, old: &mut [ReplicaSet], updated: ReplicaSet) {
        match new_rs {
            Some(rs) if rs.metadata.name == updated.metadata.name => *rs = updated,
            _ => replace(old, updated),
        }
    }

    async fn rollout_rolling(&mut self, rs_list: Vec<ReplicaSet>) -> Result<()> {
        let (new_rs, mut old) = self.all_replica_sets(rs_list, true).await?;
        let Some(mut new_rs) = new_rs else {
            return Ok(());
        };
        // Scale up the new ReplicaSet as far as the surge allows.
        let desired = util::replicas(&self.d);
        let current = util::rs_replicas(&new_rs);
        if current != desired {
            let target = if current > desired {
                desired
            } else {
                let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new_rs)).collect();
                util::new_rs_new_replicas(&self.d, &all, &new_rs).map_err(|message| {
                    Error::InvalidSpec {
                        kind: KIND,
                        key: self.key.clone(),
                        message,
                    }
                })?
            };
            let (scaled, updated) = self.scale_if_needed(&new_rs, target).await?;
            new_rs = updated;
            if scaled {
                return self.sync_rollout_status(&old, Some(&new_rs)).await;
            }
        }
        if self.reconcile_old_replica_sets(&mut old, &new_rs).await? {
            return self.sync_rollout_status(&old, Some(&new_rs)).await;
        }
        if util::is_complete(&self.d, &self.status()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&old, Some(&new_rs)).await
    }

    /// Scales old ReplicaSets down within the availability budget,
    /// unhealthy pods first. Returns whether anything was scaled.
    async fn reconcile_old_replica_sets(
        &mut self,
        old: &mut [ReplicaSet],
        new_rs: &ReplicaSet,
    ) -> Result<bool> {
        let active_old: usize = old.iter().filter(|rs| util::is_active(rs)).count();
        if active_old == 0 || util::total_replicas(old.iter()) == 0 {
            return Ok(false);
        }
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(new_rs)).collect();
        let max_scaled_down = util::old_scale_down_budget(&self.d, &all, new_rs);
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy replicas first: they would block the rollout otherwise.
        old.sort_by(util::by_creation);
        let mut cleaned = 0;
        for slot in old.iter_mut() {
            if cleaned >= max_scaled_down {
                break;
            }
            let replicas = util::rs_replicas(slot);
            let available = util::rs_available(slot);
            if replicas == 0 || replicas == available {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(replicas - available);
            let (_, updated) = self.scale_if_needed(slot, replicas - down).await?;
            *slot = updated;
            cleaned += down;
        }
        // Then available ones, while enough stay available.
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(new_rs)).collect();
        let surplus = util::available_surplus(&self.d, &all);
        let mut scaled = 0;
        if surplus > 0 {
            for slot in old.iter_mut() {
                if scaled >= surplus {
                    break;
                }
                let replicas = util::rs_replicas(slot);
                if replicas == 0 {
                    continue;
                }
                let down = replicas.min(surplus - scaled);
                let (_, updated) = self.scale_if_needed(slot, replicas - down).await?;
                *slot = updated;
                scaled += down;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    async fn rollout_recreate(&mut self, rs_list: Vec<ReplicaSet>) -> Result<()> {
        let (new_rs, mut old) = self.all_replica_sets(rs_list.clone(), false).await?;
        let mut scaled_down = false;
        for slot in old.iter_mut() {
            if util::is_active(slot) {
                let (scaled, updated) = self.scale_if_needed(slot, 0).await?;
                *slot = updated;
                scaled_down |= scaled;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(&old, new_rs.as_ref()).await;
        }
        if self.old_pods_running(new_rs.as_ref(), &old).await? {
            return self.sync_rollout_status(&old, new_rs.as_ref()).await;
        }
        let new_rs = match new_rs {
            Some(rs) => rs,
            None => {
                let mut list = old.clone();
                list.extend(
                    rs_list
                        .into_iter()
                        .filter(|rs| !old.iter().any(|o| o.metadata.name == rs.metadata.name)),
                );
                match self.all_replica_sets(list, true).await? {
                    (Some(rs), _) => rs,
                    (None, _) => return Ok(()),
                }
            }
        };
        let (_, new_rs) = self
            .scale_if_needed(&new_rs, util::replicas(&self.d))
            .await?;
        if util::is_complete(&self.d, &self.status()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&old, Some(&new_rs)).await
    }

    /// Whether pods of old ReplicaSets still run (Recreate waits for them).
    async fn old_pods_running(
        &self,
        new_rs: Option<&ReplicaSet>,
        old: &[ReplicaSet],
    ) -> Result<bool> {
        if util::total_actual(old.iter()) > 0 {
            return Ok(true);
        }
        let pods = self
            .pod_api
            .list(&ListParams::default())
            .await
            .context("list", "Pod", &self.key)?
            .items;
        let new_uid = new_rs.and_then(|rs| rs.metadata.uid.clone());
        let old_uids: Vec<String> = old
            .iter()
            .filter_map(|rs| rs.metadata.uid.clone())
            .collect();
        Ok(pods.iter().any(|pod| {
            let owner = crate::meta::controller_of(&pod.metadata).map(|r| r.uid.clone());
            owner.is_some_and(|uid| old_uids.contains(&uid) && Some(&uid) != new_uid.as_ref())
                && !matches!(crate::pods::phase(pod), "Succeeded" | "Failed")
        }))
    }

    /// Deletes old ReplicaSets beyond `revisionHistoryLimit` (oldest
    /// revisions first; only empty, settled ones).
    async fn cleanup(&self, old: &[ReplicaSet]) -> Result<()> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        if limit == i32::MAX {
            return Ok(());
        }
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = cleanable.len() as i64 - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        for rs in cleanable.into_iter().take(excess as usize) {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::rs_actual(rs) != 0
                || util::rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            if delete_exact(&self.rs_api, rs).await? {
                tracing::info!(replica_set = %rs.metadata.name.as_deref().unwrap_or(""), "deleted old replica set beyond the revision history limit");
            }
        }
        Ok(())
    }

    /// The status the ReplicaSets add up to (upstream's `calculateStatus`).
    fn calculate_status(
        &self,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> DeploymentStatus {
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
        let available = util::total_available(all.iter().copied());
        let total = util::total_replicas(all.iter().copied());
        let current = self.status();
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: Some(util::total_actual(all.iter().copied())),
            updated_replicas: Some(new_rs.map(util::rs_actual).unwrap_or(0)),
            ready_replicas: Some(util::total_ready(all.iter().copied())),
            available_replicas: Some(available),
            unavailable_replicas: Some((total - available).max(0)),
            collision_count: current.collision_count,
            conditions: current.conditions.clone(),
            terminating_replicas: None,
        };
        let minimum = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let condition = if available >= minimum {
            util::new_condition(
                reason::AVAILABLE,
                "True",
                reason::MIN_AVAILABLE,
                "Deployment has minimum availability.".into(),
                self.now,
            )
        } else {
            util::new_condition(
                reason::AVAILABLE,
                "False",
                reason::MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.".into(),
                self.now,
            )
        };
        util::set_condition(&mut status, condition);
        status
    }

    async fn sync_deployment_status(
        &mut self,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<()> {
        let status = self.calculate_status(old, new_rs);
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.update_status(status).await
    }

    /// The status with the rollout's progress (upstream's
    /// `syncRolloutStatus`).
    async fn sync_rollout_status(
        &mut self,
        old: &[ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<()> {
        let mut status = self.calculate_status(old, new_rs);
        let has_deadline = util::has_progress_deadline(&self.d);
        if !has_deadline {
            util::remove_condition(&mut status, reason::PROGRESSING);
        }
        let current = self.status();
        let current_cond = util::condition(&current, reason::PROGRESSING).cloned();
        let finished = status.replicas == status.updated_replicas
            && current_cond
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some(reason::NEW_RS_AVAILABLE));
        let rs_name = new_rs.and_then(|rs| rs.metadata.name.clone());
        let deployment_name = name_of(&self.d)?;
        if has_deadline && !finished {
            if util::is_complete(&self.d, &status) {
                let message = match &rs_name {
                    Some(rs) => format!("ReplicaSet {rs:?} has successfully progressed."),
                    None => format!("Deployment {deployment_name:?} has successfully progressed."),
                };
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        reason::PROGRESSING,
                        "True",
                        reason::NEW_RS_AVAILABLE,
                        message,
                        self.now,
                    ),
                );
            } else if util::is_progressing(&self.d, &status) {
                let message = match &rs_name {
                    Some(rs) => format!("ReplicaSet {rs:?} is progressing."),
                    None => format!("Deployment {deployment_name:?} is progressing."),
                };
                let mut condition = util::new_condition(
                    reason::PROGRESSING,
                    "True",
                    reason::RS_UPDATED,
                    message,
                    self.now,
                );
                if let Some(current) = &current_cond {
                    if current.status == "True" {
                        condition.last_transition_time = current.last_transition_time.clone();
                    }
                    util::remove_condition(&mut status, reason::PROGRESSING);
                }
                util::set_condition(&mut status, condition);
            } else if util::is_timed_out(&self.d, &status, self.now) {
                let message = match &rs_name {
                    Some(rs) => format!("ReplicaSet {rs:?} has timed out progressing."),
                    None => format!("Deployment {deployment_name:?} has timed out progressing."),
                };
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        reason::PROGRESSING,
                        "False",
                        reason::TIMED_OUT,
                        message,
                        self.now,
                    ),
                );
            }
        }
        // A ReplicaSet's failure to create or delete pods shows on the
        // Deployment.
        let failure = new_rs
            .into_iter()
            .chain(old.iter())
            .filter_map(|rs| rs.status.as_ref()?.conditions.as_ref())
            .flatten()
            .find(|c| c.type_ == reason::REPLICA_FAILURE)
            .cloned();
        match failure {
            Some(c) => util::set_condition(
                &mut status,
                k8s_openapi::api::apps::v1::DeploymentCondition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time,
                },
            ),
            None => util::remove_condition(&mut status, reason::REPLICA_FAILURE),
        }
        self.requeue_if_stuck(&status);
        if self.d.status.as_ref() == Some(&status) {
            return Ok(());
        }
        self.update_status(status).await
    }

    /// Looks again when the progress deadline would pass, so a stuck
    /// rollout is reported even if nothing else happens.
    fn requeue_if_stuck(&mut self, status: &DeploymentStatus) {
        if !util::has_progress_deadline(&self.d) {
            return;
        }
        let current = self.status();
        let Some(cond) = util::condition(&current, reason::PROGRESSING) else {
            return;
        };
        if util::is_complete(&self.d, status) || cond.reason.as_deref() == Some(reason::TIMED_OUT) {
            return;
        }
        let deadline = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600);
        let Some(from) = cond.last_update_time.as_ref() else {
            return;
        };
        let after = from.0.as_second() + i64::from(deadline) - self.now.as_second();
        let after = Duration::from_secs(after.max(0) as u64 + 1);
        self.requeue_after(after);
    }
}
