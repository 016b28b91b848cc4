//! PodDisruptionBudgets: keep each budget's status as upstream's
//! disruption controller does (`pkg/controller/disruption`), which is what
//! `pods/eviction` reads and spends.
//!
//! A budget's pods are those its selector selects in its namespace. With an
//! integer `minAvailable` the expected pods are the pods found; with a
//! percentage or `maxUnavailable`, the sum of the `scale` of the pods'
//! controllers (a Deployment for its ReplicaSets' pods). Healthy pods are
//! ready pods not being deleted and not recently evicted
//! (`status.disruptedPods`, which entries leave when the pod goes, or
//! after two minutes when it never does); `disruptionsAllowed` is healthy
//! minus desired, never below zero, and the `DisruptionAllowed` condition
//! says whether it is positive. When the count cannot be made (a pod's
//! controller has no scale) no disruption is allowed (`SyncFailed`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;
use vcluster_core::selector::Selector;
use vcluster_core::FieldManager;

use crate::deployment::util::scaled_value;
use crate::error::{ignore_not_found, ApiContext, Error, Result};
use crate::meta::{controller_of, labels, name_of, namespace_of, time};
use crate::pods;
use crate::runtime::{drive, Shared};
use crate::scale;

const KIND: &str = "PodDisruptionBudget";
/// The reporting controller of its events.
const CONTROLLER: &str = "controllermanager";
/// How long an evicted pod may take to go before the budget stops
/// counting it as disrupted (upstream's `DeletionTimeout`).
const DELETION_TIMEOUT: i64 = 120;

/// Runs the disruption controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    );
    let budgets: Store<PodDisruptionBudget> = controller.store();
    let controller = controller.watches(
        Api::<Pod>::all(client),
        watcher::Config::default(),
        move |pod: Pod| {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            budgets
                .state()
                .iter()
                .filter(|b| b.metadata.namespace.as_deref() == Some(namespace.as_str()))
                .filter(|b| selects(b, &pod))
                .filter_map(|b| b.metadata.name.clone())
                .map(|n| ObjectRef::new(&n).within(&namespace))
                .collect::<Vec<_>>()
        },
    );
    drive("disruption", controller, shared, reconcile, cancel).await;
}

/// The budget's selector as a selector: unset selects nothing, empty
/// everything (policy/v1).
fn selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    let selector = pdb.spec.as_ref()?.selector.as_ref()?;
    Selector::from_label_selector(selector).ok()
}

fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    selector(pdb).is_some_and(|s| s.matches(labels(&pod.metadata)))
}

async fn reconcile(obj: Arc<PodDisruptionBudget>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<PodDisruptionBudget> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(pdb) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    if pdb.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let pod_api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let pods: Vec<Pod> = match selector(&pdb) {
        None => Vec::new(),
        Some(selector) => pod_api
            .list(&ListParams::default())
            .await
            .context("list", "Pod", &key)?
            .items
            .into_iter()
            .filter(|p| selector.matches(labels(&p.metadata)))
            .collect(),
    };
    if pods.is_empty() {
        shared
            .event(
                CONTROLLER,
                &pdb,
                false,
                "NoPods",
                "No matching pods found".into(),
            )
            .await;
    }
    let counts = match expected_pod_count(&shared, &pdb, &pods, &namespace).await {
        Ok(counts) => counts,
        Err(err) => {
            shared
                .event(
                    CONTROLLER,
                    &pdb,
                    true,
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {err}"),
                )
                .await;
            fail_safe(&api, &pdb, &err.to_string(), &key).await?;
            return Err(err);
        }
    };
    let now = shared.now();
    let (disrupted, recheck) = disrupted_pods(&pdb, &pods, now);
    let healthy = count_healthy(&pods, &disrupted, now);
    let status = next_status(&pdb, healthy, counts, disrupted);
    if pdb.status.as_ref() != Some(&status) {
        let mut updated = pdb.clone();
        updated.status = Some(status);
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", KIND, &key)?;
    }
    Ok(match recheck {
        Some(at) => Action::requeue(Duration::from_secs(
            (at.as_second() - now.as_second()).max(1) as u64,
        )),
        None => Action::requeue(shared.options.resync),
    })
}

