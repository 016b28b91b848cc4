//! The virtual controllers in the demo, end to end: the demo binary (an
//! embedded host with a simulated node, the virtual API server, the
//! syncer and the controllers) driven with the real kubectl, as a tenant
//! would: Deployments roll out to pods Running on both sides, scale, roll
//! forward and back, Services get endpoints, Jobs complete, and deleting
//! a Deployment takes its pods with it.

use std::path::PathBuf;
use std::process::Output;

use vcluster_testkit::demo::{DemoProcess, DEADLINE};
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::{eventually_prints, run as kubectl, run_ok as kubectl_ok};

const HOST_NAMESPACE: &str = "vcluster-demo";

/// A running demo with its kubeconfigs; stopped when dropped.
struct Demo {
    _process: DemoProcess,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    host: PathBuf,
}

impl Demo {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let process = DemoProcess::start(
            &data_dir,
            free_port(),
            free_port(),
            &["--complete-after", "1"],
        );
        Self {
            _process: process,
            kubeconfig: data_dir.join("kubeconfig"),
            host: data_dir.join("host.kubeconfig"),
            _dir: dir,
        }
    }

    /// kubectl against the virtual cluster.
    fn kubectl(&self, args: &[&str]) -> Output {
        kubectl(&self.kubeconfig, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        kubectl_ok(&self.kubeconfig, args)
    }

    /// kubectl against the host namespace.
    fn host_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", HOST_NAMESPACE];
        all.extend_from_slice(args);
        kubectl_ok(&self.host, &all)
    }

    /// Runs kubectl (virtual side) until its output satisfies `check`.
    fn eventually(&self, args: &[&str], what: &str, check: impl Fn(&str) -> bool) -> String {
        eventually_prints(DEADLINE, &self.kubeconfig, args, what, check)
    }

    fn host_eventually(&self, args: &[&str], what: &str, check: impl Fn(&str) -> bool) -> String {
        let mut all = vec!["-n", HOST_NAMESPACE];
        all.extend_from_slice(args);
        eventually_prints(DEADLINE, &self.host, &all, what, check)
    }
}

/// Rows of `kubectl get pods --no-headers` for pods named `prefix-...` in
/// `status` (`Running`, `Terminating`, ...).
fn rows<'a>(table: &'a str, prefix: &str, status: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|l| l.starts_with(&format!("{prefix}-")))
        .filter(|l| l.split_whitespace().nth(2) == Some(status))
        .collect()
}

/// `n` pods of `app` Running (1/1) on the virtual side and their `n`
/// translated copies Running on the host.
fn wait_for_running(demo: &Demo, app: &str, n: usize) {
    demo.eventually(
        &["get", "pods", "--no-headers"],
        &format!("{n} {app} pods Running"),
        |out| {
            let running = rows(out, app, "Running");
            running.len() == n && running.iter().all(|l| l.contains("1/1"))
        },
    );
    demo.host_eventually(
        &["get", "pods", "--no-headers"],
        &format!("{n} translated {app} pods Running on the host"),
        |out| {
            let running = rows(out, app, "Running");
            running.len() == n
                && running.iter().all(|l| {
                    l.split_whitespace()
                        .next()
                        .is_some_and(|name| name.ends_with("-x-default-x-demo"))
                })
        },
    );
}

/// The IPs of the Running (not terminating) pods of `app`.
fn pod_ips(demo: &Demo, app: &str) -> Vec<String> {
    let out = demo.ok(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "wide",
        "--no-headers",
    ]);
    let mut ips: Vec<String> = rows(&out, app, "Running")
        .iter()
        .filter_map(|l| l.split_whitespace().nth(5).map(str::to_owned))
        .collect();
    ips.sort();
    ips
}

fn endpoint_ips(out: &str) -> Vec<String> {
    let mut ips: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    ips.sort();
    ips
}

fn rollout_status(demo: &Demo, what: &str) {
    let out = demo.ok(&["rollout", "status", what, "--timeout=60s"]);
    assert!(out.contains("successfully rolled out"), "{out}");
}

