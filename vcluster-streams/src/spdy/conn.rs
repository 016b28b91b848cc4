//! A SPDY connection, server side: the peer opens streams (each named by
//! its headers), this side answers each with a SYN_REPLY and hands it
//! over; a reader task routes data frames, a writer task sends frames in
//! order. Like the Go peers Kubernetes uses, it keeps no flow-control
//! windows.

use std::collections::HashMap;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::frame::{self, Frame, FLAG_FIN};
use super::headers::{HeaderReader, HeaderWriter};
use crate::session::{Inbound, Outbound};

/// How many frames may queue for the writer or for one stream's reader.
const BACKLOG: usize = 64;

/// A stream the peer opened.
pub(crate) struct SpdyStream {
    /// Its headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The peer's bytes on it.
    pub inbound: Inbound,
    /// This side's bytes on it.
    pub out: StreamOut,
}

impl SpdyStream {
    /// A header's value.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// This side's half of one stream.
pub(crate) struct StreamOut {
    id: u32,
    frames: mpsc::Sender<Bytes>,
}

#[async_trait]
impl Outbound for StreamOut {
    async fn send(&self, data: Bytes) -> std::io::Result<()> {
        self.frames
            .send(frame::data(self.id, false, &data))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    async fn close(&self) {
        let _ = self.frames.send(frame::data(self.id, true, &[])).await;
    }
}

/// A running connection.
pub(crate) struct Connection {
    /// Streams as the peer opens them.
    pub streams: mpsc::Receiver<SpdyStream>,
    /// Cancelled when the peer's side of the connection ends.
    pub gone: CancellationToken,
    frames: mpsc::Sender<Bytes>,
    closing: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
}

impl Connection {
    /// Starts serving SPDY on `io`.
    pub(crate) fn start<IO>(io: IO) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer_io) = tokio::io::split(io);
        let (frames, mut queue) = mpsc::channel::<Bytes>(BACKLOG);
        let closing = CancellationToken::new();
        let finished = closing.clone();
        let writer = tokio::spawn(async move {
            loop {
                let bytes = tokio::select! {
                    biased;
                    next = queue.recv() => match next {
                        Some(bytes) => bytes,
                        None => break,
                    },
                    () = finished.cancelled() => match queue.try_recv() {
                        Ok(bytes) => bytes,
                        Err(_) => break,
                    },
                };
                if writer_io.write_all(&bytes).await.is_err() {
                    break;
                }
                // Interactive sessions need each frame out at once.
                if queue.is_empty() && writer_io.flush().await.is_err() {
                    break;
                }
            }
            let _ = writer_io.shutdown().await;
        });
        let (streams_tx, streams) = mpsc::channel(BACKLOG);
        let gone = CancellationToken::new();
        let gone_tx = gone.clone();
        let out = frames.clone();
        tokio::spawn(async move {
            let mut inbound: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
            let mut header_reader = HeaderReader::default();
            let mut header_writer = HeaderWriter::default();
            loop {
                let frame = match frame::read_frame(&mut reader).await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::debug!(error = %err, "SPDY connection ended");
                        break;
                    }
                };
                match frame {
                    Frame::SynStream {
                        stream,
                        flags,
                        headers,
                    } => {
                        let headers = match header_reader.read(&headers) {
                            Ok(headers) => headers,
                            Err(err) => {
                                tracing::debug!(error = %err, "SPDY connection ended");
                                break;
                            }
                        };
                        let (tx, rx) = mpsc::channel(BACKLOG);
                        if flags & FLAG_FIN == 0 {
                            inbound.insert(stream, tx);
                        }
                        let reply = frame::syn_reply(stream, &header_writer.write(&[]));
                        if out.send(reply).await.is_err() {
                            break;
                        }
                        let opened = SpdyStream {
                            headers,
                            inbound: rx,
                            out: StreamOut {
                                id: stream,
                                frames: out.clone(),
                            },
                        };
                        if streams_tx.send(opened).await.is_err() {
                            let _ = out.send(frame::rst_stream(stream)).await;
                        }
                    }
                    Frame::Data {
                        stream,
                        flags,
                        data,
                    } => {
                        if let Some(to) = inbound.get(&stream) {
                            if !data.is_empty() && to.send(data).await.is_err() {
                                inbound.remove(&stream);
                            }
                        }
                        if flags & FLAG_FIN != 0 {
                            inbound.remove(&stream);
                        }
                    }
                    Frame::RstStream { stream } => {
                        inbound.remove(&stream);
                    }
                    Frame::Headers { headers, .. } | Frame::SynReply { headers, .. } => {
                        if header_reader.read(&headers).is_err() {
                            break;
                        }
                    }
                    Frame::Ping { id } => {
                        let _ = out.send(frame::ping(id)).await;
                    }
                    Frame::GoAway => break,
                    Frame::Ignored => {}
                }
            }
            gone_tx.cancel();
        });
        Self {
            streams,
            gone,
            frames,
            closing,
            writer,
        }
    }

    /// Says goodbye and waits for the queued frames to go out.
    pub(crate) async fn finish(self) {
        let _ = self.frames.send(frame::goaway(0)).await;
        // Frames already queued still go out; the writer then closes the
        // connection even if stream handles are still around.
        self.closing.cancel();
        drop(self.frames);
        drop(self.streams);
        let _ = self.writer.await;
    }
}
