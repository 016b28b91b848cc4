//! Jobs: run pods until `completions` of them succeed, at most
//! `parallelism` at a time, giving up after `backoffLimit` failures or
//! `activeDeadlineSeconds`, as upstream's job controller does; and delete
//! finished Jobs after `ttlSecondsAfterFinished` (upstream's
//! ttl-after-finished controller).
//!
//! - `NonIndexed` (default) and `Indexed` completion modes (`Indexed`
//!   pods get the completion index as annotation, label, hostname and
//!   `JOB_COMPLETION_INDEX`).
//! - Failed pods are replaced after an exponential delay (10 s, 20 s, ...
//!   as upstream; configurable). Pods with `restartPolicy: OnFailure` are
//!   restarted in place by the kubelet; their restarts count toward
//!   `backoffLimit`.
//! - `suspend` deletes the active pods; resuming restarts the clock.
//! - Conditions as kube 1.33 sets them: `SuccessCriteriaMet` then
//!   `Complete`, or `FailureTarget` then `Failed` (both at once here: the
//!   API server deletes pods immediately, so no pod is left terminating),
//!   and `Suspended`.
//! - Pods are labelled `batch.kubernetes.io/controller-uid` and
//!   `batch.kubernetes.io/job-name` (and their legacy forms), which the
//!   API server does not yet add to the template.
//!
//! Counts of finished pods are kept without upstream's tracking
//! finalizers (the API server has no finalizers yet): `succeeded` and
//! `failed` never go down, but a finished pod deleted by hand before the
//! Job saw it is not counted. `podFailurePolicy`, `successPolicy` and
//! `backoffLimitPerIndex` are not implemented.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiContext, Result};
use crate::meta::{
    controller_ref, delete_exact, is_controlled_by, name_of, namespace_of, time, uid_of,
};
use crate::pods;
use crate::replicaset::slow_start;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

const KIND: &str = "Job";
/// The reporting controller of its events.
const CONTROLLER: &str = "job-controller";
/// The label (and legacy `controller-uid`) tying pods to their Job.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// The label (and legacy `job-name`) naming a pod's Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The completion index of a pod of an Indexed Job.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// Runs the job controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(Api::<Job>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Pod>::all(client), watcher::Config::default());
    drive("job", controller, shared, reconcile, cancel).await;
}

/// What one reconcile of a Job decides, before it acts.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Pods to create: `None` for NonIndexed, the index for Indexed.
    pub create: Vec<Option<i32>>,
    /// Names of pods to delete.
    pub delete: Vec<String>,
    /// The status to write.
    pub status: JobStatus,
    /// When to look again (a backoff, a deadline, a TTL).
    pub requeue: Option<Duration>,
    /// The finished Job's TTL has passed: delete the Job.
    pub delete_job: bool,
}

/// Settings that shape a plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions {
    /// The delay before replacing the first failed pod.
    pub backoff: Duration,
    /// The longest such delay.
    pub backoff_max: Duration,
}

fn condition_true(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Whether the Job has finished (`Complete` or `Failed`).
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| condition_true(s, "Complete") || condition_true(s, "Failed"))
}

fn set_condition(
    status: &mut JobStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if existing.status != value {
            existing.last_transition_time = Some(time(now));
        }
        if existing.status != value || existing.reason.as_deref() != Some(reason) {
            existing.last_probe_time = Some(time(now));
        }
        existing.status = value.into();
        existing.reason = Some(reason.into());
        existing.message = Some(message.into());
        return;
    }
    conditions.push(JobCondition {
        type_: type_.into(),
        status: value.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(time(now)),
        last_transition_time: Some(time(now)),
    });
}

fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

/// `0-2,4,6-7`: upstream's compressed form of a set of indexes.
pub fn format_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indexes.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(",")
}

/// When a pod finished (its containers' latest finish, else its latest
/// condition change).
fn finish_time(pod: &Pod) -> Option<jiff::Timestamp> {
    let status = pod.status.as_ref()?;
    let finished = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    finished.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .filter_map(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
            .max()
    })
}

fn seconds(duration: i64) -> Duration {
    Duration::from_secs(duration.max(0) as u64)
}

