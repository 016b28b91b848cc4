//! The real `kubectl`, bounded: against our own API server ([`Cluster`]'s
//! `kubectl*` methods, each with a private cache and home, killed after
//! [`KUBECTL_TIMEOUT`]), long-running ones whose output a test reads as it
//! comes ([`StreamingChild`]), the tables it prints ([`Table`]), and
//! blocking calls for tests that drive a separate process such as the demo
//! ([`run`], [`run_ok`], [`eventually_prints`]).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cluster::Cluster;
use crate::{eventually_every, eventually_explained, DEADLINE};

/// Hard limit of one `kubectl` process; it is killed after this.
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);
/// The `--request-timeout` every `kubectl` call gets.
pub const KUBECTL_REQUEST_TIMEOUT: &str = "10s";
/// Where the real kubectl is: the first `kubectl` on `PATH`. Fails the
/// test with a clear message when there is none.
pub fn kubectl_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "kubectl is not on PATH: the end-to-end tests drive the real kubectl binary \
         (v1.32, normally /usr/bin/kubectl); install it or add it to PATH (.ci/run checks for it)"
    );
}

impl Cluster {
    /// A `kubectl` command against this server: its kubeconfig, a private
    /// cache and home, a bounded request timeout, killed when dropped.
    pub fn kubectl_command(&self, args: &[&str], request_timeout: &str) -> Command {
        self.kubectl_command_with(&self.kubeconfig, args, request_timeout)
    }

    /// Like [`Cluster::kubectl_command`] with another kubeconfig (and a
    /// cache of its own, so users do not share discovery).
    pub fn kubectl_command_with(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        request_timeout: &str,
    ) -> Command {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create kubectl's home");
        let cache = match kubeconfig.file_stem() {
            Some(stem) if kubeconfig != self.kubeconfig => {
                format!("cache-{}", stem.to_string_lossy())
            }
            _ => "cache".to_owned(),
        };
        let mut command = Command::new(kubectl_path());
        command
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                self.dir.path().join(cache).display()
            ))
            .arg(format!("--request-timeout={request_timeout}"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs `kubectl args...`; the process is killed (and the test fails)
    /// if it does not finish within [`KUBECTL_TIMEOUT`].
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args).await
    }

    /// Runs `kubectl args...` with another kubeconfig (bounded like
    /// [`Cluster::kubectl`]).
    pub async fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        bounded(
            self.kubectl_command_with(kubeconfig, args, KUBECTL_REQUEST_TIMEOUT),
            args,
        )
        .await
    }

    /// Runs `kubectl args...`, requires success, returns its stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl_ok_as(&self.kubeconfig, args).await
    }

    /// Runs `kubectl args...` with another kubeconfig, requires failure,
    /// returns its stderr.
    pub async fn kubectl_err_as(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let output = self.kubectl_as(kubeconfig, args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "kubectl {args:?} with {} should have failed:\nstdout: {}\nstderr: {stderr}",
            kubeconfig.display(),
            String::from_utf8_lossy(&output.stdout),
        );
        stderr
    }

    /// Runs `kubectl args...` with another kubeconfig, requires success,
    /// returns its stdout.
    pub async fn kubectl_ok_as(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let output = self.kubectl_as(kubeconfig, args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Runs `kubectl args...`, requires failure, returns its stderr.
    pub async fn kubectl_err(&self, args: &[&str]) -> String {
        let output = self.kubectl(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !output.status.success(),
            "kubectl {args:?} should have failed:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&output.stdout),
        );
        stderr
    }

    /// Starts a long-running `kubectl` (e.g. `get -w`) whose stdout lines
    /// are collected as they come; it is killed when the handle drops.
    pub fn kubectl_stream(&self, args: &[&str]) -> StreamingChild {
        let mut child = self
            .kubectl_command(args, "60s")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kubectl {args:?}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().expect("lines lock").push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let err_sink = stderr.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text).await;
            err_sink.lock().expect("stderr lock").push_str(&text);
        });
        StreamingChild {
            child,
            lines,
            stderr,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// A `kubectl` that keeps running (such as `get -w`), with its output so far.
pub struct StreamingChild {
    /// The process (killed on drop).
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    args: Vec<String>,
}

impl StreamingChild {
    /// The stdout lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines lock").clone()
    }

    /// Waits (bounded) until a printed line satisfies `check`.
    pub async fn wait_for_line(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let what = format!("kubectl {:?} to print a line with {what}", self.args);
        eventually_explained(DEADLINE, &what, || async {
            let lines = self.lines();
            match lines.iter().find(|l| check(l)) {
                Some(line) => Ok(line.clone()),
                None => Err(format!(
                    "stdout: {lines:#?}; stderr: {}",
                    self.stderr.lock().expect("stderr lock")
                )),
            }
        })
        .await
    }

    /// Kills the process and returns everything it printed.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        self.lines()
    }
}

