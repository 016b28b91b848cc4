//! Kubernetes' WebSocket channel protocols: every binary message starts
//! with its channel's number. For exec and attach the channels are stdin
//! (0), stdout (1), stderr (2), error (3) and resize (4); `v5` adds the
//! client's "close this channel" signal (255, channel). For port-forward
//! each requested port has a data and an error channel, and the server
//! opens both with the port's number (two bytes, little-endian).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::backend::{ContainerStreams, ProcessOptions, StreamTarget};
use crate::negotiate::{V4_CHANNEL, V5_CHANNEL};
use crate::session::{self, Inbound, Outbound, ProcessChannels, StatusFormat};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5's close signal: `[CLOSE, channel]`.
const CLOSE: u8 = 255;

/// How many messages may wait for a slow reader before the sender waits.
const BACKLOG: usize = 64;

/// The server's side of a WebSocket over an upgraded connection.
pub(crate) async fn accept<IO>(io: IO) -> WebSocketStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(io, Role::Server, None).await
}

/// One channel of the connection, towards the client.
struct Channel {
    number: u8,
    out: mpsc::Sender<Message>,
}

#[async_trait]
impl Outbound for Channel {
    async fn send(&self, data: Bytes) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(self.number);
        frame.extend_from_slice(&data);
        self.out
            .send(Message::Binary(frame.into()))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    async fn close(&self) {
        // The protocol has no server-side close of one channel; the
        // connection's close ends them all.
    }
}

/// The connection split in two: a writer task sending queued messages and
/// a reader routing each client message to its channel.
struct Mux {
    out: mpsc::Sender<Message>,
    writer: tokio::task::JoinHandle<()>,
    /// Cancelled when the client's side of the connection ends.
    gone: CancellationToken,
}

impl Mux {
    /// Starts the connection's tasks. `inbound` maps a channel number to
    /// where its bytes go; `v5` turns on the close signal.
    fn start<IO>(
        ws: WebSocketStream<IO>,
        mut inbound: Vec<(u8, mpsc::Sender<Bytes>)>,
        v5: bool,
    ) -> Self
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = ws.split();
        let (out, mut queue) = mpsc::channel::<Message>(BACKLOG);
        let writer = tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let gone = CancellationToken::new();
        let gone_tx = gone.clone();
        let pong = out.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let data = match message {
                    Message::Binary(data) => data,
                    // Upstream reads text messages as bytes too (the
                    // Python client sends stdin written as `str` so).
                    Message::Text(text) => Bytes::copy_from_slice(text.as_bytes()),
                    Message::Ping(data) => {
                        let _ = pong.send(Message::Pong(data)).await;
                        continue;
                    }
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Some((&channel, rest)) = data.split_first() else {
                    continue;
                };
                if v5 && channel == CLOSE {
                    if let Some(&closed) = rest.first() {
                        inbound.retain(|(number, _)| *number != closed);
                    }
                    continue;
                }
                let Some((_, to)) = inbound.iter().find(|(number, _)| *number == channel) else {
                    continue;
                };
                if to.send(Bytes::copy_from_slice(rest)).await.is_err() {
                    inbound.retain(|(number, _)| *number != channel);
                }
            }
            gone_tx.cancel();
        });
        Self { out, writer, gone }
    }

    fn channel(&self, number: u8) -> Box<dyn Outbound> {
        Box::new(Channel {
            number,
            out: self.out.clone(),
        })
    }

    /// Ends the connection with a normal close and waits for it to go out.
    async fn finish(self) {
        let _ = self
            .out
            .send(Message::Close(Some(CloseFrame {
                code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        drop(self.out);
        let _ = self.writer.await;
    }
}

/// Serves an exec or attach over an accepted WebSocket.
pub(crate) async fn serve_process<IO>(
    ws: WebSocketStream<IO>,
    protocol: &'static str,
    backend: Arc<dyn ContainerStreams>,
    target: StreamTarget,
    options: ProcessOptions,
    attach: bool,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stdin_tx, stdin) = channel_if(options.stdin);
    let (resize_tx, resize) = channel_if(options.tty);
    let inbound = [(STDIN, stdin_tx), (RESIZE, resize_tx)]
        .into_iter()
        .filter_map(|(number, tx)| tx.map(|tx| (number, tx)))
        .collect();
    let mux = Mux::start(ws, inbound, protocol == V5_CHANNEL);
    // The kubelet's "ready" signal: an empty message on the lowest
    // channel the client reads.
    let first = if options.stdout {
        STDOUT
    } else if options.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = mux.channel(first).send(Bytes::new()).await;
    let format = if protocol == V5_CHANNEL || protocol == V4_CHANNEL {
        StatusFormat::Json
    } else {
        StatusFormat::Text
    };
    let started = if attach {
        backend.attach(&target, &options).await
    } else {
        backend.exec(&target, &options).await
    };
    let gone = mux_gone(&mux);
    let channels = ProcessChannels {
        stdin,
        resize,
        stdout: options.stdout.then(|| mux.channel(STDOUT)),
        stderr: (options.stderr && !options.tty).then(|| mux.channel(STDERR)),
        error: mux.channel(ERROR),
        format,
        gone,
    };
    session::run_process(started, channels).await;
    mux.finish().await;
}

/// Serves a port-forward over an accepted WebSocket: one connection per
/// requested port, for as long as the WebSocket lives.
pub(crate) async fn serve_port_forward<IO>(
    ws: WebSocketStream<IO>,
    backend: Arc<dyn ContainerStreams>,
    target: StreamTarget,
    ports: Vec<u16>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut inbound = Vec::new();
    let mut receivers = Vec::new();
    for (i, _) in ports.iter().enumerate() {
        let (tx, rx) = mpsc::channel(BACKLOG);
        let Ok(data_channel) = u8::try_from(i * 2) else {
            break;
        };
        inbound.push((data_channel, tx));
        receivers.push(rx);
    }
    let mux = Mux::start(ws, inbound, false);
    let mut sessions = Vec::new();
    for ((i, port), rx) in ports.iter().enumerate().zip(receivers) {
        let data_channel = (i * 2) as u8;
        let data = mux.channel(data_channel);
        let error = mux.channel(data_channel + 1);
        let prefix = Bytes::copy_from_slice(&port.to_le_bytes());
        let _ = data.send(prefix.clone()).await;
        let _ = error.send(prefix).await;
        let backend = backend.clone();
        let target = target.clone();
        let port = *port;
        sessions.push(async move {
            let opened = backend.port_forward(&target, port).await;
            session::run_port(opened, rx, data, error).await;
        });
    }
    let gone = mux_gone(&mux);
    tokio::select! {
        _ = futures::future::join_all(sessions) => {}
        () = gone => {}
    }
    mux.finish().await;
}

/// A future resolving when the client's side of `mux` is gone.
fn mux_gone(mux: &Mux) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(mux.gone.clone().cancelled_owned())
}

/// A channel for an input the client asked for.
fn channel_if(wanted: bool) -> (Option<mpsc::Sender<Bytes>>, Option<Inbound>) {
    if wanted {
        let (tx, rx) = mpsc::channel(BACKLOG);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    }
}

/// Port-forward's tunnel: SPDY bytes carried in binary WebSocket
/// messages, turned back into a byte stream for the SPDY server.
pub(crate) fn tunnel<IO>(ws: WebSocketStream<IO>) -> tokio::io::DuplexStream
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut read_half, mut write_half) = tokio::io::split(ours);
    let (mut sink, mut stream) = ws.split();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(data) if write_half.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = write_half.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match read_half.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    theirs
}
