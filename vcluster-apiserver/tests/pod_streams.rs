//! `kubectl exec`, `attach` and `port-forward` against the server, over
//! every transport real clients use (WebSocket v5, SPDY, kubectl's
//! SPDY-in-WebSocket port-forward, kube-rs's WebSocket port-forward), with
//! a backend that runs a few commands; and the checks kube-apiserver makes
//! before it streams (the pod, the container, the node, RBAC).

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vcluster_streams::{
    ContainerStreams, Exit, PortConnection, Process, ProcessOptions, StreamError, StreamTarget,
};
use vcluster_testkit::cluster::{Cluster, Options};
use vcluster_testkit::streams::{kubectl, run_with_input, PortForward};
use vcluster_testkit::within;

/// `echo ARGS`, `cat` (stdin to stdout), `warn TEXT` (to stderr) and
/// `fail CODE`; port-forward answers HTTP with the port's number.
struct Commands;

/// How many `cat`s run now, to see a cut stream stop its process.
static RUNNING_CATS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[async_trait]
impl ContainerStreams for Commands {
    async fn exec(&self, t: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
        let (stdin_ours, stdin_theirs) = tokio::io::duplex(1024);
        let (mut out_ours, out_theirs) = tokio::io::duplex(1024);
        let (mut err_ours, err_theirs) = tokio::io::duplex(1024);
        let command = o.command.clone();
        let container = t.container.clone();
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut stdin = stdin_ours;
            let args = command.get(1..).unwrap_or_default().join(" ");
            let exit = match command.first().map(String::as_str) {
                Some("echo") => {
                    let _ = out_ours
                        .write_all(format!("{container}: {args}\n").as_bytes())
                        .await;
                    Exit::Success
                }
                Some("cat") => {
                    RUNNING_CATS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tokio::io::copy(&mut stdin, &mut out_ours).await;
                    RUNNING_CATS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    Exit::Success
                }
                Some("warn") => {
                    let _ = err_ours.write_all(format!("{args}\n").as_bytes()).await;
                    Exit::Success
                }
                Some("fail") => Exit::Code(args.parse().unwrap_or(1)),
                _ => Exit::Error(format!("{command:?}: no such command")),
            };
            drop((out_ours, err_ours));
            let _ = exit_tx.send(exit);
        });
        Ok(Process {
            stdin: o.stdin.then(|| Box::pin(stdin_theirs) as _),
            stdout: Some(Box::pin(out_theirs)),
            stderr: Some(Box::pin(err_theirs)),
            resize: None,
            exit: Box::pin(async move { exit_rx.await.unwrap_or(Exit::Error("lost".into())) }),
        })
    }

    async fn attach(&self, t: &StreamTarget, o: &ProcessOptions) -> Result<Process, StreamError> {
        let mut options = o.clone();
        options.command = vec!["cat".into()];
        self.exec(t, &options).await
    }

    async fn port_forward(
        &self,
        _: &StreamTarget,
        port: u16,
    ) -> Result<PortConnection, StreamError> {
        if port == 9 {
            return Err(StreamError::internal("nothing listens on port 9"));
        }
        let (mut ours, theirs) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match ours.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("port {port}\n");
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = ours.write_all(response.as_bytes()).await;
        });
        Ok(PortConnection {
            io: Box::pin(theirs),
            error: Box::pin(std::future::pending()),
        })
    }
}

fn with_commands(secure: bool) -> Options {
    Options {
        secure,
        configure: Box::new(|config| config.container_streams = Some(Arc::new(Commands))),
        ..Options::default()
    }
}

/// A pod bound to a node (streams need one), with two containers.
async fn running_pod(t: &Cluster, name: &str, node: Option<&str>) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}]},
                {"name": "proxy", "image": "envoy"},
            ],
        },
    }))
    .expect("a valid pod");
    let pods = Api::<Pod>::namespaced(t.server.client(), "default");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
    // kubectl port-forward only forwards to running pods.
    let running = json!({"status": {"phase": "Running"}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&running))
        .await
        .expect("mark the pod running");
}

