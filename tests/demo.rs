//! The demo binary end to end: started as a child process, driven with the
//! real kubectl through the kubeconfigs it writes, stopped with SIGINT and
//! started again on the same data directory.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// The demo example, built by `cargo test` next to this test's binary.
fn demo_binary() -> PathBuf {
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running demo process; killed if the test fails half-way.
struct Demo {
    child: Child,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(data_dir: &Path, listen: u16, host_listen: u16) -> Self {
        let mut child = Command::new(demo_binary())
            .args([
                "--name",
                "demo",
                "--log-level",
                "warn",
                "--complete-after",
                "2",
            ])
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
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
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
    fn interrupt(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill -INT");
        assert!(status.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "the demo exited with {status} after SIGINT"
                );
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the demo did not stop after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout=10s")
        .args(args)
        .output()
        .expect("kubectl must be on PATH")
}

fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl until its output satisfies `check`.
fn eventually(
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

#[test]
fn the_demo_runs_a_pod_end_to_end_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (listen, host_listen) = (free_port(), free_port());
    let demo = Demo::start(&data_dir, listen, host_listen);
    let kubeconfig = data_dir.join("kubeconfig");
    let host = data_dir.join("host.kubeconfig");

    kubectl_ok(&kubeconfig, &["run", "web", "--image=nginx"]);
    kubectl_ok(&kubeconfig, &["expose", "pod", "web", "--port", "80"]);
    let pods = eventually(&kubeconfig, &["get", "pods"], "web Running", |out| {
        out.lines()
            .any(|l| l.starts_with("web ") && l.contains("Running") && l.contains("1/1"))
    });
    assert!(pods.starts_with("NAME"), "kubectl prints a table: {pods}");

    // The host holds the translated pod and service.
    let host_ns = "vcluster-demo";
    kubectl_ok(
        &host,
        &["-n", host_ns, "get", "pod", "web-x-default-x-demo"],
    );
    let host_ip = eventually(
        &host,
        &[
            "-n",
            host_ns,
            "get",
            "svc",
            "web-x-default-x-demo",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
        "the host service",
        |out| !out.trim().is_empty(),
    );
    // kubectl get svc shows the cluster IP the host assigned.
    eventually(
        &kubeconfig,
        &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"],
        "the virtual service with the host's cluster IP",
        |out| out.trim() == host_ip.trim(),
    );
    let services = kubectl_ok(&kubeconfig, &["get", "svc"]);
    assert!(services.contains(host_ip.trim()), "{services}");

    // Deleting the virtual pod removes the host pod.
    kubectl_ok(&kubeconfig, &["delete", "pod", "web", "--wait=true"]);
    eventually(
        &host,
        &["-n", host_ns, "get", "pods", "-o", "name"],
        "the host pod gone",
        |out| !out.contains("web-x-default-x-demo"),
    );

    // A pod created now must be there after a restart on the same data dir.
    kubectl_ok(&kubeconfig, &["run", "keep", "--image=nginx"]);
    eventually(
        &kubeconfig,
        &["get", "pod", "keep"],
        "keep Running",
        |out| out.contains("Running"),
    );
    demo.interrupt();

    let demo = Demo::start(&data_dir, listen, host_listen);
    let pods = kubectl_ok(&kubeconfig, &["get", "pods"]);
    assert!(
        pods.lines().any(|l| l.starts_with("keep ")),
        "the pod survived the restart: {pods}"
    );
    eventually(
        &kubeconfig,
        &["get", "pod", "keep"],
        "keep Running again",
        |out| out.contains("Running"),
    );
    eventually(
        &host,
        &["-n", host_ns, "get", "pods", "-o", "name"],
        "keep re-created on the host",
        |out| out.contains("keep-x-default-x-demo"),
    );
    demo.interrupt();
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--host-listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("run the demo");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already in use") && stderr.contains("--listen"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_host_kubeconfig_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.kubeconfig");
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--host-kubeconfig")
        .arg(&missing)
        .output()
        .expect("run the demo");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("host kubeconfig") && stderr.contains("nope.kubeconfig"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_host_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("host.kubeconfig");
    // Nothing listens on this port (bound and released just now).
    let url = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: h\n  cluster:\n    server: {url}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: h\n  context:\n    cluster: h\n    user: u\ncurrent-context: h\n"),
    )
    .expect("write kubeconfig");
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--host-kubeconfig")
        .arg(&kubeconfig)
        .output()
        .expect("run the demo");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the host cluster"), "{stderr}");
}

#[test]
fn an_incompatible_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("VERSION"), "999\n").expect("write");
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--host-listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("run the demo");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("incompatible version"), "{stderr}");
}
