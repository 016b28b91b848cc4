//! Kubernetes container streams, server side: `pods/exec`, `pods/attach`
//! and `pods/portforward` as kube-apiserver and the kubelet serve them.
//!
//! A client upgrades its HTTP request to WebSocket (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`, port-forward's channels, or port-forward's SPDY
//! tunnelled in WebSocket, as kubectl 1.31+ sends it) or to SPDY/3.1 (older
//! clients, and kube-apiserver talking to a kubelet). This crate
//! [`negotiate`]s the upgrade, then [`serve`]s the upgraded connection,
//! moving bytes between the client and a [`ContainerStreams`] backend:
//! a proxy to a host pod, a simulated node, anything that runs processes
//! and opens ports.
//!
//! The HTTP server stays the embedder's: it checks the request (the pod,
//! the container, who may exec), answers with
//! [`Negotiated::response`]'s `101`, and hands the upgraded connection
//! here.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use vcluster_streams::{
//!     ContainerStreams, Exit, PortConnection, Process, ProcessOptions, StreamError,
//!     StreamTarget,
//! };
//!
//! /// Every command prints its own name.
//! struct Echo;
//!
//! #[async_trait]
//! impl ContainerStreams for Echo {
//!     async fn exec(&self, _: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
//!         let out = format!("{}\n", o.command.join(" ")).into_bytes();
//!         Ok(Process {
//!             stdin: None,
//!             stdout: Some(Box::pin(std::io::Cursor::new(out))),
//!             stderr: None,
//!             resize: None,
//!             exit: Box::pin(async { Exit::Success }),
//!         })
//!     }
//!     async fn attach(&self, t: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
//!         self.exec(t, o).await
//!     }
//!     async fn port_forward(&self, _: &StreamTarget, port: u16) -> Result<PortConnection, StreamError> {
//!         Err(StreamError::bad_request(format!("nothing listens on {port}")))
//!     }
//! }
//!
//! // In an HTTP handler, with `request: http::Request<_>` upgraded by hyper:
//! // let negotiated = vcluster_streams::negotiate(request.headers(), StreamKind::Process)?;
//! // spawn(serve(upgraded, negotiated, Arc::new(Echo), target, StreamRequest::Exec(options)));
//! // return negotiated.response();
//! let _backend: Arc<dyn ContainerStreams> = Arc::new(Echo);
//! ```

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

mod backend;
mod negotiate;
mod options;
mod session;
mod spdy;
mod websocket;

pub use backend::{
    ContainerStreams, Duplex, Exit, PortConnection, Process, ProcessInput, ProcessOptions,
    ProcessOutput, StreamError, StreamTarget, TerminalSize,
};
pub use negotiate::{negotiate, Negotiated, StreamKind, Transport};
pub use options::{parse_ports, QueryStyle};

/// What a stream request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamRequest {
    /// Run a command.
    Exec(ProcessOptions),
    /// Attach to the container's process.
    Attach(ProcessOptions),
    /// Forward these ports (WebSocket clients name them in the query; SPDY
    /// clients name one per stream).
    PortForward(Vec<u16>),
}

impl StreamRequest {
    /// The kind, for [`negotiate`].
    pub fn kind(&self) -> StreamKind {
        match self {
            Self::Exec(_) | Self::Attach(_) => StreamKind::Process,
            Self::PortForward(_) => StreamKind::PortForward,
        }
    }
}

/// Serves an upgraded connection until the stream ends: the process
/// exits, the forwarded connections close, or the client goes away.
pub async fn serve<IO>(
    io: IO,
    negotiated: Negotiated,
    backend: Arc<dyn ContainerStreams>,
    target: StreamTarget,
    request: StreamRequest,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let protocol = negotiated.protocol;
    match (negotiated.transport, request) {
        (Transport::WebSocket { .. }, StreamRequest::PortForward(_))
            if negotiated_tunnel(protocol) =>
        {
            let ws = websocket::accept(io).await;
            let spdy = websocket::tunnel(ws);
            spdy::serve_port_forward(spdy, backend, target).await;
        }
        (Transport::WebSocket { .. }, StreamRequest::PortForward(ports)) => {
            let ws = websocket::accept(io).await;
            websocket::serve_port_forward(ws, backend, target, ports).await;
        }
        (Transport::WebSocket { .. }, StreamRequest::Exec(options)) => {
            let ws = websocket::accept(io).await;
            websocket::serve_process(ws, protocol, backend, target, options, false).await;
        }
        (Transport::WebSocket { .. }, StreamRequest::Attach(options)) => {
            let ws = websocket::accept(io).await;
            websocket::serve_process(ws, protocol, backend, target, options, true).await;
        }
        (Transport::Spdy, StreamRequest::PortForward(_)) => {
            spdy::serve_port_forward(io, backend, target).await;
        }
        (Transport::Spdy, StreamRequest::Exec(options)) => {
            spdy::serve_process(io, protocol, backend, target, options, false).await;
        }
        (Transport::Spdy, StreamRequest::Attach(options)) => {
            spdy::serve_process(io, protocol, backend, target, options, true).await;
        }
    }
}

fn negotiated_tunnel(protocol: &str) -> bool {
    protocol == negotiate::SPDY_TUNNEL
}
