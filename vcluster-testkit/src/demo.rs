//! The demo binary (the facade's `examples/demo`) as a child process, for
//! the end-to-end tests that drive it with the real kubectl
//! ([`crate::kubectl::run`]): started on loopback ports, waited for by its
//! banner, stopped by a signal as a user would, killed if a test fails
//! half-way.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest wait for the demo (its start, its stop, what it serves): it is
/// a whole virtual cluster and its host, on a busy machine.
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

/// Waits until a demo started with a piped standard output prints its
/// banner (the `export KUBECONFIG=` line), within `deadline`. The output
/// keeps being read to its end, even once nobody listens: a closed pipe
/// would make the demo's next print fail.
pub fn wait_for_banner(child: &mut Child, deadline: Duration) -> Result<(), String> {
    let stdout = child
        .stdout
        .take()
        .ok_or("the demo's standard output is not piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    loop {
        match rx.recv_timeout(deadline.saturating_sub(start.elapsed())) {
            Ok(line) if line.contains("export KUBECONFIG=") => return Ok(()),
            Ok(_) => continue,
            Err(_) => {
                return Err(format!(
                    "the demo did not print its banner within {deadline:?}"
                ))
            }
        }
    }
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
        if let Err(err) = wait_for_banner(&mut child, DEADLINE) {
            let _ = child.kill();
            panic!("{err}");
        }
        Self { child }
    }

    /// Kills it with SIGKILL (a crash: nothing is flushed, no lease is
    /// released) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it still runs (a replica that lost its leadership exits).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How it exited, once it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
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

/// Seeds `to` (a new data directory) with the credentials of the demo
/// data directory `from`: the CA, the serving certificate, the
/// service-account key and the encryption configuration, so another
/// replica of the same virtual cluster (sharing its store) signs and
/// accepts the same tokens and certificates and reads the same encrypted
/// secrets. Kubeconfigs and local stores are left out: each replica writes
/// its own.
pub fn copy_credentials(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        let skip = name_text.ends_with("kubeconfig") || name_text.starts_with("virtual.db");
        if skip || !entry.file_type()?.is_file() {
            continue;
        }
        std::fs::copy(entry.path(), to.join(&name))?;
    }
    Ok(())
}
