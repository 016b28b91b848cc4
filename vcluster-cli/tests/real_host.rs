//! The `vcluster` command line against the real host harness
//! (kube-apiserver, kube-controller-manager and etcd built from upstream,
//! a simulated node running the host's pods).
//!
//! The simulated node runs no containers, so the control plane pod that
//! `create` deploys cannot execute `vcluster run`; the test runs `vcluster
//! run` itself, with the in-cluster environment that pod would get (its
//! service account's token, the host CA, `KUBERNETES_SERVICE_*`), so it
//! has exactly the rights of the deployed Role.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{
    config_without_volume, synced_host_pods, unique_namespace, vcluster, vcluster_as_user,
    vcluster_binary, vcluster_ok, vcluster_with_kubeconfig, vcluster_within, ControlPlaneProcess,
    COMMAND_TIMEOUT, SYNC_DEADLINE,
};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::api::{Api, ListParams, PostParams};
use tokio::process::Command;
use vcluster_testkit::kubectl;
use vcluster_testkit::real_host::RealHost;
use vcluster_testkit::{eventually_explained, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_connect_use_pause_resume_and_delete_on_a_real_host() {
    let host = RealHost::shared();
    let client = host.client();
    let namespace = unique_namespace("vc-cli");
    let name = "my-vc";
    let scratch = tempfile::tempdir().expect("tempdir");
    let config = config_without_volume(scratch.path());

    // create: the manifests pass the real API server's validation; it
    // waits for the control plane, which this test runs as the pod would.
    let create_args = [
        "create",
        name,
        "-n",
        &namespace,
        "-f",
        config.to_str().expect("utf-8 path"),
        "--timeout",
        "90s",
    ];
    let create = vcluster_within(host, &create_args, Duration::from_secs(150));
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let data_dir = scratch.path().join("data");
    let start_control_plane = async {
        eventually_explained(
            SYNC_DEADLINE,
            "create makes the service account",
            || async {
                accounts
                    .get_opt("vc-my-vc")
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(|| "not yet".to_owned())
            },
        )
        .await;
        let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
        eventually_explained(SYNC_DEADLINE, "create makes the service", || async {
            services
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .ok_or_else(|| "not yet".to_owned())
        })
        .await;
        ControlPlaneProcess::start(host, &namespace, "vc-my-vc", name, &data_dir).await
    };
    let (created, control_plane) = tokio::join!(create, start_control_plane);
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(
        created.status.success(),
        "vcluster create failed: {stderr}\nthe control plane said:\n{}",
        control_plane.log()
    );
    assert!(stderr.contains("applied statefulset/my-vc"), "{stderr}");
    assert!(stderr.contains("vcluster connect my-vc"), "{stderr}");

    // Without --server, connect port-forwards to the control plane pod.
    // The simulated node answers a declared port with the pod's hostname
    // (it runs no real server), which shows the forward reaches the pod.
    let local_port = free_port();
    let forward_kubeconfig = scratch.path().join("forwarded.yaml");
    let mut forwarding = Command::new(vcluster_binary())
        .args(["connect", "--kubeconfig"])
        .arg(host.kubeconfig())
        .args([
            name,
            "-n",
            &namespace,
            "--local-port",
            &local_port.to_string(),
            "--kube-config",
        ])
        .arg(&forward_kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("vcluster connect starts");
    let answer = eventually_explained(SYNC_DEADLINE, "the port-forward answers", || async {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", local_port))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
            .await
            .map_err(|_| "no answer".to_owned())?
            .map_err(|e| e.to_string())?;
        answer
            .contains("200 OK")
            .then_some(answer.clone())
            .ok_or(answer)
    })
    .await;
    assert!(answer.contains("my-vc-0"), "{answer}");
    let written = std::fs::read_to_string(&forward_kubeconfig).expect("connect wrote a kubeconfig");
    assert!(
        written.contains(&format!("server: https://localhost:{local_port}")),
        "{written}"
    );
    assert!(written.contains(&format!("current-context: vcluster_my-vc_{namespace}")));
    let _ = forwarding.start_kill();
    let _ = forwarding.wait().await;

    // The control plane published the credentials its replicas share, and
    // the kubeconfig it exported trusts that CA.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let shared = secrets
        .get("my-vc-certs")
        .await
        .expect("the shared credentials");
    let shared = shared.data.expect("data");
    for file in vcluster::demo::SHARED_FILES {
        assert!(shared.contains_key(*file), "{file} is shared");
    }
    let exported = secrets
        .get("vc-my-vc")
        .await
        .expect("the kubeconfig secret");
    let exported = exported.data.expect("data");
    assert_eq!(exported["certificate-authority"], shared["ca.crt"]);

    // A second create is refused, saying what to do.
    let again = vcluster(host, &create_args).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // list shows it.
    let (listed, _) = vcluster_ok(host, &["list", "-n", &namespace]).await;
    let table = kubectl::Table::parse(&listed);
    let row = table.row(name);
    assert_eq!(table.cell(row, "NAMESPACE"), namespace);

    // connect -- kubectl: the tenant creates a pod, which reaches the host.
    let kubeconfig = scratch.path().join("kubeconfig.yaml");
    let kubeconfig_arg = kubeconfig.to_str().expect("utf-8 path").to_owned();
    let server = control_plane.server();
    let (out, _) = vcluster_ok(
        host,
        &[
            "connect",
            name,
            "-n",
            &namespace,
            "--server",
            &server,
            "--kube-config",
            &kubeconfig_arg,
            "--",
            kubectl::kubectl_path().to_str().expect("utf-8"),
            "create",
            "deployment",
            "web",
            "--image=nginx",
        ],
    )
    .await;
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let host_pod = eventually_explained(
        SYNC_DEADLINE,
        "the tenant's pod runs on the host",
        || async {
            synced_host_pods(&client, &namespace, name)
                .await?
                .into_iter()
                .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .and_then(|p| p.metadata.name)
                .ok_or_else(|| "no running host pod yet".to_owned())
        },
    )
    .await;
    assert!(host_pod.contains("-x-default-x-my-vc"), "{host_pod}");
    // Logs and exec go through the host with the Role's rights.
    let virtual_pod = kubectl::run_ok(
        &kubeconfig,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    );
    let said = kubectl::run_ok(&kubeconfig, &["exec", &virtual_pod, "--", "echo", "hello"]);
    assert_eq!(said.trim(), "hello");

    // connect as a user types it: vCluster's context merged into the
    // user's own kubeconfig and made current; host commands still reach
    // the host meanwhile; disconnect switches back.
    let user_config = scratch.path().join("user-kubeconfig");
    std::fs::copy(host.kubeconfig(), &user_config).expect("a user's kubeconfig");
    let current_context = || {
        kubectl::run_ok(&user_config, &["config", "current-context"])
            .trim()
            .to_owned()
    };
    let parent = current_context();
    let context = format!("vcluster_{name}_{namespace}_{parent}");
    let connect_args = ["connect", name, "-n", &namespace, "--server", &server];
    let (_, said) = vcluster_as_user(&user_config, &connect_args).await;
    assert!(said.contains(&context), "{said}");
    assert_eq!(current_context(), context);
    let listed = kubectl::run_ok(&user_config, &["get", "pods", "-o", "name"]);
    assert!(listed.contains(&virtual_pod), "{listed}");
    let (listed, _) = vcluster_as_user(&user_config, &["list", "-n", &namespace]).await;
    assert!(listed.contains(name), "{listed}");
    let (_, said) = vcluster_as_user(&user_config, &["disconnect"]).await;
    assert!(
        said.contains(&format!("the current context is {parent}")),
        "{said}"
    );
    assert_eq!(current_context(), parent);
    kubectl::run_ok(&user_config, &["get", "namespace", &namespace]);
    let again = vcluster_with_kubeconfig(&user_config, &["disconnect"], COMMAND_TIMEOUT).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("nothing to disconnect"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Connected again: delete, below, removes the context and switches back.
    vcluster_as_user(&user_config, &connect_args).await;

    // pause: the control plane scaled to zero, the tenant's pods gone
    // from the host (the test stops its stand-in for the pod too).
    vcluster_ok(host, &["pause", name, "-n", &namespace]).await;
    control_plane.stop().await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let set = sets.get(name).await.expect("the statefulset stays");
    assert_eq!(set.spec.and_then(|s| s.replicas), Some(0));
    let left = synced_host_pods(&client, &namespace, name)
        .await
        .expect("list");
    assert!(left.is_empty(), "{left:?}");
    let (listed, _) = vcluster_ok(host, &["list", "-n", &namespace]).await;
    let table = kubectl::Table::parse(&listed);
    assert_eq!(table.cell(table.row(name), "STATUS"), "Paused");

    // resume: back to one replica; the control plane starts on its data
    // and the deployment's pod comes back on the host.
    vcluster_ok(host, &["resume", name, "-n", &namespace]).await;
    let set = sets.get(name).await.expect("the statefulset");
    assert_eq!(set.spec.and_then(|s| s.replicas), Some(1));
    let control_plane =
        ControlPlaneProcess::start(host, &namespace, "vc-my-vc", name, &data_dir).await;
    eventually_explained(
        SYNC_DEADLINE,
        "the workload is back on the host",
        || async {
            synced_host_pods(&client, &namespace, name)
                .await?
                .iter()
                .any(|p| p.metadata.deletion_timestamp.is_none())
                .then_some(())
                .ok_or_else(|| "no host pod yet".to_owned())
        },
    )
    .await;

    // delete: nothing of the virtual cluster is left in the namespace.
    control_plane.stop().await;
    // From the user's kubeconfig, still on the virtual cluster's context.
    let (_, said) = vcluster_as_user(&user_config, &["delete", name, "-n", &namespace]).await;
    assert!(said.contains("virtual cluster my-vc deleted"), "{said}");
    assert_eq!(current_context(), parent);
    let contexts = kubectl::run_ok(&user_config, &["config", "get-contexts", "-o", "name"]);
    assert!(!contexts.contains(&context), "{contexts}");
    assert_nothing_left(&client, &namespace, name).await;
    let missing = vcluster(host, &["delete", name, "-n", &namespace]).await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&namespace, &Default::default()).await;
}

/// Every object in `namespace` that belongs to virtual cluster `name`
/// is gone: the control plane's, and the synced ones.
async fn assert_nothing_left(client: &kube::Client, namespace: &str, name: &str) {
    let roles: Api<Role> = Api::namespaced(client.clone(), namespace);
    assert!(roles.get_opt("vc-my-vc").await.expect("get").is_none());
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(cluster_roles
        .get_opt(&format!("vc-{name}-v-{namespace}"))
        .await
        .expect("get")
        .is_none());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    assert!(accounts.get_opt("vc-my-vc").await.expect("get").is_none());
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let left: Vec<String> = services
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert!(left.is_empty(), "services left: {left:?}");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    // Token secrets are owned by their host pods; the host's garbage
    // collector removes them shortly after.
    eventually_explained(SYNC_DEADLINE, "no secret is left", || async {
        let left: Vec<String> = secrets
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        left.is_empty()
            .then_some(())
            .ok_or_else(|| format!("{left:?}"))
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    assert!(pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .is_empty());
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    assert!(sets.get_opt(name).await.expect("get").is_none());
    // Configmaps: only the host's own root CA.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), namespace);
    let left: Vec<String> = config_maps
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n != "kube-root-ca.crt")
        .collect();
    assert!(left.is_empty(), "configmaps left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_without_its_role_stops_naming_what_is_missing() {
    let host = RealHost::shared();
    let client = host.client();
    let namespace = unique_namespace("vc-norbac");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut object = Namespace::default();
    object.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let mut account = ServiceAccount::default();
    account.metadata.name = Some("nobody".into());
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("service account");
    let scratch = tempfile::tempdir().expect("tempdir");
    let process = ControlPlaneProcess::start(
        host,
        &namespace,
        "nobody",
        "my-vc",
        &scratch.path().join("data"),
    )
    .await;
    let (status, stderr) = process.exit().await;
    assert!(!status.success());
    assert!(stderr.contains("denies"), "{stderr}");
    assert!(
        stderr.contains("get, list, watch, create, update, patch, delete pods (the pod syncer)"),
        "{stderr}"
    );
    assert!(stderr.contains("get, list, watch nodes"), "{stderr}");
    eprintln!("{stderr}");
    assert!(stderr.contains("vcluster create"), "{stderr}");
    let _ = namespaces.delete(&namespace, &Default::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_manifests_pass_validation_and_delete_removes_the_data_claim() {
    let host = RealHost::shared();
    let client = host.client();
    let namespace = unique_namespace("vc-pvc");
    let name = "stored";
    // The defaults: a 5Gi data claim per replica (SQLite lives there).
    let (_, said) = vcluster_ok(host, &["create", name, "-n", &namespace, "--no-wait"]).await;
    assert!(said.contains("applied statefulset/stored"), "{said}");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let set = sets.get(name).await.expect("the statefulset");
    let claims = set
        .spec
        .and_then(|s| s.volume_claim_templates)
        .expect("a volume claim template");
    assert_eq!(claims[0].metadata.name.as_deref(), Some("data"));
    // The host's statefulset controller makes the claim (no provisioner
    // binds it here, so the pod waits).
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), &namespace);
    eventually_explained(SYNC_DEADLINE, "the data claim exists", || async {
        pvcs.get_opt("data-stored-0")
            .await
            .ok()
            .flatten()
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;

    let (_, said) = vcluster_ok(
        host,
        &["delete", name, "-n", &namespace, "--delete-namespace"],
    )
    .await;
    assert!(said.contains("deleted 1 data volume claim(s)"), "{said}");
    assert!(
        said.contains(&format!("deleted namespace {namespace}")),
        "{said}"
    );
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(cluster_roles
        .get_opt(&format!("vc-{name}-v-{namespace}"))
        .await
        .expect("get")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_a_bad_config_before_touching_the_host() {
    let host = RealHost::shared();
    let namespace = unique_namespace("vc-badcfg");
    let scratch = tempfile::tempdir().expect("tempdir");
    for (yaml, says) in [
        (
            "sync:\n  toHost:\n    pods:\n      enabled: true\n    podz:\n      enabled: true\n",
            "sync.toHost.podz: unknown key",
        ),
        (
            "controlPlane:\n  statefulSet:\n    highAvailability:\n      replicas: 3\n",
            "need a store they share",
        ),
    ] {
        let path = scratch.path().join("vcluster.yaml");
        std::fs::write(&path, yaml).expect("write");
        let out = vcluster(
            host,
            &[
                "create",
                "bad",
                "-n",
                &namespace,
                "-f",
                path.to_str().expect("utf-8"),
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // Nothing was made: not even the namespace.
    let namespaces: Api<Namespace> = Api::all(host.client());
    assert!(namespaces.get_opt(&namespace).await.expect("get").is_none());
}
