//! Container streams over SPDY/3.1, the transport of older clients, of
//! kube-apiserver towards kubelets, and (tunnelled in WebSocket) of
//! kubectl's port-forward. The client opens one SPDY stream per channel,
//! naming it in a `streamType` header.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::backend::{ContainerStreams, ProcessOptions, StreamTarget};
use crate::negotiate::{V3_CHANNEL, V4_CHANNEL};
use crate::session::{self, ProcessChannels, StatusFormat};

mod conn;
mod frame;
mod headers;

use conn::{Connection, SpdyStream};

/// How long a client has to open the streams it asked for (the kubelet's
/// stream creation timeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves an exec or attach on a connection that switched to SPDY.
pub(crate) async fn serve_process<IO>(
    io: IO,
    protocol: &'static str,
    backend: Arc<dyn ContainerStreams>,
    target: StreamTarget,
    options: ProcessOptions,
    attach: bool,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut connection = Connection::start(io);
    let resizes = options.tty && (protocol == V3_CHANNEL || protocol == V4_CHANNEL);
    let mut expected = vec!["error"];
    if options.stdin {
        expected.push("stdin");
    }
    if options.stdout {
        expected.push("stdout");
    }
    if options.stderr && !options.tty {
        expected.push("stderr");
    }
    if resizes {
        expected.push("resize");
    }
    let mut opened: HashMap<String, SpdyStream> = HashMap::new();
    let all_opened = async {
        while expected.iter().any(|t| !opened.contains_key(*t)) {
            let Some(stream) = connection.streams.recv().await else {
                return false;
            };
            if let Some(kind) = stream.header("streamtype") {
                opened.insert(kind.to_owned(), stream);
            }
        }
        true
    };
    match tokio::time::timeout(STREAM_CREATION_TIMEOUT, all_opened).await {
        Ok(true) => {}
        _ => {
            tracing::debug!(pod = %target.pod_name, "SPDY client did not open its streams");
            connection.finish().await;
            return;
        }
    }
    let mut take = |kind: &str| opened.remove(kind);
    let Some(error) = take("error") else {
        connection.finish().await;
        return;
    };
    let stdin = take("stdin").map(|s| s.inbound);
    let resize = take("resize").map(|s| s.inbound);
    let stdout = take("stdout").map(|s| Box::new(s.out) as Box<dyn session::Outbound>);
    let stderr = take("stderr").map(|s| Box::new(s.out) as Box<dyn session::Outbound>);
    let format = if protocol == V4_CHANNEL {
        StatusFormat::Json
    } else {
        StatusFormat::Text
    };
    let started = if attach {
        backend.attach(&target, &options).await
    } else {
        backend.exec(&target, &options).await
    };
    let channels = ProcessChannels {
        stdin,
        resize,
        stdout,
        stderr,
        error: Box::new(error.out),
        format,
        gone: Box::pin(connection.gone.clone().cancelled_owned()),
    };
    session::run_process(started, channels).await;
    connection.finish().await;
}

/// Serves a port-forward on a connection that switched to SPDY: each pair
/// of `error` and `data` streams with one `requestID` is one forwarded
/// connection to the stream's `port`.
pub(crate) async fn serve_port_forward<IO>(
    io: IO,
    backend: Arc<dyn ContainerStreams>,
    target: StreamTarget,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut connection = Connection::start(io);
    let mut waiting: HashMap<String, SpdyStream> = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    while let Some(stream) = connection.streams.recv().await {
        let Some(request) = stream.header("requestid").map(str::to_owned) else {
            continue;
        };
        let Some(partner) = waiting.remove(&request) else {
            waiting.insert(request, stream);
            continue;
        };
        let (data, error) = if stream.header("streamtype") == Some("data") {
            (stream, partner)
        } else {
            (partner, stream)
        };
        let port = data.header("port").unwrap_or_default().to_owned();
        let backend = backend.clone();
        let target = target.clone();
        forwards.spawn(async move {
            let opened = match port.parse::<u16>() {
                Ok(port) if port > 0 => backend.port_forward(&target, port).await,
                _ => Err(crate::backend::StreamError::bad_request(format!(
                    "invalid port {port:?}"
                ))),
            };
            session::run_port(
                opened,
                data.inbound,
                Box::new(data.out),
                Box::new(error.out),
            )
            .await;
        });
    }
    forwards.abort_all();
    connection.finish().await;
}

#[cfg(test)]
mod tests;