#[test]
fn deployments_jobs_and_services_work_end_to_end() {
    let demo = Demo::start();

    // A Deployment: 3 pods on both sides, a complete rollout.
    demo.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=3",
    ]);
    wait_for_running(&demo, "web", 3);
    rollout_status(&demo, "deployment/web");
    let rs = demo.ok(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(rs.split_whitespace().count(), 1, "one ReplicaSet: {rs}");

    // A Service over it: endpoints with the pods' IPs (from the host).
    demo.ok(&["expose", "deployment", "web", "--port=80"]);
    let ips = pod_ips(&demo, "web");
    assert_eq!(ips.len(), 3);
    demo.eventually(
        &[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ],
        "endpoints with the 3 pod IPs",
        |out| endpoint_ips(out) == ips,
    );
    demo.eventually(
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ],
        "an endpoint slice with the 3 pod IPs",
        |out| endpoint_ips(out) == ips,
    );

    // Scale up: 5 everywhere, and in the endpoints.
    demo.ok(&["scale", "deployment", "web", "--replicas=5"]);
    rollout_status(&demo, "deployment/web");
    wait_for_running(&demo, "web", 5);
    let ips = pod_ips(&demo, "web");
    demo.eventually(
        &[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ],
        "endpoints with the 5 pod IPs",
        |out| endpoint_ips(out) == ips,
    );

    // Roll forward with a JSON patch (what `set image` does, without
    // needing strategic merge patch), then back with `rollout undo`.
    demo.ok(&[
        "patch", "deployment", "web", "--type=json",
        "-p", r#"[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"nginx:1.27"}]"#,
    ]);
    rollout_status(&demo, "deployment/web");
    demo.eventually(
        &["get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.spec.containers[0].image} {.metadata.deletionTimestamp}{\"\\n\"}{end}"],
        "5 live pods on nginx:1.27",
        |out| {
            let live: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty() && l.split_whitespace().count() == 1).collect();
            live.len() == 5 && live.iter().all(|l| l.trim() == "nginx:1.27")
        },
    );
    let history = demo.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    demo.ok(&["rollout", "undo", "deployment/web"]);
    rollout_status(&demo, "deployment/web");
    let image = demo.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx");
    let history = demo.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["2", "3"], "revision 1 became 3: {history}");
    wait_for_running(&demo, "web", 5);

    // Scale down.
    demo.ok(&["scale", "deployment", "web", "--replicas=2"]);
    rollout_status(&demo, "deployment/web");
    demo.eventually(
        &["get", "pods", "--no-headers"],
        "2 web pods Running",
        |out| rows(out, "web", "Running").len() == 2,
    );

    // A Job runs to completion (the simulated node finishes its pod).
    demo.ok(&[
        "create",
        "job",
        "pi",
        "--image=perl",
        "--",
        "perl",
        "-e",
        "print 1",
    ]);
    demo.ok(&[
        "wait",
        "--for=condition=complete",
        "job/pi",
        "--timeout=60s",
    ]);
    let succeeded = demo.ok(&["get", "job", "pi", "-o", "jsonpath={.status.succeeded}"]);
    assert_eq!(succeeded, "1");
    let host_pods = demo.host_ok(&["get", "pods", "--no-headers"]);
    assert!(
        host_pods.lines().any(|l| l.starts_with("pi-")
            && l.contains("-x-default-x-demo")
            && l.contains("Completed")),
        "{host_pods}"
    );

    // Every namespace has its default service account and the root CA.
    demo.ok(&["create", "namespace", "team-a"]);
    demo.eventually(
        &[
            "-n",
            "team-a",
            "get",
            "serviceaccount",
            "default",
            "-o",
            "name",
        ],
        "the default service account",
        |out| out.contains("serviceaccount/default"),
    );
    demo.eventually(
        &[
            "-n",
            "team-a",
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ],
        "the root CA",
        |out| out.contains("BEGIN CERTIFICATE"),
    );

    // Deleting the Deployment deletes its ReplicaSets and every pod, on
    // both sides.
    demo.ok(&["delete", "deployment", "web"]);
    demo.eventually(
        &["get", "rs", "-l", "app=web", "-o", "name"],
        "no web ReplicaSets",
        |out| out.trim().is_empty(),
    );
    demo.eventually(&["get", "pods", "--no-headers"], "no web pods", |out| {
        !out.lines().any(|l| l.starts_with("web-"))
    });
    demo.host_eventually(
        &["get", "pods", "--no-headers"],
        "no web pods on the host",
        |out| !out.lines().any(|l| l.starts_with("web-")),
    );
}