const SPDY_EXEC: (&str, &str) = ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
const SPDY_PORT_FORWARD: (&str, &str) = ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_works_over_websocket_and_spdy() {
    let t = Cluster::start_with(with_commands(false)).await;
    running_pod(&t, "web", Some("node-1")).await;
    for env in [&[][..], &[SPDY_EXEC][..]] {
        let run = |args: &[&str], input: &'static [u8]| {
            run_with_input(kubectl(&t.kubeconfig, args, env), input)
        };
        let out = run(
            &["exec", "web", "-c", "proxy", "--", "echo", "hi", "there"],
            b"",
        )
        .await;
        assert!(out.status.success(), "{env:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "proxy: hi there\n");

        // stdin reaches the process and its end ends `cat`.
        let out = run(
            &["exec", "-i", "web", "-c", "app", "--", "cat"],
            b"line 1\nline 2\n",
        )
        .await;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "line 1\nline 2\n",
            "{env:?}"
        );

        let out = run(&["exec", "web", "-c", "app", "--", "warn", "careful"], b"").await;
        assert_eq!(String::from_utf8_lossy(&out.stderr), "careful\n", "{env:?}");

        // An exit code is the client's exit code.
        let out = run(&["exec", "web", "-c", "app", "--", "fail", "3"], b"").await;
        assert_eq!(out.status.code(), Some(3), "{env:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("command terminated with exit code 3"),
            "{out:?}"
        );

        // A process that cannot run is an error, not a hang.
        let out = run(&["exec", "web", "-c", "app", "--", "nope"], b"").await;
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no such command"),
            "{out:?}"
        );

        // attach joins the main process (here: `cat`).
        let out = run(&["attach", "-i", "web", "-c", "app"], b"attached\n").await;
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("attached"),
            "{env:?}: {out:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_works_over_the_tunnel_and_spdy() {
    let t = Cluster::start_with(with_commands(false)).await;
    running_pod(&t, "web", Some("node-1")).await;
    for env in [&[][..], &[SPDY_PORT_FORWARD][..]] {
        let forward = PortForward::start(&t.kubeconfig, "pod/web", 8080, env).await;
        // Two connections through one forward.
        for _ in 0..2 {
            let response = forward.get().await;
            assert!(
                response.starts_with("HTTP/1.1 200 OK"),
                "{env:?}: {response}"
            );
            assert!(response.ends_with("port 8080\n"), "{response}");
        }
        forward.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_attached_process_and_portforwarder_work() {
    let t = Cluster::start_with(with_commands(false)).await;
    running_pod(&t, "web", Some("node-1")).await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");

    let params = AttachParams::default().container("app");
    let mut echo = within(
        "exec echo",
        pods.exec("web", ["echo", "from", "kube-rs"], &params),
    )
    .await
    .expect("exec");
    let mut stdout = echo.stdout().expect("stdout");
    let status = echo.take_status().expect("status");
    let mut text = String::new();
    within("echo's output", stdout.read_to_string(&mut text))
        .await
        .expect("read stdout");
    assert_eq!(text, "app: from kube-rs\n");
    let status = within("echo's status", status).await.expect("a status");
    assert_eq!(status.status.as_deref(), Some("Success"));

    let mut cat = pods
        .exec(
            "web",
            ["cat"],
            &AttachParams::default()
                .container("app")
                .stdin(true)
                .stderr(false),
        )
        .await
        .expect("exec cat");
    let mut stdin = cat.stdin().expect("stdin");
    let mut stdout = cat.stdout().expect("stdout");
    stdin.write_all(b"ping\n").await.expect("write");
    let mut line = [0u8; 5];
    within("cat's echo", stdout.read_exact(&mut line))
        .await
        .expect("read the echo");
    assert_eq!(&line, b"ping\n");
    // kube-rs's stdin is one half of a pipe: shutting it down sends v5's
    // close signal (dropping it would not).
    stdin.shutdown().await.expect("close stdin");
    let status = cat.take_status().expect("status");
    let status = within("cat to end with its stdin (v5 close signal)", status)
        .await
        .expect("a status");
    assert_eq!(status.status.as_deref(), Some("Success"));

    let mut failing = pods
        .exec("web", ["fail", "7"], &params)
        .await
        .expect("exec fail");
    let failing = within("fail's status", failing.take_status().expect("status"))
        .await
        .expect("a status");
    assert_eq!(failing.reason.as_deref(), Some("NonZeroExitCode"));
    let code = &failing.details.expect("details").causes.expect("causes")[0];
    assert_eq!(code.message.as_deref(), Some("7"));

    let mut forwarder = pods
        .portforward("web", &[8080, 9])
        .await
        .expect("portforward");
    let mut stream = forwarder.take_stream(8080).expect("port 8080");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut response = String::new();
    within("the forwarded answer", stream.read_to_string(&mut response))
        .await
        .expect("read");
    assert!(response.ends_with("port 8080\n"), "{response}");
    let refused = within(
        "port 9's refusal",
        forwarder.take_error(9).expect("port 9's errors"),
    )
    .await;
    assert_eq!(refused.as_deref(), Some("nothing listens on port 9"));
    forwarder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_execs_and_forwards() {
    let python = vcluster_testkit::python::interpreter();
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/streams.py");
    let t = Cluster::start_with(with_commands(false)).await;
    running_pod(&t, "web", Some("node-1")).await;
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&t.url)
        .kill_on_drop(true)
        .output();
    let output = within("the Python script", run).await.expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the script's JSON");
    assert_eq!(results["echo"], "app: from python\n");
    assert_eq!(results["cat"], "typed into python\n");
    let forwarded = results["forwarded"].as_str().unwrap_or_default();
    assert!(forwarded.ends_with("port 8080\n"), "{forwarded}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_stops_its_process() {
    let t = Cluster::start_with(with_commands(false)).await;
    running_pod(&t, "web", Some("node-1")).await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    let params = AttachParams::default()
        .container("app")
        .stdin(true)
        .stderr(false);
    let mut cat = pods.exec("web", ["cat"], &params).await.expect("exec cat");
    let mut stdin = cat.stdin().expect("stdin");
    let mut stdout = cat.stdout().expect("stdout");
    stdin.write_all(b"x").await.expect("write");
    let mut one = [0u8; 1];
    within("cat's echo", stdout.read_exact(&mut one))
        .await
        .expect("read");
    // The client goes away without closing stdin: the server notices and
    // drops the process, which sees its stdin end.
    cat.abort();
    drop((stdin, stdout, cat));
    vcluster_testkit::eventually("the cut cat to stop", || async {
        (RUNNING_CATS.load(std::sync::atomic::Ordering::SeqCst) == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_requests_are_checked_as_kube_apiserver_checks_them() {
    let t = Cluster::start_with(with_commands(true)).await;
    running_pod(&t, "web", Some("node-1")).await;
    running_pod(&t, "pending", None).await;

    let err = t
        .kubectl_err(&["exec", "web", "-c", "db", "--", "echo"])
        .await;
    assert!(
        err.contains("container db is not valid for pod web"),
        "{err}"
    );
    let err = t
        .kubectl_err(&["exec", "pending", "-c", "app", "--", "echo"])
        .await;
    assert!(
        err.contains("pod pending does not have a host assigned"),
        "{err}"
    );
    let err = t.kubectl_err(&["exec", "gone", "--", "echo"]).await;
    assert!(err.contains("pods \"gone\" not found"), "{err}");

    // RBAC: reading pods is not enough to run commands in them.
    t.kubectl_ok(&[
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods",
    ])
    .await;
    t.kubectl_ok(&[
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        "--user=pat",
    ])
    .await;
    let pat = t.cert_kubeconfig("pat", "pat", &[]);
    let err = t
        .kubectl_err_as(&pat, &["exec", "web", "-c", "app", "--", "echo", "hi"])
        .await;
    assert!(
        err.contains("forbidden") && err.contains("\"pods/exec\""),
        "{err}"
    );
    t.kubectl_ok(&[
        "create",
        "role",
        "exec",
        "--verb=create,get",
        "--resource=pods/exec",
    ])
    .await;
    t.kubectl_ok(&["create", "rolebinding", "exec", "--role=exec", "--user=pat"])
        .await;
    let out = t
        .kubectl_ok_as(&pat, &["exec", "web", "-c", "app", "--", "echo", "hi"])
        .await;
    assert_eq!(out, "app: hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_do_not_upgrade_are_refused() {
    let t = Cluster::start_with(with_commands(false)).await;
    running_pod(&t, "web", Some("node-1")).await;
    // A request that does not upgrade gets upstream's answer.
    let answer = t
        .raw(
            "POST",
            "/api/v1/namespaces/default/pods/web/exec?command=echo&stdout=true&container=app",
            &[],
            b"",
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["message"], "Upgrade request required");
    let answer = t
        .raw(
            "POST",
            "/api/v1/namespaces/default/pods/web/portforward?ports=0",
            &[],
            b"",
        )
        .await;
    // The options are the kubelet's to check, once upgraded (as upstream).
    assert_eq!(answer.json()["message"], "Upgrade request required");
    let answer = t
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/web/exec?container=app",
            &[],
            b"",
        )
        .await;
    assert_eq!(answer.json()["message"], "Upgrade request required");
    // What is checked first: the pod, then the container.
    let answer = t
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods/web/exec?container=db",
            &[],
            b"",
        )
        .await;
    assert_eq!(
        answer.json()["message"],
        "container db is not valid for pod web"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_backend_streams_are_unavailable() {
    let t = Cluster::start().await;
    running_pod(&t, "web", Some("node-1")).await;
    let err = t
        .kubectl_err(&["exec", "web", "-c", "app", "--", "ls"])
        .await;
    assert!(err.contains("no container runtime to stream from"), "{err}");
}
