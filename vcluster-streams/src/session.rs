//! The transport-free half of a stream: moving bytes between a client's
//! channels and a [`Process`] or [`PortConnection`], and reporting how it
//! ended. WebSocket and SPDY only differ in how they frame the channels.

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::backend::{Exit, PortConnection, Process, StreamError, TerminalSize};

/// How much is read from a process or a port at a time.
const CHUNK: usize = 32 * 1024;

/// Bytes from the client on one channel; the channel ends when the client
/// closes its side.
pub(crate) type Inbound = mpsc::Receiver<Bytes>;

/// One channel towards the client.
#[async_trait]
pub(crate) trait Outbound: Send + Sync {
    /// Sends bytes; an error means the client is gone.
    async fn send(&self, data: Bytes) -> std::io::Result<()>;
    /// Ends this channel (the client reads end-of-file).
    async fn close(&self);
}

/// How the error channel reports an [`Exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusFormat {
    /// A JSON `Status` (protocol v4 and later).
    Json,
    /// The error's text (the older protocols).
    Text,
}

/// A client's side of an exec or attach.
pub(crate) struct ProcessChannels {
    pub stdin: Option<Inbound>,
    pub resize: Option<Inbound>,
    pub stdout: Option<Box<dyn Outbound>>,
    pub stderr: Option<Box<dyn Outbound>>,
    pub error: Box<dyn Outbound>,
    pub format: StatusFormat,
    /// Resolves when the client's connection is gone.
    pub gone: BoxFuture<'static, ()>,
}

