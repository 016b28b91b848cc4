//! The demo started with vCluster's config file (`--config vcluster.yaml`):
//! what the file asks for reaches the embedded host, a flag given on the
//! command line wins over the file (`--nodes`), and a bad file stops the demo with the
//! path of the offending key.

use std::process::Command;

use vcluster_testkit::demo::{demo_binary, DemoProcess, DEADLINE};
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::{eventually_prints, run_ok as kubectl_ok};

const CONFIG: &str = "
sync:
  toHost:
    configMaps:
      all: true
  fromHost:
    nodes:
      selector:
        all: false
policies:
  resourceQuota:
    enabled: true
    quota:
      count/pods: 7
  limitRange:
    enabled: false
networking:
  advanced:
    clusterDomain: corp.internal
";

#[test]
fn the_demo_applies_vclusters_config_file_and_explicit_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let config = dir.path().join("vcluster.yaml");
    std::fs::write(&config, CONFIG).expect("write vcluster.yaml");
    let config = config.to_str().expect("utf-8 path");
    let demo = DemoProcess::start(
        &data_dir,
        free_port(),
        free_port(),
        &["-f", config, "--nodes", "all"],
    );
    let kubeconfig = data_dir.join("kubeconfig");
    let host = data_dir.join("host.kubeconfig");
    let host_ns = "vcluster-demo";

    // The file shows only used nodes; `--nodes all` on the command line
    // wins, so the simulated node shows before any pod runs.
    eventually_prints(
        DEADLINE,
        &kubeconfig,
        &["get", "nodes", "-o", "name"],
        "the simulated node",
        |out| out.contains("node/demo-node"),
    );
    // configMaps.all: a configmap no pod uses still reaches the host.
    kubectl_ok(
        &kubeconfig,
        &["create", "configmap", "loose", "--from-literal=colour=blue"],
    );
    eventually_prints(
        DEADLINE,
        &host,
        &[
            "-n",
            host_ns,
            "get",
            "configmap",
            "loose-x-default-x-demo",
            "-o",
            "json",
        ],
        "the unreferenced configmap on the host",
        |out| out.contains("\"colour\": \"blue\""),
    );

    // policies.resourceQuota: the host namespace gets the quota, with the
    // file's value merged over vCluster's defaults; the LimitRange stays
    // off.
    let quota = eventually_prints(
        DEADLINE,
        &host,
        &[
            "-n",
            host_ns,
            "get",
            "resourcequota",
            "vcluster-demo-quota",
            "-o",
            "json",
        ],
        "the host ResourceQuota",
        |out| out.contains("\"count/pods\": \"7\""),
    );
    assert!(quota.contains("\"requests.cpu\": \"10\""), "{quota}");
    let ranges = kubectl_ok(&host, &["-n", host_ns, "get", "limitranges", "-o", "name"]);
    assert!(ranges.trim().is_empty(), "{ranges}");

    // networking.advanced.clusterDomain: synced pods search the file's
    // domain.
    kubectl_ok(&kubeconfig, &["run", "web", "--image=nginx"]);
    eventually_prints(
        DEADLINE,
        &host,
        &[
            "-n",
            host_ns,
            "get",
            "pod",
            "web-x-default-x-demo",
            "-o",
            "jsonpath={.spec.dnsConfig.searches}",
        ],
        "the host pod's DNS search path",
        |out| out.contains("default.svc.corp.internal"),
    );

    demo.interrupt();
}

#[test]
fn a_bad_config_file_stops_the_demo_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "sync:\n  toHost:\n    foo:\n      enabled: true\n",
            "sync.toHost.foo: unknown key (known keys here: pods,",
        ),
        (
            "networking:\n  replicateServices:\n    toHost:\n      - {from: a, to: b}\n",
            "networking.replicateServices.toHost: part of vCluster's config but not supported by vcluster-rs",
        ),
    ];
    for (yaml, expected) in cases {
        let config = dir.path().join("vcluster.yaml");
        std::fs::write(&config, yaml).expect("write vcluster.yaml");
        let out = Command::new(demo_binary())
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--host-listen", &format!("127.0.0.1:{}", free_port())])
            .output()
            .expect("run the demo");
        assert!(!out.status.success(), "{yaml}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.contains("vcluster.yaml"),
            "{stderr}"
        );
    }
}
