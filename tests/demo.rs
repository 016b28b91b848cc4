//! The demo binary end to end: started as a child process, driven with the
//! real kubectl through the kubeconfigs it writes, stopped with SIGINT (or
//! SIGTERM) and started again on the same data directory.

use std::net::TcpListener;
use std::process::Command;

use vcluster_testkit::demo::{demo_binary, DemoProcess, DEADLINE};
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::{eventually_prints, run_ok as kubectl_ok};

#[test]
fn the_demo_runs_a_pod_end_to_end_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (listen, host_listen) = (free_port(), free_port());
    let demo = DemoProcess::start(&data_dir, listen, host_listen, &["--complete-after", "2"]);
    let kubeconfig = data_dir.join("kubeconfig");
    let host = data_dir.join("host.kubeconfig");

    kubectl_ok(&kubeconfig, &["run", "web", "--image=nginx"]);
    kubectl_ok(&kubeconfig, &["expose", "pod", "web", "--port", "80"]);
    let pods = eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "pods"],
        "web Running",
        |out| {
            out.lines()
                .any(|l| l.starts_with("web ") && l.contains("Running") && l.contains("1/1"))
        },
    );
    assert!(pods.starts_with("NAME"), "kubectl prints a table: {pods}");
    // The syncer's counters are scraped from the virtual API server.
    let metrics = kubectl_ok(&kubeconfig, &["get", "--raw", "/metrics"]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("vcluster_syncer_reconciles_total{syncer=\"pods\"} ")),
        "{metrics}"
    );
    // kubectl logs: the virtual server reads the host pod's log, which the
    // simulated node writes.
    let logs = kubectl_ok(&kubeconfig, &["logs", "web"]);
    assert!(
        logs.contains("simulated node demo-node started container web (image nginx)"),
        "{logs}"
    );

    // The host holds the translated pod and service.
    let host_ns = "vcluster-demo";
    kubectl_ok(
        &host,
        &["-n", host_ns, "get", "pod", "web-x-default-x-demo"],
    );
    let host_ip = eventually_prints(
        DEADLINE,
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
    eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"],
        "the virtual service with the host's cluster IP",
        |out| out.trim() == host_ip.trim(),
    );
    let services = kubectl_ok(&kubeconfig, &["get", "svc"]);
    assert!(services.contains(host_ip.trim()), "{services}");

    // Deleting the virtual pod removes the host pod.
    kubectl_ok(&kubeconfig, &["delete", "pod", "web", "--wait=true"]);
    eventually_prints(
        DEADLINE,
        &host,
        &["-n", host_ns, "get", "pods", "-o", "name"],
        "the host pod gone",
        |out| !out.contains("web-x-default-x-demo"),
    );

    // A pod created now must be there after a restart on the same data dir.
    kubectl_ok(&kubeconfig, &["run", "keep", "--image=nginx"]);
    eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "pod", "keep"],
        "keep Running",
        |out| out.contains("Running"),
    );
    demo.interrupt();

    let demo = DemoProcess::start(&data_dir, listen, host_listen, &["--complete-after", "2"]);
    let pods = kubectl_ok(&kubeconfig, &["get", "pods"]);
    assert!(
        pods.lines().any(|l| l.starts_with("keep ")),
        "the pod survived the restart: {pods}"
    );
    eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "pod", "keep"],
        "keep Running again",
        |out| out.contains("Running"),
    );
    eventually_prints(
        DEADLINE,
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

#[test]
fn sigterm_stops_the_demo_cleanly_and_keeps_the_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let kubeconfig = data_dir.join("kubeconfig");
    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &[]);
    kubectl_ok(
        &kubeconfig,
        &["create", "configmap", "kept", "--from-literal=k=v"],
    );
    demo.terminate();

    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &[]);
    let value = kubectl_ok(
        &kubeconfig,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(value, "v");
    demo.terminate();
}

#[test]
fn a_bad_log_level_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--log-level", "vcluster_syncer=loud"])
        .output()
        .expect("run the demo");
    assert_eq!(out.status.code(), Some(2), "clap's usage-error exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--log-level") && stderr.contains("not a log filter"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing is written before the arguments are valid"
    );
}

#[test]
fn leader_election_timings_that_cannot_work_are_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A renew deadline past the lease duration: a leader could act after
    // another took over.
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--leader-elect", "--leader-elect-renew-deadline", "90s"])
        .output()
        .expect("run the demo");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--leader-elect") && stderr.contains("renew deadline"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists());
    let out = Command::new(demo_binary())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--leader-elect", "--leader-elect-retry-period", "soon"])
        .output()
        .expect("run the demo");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a duration"), "{stderr}");
}
