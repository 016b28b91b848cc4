//! A TCP proxy on loopback in front of an API server (ours, or the real
//! kube-apiserver, to which it speaks TLS as the admin) that injects the
//! faults a network and a failing server cause, switched at any time by
//! the test: delays, 500s, cut connections, blackholes, stalled watches.
//! Robustness scenarios put it between a component and its API server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a [`FaultProxy`] does to the traffic it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Forward, holding every chunk the client sends for this long.
    Delay(Duration),
    /// Forward, holding requests whose request line contains the string
    /// (e.g. `/pods`) for this long.
    DelayPath(&'static str, Duration),
    /// Cut every open connection (mid-request if one is in flight); answer
    /// each new request with HTTP 500 and a `metav1.Status`, then close.
    Error500,
    /// Cut every open connection; close new ones after the first bytes of
    /// their request, before any answer.
    Drop,
    /// Blackhole: open and new connections carry no more bytes, without
    /// being closed; when the fault ends they are closed.
    Hang,
    /// Like `Hang`, but the connections it catches stay dead after the
    /// fault ends (a flow the network dropped: no FIN, no RST, ever); only
    /// new connections work again.
    Blackhole,
    /// Watches lag: nothing more reaches or leaves a watch request until
    /// the fault ends (then everything held back is delivered); every
    /// other request works.
    StallWatches,
}

impl Fault {
    fn breaks_connections(self) -> bool {
        matches!(
            self,
            Fault::Error500 | Fault::Drop | Fault::Hang | Fault::Blackhole
        )
    }
}

/// Where a [`FaultProxy`] forwards to.
#[derive(Clone)]
pub enum Upstream {
    /// Our API server, plain HTTP.
    Plain(SocketAddr),
    /// The real kube-apiserver: the proxy speaks TLS to it as the admin,
    /// and plain HTTP to its own clients (like `kubectl proxy`), so every
    /// fault works on the requests it can read.
    Tls {
        /// kube-apiserver's address.
        addr: SocketAddr,
        /// TLS as the admin (see [`crate::pki::ClusterPki::admin_tls_connector`]).
        connector: tokio_rustls::TlsConnector,
        /// The name its serving certificate is checked against.
        name: rustls_pki_types::ServerName<'static>,
    },
}

/// A connection to the upstream, plain or TLS.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

impl Upstream {
    async fn connect(&self) -> std::io::Result<Box<dyn Connection>> {
        match self {
            Upstream::Plain(addr) => {
                let stream = TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(stream))
            }
            Upstream::Tls {
                addr,
                connector,
                name,
            } => {
                let stream = TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                Ok(Box::new(connector.connect(name.clone(), stream).await?))
            }
        }
    }
}

/// A TCP proxy on loopback in front of an API server that injects faults:
/// the test switches between [`Fault`]s at any time.
pub struct FaultProxy {
    /// `http://127.0.0.1:port` of the proxy.
    pub url: String,
    fault: watch::Sender<Fault>,
    faults: Arc<AtomicUsize>,
    shutdown: CancellationToken,
}

impl FaultProxy {
    /// A proxy to our API server at `upstream`, forwarding until told
    /// otherwise.
    pub async fn start(upstream: SocketAddr) -> Self {
        Self::start_to(Upstream::Plain(upstream)).await
    }

    /// A proxy to `upstream`, forwarding until told otherwise.
    pub async fn start_to(upstream: Upstream) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let (fault, receiver) = watch::channel(Fault::None);
        let faults = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (counter, stop) = (faults.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((socket, _)) = accepted else { continue };
                let _ = socket.set_nodelay(true);
                tokio::spawn(proxy_connection(
                    socket,
                    upstream.clone(),
                    receiver.clone(),
                    counter.clone(),
                    stop.clone(),
                ));
            }
        });
        Self {
            url,
            fault,
            faults,
            shutdown,
        }
    }

    /// Switches the fault (applies to open connections at once).
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Connections that met a fault (answered 500, cut or blackholed).
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::Relaxed)
    }

    /// A client that talks through the proxy.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.url.parse().expect("proxy URL")))
            .expect("a client of the proxy")
    }

    /// A client through the proxy whose reads time out: without one, a
    /// request that picks a pooled connection the network dropped waits
    /// forever (kube-rs sets no read timeout by default).
    pub fn client_with_read_timeout(&self, timeout: Duration) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().expect("url"));
        config.read_timeout = Some(timeout);
        kube::Client::try_from(config).expect("client")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits until the fault is no longer `current` (or the proxy stops).
