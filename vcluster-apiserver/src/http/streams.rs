//! `pods/exec`, `pods/attach` and `pods/portforward`: checks the pod and
//! the container as kube-apiserver does, answers the upgrade, and hands
//! the connection to the configured
//! [`ContainerStreams`](vcluster_streams::ContainerStreams) backend
//! through [`vcluster_streams::serve`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tracing::Instrument;
use vcluster_streams::{
    negotiate, parse_ports, ProcessOptions, QueryStyle, StreamError, StreamKind, StreamRequest,
    StreamTarget,
};

use super::ApiState;
use crate::error::ApiError;
use crate::registry::ObjectAddress;
use crate::resources::ResourceInfo;

/// Which stream a request opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Subresource {
    Exec,
    Attach,
    PortForward,
}

impl Subresource {
    /// The subresource named by a path segment.
    pub(super) fn named(name: &str) -> Option<Self> {
        match name {
            "exec" => Some(Self::Exec),
            "attach" => Some(Self::Attach),
            "portforward" => Some(Self::PortForward),
            _ => None,
        }
    }
}

/// Serves one stream request.
pub(super) async fn pod_stream(
    state: &Arc<ApiState>,
    pods: Arc<ResourceInfo>,
    namespace: &str,
    name: &str,
    subresource: Subresource,
    mut request: Request,
) -> Result<Response, ApiError> {
    // kube-apiserver's order: the pod, the container, the node, the
    // upgrade; the options are the kubelet's to refuse, after that.
    let query = request.uri().query().map(str::to_owned);
    let address = ObjectAddress {
        resource: pods,
        namespace: Some(namespace.to_owned()),
        name: name.to_owned(),
    };
    let pod = state.registry.get(&address).await?;
    let container = match subresource {
        Subresource::PortForward => String::new(),
        _ => {
            let requested = ProcessOptions::requested_container(query.as_deref());
            super::logs::choose_container(&pod, name, requested.as_deref())?
        }
    };
    if node_name(&pod).is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let kind = match subresource {
        Subresource::PortForward => StreamKind::PortForward,
        _ => StreamKind::Process,
    };
    let negotiated = negotiate(request.headers(), kind).map_err(api_error)?;
    let stream_request = match subresource {
        Subresource::PortForward => {
            StreamRequest::PortForward(parse_ports(query.as_deref()).map_err(api_error)?)
        }
        Subresource::Exec | Subresource::Attach => {
            let (options, _) = ProcessOptions::from_query(query.as_deref(), QueryStyle::ApiServer)
                .map_err(api_error)?;
            if subresource == Subresource::Exec {
                if options.command.is_empty() {
                    return Err(ApiError::bad_request(
                        "you must specify at least one command for the container",
                    ));
                }
                StreamRequest::Exec(options)
            } else {
                StreamRequest::Attach(options)
            }
        }
    };
    let Some(backend) = state.container_streams.clone() else {
        return Err(ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "this API server has no container runtime to stream from (no kubelet); \
             see ApiServerConfig::container_streams",
        ));
    };
    let target = StreamTarget {
        namespace: namespace.to_owned(),
        pod_name: name.to_owned(),
        container,
        pod,
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let shutdown = state.shutdown.clone();
    let span = tracing::info_span!("pod_stream", namespace, pod = name, ?subresource);
    let response = negotiated.response();
    tokio::spawn(
        async move {
            let io = match upgrade.await {
                Ok(io) => TokioIo::new(io),
                Err(err) => {
                    tracing::debug!(error = %err, "stream upgrade failed");
                    return;
                }
            };
            tokio::select! {
                () = vcluster_streams::serve(io, negotiated, backend, target, stream_request) => {}
                () = shutdown.cancelled() => {}
            }
        }
        .instrument(span),
    );
    let (parts, ()) = response.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

fn node_name(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A stream error as the `Status` the client reads.
fn api_error(err: StreamError) -> ApiError {
    let code = http::StatusCode::from_u16(err.code).unwrap_or(http::StatusCode::BAD_REQUEST);
    let reason = match err.code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    ApiError::new(code, reason, err.message)
}
