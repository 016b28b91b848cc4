//! The pod printer: READY, the one-word STATUS kubectl users read pods by,
//! RESTARTS with the time of the last one, and the wide columns.
//!
//! STATUS is derived in kube's order: the phase (or `status.reason`), then
//! a scheduling gate, then the first init container that has not finished
//! (`Init:x/y`, `Init:<reason>`), then the regular containers' waiting or
//! terminated reasons, and finally deletion (`Terminating`).

use jiff::Timestamp;
use serde_json::{json, Value};

use super::format::{
    age, get, has_object, int_at, list_at, name, opt_bool, since, str_at, time_at, NONE,
};
use super::Row;

/// Renders one pod.
pub(crate) fn print(pod: &Value, now: Timestamp) -> Row {
    let init_specs = list_at(pod, &["spec", "initContainers"]);
    let restartable = |container: &str| {
        init_specs.iter().any(|spec| {
            str_at(spec, &["name"]) == container && str_at(spec, &["restartPolicy"]) == "Always"
        })
    };
    let sidecars = init_specs
        .iter()
        .filter(|spec| str_at(spec, &["restartPolicy"]) == "Always")
        .count();
    let total = list_at(pod, &["spec", "containers"]).len() + sidecars;

    // kube sets Pending when a pod is created, so a pod never shows no phase.
    let phase = match str_at(pod, &["status", "phase"]) {
        "" => "Pending",
        phase => phase,
    };
    let conditions = list_at(pod, &["status", "conditions"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_owned(),
        reason => reason.to_owned(),
    };
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_owned();
    }

    let mut ready = 0usize;
    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let mut initializing = false;
    for (index, status) in list_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let is_sidecar = restartable(str_at(status, &["name"]));
        restarts.add(status);
        if is_sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = has_object(status, &["state", "terminated"]);
        if terminated && int_at(status, &["state", "terminated", "exitCode"]) == 0 {
            continue;
        }
        if is_sidecar && opt_bool(status, &["started"]) == Some(true) {
            if opt_bool(status, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        reason = if terminated {
            format!("Init:{}", terminated_reason(status))
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{index}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_is_true(conditions, "Initialized") {
        // Only sidecar restarts count once the pod is past initialization.
        restarts = sidecar_restarts;
        let mut has_running = false;
        // kube walks the containers last to first, so the first container
        // with a reason has the final word.
        for status in list_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts.add(status);
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_owned();
            } else if has_object(status, &["state", "terminated"]) {
                reason = terminated_reason(status);
            } else if opt_bool(status, &["ready"]) == Some(true)
                && has_object(status, &["state", "running"])
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_is_true(conditions, "Ready") {
                "Running".to_owned()
            } else {
                "NotReady".to_owned()
            };
        }
    }

    if get(pod, &["metadata", "deletionTimestamp"]).is_some() {
        if str_at(pod, &["status", "reason"]) == "NodeLost" {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }

    let cells = vec![
        name(pod).into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts.text(now).into(),
        age(pod, now).into(),
        or_none(pod_ip(pod)).into(),
        or_none(str_at(pod, &["spec", "nodeName"])).into(),
        or_none(str_at(pod, &["status", "nominatedNodeName"])).into(),
        readiness_gates(pod, conditions).into(),
    ];
    let conditions = match phase {
        "Succeeded" => vec![completed(
            "Succeeded",
            "The pod has completed successfully.",
        )],
        "Failed" => vec![completed("Failed", "The pod failed.")],
        _ => Vec::new(),
    };
    Row { cells, conditions }
}

/// Restart count plus the latest `lastState.terminated.finishedAt`.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count = self.count.saturating_add(int_at(status, &["restartCount"]));
        if has_object(status, &["lastState", "terminated"]) {
            let finished = time_at(status, &["lastState", "terminated", "finishedAt"]);
            if finished > self.last {
                self.last = finished;
            }
        }
    }

    /// `5`, or `5 (3m ago)` when the last restart time is known.
    fn text(&self, now: Timestamp) -> String {
        match self.last {
            Some(last) if self.count != 0 => {
                format!("{} ({} ago)", self.count, since(Some(last), now))
            }
            _ => self.count.to_string(),
        }
    }
}

