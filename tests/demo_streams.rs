//! `kubectl exec`, `cp` and `port-forward` in the demo virtual cluster, as
//! a tenant types them: the virtual API server opens each stream on the
//! host pod (the syncer's `HostContainerStreams`), where the simulated
//! node answers. Run once on the embedded host and once on a real
//! kube-apiserver host, where kube-apiserver reaches the simulated node's
//! kubelet endpoint (translating WebSocket to SPDY as it does for real
//! kubelets).

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vcluster_testkit::demo::{DemoProcess, DEADLINE};
use vcluster_testkit::eventually_explained;
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::{run_async, run_ok};
use vcluster_testkit::real_host::RealHost;
use vcluster_testkit::streams::{kubectl, run_in_terminal, run_with_input, PortForward};

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: app
    image: nginx
    ports: [{containerPort: 8080}]
    env:
    - {name: MODE, value: demo}
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
    volumeMounts: [{name: config, mountPath: /etc/config}]
  volumes:
  - {name: config, configMap: {name: app-config}}
"#;

/// Everything a tenant does with streams, against the virtual cluster of
/// `kubeconfig`.
async fn tenant_streams(kubeconfig: &Path, scratch: &Path) {
    let manifest = scratch.join("app.yaml");
    std::fs::write(&manifest, APP).expect("write the manifest");
    run_ok(
        kubeconfig,
        &["apply", "-f", manifest.to_str().expect("UTF-8")],
    );
    eventually_explained(DEADLINE, "pod web to run", || async {
        let out = run_async(kubeconfig, &["get", "pod", "web"]).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("Running") {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
    let exec =
        |args: &[&str], input: &'static [u8]| run_with_input(kubectl(kubeconfig, args, &[]), input);
    let stdout = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();

    // The environment the pod spec gives, with the configMap reference
    // resolved, and the pod's own hostname (its virtual name).
    let env = exec(&["exec", "web", "--", "env"], b"").await;
    assert!(env.status.success(), "{env:?}");
    for line in ["MODE=demo", "GREETING=hello", "HOSTNAME=web"] {
        assert!(stdout(&env).lines().any(|l| l == line), "{line}: {env:?}");
    }
    assert_eq!(
        stdout(&exec(&["exec", "web", "--", "hostname"], b"").await),
        "web\n"
    );
    // The configMap volume's file, as mounted.
    let cat = exec(&["exec", "web", "--", "cat", "/etc/config/greeting"], b"").await;
    assert_eq!(stdout(&cat), "hello");

    // Exit codes and stdin.
    let failed = exec(&["exec", "web", "--", "sh", "-c", "exit 3"], b"").await;
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    let piped = exec(&["exec", "-i", "web", "--", "cat"], b"through stdin\n").await;
    assert_eq!(stdout(&piped), "through stdin\n");

    // A terminal: what is typed is echoed, run, and `exit` ends the session
    // with its code.
    let command = format!(
        "{} --kubeconfig={} exec -it web -- sh",
        vcluster_testkit::kubectl::kubectl_path().display(),
        kubeconfig.display()
    );
    let (screen, code) = run_in_terminal(&command, b"echo typed here\rexit 5\r").await;
    assert!(
        screen.contains("echo typed here\r\ntyped here\r\n"),
        "{screen:?}"
    );
    assert_eq!(code, 5, "{screen:?}");

    // kubectl cp both ways (it runs tar in the container).
    let local = scratch.join("notes.txt");
    std::fs::write(&local, "copied in\n").expect("write a local file");
    run_ok(
        kubeconfig,
        &["cp", local.to_str().expect("UTF-8"), "web:/tmp/notes.txt"],
    );
    let back = exec(&["exec", "web", "--", "cat", "/tmp/notes.txt"], b"").await;
    assert_eq!(stdout(&back), "copied in\n");
    let fetched = scratch.join("greeting.txt");
    run_ok(
        kubeconfig,
        &[
            "cp",
            "web:/etc/config/greeting",
            fetched.to_str().expect("UTF-8"),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&fetched).expect("copied out"),
        "hello"
    );

    // port-forward, then HTTP through it.
    let forward = PortForward::start(kubeconfig, "pod/web", 8080, &[]).await;
    let response = forward.get().await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\nweb\n"), "{response}");
    forward.stop().await;
    // A port nobody listens on: kubectl reports the node's refusal.
    let refused = PortForward::start(kubeconfig, "pod/web", 9999, &[]).await;
    let response = refused.get().await;
    assert!(response.is_empty(), "{response}");
    refused.stop().await;

    // kubectl debug: the ephemeral container reaches the host pod, and
    // exec finds it there.
    run_ok(
        kubeconfig,
        &["debug", "web", "--image=busybox", "--container=dbg"],
    );
    eventually_explained(DEADLINE, "exec into the ephemeral container", || async {
        let out = exec(&["exec", "web", "-c", "dbg", "--", "hostname"], b"").await;
        if stdout(&out) == "web\n" {
            Ok(())
        } else {
            Err(format!("{out:?}"))
        }
    })
    .await;

    // kube-rs's own clients.
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("config"),
    )
    .expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut process = pods
        .exec(
            "web",
            ["cat", "/etc/config/greeting"],
            &AttachParams::default().stderr(false),
        )
        .await
        .expect("kube-rs exec");
    let mut out = String::new();
    process
        .stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert_eq!(out, "hello");
    let status = process
        .take_status()
        .expect("status")
        .await
        .expect("a status");
    assert_eq!(status.status.as_deref(), Some("Success"));
    let mut forwarder = pods
        .portforward("web", &[8080])
        .await
        .expect("kube-rs portforward");
    let mut stream = forwarder.take_stream(8080).expect("the port's stream");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.ends_with("web\n"), "{response}");
    forwarder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_exec_copy_and_forward_on_the_embedded_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &[]);
    tenant_streams(&data_dir.join("kubeconfig"), dir.path()).await;
    demo.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_exec_copy_and_forward_on_a_real_host() {
    let host = RealHost::shared();
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let args = [
        "--host-kubeconfig",
        host.kubeconfig().to_str().expect("a UTF-8 path"),
        "--host-service-cidr",
        host.service_cidr(),
        "--host-namespace",
        "vcluster-streams",
    ];
    let demo = DemoProcess::start(&data_dir, free_port(), free_port(), &args);
    tenant_streams(&data_dir.join("kubeconfig"), dir.path()).await;
    demo.terminate();
}
