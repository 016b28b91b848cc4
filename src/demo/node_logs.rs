//! The simulated node's container logs, served by the embedded host API
//! server: no process runs, so each container's log is a few lines saying
//! what the node did with it. With [`crate::logs::HostPodLogs`] on the
//! virtual side this makes `kubectl logs` work end to end in the demo, and
//! answer as a kubelet would for pods that are not running yet.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::Value;
use vcluster_apiserver::error::ApiError;
use vcluster_apiserver::logs::{LogStream, PodLogRequest, PodLogs};

/// The log source of one simulated node.
pub struct SimulatedNodeLogs {
    node: String,
}

impl SimulatedNodeLogs {
    /// Logs of the pods bound to the node called `node`.
    pub fn new(node: impl Into<String>) -> Self {
        Self { node: node.into() }
    }
}

#[async_trait]
impl PodLogs for SimulatedNodeLogs {
    async fn logs(&self, request: PodLogRequest) -> Result<LogStream, ApiError> {
        let pod = &request.pod;
        let name = &request.pod_name;
        let container = &request.container;
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if node.is_empty() {
            return Err(ApiError::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        if node != self.node {
            return Err(ApiError::bad_request(format!(
                "pod {name} runs on node {node}, not on simulated node {}",
                self.node
            )));
        }
        if request.options.previous {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        let state = container_state(pod, container).ok_or_else(|| {
            ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ))
        })?;
        let image = container_image(pod, container);
        let (started, exit) = match (state.get("running"), state.get("terminated")) {
            (Some(running), _) => (text(running, "startedAt"), None),
            (None, Some(terminated)) => (
                text(terminated, "startedAt"),
                Some(format!(
                    "container {container} exited with code {} ({})",
                    terminated.get("exitCode").and_then(Value::as_i64).unwrap_or(0),
                    text(terminated, "reason"),
                )),
            ),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                )))
            }
        };
        let running = exit.is_none();
        let mut lines = vec![
            format!("simulated node {node} started container {container} (image {image})"),
            "no process runs on a simulated node: this is all the output there is".to_owned(),
        ];
        lines.extend(exit);
        if !newer_than_since(&started, &request) {
            lines.clear();
        }
        if let Some(tail) = request.options.tail_lines {
            let keep = usize::try_from(tail).unwrap_or(0);
            lines.drain(..lines.len().saturating_sub(keep));
        }
        let text: String = lines
            .iter()
            .map(|line| {
                if request.options.timestamps {
                    format!("{started} {line}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let log = futures::stream::iter([Ok(Bytes::from(text))]);
        Ok(if request.options.follow && running {
            // Nothing more will come; the log stays open until the client
            // leaves or the server stops, as a quiet container's would.
            log.chain(futures::stream::pending()).boxed()
        } else {
            log.boxed()
        })
    }
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
fn newer_than_since(started: &str, request: &PodLogRequest) -> bool {
    let Ok(started) = started.parse::<Timestamp>() else {
        return true;
    };
    let options = &request.options;
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
    use vcluster_apiserver::logs::LogOptions;

    fn request(pod: Value, options: LogOptions) -> PodLogRequest {
        PodLogRequest {
            namespace: "vcluster-demo".into(),
            pod_name: "web-x-default-x-demo".into(),
            container: "web".into(),
            pod,
            options,
        }
    }

    fn pod(state: Value) -> Value {
        json!({
            "spec": {"nodeName": "demo-node", "containers": [{"name": "web", "image": "nginx"}]},
            "status": {"containerStatuses": [{"name": "web", "state": state}]},
        })
    }

    async fn read(stream: LogStream) -> String {
        let chunks: Vec<_> = stream.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.expect("chunk").to_vec()).expect("utf-8"))
            .collect()
    }

    #[tokio::test]
    async fn a_running_container_says_what_the_node_did() {
        let logs = SimulatedNodeLogs::new("demo-node");
        let running = pod(json!({"running": {"startedAt": "2026-11-25T10:00:00Z"}}));
        let out = read(
            logs.logs(request(running.clone(), LogOptions::default()))
                .await
                .expect("logs"),
        )
        .await;
        assert_eq!(
            out,
            "simulated node demo-node started container web (image nginx)\n\
             no process runs on a simulated node: this is all the output there is\n"
        );
        let options = LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            ..LogOptions::default()
        };
        let out = read(logs.logs(request(running, options)).await.expect("logs")).await;
        assert_eq!(
            out,
            "2026-11-25T10:00:00Z no process runs on a simulated node: this is all the output there is\n"
        );
        let done = pod(
            json!({"terminated": {"startedAt": "2026-11-25T10:00:00Z", "exitCode": 0, "reason": "Completed"}}),
        );
        let out = read(
            logs.logs(request(done, LogOptions::default()))
                .await
                .expect("logs"),
        )
        .await;
        assert!(
            out.ends_with("container web exited with code 0 (Completed)\n"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn pods_not_running_here_are_refused_as_a_kubelet_would() {
        let logs = SimulatedNodeLogs::new("demo-node");
        let mut unbound = pod(json!({"running": {}}));
        unbound["spec"]["nodeName"] = Value::Null;
        let Err(err) = logs.logs(request(unbound, LogOptions::default())).await else {
            panic!("an unbound pod has no log");
        };
        assert_eq!(
            err.message,
            "pod web-x-default-x-demo does not have a host assigned"
        );
        let waiting = pod(json!({"waiting": {"reason": "ContainerCreating"}}));
        let Err(err) = logs.logs(request(waiting, LogOptions::default())).await else {
            panic!("a waiting container has no log");
        };
        assert!(
            err.message.contains("is waiting to start"),
            "{}",
            err.message
        );
    }
}