/// Decides what to do with `job` given its pods, at `now` (upstream's
/// `syncJob`, without the API calls).
pub fn plan(job: &Job, owned: &[Pod], now: jiff::Timestamp, options: PlanOptions) -> Plan {
    let spec = job.spec.clone().unwrap_or_default();
    let previous = job.status.clone().unwrap_or_default();
    let mut plan = Plan {
        status: previous.clone(),
        ..Plan::default()
    };
    if is_finished(job) {
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            let finished_at = previous.completion_time.as_ref().map(|t| t.0).or_else(|| {
                previous
                    .conditions
                    .iter()
                    .flatten()
                    .filter(|c| {
                        (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"
                    })
                    .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
                    .max()
            });
            if let Some(finished_at) = finished_at {
                let expires = finished_at.as_second() + i64::from(ttl);
                if now.as_second() >= expires {
                    plan.delete_job = true;
                } else {
                    plan.requeue = Some(seconds(expires - now.as_second()));
                }
            }
        }
        return plan;
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let backoff_limit = spec.backoff_limit.unwrap_or(6).max(0);
    let suspended = spec.suspend.unwrap_or(false);

    let active: Vec<&Pod> = owned.iter().filter(|p| pods::is_active(p)).collect();
    let succeeded_pods: Vec<&Pod> = owned
        .iter()
        .filter(|p| pods::phase(p) == "Succeeded")
        .collect();
    let failed_pods: Vec<&Pod> = owned
        .iter()
        .filter(|p| pods::phase(p) == "Failed")
        .collect();
    let succeeded = (succeeded_pods.len() as i32).max(previous.succeeded.unwrap_or(0));
    let failed = (failed_pods.len() as i32).max(previous.failed.unwrap_or(0));
    let succeeded_indexes: BTreeSet<i32> = succeeded_pods
        .iter()
        .filter_map(|p| completion_index(p))
        .filter(|i| spec.completions.is_none_or(|c| *i < c))
        .collect();

    let status = &mut plan.status;
    status.succeeded = Some(succeeded);
    status.failed = Some(failed);
    if indexed {
        status.completed_indexes = Some(format_indexes(&succeeded_indexes));
    }
    if status.start_time.is_none() && !suspended {
        status.start_time = Some(time(now));
    }

    let restart_on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    let restarts: i32 = active.iter().map(|p| pods::restart_count(p)).sum();
    let past_backoff_on_failure = restart_on_failure
        && if backoff_limit == 0 {
            restarts > 0
        } else {
            restarts >= backoff_limit
        };
    let deadline = spec.active_deadline_seconds.and_then(|d| {
        let start = status.start_time.as_ref()?.0.as_second();
        Some(start + d)
    });
    let failure = if failed > backoff_limit || past_backoff_on_failure {
        Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if !suspended && deadline.is_some_and(|d| now.as_second() >= d) {
        Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    if let Some((reason, message)) = failure {
        plan.delete = active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        status.active = Some(0);
        status.ready = Some(0);
        set_condition(status, "FailureTarget", "True", reason, message, now);
        set_condition(status, "Failed", "True", reason, message, now);
        return plan;
    }

    let complete = if indexed {
        spec.completions
            .is_some_and(|c| succeeded_indexes.len() as i32 >= c)
    } else {
        match spec.completions {
            Some(c) => succeeded >= c,
            None => succeeded > 0 && active.is_empty(),
        }
    };
    if complete {
        plan.delete = active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        status.active = Some(0);
        status.ready = Some(0);
        status.completion_time = Some(time(now));
        let message = "Reached expected number of succeeded pods";
        set_condition(
            status,
            "SuccessCriteriaMet",
            "True",
            "CompletionsReached",
            message,
            now,
        );
        set_condition(
            status,
            "Complete",
            "True",
            "CompletionsReached",
            message,
            now,
        );
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            plan.requeue = Some(seconds(i64::from(ttl)));
        }
        return plan;
    }

    if suspended {
        plan.delete = active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        status.active = Some(0);
        status.ready = Some(0);
        set_condition(
            status,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
        return plan;
    }
    if condition_true(status, "Suspended") {
        set_condition(
            status,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
        status.start_time = Some(time(now));
    }

    // How many pods should run now, and which to start or stop.
    let mut active_sorted = active.clone();
    active_sorted.sort_by(|a, b| pods::deletion_order(a, b));
    let want = if indexed {
        let completions = spec.completions.unwrap_or(0);
        parallelism
            .min(completions - succeeded_indexes.len() as i32)
            .max(0)
    } else {
        match spec.completions {
            None if succeeded > 0 => active.len() as i32,
            None => parallelism,
            Some(c) => parallelism.min(c - succeeded).max(0),
        }
    };
    let active_count = active.len() as i32;
    let mut kept = active_count;
    if active_count > want {
        let surplus = (active_count - want) as usize;
        plan.delete = active_sorted
            .iter()
            .take(surplus)
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        kept = want;
    } else if active_count < want {
        let missing = (want - active_count) as usize;
        // Replace failed pods only after the backoff.
        let backoff_until = failed_pods
            .iter()
            .filter_map(|p| finish_time(p))
            .max()
            .map(|last| {
                let exponent = (failed_pods.len().max(1) - 1).min(20) as u32;
                let delay = options
                    .backoff
                    .saturating_mul(1u32 << exponent)
                    .min(options.backoff_max);
                last.as_second() + delay.as_secs() as i64
            });
        match backoff_until {
            Some(until) if now.as_second() < until => {
                plan.requeue = Some(seconds(until - now.as_second()));
            }
            _ => {
                if indexed {
                    let completions = spec.completions.unwrap_or(0);
                    let running: BTreeSet<i32> =
                        active.iter().filter_map(|p| completion_index(p)).collect();
                    plan.create = (0..completions)
                        .filter(|i| !succeeded_indexes.contains(i) && !running.contains(i))
                        .take(missing)
                        .map(Some)
                        .collect();
                } else {
                    plan.create = vec![None; missing];
                }
            }
        }
    }
    status.active = Some(kept + plan.create.len() as i32);
    let deleted: BTreeSet<&String> = plan.delete.iter().collect();
    status.ready = Some(
        active
            .iter()
            .filter(|p| {
                pods::is_ready(p)
                    && p.metadata
                        .name
                        .as_ref()
                        .is_none_or(|n| !deleted.contains(n))
            })
            .count() as i32,
    );
    if let Some(d) = deadline {
        let left = seconds(d - now.as_second() + 1);
        plan.requeue = Some(plan.requeue.map_or(left, |r| r.min(left)));
    }
    plan
}

/// A pod of `job` (for `index` when Indexed).
pub fn job_pod(job: &Job, namespace: &str, index: Option<i32>) -> Result<Pod> {
    let spec = job.spec.clone().unwrap_or_default();
    let name = name_of(job)?;
    let uid = uid_of(job)?;
    let mut pod = pods::from_template(&spec.template, namespace, controller_ref(job)?);
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in [
        (CONTROLLER_UID_LABEL, &uid),
        ("controller-uid", &uid),
        (JOB_NAME_LABEL, &name),
        ("job-name", &name),
    ] {
        labels
            .entry(key.to_owned())
            .or_insert_with(|| value.clone());
    }
    match index {
        None => pod.metadata.generate_name = Some(pods::generate_name(&name)),
        Some(index) => {
            pod.metadata.generate_name = Some(pods::generate_name(&format!("{name}-{index}")));
            labels.insert(COMPLETION_INDEX.into(), index.to_string());
            pod.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.into(), index.to_string());
            if let Some(pod_spec) = pod.spec.as_mut() {
                pod_spec.hostname = Some(format!("{name}-{index}"));
                let env = EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                        }),
                        ..EnvVarSource::default()
                    }),
                };
                let containers = pod_spec
                    .containers
                    .iter_mut()
                    .chain(pod_spec.init_containers.iter_mut().flatten());
                for container in containers {
                    let vars = container.env.get_or_insert_with(Vec::new);
                    if !vars.iter().any(|v| v.name == env.name) {
                        vars.push(env.clone());
                    }
                }
            }
        }
    }
    Ok(pod)
}

