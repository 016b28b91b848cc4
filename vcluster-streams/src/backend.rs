//! What runs behind a stream: the [`ContainerStreams`] an embedder plugs
//! in (a proxy to a host pod, a simulated node), and the [`Process`] and
//! [`PortConnection`] it hands back. The protocols in this crate only move
//! bytes between the client and these.

use std::pin::Pin;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// The container a stream is opened on, already checked by the API server
/// (the pod exists, the container is one of its containers).
#[derive(Clone, Debug)]
pub struct StreamTarget {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The container (named in the request, or the pod's only one). Empty
    /// for port-forward, which is per pod.
    pub container: String,
    /// The pod as stored, for backends that need its uid, node or spec.
    pub pod: Value,
}

/// What the client asked of an exec or attach (`PodExecOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessOptions {
    /// The command and its arguments (empty for attach).
    pub command: Vec<String>,
    /// The client sends standard input.
    pub stdin: bool,
    /// The client wants standard output.
    pub stdout: bool,
    /// The client wants standard error (never with a TTY: a terminal has
    /// one output).
    pub stderr: bool,
    /// The process runs in a terminal; the client may resize it.
    pub tty: bool,
}

/// A terminal size, as clients send it on the resize channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// How a process ended, reported to the client on the error channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exit code 0.
    Success,
    /// A non-zero exit code: clients print `command terminated with exit
    /// code N` and exit with it.
    Code(i32),
    /// The process could not run or the stream failed; the message is
    /// shown to the user.
    Error(String),
}

/// A readable end of a process (its stdout or stderr).
pub type ProcessOutput = Pin<Box<dyn AsyncRead + Send>>;
/// The writable end of a process (its stdin).
pub type ProcessInput = Pin<Box<dyn AsyncWrite + Send>>;

/// A running process, as a backend hands it over. Each end the client did
/// not ask for is `None`. The streams end when the process ends; `exit`
/// resolves after that.
pub struct Process {
    /// Standard input; shut down when the client closes its side.
    pub stdin: Option<ProcessInput>,
    /// Standard output.
    pub stdout: Option<ProcessOutput>,
    /// Standard error.
    pub stderr: Option<ProcessOutput>,
    /// Where terminal sizes go, for TTY sessions.
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    /// How the process ended.
    pub exit: BoxFuture<'static, Exit>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish_non_exhaustive()
    }
}

/// Both directions of a forwarded connection.
pub trait Duplex: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Duplex for T {}

/// One forwarded TCP connection to a pod's port.
pub struct PortConnection {
    /// The bytes to and from the port.
    pub io: Pin<Box<dyn Duplex>>,
    /// Resolves with an error the backend reports while forwarding (the
    /// kubelet's error stream), or `None` when it has none to report.
    pub error: BoxFuture<'static, Option<String>>,
}

impl std::fmt::Debug for PortConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortConnection").finish_non_exhaustive()
    }
}

/// Why a backend could not open a stream, as a Kubernetes `Status`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamError {
    /// The HTTP code (`400` for a container that is not running).
    pub code: u16,
    /// The `Status` reason (`BadRequest`).
    pub reason: String,
    /// What the user reads.
    pub message: String,
}

impl StreamError {
    /// A 400 `BadRequest`, kube-apiserver's answer for a pod that cannot
    /// take a stream (not scheduled, not running).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            reason: "BadRequest".into(),
            message: message.into(),
        }
    }

    /// A 500 `InternalError`, for a backend that failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: 500,
            reason: "InternalError".into(),
            message: message.into(),
        }
    }

    /// A 404 `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: 404,
            reason: "NotFound".into(),
            message: message.into(),
        }
    }
}

/// A source of container streams: runs commands in containers, attaches
/// to them, opens their pods' ports. Errors are returned before anything
/// is streamed; failures later are the process's [`Exit`].
#[async_trait]
pub trait ContainerStreams: Send + Sync {
    /// Runs `options.command` in the target container.
    async fn exec(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
    ) -> Result<Process, StreamError>;

    /// Attaches to the target container's main process.
    async fn attach(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
    ) -> Result<Process, StreamError>;

    /// Opens one connection to `port` of the target pod.
    async fn port_forward(
        &self,
        target: &StreamTarget,
        port: u16,
    ) -> Result<PortConnection, StreamError>;
}
