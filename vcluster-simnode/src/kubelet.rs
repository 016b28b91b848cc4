//! The simulated node's kubelet endpoint: the part of the kubelet API a
//! real kube-apiserver calls for `kubectl logs`
//! (`GET /containerLogs/{namespace}/{pod}/{container}`) and for `kubectl
//! exec`, `attach` and `port-forward` (`/exec/...`, `/attach/...`,
//! `/portForward/{namespace}/{pod}`, upgraded to SPDY or WebSocket and
//! served by [`crate::SimulatedStreams`]), over HTTPS with a
//! self-signed certificate (kube-apiserver verifies kubelets only when told
//! to). The node advertises it in `status.daemonEndpoints`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::logs::{container_log, LogOptions};

type Body = BoxBody<Bytes, Infallible>;

/// Why the endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// Its certificate could not be made.
    #[error("the kubelet endpoint's certificate: {0}")]
    Certificate(String),
}

/// A TLS acceptor with a fresh self-signed certificate for `address`.
pub(crate) fn acceptor(
    address: std::net::IpAddr,
    node: &str,
) -> Result<tokio_rustls::TlsAcceptor, KubeletError> {
    let failed = |e: String| KubeletError::Certificate(e);
    let key = rcgen::KeyPair::generate().map_err(|e| failed(e.to_string()))?;
    let mut params =
        rcgen::CertificateParams::new(vec![node.to_owned()]).map_err(|e| failed(e.to_string()))?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(address));
    let cert = params
        .self_signed(&key)
        .map_err(|e| failed(e.to_string()))?;
    let der_key = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der_key)
        .map_err(|e| failed(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves the endpoint on `listener` until `cancel` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    node: String,
    client: kube::Client,
    streams: Arc<crate::SimulatedStreams>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (acceptor, node, client, streams, cancel) = (
            acceptor.clone(),
            node.clone(),
            client.clone(),
            streams.clone(),
            cancel.clone(),
        );
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let stop = cancel.clone();
            let service = service_fn(move |request| {
                let (node, client, streams, cancel) = (
                    node.clone(),
                    client.clone(),
                    streams.clone(),
                    cancel.clone(),
                );
                async move { Ok::<_, Infallible>(handle(request, &node, client, streams, cancel).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response
}

async fn handle(
    request: Request<Incoming>,
    node: &str,
    client: kube::Client,
    streams: Arc<crate::SimulatedStreams>,
    cancel: CancellationToken,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [verb @ ("exec" | "attach"), namespace, pod, container] => {
            let (namespace, pod, container) = (
                namespace.to_string(),
                pod.to_string(),
                container.to_string(),
            );
            let kind = if *verb == "exec" {
                Stream::Exec
            } else {
                Stream::Attach
            };
            return stream(
                request, client, streams, cancel, kind, &namespace, &pod, container,
            )
            .await;
        }
        ["portForward", namespace, pod] => {
            let (namespace, pod) = (namespace.to_string(), pod.to_string());
            return stream(
                request,
                client,
                streams,
                cancel,
                Stream::PortForward,
                &namespace,
                &pod,
                String::new(),
            )
            .await;
        }
        _ => {}
    }
    let ["containerLogs", namespace, pod, container] = parts.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            format!("{path}: a simulated node serves container logs and streams only"),
        );
    };
    let options = log_options(request.uri().query().unwrap_or_default());
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let pod = match pods.get_opt(pod).await {
        Ok(Some(pod)) => serde_json::to_value(pod).unwrap_or_default(),
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod {namespace}/{pod} not found"),
            )
        }
        Err(err) => return text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    match container_log(node, &pod, container, &options) {
        Ok(log) if log.open => {
            // Nothing more will come; the stream stays open, as a quiet
            // container's does, until the client or the node goes.
            let first = futures::stream::iter([Ok(Frame::data(Bytes::from(log.text)))]);
            let rest = futures::stream::pending().take_until(cancel.cancelled_owned());
            Response::new(BodyExt::boxed(StreamBody::new(first.chain(rest))))
        }
        Ok(log) => text(StatusCode::OK, log.text),
        Err(refusal) => text(StatusCode::BAD_REQUEST, refusal.0),
    }
}

/// The stream a kubelet request opens.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Exec,
    Attach,
    PortForward,
}

/// Serves `/exec`, `/attach` and `/portForward`: the pod is read from the
/// cluster, the request upgraded, and the connection handed to the
/// simulated streams.
#[allow(clippy::too_many_arguments)]
async fn stream(
    mut request: Request<Incoming>,
    client: kube::Client,
    streams: Arc<crate::SimulatedStreams>,
    cancel: CancellationToken,
    kind: Stream,
    namespace: &str,
    pod_name: &str,
    container: String,
) -> Response<Body> {
    use vcluster_streams::{ProcessOptions, QueryStyle, StreamRequest, StreamTarget};
    let query = request.uri().query().map(str::to_owned);
    let stream_request = match kind {
        Stream::PortForward => match vcluster_streams::parse_ports(query.as_deref()) {
            Ok(ports) => StreamRequest::PortForward(ports),
            Err(err) => return text(StatusCode::BAD_REQUEST, err.message),
        },
        Stream::Exec | Stream::Attach => {
            match ProcessOptions::from_query(query.as_deref(), QueryStyle::Kubelet) {
                Ok((options, _)) if kind == Stream::Exec => StreamRequest::Exec(options),
                Ok((options, _)) => StreamRequest::Attach(options),
                Err(err) => return text(StatusCode::BAD_REQUEST, err.message),
            }
        }
    };
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let pod = match pods.get_opt(pod_name).await {
        Ok(Some(pod)) => serde_json::to_value(pod).unwrap_or_default(),
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod {namespace}/{pod_name} not found"),
            )
        }
        Err(err) => return text(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    let negotiated = match vcluster_streams::negotiate(request.headers(), stream_request.kind()) {
        Ok(negotiated) => negotiated,
        Err(err) => {
            let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::BAD_REQUEST);
            return text(code, err.message);
        }
    };
    let target = StreamTarget {
        namespace: namespace.to_owned(),
        pod_name: pod_name.to_owned(),
        container,
        pod,
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let response = negotiated.response();
    let backend: Arc<dyn vcluster_streams::ContainerStreams> = streams;
    tokio::spawn(async move {
        let Ok(io) = upgrade.await else { return };
        tokio::select! {
            () = vcluster_streams::serve(TokioIo::new(io), negotiated, backend, target, stream_request) => {}
            () = cancel.cancelled() => {}
        }
    });
    let (parts, ()) = response.into_parts();
    Response::from_parts(parts, Full::new(Bytes::new()).boxed())
}

/// The log query a kube-apiserver forwards.
fn log_options(query: &str) -> LogOptions {
    let mut options = LogOptions::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "follow" => options.follow = value == "true",
            "previous" => options.previous = value == "true",
            "timestamps" => options.timestamps = value == "true",
            "tailLines" => options.tail_lines = value.parse().ok(),
            "sinceSeconds" => options.since_seconds = value.parse().ok(),
            "sinceTime" => options.since_time = Some(value.replace("%3A", ":").replace("%3a", ":")),
            _ => {}
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_query_becomes_log_options() {
        let options = log_options(
            "follow=true&tailLines=5&timestamps=true&sinceTime=2026-01-02T03%3A04%3A05Z",
        );
        assert_eq!(
            options,
            LogOptions {
                follow: true,
                timestamps: true,
                tail_lines: Some(5),
                since_time: Some("2026-01-02T03:04:05Z".into()),
                ..LogOptions::default()
            }
        );
        assert_eq!(log_options(""), LogOptions::default());
    }
}