/// The table printed by `kubectl get`: header cells and row cells.
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Cells of each row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Splits kubectl's column output (cells separated by 2+ spaces or
    /// aligned at the header's column starts).
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header_line = lines.next().unwrap_or_default();
        let starts = column_starts(header_line);
        let cut = |line: &str| -> Vec<String> {
            starts
                .iter()
                .enumerate()
                .map(|(i, &start)| {
                    let end = starts.get(i + 1).copied().unwrap_or(line.len());
                    line.get(start.min(line.len())..end.min(line.len()))
                        .unwrap_or("")
                        .trim()
                        .to_owned()
                })
                .collect()
        };
        Self {
            header: cut(header_line),
            rows: lines.map(cut).collect(),
        }
    }

    /// The row whose first cell is `name`.
    pub fn row(&self, name: &str) -> &[String] {
        self.rows
            .iter()
            .find(|r| r.first().map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no row {name:?} in table {:?}", self.rows))
    }

    /// The cell of `row` under column `title`.
    pub fn cell<'a>(&'a self, row: &'a [String], title: &str) -> &'a str {
        let index = self
            .header
            .iter()
            .position(|h| h == title)
            .unwrap_or_else(|| panic!("no column {title:?} in {:?}", self.header));
        row.get(index).map(String::as_str).unwrap_or("")
    }
}

fn column_starts(header: &str) -> Vec<usize> {
    let bytes = header.as_bytes();
    let mut starts = Vec::new();
    for i in 0..bytes.len() {
        let starts_word = bytes[i] != b' ' && (i == 0 || bytes[i - 1] == b' ');
        // Titles such as "NOMINATED NODE" contain one space: a column starts
        // after two or more spaces (or at the beginning).
        let after_gap = i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' ');
        if starts_word && after_gap {
            starts.push(i);
        }
    }
    starts
}

/// Runs `kubectl --kubeconfig <kubeconfig> args...` with a bounded request
/// timeout; the process is killed (and the test fails) if it does not
/// finish within [`KUBECTL_TIMEOUT`].
pub async fn run_async(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(kubectl_path());
    command
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--request-timeout={KUBECTL_REQUEST_TIMEOUT}"))
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    bounded(command, args).await
}

/// Runs a kubectl `command` (made with `kill_on_drop`) to its end, or
/// kills it and fails the test after [`KUBECTL_TIMEOUT`].
async fn bounded(mut command: Command, args: &[&str]) -> Output {
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start kubectl {args:?}: {e}"));
    match tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("kubectl {args:?} failed: {e}")),
        // Dropping the future drops the child, which kills it.
        Err(_) => {
            panic!("kubectl {args:?} did not finish within {KUBECTL_TIMEOUT:?} and was killed")
        }
    }
}

/// Runs `kubectl --kubeconfig <kubeconfig> args...` with a bounded request
/// timeout, blocking the calling thread.
pub fn run(kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg(format!("--request-timeout={KUBECTL_REQUEST_TIMEOUT}"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl {args:?}: {e}"))
}

/// [`run`], requiring success; returns its stdout.
pub fn run_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = run(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kubectl (blocking) until it succeeds and its output satisfies
/// `check`, within `deadline`; returns that output. On timeout the test
/// fails with the last output, which usually says why.
pub fn eventually_prints(
    deadline: Duration,
    kubeconfig: &Path,
    args: &[&str],
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime for a blocking wait");
    runtime.block_on(eventually_every(
        deadline,
        Duration::from_millis(200),
        what,
        || async {
            let out = run(kubeconfig, args);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && check(&stdout) {
                return Ok(stdout);
            }
            Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        },
    ))
}
