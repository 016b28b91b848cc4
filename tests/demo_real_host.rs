//! The demo against a real host: upstream kube-apiserver with its
//! controllers and a simulated node (the test kit's `RealHost`), driven
//! with the real kubectl, as a user pointing `--host-kubeconfig` at their
//! cluster would.

use vcluster_testkit::demo::{DemoProcess, DEADLINE};
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::{eventually_prints, run_ok as kubectl_ok};
use vcluster_testkit::real_host::RealHost;

#[test]
fn the_demo_syncs_into_a_real_host_and_survives_a_restart() {
    let host = RealHost::shared();
    let host_kubeconfig = host.kubeconfig();
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (listen, host_listen) = (free_port(), free_port());
    let args = [
        "--host-kubeconfig",
        host_kubeconfig.to_str().expect("a UTF-8 path"),
        "--host-service-cidr",
        host.service_cidr(),
    ];
    let demo = DemoProcess::start(&data_dir, listen, host_listen, &args);
    let kubeconfig = data_dir.join("kubeconfig");
    assert!(
        !data_dir.join("host.kubeconfig").exists(),
        "no embedded host is started"
    );

    kubectl_ok(&kubeconfig, &["run", "web", "--image=nginx"]);
    let exposed = kubectl_ok(
        &kubeconfig,
        &[
            "expose",
            "pod",
            "web",
            "--port",
            "80",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    // The real host's scheduler stand-in and kubelet stand-in run it.
    eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "pods"],
        "web Running",
        |out| {
            out.lines()
                .any(|l| l.starts_with("web ") && l.contains("Running") && l.contains("1/1"))
        },
    );
    let node = kubectl_ok(
        &kubeconfig,
        &["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"],
    );
    assert_eq!(node.trim(), host.node_name());
    // kubectl logs: the virtual server reads the host pod's log through
    // kube-apiserver, which asks the simulated node's kubelet endpoint.
    let logs = kubectl_ok(&kubeconfig, &["logs", "web"]);
    assert!(
        logs.contains(&format!(
            "simulated node {} started container web (image nginx)",
            host.node_name()
        )),
        "{logs}"
    );
    let tail = kubectl_ok(&kubeconfig, &["logs", "web", "--tail=1"]);
    assert_eq!(
        tail.trim(),
        "no process runs on a simulated node: this is all the output there is"
    );

    // The host holds the translated pod, admitted by upstream's admission
    // (which added its default tolerations) without a host service-account
    // token: tenants never get a credential of the host.
    let host_ns = "vcluster-demo";
    let host_pod = |path: &str| {
        kubectl_ok(
            host_kubeconfig,
            &[
                "-n",
                host_ns,
                "get",
                "pod",
                "web-x-default-x-demo",
                "-o",
                &format!("jsonpath={path}"),
            ],
        )
    };
    let tolerations = host_pod("{.spec.tolerations[*].key}");
    assert!(
        tolerations.contains("node.kubernetes.io/not-ready"),
        "{tolerations}"
    );
    // Its token volume (the virtual one's) reads the virtual API server's
    // token from the syncer's secret: no token source the host's kubelet
    // would fill with a host token.
    let token_sources = host_pod("{.spec.volumes[*].projected.sources[*].serviceAccountToken}");
    assert!(token_sources.trim().is_empty(), "{token_sources}");
    assert_eq!(host_pod("{.spec.automountServiceAccountToken}"), "false");
    let secrets = host_pod("{.spec.volumes[*].projected.sources[*].secret.name}");
    assert!(
        secrets.contains("web-x-default-x-demo-sa-token"),
        "{secrets}"
    );
    let host_ip = kubectl_ok(
        host_kubeconfig,
        &[
            "-n",
            host_ns,
            "get",
            "svc",
            "web-x-default-x-demo",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    assert_eq!(
        exposed.trim(),
        host_ip.trim(),
        "created with the host's address"
    );
    let services = kubectl_ok(&kubeconfig, &["get", "svc", "web"]);
    assert!(services.contains(host_ip.trim()), "{services}");

    // Deleting the virtual pod removes the host pod (graceful on a real
    // host: the simulated kubelet confirms it).
    kubectl_ok(&kubeconfig, &["delete", "pod", "web", "--wait=true"]);
    eventually_prints(
        DEADLINE,
        host_kubeconfig,
        &["-n", host_ns, "get", "pods", "-o", "name"],
        "the host pod gone",
        |out| !out.contains("web-x-default-x-demo"),
    );

    // A pod created now is there after a restart on the same data dir.
    kubectl_ok(&kubeconfig, &["run", "keep", "--image=nginx"]);
    eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "pod", "keep"],
        "keep Running",
        |out| out.contains("Running"),
    );
    demo.interrupt();

    let demo = DemoProcess::start(&data_dir, listen, host_listen, &args);
    let pods = kubectl_ok(&kubeconfig, &["get", "pods"]);
    assert!(
        pods.lines().any(|l| l.starts_with("keep ")),
        "the pod survived the restart: {pods}"
    );
    eventually_prints(
        DEADLINE,
        host_kubeconfig,
        &["-n", host_ns, "get", "pods", "-o", "name"],
        "keep on the host",
        |out| out.contains("keep-x-default-x-demo"),
    );
    kubectl_ok(&kubeconfig, &["delete", "pod", "keep", "--wait=true"]);
    kubectl_ok(&kubeconfig, &["delete", "svc", "web"]);
    eventually_prints(
        DEADLINE,
        host_kubeconfig,
        &["-n", host_ns, "get", "svc", "-o", "name"],
        "the host service gone",
        |out| !out.contains("web-x-default-x-demo"),
    );
    demo.interrupt();
}
