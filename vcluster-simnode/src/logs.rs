//! What a simulated node's containers "logged": no process runs, so each
//! container's log is a few lines saying what the node did with it,
//! answered as a kubelet answers (the same refusals for a pod that is not
//! here or a container that has not started).
//!
//! Served two ways: by an embedded API server's log source (the demo's),
//! and by the node's kubelet endpoint (the `kubelet` module), which a real
//! kube-apiserver calls for `kubectl logs`.

use jiff::Timestamp;
use serde_json::Value;

/// How a log is asked for (`pods/log`'s query, as the kubelet gets it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open for new lines.
    pub follow: bool,
    /// The previous instance's log.
    pub previous: bool,
    /// Prefix each line with its time.
    pub timestamps: bool,
    /// Only the last lines.
    pub tail_lines: Option<i64>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Only lines newer than this RFC 3339 time.
    pub since_time: Option<String>,
}

/// A container's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerLog {
    /// All of it (it never grows).
    pub text: String,
    /// Whether a follower should stay connected: the container still
    /// runs, and a quiet container's log stays open.
    pub open: bool,
}

/// Why there is no log, in a kubelet's words (a client error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogRefusal(pub String);

/// The log of `container` of `pod` (JSON, as stored) on node `node`.
pub fn container_log(
    node: &str,
    pod: &Value,
    container: &str,
    options: &LogOptions,
) -> Result<ContainerLog, LogRefusal> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bound_to = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if bound_to.is_empty() {
        return Err(LogRefusal(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    if bound_to != node {
        return Err(LogRefusal(format!(
            "pod {name} runs on node {bound_to}, not on simulated node {node}"
        )));
    }
    if options.previous {
        return Err(LogRefusal(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        )));
    }
    let waiting = || {
        LogRefusal(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        ))
    };
    let state = container_state(pod, container).ok_or_else(waiting)?;
    let image = container_image(pod, container);
    let (started, exit) = match (state.get("running"), state.get("terminated")) {
        (Some(running), _) => (text(running, "startedAt"), None),
        (None, Some(terminated)) => (
            text(terminated, "startedAt"),
            Some(format!(
                "container {container} exited with code {} ({})",
                terminated
                    .get("exitCode")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                text(terminated, "reason"),
            )),
        ),
        _ => return Err(waiting()),
    };
    let open = options.follow && exit.is_none();
    let mut lines = vec![
        format!("simulated node {node} started container {container} (image {image})"),
        "no process runs on a simulated node: this is all the output there is".to_owned(),
    ];
    lines.extend(exit);
    if !newer_than_since(&started, options) {
        lines.clear();
    }
    if let Some(tail) = options.tail_lines {
        let keep = usize::try_from(tail).unwrap_or(0);
        lines.drain(..lines.len().saturating_sub(keep));
    }
    let text = lines
        .iter()
        .map(|line| {
            if options.timestamps {
                format!("{started} {line}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    Ok(ContainerLog { text, open })
}

/// The state of a container (or init container) from the pod's status.
fn container_state<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|list| pod.pointer(&format!("/status/{list}"))?.as_array())
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))?
        .get("state")
}

fn container_image(pod: &Value, container: &str) -> String {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|list| pod.pointer(&format!("/spec/{list}"))?.as_array())
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .map(|c| text(c, "image"))
        .unwrap_or_default()
}

fn text(object: &Value, field: &str) -> String {
    object
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether lines written at `started` pass `sinceSeconds` / `sinceTime`.
fn newer_than_since(started: &str, options: &LogOptions) -> bool {
    let Ok(started) = started.parse::<Timestamp>() else {
        return true;
    };
    if let Some(seconds) = options.since_seconds {
        let cutoff = Timestamp::now().as_second().saturating_sub(seconds);
        return started.as_second() >= cutoff;
    }
    if let Some(since) = options.since_time.as_deref() {
        if let Ok(since) = since.parse::<Timestamp>() {
            return started >= since;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(state: Value) -> Value {
        json!({
            "metadata": {"name": "web-x-default-x-demo"},
            "spec": {"nodeName": "demo-node", "containers": [{"name": "web", "image": "nginx"}]},
            "status": {"containerStatuses": [{"name": "web", "state": state}]},
        })
    }

    #[test]
    fn a_running_container_says_what_the_node_did() {
        let running = pod(json!({"running": {"startedAt": "2026-11-25T10:00:00Z"}}));
        let log =
            container_log("demo-node", &running, "web", &LogOptions::default()).expect("a log");
        assert_eq!(
            log.text,
            "simulated node demo-node started container web (image nginx)\n\
             no process runs on a simulated node: this is all the output there is\n"
        );
        assert!(!log.open, "not following");
        let options = LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            follow: true,
            ..LogOptions::default()
        };
        let log = container_log("demo-node", &running, "web", &options).expect("a log");
        assert_eq!(
            log.text,
            "2026-11-25T10:00:00Z no process runs on a simulated node: this is all the output there is\n"
        );
        assert!(log.open, "a follower of a running container stays");
        let done = pod(
            json!({"terminated": {"startedAt": "2026-11-25T10:00:00Z", "exitCode": 0, "reason": "Completed"}}),
        );
        let log = container_log("demo-node", &done, "web", &options).expect("a log");
        assert!(
            log.text
                .ends_with("container web exited with code 0 (Completed)\n"),
            "{}",
            log.text
        );
        assert!(!log.open, "a finished container's log ends");
    }

    #[test]
    fn pods_not_running_here_are_refused_as_a_kubelet_would() {
        let mut unbound = pod(json!({"running": {}}));
        unbound["spec"]["nodeName"] = Value::Null;
        assert_eq!(
            container_log("demo-node", &unbound, "web", &LogOptions::default()),
            Err(LogRefusal(
                "pod web-x-default-x-demo does not have a host assigned".into()
            ))
        );
        let elsewhere = pod(json!({"running": {}}));
        assert!(container_log("other", &elsewhere, "web", &LogOptions::default()).is_err());
        let waiting = pod(json!({"waiting": {"reason": "ContainerCreating"}}));
        let Err(refusal) = container_log("demo-node", &waiting, "web", &LogOptions::default())
        else {
            panic!("a waiting container has no log");
        };
        assert!(refusal.0.contains("is waiting to start"), "{refusal}");
    }
}
