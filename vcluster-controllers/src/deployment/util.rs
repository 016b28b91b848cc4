//! The arithmetic of Deployments, ported from upstream's
//! `pkg/controller/deployment/util`: surge and unavailability fenceposts,
//! how far a rolling update may go in one step, proportional scaling of
//! several ReplicaSets, revisions and the status conditions. Pure
//! functions over the objects, so every rule is unit-tested.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::meta::time;

/// The revision of a ReplicaSet (and of its Deployment): `kubectl
/// rollout history` lists these.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet had before a rollback reused it.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `replicas` when it last scaled this ReplicaSet.
pub(crate) const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// `replicas + maxSurge` when it last scaled this ReplicaSet (the base of
/// proportional scaling).
pub(crate) const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// Longest `revision-history` annotation kept.
pub(crate) const MAX_REV_HISTORY_CHARS: usize = 2000;

/// Deployment annotations never copied to its ReplicaSets.
const ANNOTATIONS_TO_SKIP: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

/// Condition types and reasons, as upstream spells them (tools match on
/// them: `kubectl rollout status` looks for `ProgressDeadlineExceeded`).
pub(crate) mod reason {
    /// Condition type: enough pods are available.
    pub const AVAILABLE: &str = "Available";
    /// Condition type: the rollout is moving (or done, or stuck).
    pub const PROGRESSING: &str = "Progressing";
    /// Condition type: a ReplicaSet could not create or delete pods.
    pub const REPLICA_FAILURE: &str = "ReplicaFailure";
    /// A new ReplicaSet was created.
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    /// The new ReplicaSet already existed.
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    /// The rollout finished.
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// The rollout made progress.
    pub const RS_UPDATED: &str = "ReplicaSetUpdated";
    /// No progress within `progressDeadlineSeconds`.
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    /// The Deployment is paused.
    pub const PAUSED: &str = "DeploymentPaused";
    /// The Deployment was resumed.
    pub const RESUMED: &str = "DeploymentResumed";
    /// At least `replicas - maxUnavailable` pods are available.
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    /// Fewer than `replicas - maxUnavailable` pods are available.
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
    /// Creating the new ReplicaSet failed.
    pub const RS_CREATE_ERROR: &str = "ReplicaSetCreateError";
}

