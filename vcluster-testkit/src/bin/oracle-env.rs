//! The environment upstream's own suites run against (kube-rs's cluster
//! tests, the Kubernetes conformance suite): the reference host
//! ([`RealHost`]: kube-apiserver, kube-controller-manager, etcd and a
//! simulated node) and, with `--demo`, the demo virtual cluster synced into
//! it. Writes `host.kubeconfig` (and `virtual.kubeconfig`) into the output
//! folder, then `ready`, and runs until SIGINT or SIGTERM (or, with
//! `--until-stdin-closes`, until its standard input ends: a script that
//! holds the pipe cannot leave it behind even when killed); then it stops
//! everything it started.
//!
//! ```text
//! oracle-env --out DIR [--demo target/debug/examples/demo] [--until-stdin-closes]
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vcluster_testkit::demo::wait_for_banner;
use vcluster_testkit::free_ports;
use vcluster_testkit::real_host::{RealHost, RealHostOptions};

/// Longest wait for the demo's banner.
const DEMO_DEADLINE: Duration = Duration::from_secs(120);

struct Args {
    out: PathBuf,
    demo: Option<PathBuf>,
    until_stdin_closes: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut demo = None;
    let mut until_stdin_closes = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--demo" => demo = args.next().map(PathBuf::from),
            "--until-stdin-closes" => until_stdin_closes = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.ok_or("--out DIR is required")?;
    Ok(Args {
        out,
        demo,
        until_stdin_closes,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            if !err.is_empty() {
                eprintln!("error: {err}");
            }
            eprintln!(
                "usage: oracle-env --out DIR [--demo PATH-TO-DEMO-BINARY] [--until-stdin-closes]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let _ = std::fs::remove_file(args.out.join("ready"));
    let host = RealHost::start(RealHostOptions::default()).map_err(|e| e.to_string())?;
    copy(host.kubeconfig(), &args.out.join("host.kubeconfig"))?;
    eprintln!("real host: {}", host.url());

    let demo = match &args.demo {
        Some(binary) => Some(start_demo(binary, &host, &args.out)?),
        None => None,
    };
    std::fs::write(args.out.join("ready"), b"").map_err(|e| e.to_string())?;
    eprintln!("ready: {}", args.out.display());

    wait_for_stop(args.until_stdin_closes);
    if let Some(mut demo) = demo {
        stop_child(&mut demo);
    }
    drop(host);
    Ok(())
}

/// Starts the demo with the real host as its host and waits for its
/// banner; the virtual cluster's kubeconfig is copied next to the host's.
fn start_demo(binary: &Path, host: &RealHost, out: &Path) -> Result<Child, String> {
    let data_dir = out.join("demo-data");
    let _ = std::fs::remove_dir_all(&data_dir);
    let [listen, host_listen] = free_ports();
    let mut child = Command::new(binary)
        .args(["--name", "demo", "--log-level", "warn"])
        .arg("--host-kubeconfig")
        .arg(host.kubeconfig())
        .args(["--host-service-cidr", host.service_cidr()])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--host-listen", &format!("127.0.0.1:{host_listen}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    if let Err(err) = wait_for_banner(&mut child, DEMO_DEADLINE) {
        stop_child(&mut child);
        return Err(err);
    }
    copy(
        &data_dir.join("kubeconfig"),
        &out.join("virtual.kubeconfig"),
    )?;
    Ok(child)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// Blocks until SIGINT or SIGTERM arrives or, when asked, standard input
/// reaches its end (the script that started us went away).
fn wait_for_stop(until_stdin_closes: bool) {
    let (tx, rx) = mpsc::channel::<()>();
    let on_signal = tx.clone();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        });
        let _ = on_signal.send(());
    });
    if until_stdin_closes {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = tx.send(());
        });
    }
    let _ = rx.recv();
}

/// SIGTERM, a bounded wait, then SIGKILL.
fn stop_child(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
