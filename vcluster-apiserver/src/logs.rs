//! Container logs (`GET .../pods/<name>/log`): where they come from.
//!
//! An API server stores no logs; kube-apiserver asks the kubelet of the
//! pod's node. This server has no kubelet either, so an embedder plugs in a
//! [`PodLogs`] source in [`crate::server::ApiServerConfig::pod_logs`]: a
//! virtual cluster forwards to the host pod its syncer created, a simulated
//! node makes lines up. The HTTP layer checks the pod and the container
//! first, so a source only sees requests for containers that exist.
//!
//! ```
//! use async_trait::async_trait;
//! use vcluster_apiserver::error::ApiError;
//! use vcluster_apiserver::logs::{LogStream, PodLogRequest, PodLogs};
//!
//! /// Every container says hello once.
//! struct Hello;
//!
//! #[async_trait]
//! impl PodLogs for Hello {
//!     async fn logs(&self, request: PodLogRequest) -> Result<LogStream, ApiError> {
//!         let line = format!("hello from {}\n", request.container);
//!         Ok(Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(line))])))
//!     }
//! }
//! ```

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::error::ApiError;

/// The bytes of a log, as they become available.
pub type LogStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The query of a log request (kube's `PodLogOptions`), already checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// `follow`: keep streaming new lines until the client goes away.
    pub follow: bool,
    /// `previous`: the log of the container's previous instance.
    pub previous: bool,
    /// `timestamps`: prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// `tailLines`: only the last lines.
    pub tail_lines: Option<i64>,
    /// `limitBytes`: stop after this many bytes.
    pub limit_bytes: Option<i64>,
    /// `sinceSeconds`: only lines newer than this.
    pub since_seconds: Option<i64>,
    /// `sinceTime`: only lines newer than this RFC 3339 time.
    pub since_time: Option<String>,
}

/// One log request: which container of which pod, and how.
#[derive(Clone, Debug)]
pub struct PodLogRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The container (named in the request, or the pod's only one).
    pub container: String,
    /// The pod as stored (uid, node, images, status).
    pub pod: Value,
    /// The query.
    pub options: LogOptions,
}

/// A source of container logs.
#[async_trait]
pub trait PodLogs: Send + Sync {
    /// The log of one container. Errors are Kubernetes `Status` errors (a
    /// pod not running yet is a 400, as kube-apiserver says it).
    async fn logs(&self, request: PodLogRequest) -> Result<LogStream, ApiError>;
}
