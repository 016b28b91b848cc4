//! CronJobs: a Job per start time of `spec.schedule`, as upstream's
//! cronjob controller (v2) does.
//!
//! - The start time due is the latest one after `lastScheduleTime` (or
//!   the CronJob's creation) and at most now; with
//!   `startingDeadlineSeconds`, one older than the deadline is skipped.
//!   Earlier missed times are not run (one Job per reconcile, the latest).
//! - Jobs are named `<cronjob>-<minutes since the epoch>` (so a start
//!   time runs once, even across restarts) and carry the annotation
//!   `batch.kubernetes.io/cronjob-scheduled-timestamp`.
//! - `concurrencyPolicy`: `Allow` (default), `Forbid` (skip while a Job
//!   runs), `Replace` (delete the running Jobs first); `suspend` stops new
//!   Jobs.
//! - `status.active` lists the running Jobs; `lastScheduleTime` and
//!   `lastSuccessfulTime` follow them; finished Jobs beyond
//!   `successfulJobsHistoryLimit` (3) and `failedJobsHistoryLimit` (1) are
//!   deleted, oldest first.
//! - The controller looks again at the next start time.

pub mod schedule;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::error::{is_status, ApiContext, Error, Result};
use crate::job::is_finished;
use crate::meta::{
    controller_ref, delete_exact, is_controlled_by, name_of, namespace_of, time, uid_of,
};
use crate::runtime::{drive, Shared};
use schedule::{Schedule, MAX_MISSED};
use vcluster_core::FieldManager;

const KIND: &str = "CronJob";
/// The reporting controller of its events.
const CONTROLLER: &str = "cronjob-controller";
/// The annotation with the start time a Job was created for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Runs the cronjob controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<CronJob>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<Job>::all(client), watcher::Config::default());
    drive("cronjob", controller, shared, reconcile, cancel).await;
}

/// The name of the Job for start time `scheduled` (upstream's
/// `getJobName`).
pub fn job_name(cron_job: &str, scheduled: jiff::Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

fn job_condition(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

fn job_started(job: &Job) -> Option<jiff::Timestamp> {
    job.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(job.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// What `concurrencyPolicy` says about starting a Job while `running`
/// Jobs of the CronJob have not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    /// Start it (`Allow`, or nothing running).
    Start,
    /// Skip this start time (`Forbid` with a Job running).
    Skip,
    /// Delete the running Jobs, then start it (`Replace`).
    ReplaceRunning,
}

/// Upstream's concurrency rules (`Allow` when unset or unknown).
pub fn concurrency(policy: Option<&str>, running: usize) -> Concurrency {
    match policy {
        _ if running == 0 => Concurrency::Start,
        Some("Forbid") => Concurrency::Skip,
        Some("Replace") => Concurrency::ReplaceRunning,
        _ => Concurrency::Start,
    }
}

/// The Job for start time `scheduled` (upstream's `getJobFromTemplate2`).
pub fn job_for(
    cron_job: &CronJob,
    scheduled: jiff::Timestamp,
    zone_name: Option<&str>,
) -> Result<Job> {
    let spec = cron_job.spec.clone().unwrap_or_default();
    let template = spec.job_template;
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let zone = zone_name
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let stamp = scheduled
        .to_zoned(zone)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
        .replace("+00:00", "Z");
    annotations.insert(SCHEDULED_TIMESTAMP.into(), stamp);
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name_of(cron_job)?, scheduled)),
            namespace: cron_job.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cron_job)?]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

