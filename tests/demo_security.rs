//! The demo's virtual API server enforces authentication and RBAC: its
//! admin kubeconfig works, requests without credentials do not, a
//! token-file user gets only what it is bound to, and service-account
//! tokens survive a restart (the signing key lives in the data directory).
//! Started in-process through the library, on loopback ports.

use std::path::Path;

use vcluster::demo::{self, DemoOptions};
use vcluster_testkit::free_port;
use vcluster_testkit::kubectl::run_async as kubectl;

async fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn err(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args).await;
    assert!(!out.status.success(), "kubectl {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A copy of `kubeconfig` whose user is replaced by `user` (YAML lines).
fn with_user(kubeconfig: &Path, target: &Path, user: &str) {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kubeconfig).expect("read")).expect("yaml");
    config["users"][0]["user"] = serde_yaml::from_str(user).expect("user yaml");
    std::fs::write(target, serde_yaml::to_string(&config).expect("yaml")).expect("write");
}

fn options(dir: &Path) -> DemoOptions {
    let mut options = DemoOptions::new(dir.join("data"));
    options.listen = ([127, 0, 0, 1], free_port()).into();
    options.host_listen = ([127, 0, 0, 1], free_port()).into();
    options.token_auth_file = Some(dir.join("tokens.csv"));
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_enforces_authentication_and_rbac() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("tokens.csv"),
        "viewer-token,viewer,uid-viewer\n",
    )
    .expect("token file");
    let running = demo::start(options(dir.path()))
        .await
        .expect("start the demo");
    let admin = running.kubeconfig.clone();

    let whoami = ok(&admin, &["auth", "whoami"]).await;
    assert!(
        whoami.contains("admin") && whoami.contains("system:masters"),
        "{whoami}"
    );
    ok(&admin, &["get", "pods", "-A"]).await;

    let anonymous = dir.path().join("anonymous.kubeconfig");
    with_user(&admin, &anonymous, "{username: anonymous}");
    let stderr = err(&anonymous, &["get", "pods"]).await;
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );

    let viewer = dir.path().join("viewer.kubeconfig");
    with_user(&admin, &viewer, "{token: viewer-token}");
    let stderr = err(&viewer, &["get", "pods"]).await;
    assert!(
        stderr.contains(
            "pods is forbidden: User \"viewer\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{stderr}"
    );
    ok(
        &admin,
        &[
            "create",
            "rolebinding",
            "viewer",
            "--clusterrole=view",
            "--user=viewer",
        ],
    )
    .await;
    ok(&viewer, &["get", "pods"]).await;

    ok(&admin, &["create", "serviceaccount", "robot"]).await;
    ok(
        &admin,
        &[
            "create",
            "rolebinding",
            "robot",
            "--clusterrole=edit",
            "--serviceaccount=default:robot",
        ],
    )
    .await;
    let token = ok(&admin, &["create", "token", "robot"]).await;
    let robot = dir.path().join("robot.kubeconfig");
    with_user(&admin, &robot, &format!("{{token: {}}}", token.trim()));
    ok(&robot, &["create", "configmap", "from-robot"]).await;
    running.shutdown().await;

    // Same data directory: same CA, same signing key, same store.
    let running = demo::start(options(dir.path()))
        .await
        .expect("restart the demo");
    let robot_again = dir.path().join("robot-again.kubeconfig");
    with_user(
        &running.kubeconfig,
        &robot_again,
        &format!("{{token: {}}}", token.trim()),
    );
    let names = ok(&robot_again, &["get", "configmaps", "-o", "name"]).await;
    assert!(names.contains("configmap/from-robot"), "{names}");
    running.shutdown().await;
}

/// `--audit-policy-file` and `--audit-log-path`: the virtual API server's
/// requests land in an owner-only JSON-lines file, refusals included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_writes_an_audit_log_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("tokens.csv"),
        "viewer-token,viewer,uid-viewer\n",
    )
    .expect("token file");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n\
         - level: Metadata\n  resources: [{group: \"\", resources: [configmaps, pods, pods/status]}]\n",
    )
    .expect("policy file");
    let log = dir.path().join("audit").join("audit.log");
    let mut options = options(dir.path());
    options.audit = demo::AuditOptions {
        policy_file: Some(policy),
        log_path: Some(log.clone()),
        ..demo::AuditOptions::default()
    };
    let running = demo::start(options).await.expect("start the demo");
    let admin = running.kubeconfig.clone();
    ok(
        &admin,
        &["create", "configmap", "audited", "--from-literal=k=v"],
    )
    .await;
    let viewer = dir.path().join("viewer.kubeconfig");
    with_user(&admin, &viewer, "{token: viewer-token}");
    err(&viewer, &["get", "configmaps"]).await;
    // The syncer's own writes go through the same server: a pod's status
    // comes back from the host as the syncer's write.
    ok(&admin, &["run", "web", "--image=nginx", "--restart=Never"]).await;
    ok(
        &admin,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "pod/web",
            "--timeout=60s",
        ],
    )
    .await;
    running.shutdown().await;

    let text = std::fs::read_to_string(&log).expect("the audit log exists");
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let complete = |verb: &str, user: &str| {
        events.iter().any(|e| {
            e["stage"] == "ResponseComplete"
                && e["verb"] == verb
                && e["user"]["username"] == user
                && e["objectRef"]["resource"] == "configmaps"
        })
    };
    assert!(complete("create", "admin"), "{text}");
    assert!(complete("list", "viewer"), "{text}");
    let denied = events
        .iter()
        .find(|e| e["stage"] == "ResponseComplete" && e["user"]["username"] == "viewer");
    assert_eq!(
        denied.map(|e| (
            e["responseStatus"]["code"].clone(),
            e["annotations"]["authorization.k8s.io/decision"].clone()
        )),
        Some((serde_json::json!(403), serde_json::json!("forbid"))),
        "{text}"
    );
    let synced_status = events.iter().any(|e| {
        e["stage"] == "ResponseComplete"
            && e["user"]["username"] == "system:apiserver"
            && e["objectRef"]["resource"] == "pods"
            && e["objectRef"]["subresource"] == "status"
            && e["objectRef"]["name"] == "web"
    });
    assert!(
        synced_status,
        "the syncer's status write is audited: {text}"
    );
    assert!(!text.contains("\"k\":\"v\""), "Metadata logs no objects");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
