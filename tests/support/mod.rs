//! Running the demo binary as a child process and driving it with the
//! real kubectl, for the facade's end-to-end tests. Every wait has a
//! deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest wait for any condition.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The demo example, built by `cargo test` next to the test binaries.
pub fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let debug_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let binary = debug_dir.join("examples").join("demo");
    assert!(
        binary.is_file(),
        "{} is missing: cargo test builds examples; run `cargo build --example demo`",
        binary.display()
    );
    binary
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running demo process; killed if a test fails half-way.
pub struct DemoProcess {
    child: Child,
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DemoProcess {
    /// Starts the demo on `data_dir` and the given ports, with `extra`
    /// arguments, and waits for its banner.
    pub fn start(data_dir: &Path, listen: u16, host_listen: u16, extra: &[&str]) -> Self {
        let mut child = Command::new(demo_binary())
            .args(["--name", "demo", "--log-level", "warn"])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{listen}")])
            .args(["--host-listen", &format!("127.0.0.1:{host_listen}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        // Keep reading to the end, even once nobody listens: a closed pipe
        // would make the demo's next print fail.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let start = Instant::now();
        loop {
            match rx.recv_timeout(DEADLINE.saturating_sub(start.elapsed())) {
                Ok(line) if line.contains("export KUBECONFIG=") => break,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    panic!("the demo did not print its banner within {DEADLINE:?}");
                }
            }
        }
        Self { child }
    }

    /// Stops it as Ctrl-C would and waits for a clean exit.
    pub fn interrupt(self) {
        self.stop_with("INT");
    }

    /// Stops it as `kill`, systemd or a container runtime would (SIGTERM)
    /// and waits for a clean exit.
    pub fn terminate(self) {
        self.stop_with("TERM");
    }

    fn stop_with(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "the demo exited with {status} after SIG{signal}"
                );
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the demo did not stop after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs kubectl with a kubeconfig and a request timeout.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=10s")
        .args(args)
        .output()
        .expect("kubectl must be on PATH")
}

/// Runs kubectl and returns its output, failing the test if it fails.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl until its output satisfies `check`.
pub fn eventually(
    kubeconfig: &Path,
    args: &[&str],
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let out = kubectl(kubeconfig, args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && check(&stdout) {
            return stdout;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}; last output: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
