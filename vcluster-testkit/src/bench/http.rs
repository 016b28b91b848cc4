//! Raw HTTP/1.1 clients of an API server: one keep-alive connection per
//! worker over loopback TCP, or the server's router called in-process as a
//! tower service. Request bodies are prepared before a measurement and
//! responses are only read, not decoded, so the client's own cost stays
//! small next to the server's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{Method, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

use super::stats::Latencies;

/// Any error, with the context of where it happened in its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body of either transport.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// JSON, for creates and updates.
pub const JSON: &str = "application/json";
/// A JSON merge patch.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Where requests go.
#[derive(Clone)]
pub enum Target {
    /// The server's listener on loopback.
    Tcp(SocketAddr),
    /// A TLS listener on loopback (ours with client-certificate auth, or
    /// kube-apiserver), reached as the admin.
    Tls {
        /// The listener.
        addr: SocketAddr,
        /// TLS with the admin's client certificate.
        connector: tokio_rustls::TlsConnector,
        /// The name the server's certificate is checked against.
        name: rustls_pki_types::ServerName<'static>,
    },
    /// The server's router, called in this process (no TCP, no HTTP
    /// parsing): what remains is routing, JSON and storage.
    InProcess(axum::Router),
}

impl Target {
    /// `tcp` or `inprocess`, for reports.
    pub fn transport(&self) -> &'static str {
        match self {
            Target::Tcp(_) => "tcp",
            Target::Tls { .. } => "tls",
            Target::InProcess(_) => "inprocess",
        }
    }

    /// A new client: over TCP (or TLS) a fresh keep-alive connection.
    pub async fn connect(&self) -> Result<Conn, BoxError> {
        let tcp = |addr: SocketAddr| async move {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connecting to {addr}: {e}"))?;
            stream.set_nodelay(true)?;
            Ok::<_, BoxError>(stream)
        };
        match self {
            Target::Tcp(addr) => http1(tcp(*addr).await?, *addr).await,
            Target::Tls {
                addr,
                connector,
                name,
            } => {
                let stream = connector
                    .connect(name.clone(), tcp(*addr).await?)
                    .await
                    .map_err(|e| format!("TLS with {addr}: {e}"))?;
                http1(stream, *addr).await
            }
            Target::InProcess(router) => Ok(Conn::InProcess(router.clone())),
        }
    }
}

/// An HTTP/1.1 client connection over `io` to the server at `addr`.
async fn http1<IO>(io: IO, addr: SocketAddr) -> Result<Conn, BoxError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes.
        let _ = connection.await;
    });
    Ok(Conn::Tcp {
        sender,
        host: addr.to_string(),
    })
}

/// One client of a [`Target`].
pub enum Conn {
    /// One HTTP/1.1 connection: one request at a time.
    Tcp {
        /// The connection's request half.
        sender: SendRequest<Full<Bytes>>,
        /// The `Host` header.
        host: String,
    },
    /// The router.
    InProcess(axum::Router),
}

impl Conn {
    /// Sends one request and returns the response with its body unread
    /// (for watches, whose bodies never end by themselves).
    pub async fn open(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<http::Response<Body>, BoxError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header(ACCEPT, JSON);
        if let Conn::Tcp { host, .. } = self {
            builder = builder.header(HOST, host.as_str());
        }
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body)?;
        match self {
            Conn::Tcp { sender, .. } => {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                Ok(response.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
            }
            Conn::InProcess(router) => {
                let response = router.clone().oneshot(request).await?;
                Ok(response.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
            }
        }
    }

    /// Sends one request, reads the whole response, and fails unless the
    /// status is 2xx (the error then carries the server's message).
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Bytes, BoxError> {
        let response = self.open(method.clone(), path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )
            .into());
        }
        Ok(bytes)
    }

    /// Opens a watch at `path` (with `?watch=true...`); fails unless the
    /// server answers 200.
    pub async fn watch(&mut self, path: &str) -> Result<Body, BoxError> {
        let response = self.open(Method::GET, path, None).await?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            return Err(format!(
                "watch {path}: {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )
            .into());
        }
        Ok(response.into_body())
    }
}

/// Calls `on_line` with every complete line of a streaming body (a watch
/// sends one JSON event per line) until it returns `false` or the body
/// ends.
pub async fn for_each_line(
    mut body: Body,
    mut on_line: impl FnMut(&[u8]) -> bool,
) -> Result<(), BoxError> {
    let mut pending: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let mut rest: &[u8] = &data;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            let keep_going = if pending.is_empty() {
                on_line(&rest[..end])
            } else {
                pending.extend_from_slice(&rest[..end]);
                let keep_going = on_line(&pending);
                pending.clear();
                keep_going
            };
            if !keep_going {
                return Ok(());
            }
            rest = &rest[end + 1..];
        }
        pending.extend_from_slice(rest);
    }
    Ok(())
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The decimal number right after `marker` in `line`, if any.
pub fn number_after(line: &[u8], marker: &[u8]) -> Option<u64> {
    let start = line.windows(marker.len()).position(|w| w == marker)? + marker.len();
    let digits = line[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&line[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// One request, prepared before the clock starts.
pub struct Request {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// A JSON body (content type `content_type`).
    pub body: Option<Bytes>,
    /// The body's content type.
    pub content_type: &'static str,
}

impl Request {
    /// A request without body.
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            body: None,
            content_type: JSON,
        }
    }

    /// A request with a JSON body.
    pub fn json(method: Method, path: impl Into<String>, body: Bytes) -> Self {
        Self {
            method,
            path: path.into(),
            body: Some(body),
            content_type: JSON,
        }
    }
}

/// Elapsed time and per-request latencies of one batch.
pub struct Batch {
    /// When the first request was sent (the clients were connected).
    pub started: Instant,
    /// When each request was sent, in the order of the requests.
    pub sent_at: Vec<Instant>,
    /// From the first request sent to the last answer read.
    pub elapsed: Duration,
    /// Per request, sent -> answer read.
    pub latencies: Latencies,
    /// Response bytes read.
    pub bytes: usize,
}

/// Sends `requests` through `concurrency` clients (over TCP one keep-alive
/// connection each, opened before the clock starts), each taking the next
/// request when its previous one is answered. Every answer must be 2xx.
pub async fn send_all(target: &Target, concurrency: usize, requests: Vec<Request>) -> Batch {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(target.connect().await.expect("connect a bench client"));
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for mut client in clients {
        let requests = requests.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::with_capacity(requests.len() / concurrency + 1);
            let mut sent_at = Vec::with_capacity(requests.len() / concurrency + 1);
            let mut bytes = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    break;
                };
                let sent = Instant::now();
                let body = request.body.clone().map(|b| (request.content_type, b));
                let response = client
                    .call(request.method.clone(), &request.path, body)
                    .await
                    .unwrap_or_else(|e| panic!("bench request failed: {e}"));
                latencies.push(sent.elapsed());
                sent_at.push((i, sent));
                bytes += response.len();
            }
            (latencies, sent_at, bytes)
        }));
    }
    let mut latencies = Latencies::with_capacity(requests.len());
    let mut sent_at = vec![start; requests.len()];
    let mut bytes = 0;
    for task in tasks {
        let (part, part_sent, part_bytes) = task.await.expect("a bench client task panicked");
        latencies.extend(part);
        for (i, at) in part_sent {
            sent_at[i] = at;
        }
        bytes += part_bytes;
    }
    Batch {
        started: start,
        sent_at,
        elapsed: start.elapsed(),
        latencies,
        bytes,
    }
}
