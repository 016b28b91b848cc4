//! The simulated node's container logs, served by the embedded host API
//! server: no process runs, so each container's log is a few lines saying
//! what the node did with it. With [`crate::logs::HostPodLogs`] on the
//! virtual side this makes `kubectl logs` work end to end in the demo, and
//! answer as a kubelet would for pods that are not running yet.

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use vcluster_apiserver::error::ApiError;
use vcluster_apiserver::logs::{LogStream, PodLogRequest, PodLogs};
use vcluster_simnode::logs::{container_log, LogOptions};

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
        let options = LogOptions {
            follow: request.options.follow,
            previous: request.options.previous,
            timestamps: request.options.timestamps,
            tail_lines: request.options.tail_lines,
            since_seconds: request.options.since_seconds,
            since_time: request.options.since_time.clone(),
        };
        let mut pod = request.pod.clone();
        pod["metadata"]["name"] = request.pod_name.clone().into();
        let log = container_log(&self.node, &pod, &request.container, &options)
            .map_err(|refusal| ApiError::bad_request(refusal.0))?;
        let stream = futures::stream::iter([Ok(Bytes::from(log.text))]);
        Ok(if log.open {
            // Nothing more will come; the log stays open until the client
            // leaves or the server stops, as a quiet container's would.
            stream.chain(futures::stream::pending()).boxed()
        } else {
            stream.boxed()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use vcluster_apiserver::logs::LogOptions as RequestOptions;

    fn request(pod: Value, options: RequestOptions) -> PodLogRequest {
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

    #[tokio::test]
    async fn the_log_source_streams_the_simulated_log_and_refuses_as_a_kubelet() {
        let logs = SimulatedNodeLogs::new("demo-node");
        let running = pod(json!({"running": {"startedAt": "2026-11-25T10:00:00Z"}}));
        let options = RequestOptions {
            tail_lines: Some(1),
            ..RequestOptions::default()
        };
        let chunks: Vec<_> = logs
            .logs(request(running, options))
            .await
            .expect("logs")
            .collect()
            .await;
        let text: String = chunks
            .into_iter()
            .map(|c| String::from_utf8(c.expect("chunk").to_vec()).expect("utf-8"))
            .collect();
        assert_eq!(
            text,
            "no process runs on a simulated node: this is all the output there is\n"
        );
        let mut unbound = pod(json!({"running": {}}));
        unbound["spec"]["nodeName"] = Value::Null;
        let Err(err) = logs.logs(request(unbound, RequestOptions::default())).await else {
            panic!("an unbound pod has no log");
        };
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "pod web-x-default-x-demo does not have a host assigned"
        );
    }
}
