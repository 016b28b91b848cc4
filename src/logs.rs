//! `kubectl logs` in a virtual cluster: the virtual API server has no
//! kubelet, but the host pod the syncer made of each virtual pod does, so
//! [`HostPodLogs`] answers a virtual `pods/log` request with the log of
//! that host pod, as vCluster does.
//!
//! It lives in this facade because it joins the API server (the
//! [`PodLogs`] trait) with the host side of the syncer's translation; the
//! syncer itself never depends on the API server.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::AsyncReadExt;
use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use vcluster_apiserver::error::ApiError;
use vcluster_apiserver::logs::{LogStream, PodLogRequest, PodLogs};
use vcluster_core::{Translator, VirtualKey};

/// How much of a host log is read at a time.
const CHUNK: usize = 16 * 1024;

/// Serves virtual pods' logs from their host pods.
pub struct HostPodLogs {
    host: kube::Client,
    translator: Arc<dyn Translator>,
}

impl HostPodLogs {
    /// Logs from the host behind `host`, with the names `translator` gives
    /// virtual pods there (the syncer's translator).
    pub fn new(host: kube::Client, translator: Arc<dyn Translator>) -> Self {
        Self { host, translator }
    }
}

#[async_trait]
impl PodLogs for HostPodLogs {
    async fn logs(&self, request: PodLogRequest) -> Result<LogStream, ApiError> {
        let key = VirtualKey::namespaced(request.namespace.as_str(), request.pod_name.as_str());
        let host_key = self.translator.host_key(&key).map_err(|e| {
            ApiError::bad_request(format!(
                "pod {} has no name on the host: {e}",
                request.pod_name
            ))
        })?;
        let options = &request.options;
        let since_time =
            match &options.since_time {
                Some(text) => Some(text.parse().map_err(|e| {
                    ApiError::bad_request(format!("invalid sinceTime {text:?}: {e}"))
                })?),
                None => None,
            };
        let params = LogParams {
            container: Some(request.container.clone()),
            follow: options.follow,
            limit_bytes: options.limit_bytes,
            pretty: false,
            previous: options.previous,
            since_seconds: options.since_seconds,
            since_time,
            tail_lines: options.tail_lines,
            timestamps: options.timestamps,
        };
        let api: Api<Pod> =
            Api::namespaced(self.host.clone(), host_key.namespace().unwrap_or_default());
        let reader = api
            .log_stream(host_key.name(), &params)
            .await
            .map_err(|e| host_error(&request.pod_name, e))?;
        let reader = Box::pin(reader);
        let chunks = futures::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            let mut buf = vec![0u8; CHUNK];
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(reader)))
                }
                Err(err) => Some((Err(err), None)),
            }
        });
        Ok(Box::pin(chunks))
    }
}

/// The host's refusal, told from the tenant's side.
fn host_error(pod: &str, err: kube::Error) -> ApiError {
    match err {
        kube::Error::Api(status) if status.code == 404 => ApiError::bad_request(format!(
            "pod {pod} is not running on the host yet (it has no host copy)"
        )),
        // The host's own words (a container still starting, a bad option).
        kube::Error::Api(status) if status.code == 400 => ApiError::bad_request(status.message),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("the host cluster did not give the log of pod {pod}: {other}"),
        ),
    }
}