/// Runs a session to its end: input in, output out, then the exit status.
/// A client that goes away ends it early and drops the process, which is
/// how a backend learns to stop.
pub(crate) async fn run_process(started: Result<Process, StreamError>, channels: ProcessChannels) {
    let ProcessChannels {
        stdin,
        resize,
        stdout,
        stderr,
        error,
        format,
        gone,
    } = channels;
    let process = match started {
        Ok(process) => process,
        Err(err) => {
            let _ = error.send(status_of_error(&err, format)).await;
            error.close().await;
            return;
        }
    };
    let Process {
        stdin: process_stdin,
        stdout: process_stdout,
        stderr: process_stderr,
        resize: process_resize,
        exit,
    } = process;
    // Input runs beside the session: a process may end before its client
    // closes stdin.
    let input = tokio::spawn(async move {
        let stdin_pump = async {
            if let (Some(mut from), Some(mut to)) = (stdin, process_stdin) {
                while let Some(chunk) = from.recv().await {
                    if to.write_all(&chunk).await.is_err() {
                        return;
                    }
                    let _ = to.flush().await;
                }
                let _ = to.shutdown().await;
            }
        };
        let resize_pump = async {
            if let (Some(mut from), Some(to)) = (resize, process_resize) {
                let mut sizes = SizeDecoder::default();
                while let Some(chunk) = from.recv().await {
                    for size in sizes.push(&chunk) {
                        if to.send(size).await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        futures::join!(stdin_pump, resize_pump);
    });
    let session = async {
        futures::join!(
            pump_out(process_stdout, stdout.as_deref()),
            pump_out(process_stderr, stderr.as_deref())
        );
        exit.await
    };
    let outcome = tokio::select! {
        exit = session => Some(exit),
        () = gone => None,
    };
    input.abort();
    if let Some(exit) = outcome {
        if let Some(status) = status_of_exit(&exit, format) {
            let _ = error.send(status).await;
        }
    }
    for channel in [stdout.as_deref(), stderr.as_deref()].into_iter().flatten() {
        channel.close().await;
    }
    error.close().await;
}

/// Copies a process's output to the client until either ends.
async fn pump_out(from: Option<crate::backend::ProcessOutput>, to: Option<&dyn Outbound>) {
    let Some(mut from) = from else { return };
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // Output nobody asked for is read and dropped, so the
                // process never blocks on it.
                if let Some(to) = to {
                    if to.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Runs one forwarded connection: client bytes to the port, port bytes to
/// the client, and an error from the backend on the error channel.
pub(crate) async fn run_port(
    opened: Result<PortConnection, StreamError>,
    mut inbound: Inbound,
    data: Box<dyn Outbound>,
    error: Box<dyn Outbound>,
) {
    let connection = match opened {
        Ok(connection) => connection,
        Err(err) => {
            let _ = error.send(Bytes::from(err.message)).await;
            error.close().await;
            data.close().await;
            return;
        }
    };
    let PortConnection {
        io,
        error: backend_error,
    } = connection;
    let (mut reader, mut writer) = tokio::io::split(io);
    let upstream = async move {
        while let Some(chunk) = inbound.recv().await {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
            let _ = writer.flush().await;
        }
        let _ = writer.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if data.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
        data.close().await;
    };
    let upstream = tokio::spawn(upstream);
    let report = async {
        if let Some(message) = backend_error.await {
            let _ = error.send(Bytes::from(message)).await;
        }
    };
    // The backend's error future may stay pending while data flows; the
    // connection is over when the port side ends.
    tokio::select! {
        () = downstream => {}
        () = async { report.await; std::future::pending::<()>().await } => {}
    }
    upstream.abort();
    error.close().await;
}

/// The error channel's message for a process that ended, if any.
pub(crate) fn status_of_exit(exit: &Exit, format: StatusFormat) -> Option<Bytes> {
    let status = match exit {
        Exit::Success => {
            return (format == StatusFormat::Json)
                .then(|| json_bytes(&json!({"metadata": {}, "status": "Success"})));
        }
        Exit::Code(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Exit::Error(message) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {message}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }),
    };
    Some(match format {
        StatusFormat::Json => json_bytes(&status),
        StatusFormat::Text => {
            Bytes::from(status["message"].as_str().unwrap_or_default().to_owned())
        }
    })
}

/// The error channel's message for a stream the backend could not open.
pub(crate) fn status_of_error(err: &StreamError, format: StatusFormat) -> Bytes {
    match format {
        StatusFormat::Json => json_bytes(&json!({
            "metadata": {},
            "status": "Failure",
            "message": err.message,
            "reason": err.reason,
            "code": err.code,
        })),
        StatusFormat::Text => Bytes::from(err.message.clone()),
    }
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}

/// Terminal sizes from a resize channel: JSON objects, one after another,
/// possibly split across messages.
#[derive(Default)]
pub(crate) struct SizeDecoder {
    pending: Vec<u8>,
}

impl SizeDecoder {
    /// Adds bytes; returns every size now complete. Malformed input is
    /// dropped (a bad resize must not end the session).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<TerminalSize> {
        self.pending.extend_from_slice(bytes);
        let mut sizes = Vec::new();
        let mut consumed = 0;
        let mut stream =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<TerminalSize>();
        loop {
            match stream.next() {
                Some(Ok(size)) => {
                    sizes.push(size);
                    consumed = stream.byte_offset();
                }
                Some(Err(err)) if err.is_eof() => break,
                Some(Err(_)) => {
                    consumed = self.pending.len();
                    break;
                }
                None => {
                    consumed = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..consumed);
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_split_across_messages_are_decoded_once_whole() {
        let mut decoder = SizeDecoder::default();
        assert!(decoder.push(br#"{"Width":80,"#).is_empty());
        let sizes = decoder.push(br#""Height":24}{"Width":100,"Height":40}"#);
        assert_eq!(
            sizes,
            vec![
                TerminalSize {
                    width: 80,
                    height: 24
                },
                TerminalSize {
                    width: 100,
                    height: 40
                }
            ]
        );
        assert!(decoder.push(b"garbage").is_empty());
        assert_eq!(
            decoder.push(br#"{"Width":1,"Height":2}"#),
            vec![TerminalSize {
                width: 1,
                height: 2
            }]
        );
    }

    #[test]
    fn exit_codes_are_reported_as_kubectl_reads_them() {
        let status = status_of_exit(&Exit::Code(3), StatusFormat::Json).unwrap();
        let value: Value = serde_json::from_slice(&status).unwrap();
        assert_eq!(value["reason"], "NonZeroExitCode");
        assert_eq!(value["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(value["details"]["causes"][0]["message"], "3");
        assert!(status_of_exit(&Exit::Success, StatusFormat::Text).is_none());
    }
}
