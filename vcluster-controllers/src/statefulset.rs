//! StatefulSets: pods with stable names `<set>-<ordinal>`, created and
//! removed in order, each with its own PersistentVolumeClaims from the
//! `volumeClaimTemplates` (`<template>-<set>-<ordinal>`), as upstream's
//! statefulset controller does.
//!
//! - `OrderedReady` (default): ordinal *n* is created only once 0..n-1
//!   are Running and Ready; scale-down removes the highest ordinal first,
//!   one at a time, only while the others are healthy. `Parallel` creates
//!   and deletes all at once.
//! - RollingUpdate deletes pods whose `controller-revision-hash` is not
//!   the update revision, highest ordinal first, one at a time, down to
//!   `partition`; they come back with the new template. OnDelete leaves
//!   them to the user.
//! - Failed pods are deleted and created again under the same name.
//! - Claims follow `persistentVolumeClaimRetentionPolicy`: retained by
//!   default; owned by the set (`whenDeleted: Delete`) or by the pod being
//!   scaled away (`whenScaled: Delete`) so garbage collection removes them.
//!
//! - Each template is recorded as a ControllerRevision `<set>-<template
//!   hash>` ([`crate::history`]), so `kubectl rollout history` and `undo`
//!   work.
//!
//! Difference: a pod below a partition that is deleted comes back with the
//! current template rather than its old revision's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams, Patch};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{is_status, ApiContext, Result};
use crate::hash::template_hash;
use crate::history::{History, DEFAULT_HISTORY_LIMIT, REVISION_LABEL};
use crate::meta::{
    classify, controller_ref, delete_exact, name_of, namespace_of, selector_of, settle_claim,
    uid_of,
};
use crate::pods;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

const KIND: &str = "StatefulSet";
/// The reporting controller of its events.
const CONTROLLER: &str = "statefulset-controller";
/// The label naming a stateful pod (services select single pods by it).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with a stateful pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Runs the statefulset controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<StatefulSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Pod>::all(client), watcher::Config::default());
    drive("statefulset", controller, shared, reconcile, cancel).await;
}

/// The ordinal of `pod` if it is named `<set>-<ordinal>`.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok().filter(|n: &i32| *n >= 0)
}

/// The name of the claim from `template` for pod `ordinal` of `set`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// Running and Ready (and available when `minReadySeconds` is set).
fn is_healthy(pod: &Pod, min_ready: i32, now: jiff::Timestamp) -> bool {
    pods::phase(pod) == "Running"
        && pods::is_available(pod, min_ready, now)
        && pod.metadata.deletion_timestamp.is_none()
}

fn is_finished(pod: &Pod) -> bool {
    matches!(pods::phase(pod), "Succeeded" | "Failed")
}

async fn reconcile(obj: Arc<StatefulSet>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<StatefulSet> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(set) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let pod_api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let spec = set.spec.clone().unwrap_or_default();
    let selector = selector_of(KIND, &key, Some(&spec.selector))?;
    let all = pod_api
        .list(&ListParams::default())
        .await
        .context("list", "Pod", &key)?
        .items;
    let deleting = set.metadata.deletion_timestamp.is_some();
    let claim = classify(&uid_of(&set)?, &selector, deleting, all);
    let owned = settle_claim(&pod_api, &controller_ref(&set)?, claim).await?;

    let collision_count = set.status.as_ref().and_then(|s| s.collision_count);
    let update_revision = format!("{name}-{}", template_hash(&spec.template, collision_count));
    let current_revision = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .unwrap_or_else(|| update_revision.clone());
    let now = shared.now();
    let mut sync = SetSync {
        shared: &shared,
        set: &set,
        name: &name,
        namespace: &namespace,
        key: &key,
        pod_api: &pod_api,
        claim_api: Api::namespaced(shared.client.clone(), &namespace),
        update_revision: &update_revision,
        now,
    };
    if !deleting {
        History {
            api: Api::namespaced(shared.client.clone(), &namespace),
            owner: controller_ref(&set)?,
            key: &key,
            selector_labels: spec.selector.match_labels.clone().unwrap_or_default(),
            limit: spec.revision_history_limit.unwrap_or(DEFAULT_HISTORY_LIMIT),
        }
        .record(
            &update_revision,
            update_revision
                .strip_prefix(&format!("{name}-"))
                .unwrap_or(&update_revision),
            &spec.template,
            &[current_revision.as_str()],
        )
        .await?;
        sync.update(&owned).await?;
    }
    let status = compute_status(&set, &owned, &current_revision, &update_revision, now);
    if set.status.as_ref() != Some(&status) {
        let mut updated = set.clone();
        updated.status = Some(status);
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", KIND, &key)?;
    }
    Ok(Action::requeue(shared.options.resync))
}

