//! Printers for workload controllers: deployments, replica sets, stateful
//! sets, daemon sets, jobs and cron jobs.

use jiff::Timestamp;
use serde_json::Value;

use super::format::{
    age, container_cells, format_label_selector, format_labels, get, human_duration, int_at,
    list_at, map_at, name, opt_bool, opt_int, opt_str, selector_string, since, str_at, time_at,
    NONE,
};
use super::Row;

/// Path of the pod template's containers in the apps kinds and jobs.
const TEMPLATE_CONTAINERS: &[&str] = &["spec", "template", "spec", "containers"];

/// `spec.replicas`, which kube defaults to 1 on write.
fn desired_replicas(object: &Value) -> i64 {
    opt_int(object, &["spec", "replicas"]).unwrap_or(1)
}

/// NAME READY UP-TO-DATE AVAILABLE AGE + CONTAINERS IMAGES SELECTOR.
pub(crate) fn deployment(deploy: &Value, now: Timestamp) -> Row {
    let ready = int_at(deploy, &["status", "readyReplicas"]);
    let (containers, images) = container_cells(TEMPLATE_CONTAINERS, deploy);
    // Unlike the other kinds, kube prints an empty selector as nothing here.
    let selector = selector_string(get(deploy, &["spec", "selector"]))
        .unwrap_or_else(|()| "<invalid>".to_owned());
    vec![
        name(deploy).into(),
        format!("{ready}/{}", desired_replicas(deploy)).into(),
        int_at(deploy, &["status", "updatedReplicas"]).into(),
        int_at(deploy, &["status", "availableReplicas"]).into(),
        age(deploy, now).into(),
        containers.into(),
        images.into(),
        selector.into(),
    ]
    .into()
}