async fn reconcile(obj: Arc<Job>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<Job> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(job) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = uid_of(&job)?;
    let pod_api: Api<Pod> = Api::namespaced(shared.client.clone(), &namespace);
    let owned: Vec<Pod> = pod_api
        .list(&ListParams::default().labels(&format!("{CONTROLLER_UID_LABEL}={uid}")))
        .await
        .context("list", "Pod", &key)?
        .items
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let options = PlanOptions {
        backoff: shared.options.job_backoff,
        backoff_max: shared.options.job_backoff_max,
    };
    let plan = plan(&job, &owned, shared.now(), options);
    if plan.delete_job {
        tracing::info!("deleting finished job after its TTL");
        delete_exact(&api, &job).await?;
        return Ok(Action::await_change());
    }
    for pod_name in &plan.delete {
        if let Some(pod) = owned
            .iter()
            .find(|p| p.metadata.name.as_ref() == Some(pod_name))
        {
            delete_exact(&pod_api, pod).await?;
        }
    }
    let mut create_error = None;
    if !plan.create.is_empty() {
        tracing::info!(count = plan.create.len(), "creating job pods");
        let pods_to_create = plan
            .create
            .iter()
            .map(|index| job_pod(&job, &namespace, *index))
            .collect::<Result<Vec<Pod>>>()?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (next, pods_to_create, pod_api, key, shared, job) =
            (&next, &pods_to_create, &pod_api, &key, &shared, &job);
        if let Err(err) = slow_start(pods_to_create.len(), || async move {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Some(pod) = pods_to_create.get(i) else {
                return Ok(());
            };
            let created = pod_api
                .create(&FieldManager::CONTROLLERS.post_params(), pod)
                .await
                .context("create", "Pod", key)?;
            let name = created.metadata.name.unwrap_or_default();
            shared
                .event(
                    CONTROLLER,
                    job,
                    false,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                )
                .await;
            Ok(())
        })
        .await
        {
            create_error = Some(err);
        }
    }
    let mut status = plan.status.clone();
    if create_error.is_some() {
        // Count what exists; the next reconcile creates the rest.
        status.active = None;
    }
    if !is_finished(&job) {
        let conditions = status.conditions.iter().flatten();
        for c in conditions.filter(|c| c.status == "True") {
            match c.type_.as_str() {
                "Complete" => {
                    shared
                        .event(CONTROLLER, &job, false, "Completed", "Job completed".into())
                        .await
                }
                "Failed" => {
                    let reason = c.reason.clone().unwrap_or_else(|| "Failed".into());
                    let note = c.message.clone().unwrap_or_default();
                    shared.event(CONTROLLER, &job, true, &reason, note).await
                }
                _ => {}
            }
        }
    }
    if job.status.as_ref() != Some(&status) && create_error.is_none() {
        let mut updated = job.clone();
        updated.status = Some(status);
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", KIND, &key)?;
    }
    if let Some(err) = create_error {
        return Err(err);
    }
    Ok(Action::requeue(
        plan.requeue.unwrap_or(shared.options.resync),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const OPTIONS: PlanOptions = PlanOptions {
        backoff: Duration::from_secs(10),
        backoff_max: Duration::from_secs(360),
    };

    fn at(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(s).expect("ts")
    }

    fn job(completions: Option<i32>, parallelism: i32, backoff_limit: i32) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("job-uid".into()),
                ..ObjectMeta::default()
            },
            spec: Some(JobSpec {
                completions,
                parallelism: Some(parallelism),
                backoff_limit: Some(backoff_limit),
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        restart_policy: Some("Never".into()),
                        ..PodSpec::default()
                    }),
                },
                ..JobSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn a_new_job_starts_parallelism_pods() {
        let plan = plan(&job(Some(5), 2, 6), &[], at(100), OPTIONS);
        assert_eq!(plan.create, vec![None, None]);
        assert_eq!(plan.status.active, Some(2));
        assert_eq!(plan.status.start_time, Some(time(at(100))));
    }

    #[test]
    fn parallelism_is_capped_by_remaining_completions() {
        let pods = [
            pod("a", "Succeeded", None),
            pod("b", "Succeeded", None),
            pod("c", "Running", Some(90)),
        ];
        let plan = plan(&job(Some(3), 3, 6), &pods, at(100), OPTIONS);
        assert!(
            plan.create.is_empty(),
            "one running pod covers the last completion"
        );
        assert_eq!(plan.status.succeeded, Some(2));
        assert_eq!(plan.status.active, Some(1));
        assert_eq!(plan.status.ready, Some(1));
    }

    #[test]
    fn enough_successes_complete_the_job() {
        let pods = [pod("a", "Succeeded", None), pod("b", "Succeeded", None)];
        let plan = plan(&job(Some(2), 1, 6), &pods, at(100), OPTIONS);
        let status = plan.status;
        assert!(condition_true(&status, "Complete"));
        assert!(condition_true(&status, "SuccessCriteriaMet"));
        assert_eq!(status.completion_time, Some(time(at(100))));
        assert_eq!(status.active, Some(0));
    }

    #[test]
    fn failures_back_off_then_exceed_the_limit() {
        let mut failed = pod("a", "Failed", None);
        if let Some(status) = failed.status.as_mut() {
            status.conditions = Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "Ready".into(),
                status: "False".into(),
                last_transition_time: Some(time(at(100))),
                ..Default::default()
            }]);
        }
        let j = job(Some(1), 1, 1);
        let early = plan(&j, &[failed.clone()], at(105), OPTIONS);
        assert!(early.create.is_empty(), "within the 10s backoff");
        assert_eq!(early.requeue, Some(Duration::from_secs(5)));
        let later = plan(&j, &[failed.clone()], at(111), OPTIONS);
        assert_eq!(later.create, vec![None]);
        let mut second = failed.clone();
        second.metadata.name = Some("b".into());
        let done = plan(&j, &[failed, second], at(200), OPTIONS);
        assert!(condition_true(&done.status, "Failed"));
        let reason = done
            .status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Failed")
            .and_then(|c| c.reason.clone());
        assert_eq!(reason.as_deref(), Some("BackoffLimitExceeded"));
    }

    #[test]
    fn deadlines_fail_the_job_and_stop_its_pods() {
        let mut j = job(Some(1), 1, 6);
        if let Some(spec) = j.spec.as_mut() {
            spec.active_deadline_seconds = Some(30);
        }
        j.status = Some(JobStatus {
            start_time: Some(time(at(100))),
            ..JobStatus::default()
        });
        let running = [pod("a", "Running", Some(100))];
        let before = plan(&j, &running, at(120), OPTIONS);
        assert_eq!(before.requeue, Some(Duration::from_secs(11)));
        let after = plan(&j, &running, at(130), OPTIONS);
        assert!(condition_true(&after.status, "Failed"));
        assert_eq!(after.delete, vec!["a".to_owned()]);
    }

    #[test]
    fn finished_jobs_are_deleted_after_their_ttl() {
        let mut j = job(Some(1), 1, 6);
        if let Some(spec) = j.spec.as_mut() {
            spec.ttl_seconds_after_finished = Some(60);
        }
        let done = plan(&j, &[pod("a", "Succeeded", None)], at(100), OPTIONS);
        j.status = Some(done.status);
        let waiting = plan(&j, &[], at(130), OPTIONS);
        assert!(!waiting.delete_job);
        assert_eq!(waiting.requeue, Some(Duration::from_secs(30)));
        assert!(plan(&j, &[], at(160), OPTIONS).delete_job);
    }

    #[test]
    fn suspending_stops_pods_and_resuming_restarts_the_clock() {
        let mut j = job(Some(3), 2, 6);
        if let Some(spec) = j.spec.as_mut() {
            spec.suspend = Some(true);
        }
        let running = [pod("a", "Running", Some(100))];
        let suspended = plan(&j, &running, at(110), OPTIONS);
        assert_eq!(suspended.delete, vec!["a".to_owned()]);
        assert!(condition_true(&suspended.status, "Suspended"));
        j.status = Some(suspended.status);
        if let Some(spec) = j.spec.as_mut() {
            spec.suspend = Some(false);
        }
        let resumed = plan(&j, &[], at(200), OPTIONS);
        assert!(!condition_true(&resumed.status, "Suspended"));
        assert_eq!(resumed.status.start_time, Some(time(at(200))));
        assert_eq!(resumed.create.len(), 2);
    }

    #[test]
    fn indexed_jobs_run_each_missing_index() {
        let mut j = job(Some(4), 2, 6);
        if let Some(spec) = j.spec.as_mut() {
            spec.completion_mode = Some("Indexed".into());
        }
        let mut done = pod("a", "Succeeded", None);
        done.metadata.annotations = Some([(COMPLETION_INDEX.to_owned(), "0".to_owned())].into());
        let mut running = pod("b", "Running", Some(90));
        running.metadata.annotations = Some([(COMPLETION_INDEX.to_owned(), "1".to_owned())].into());
        let plan = plan(&j, &[done, running], at(100), OPTIONS);
        assert_eq!(plan.create, vec![Some(2)]);
        assert_eq!(plan.status.completed_indexes.as_deref(), Some("0"));
        let pod = job_pod(&j, "default", Some(2)).expect("pod");
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
    }

    #[test]
    fn indexes_are_compressed_into_ranges() {
        let set: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into();
        assert_eq!(format_indexes(&set), "0-2,4,6-7");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }
}