struct SetSync<'a> {
    shared: &'a Shared,
    set: &'a StatefulSet,
    name: &'a str,
    namespace: &'a str,
    key: &'a str,
    pod_api: &'a Api<Pod>,
    claim_api: Api<PersistentVolumeClaim>,
    update_revision: &'a str,
    now: jiff::Timestamp,
}

impl SetSync<'_> {
    /// Deletes a pod of the set, recording the event upstream records.
    async fn delete_pod(&self, pod: &Pod) -> Result<()> {
        if delete_exact(self.pod_api, pod).await? {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let note = format!("delete Pod {name} in StatefulSet {} successful", self.name);
            self.shared
                .event(CONTROLLER, self.set, false, "SuccessfulDelete", note)
                .await;
        }
        Ok(())
    }

    fn monotonic(&self) -> bool {
        self.set
            .spec
            .as_ref()
            .and_then(|s| s.pod_management_policy.as_deref())
            != Some("Parallel")
    }

    fn min_ready(&self) -> i32 {
        self.set
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    /// `(whenDeleted, whenScaled)`, each `Retain` or `Delete`.
    fn retention(&self) -> (String, String) {
        let policy = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_claim_retention_policy.clone())
            .unwrap_or_default();
        (
            policy.when_deleted.unwrap_or_else(|| "Retain".into()),
            policy.when_scaled.unwrap_or_else(|| "Retain".into()),
        )
    }

    /// One step of upstream's `updateStatefulSet`: create, repair, scale
    /// down, roll.
    async fn update(&mut self, owned: &[Pod]) -> Result<()> {
        let spec = self.set.spec.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        let range = start..start.saturating_add(replicas);
        let mut slots: BTreeMap<i32, &Pod> = BTreeMap::new();
        let mut condemned: Vec<(i32, &Pod)> = Vec::new();
        for pod in owned {
            let Some(ordinal) = pod
                .metadata
                .name
                .as_deref()
                .and_then(|n| ordinal_of(self.name, n))
            else {
                continue;
            };
            if range.contains(&ordinal) {
                slots.insert(ordinal, pod);
            } else {
                condemned.push((ordinal, pod));
            }
        }
        let monotonic = self.monotonic();
        let min_ready = self.min_ready();
        let now = self.now;
        let first_unhealthy = range
            .clone()
            .filter_map(|o| slots.get(&o).copied())
            .chain({
                let mut c: Vec<&Pod> = condemned.iter().map(|(_, p)| *p).collect();
                c.sort_by_key(|p| p.metadata.name.clone());
                c
            })
            .find(|p| !is_healthy(p, min_ready, now))
            .and_then(|p| p.metadata.name.clone());

        // Create missing pods and replace finished ones, in order.
        for ordinal in range.clone() {
            match slots.get(&ordinal) {
                None => {
                    self.create_pod(ordinal).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(pod) if is_finished(pod) => {
                    tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or(""), phase = pods::phase(pod), "recreating finished pod");
                    self.delete_pod(pod).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(pod)
                    if pod.metadata.deletion_timestamp.is_some()
                        || !is_healthy(pod, min_ready, now) =>
                {
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
        }

        // Scale down: highest ordinal first.
        condemned.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
        for (_, pod) in &condemned {
            if pod.metadata.deletion_timestamp.is_some() {
                if monotonic {
                    return Ok(());
                }
                continue;
            }
            if monotonic && !is_healthy(pod, min_ready, now) && pod.metadata.name != first_unhealthy
            {
                return Ok(());
            }
            self.condemn(pod).await?;
            if monotonic {
                return Ok(());
            }
        }

        // Rolling update: highest ordinal first, one at a time.
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        if strategy.type_.as_deref() == Some("OnDelete") {
            return Ok(());
        }
        let partition = strategy
            .rolling_update
            .as_ref()
            .and_then(|r| r.partition)
            .unwrap_or(0);
        for ordinal in range.rev() {
            if ordinal - start < partition {
                break;
            }
            let Some(pod) = slots.get(&ordinal) else {
                continue;
            };
            if revision_of(pod) != Some(self.update_revision)
                && pod.metadata.deletion_timestamp.is_none()
            {
                tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or(""), revision = %self.update_revision, "deleting pod to update it");
                self.delete_pod(pod).await?;
                return Ok(());
            }
            if !is_healthy(pod, min_ready, now) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Deletes a pod that is out of range; with `whenScaled: Delete` its
    /// claims become the pod's dependents first, so they go with it.
    async fn condemn(&self, pod: &Pod) -> Result<()> {
        let (_, when_scaled) = self.retention();
        if when_scaled == "Delete" {
            let ordinal = pod
                .metadata
                .name
                .as_deref()
                .and_then(|n| ordinal_of(self.name, n))
                .unwrap_or(-1);
            let owner = OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: name_of(pod)?,
                uid: uid_of(pod)?,
                controller: None,
                block_owner_deletion: Some(true),
            };
            let set_uid = uid_of(self.set)?;
            for template in self.claim_templates() {
                let claim = claim_name(&template, self.name, ordinal);
                let Some(existing) = self.claim_api.get_opt(&claim).await.context(
                    "get",
                    "PersistentVolumeClaim",
                    &format!("{}/{claim}", self.namespace),
                )?
                else {
                    continue;
                };
                let mut refs: Vec<OwnerReference> = existing
                    .metadata
                    .owner_references
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.uid != set_uid && r.uid != owner.uid)
                    .collect();
                refs.push(owner.clone());
                let patch = json!({"metadata": {"ownerReferences": refs}});
                self.claim_api
                    .patch(
                        &claim,
                        &FieldManager::CONTROLLERS.patch_params(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .context("hand over to its pod", "PersistentVolumeClaim", &claim)?;
            }
        }
        tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or(""), "scaling down: deleting pod");
        self.delete_pod(pod).await?;
        Ok(())
    }

    fn claim_templates(&self) -> Vec<String> {
        self.set
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|t| t.metadata.name.clone())
            .collect()
    }

    /// Creates pod `ordinal` (and its claims first).
    async fn create_pod(&self, ordinal: i32) -> Result<()> {
        self.create_claims(ordinal).await?;
        let pod = stateful_pod(
            self.set,
            self.name,
            self.namespace,
            ordinal,
            self.update_revision,
        )?;
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        match self
            .pod_api
            .create(&FieldManager::CONTROLLERS.post_params(), &pod)
            .await
        {
            Ok(_) => {
                tracing::info!(pod = %pod_name, "created stateful pod");
                let note = format!(
                    "create Pod {pod_name} in StatefulSet {} successful",
                    self.name
                );
                self.shared
                    .event(CONTROLLER, self.set, false, "SuccessfulCreate", note)
                    .await;
                Ok(())
            }
            // Created by an earlier reconcile this one did not see yet.
            Err(err) if is_status(&err, 409) => Ok(()),
            Err(err) => {
                Err(err).context("create", "Pod", &format!("{}/{pod_name}", self.namespace))
            }
        }
    }

    async fn create_claims(&self, ordinal: i32) -> Result<()> {
        let spec = self.set.spec.clone().unwrap_or_default();
        let templates = spec.volume_claim_templates.unwrap_or_default();
        if templates.is_empty() {
            return Ok(());
        }
        let existing: BTreeSet<String> = self
            .claim_api
            .list(&ListParams::default())
            .await
            .context("list", "PersistentVolumeClaim", self.key)?
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        let (when_deleted, _) = self.retention();
        for template in templates {
            let Some(template_name) = template.metadata.name.clone() else {
                continue;
            };
            let name = claim_name(&template_name, self.name, ordinal);
            if existing.contains(&name) {
                continue;
            }
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(spec.selector.match_labels.clone().unwrap_or_default());
            let owner = if when_deleted == "Delete" {
                let mut owner = controller_ref(self.set)?;
                owner.controller = None;
                Some(vec![owner])
            } else {
                None
            };
            let claim = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.namespace.to_owned()),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: owner,
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            };
            match self
                .claim_api
                .create(&FieldManager::CONTROLLERS.post_params(), &claim)
                .await
            {
                Ok(_) => {
                    tracing::info!(claim = %name, "created claim");
                    let note = format!(
                        "create Claim {name} Pod {}-{ordinal} in StatefulSet {} success",
                        self.name, self.name
                    );
                    self.shared
                        .event(CONTROLLER, self.set, false, "SuccessfulCreate", note)
                        .await;
                }
                Err(err) if is_status(&err, 409) => {}
                Err(err) => {
                    return Err(err).context(
                        "create",
                        "PersistentVolumeClaim",
                        &format!("{}/{name}", self.namespace),
                    )
                }
            }
        }
        Ok(())
    }
}

