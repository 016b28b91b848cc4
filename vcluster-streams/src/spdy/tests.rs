//! A SPDY client played by hand against the server side: the frames a Go
//! client sends, the frames it must get back.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncWriteExt, DuplexStream};

use super::frame::{self, Frame, FLAG_FIN};
use super::headers::{HeaderReader, HeaderWriter};
use crate::backend::*;

/// `exec` prints its command and exits with its length; port-forward is
/// refused.
struct Echo;

#[async_trait]
impl ContainerStreams for Echo {
    async fn exec(&self, _: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
        let text = o.command.join(" ");
        let code = text.len() as i32;
        Ok(Process {
            stdin: None,
            stdout: Some(Box::pin(std::io::Cursor::new(text.into_bytes()))),
            stderr: None,
            resize: None,
            exit: Box::pin(async move { Exit::Code(code) }),
        })
    }
    async fn attach(&self, t: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
        self.exec(t, o).await
    }
    async fn port_forward(
        &self,
        _: &StreamTarget,
        port: u16,
    ) -> Result<PortConnection, StreamError> {
        Err(StreamError::bad_request(format!(
            "nothing listens on {port}"
        )))
    }
}

fn target() -> StreamTarget {
    StreamTarget {
        namespace: "default".into(),
        pod_name: "web".into(),
        container: "app".into(),
        pod: serde_json::Value::Null,
    }
}

struct Client {
    io: DuplexStream,
    headers: HeaderWriter,
    replies: HeaderReader,
}

impl Client {
    async fn open(&mut self, id: u32, headers: &[(&str, &str)]) {
        let block = self.headers.write(headers);
        self.io
            .write_all(&frame::syn_stream(id, &block))
            .await
            .unwrap();
    }

    /// Frames until the server's GOAWAY, with stream data gathered.
    async fn until_goaway(&mut self) -> Vec<(u32, Vec<u8>, bool)> {
        let mut streams: Vec<(u32, Vec<u8>, bool)> = Vec::new();
        loop {
            let frame = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                frame::read_frame(&mut self.io),
            )
            .await
            .expect("server answers")
            .unwrap()
            .expect("frame");
            match frame {
                Frame::SynReply { headers, .. } => {
                    self.replies.read(&headers).unwrap();
                }
                Frame::Data {
                    stream,
                    flags,
                    data,
                } => match streams.iter_mut().find(|(s, _, _)| *s == stream) {
                    Some(entry) => {
                        entry.1.extend_from_slice(&data);
                        entry.2 |= flags & FLAG_FIN != 0;
                    }
                    None => streams.push((stream, data.to_vec(), flags & FLAG_FIN != 0)),
                },
                Frame::GoAway => return streams,
                _ => {}
            }
        }
    }
}

fn connect() -> (Client, DuplexStream) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    (
        Client {
            io: client,
            headers: HeaderWriter::default(),
            replies: HeaderReader::default(),
        },
        server,
    )
}

#[tokio::test]
async fn exec_answers_each_stream_then_reports_the_exit_code() {
    let (mut client, server) = connect();
    let options = ProcessOptions {
        command: vec!["echo".into(), "hi".into()],
        stdout: true,
        ..Default::default()
    };
    let served = tokio::spawn(super::serve_process(
        server,
        crate::negotiate::V4_CHANNEL,
        Arc::new(Echo),
        target(),
        options,
        false,
    ));
    client.open(1, &[("streamType", "error")]).await;
    client.open(3, &[("streamType", "stdout")]).await;
    let streams = client.until_goaway().await;
    served.await.unwrap();
    let stdout = streams.iter().find(|s| s.0 == 3).expect("stdout");
    assert_eq!((stdout.1.as_slice(), stdout.2), (&b"echo hi"[..], true));
    let error = streams.iter().find(|s| s.0 == 1).expect("error");
    let status: serde_json::Value = serde_json::from_slice(&error.1).unwrap();
    assert_eq!(status["details"]["causes"][0]["message"], "7");
    assert!(error.2, "the error stream ends");
}

#[tokio::test]
async fn port_forward_pairs_streams_by_request_and_reports_backend_errors() {
    let (mut client, server) = connect();
    let served = tokio::spawn(super::serve_port_forward(server, Arc::new(Echo), target()));
    let pair = [("port", "8080"), ("requestID", "0")];
    client
        .open(1, &[("streamType", "error"), pair[0], pair[1]])
        .await;
    client
        .open(3, &[("streamType", "data"), pair[0], pair[1]])
        .await;
    let mut error = Vec::new();
    while error.is_empty() {
        match frame::read_frame(&mut client.io)
            .await
            .unwrap()
            .expect("frame")
        {
            Frame::Data {
                stream: 1, data, ..
            } => error.extend_from_slice(&data),
            Frame::SynReply { headers, .. } => {
                client.replies.read(&headers).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(error, b"nothing listens on 8080");
    // The client hangs up; the server lets go.
    drop(client);
    tokio::time::timeout(std::time::Duration::from_secs(10), served)
        .await
        .expect("server stops")
        .unwrap();
}
