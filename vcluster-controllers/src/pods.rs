//! Pod facts every workload controller reads (active, ready, available),
//! pods built from a template, and the order in which a controller that
//! has too many pods deletes them (upstream's `ActivePodsWithRanks`).

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Whether the pod still counts toward its controller: not finished
/// (`Succeeded`/`Failed`) and not being deleted.
pub(crate) fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// The pod's phase (`""` before anyone set one).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Whether the pod's `Ready` condition is `True` (the syncer copies it
/// from the host pod, where the kubelet sets it).
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Since when the pod has been ready, if it is.
pub(crate) fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Whether the pod has been ready for at least `min_ready_seconds` at
/// `now` (upstream's `IsPodAvailable`).
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    ready_since(pod)
        .is_some_and(|since| since.as_second() + i64::from(min_ready_seconds) < now.as_second())
}

/// When a ready-but-not-yet-available pod becomes available, so the
/// controller can look again then.
pub(crate) fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<jiff::Timestamp> {
    let since = ready_since(pod)?;
    jiff::Timestamp::from_second(since.as_second() + i64::from(min_ready_seconds) + 1).ok()
}

/// The sum of the restart counts of the pod's containers (init
/// containers included).
pub(crate) fn restart_count(pod: &Pod) -> i32 {
    let Some(status) = pod.status.as_ref() else {
        return 0;
    };
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let init = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    containers.iter().chain(init).map(|c| c.restart_count).sum()
}

/// A new pod from `template`: its labels, annotations and spec, owned by
/// `owner` (a controller reference), in `namespace`. The caller sets the
/// name (or `generateName`) and any labels of its own.
pub(crate) fn from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner: OwnerReference,
) -> Pod {
    let source = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_owned()),
            labels: source.labels,
            annotations: source.annotations,
            finalizers: source.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The `generateName` prefix of a controller's pods (`<controller>-`).
pub(crate) fn generate_name(controller: &str) -> String {
    // Leave room for the 5-character random suffix within 63 characters.
    let max = 63 - 5 - 1;
    let prefix: String = controller.chars().take(max).collect();
    format!("{prefix}-")
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Orders pods so that the ones to delete first come first: unscheduled
/// before scheduled, pending before running, not ready before ready,
/// ready for less time before longer, more restarts before fewer, newer
/// before older (upstream's ranking for scale-down, without the
/// per-node co-location rank).
pub(crate) fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        // Ready for a shorter time first: the later "since" first.
        .then_with(|| ready_since(b).cmp(&ready_since(a)))
        .then_with(|| restart_count(b).cmp(&restart_count(a)))
        // Newer first.
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Pods in given states, for the unit tests of several modules.
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    /// A pod named `name` in `phase`, ready since `ready_since` (seconds).
    pub(crate) fn pod(name: &str, phase: &str, ready_since: Option<i64>) -> Pod {
        let ts = |s: i64| Time(jiff::Timestamp::from_second(s).expect("timestamp"));
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(ts(1_000)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node".into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_since.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(ts(s)),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::pod;
    use super::*;

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("a", "Running", Some(100));
        let at = |s| jiff::Timestamp::from_second(s).expect("ts");
        assert!(is_available(&p, 0, at(100)));
        assert!(!is_available(&p, 10, at(110)));
        assert!(is_available(&p, 10, at(111)));
        assert!(!is_available(&pod("b", "Running", None), 0, at(200)));
    }

    #[test]
    fn scale_down_prefers_pending_unready_and_young_pods() {
        let mut pods = [
            pod("old-ready", "Running", Some(100)),
            pod("young-ready", "Running", Some(500)),
            pod("pending", "Pending", None),
            pod("running-unready", "Running", None),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<_> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        assert_eq!(
            names,
            ["pending", "running-unready", "young-ready", "old-ready"]
        );
    }

    #[test]
    fn finished_and_deleting_pods_are_not_active() {
        assert!(is_active(&pod("a", "Running", None)));
        assert!(!is_active(&pod("b", "Succeeded", None)));
        assert!(!is_active(&pod("c", "Failed", None)));
        let mut d = pod("d", "Running", None);
        d.metadata.deletion_timestamp = d.metadata.creation_timestamp.clone();
        assert!(!is_active(&d));
    }
}