/// The terminated state's reason, or `Signal:n` / `ExitCode:n` without one.
fn terminated_reason(status: &Value) -> String {
    let reason = str_at(status, &["state", "terminated", "reason"]);
    if !reason.is_empty() {
        return reason.to_owned();
    }
    let signal = int_at(status, &["state", "terminated", "signal"]);
    if signal != 0 {
        format!("Signal:{signal}")
    } else {
        let code = int_at(status, &["state", "terminated", "exitCode"]);
        format!("ExitCode:{code}")
    }
}

/// Whether the first condition of `kind` has status `True`.
fn condition_is_true(conditions: &[Value], kind: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// The pod IP: `status.podIP` wins over `status.podIPs`, as in kube's
/// conversion of v1 pods.
fn pod_ip(pod: &Value) -> &str {
    match str_at(pod, &["status", "podIP"]) {
        "" => list_at(pod, &["status", "podIPs"])
            .first()
            .map_or("", |ip| str_at(ip, &["ip"])),
        ip => ip,
    }
}

/// `true/total` over `spec.readinessGates`, or `<none>` without gates.
fn readiness_gates(pod: &Value, conditions: &[Value]) -> String {
    let gates = list_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return NONE.to_owned();
    }
    let met = gates
        .iter()
        .filter(|gate| condition_is_true(conditions, str_at(gate, &["conditionType"])))
        .count();
    format!("{met}/{}", gates.len())
}

fn or_none(value: &str) -> &str {
    if value.is_empty() {
        NONE
    } else {
        value
    }
}

