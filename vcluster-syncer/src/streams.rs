//! `kubectl exec`, `attach` and `port-forward` in a virtual cluster: the
//! virtual pod has no kubelet, its host pod does. [`HostContainerStreams`]
//! opens each stream on the host pod the syncer made of the virtual pod,
//! through the host API server, as vCluster does.
//!
//! The virtual API server checks who may open the stream (RBAC on
//! `pods/exec` and the like, in the virtual cluster) before this runs;
//! the host sees only the syncer's own identity. Host names in the host's
//! messages are put back to the virtual ones, so nothing of the host
//! layout reaches the tenant.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::{FutureExt, SinkExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess, Portforwarder};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::mpsc;
use vcluster_core::{HostKey, Translator, VirtualKey};
use vcluster_streams::{
    ContainerStreams, Exit, PortConnection, Process, ProcessOptions, StreamError, StreamTarget,
    TerminalSize,
};

/// Opens virtual pods' container streams on their host pods.
pub struct HostContainerStreams {
    host: kube::Client,
    translator: Arc<dyn Translator>,
}

impl HostContainerStreams {
    /// Streams through `host`, to the pods `translator` names there (the
    /// syncer's translator).
    pub fn new(host: kube::Client, translator: Arc<dyn Translator>) -> Self {
        Self { host, translator }
    }

    /// The host pod of `target` and an API to reach it.
    fn host_pod(&self, target: &StreamTarget) -> Result<(Api<Pod>, Names), StreamError> {
        let key = VirtualKey::namespaced(target.namespace.as_str(), target.pod_name.as_str());
        let host_key: HostKey = self.translator.host_key(&key).map_err(|e| {
            StreamError::bad_request(format!(
                "pod {} has no name on the host: {e}",
                target.pod_name
            ))
        })?;
        let namespace = host_key.namespace().unwrap_or_default().to_owned();
        let names = Names {
            host_name: host_key.name().to_owned(),
            host_namespace: namespace.clone(),
            name: target.pod_name.clone(),
            namespace: target.namespace.clone(),
        };
        Ok((Api::namespaced(self.host.clone(), &namespace), names))
    }

    async fn process(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
        attach: bool,
    ) -> Result<Process, StreamError> {
        let (api, names) = self.host_pod(target)?;
        let params = AttachParams {
            container: Some(target.container.clone()),
            stdin: options.stdin,
            stdout: options.stdout,
            stderr: options.stderr && !options.tty,
            tty: options.tty,
            ..AttachParams::default()
        };
        let opened = if attach {
            api.attach(&names.host_name, &params).await
        } else {
            api.exec(&names.host_name, options.command.clone(), &params)
                .await
        };
        let attached = opened.map_err(|e| names.error(e))?;
        Ok(process_of(attached, names))
    }
}

/// The host's and the virtual names of one pod, to rewrite messages.
#[derive(Clone)]
struct Names {
    host_name: String,
    host_namespace: String,
    name: String,
    namespace: String,
}

impl Names {
    /// `text` with the host's names replaced by the virtual ones.
    fn hide(&self, text: &str) -> String {
        let text = text.replace(&self.host_name, &self.name);
        if self.host_namespace.is_empty() {
            return text;
        }
        text.replace(&self.host_namespace, &self.namespace)
    }

    /// A host error as the client's error.
    fn error(&self, err: kube::Error) -> StreamError {
        match err {
            kube::Error::Api(status) => StreamError {
                code: status.code,
                reason: status.reason.clone(),
                message: self.hide(&status.message),
            },
            other => StreamError::internal(format!(
                "error dialing backend: {}",
                self.hide(&other.to_string())
            )),
        }
    }
}

/// The [`Process`] of a host stream. The host connection lives until the
/// process's exit is read, so dropping the session drops it.
fn process_of(mut attached: AttachedProcess, names: Names) -> Process {
    let resize = attached.terminal_size().map(|mut host| {
        let (tx, mut rx) = mpsc::channel::<TerminalSize>(4);
        tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                let size = kube::api::TerminalSize {
                    width: size.width,
                    height: size.height,
                };
                if host.send(size).await.is_err() {
                    break;
                }
            }
        });
        tx
    });
    let stdin = attached
        .stdin()
        .map(|w| Box::pin(w) as vcluster_streams::ProcessInput);
    let stdout = attached
        .stdout()
        .map(|r| Box::pin(r) as vcluster_streams::ProcessOutput);
    let stderr = attached
        .stderr()
        .map(|r| Box::pin(r) as vcluster_streams::ProcessOutput);
    let status = attached.take_status();
    let exit = async move {
        let Some(status) = status else {
            return Exit::Error("the host stream has no status".into());
        };
        let status = status.await;
        drop(attached);
        match status {
            None => Exit::Error("the host stream ended without a status".into()),
            Some(status) if status.status.as_deref() == Some("Success") => Exit::Success,
            Some(status) => {
                let code = status
                    .details
                    .as_ref()
                    .and_then(|d| d.causes.as_ref())
                    .and_then(|c| c.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
                    .and_then(|c| c.message.as_deref())
                    .and_then(|m| m.parse::<i32>().ok());
                match code {
                    Some(code) if status.reason.as_deref() == Some("NonZeroExitCode") => {
                        Exit::Code(code)
                    }
                    _ => Exit::Error(names.hide(status.message.as_deref().unwrap_or_default())),
                }
            }
        }
    };
    Process {
        stdin,
        stdout,
        stderr,
        resize,
        exit: Box::pin(exit),
    }
}

/// A forwarded host connection that keeps its forwarder alive.
struct HostPort {
    stream: DuplexStream,
    _forwarder: Portforwarder,
}

impl AsyncRead for HostPort {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for HostPort {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[async_trait]
impl ContainerStreams for HostContainerStreams {
    async fn exec(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
    ) -> Result<Process, StreamError> {
        self.process(target, options, false).await
    }

    async fn attach(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
    ) -> Result<Process, StreamError> {
        self.process(target, options, true).await
    }

    async fn port_forward(
        &self,
        target: &StreamTarget,
        port: u16,
    ) -> Result<PortConnection, StreamError> {
        let (api, names) = self.host_pod(target)?;
        let mut forwarder = api
            .portforward(&names.host_name, &[port])
            .await
            .map_err(|e| names.error(e))?;
        let (Some(stream), Some(error)) = (forwarder.take_stream(port), forwarder.take_error(port))
        else {
            return Err(StreamError::internal(format!(
                "the host did not open port {port}"
            )));
        };
        let error = error
            .map(move |message| message.map(|m| names.hide(&m)))
            .boxed();
        Ok(PortConnection {
            io: Box::pin(HostPort {
                stream,
                _forwarder: forwarder,
            }),
            error,
        })
    }
}