#[test]
fn kubectl_set_image_and_rollout_restart_roll_out() {
    // Both send strategic merge patches.
    let demo = Demo::start();
    demo.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    rollout_status(&demo, "deployment/web");
    demo.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    rollout_status(&demo, "deployment/web");
    let image = demo.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.27");
    demo.ok(&["rollout", "restart", "deployment/web"]);
    rollout_status(&demo, "deployment/web");
    let history = demo.ok(&["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2", "3"], "{history}");
    let out = demo.kubectl(&["rollout", "undo", "deployment/web", "--to-revision=1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rollout_status(&demo, "deployment/web");
    let image = demo.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx");
}

const DAEMON_SET: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: busybox
"#;

#[test]
fn a_daemon_set_runs_on_the_simulated_node_before_any_other_pod() {
    let demo = Demo::start();
    // The embedded host's nodes are all shown from the start (`--nodes`
    // defaults to `all` there), so a DaemonSet has somewhere to run.
    demo.eventually(
        &["get", "nodes", "--no-headers"],
        "the simulated node",
        |out| {
            out.lines().any(|l| {
                l.starts_with("demo-node ") && l.split_whitespace().nth(1) == Some("Ready")
            })
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("agent.yaml");
    std::fs::write(&manifest, DAEMON_SET).expect("write the manifest");
    demo.ok(&["apply", "-f", &manifest.display().to_string()]);
    wait_for_running(&demo, "agent", 1);
    rollout_status(&demo, "daemonset/agent");
    let node = demo.ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert_eq!(node, "demo-node");

    // A new image rolls out, and the history allows going back.
    demo.ok(&["set", "image", "daemonset/agent", "agent=busybox:2"]);
    rollout_status(&demo, "daemonset/agent");
    let history = demo.ok(&["rollout", "history", "daemonset/agent"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    demo.ok(&["rollout", "undo", "daemonset/agent"]);
    rollout_status(&demo, "daemonset/agent");
    demo.eventually(
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ],
        "the agent pod back on the first image",
        |out| out == "busybox",
    );
    let history = demo.ok(&["rollout", "history", "daemonset/agent"]);
    assert!(
        history.contains("\n2 ") && history.contains("\n3 "),
        "{history}"
    );
}

/// A Deployment whose pods say (through the demo's simulated metrics)
/// that each uses three times its CPU request.
const BUSY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: busy
spec:
  replicas: 1
  selector:
    matchLabels:
      app: busy
  template:
    metadata:
      labels:
        app: busy
      annotations:
        metrics.vcluster.dev/cpu: 300m
    spec:
      containers:
      - name: busy
        image: busybox:1
        resources:
          requests:
            cpu: 100m
"#;

#[test]
fn kubectl_autoscale_scales_up_on_the_demos_simulated_usage() {
    let demo = Demo::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("busy.yaml");
    std::fs::write(&manifest, BUSY).expect("write the manifest");
    demo.ok(&["apply", "-f", &manifest.display().to_string()]);
    wait_for_running(&demo, "busy", 1);
    let out = demo.ok(&[
        "autoscale",
        "deployment",
        "busy",
        "--min=1",
        "--max=3",
        "--cpu-percent=50",
    ]);
    assert!(out.contains("autoscaled"), "{out}");
    // 300% of the request against 50%: up to the maximum.
    demo.eventually(
        &["get", "hpa", "busy", "--no-headers"],
        "the autoscaler at its maximum with the usage it read",
        |out| out.contains("cpu: 300%/50%") && out.split_whitespace().nth(5) == Some("3"),
    );
    wait_for_running(&demo, "busy", 3);
}
