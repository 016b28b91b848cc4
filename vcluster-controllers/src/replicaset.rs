//! ReplicaSets and ReplicationControllers: keep `spec.replicas` active pods
//! from the template, and report how many exist, are ready and are
//! available (ready for `minReadySeconds`), as upstream's replicaset
//! controller does (upstream runs the same code for both kinds, the
//! replication manager adapting its objects; here [`Replicated`] does).
//!
//! Pods are created in slow-start batches (1, 2, 4, ...) so a template the
//! API server rejects fails once rather than hundreds of times; surplus
//! pods are deleted in upstream's order (unscheduled, pending, not ready,
//! youngest first). A failure to create or delete pods shows as a
//! `ReplicaFailure` condition. Pods become ready when the syncer copies
//! the host pod's status back.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiContext, Error, Result};
use crate::meta::{
    classify, controller_ref, delete_exact, labels, name_of, namespace_of, selector_of,
    settle_claim, time, uid_of,
};
use crate::pods;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

/// Most pods created or deleted in one reconcile (upstream's
/// `burstReplicas`).
const BURST: usize = 500;

/// A kind that keeps a number of pods from a template: ReplicaSet and
/// ReplicationController, which differ only in how their selector and
/// status are written. The status is handled in the ReplicaSet's form,
/// which has every field the ReplicationController's has.
pub(crate) trait Replicated:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The kind, as errors name it.
    const KIND: &'static str;
    /// The reporting controller of its events.
    const CONTROLLER: &'static str;
    /// The controller's name in logs.
    const NAME: &'static str;
    /// `spec.replicas` (1 when unset).
    fn replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// `spec.template`.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// `spec.selector` as a label selector.
    fn selector(&self) -> Option<LabelSelector>;
    /// The status, in the ReplicaSet's form.
    fn replica_status(&self) -> Option<ReplicaSetStatus>;
    /// Sets the status from the ReplicaSet's form.
    fn set_replica_status(&mut self, status: ReplicaSetStatus);
}

impl Replicated for ReplicaSet {
    const KIND: &'static str = "ReplicaSet";
    const CONTROLLER: &'static str = "replicaset-controller";
    const NAME: &'static str = "replicaset";

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn selector(&self) -> Option<LabelSelector> {
        self.spec.as_ref().map(|s| s.selector.clone())
    }

    fn replica_status(&self) -> Option<ReplicaSetStatus> {
        self.status.clone()
    }

    fn set_replica_status(&mut self, status: ReplicaSetStatus) {
        self.status = Some(status);
    }
}

impl Replicated for ReplicationController {
    const KIND: &'static str = "ReplicationController";
    const CONTROLLER: &'static str = "replication-controller";
    const NAME: &'static str = "replicationcontroller";

    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }

    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }

    fn selector(&self) -> Option<LabelSelector> {
        let labels = self.spec.as_ref()?.selector.clone()?;
        Some(LabelSelector {
            match_labels: Some(labels),
            match_expressions: None,
        })
    }

    fn replica_status(&self) -> Option<ReplicaSetStatus> {
        // The two statuses have the same fields under the same names.
        let status = self.status.as_ref()?;
        serde_json::to_value(status)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
    }

    fn set_replica_status(&mut self, status: ReplicaSetStatus) {
        self.status = serde_json::to_value(status)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok());
    }
}

/// Runs the replicaset controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    run_for::<ReplicaSet>(shared, cancel).await;
}

/// Runs the replication controller manager until `cancel` fires.
pub(crate) async fn run_replication(shared: Arc<Shared>, cancel: CancellationToken) {
    run_for::<ReplicationController>(shared, cancel).await;
}

async fn run_for<K: Replicated>(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Pod>::all(client), watcher::Config::default());
    drive(K::NAME, controller, shared, reconcile::<K>, cancel).await;
}