/// `spec.replicas` of a Deployment (1 when unset, as defaulted).
pub(crate) fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.replicas` of a ReplicaSet (1 when unset, as defaulted).
pub(crate) fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `status.replicas` of a ReplicaSet (its pods).
pub(crate) fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

/// `status.availableReplicas` of a ReplicaSet.
pub(crate) fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// `status.readyReplicas` of a ReplicaSet.
pub(crate) fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// Whether the Deployment uses the RollingUpdate strategy (the default).
pub(crate) fn is_rolling(d: &Deployment) -> bool {
    strategy_type(d) != "Recreate"
}

/// The strategy type (`RollingUpdate` when unset).
pub(crate) fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Upstream's `GetScaledValueFromIntOrPercent`: an integer as is, or a
/// percentage of `total` rounded up or down.
pub(crate) fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let Some(number) = text.strip_suffix('%') else {
                return Err(format!(
                    "invalid value {text:?}: not an integer or a percentage"
                ));
            };
            let percent: i64 = number
                .parse()
                .map_err(|_| format!("invalid value for IntOrString: invalid value {text:?}"))?;
            let product = percent * i64::from(total);
            let scaled = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(scaled).map_err(|_| format!("{text} of {total} is out of range"))
        }
    }
}

/// Upstream's `ResolveFenceposts`: `(maxSurge, maxUnavailable)` for
/// `desired` replicas, surge rounded up and unavailability down; when both
/// come out zero, one pod may be unavailable (or the rollout could never
/// move).
pub(crate) fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// The Deployment's resolved fenceposts (defaults 25%/25%, as the API
/// server defaults a RollingUpdate strategy).
pub(crate) fn fenceposts(d: &Deployment) -> Result<(i32, i32), String> {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = rolling
        .and_then(|r| r.max_surge.as_ref())
        .unwrap_or(&default);
    let unavailable = rolling
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&default);
    resolve_fenceposts(Some(surge), Some(unavailable), replicas(d))
}

/// `maxSurge` in pods (0 for Recreate).
pub(crate) fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).map(|(surge, _)| surge).unwrap_or(0)
}

/// `maxUnavailable` in pods, at most `replicas` (0 for Recreate or no
/// replicas).
pub(crate) fn max_unavailable(d: &Deployment) -> i32 {
    let desired = replicas(d);
    if !is_rolling(d) || desired == 0 {
        return 0;
    }
    let unavailable = fenceposts(d).map(|(_, u)| u).unwrap_or(1);
    unavailable.min(desired)
}

/// The sum of `spec.replicas` over ReplicaSets.
pub(crate) fn total_replicas<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_replicas).sum()
}

/// The sum of `status.replicas` (pods that exist).
pub(crate) fn total_actual<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_actual).sum()
}

/// The sum of `status.availableReplicas`.
pub(crate) fn total_available<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_available).sum()
}

/// The sum of `status.readyReplicas`.
pub(crate) fn total_ready<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    rss.into_iter().map(rs_ready).sum()
}

/// How many replicas the new ReplicaSet may have now (upstream's
/// `NewRSNewReplicas`): for RollingUpdate, grow until all ReplicaSets
/// together reach `replicas + maxSurge`, never past `replicas`; for
/// Recreate, straight to `replicas`.
pub(crate) fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, String> {
    let desired = replicas(d);
    if !is_rolling(d) {
        return Ok(desired);
    }
    let current = rs_replicas(new_rs);
    let (surge, _) = fenceposts(d)?;
    let pods = total_replicas(all.iter().copied());
    let max_total = desired + surge;
    if pods >= max_total {
        return Ok(current);
    }
    let up = (max_total - pods).min(desired - current);
    Ok(current + up)
}

/// How many old pods a rolling update may remove right now (upstream's
/// `reconcileOldReplicaSets` budget): everything above
/// `replicas - maxUnavailable`, minus the new ReplicaSet's pods that are
/// not available yet.
pub(crate) fn old_scale_down_budget(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> i32 {
    let all_pods = total_replicas(all.iter().copied());
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
    all_pods - min_available - new_unavailable
}

/// How many available pods may go (upstream's
/// `scaleDownOldReplicaSetsForRollingUpdate`): available pods beyond
/// `replicas - maxUnavailable`.
pub(crate) fn available_surplus(d: &Deployment, all: &[&ReplicaSet]) -> i32 {
    let min_available = replicas(d) - max_unavailable(d);
    total_available(all.iter().copied()) - min_available
}

/// A ReplicaSet's integer annotation.
fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// The ReplicaSet's revision (0 when missing or unreadable).
pub(crate) fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among `rss`.
pub(crate) fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter().map(revision).max().unwrap_or(0)
}

/// Oldest first; ties by name (upstream's `ReplicaSetsByCreationTimestamp`).
pub(crate) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Lowest revision first; ties oldest first.
pub(crate) fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    revision(a)
        .cmp(&revision(b))
        .then_with(|| by_creation(a, b))
}

/// Whether the ReplicaSet wants pods.
pub(crate) fn is_active(rs: &ReplicaSet) -> bool {
    rs_replicas(rs) > 0
}

/// The single ReplicaSet to scale when only one is active, or the newest
/// when none is (upstream's `FindActiveOrLatest`); `None` when several
/// are active.
pub(crate) fn find_active_or_latest<'a>(
    new_rs: Option<&'a ReplicaSet>,
    old: &[&'a ReplicaSet],
) -> Option<&'a ReplicaSet> {
    if new_rs.is_none() && old.is_empty() {
        return None;
    }
    let mut old_sorted: Vec<&ReplicaSet> = old.to_vec();
    old_sorted.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = old_sorted
        .iter()
        .copied()
        .chain(new_rs)
        .filter(|rs| is_active(rs))
        .collect();
    match active.len() {
        0 => new_rs.or_else(|| old_sorted.first().copied()),
        1 => Some(active[0]),
        _ => None,
    }
}

/// Whether the new ReplicaSet already has all the Deployment's replicas,
/// available (upstream's `IsSaturated`).
pub(crate) fn is_saturated(d: &Deployment, new_rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = new_rs else {
        return false;
    };
    let desired = replicas(d);
    rs_replicas(rs) == desired
        && int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) == Some(desired)
        && rs_available(rs) == desired
}

/// The share of `to_add` for one ReplicaSet (upstream's `GetProportion`).
pub(crate) fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(d, rs);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn replica_set_fraction(d: &Deployment, rs: &ReplicaSet) -> i32 {
    let desired = replicas(d);
    if desired == 0 {
        return -rs_replicas(rs);
    }
    let max_now = desired + max_surge(d);
    let before = match int_annotation(rs, MAX_REPLICAS_ANNOTATION) {
        Some(before) if before != 0 => before,
        _ => {
            let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if status_replicas == 0 {
                return 0;
            }
            status_replicas
        }
    };
    let size = f64::from(rs_replicas(rs)) * f64::from(max_now) / f64::from(before);
    (size.round() as i32) - rs_replicas(rs)
}

/// The new sizes of several active ReplicaSets when a Deployment in the
/// middle of a rolling update is scaled (upstream's proportional
/// scaling): the difference to `replicas + maxSurge` is shared in
/// proportion to their sizes, leftovers go to the first (largest). `rss`
/// must be the active ReplicaSets; the result is by name.
pub(crate) fn proportional_sizes(d: &Deployment, rss: &[&ReplicaSet]) -> BTreeMap<String, i32> {
    let desired = replicas(d);
    let allowed = if desired > 0 {
        desired + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total_replicas(rss.iter().copied());
    let mut sorted: Vec<&ReplicaSet> = rss.to_vec();
    if to_add > 0 {
        // Larger first; among equals, newer first.
        sorted.sort_by(|a, b| {
            rs_replicas(b)
                .cmp(&rs_replicas(a))
                .then_with(|| by_creation(b, a))
        });
    } else if to_add < 0 {
        // Larger first; among equals, older first.
        sorted.sort_by(|a, b| {
            rs_replicas(b)
                .cmp(&rs_replicas(a))
                .then_with(|| by_creation(a, b))
        });
    }
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &sorted {
        let name = rs.metadata.name.clone().unwrap_or_default();
        if to_add != 0 {
            let share = proportion(d, rs, to_add, added);
            added += share;
            sizes.push((name, rs_replicas(rs) + share));
        } else {
            sizes.push((name, rs_replicas(rs)));
        }
    }
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    sizes.into_iter().collect()
}

/// Whether the ReplicaSet's desired/max annotations are out of date.
pub(crate) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) != Some(desired)
        || int_annotation(rs, MAX_REPLICAS_ANNOTATION) != Some(max)
}

/// Sets the new ReplicaSet's annotations (upstream's
/// `SetNewReplicaSetAnnotations`): copies the Deployment's own
/// annotations (so `kubernetes.io/change-cause` shows in `rollout
/// history`), raises its revision to `new_revision` (recording the old
/// one in the revision history when a rollback reuses it), and, for a
/// ReplicaSet about to be created, the replica annotations. Returns
/// whether anything changed.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (key, value) in d.metadata.annotations.iter().flatten() {
        if ANNOTATIONS_TO_SKIP.contains(&key.as_str()) {
            continue;
        }
        if annotations.get(key) != Some(value) {
            annotations.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    let old = annotations.get(REVISION_ANNOTATION).cloned();
    let old_revision = match old.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return changed,
        },
    };
    if old_revision < new_revision {
        annotations.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations
                .get(REVISION_HISTORY_ANNOTATION)
                .cloned()
                .unwrap_or_default();
            let mut revisions: Vec<&str> = if history.is_empty() {
                Vec::new()
            } else {
                history.split(',').collect()
            };
            let mut total = history.len() + old.len() + usize::from(!history.is_empty());
            while total > MAX_REV_HISTORY_CHARS && !revisions.is_empty() {
                total -= revisions[0].len() + 1;
                revisions.remove(0);
            }
            if total <= MAX_REV_HISTORY_CHARS {
                revisions.push(&old);
                let joined = revisions.join(",");
                annotations.insert(REVISION_HISTORY_ANNOTATION.into(), joined);
            }
        }
    }
    if !exists {
        let desired = replicas(d);
        let max = desired + max_surge(d);
        annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), desired.to_string());
        annotations.insert(MAX_REPLICAS_ANNOTATION.into(), max.to_string());
        changed = true;
    }
    changed
}

