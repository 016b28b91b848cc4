//! Authentication and RBAC seen through kubectl: one secure server (TLS
//! from a test CA that verifies client certificates) and three
//! kubeconfigs — the admin (`system:masters`), `alice` with a Role that
//! lets her read pods in `team` only, and no credentials at all.

use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::kubectl::Table;
use vcluster_testkit::pki::TestCa;
use vcluster_testkit::within;

const TEAM: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads-pods, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
"#;

/// A secure server with `team`, alice's Role and binding, and a pod in
/// `team` and in `default`.
async fn team_server() -> Cluster {
    let server = Cluster::start_secure().await;
    let manifest = server.write_file("team.yaml", TEAM);
    server
        .kubectl_ok(&["apply", "-f", &manifest.display().to_string()])
        .await;
    for namespace in ["team", "default"] {
        server
            .kubectl_ok(&["run", "web", "--image=nginx:1.27", "-n", namespace])
            .await;
    }
    server
}

/// `kubectl auth can-i ...`: "yes" (exit 0) or "no" (exit 1).
async fn can_i(server: &Cluster, kubeconfig: &Path, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let output = server.kubectl_as(kubeconfig, &all).await;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match (output.status.code(), stdout.as_str()) {
        (Some(0), "yes") => true,
        (Some(1), "no") => false,
        other => panic!(
            "kubectl auth can-i {args:?}: unexpected {other:?}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_certificate_may_do_everything() {
    let server = team_server().await;
    let admin = server.kubeconfig.clone();
    let pods = server
        .kubectl_ok(&["get", "pods", "-A", "-o", "name"])
        .await;
    assert_eq!(pods.lines().count(), 2, "{pods}");
    server.kubectl_ok(&["get", "nodes"]).await;
    server
        .kubectl_ok(&["get", "clusterroles", "cluster-admin"])
        .await;
    server
        .kubectl_ok(&["delete", "pod", "web", "-n", "default", "--wait=false"])
        .await;
    assert!(can_i(&server, &admin, &["*", "*"]).await);
    assert!(can_i(&server, &admin, &["create", "clusterroles"]).await);
    let whoami = server.kubectl_ok(&["auth", "whoami"]).await;
    assert!(whoami.contains("admin"), "{whoami}");
    assert!(
        whoami.contains("system:masters") && whoami.contains("system:authenticated"),
        "{whoami}"
    );
    // `--list` shows the cluster-admin rules it holds through the
    // bootstrap binding of system:masters.
    let list = server.kubectl_ok(&["auth", "can-i", "--list"]).await;
    let table = Table::parse(&list);
    let all = table.row("*.*");
    assert_eq!(table.cell(all, "Verbs"), "[*]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_role_grants_exactly_what_it_lists() {
    let server = team_server().await;
    let alice = server.cert_kubeconfig("alice", "alice", &["developers"]);

    let pods = server
        .kubectl_ok_as(&alice, &["get", "pods", "-n", "team", "-o", "name"])
        .await;
    assert_eq!(pods.trim(), "pod/web");
    server
        .kubectl_ok_as(&alice, &["get", "pod", "web", "-n", "team"])
        .await;

    let stderr = server
        .kubectl_err_as(&alice, &["get", "pods", "-n", "default"])
        .await;
    assert!(
        stderr.contains(
            "Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{stderr}"
    );
    let stderr = server
        .kubectl_err_as(&alice, &["run", "other", "--image=nginx", "-n", "team"])
        .await;
    assert!(
        stderr.contains(
            "pods is forbidden: User \"alice\" cannot create resource \"pods\" in API group \"\" in the namespace \"team\""
        ),
        "{stderr}"
    );
    let stderr = server
        .kubectl_err_as(&alice, &["delete", "pod", "web", "-n", "team"])
        .await;
    assert!(
        stderr.contains(
            "pods \"web\" is forbidden: User \"alice\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\""
        ),
        "{stderr}"
    );
    let stderr = server.kubectl_err_as(&alice, &["get", "nodes"]).await;
    assert!(
        stderr.contains(
            "nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        ),
        "{stderr}"
    );
    let stderr = server
        .kubectl_err_as(&alice, &["get", "--raw", "/metrics"])
        .await;
    assert!(
        stderr.contains("forbidden: User \"alice\" cannot get path \"/metrics\""),
        "{stderr}"
    );
    // Nothing was written by the refused requests.
    assert_eq!(server.stored_names("", "pods", Some("team")).await, ["web"]);

    // kubectl auth can-i (SelfSubjectAccessReview, sent as protobuf).
    assert!(can_i(&server, &alice, &["list", "pods", "-n", "team"]).await);
    assert!(can_i(&server, &alice, &["watch", "pods", "-n", "team"]).await);
    assert!(!can_i(&server, &alice, &["list", "pods", "-n", "default"]).await);
    assert!(!can_i(&server, &alice, &["create", "pods", "-n", "team"]).await);
    assert!(!can_i(&server, &alice, &["get", "secrets", "-n", "team"]).await);
    assert!(!can_i(&server, &alice, &["list", "pods", "--all-namespaces"]).await);

    // kubectl auth can-i --list (SelfSubjectRulesReview).
    let list = server
        .kubectl_ok_as(&alice, &["auth", "can-i", "--list", "-n", "team"])
        .await;
    let table = Table::parse(&list);
    assert_eq!(
        table.header,
        ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]
    );
    assert_eq!(table.cell(table.row("pods"), "Verbs"), "[get list watch]");
    assert_eq!(
        table.cell(
            table.row("selfsubjectaccessreviews.authorization.k8s.io"),
            "Verbs"
        ),
        "[create]"
    );
    assert!(list.contains("[/api/*]"), "{list}");
    assert!(!list.contains("secrets"), "{list}");
    let elsewhere = server
        .kubectl_ok_as(&alice, &["auth", "can-i", "--list", "-n", "default"])
        .await;
    assert!(
        !Table::parse(&elsewhere)
            .rows
            .iter()
            .any(|r| r.first().map(String::as_str) == Some("pods")),
        "{elsewhere}"
    );

    // kubectl auth whoami (SelfSubjectReview).
    let whoami = server.kubectl_ok_as(&alice, &["auth", "whoami"]).await;
    assert!(whoami.contains("alice"), "{whoami}");
    assert!(
        whoami.contains("[developers system:authenticated]"),
        "{whoami}"
    );

    // The policy is read again when it changes: without the binding,
    // alice loses access at once.
    server
        .kubectl_ok(&["delete", "rolebinding", "alice-reads-pods", "-n", "team"])
        .await;
    let stderr = server
        .kubectl_err_as(&alice, &["get", "pods", "-n", "team"])
        .await;
    assert!(stderr.contains("Forbidden"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_are_unauthorized() {
    let server = team_server().await;
    let anonymous = server.anonymous_kubeconfig();
    let stderr = server.kubectl_err_as(&anonymous, &["get", "pods"]).await;
    // kubectl words a 401 on discovery as "(the server has asked for the
    // client to provide credentials)", elsewhere as "(Unauthorized)".
    assert!(
        stderr.contains("error: You must be logged in to the server"),
        "{stderr}"
    );
    assert!(can_i_fails(&server, &anonymous).await);
    // Health and version stay public.
    for path in ["/healthz", "/livez", "/readyz"] {
        let body = server
            .kubectl_ok_as(&anonymous, &["get", "--raw", path])
            .await;
        assert_eq!(body.trim(), "ok", "{path}");
    }
    let version = server
        .kubectl_ok_as(&anonymous, &["get", "--raw", "/version"])
        .await;
    assert!(version.contains("gitVersion"), "{version}");

    // The answer is a Status with reason Unauthorized (a client that
    // sends no Authorization header at all).
    let client = server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    match within("an anonymous list", pods.list(&ListParams::default())).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
            assert_eq!(status.message, "Unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // Discovery needs authentication too.
    assert!(matches!(
        within("anonymous discovery", client.list_api_groups()).await,
        Err(kube::Error::Api(ref s)) if s.code == 401
    ));
}

async fn can_i_fails(server: &Cluster, kubeconfig: &Path) -> bool {
    let output = server
        .kubectl_as(kubeconfig, &["auth", "can-i", "list", "pods"])
        .await;
    !output.status.success()
        && String::from_utf8_lossy(&output.stderr).contains("You must be logged in to the server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let server = Cluster::start_secure().await;
    let other = TestCa::new();
    let (cert, key) = other.client_cert("admin", &["system:masters"]);
    let kubeconfig = server.write_file(
        "foreign.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
             users:\n- name: t\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n\
             contexts:\n- name: t\n  context: {{cluster: t, user: t}}\ncurrent-context: t\n",
            server.url,
            b64(server.tls.as_ref().expect("tls").cert_pem.as_bytes()),
            b64(cert.as_bytes()),
            b64(key.as_bytes()),
        ),
    );
    let stderr = server.kubectl_err_as(&kubeconfig, &["get", "pods"]).await;
    assert!(
        stderr.contains("certificate") || stderr.contains("tls"),
        "{stderr}"
    );
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
