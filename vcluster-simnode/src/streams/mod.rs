//! Container streams on the simulated node: `kubectl exec`, `attach`,
//! `cp` and `port-forward` answered honestly for what the node simulates.
//!
//! - **exec** runs a small shell ([`shell`]) over the container's
//!   simulated filesystem ([`files`]: its configMap, secret and projected
//!   volumes, read from the cluster as a kubelet reads them) and its
//!   environment (the spec's `env` and `envFrom`, resolved). `tar` makes
//!   `kubectl cp` work both ways; what is written stays for the node's
//!   lifetime.
//! - **attach** joins the container's main process, which the node does
//!   not run: it echoes stdin back and otherwise stays quiet.
//! - **port-forward** reaches a tiny HTTP server on each port a container
//!   declares, answering every request with the pod's hostname; other ports
//!   refuse, as a port nobody listens on does.
//!
//! Nothing here runs real code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use vcluster_streams::{
    ContainerStreams, Exit, PortConnection, Process, ProcessOptions, StreamError, StreamTarget,
};

mod files;
mod shell;
mod tar;

use files::Files;
use shell::{Flow, Input, Output, Shell};

/// A container: its pod's uid and its name.
type ContainerKey = (String, String);

/// The simulated node's streams, for its kubelet endpoint (a real
/// kube-apiserver proxies there) and for an embedded API server
/// (`ApiServerConfig::container_streams`).
pub struct SimulatedStreams {
    client: kube::Client,
    /// Each container's files, by pod uid and container name.
    files: Mutex<HashMap<ContainerKey, Arc<Mutex<Files>>>>,
}

impl std::fmt::Debug for SimulatedStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedStreams").finish_non_exhaustive()
    }
}

impl SimulatedStreams {
    /// Streams for the pods of the cluster behind `client` (it reads their
    /// configMaps and secrets).
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The container's files, seeded from its volumes on first use.
    async fn files_of(&self, target: &StreamTarget) -> Arc<Mutex<Files>> {
        let uid = text(&target.pod, "/metadata/uid").to_owned();
        let key = (uid, target.container.clone());
        if let Some(files) = self.files.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return files;
        }
        let seeded = Arc::new(Mutex::new(
            files::seed(&self.client, &target.pod, &target.container).await,
        ));
        match self.files.lock() {
            Ok(mut map) => map.entry(key).or_insert(seeded).clone(),
            Err(_) => seeded,
        }
    }

    /// The container's environment, as the kubelet would set it.
    async fn environment(&self, target: &StreamTarget) -> Vec<(String, String)> {
        let pod = &target.pod;
        let name = text(pod, "/metadata/name");
        let hostname = pod
            .pointer("/spec/hostname")
            .and_then(Value::as_str)
            .unwrap_or(name);
        let mut env = vec![
            (
                "PATH".to_owned(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            ),
            ("HOSTNAME".to_owned(), hostname.to_owned()),
        ];
        let Some(container) = files::containers(pod)
            .find(|c| c.get("name").and_then(Value::as_str) == Some(target.container.as_str()))
        else {
            return env;
        };
        let namespace = text(pod, "/metadata/namespace");
        for source in container
            .get("envFrom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let prefix = source.get("prefix").and_then(Value::as_str).unwrap_or("");
            let data = if let Some(name) =
                source.pointer("/configMapRef/name").and_then(Value::as_str)
            {
                self.config_map(namespace, name).await
            } else if let Some(name) = source.pointer("/secretRef/name").and_then(Value::as_str) {
                self.secret(namespace, name).await
            } else {
                HashMap::new()
            };
            let mut data: Vec<_> = data.into_iter().collect();
            data.sort();
            env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
        }
        for var in container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(key) = var.get("name").and_then(Value::as_str) else {
                continue;
            };
            let value = if let Some(value) = var.get("value").and_then(Value::as_str) {
                Some(value.to_owned())
            } else if let Some(from) = var.pointer("/valueFrom/configMapKeyRef") {
                let data = self.config_map(namespace, text(from, "/name")).await;
                data.get(text(from, "/key")).cloned()
            } else if let Some(from) = var.pointer("/valueFrom/secretKeyRef") {
                let data = self.secret(namespace, text(from, "/name")).await;
                data.get(text(from, "/key")).cloned()
            } else if let Some(path) = var
                .pointer("/valueFrom/fieldRef/fieldPath")
                .and_then(Value::as_str)
            {
                field(pod, path)
            } else {
                None
            };
            env.push((key.to_owned(), value.unwrap_or_default()));
        }
        env.push(("HOME".to_owned(), "/root".to_owned()));
        env
    }

    async fn config_map(&self, namespace: &str, name: &str) -> HashMap<String, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(map)) => map.data.unwrap_or_default().into_iter().collect(),
            _ => HashMap::new(),
        }
    }

    async fn secret(&self, namespace: &str, name: &str) -> HashMap<String, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(secret)) => secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect(),
            _ => HashMap::new(),
        }
    }

    async fn start(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
        attach: bool,
    ) -> Result<Process, StreamError> {
        let phase = text(&target.pod, "/status/phase");
        if phase != "Running" {
            return Err(StreamError::bad_request(format!(
                "container {} is not running (pod phase {phase:?})",
                target.container
            )));
        }
        let mut shell = Shell {
            files: self.files_of(target).await,
            env: self.environment(target).await,
            last: 0,
        };
        let (stdin_process, stdin_client) = pipe(options.stdin);
        let (stdout_process, stdout_client) = pipe(options.stdout);
        let (stderr_process, stderr_client) = pipe(options.stderr && !options.tty);
        let (resize_tx, mut resize_rx) = mpsc::channel(4);
        tokio::spawn(async move { while resize_rx.recv().await.is_some() {} });
        let tty = options.tty;
        let output = |end: Option<tokio::io::DuplexStream>| match end {
            Some(end) => Output::Stream {
                to: Arc::new(tokio::sync::Mutex::new(Box::pin(end))),
                tty,
            },
            None => Output::Null,
        };
        let mut out = output(stdout_process);
        let mut err = match stderr_process {
            Some(end) => output(Some(end)),
            // A terminal (or a client without stderr) shows errors in
            // stdout, as a terminal merges them.
            None => match &out {
                Output::Stream { to, tty } => Output::Stream {
                    to: to.clone(),
                    tty: *tty,
                },
                _ => Output::Null,
            },
        };
        let mut input = match stdin_process {
            Some(end) => Input::Stream(Box::pin(end)),
            None => Input::Empty,
        };
        let command = options.command.clone();
        let (exit_tx, exit_rx) = oneshot::channel();
        tokio::spawn(async move {
            let code = if attach {
                let flow = shell
                    .run_command(&["cat".to_owned()], &mut input, &mut out, &mut err)
                    .await;
                if matches!(input, Input::Empty) {
                    // The main process runs on; only the client leaves.
                    std::future::pending::<()>().await;
                }
                flow_code(flow)
            } else if is_shell(&command) && !command.iter().any(|a| a == "-c") && tty {
                shell::interactive(&mut shell, &mut input, &mut out, &mut err).await
            } else {
                flow_code(
                    shell
                        .run_command(&command, &mut input, &mut out, &mut err)
                        .await,
                )
            };
            drop((out, err, input));
            let _ = exit_tx.send(code);
        });
        Ok(Process {
            stdin: stdin_client.map(|w| Box::pin(w) as vcluster_streams::ProcessInput),
            stdout: stdout_client.map(|r| Box::pin(r) as vcluster_streams::ProcessOutput),
            stderr: stderr_client.map(|r| Box::pin(r) as vcluster_streams::ProcessOutput),
            resize: Some(resize_tx),
            exit: Box::pin(async move {
                match exit_rx.await {
                    Ok(0) => Exit::Success,
                    Ok(code) => Exit::Code(code),
                    Err(_) => Exit::Error("the simulated process was lost".into()),
                }
            }),
        })
    }
}