/// The `Completed` row condition kube attaches to finished pods.
fn completed(reason: &str, message: &str) -> Value {
    json!({"type": "Completed", "status": "True", "reason": reason, "message": message})
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{cells, headers};
    use serde_json::{json, Value};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-06-01T11:00:00Z"},
            "spec": spec,
            "status": status,
        })
    }

    fn one_container() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx"}]})
    }

    /// NAME READY STATUS RESTARTS AGE.
    fn short(object: Value) -> Vec<Value> {
        cells("", "Pod", object).into_iter().take(5).collect()
    }

    #[test]
    fn headers_match_kube() {
        assert_eq!(
            headers("", "Pod"),
            [
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED NODE",
                "READINESS GATES"
            ]
        );
    }

    #[test]
    fn running_pod_with_wide_columns() {
        let object = pod(
            json!({"nodeName": "node-1", "containers": [{"name": "app"}]}),
            json!({"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2024-06-01T11:00:05Z"}}}]}),
        );
        assert_eq!(
            cells("", "Pod", object),
            ["p", "1/1", "Running", "0", "60m", "10.0.0.5", "node-1", "<none>", "<none>"]
        );
    }

    #[test]
    fn crash_loop_shows_restarts_with_last_restart_age() {
        let object = pod(
            one_container(),
            json!({"phase": "Running",
                   "containerStatuses": [{"name": "app", "ready": false, "restartCount": 5,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                    "finishedAt": "2024-06-01T11:55:00Z"}}}]}),
        );
        assert_eq!(
            short(object),
            ["p", "0/1", "CrashLoopBackOff", "5 (5m ago)", "60m"]
        );
    }

    #[test]
    fn restarts_without_finish_time_are_a_bare_count() {
        let object = pod(
            one_container(),
            json!({"phase": "Running", "containerStatuses": [{"name": "app", "restartCount": 2,
                   "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert_eq!(short(object), ["p", "0/1", "ContainerCreating", "2", "60m"]);
    }

    #[test]
    fn completed_pod_carries_the_completed_condition() {
        let object = pod(
            one_container(),
            json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "ready": false,
                   "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        assert_eq!(short(object.clone()), ["p", "0/1", "Completed", "0", "60m"]);
        let table = super::super::to_table(
            &super::super::test_support::resource("", "Pod"),
            &[object],
            super::super::IncludeObject::None,
            json!({}),
            super::super::test_support::now(),
        );
        assert_eq!(
            table["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                    "message": "The pod has completed successfully."}])
        );
    }

    #[test]
    fn terminated_without_reason_shows_exit_code_or_signal() {
        let exit = pod(
            one_container(),
            json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                   "state": {"terminated": {"exitCode": 137}}}]}),
        );
        assert_eq!(short(exit)[2], "ExitCode:137");
        let signal = pod(
            one_container(),
            json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                   "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}),
        );
        assert_eq!(short(signal)[2], "Signal:9");
    }

    #[test]
    fn completed_container_beside_a_running_one_is_running_or_not_ready() {
        let status = |ready_condition: &str| {
            json!({"phase": "Running",
                   "conditions": [{"type": "Ready", "status": ready_condition}],
                   "containerStatuses": [
                       {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                       {"name": "b", "ready": true, "state": {"running": {}}}]})
        };
        let spec = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(
            short(pod(spec.clone(), status("True")))[1..3],
            ["1/2", "Running"]
        );
        assert_eq!(short(pod(spec, status("False")))[1..3], ["1/2", "NotReady"]);
    }

    #[test]
    fn init_containers_report_progress_and_failures() {
        let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}],
                          "containers": [{"name": "app"}]});
        let waiting_app =
            json!([{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]);

        let first_done = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [
                       {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                       {"name": "i2", "state": {"running": {}}}],
                   "containerStatuses": waiting_app}),
        );
        assert_eq!(short(first_done)[1..3], ["0/1", "Init:1/2"]);

        let crashing = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [
                       {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
                   "containerStatuses": waiting_app}),
        );
        assert_eq!(short(crashing)[1..4], ["0/1", "Init:CrashLoopBackOff", "3"]);

        let failed = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [
                       {"name": "i1", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
        );
        assert_eq!(short(failed)[2], "Init:Error");

        let failed_no_reason = pod(
            spec.clone(),
            json!({"phase": "Pending",
                   "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 2}}}]}),
        );
        assert_eq!(short(failed_no_reason)[2], "Init:ExitCode:2");

        let pod_initializing = pod(
            spec,
            json!({"phase": "Pending",
                   "initContainerStatuses": [{"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(short(pod_initializing)[2], "Init:0/2");
    }

    #[test]
    fn sidecar_init_containers_count_as_containers() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                          "containers": [{"name": "app"}]});
        let object = pod(
            spec,
            json!({"phase": "Running",
                   "conditions": [{"type": "Initialized", "status": "True"}],
                   "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true,
                       "restartCount": 1, "state": {"running": {}}}],
                   "containerStatuses": [{"name": "app", "ready": true, "restartCount": 4,
                       "state": {"running": {}}}]}),
        );
        assert_eq!(short(object)[1..4], ["2/2", "Running", "5"]);
    }

    #[test]
    fn deletion_shows_terminating_unless_finished_or_node_lost() {
        let mut object = pod(one_container(), json!({"phase": "Running"}));
        object["metadata"]["deletionTimestamp"] = json!("2024-06-01T11:59:00Z");
        assert_eq!(short(object.clone())[2], "Terminating");
        object["status"]["reason"] = json!("NodeLost");
        assert_eq!(short(object.clone())[2], "Unknown");
        object["status"] = json!({"phase": "Succeeded"});
        assert_eq!(short(object)[2], "Succeeded");
    }

    #[test]
    fn status_reason_and_scheduling_gates_override_the_phase() {
        let evicted = pod(
            one_container(),
            json!({"phase": "Failed", "reason": "Evicted"}),
        );
        assert_eq!(short(evicted)[2], "Evicted");
        let gated = pod(
            one_container(),
            json!({"phase": "Pending",
                   "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(short(gated)[2], "SchedulingGated");
        let fresh = pod(one_container(), Value::Null);
        assert_eq!(short(fresh)[1..4], ["0/1", "Pending", "0"]);
    }

    #[test]
    fn wide_columns_fall_back_and_count_readiness_gates() {
        let object = pod(
            json!({"containers": [{"name": "app"}],
                   "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]}),
            json!({"phase": "Pending", "podIPs": [{"ip": "fd00::1"}], "nominatedNodeName": "node-2",
                   "conditions": [{"type": "example.com/a", "status": "True"},
                                  {"type": "example.com/b", "status": "False"}]}),
        );
        assert_eq!(
            cells("", "Pod", object)[5..],
            ["fd00::1", "<none>", "node-2", "1/2"]
        );
    }
}