async fn reconcile(obj: Arc<CronJob>, shared: Arc<Shared>) -> Result<Action> {
    let namespace = namespace_of(obj.as_ref())?;
    let name = name_of(obj.as_ref())?;
    let key = format!("{namespace}/{name}");
    let api: Api<CronJob> = Api::namespaced(shared.client.clone(), &namespace);
    let Some(cron_job) = api.get_opt(&name).await.context("get", KIND, &key)? else {
        return Ok(Action::await_change());
    };
    let job_api: Api<Job> = Api::namespaced(shared.client.clone(), &namespace);
    let uid = uid_of(&cron_job)?;
    let jobs: Vec<Job> = job_api
        .list(&ListParams::default())
        .await
        .context("list", "Job", &key)?
        .items
        .into_iter()
        .filter(|j| is_controlled_by(&j.metadata, &uid))
        .collect();
    let spec = cron_job.spec.clone().unwrap_or_default();
    let now = shared.now();
    let mut status = cron_job.status.clone().unwrap_or_default();

    // Running jobs, and the last success.
    let mut active: Vec<&Job> = jobs.iter().filter(|j| !is_finished(j)).collect();
    active.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for job in jobs.iter().filter(|j| job_condition(j, "Complete")) {
        if let Some(done) = job.status.as_ref().and_then(|s| s.completion_time.clone()) {
            if status
                .last_successful_time
                .as_ref()
                .is_none_or(|t| t.0 < done.0)
            {
                status.last_successful_time = Some(done);
            }
        }
    }
    status.active = Some(active.iter().map(|j| reference(j)).collect());

    // History limits.
    let deleting = cron_job.metadata.deletion_timestamp.is_some();
    if !deleting {
        let successful = spec.successful_jobs_history_limit.unwrap_or(3).max(0) as usize;
        let failed = spec.failed_jobs_history_limit.unwrap_or(1).max(0) as usize;
        for (condition, limit) in [("Complete", successful), ("Failed", failed)] {
            let mut finished: Vec<&Job> = jobs
                .iter()
                .filter(|j| job_condition(j, condition))
                .collect();
            finished.sort_by_key(|j| (job_started(j), j.metadata.name.clone()));
            let excess = finished.len().saturating_sub(limit);
            for job in finished.into_iter().take(excess) {
                if delete_exact(&job_api, job).await? {
                    let name = job.metadata.name.as_deref().unwrap_or("");
                    tracing::info!(job = %name, "deleted finished job beyond the history limit");
                    let note = format!("Deleted job {name}");
                    shared
                        .event(CONTROLLER, &cron_job, false, "SuccessfulDelete", note)
                        .await;
                }
            }
        }
    }

    let mut requeue = None;
    let mut warning = None;
    match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
        Err(message) => warning = Some(message),
        Ok(schedule) if !deleting => {
            requeue = schedule.next_after(now).map(|next| {
                Duration::from_millis(
                    ((next.as_millisecond() - now.as_millisecond()).max(0) + 100) as u64,
                )
            });
            if !spec.suspend.unwrap_or(false) {
                start_due_job(
                    &shared,
                    &cron_job,
                    &schedule,
                    &job_api,
                    &jobs,
                    &mut status,
                    now,
                )
                .await?;
            }
        }
        Ok(_) => {}
    }
    if cron_job.status.as_ref() != Some(&status) {
        let mut updated = cron_job.clone();
        updated.status = Some(status);
        api.replace_status(&name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", KIND, &key)?;
    }
    if let Some(message) = warning {
        shared
            .event(
                CONTROLLER,
                &cron_job,
                true,
                "UnparseableSchedule",
                message.clone(),
            )
            .await;
        return Err(Error::InvalidSpec {
            kind: KIND,
            key,
            message,
        });
    }
    Ok(Action::requeue(requeue.unwrap_or(shared.options.resync)))
}

