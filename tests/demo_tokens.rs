//! In-cluster access for tenant pods, against the demo: a workload that
//! sees exactly what its host pod would give it (the files of its mounted
//! service-account volume, materialised from the host pod's Secret,
//! ConfigMap and downward API, and its `KUBERNETES_SERVICE_*`
//! environment) reaches the *virtual* API server with the token the
//! virtual API server issued, as its own service account: allowed where a
//! RoleBinding allows it, forbidden elsewhere, and refused (401) once its
//! virtual pod is deleted.
//!
//! kube-rs's in-cluster configuration reads fixed paths
//! (`/var/run/secrets/kubernetes.io/serviceaccount/*`) and the
//! environment; the test builds the same `kube::Config` from the same
//! values at a temporary path instead: the URL from
//! `KUBERNETES_SERVICE_HOST`/`_PORT`, the CA from `ca.crt`, the token from
//! the `token` file (re-read by kube as in-cluster), the namespace from
//! `namespace`.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use vcluster::demo::{self, DemoOptions};
use vcluster_testkit::{eventually, free_port};

const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

async fn admin_client(kubeconfig: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    kube::Client::try_from(config).expect("client")
}

async fn create<K>(api: Api<K>, object: serde_json::Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    let object: K = serde_json::from_value(object).expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
}

/// What the container `app` of `host_pod` sees: its service-account
/// files written under `dir` (each projection as the kubelet would write
/// it) and its environment.
async fn materialise(
    host: &kube::Client,
    host_namespace: &str,
    host_pod: &Pod,
    dir: &Path,
) -> BTreeMap<String, String> {
    let spec = host_pod.spec.as_ref().expect("spec");
    assert_eq!(
        spec.automount_service_account_token,
        Some(false),
        "the host's own token is never mounted"
    );
    let container = &spec.containers[0];
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == MOUNT_PATH)
        .expect("the service-account mount");
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("the mounted volume");
    let projected = volume.projected.as_ref().expect("a projected volume");
    let secrets: Api<Secret> = Api::namespaced(host.clone(), host_namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(host.clone(), host_namespace);
    let annotations = host_pod.metadata.annotations.clone().unwrap_or_default();
    for source in projected.sources.iter().flatten() {
        assert!(
            source.service_account_token.is_none(),
            "no token projection reaches the host's kubelet"
        );
        if let Some(secret) = &source.secret {
            let found = secrets.get(&secret.name).await.expect("the token secret");
            let data = found.data.unwrap_or_default();
            for item in secret.items.iter().flatten() {
                let value = data.get(&item.key).expect("the token key");
                std::fs::write(dir.join(&item.path), &value.0).expect("write");
            }
        }
        if let Some(config_map) = &source.config_map {
            let found = config_maps
                .get(&config_map.name)
                .await
                .expect("the CA configmap");
            let data = found.data.unwrap_or_default();
            for item in config_map.items.iter().flatten() {
                let value = data.get(&item.key).expect("the CA key");
                std::fs::write(dir.join(&item.path), value).expect("write");
            }
        }
        if let Some(downward) = &source.downward_api {
            for item in downward.items.iter().flatten() {
                let path = &item.field_ref.as_ref().expect("a field").field_path;
                let key = path
                    .strip_prefix("metadata.annotations['")
                    .and_then(|rest| rest.strip_suffix("']"))
                    .unwrap_or_else(|| panic!("{path} names the virtual pod's annotation"));
                let value = annotations.get(key).expect("the annotation");
                std::fs::write(dir.join(&item.path), value).expect("write");
            }
        }
    }
    container
        .env
        .iter()
        .flatten()
        .filter_map(|v| Some((v.name.clone(), v.value.clone()?)))
        .collect()
}

