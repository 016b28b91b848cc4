//! Jobs (completion, backoff limit, TTL) and CronJobs (schedule,
//! history, Forbid and Replace concurrency).

use super::*;

fn job(
    name: &str,
    completions: i32,
    parallelism: i32,
    labels: serde_json::Value,
) -> serde_json::Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "completions": completions, "parallelism": parallelism, "backoffLimit": 2,
            "template": {"metadata": {"labels": labels}, "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}},
        },
    })
}

fn job_condition(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .and_then(|c| c.reason.clone())
}

/// A CronJob `name` that starts a job every minute under concurrency
/// `policy`; the scripted kubelet keeps its pods (label `app=<name>`)
/// running until told ([`HOLD`]).
fn held_cron_job(name: &str, policy: &str) -> serde_json::Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "schedule": "* * * * *", "concurrencyPolicy": policy,
            "jobTemplate": {"spec": {"template": {
                "metadata": {"labels": {"app": name, HOLD: "true"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox"}]},
            }}},
        },
    })
}

/// Touches CronJob `name` (annotation `test/nudge=<n>`) so its controller
/// looks again at once, after the test moved the clock.
async fn nudge(api: &Api<CronJob>, name: &str, n: u32) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"test/nudge": n.to_string()}}})),
    )
    .await
    .expect("nudge");
}

#[tokio::test]
async fn a_job_runs_to_completion() {
    let cluster = ControlPlane::start().await;
    let api: Api<Job> = cluster.api();
    let created: Job = cluster
        .create(&api, job("pi", 3, 2, json!({"app": "pi"})))
        .await;
    let done = eventually_within(DEADLINE, "the job complete", || async {
        let j = api.get("pi").await.ok()?;
        job_condition(&j, "Complete").map(|_| j)
    })
    .await;
    let status = done.status.expect("status");
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert!(job_condition(&api.get("pi").await.expect("get"), "SuccessCriteriaMet").is_some());
    let uid = created.metadata.uid.expect("uid");
    let finished = pods(
        &cluster.client,
        &format!("batch.kubernetes.io/controller-uid={uid}"),
    )
    .await;
    assert_eq!(finished.len(), 3);
    assert!(finished
        .iter()
        .all(|p| vcluster_controllers::pods::phase(p) == "Succeeded"));
    assert!(finished.iter().all(|p| p
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("batch.kubernetes.io/job-name"))
        .map(String::as_str)
        == Some("pi")));
}

#[tokio::test]
async fn a_job_whose_pods_fail_stops_at_its_backoff_limit() {
    let cluster = ControlPlane::start().await;
    let api: Api<Job> = cluster.api();
    cluster
        .create(
            &api,
            job("doomed", 1, 1, json!({"app": "doomed", OUTCOME: "Failed"})),
        )
        .await;
    let failed = eventually_within(DEADLINE, "the job failed", || async {
        let j = api.get("doomed").await.ok()?;
        job_condition(&j, "Failed").map(|reason| (j, reason))
    })
    .await;
    assert_eq!(failed.1, "BackoffLimitExceeded");
    // backoffLimit 2: the third failure ends it.
    assert_eq!(failed.0.status.and_then(|s| s.failed), Some(3));
    assert_eq!(pods(&cluster.client, "app=doomed").await.len(), 3);
}