/// Starts the Job of the latest due start time, if the policy allows.
async fn start_due_job(
    shared: &Shared,
    cron_job: &CronJob,
    schedule: &Schedule,
    job_api: &Api<Job>,
    jobs: &[Job],
    status: &mut CronJobStatus,
    now: jiff::Timestamp,
) -> Result<()> {
    let spec = cron_job.spec.clone().unwrap_or_default();
    let name = name_of(cron_job)?;
    let mut earliest = status
        .last_schedule_time
        .as_ref()
        .or(cron_job.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    if let Some(deadline) = spec.starting_deadline_seconds {
        if let Ok(window) = jiff::Timestamp::from_second(now.as_second() - deadline) {
            earliest = earliest.max(window);
        }
    }
    let Some(due) = schedule.most_recent(earliest, now) else {
        return Ok(());
    };
    if due.missed > MAX_MISSED {
        tracing::warn!(
            "too many missed start times (> {MAX_MISSED}); set or decrease .spec.startingDeadlineSeconds or check clock skew"
        );
    }
    if spec
        .starting_deadline_seconds
        .is_some_and(|d| due.time.as_second() + d < now.as_second())
    {
        tracing::info!(scheduled = %due.time, "missed the starting window");
        return Ok(());
    }
    let job_name = job_name(&name, due.time);
    let already = jobs
        .iter()
        .any(|j| j.metadata.name.as_deref() == Some(&job_name))
        || status
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| t.0 == due.time);
    if already {
        return Ok(());
    }
    let running: Vec<&Job> = jobs.iter().filter(|j| !is_finished(j)).collect();
    match concurrency(spec.concurrency_policy.as_deref(), running.len()) {
        Concurrency::Skip => {
            tracing::info!(scheduled = %due.time, "not starting: a job is still running and the concurrency policy is Forbid");
            return Ok(());
        }
        Concurrency::ReplaceRunning => {
            for job in &running {
                if delete_exact(job_api, job).await? {
                    tracing::info!(job = %job.metadata.name.as_deref().unwrap_or(""), "replaced running job");
                }
            }
            let replaced: Vec<String> = running
                .iter()
                .filter_map(|j| j.metadata.uid.clone())
                .collect();
            if let Some(active) = status.active.as_mut() {
                active.retain(|r| r.uid.as_ref().is_none_or(|u| !replaced.contains(u)));
            }
        }
        Concurrency::Start => {}
    }
    let job = job_for(cron_job, due.time, spec.time_zone.as_deref())?;
    let created = match job_api
        .create(&FieldManager::CONTROLLERS.post_params(), &job)
        .await
    {
        Ok(created) => {
            tracing::info!(job = %job_name, scheduled = %due.time, "created job");
            let note = format!("Created job {job_name}");
            shared
                .event(CONTROLLER, cron_job, false, "SuccessfulCreate", note)
                .await;
            created
        }
        // Created by a reconcile whose status write was lost.
        Err(err) if is_status(&err, 409) => job_api
            .get(&job_name)
            .await
            .context("get", "Job", &job_name)?,
        Err(err) => return Err(err).context("create", "Job", &job_name),
    };
    let mut active: BTreeMap<Option<String>, ObjectReference> = status
        .active
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    active.insert(created.metadata.name.clone(), reference(&created));
    status.active = Some(active.into_values().collect());
    status.last_schedule_time = Some(time(due.time));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobTemplateSpec};

    #[test]
    fn concurrency_policies_follow_upstream() {
        assert_eq!(concurrency(None, 3), Concurrency::Start);
        assert_eq!(concurrency(Some("Allow"), 3), Concurrency::Start);
        assert_eq!(concurrency(Some("Forbid"), 0), Concurrency::Start);
        assert_eq!(concurrency(Some("Forbid"), 1), Concurrency::Skip);
        assert_eq!(concurrency(Some("Replace"), 0), Concurrency::Start);
        assert_eq!(concurrency(Some("Replace"), 2), Concurrency::ReplaceRunning);
    }

    #[test]
    fn jobs_are_named_by_their_start_minute_and_annotated() {
        let scheduled: jiff::Timestamp = "2025-03-01T12:34:00Z".parse().expect("ts");
        assert_eq!(
            job_name("backup", scheduled),
            format!("backup-{}", scheduled.as_second() / 60)
        );
        let cron_job = CronJob {
            metadata: ObjectMeta {
                name: Some("backup".into()),
                namespace: Some("ops".into()),
                uid: Some("cj-uid".into()),
                ..ObjectMeta::default()
            },
            spec: Some(CronJobSpec {
                schedule: "34 12 * * *".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_owned(), "backup".to_owned())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: None,
                },
                ..CronJobSpec::default()
            }),
            status: None,
        };
        let job = job_for(&cron_job, scheduled, None).expect("job");
        let annotations = job.metadata.annotations.unwrap_or_default();
        assert_eq!(annotations[SCHEDULED_TIMESTAMP], "2025-03-01T12:34:00Z");
        assert_eq!(job.metadata.labels.unwrap_or_default()["app"], "backup");
        let owner = job.metadata.owner_references.unwrap_or_default();
        assert_eq!(owner[0].kind, "CronJob");
        let paris = job_for(&cron_job, scheduled, Some("Europe/Paris")).expect("job");
        let annotations = paris.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations[SCHEDULED_TIMESTAMP],
            "2025-03-01T13:34:00+01:00"
        );
    }
}