/// `(expectedPods, desiredHealthy)` (upstream's `getExpectedPodCount`).
async fn expected_pod_count(
    shared: &Shared,
    pdb: &PodDisruptionBudget,
    pods: &[Pod],
    namespace: &str,
) -> Result<(i32, i32)> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let key = format!("{namespace}/{}", pdb.metadata.name.as_deref().unwrap_or(""));
    let invalid = |message: String| Error::InvalidSpec {
        kind: KIND,
        key: key.clone(),
        message,
    };
    if let Some(max_unavailable) = &spec.max_unavailable {
        let expected = expected_scale(shared, pods, namespace).await?;
        let unavailable = scaled_value(max_unavailable, expected, true).map_err(invalid)?;
        return Ok((expected, (expected - unavailable).max(0)));
    }
    match &spec.min_available {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
            Ok((pods.len() as i32, *n))
        }
        Some(percent) => {
            let expected = expected_scale(shared, pods, namespace).await?;
            let desired = scaled_value(percent, expected, true).map_err(invalid)?;
            Ok((expected, desired))
        }
        None => Ok((0, 0)),
    }
}

/// The sum of the replicas the pods' controllers want (each counted once;
/// a ReplicaSet's pods count as its Deployment's), read from their
/// `scale` (upstream's `getExpectedScale` and its finders).
async fn expected_scale(shared: &Shared, pods: &[Pod], namespace: &str) -> Result<i32> {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for pod in pods {
        let Some(owner) = controller_of(&pod.metadata) else {
            // Unmanaged pods count for nothing (upstream warns).
            continue;
        };
        if !seen.insert(owner.uid.clone()) {
            continue;
        }
        let mut target = owner.clone();
        if owner.kind == "ReplicaSet" && owner.api_version == "apps/v1" {
            let rs_api: Api<ReplicaSet> = Api::namespaced(shared.client.clone(), namespace);
            let rs = ignore_not_found(rs_api.get(&owner.name).await).context(
                "get",
                "ReplicaSet",
                &format!("{namespace}/{}", owner.name),
            )?;
            if let Some(deployment) = rs
                .as_ref()
                .and_then(|rs| controller_of(&rs.metadata))
                .filter(|d| d.kind == "Deployment")
            {
                if !seen.insert(deployment.uid.clone()) {
                    continue;
                }
                target = deployment.clone();
            }
        }
        let pod_key = format!("{namespace}/{}", pod.metadata.name.as_deref().unwrap_or(""));
        let found = scale::get(
            &shared.client,
            namespace,
            &target.api_version,
            &target.kind,
            &target.name,
        )
        .await?;
        match found {
            Some(scale) => total += scale.spec.and_then(|s| s.replicas).unwrap_or(0),
            None => {
                return Err(scale::no_scale(
                    KIND,
                    &pod_key,
                    format!(
                        "found no controllers for pod {:?}",
                        pod.metadata.name.as_deref().unwrap_or("")
                    ),
                ))
            }
        }
    }
    Ok(total)
}

/// The evictions still expected to happen: entries of pods that exist, are
/// not being deleted yet and were evicted less than two minutes ago; and
/// when the earliest of those expires (upstream's `buildDisruptedPodMap`).
fn disrupted_pods(
    pdb: &PodDisruptionBudget,
    pods: &[Pod],
    now: jiff::Timestamp,
) -> (BTreeMap<String, Time>, Option<jiff::Timestamp>) {
    let recorded = pdb
        .status
        .as_ref()
        .and_then(|s| s.disrupted_pods.clone())
        .unwrap_or_default();
    let mut kept = BTreeMap::new();
    let mut recheck: Option<jiff::Timestamp> = None;
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = recorded.get(&name) else {
            continue;
        };
        let Ok(expected) =
            at.0.checked_add(jiff::SignedDuration::from_secs(DELETION_TIMEOUT))
        else {
            continue;
        };
        if expected < now {
            continue;
        }
        if recheck.is_none_or(|r| expected < r) {
            recheck = Some(expected);
        }
        kept.insert(name, at.clone());
    }
    (kept, recheck)
}

/// Ready pods that are neither being deleted nor recently evicted.
fn count_healthy(pods: &[Pod], disrupted: &BTreeMap<String, Time>, now: jiff::Timestamp) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or("");
            !disrupted.get(name).is_some_and(|at| {
                at.0.checked_add(jiff::SignedDuration::from_secs(DELETION_TIMEOUT))
                    .is_ok_and(|until| until > now)
            })
        })
        .filter(|p| pods::is_ready(p))
        .count() as i32
}