/// NAME DESIRED CURRENT READY AGE + CONTAINERS IMAGES SELECTOR.
pub(crate) fn replica_set(rs: &Value, now: Timestamp) -> Row {
    let (containers, images) = container_cells(TEMPLATE_CONTAINERS, rs);
    vec![
        name(rs).into(),
        desired_replicas(rs).into(),
        int_at(rs, &["status", "replicas"]).into(),
        int_at(rs, &["status", "readyReplicas"]).into(),
        age(rs, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(get(rs, &["spec", "selector"])).into(),
    ]
    .into()
}

/// NAME READY AGE + CONTAINERS IMAGES.
pub(crate) fn stateful_set(sts: &Value, now: Timestamp) -> Row {
    let ready = int_at(sts, &["status", "readyReplicas"]);
    let (containers, images) = container_cells(TEMPLATE_CONTAINERS, sts);
    vec![
        name(sts).into(),
        format!("{ready}/{}", desired_replicas(sts)).into(),
        age(sts, now).into(),
        containers.into(),
        images.into(),
    ]
    .into()
}

/// NAME CONTROLLER REVISION AGE.
pub(crate) fn controller_revision(revision: &Value, now: Timestamp) -> Row {
    let controller = list_at(revision, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|owner| {
            let kind = str_at(owner, &["kind"]).to_lowercase();
            let group = str_at(owner, &["apiVersion"])
                .rsplit_once('/')
                .map(|(group, _)| group)
                .unwrap_or_default();
            let name = str_at(owner, &["name"]);
            if group.is_empty() {
                format!("{kind}/{name}")
            } else {
                format!("{kind}.{group}/{name}")
            }
        })
        .unwrap_or_else(|| "<none>".to_owned());
    vec![
        name(revision).into(),
        controller.into(),
        int_at(revision, &["revision"]).into(),
        age(revision, now).into(),
    ]
    .into()
}

/// NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE +
/// CONTAINERS IMAGES SELECTOR.
pub(crate) fn daemon_set(ds: &Value, now: Timestamp) -> Row {
    let status = |field: &str| int_at(ds, &["status", field]);
    let (containers, images) = container_cells(TEMPLATE_CONTAINERS, ds);
    let node_selector = map_at(ds, &["spec", "template", "spec", "nodeSelector"]);
    vec![
        name(ds).into(),
        status("desiredNumberScheduled").into(),
        status("currentNumberScheduled").into(),
        status("numberReady").into(),
        status("updatedNumberScheduled").into(),
        status("numberAvailable").into(),
        format_labels(node_selector).into(),
        age(ds, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(get(ds, &["spec", "selector"])).into(),
    ]
    .into()
}

/// NAME STATUS COMPLETIONS DURATION AGE + CONTAINERS IMAGES SELECTOR.
pub(crate) fn job(job: &Value, now: Timestamp) -> Row {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match opt_int(job, &["spec", "completions"]) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match opt_int(job, &["spec", "parallelism"]).unwrap_or(0) {
            parallelism if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time_at(job, &["status", "startTime"]),
        time_at(job, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.as_nanosecond() - start.as_nanosecond()),
        (Some(start), Some(end)) => human_duration(end.as_nanosecond() - start.as_nanosecond()),
    };
    let conditions = list_at(job, &["status", "conditions"]);
    let status = if job_condition(conditions, "Complete") {
        "Complete"
    } else if job_condition(conditions, "Failed") {
        "Failed"
    } else if get(job, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if job_condition(conditions, "Suspended") {
        "Suspended"
    } else if job_condition(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (containers, images) = container_cells(TEMPLATE_CONTAINERS, job);
    vec![
        name(job).into(),
        status.into(),
        completions.into(),
        duration.into(),
        age(job, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(get(job, &["spec", "selector"])).into(),
    ]
    .into()
}

/// Whether the first job condition of `kind` is `True`.
fn job_condition(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE + CONTAINERS
/// IMAGES SELECTOR.
pub(crate) fn cron_job(cj: &Value, now: Timestamp) -> Row {
    let time_zone = match get(cj, &["spec", "timeZone"]) {
        Some(zone) => zone.as_str().unwrap_or(""),
        None => NONE,
    };
    // kube defaults `suspend` to false on write and prints it capitalised.
    let suspend = if opt_bool(cj, &["spec", "suspend"]) == Some(true) {
        "True"
    } else {
        "False"
    };
    let active = i64::try_from(list_at(cj, &["status", "active"]).len()).unwrap_or(i64::MAX);
    let last_schedule = match get(cj, &["status", "lastScheduleTime"]) {
        Some(_) => since(time_at(cj, &["status", "lastScheduleTime"]), now),
        None => NONE.to_owned(),
    };
    let template = &[
        "spec",
        "jobTemplate",
        "spec",
        "template",
        "spec",
        "containers",
    ];
    let (containers, images) = container_cells(template, cj);
    vec![
        name(cj).into(),
        opt_str(cj, &["spec", "schedule"]).unwrap_or("").into(),
        time_zone.into(),
        suspend.into(),
        active.into(),
        last_schedule.into(),
        age(cj, now).into(),
        containers.into(),
        images.into(),
        format_label_selector(get(cj, &["spec", "jobTemplate", "spec", "selector"])).into(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cells, headers};
    use serde_json::{json, Value};

    const CREATED: &str = "2024-06-01T11:00:00Z";

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"containers": [{"name": "app", "image": "nginx:1.27"},
                                       {"name": "sidecar", "image": "envoy:v1"}]}})
    }

    #[test]
    fn deployment_ready_up_to_date_available() {
        assert_eq!(
            headers("apps", "Deployment"),
            [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ]
        );
        let deploy = json!({
            "metadata": {"name": "web", "creationTimestamp": CREATED},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            cells("apps", "Deployment", deploy),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("60m"),
                json!("app,sidecar"),
                json!("nginx:1.27,envoy:v1"),
                json!("app=web")
            ]
        );
        // Defaulted replicas, no status, no selector (printed empty).
        let fresh = json!({"metadata": {"name": "new"}});
        assert_eq!(
            cells("apps", "Deployment", fresh)[1..],
            [
                json!("0/1"),
                json!(0),
                json!(0),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("")
            ]
        );
        let invalid = json!({"metadata": {"name": "bad"},
                             "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Nope"}]}}});
        assert_eq!(cells("apps", "Deployment", invalid)[7], "<invalid>");
    }

    #[test]
    fn controller_revisions_name_their_controller() {
        assert_eq!(
            headers("apps", "ControllerRevision"),
            ["NAME", "CONTROLLER", "REVISION", "AGE"]
        );
        let revision = json!({
            "metadata": {"name": "db-7d9f", "creationTimestamp": CREATED,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u", "controller": true}]},
            "revision": 3,
        });
        assert_eq!(
            cells("apps", "ControllerRevision", revision),
            [
                json!("db-7d9f"),
                json!("statefulset.apps/db"),
                json!(3),
                json!("60m")
            ]
        );
    }

    #[test]
    fn replica_sets_stateful_sets_and_daemon_sets() {
        let rs = json!({
            "metadata": {"name": "web-5d7c", "creationTimestamp": CREATED},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d7c"}},
                     "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}
        });
        assert_eq!(
            cells("apps", "ReplicaSet", rs),
            [
                json!("web-5d7c"),
                json!(2),
                json!(2),
                json!(1),
                json!("60m"),
                json!("app,sidecar"),
                json!("nginx:1.27,envoy:v1"),
                json!("app=web,pod-template-hash=5d7c")
            ]
        );

        assert_eq!(
            headers("apps", "StatefulSet"),
            ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
        );
        let sts = json!({"metadata": {"name": "db", "creationTimestamp": CREATED},
                         "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}});
        assert_eq!(
            cells("apps", "StatefulSet", sts),
            ["db", "3/3", "60m", "app,sidecar", "nginx:1.27,envoy:v1"]
        );

        assert_eq!(
            headers("apps", "DaemonSet"),
            [
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ]
        );
        let ds = json!({
            "metadata": {"name": "kube-proxy", "creationTimestamp": CREATED},
            "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "kube-proxy", "image": "kube-proxy:v1.33"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        assert_eq!(
            cells("apps", "DaemonSet", ds),
            [
                json!("kube-proxy"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("60m"),
                json!("kube-proxy"),
                json!("kube-proxy:v1.33"),
                json!("k8s-app=kube-proxy")
            ]
        );
    }

    #[test]
    fn jobs_status_completions_and_duration() {
        assert_eq!(
            headers("batch", "Job"),
            [
                "NAME",
                "STATUS",
                "COMPLETIONS",
                "DURATION",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ]
        );
        let done = json!({
            "metadata": {"name": "pi", "creationTimestamp": CREATED},
            "spec": {"completions": 1, "parallelism": 1,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": "2024-06-01T11:00:00Z",
                       "completionTime": "2024-06-01T11:00:42Z",
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            cells("batch", "Job", done),
            [
                "pi",
                "Complete",
                "1/1",
                "42s",
                "60m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=abc"
            ]
        );
        let running = json!({
            "metadata": {"name": "work", "creationTimestamp": CREATED},
            "spec": {"parallelism": 3},
            "status": {"succeeded": 2, "startTime": "2024-06-01T11:55:30Z"}
        });
        assert_eq!(
            cells("batch", "Job", running)[1..4],
            ["Running", "2/1 of 3", "4m30s"]
        );
        let failed = json!({"metadata": {"name": "f"},
                            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(cells("batch", "Job", failed)[1..4], ["Failed", "0/1", ""]);
        let suspended = json!({"metadata": {"name": "s"}, "spec": {"completions": 5},
                               "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(cells("batch", "Job", suspended)[1..3], ["Suspended", "0/5"]);
        let deleting = json!({"metadata": {"name": "d", "deletionTimestamp": CREATED},
                              "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(cells("batch", "Job", deleting)[1], "Terminating");
    }

    #[test]
    fn cron_jobs_schedule_suspend_and_last_run() {
        assert_eq!(
            headers("batch", "CronJob"),
            [
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ]
        );
        let cj = json!({
            "metadata": {"name": "backup", "creationTimestamp": "2024-05-01T00:00:00Z"},
            "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-06-01T11:55:00Z"}
        });
        assert_eq!(
            cells("batch", "CronJob", cj),
            [
                json!("backup"),
                json!("*/5 * * * *"),
                json!("Etc/UTC"),
                json!("False"),
                json!(1),
                json!("5m"),
                json!("31d"),
                json!("b"),
                json!("busybox"),
                json!("<none>")
            ]
        );
        let never =
            json!({"metadata": {"name": "n"}, "spec": {"schedule": "@daily", "suspend": true}});
        assert_eq!(
            cells("batch", "CronJob", never)[2..6],
            [json!("<none>"), json!("True"), json!(0), json!("<none>")]
        );
    }
}