/// Pod `ordinal` of `set`: the template with the pod's identity (name,
/// hostname, subdomain, labels) and its claims as volumes.
pub fn stateful_pod(
    set: &StatefulSet,
    name: &str,
    namespace: &str,
    ordinal: i32,
    revision: &str,
) -> Result<Pod> {
    let spec = set.spec.clone().unwrap_or_default();
    let mut pod = pods::from_template(&spec.template, namespace, controller_ref(set)?);
    let pod_name = format!("{name}-{ordinal}");
    pod.metadata.name = Some(pod_name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.to_owned());
    if let Some(pod_spec) = pod.spec.as_mut() {
        pod_spec.hostname = Some(pod_name);
        if let Some(service) = spec.service_name.clone().filter(|s| !s.is_empty()) {
            pod_spec.subdomain = Some(service);
        }
        let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
        for template in spec.volume_claim_templates.iter().flatten() {
            let Some(template_name) = template.metadata.name.clone() else {
                continue;
            };
            volumes.retain(|v| v.name != template_name);
            volumes.push(Volume {
                name: template_name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&template_name, name, ordinal),
                    read_only: None,
                }),
                ..Volume::default()
            });
        }
        if volumes.is_empty() {
            pod_spec.volumes = None;
        }
    }
    Ok(pod)
}