/// The status the counts add up to (upstream's `updatePdbStatus`).
fn next_status(
    pdb: &PodDisruptionBudget,
    healthy: i32,
    (expected, desired): (i32, i32),
    disrupted: BTreeMap<String, Time>,
) -> PodDisruptionBudgetStatus {
    let mut allowed = healthy - desired;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let current = pdb.status.clone().unwrap_or_default();
    let observed = pdb.metadata.generation.unwrap_or(0);
    let mut status = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: if disrupted.is_empty() {
            None
        } else {
            Some(disrupted)
        },
        observed_generation: Some(observed),
        conditions: current.conditions,
    };
    let (state, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    set_condition(&mut status, state, reason, "");
    status
}

/// `meta.SetStatusCondition` of `DisruptionAllowed`: the transition time
/// moves only when the status does.
fn set_condition(status: &mut PodDisruptionBudgetStatus, state: &str, reason: &str, message: &str) {
    let observed = status.observed_generation;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions
        .iter_mut()
        .find(|c| c.type_ == "DisruptionAllowed")
    {
        Some(c) => {
            if c.status != state {
                c.last_transition_time = time(jiff::Timestamp::now());
            }
            c.status = state.into();
            c.reason = reason.into();
            c.message = message.into();
            c.observed_generation = observed;
        }
        None => conditions.push(Condition {
            type_: "DisruptionAllowed".into(),
            status: state.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: observed,
            last_transition_time: time(jiff::Timestamp::now()),
        }),
    }
}

/// No disruption allowed while the budget cannot be computed (upstream's
/// `failSafe`).
async fn fail_safe(
    api: &Api<PodDisruptionBudget>,
    pdb: &PodDisruptionBudget,
    why: &str,
    key: &str,
) -> Result<()> {
    let mut updated = pdb.clone();
    let mut status = updated.status.take().unwrap_or_default();
    status.disruptions_allowed = 0;
    set_condition(&mut status, "False", "SyncFailed", why);
    updated.status = Some(status);
    if updated.status == pdb.status {
        return Ok(());
    }
    let name = pdb.metadata.name.clone().unwrap_or_default();
    api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
        .await
        .context("update status of", KIND, key)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;

    #[test]
    fn allowed_disruptions_are_healthy_minus_desired_and_never_negative() {
        let mut pdb = PodDisruptionBudget::default();
        pdb.metadata.generation = Some(3);
        let pods = [
            pod("a", "Running", Some(100)),
            pod("b", "Running", Some(100)),
            pod("c", "Pending", None),
        ];
        let now = jiff::Timestamp::from_second(200).expect("ts");
        let healthy = count_healthy(&pods, &BTreeMap::new(), now);
        assert_eq!(healthy, 2);
        let status = next_status(&pdb, healthy, (3, 1), BTreeMap::new());
        assert_eq!(status.disruptions_allowed, 1);
        assert_eq!(status.observed_generation, Some(3));
        let condition = &status.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", "SufficientPods")
        );
        let none = next_status(&pdb, healthy, (3, 3), BTreeMap::new());
        assert_eq!(none.disruptions_allowed, 0);
    }

    #[test]
    fn evicted_pods_stay_disrupted_for_two_minutes_at_most() {
        let now = jiff::Timestamp::from_second(1_000).expect("ts");
        let mut pdb = PodDisruptionBudget::default();
        let recent = time(jiff::Timestamp::from_second(950).expect("ts"));
        let stale = time(jiff::Timestamp::from_second(800).expect("ts"));
        pdb.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(BTreeMap::from([
                ("a".to_owned(), recent.clone()),
                ("b".to_owned(), stale),
                ("gone".to_owned(), recent),
            ])),
            ..Default::default()
        });
        let pods = [
            pod("a", "Running", Some(100)),
            pod("b", "Running", Some(100)),
        ];
        let (kept, recheck) = disrupted_pods(&pdb, &pods, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(recheck.map(|t| t.as_second()), Some(1_070));
        assert_eq!(count_healthy(&pods, &kept, now), 1);
    }
}