async fn reconcile<K: Replicated>(obj: Arc<K>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<K> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(rs) = api.get_opt(&name).await.context("get", K::KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let pod_api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let selector = selector_of(K::KIND, &key, rs.selector().as_ref())?;
    let all = pod_api
        .list(&ListParams::default())
        .await
        .context("list", "Pod", &key)?
        .items;
    let uid = uid_of(&rs)?;
    let deleting = rs.meta().deletion_timestamp.is_some();
    let claim = classify(&uid, &selector, deleting, all);
    let owned = settle_claim(&pod_api, &controller_ref(&rs)?, claim).await?;
    let active: Vec<Pod> = owned.into_iter().filter(pods::is_active).collect();

    let manage_error = if deleting {
        None
    } else {
        manage_replicas(&shared, &pod_api, &rs, &active, &key)
            .await
            .err()
    };
    let now = shared.now();
    let status = calculate_status(&rs, &active, manage_error.as_ref(), now);
    if rs.replica_status().as_ref() != Some(&status) {
        let mut updated = rs.clone();
        updated.set_replica_status(status.clone());
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", K::KIND, &key)?;
    }
    if let Some(err) = manage_error {
        return Err(err);
    }
    // Pods that are ready but not yet available become available later.
    let min_ready = rs.min_ready_seconds();
    let wanted = rs.replicas();
    if min_ready > 0
        && status.ready_replicas.unwrap_or(0) == wanted
        && status.available_replicas.unwrap_or(0) != wanted
    {
        let next = active
            .iter()
            .filter(|p| pods::is_ready(p) && !pods::is_available(p, min_ready, now))
            .filter_map(|p| pods::available_at(p, min_ready))
            .min();
        let after = next
            .map(|t| (t.as_second() - now.as_second()).max(1) as u64)
            .unwrap_or(min_ready as u64);
        return Ok(Action::requeue(Duration::from_secs(after)));
    }
    Ok(Action::requeue(shared.options.resync))
}

/// Creates or deletes pods until `active` has `spec.replicas` pods.
async fn manage_replicas<K: Replicated>(
    shared: &Shared,
    api: &Api<Pod>,
    rs: &K,
    active: &[Pod],
    key: &str,
) -> Result<()> {
    let wanted = rs.replicas().max(0) as usize;
    if active.len() < wanted {
        let Some(template) = rs.template() else {
            return Err(Error::InvalidSpec {
                kind: K::KIND,
                key: key.to_owned(),
                message: "spec.template is missing".into(),
            });
        };
        let missing = (wanted - active.len()).min(BURST);
        let namespace = namespace_of(rs)?;
        let mut pod = pods::from_template(template, &namespace, controller_ref(rs)?);
        pod.metadata.generate_name = Some(pods::generate_name(&name_of(rs)?));
        tracing::info!(count = missing, "creating pods");
        let pod = &pod;
        let created = slow_start(missing, || async move {
            let created = api
                .create(&FieldManager::CONTROLLERS.post_params(), pod)
                .await
                .context("create", "Pod", key)?;
            let name = created.metadata.name.unwrap_or_default();
            shared
                .event(
                    K::CONTROLLER,
                    rs,
                    false,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                )
                .await;
            Ok(())
        })
        .await;
        if let Err(err) = created {
            shared
                .event(
                    K::CONTROLLER,
                    rs,
                    true,
                    "FailedCreate",
                    format!("Error creating: {err}"),
                )
                .await;
            return Err(err);
        }
    } else if active.len() > wanted {
        let mut doomed: Vec<&Pod> = active.iter().collect();
        doomed.sort_by(|a, b| pods::deletion_order(a, b));
        let surplus = (active.len() - wanted).min(BURST);
        tracing::info!(count = surplus, "deleting pods");
        let results =
            futures::future::join_all(doomed.into_iter().take(surplus).map(|pod| async move {
                let deleted = delete_exact(api, pod).await?;
                if deleted {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    shared
                        .event(
                            K::CONTROLLER,
                            rs,
                            false,
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        )
                        .await;
                }
                Ok::<_, Error>(())
            }))
            .await;
        for result in results {
            result?;
        }
    }
    Ok(())
}

/// Runs `create` `count` times in batches of 1, 2, 4, ... (upstream's
/// `slowStartBatch`), stopping at the first batch with a failure.
pub(crate) async fn slow_start<F, Fut>(count: usize, create: F) -> Result<usize>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut done = 0;
    let mut batch = 1;
    while done < count {
        let size = batch.min(count - done);
        let results = futures::future::join_all((0..size).map(|_| create())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => done += 1,
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err);
        }
        batch *= 2;
    }
    Ok(done)
}

/// The status the pods add up to (upstream's `calculateStatus`).
fn calculate_status<K: Replicated>(
    rs: &K,
    active: &[Pod],
    manage_error: Option<&Error>,
    now: jiff::Timestamp,
) -> ReplicaSetStatus {
    let min_ready = rs.min_ready_seconds();
    let template_labels = rs
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            let pod_labels = labels(&p.metadata);
            template_labels
                .iter()
                .all(|(k, v)| pod_labels.get(k) == Some(v))
        })
        .count() as i32;
    let ready = active.iter().filter(|p| pods::is_ready(p)).count() as i32;
    let available = active
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now))
        .count() as i32;
    let current = rs.replica_status().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = current.conditions.unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(err) if !has_failure => {
            let creating = active.len() < rs.replicas().max(0) as usize;
            conditions.push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(
                    if creating {
                        "FailedCreate"
                    } else {
                        "FailedDelete"
                    }
                    .into(),
                ),
                message: Some(err.to_string()),
                last_transition_time: Some(time(now)),
            });
        }
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    ReplicaSetStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        observed_generation: rs.meta().generation,
        conditions: if conditions.is_empty() {
            None
        } else {
            Some(conditions)
        },
        terminating_replicas: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_at_a_failure() {
        let counter = AtomicUsize::new(0);
        let calls = &counter;
        let done = slow_start(10, || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await
        .expect("all succeed");
        assert_eq!(done, 10);
        assert_eq!(calls.load(Ordering::SeqCst), 10);

        // Failing from the 4th call on: batches 1, 2 succeed, batch 3 (4
        // calls) fails, nothing after it runs.
        let counter = AtomicUsize::new(0);
        let calls = &counter;
        let result = slow_start(20, || async move {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n >= 3 {
                Err(Error::InvalidSpec {
                    kind: "ReplicaSet",
                    key: "ns/rs".into(),
                    message: "quota".into(),
                })
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn status_counts_ready_and_available_pods() {
        let mut rs = ReplicaSet::default();
        rs.metadata.generation = Some(4);
        rs.spec = Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
            replicas: Some(3),
            min_ready_seconds: Some(10),
            ..Default::default()
        });
        let pods = [
            pod("a", "Running", Some(100)),
            pod("b", "Running", Some(195)),
            pod("c", "Pending", None),
        ];
        let now = jiff::Timestamp::from_second(200).expect("ts");
        let status = calculate_status(&rs, &pods, None, now);
        assert_eq!(status.replicas, 3);
        assert_eq!(status.ready_replicas, Some(2));
        assert_eq!(status.available_replicas, Some(1));
        assert_eq!(status.observed_generation, Some(4));
        assert!(status.conditions.is_none());
    }
}