/// The status the pods add up to (upstream's `computeReplicaStatus`, and
/// the current revision catching up once every pod is updated and ready).
fn compute_status(
    set: &StatefulSet,
    owned: &[Pod],
    current_revision: &str,
    update_revision: &str,
    now: jiff::Timestamp,
) -> StatefulSetStatus {
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: set.status.as_ref().and_then(|s| s.collision_count),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
        current_revision: Some(current_revision.to_owned()),
        update_revision: Some(update_revision.to_owned()),
        ..StatefulSetStatus::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for pod in owned {
        if pods::phase(pod).is_empty() {
            continue;
        }
        status.replicas += 1;
        if pods::phase(pod) == "Running" && pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, min_ready, now) {
                available += 1;
            }
        }
        if pod.metadata.deletion_timestamp.is_none() {
            if revision_of(pod) == Some(current_revision) {
                current += 1;
            }
            if revision_of(pod) == Some(update_revision) {
                updated += 1;
            }
        }
    }
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    if rolling && updated == status.replicas && ready == status.replicas {
        status.current_revision = Some(update_revision.to_owned());
        status.current_replicas = Some(updated);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec};

    #[test]
    fn ordinals_parse_only_canonical_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webapp-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web-1", "web-1-2"), Some(2));
    }

    #[test]
    fn stateful_pods_carry_their_identity_and_claims() {
        let set = StatefulSet {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(StatefulSetSpec {
                service_name: Some("db-headless".into()),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_owned(), "db".to_owned())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec::default()),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec::default()),
                    status: None,
                }]),
                ..StatefulSetSpec::default()
            }),
            status: None,
        };
        let pod = stateful_pod(&set, "db", "ns", 2, "db-abc").expect("pod");
        assert_eq!(pod.metadata.name.as_deref(), Some("db-2"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[POD_NAME_LABEL], "db-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels[REVISION_LABEL], "db-abc");
        assert_eq!(labels["app"], "db");
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("db-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("db-headless"));
        let volumes = spec.volumes.unwrap_or_default();
        let claim = volumes[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str());
        assert_eq!(claim, Some("data-db-2"));
        let owner = pod.metadata.owner_references.unwrap_or_default();
        assert_eq!(owner[0].uid, "uid-1");
        assert_eq!(owner[0].controller, Some(true));
    }
}