fn flow_code(flow: Flow) -> i32 {
    match flow {
        Flow::Status(code) | Flow::Exit(code) => code,
    }
}

fn is_shell(command: &[String]) -> bool {
    command.first().is_some_and(|c| {
        matches!(
            c.rsplit('/').next().unwrap_or(c),
            "sh" | "bash" | "ash" | "dash"
        )
    })
}

/// Both ends of a pipe, when the client asked for that stream.
fn pipe(
    wanted: bool,
) -> (
    Option<tokio::io::DuplexStream>,
    Option<tokio::io::DuplexStream>,
) {
    if wanted {
        let (a, b) = tokio::io::duplex(64 * 1024);
        (Some(a), Some(b))
    } else {
        (None, None)
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// A `fieldRef` the simulated node can answer.
fn field(pod: &Value, path: &str) -> Option<String> {
    let pointer = match path {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "metadata.uid" => "/metadata/uid",
        "spec.nodeName" => "/spec/nodeName",
        "spec.serviceAccountName" => "/spec/serviceAccountName",
        "status.podIP" => "/status/podIP",
        "status.hostIP" => "/status/hostIP",
        _ => return None,
    };
    pod.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The ports the pod's containers declare.
fn declared_ports(pod: &Value) -> Vec<u16> {
    files::containers(pod)
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("containerPort").and_then(Value::as_u64))
        .filter_map(|p| u16::try_from(p).ok())
        .collect()
}

/// The simulated server behind a declared port: HTTP/1.1, every request
/// answered `200` with the pod's hostname.
async fn answer_http(mut io: tokio::io::DuplexStream, pod: String) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            if pending.len() > 64 * 1024 {
                return;
            }
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
        pending.drain(..end + 4);
        let close = head.contains("connection: close") || head.contains("http/1.0");
        let body = format!("{pod}\n");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" },
        );
        if io.write_all(response.as_bytes()).await.is_err() || close {
            let _ = io.shutdown().await;
            return;
        }
    }
}

#[async_trait]
impl ContainerStreams for SimulatedStreams {
    async fn exec(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
    ) -> Result<Process, StreamError> {
        self.start(target, options, false).await
    }

    async fn attach(
        &self,
        target: &StreamTarget,
        options: &ProcessOptions,
    ) -> Result<Process, StreamError> {
        self.start(target, options, true).await
    }

    async fn port_forward(
        &self,
        target: &StreamTarget,
        port: u16,
    ) -> Result<PortConnection, StreamError> {
        if !declared_ports(&target.pod).contains(&port) {
            return Err(StreamError::internal(format!(
                "error forwarding port {port} to pod {}: connection refused (the simulated node answers only on ports its containers declare)",
                target.pod_name
            )));
        }
        // The pod answers with its hostname, as `hostname` in it prints.
        let hostname = target
            .pod
            .pointer("/spec/hostname")
            .and_then(Value::as_str)
            .unwrap_or(&target.pod_name)
            .to_owned();
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(answer_http(ours, hostname));
        Ok(PortConnection {
            io: Box::pin(theirs),
            error: Box::pin(std::future::pending()),
        })
    }
}