#[tokio::test]
async fn a_finished_job_is_deleted_after_its_ttl_with_its_pods() {
    let cluster = ControlPlane::start().await;
    let api: Api<Job> = cluster.api();
    let mut spec = job("once", 1, 1, json!({"app": "once"}));
    spec["spec"]["ttlSecondsAfterFinished"] = json!(0);
    cluster.create(&api, spec).await;
    eventually_within(DEADLINE, "the job deleted", || async {
        api.get_opt("once").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually_within(DEADLINE, "its pods deleted", || async {
        pods(&cluster.client, "app=once")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_cron_job_starts_jobs_on_schedule_and_keeps_its_history() {
    let cluster = ControlPlane::start().await;
    let api: Api<CronJob> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default"},
            "spec": {
                "schedule": "* * * * *", "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {
                    "metadata": {"labels": {"app": "tick"}},
                    "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "t", "image": "busybox"}]},
                }}},
            },
        }))
        .await;
    let jobs: Api<Job> = cluster.api();
    let list_jobs = || async {
        let mut names: Vec<String> = jobs
            .list(&ListParams::default().labels("app=tick"))
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|j| j.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    // Move the controllers' clock past the next minute and nudge the
    // CronJob (its timer runs on the real clock).
    cluster.advance_clock(61);
    nudge(&api, "tick", 1).await;
    let first = eventually_within(DEADLINE, "the first job", || async {
        list_jobs().await.into_iter().next()
    })
    .await;
    let job = jobs.get(&first).await.expect("job");
    let scheduled = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("batch.kubernetes.io/cronjob-scheduled-timestamp"))
        .cloned()
        .expect("scheduled timestamp");
    let scheduled: jiff::Timestamp = scheduled.parse().expect("RFC 3339");
    assert_eq!(first, format!("tick-{}", scheduled.as_second() / 60));
    assert_eq!(
        job.metadata
            .owner_references
            .as_ref()
            .map(|r| r[0].kind.as_str()),
        Some("CronJob")
    );
    let status = eventually_within(DEADLINE, "lastScheduleTime and a success", || async {
        let status = api.get("tick").await.ok()?.status?;
        (status.last_schedule_time.is_some()
            && status.last_successful_time.is_some()
            && status.active.as_ref().is_none_or(|a| a.is_empty()))
        .then_some(status)
    })
    .await;
    assert_eq!(status.last_schedule_time.map(|t| t.0), Some(scheduled));

    // The next minute: a second job; the history limit keeps only one.
    cluster.advance_clock(60);
    nudge(&api, "tick", 2).await;
    let second = eventually_within(
        DEADLINE,
        "the second job, the first one deleted",
        || async {
            let names = list_jobs().await;
            (names.len() == 1 && names[0] != first).then(|| names[0].clone())
        },
    )
    .await;
    eventually_within(DEADLINE, "the second job complete", || async {
        job_condition(&jobs.get(&second).await.ok()?, "Complete").map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_forbidding_cron_job_waits_for_the_running_job() {
    let cluster = ControlPlane::start().await;
    let api: Api<CronJob> = cluster.api();
    cluster.create(&api, held_cron_job("slow", "Forbid")).await;
    // Record, in order, when jobs appear and when they complete.
    let history = Arc::new(Mutex::new(Vec::<String>::new()));
    let observer = {
        let history = history.clone();
        let jobs: Api<Job> = cluster.api();
        tokio::spawn(async move {
            let stream = watcher(jobs, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            let mut seen = BTreeSet::new();
            while let Some(Ok(job)) = stream.next().await {
                let name = job.metadata.name.clone().unwrap_or_default();
                let state = if job_condition(&job, "Complete").is_some() {
                    "complete"
                } else {
                    "added"
                };
                if seen.insert(format!("{name} {state}")) {
                    history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("{name} {state}"));
                }
            }
        })
    };
    let jobs: Api<Job> = cluster.api();
    cluster.advance_clock(61);
    nudge(&api, "slow", 1).await;
    let first = eventually_within(DEADLINE, "the first job running", || async {
        let job = jobs
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()?;
        (job.status.as_ref()?.active == Some(1)).then_some(job)
    })
    .await;
    let first_name = first.metadata.name.clone().expect("name");
    eventually_within(DEADLINE, "the job in the active list", || async {
        (api.get("slow").await.ok()?.status?.active?.len() == 1).then_some(())
    })
    .await;
    // The next start time comes while the first job still runs.
    cluster.advance_clock(60);
    nudge(&api, "slow", 2).await;
    nudge(&api, "slow", 3).await;
    // Let the first job finish: the skipped start time runs now.
    let held = pods(&cluster.client, "app=slow").await;
    for pod in &held {
        finish(&cluster.client, pod.metadata.name.as_deref().unwrap_or("")).await;
    }
    let second = eventually_within(DEADLINE, "a second job", || async {
        jobs.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|j| j.metadata.name)
            .find(|n| *n != first_name)
    })
    .await;
    eventually_within(DEADLINE, "the observer to see the second job", || async {
        history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|h| h.starts_with(&second))
            .then_some(())
    })
    .await;
    observer.abort();
    let history = history.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let completed = history
        .iter()
        .position(|h| *h == format!("{first_name} complete"))
        .expect("the first job completed");
    let started = history
        .iter()
        .position(|h| *h == format!("{second} added"))
        .expect("the second job added");
    assert!(
        completed < started,
        "Forbid: the second job only after the first finished: {history:?}"
    );
}

#[tokio::test]
async fn a_replacing_cron_job_deletes_the_running_job() {
    let cluster = ControlPlane::start().await;
    let api: Api<CronJob> = cluster.api();
    cluster
        .create(&api, held_cron_job("fresh", "Replace"))
        .await;
    let jobs: Api<Job> = cluster.api();
    let names = || async {
        jobs.list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|j| j.metadata.name)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    cluster.advance_clock(61);
    nudge(&api, "fresh", 1).await;
    let first = eventually_within(DEADLINE, "the first job", || async {
        names().await.into_iter().next()
    })
    .await;
    cluster.advance_clock(60);
    nudge(&api, "fresh", 2).await;
    let second = eventually_within(DEADLINE, "the first job replaced", || async {
        let current = names().await;
        (current.len() == 1 && current[0] != first).then(|| current[0].clone())
    })
    .await;
    let active = eventually_within(DEADLINE, "the new job active", || async {
        let active = api.get("fresh").await.ok()?.status?.active?;
        (active.len() == 1).then_some(active)
    })
    .await;
    assert_eq!(active[0].name.as_deref(), Some(second.as_str()));
}
