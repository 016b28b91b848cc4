//! ReplicaSets: keep `spec.replicas` active pods from the template, and
//! report how many exist, are ready and are available (ready for
//! `minReadySeconds`), as upstream's replicaset controller does.
//!
//! Pods are created in slow-start batches (1, 2, 4, ...) so a template the
//! API server rejects fails once rather than hundreds of times; surplus
//! pods are deleted in upstream's order (unscheduled, pending, not ready,
//! youngest first). A failure to create or delete pods shows as a
//! `ReplicaFailure` condition. Pods become ready when the syncer copies
//! the host pod's status back.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiContext, Error, Result};
use crate::meta::{
    classify, controller_ref, delete_exact, labels, name_of, namespace_of, selector_of,
    settle_claim, time, uid_of,
};
use crate::pods;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

const KIND: &str = "ReplicaSet";
/// The reporting controller of its events.
const CONTROLLER: &str = "replicaset-controller";
/// Most pods created or deleted in one reconcile (upstream's
/// `burstReplicas`).
const BURST: usize = 500;

/// Runs the replicaset controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Pod>::all(client), watcher::Config::default());
    drive("replicaset", controller, shared, reconcile, cancel).await;
}

async fn reconcile(obj: Arc<ReplicaSet>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<ReplicaSet> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(rs) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let pod_api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let spec = rs.spec.clone().unwrap_or_default();
    let selector = selector_of(KIND, &key, Some(&spec.selector))?;
    let all = pod_api
        .list(&ListParams::default())
        .await
        .context("list", "Pod", &key)?
        .items;
    let uid = uid_of(&rs)?;
    let deleting = rs.metadata.deletion_timestamp.is_some();
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
    if rs.status.as_ref() != Some(&status) {
        let mut updated = rs.clone();
        updated.status = Some(status.clone());
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", KIND, &key)?;
    }
    if let Some(err) = manage_error {
        return Err(err);
    }
    // Pods that are ready but not yet available become available later.
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let wanted = spec.replicas.unwrap_or(1);
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
async fn manage_replicas(
    shared: &Shared,
    api: &Api<Pod>,
    rs: &ReplicaSet,
    active: &[Pod],
    key: &str,
) -> Result<()> {
    let spec = rs.spec.clone().unwrap_or_default();
    let wanted = spec.replicas.unwrap_or(1).max(0) as usize;
    if active.len() < wanted {
        let Some(template) = spec.template.as_ref() else {
            return Err(Error::InvalidSpec {
                kind: KIND,
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
                    CONTROLLER,
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
                    CONTROLLER,
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
                            CONTROLLER,
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
fn calculate_status(
    rs: &ReplicaSet,
    active: &[Pod],
    manage_error: Option<&Error>,
    now: jiff::Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_labels = spec
        .template
        .as_ref()
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
    let current = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = current.conditions.unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(err) if !has_failure => {
            let creating = active.len() < spec.replicas.unwrap_or(1).max(0) as usize;
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
        observed_generation: rs.metadata.generation,
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
                    kind: KIND,
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
