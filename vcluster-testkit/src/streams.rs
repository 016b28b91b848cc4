//! Driving container streams as a user does: `kubectl exec` fed through
//! stdin or typed into a real terminal, `kubectl port-forward` followed by
//! an HTTP request through the forwarded port.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::kubectl::kubectl_path;

/// How long one streaming kubectl may take before it is killed.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// A kubectl command against `kubeconfig`, killed when dropped, with
/// `env` set (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` picks SPDY).
pub fn kubectl(kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(kubectl_path());
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .env_remove("KUBECONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `command` with `input` on its stdin (then closed), bounded by
/// [`STREAM_TIMEOUT`].
pub async fn run_with_input(mut command: Command, input: &[u8]) -> Output {
    let mut child = command.spawn().expect("start kubectl");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        let _ = stdin.shutdown().await;
    });
    match tokio::time::timeout(STREAM_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.expect("kubectl output"),
        Err(_) => panic!("kubectl did not finish within {STREAM_TIMEOUT:?}"),
    }
}

/// Runs `command_line` in a real pseudo-terminal (util-linux `script`),
/// typing `typed` once it started; returns what the terminal showed and
/// the command's exit code.
pub async fn run_in_terminal(command_line: &str, typed: &[u8]) -> (String, i32) {
    let mut child = Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start `script` (util-linux)");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let typed = typed.to_vec();
    // Typed after the remote shell prompted; stdin stays open until the
    // command ends, as a user's keyboard does.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = stdin.write_all(&typed).await;
        tokio::time::sleep(STREAM_TIMEOUT).await;
    });
    match tokio::time::timeout(STREAM_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => {
            let output = output.expect("script output");
            (
                String::from_utf8_lossy(&output.stdout).into_owned(),
                output.status.code().unwrap_or(-1),
            )
        }
        Err(_) => panic!("`{command_line}` did not finish within {STREAM_TIMEOUT:?}"),
    }
}

/// A running `kubectl port-forward`, stopped when dropped.
pub struct PortForward {
    child: Child,
    /// The local port.
    pub port: u16,
}

impl PortForward {
    /// Starts `kubectl port-forward <target> <local>:<remote>` and waits
    /// until it listens.
    pub async fn start(kubeconfig: &Path, target: &str, remote: u16, env: &[(&str, &str)]) -> Self {
        let port = crate::free_port();
        let mapping = format!("{port}:{remote}");
        let mut child = kubectl(
            kubeconfig,
            &["port-forward", "--address=127.0.0.1", target, &mapping],
            env,
        )
        .spawn()
        .expect("start kubectl port-forward");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut seen = Vec::new();
        let ready = tokio::time::timeout(STREAM_TIMEOUT, async {
            let mut buf = [0u8; 256];
            while !String::from_utf8_lossy(&seen).contains("Forwarding from") {
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            true
        })
        .await;
        if ready != Ok(true) {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err))
                        .await;
            }
            panic!(
                "kubectl port-forward {target} did not start: {} {err}",
                String::from_utf8_lossy(&seen)
            );
        }
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            while matches!(stdout.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        Self { child, port }
    }

    /// `GET /` through the forwarded port; the whole response.
    pub async fn get(&self) -> String {
        http_get(self.port).await
    }

    /// Stops kubectl.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A plain HTTP/1.1 `GET /` to a local port; the raw response.
pub async fn http_get(port: u16) -> String {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the forwarded port");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("send the request");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        String::from_utf8_lossy(&response).into_owned()
    };
    tokio::time::timeout(STREAM_TIMEOUT, exchange)
        .await
        .expect("an answer through the forwarded port")
}