/// A condition of the Deployment's status.
pub(crate) fn condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == type_)
}

/// A new condition stamped `now`.
pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(time(now)),
        last_transition_time: Some(time(now)),
    }
}

/// Sets a condition (upstream's `SetDeploymentCondition`): unchanged when
/// status and reason are the same; keeps the transition time when only
/// the reason changes.
pub(crate) fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != condition.type_);
    conditions.push(condition);
}

/// Removes a condition.
pub(crate) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// Whether `progressDeadlineSeconds` is set to something finite.
pub(crate) fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

/// Whether the rollout is done: every replica updated and available, and
/// the status describes the current generation (upstream's
/// `DeploymentComplete`).
pub(crate) fn is_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let desired = replicas(d);
    status.updated_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) == desired
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's current status
/// (upstream's `DeploymentProgressing`).
pub(crate) fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || new.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || new.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

/// Whether the rollout has made no progress for `progressDeadlineSeconds`
/// (upstream's `DeploymentTimedOut`).
pub(crate) fn is_timed_out(
    d: &Deployment,
    status: &DeploymentStatus,
    now: jiff::Timestamp,
) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = condition(status, reason::PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => return false,
        Some(reason::TIMED_OUT) => return true,
        _ => {}
    }
    let deadline = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600);
    cond.last_update_time
        .as_ref()
        .is_some_and(|from| from.0.as_second() + i64::from(deadline) < now.as_second())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Deployments and ReplicaSets in given states.
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    pub(crate) fn deployment(
        replicas: i32,
        surge: IntOrString,
        unavailable: IntOrString,
    ) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    pub(crate) fn replica_set(
        name: &str,
        replicas: i32,
        available: i32,
        created: i64,
    ) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    jiff::Timestamp::from_second(created).expect("timestamp"),
                )),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                ..ReplicaSetSpec::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                available_replicas: Some(available),
                ready_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{deployment, replica_set};
    use super::*;
    use proptest::prelude::*;

    fn pct(text: &str) -> IntOrString {
        IntOrString::String(text.into())
    }

    #[test]
    fn percentages_round_surge_up_and_unavailability_down() {
        assert_eq!(scaled_value(&pct("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&pct("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&pct("25%"), 4, true), Ok(1));
        assert_eq!(scaled_value(&pct("0%"), 4, true), Ok(0));
        assert_eq!(scaled_value(&IntOrString::Int(2), 4, true), Ok(2));
        assert!(scaled_value(&pct("25"), 4, true).is_err());
        assert!(scaled_value(&pct("x%"), 4, true).is_err());
    }

    #[test]
    fn both_fenceposts_zero_allow_one_unavailable() {
        // 25% of 3 rounds down to 0 unavailable; 0 surge: one may go.
        assert_eq!(
            resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&pct("25%")), 3),
            Ok((0, 1))
        );
        assert_eq!(
            resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 3),
            Ok((1, 0))
        );
        assert_eq!(resolve_fenceposts(None, None, 10), Ok((0, 1)));
    }

    #[test]
    fn max_unavailable_is_capped_at_replicas() {
        let d = deployment(2, IntOrString::Int(0), IntOrString::Int(5));
        assert_eq!(max_unavailable(&d), 2);
        assert_eq!(
            max_unavailable(&deployment(0, IntOrString::Int(0), IntOrString::Int(5))),
            0
        );
    }

    #[test]
    fn the_new_replica_set_grows_by_the_surge() {
        // 3 replicas, surge 1: old at 3, new may go to 1.
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        let old = replica_set("old", 3, 3, 1);
        let new = replica_set("new", 0, 0, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(1));
        // At the cap: no growth.
        let new1 = replica_set("new", 1, 0, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new1], &new1), Ok(1));
        // Never past replicas.
        let old0 = replica_set("old", 0, 0, 1);
        let new2 = replica_set("new", 2, 2, 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old0, &new2], &new2), Ok(3));
    }

    #[test]
    fn old_pods_go_only_while_enough_stay_available() {
        let d = deployment(3, IntOrString::Int(1), IntOrString::Int(0));
        let old = replica_set("old", 3, 3, 1);
        let new = replica_set("new", 1, 0, 2);
        // 4 pods, 3 must stay available, the new one is not yet: none may go.
        assert_eq!(old_scale_down_budget(&d, &[&old, &new], &new), 0);
        let new_ready = replica_set("new", 1, 1, 2);
        assert_eq!(
            old_scale_down_budget(&d, &[&old, &new_ready], &new_ready),
            1
        );
        assert_eq!(available_surplus(&d, &[&old, &new_ready]), 1);
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        // 10 replicas, surge 3 (25% rounded up): old 8, new 5 = 13. Scale to 20.
        let mut d = deployment(20, pct("25%"), pct("25%"));
        let mut old = replica_set("old", 8, 8, 1);
        let mut new = replica_set("new", 5, 0, 2);
        for rs in [&mut old, &mut new] {
            rs.metadata.annotations =
                Some([(MAX_REPLICAS_ANNOTATION.to_owned(), "13".to_owned())].into());
        }
        d.status = Some(DeploymentStatus {
            replicas: Some(13),
            ..DeploymentStatus::default()
        });
        let sizes = proportional_sizes(&d, &[&old, &new]);
        // allowed = 20 + 5 = 25, 12 to add, split 8:5.
        assert_eq!(sizes.values().sum::<i32>(), 25);
        assert_eq!(sizes["old"], 15);
        assert_eq!(sizes["new"], 10);
    }

    #[test]
    fn rollbacks_record_the_revision_history() {
        let d = deployment(1, pct("25%"), pct("25%"));
        let mut rs = replica_set("old", 0, 0, 1);
        rs.metadata.annotations = Some([(REVISION_ANNOTATION.to_owned(), "1".to_owned())].into());
        assert!(set_new_rs_annotations(&d, &mut rs, 3, true));
        assert_eq!(revision(&rs), 3);
        let annotations = rs.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations[REVISION_HISTORY_ANNOTATION], "1");
        assert!(!set_new_rs_annotations(&d, &mut rs, 3, true), "idempotent");
        assert!(set_new_rs_annotations(&d, &mut rs, 5, true));
        let annotations = rs.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations[REVISION_HISTORY_ANNOTATION], "1,3");
    }

    #[test]
    fn the_only_active_replica_set_is_scaled() {
        let old = replica_set("old", 0, 0, 1);
        let new = replica_set("new", 3, 3, 2);
        let found = find_active_or_latest(Some(&new), &[&old]);
        assert_eq!(found.and_then(|r| r.metadata.name.as_deref()), Some("new"));
        let old_active = replica_set("old", 2, 2, 1);
        assert!(find_active_or_latest(Some(&new), &[&old_active]).is_none());
        let idle = replica_set("new", 0, 0, 2);
        let found = find_active_or_latest(Some(&idle), &[&old]);
        assert_eq!(found.and_then(|r| r.metadata.name.as_deref()), Some("new"));
    }

    /// A rollout simulated step by step with the controller's arithmetic;
    /// pods become available the step after they are created.
    fn simulate(
        replicas: i32,
        surge: IntOrString,
        unavailable: IntOrString,
    ) -> Result<usize, String> {
        let d = deployment(replicas, surge, unavailable);
        let (max_surge, max_unavail) = (max_surge(&d), max_unavailable(&d));
        let mut old = replica_set("old", replicas, replicas, 1);
        let mut new = replica_set("new", 0, 0, 2);
        for step in 0..200 {
            // Pods created last step are now available.
            let set_available = |rs: &mut ReplicaSet, n: i32| {
                if let Some(status) = rs.status.as_mut() {
                    status.replicas = rs_replicas_of(rs.spec.as_ref());
                    status.available_replicas = Some(n);
                }
            };
            fn rs_replicas_of(spec: Option<&k8s_openapi::api::apps::v1::ReplicaSetSpec>) -> i32 {
                spec.and_then(|s| s.replicas).unwrap_or(0)
            }
            let new_target = new_rs_new_replicas(&d, &[&old, &new], &new)?;
            if let Some(spec) = new.spec.as_mut() {
                spec.replicas = Some(new_target);
            }
            let total = rs_replicas(&old) + rs_replicas(&new);
            if total > replicas + max_surge {
                return Err(format!(
                    "step {step}: {total} pods exceed {replicas}+{max_surge}"
                ));
            }
            let budget = old_scale_down_budget(&d, &[&old, &new], &new)
                .min(available_surplus(&d, &[&old, &new]))
                .min(rs_replicas(&old));
            if budget > 0 {
                let next = rs_replicas(&old) - budget;
                if let Some(spec) = old.spec.as_mut() {
                    spec.replicas = Some(next);
                }
                let old_available = rs_available(&old).min(next);
                set_available(&mut old, old_available);
            }
            let available = rs_available(&old) + rs_available(&new);
            if available < replicas - max_unavail {
                return Err(format!(
                    "step {step}: {available} available < {replicas}-{max_unavail}"
                ));
            }
            let new_now = rs_replicas(&new);
            set_available(&mut new, new_now);
            if rs_replicas(&old) == 0 && rs_available(&new) == replicas {
                return Ok(step);
            }
        }
        Err("the rollout never finished".into())
    }

    fn int_or_percent() -> impl Strategy<Value = IntOrString> {
        prop_oneof![
            (0i32..5).prop_map(IntOrString::Int),
            (0i32..=100).prop_map(|p| IntOrString::String(format!("{p}%"))),
        ]
    }

    proptest! {
        #[test]
        fn fenceposts_never_both_zero(surge in int_or_percent(), unavailable in int_or_percent(), replicas in 0i32..50) {
            let (s, u) = resolve_fenceposts(Some(&surge), Some(&unavailable), replicas).expect("valid");
            prop_assert!(s > 0 || u > 0);
            prop_assert!(s >= 0 && u >= 0);
        }

        #[test]
        fn rolling_updates_respect_surge_and_availability_and_finish(
            replicas in 1i32..20,
            surge in int_or_percent(),
            unavailable in int_or_percent(),
        ) {
            let result = simulate(replicas, surge, unavailable);
            prop_assert!(result.is_ok(), "{:?}", result);
        }

        #[test]
        fn proportional_scaling_hits_the_target(old in 1i32..30, new in 1i32..30, target in 0i32..60) {
            let mut d = deployment(target, IntOrString::Int(1), IntOrString::Int(0));
            let before = old + new;
            let mut a = replica_set("a", old, old, 1);
            let mut b = replica_set("b", new, 0, 2);
            for rs in [&mut a, &mut b] {
                rs.metadata.annotations = Some([(MAX_REPLICAS_ANNOTATION.to_owned(), before.to_string())].into());
            }
            d.status = Some(DeploymentStatus { replicas: Some(before), ..DeploymentStatus::default() });
            let sizes = proportional_sizes(&d, &[&a, &b]);
            let allowed = if target > 0 { target + 1 } else { 0 };
            prop_assert_eq!(sizes.values().sum::<i32>(), allowed);
            prop_assert!(sizes.values().all(|s| *s >= 0));
        }
    }
}