/// The client an in-cluster kube-rs workload builds, from the same values.
fn in_cluster_client(dir: &Path, env: &BTreeMap<String, String>) -> (kube::Client, String) {
    let host = env.get("KUBERNETES_SERVICE_HOST").expect("host");
    let port = env.get("KUBERNETES_SERVICE_PORT").expect("port");
    let mut config = kube::Config::new(
        format!("https://{host}:{port}")
            .parse()
            .expect("the API server URL"),
    );
    config.root_cert_file = Some(dir.join("ca.crt"));
    config.auth_info.token_file = Some(dir.join("token").display().to_string());
    let namespace = std::fs::read_to_string(dir.join("namespace")).expect("namespace file");
    config.default_namespace = namespace.clone();
    (kube::Client::try_from(config).expect("client"), namespace)
}

fn token_subject(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_pod_reaches_the_virtual_api_server_with_its_own_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = DemoOptions::new(dir.path().join("data"));
    options.listen = ([127, 0, 0, 1], free_port()).into();
    options.host_listen = ([127, 0, 0, 1], free_port()).into();
    let running = demo::start(options).await.expect("start the demo");
    let admin = admin_client(&running.kubeconfig).await;
    let host = admin_client(running.host_kubeconfig.as_ref().expect("embedded host")).await;

    for namespace in ["team", "other"] {
        create(
            Api::<Namespace>::all(admin.clone()),
            json!({"metadata": {"name": namespace}}),
        )
        .await;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "team");
    eventually("the default service account", || async {
        accounts.get_opt("default").await.ok().flatten()
    })
    .await;
    create(
        Api::<Role>::namespaced(admin.clone(), "team"),
        json!({
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
        }),
    )
    .await;
    create(Api::<RoleBinding>::namespaced(admin.clone(), "team"), json!({
        "metadata": {"name": "pod-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "team"}]
    }))
    .await;
    create(
        Api::<Pod>::namespaced(admin.clone(), "team"),
        json!({
            "metadata": {"name": "workload"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}
        }),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "team");
    let virtual_pod = pods.get("workload").await.expect("virtual pod");
    assert!(
        virtual_pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .is_some_and(|v| v.iter().any(|v| v.name.starts_with("kube-api-access-"))),
        "the virtual API server's admission added the token volume"
    );

    // The host pod and its token secret, written by the syncer.
    let host_name = "workload-x-team-x-demo";
    let host_pods: Api<Pod> = Api::namespaced(host.clone(), &running.host_namespace);
    let host_secrets: Api<Secret> = Api::namespaced(host.clone(), &running.host_namespace);
    let host_pod = eventually("the host pod", || async {
        host_pods.get_opt(host_name).await.ok().flatten()
    })
    .await;
    eventually("the token secret", || async {
        host_secrets
            .get_opt(&format!("{host_name}-sa-token"))
            .await
            .ok()
            .flatten()
    })
    .await;
    let files = tempfile::tempdir().expect("tempdir");
    let env = materialise(&host, &running.host_namespace, &host_pod, files.path()).await;
    assert_eq!(
        env.get("KUBERNETES_SERVICE_HOST"),
        Some(&running.virtual_addr.ip().to_string())
    );
    let token = std::fs::read_to_string(files.path().join("token")).expect("token");
    let claims = token_subject(&token);
    assert_eq!(claims["sub"], json!("system:serviceaccount:team:default"));
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], json!("workload"));
    assert_eq!(
        claims["kubernetes.io"]["pod"]["uid"],
        json!(virtual_pod.metadata.uid.clone().expect("uid"))
    );

    let (workload, namespace) = in_cluster_client(files.path(), &env);
    assert_eq!(namespace, "team");
    let own: Api<Pod> = Api::namespaced(workload.clone(), &namespace);
    let listed = own
        .list(&ListParams::default())
        .await
        .expect("lists pods in its own namespace");
    assert!(listed
        .items
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some("workload")));
    let elsewhere: Api<Pod> = Api::namespaced(workload.clone(), "other");
    match elsewhere.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("another namespace must be forbidden: {other:?}"),
    }

    // Deleting the virtual pod revokes its token.
    pods.delete("workload", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete the pod");
    eventually("the virtual pod gone", || async {
        pods.get_opt("workload")
            .await
            .ok()
            .and_then(|p| p.is_none().then_some(()))
    })
    .await;
    match own.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
        other => panic!("a deleted pod's token must be refused: {other:?}"),
    }
    drop(files);
    running.shutdown().await;
}