async fn fault_changes(fault: &mut watch::Receiver<Fault>, current: Fault) {
    loop {
        if *fault.borrow_and_update() != current {
            return;
        }
        if fault.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits until a fault that breaks connections begins.
async fn breaking_fault(fault: &mut watch::Receiver<Fault>) -> Fault {
    loop {
        if fault.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let now = *fault.borrow_and_update();
        if now.breaks_connections() {
            return now;
        }
    }
}

async fn proxy_connection(
    mut client: TcpStream,
    upstream: Upstream,
    mut fault: watch::Receiver<Fault>,
    faults: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    let current = *fault.borrow_and_update();
    match current {
        Fault::Error500 => {
            faults.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = answer_500(&mut client) => {}
                _ = shutdown.cancelled() => {}
            }
            return;
        }
        Fault::Drop => {
            faults.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf)).await;
            return; // dropped with the rest of the request unread: a reset
        }
        Fault::Hang | Fault::Blackhole => {
            faults.fetch_add(1, Ordering::Relaxed);
            hold(&mut fault, current, &shutdown).await;
            return;
        }
        Fault::None | Fault::Delay(_) | Fault::DelayPath(..) | Fault::StallWatches => {}
    }
    let Ok(server) = upstream.connect().await else {
        return;
    };
    let (delays, stalls) = (fault.clone(), fault.clone());
    // Whether the request this connection carries now is a watch.
    let watching = std::sync::atomic::AtomicBool::new(false);
    let began = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = tokio::io::split(server);
        let requests = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut stalls = stalls.clone();
            loop {
                let n = client_read.read(&mut buf).await?;
                if n == 0 {
                    return server_write.shutdown().await;
                }
                let line = request_line(&buf[..n]);
                if let Some(line) = &line {
                    let watch = line.contains("watch=true") || line.contains("watch=1");
                    watching.store(watch, Ordering::Relaxed);
                }
                if watching.load(Ordering::Relaxed) {
                    fault_changes(&mut stalls, Fault::StallWatches).await;
                }
                let delay = match *delays.borrow() {
                    Fault::Delay(delay) => Some(delay),
                    Fault::DelayPath(path, delay)
                        if line.as_deref().is_some_and(|l| l.contains(path)) =>
                    {
                        Some(delay)
                    }
                    _ => None,
                };
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                server_write.write_all(&buf[..n]).await?;
            }
        };
        let responses = async {
            let mut buf = vec![0u8; 16 * 1024];
            let mut stalls = stalls.clone();
            loop {
                let n = server_read.read(&mut buf).await?;
                if n == 0 {
                    return client_write.shutdown().await;
                }
                if watching.load(Ordering::Relaxed) {
                    fault_changes(&mut stalls, Fault::StallWatches).await;
                }
                client_write.write_all(&buf[..n]).await?;
            }
        };
        tokio::select! {
            _ = async { let _ = tokio::try_join!(requests, responses); } => None,
            began = breaking_fault(&mut fault) => Some(began),
            _ = shutdown.cancelled() => None,
        }
    };
    match began {
        Some(silent @ (Fault::Hang | Fault::Blackhole)) => {
            // Keep both sockets open and silent.
            faults.fetch_add(1, Ordering::Relaxed);
            hold(&mut fault, silent, &shutdown).await;
        }
        Some(_) => {
            faults.fetch_add(1, Ordering::Relaxed);
        }
        None => {}
    }
    // Dropping the sockets closes (or, with unread data, resets) them.
}

/// Holds a silent connection: until a `Hang` ends, or for good (until the
/// proxy stops) if it is a `Blackhole`.
async fn hold(fault: &mut watch::Receiver<Fault>, silent: Fault, shutdown: &CancellationToken) {
    if silent == Fault::Blackhole {
        shutdown.cancelled().await;
        return;
    }
    tokio::select! {
        _ = fault_changes(fault, silent) => {}
        _ = shutdown.cancelled() => {}
    }
}

/// The request line, if `chunk` starts an HTTP/1.1 request.
fn request_line(chunk: &[u8]) -> Option<String> {
    const METHODS: [&[u8]; 5] = [b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE "];
    if !METHODS.iter().any(|m| chunk.starts_with(m)) {
        return None;
    }
    let end = chunk.windows(2).position(|w| w == b"\r\n")?;
    Some(String::from_utf8_lossy(&chunk[..end]).into_owned())
}

/// Reads one HTTP/1.1 request and answers it with a 500 `metav1.Status`.
async fn answer_500(client: &mut TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        if request.len() > 1 << 20 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body_read = request.len() - head_end;
    while body_read < length {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body_read += n,
        }
    }
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "injected fault: the host is failing",
        "reason": "InternalError", "code": 500,
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}
