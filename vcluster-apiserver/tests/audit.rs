//! The audit log seen from outside: a scripted kubectl session against a
//! secure server (client certificates, RBAC) whose events go to a memory
//! sink, checked event by event; and the file sink's rotation.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vcluster_apiserver::audit::{
    AuditConfig, AuditSink, Event, FileSink, Level, MemorySink, Policy, Rotation, Stage,
};
use vcluster_testkit::cluster::{Cluster, Options};
use vcluster_testkit::eventually;

/// Secrets at Metadata, configmap patches with both bodies, other
/// configmap and namespace requests with the request body, discovery
/// not at all, everything else at Metadata.
const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitManagedFields: true
rules:
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
  verbs: [patch]
  resources: [{group: "", resources: [configmaps]}]
- level: Request
  resources: [{group: "", resources: [configmaps, namespaces]}]
- level: None
  nonResourceURLs: ["/api", "/api/*", "/apis", "/apis/*", "/openapi/*", "/version"]
- level: Metadata
"#;

const SECRET_VALUE: &str = "hunter2-s3cret";

async fn audited_server(sink: &MemorySink) -> Cluster {
    let policy = Policy::parse(POLICY).expect("the test policy is valid");
    let sink: Arc<dyn AuditSink> = Arc::new(sink.clone());
    Cluster::start_with(Options {
        secure: true,
        configure: Box::new(move |config| config.audit = Some(AuditConfig::new(policy, sink))),
        ..Options::default()
    })
    .await
}

/// The ResponseComplete events of `verb` on `resource` (named `name`).
fn completed<'a>(events: &'a [Event], verb: &str, resource: &str, name: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.stage == Stage::ResponseComplete && e.verb == verb)
        .filter(|e| {
            e.object_ref
                .as_ref()
                .is_some_and(|r| r.resource == resource && r.name == name)
        })
        .collect()
}

fn only<'a>(events: &'a [Event], verb: &str, resource: &str, name: &str) -> &'a Event {
    let found = completed(events, verb, resource, name);
    assert_eq!(found.len(), 1, "{verb} {resource}/{name}: {found:#?}");
    found[0]
}

fn code(event: &Event) -> u64 {
    event
        .response_status
        .as_ref()
        .and_then(|s| s.get("code"))
        .and_then(Value::as_u64)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubectl_session_is_audited_as_upstream_would() {
    let sink = MemorySink::new();
    let server = audited_server(&sink).await;
    let ns = ["-n", "audit-demo"];
    server
        .kubectl_ok(&["create", "namespace", "audit-demo"])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "configmap",
            "settings",
            "--from-literal=a=1",
            ns[0],
            ns[1],
        ])
        .await;
    server
        .kubectl_ok(&["get", "configmap", "settings", "-o", "json", ns[0], ns[1]])
        .await;
    server
        .kubectl_ok(&[
            "patch",
            "configmap",
            "settings",
            "--type=merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
            ns[0],
            ns[1],
        ])
        .await;
    let literal = format!("--from-literal=password={SECRET_VALUE}");
    server
        .kubectl_ok(&[
            "create", "secret", "generic", "creds", &literal, ns[0], ns[1],
        ])
        .await;
    server
        .kubectl_ok(&["get", "secret", "creds", "-o", "yaml", ns[0], ns[1]])
        .await;
    // A watch the client gives up after 2 s; the next change finds the
    // connection closed and ends the stream.
    let mut watch = server.kubectl_command(&["get", "configmaps", "--watch", ns[0], ns[1]], "2s");
    let watched = tokio::time::timeout(Duration::from_secs(30), watch.output())
        .await
        .expect("kubectl's watch ends with its request timeout")
        .expect("kubectl runs");
    assert!(String::from_utf8_lossy(&watched.stdout).contains("settings"));
    let alice = server.cert_kubeconfig("alice", "alice", &["team"]);
    let denied = server
        .kubectl_err_as(&alice, &["get", "configmaps", ns[0], ns[1]])
        .await;
    assert!(denied.contains("forbidden"), "{denied}");
    // The admin acting as alice: audited as the admin, impersonating her.
    let impersonated = server
        .kubectl_err(&["get", "configmaps", "--as", "alice", ns[0], ns[1]])
        .await;
    assert!(impersonated.contains("forbidden"), "{impersonated}");
    server
        .kubectl_ok(&["delete", "configmap", "settings", ns[0], ns[1]])
        .await;

    let events = eventually("the watch's ResponseComplete", || {
        let events = sink.events();
        async move { (!completed(&events, "watch", "configmaps", "").is_empty()).then_some(events) }
    })
    .await;

    // One ResponseComplete per request, after its RequestReceived.
    for complete in events.iter().filter(|e| e.stage == Stage::ResponseComplete) {
        let same: Vec<&Event> = events
            .iter()
            .filter(|e| e.audit_id == complete.audit_id)
            .collect();
        let stages: Vec<Stage> = same.iter().map(|e| e.stage).collect();
        let expected: &[Stage] = if complete.verb == "watch" {
            &[
                Stage::RequestReceived,
                Stage::ResponseStarted,
                Stage::ResponseComplete,
            ]
        } else {
            &[Stage::RequestReceived, Stage::ResponseComplete]
        };
        assert_eq!(stages, expected, "{same:#?}");
        assert!(same[0].response_status.is_none(), "{:#?}", same[0]);
        // Authorization happens after RequestReceived.
        assert!(same[0].annotations.is_empty(), "{:#?}", same[0]);
        assert!(same
            .iter()
            .all(|e| e.request_received_timestamp == same[0].request_received_timestamp));
    }
    // Bodies only where the level asks for them.
    for e in &events {
        assert!(
            e.request_object.is_none() || e.level >= Level::Request,
            "{e:#?}"
        );
        assert!(
            e.response_object.is_none() || e.level == Level::RequestResponse,
            "{e:#?}"
        );
        assert!(
            e.request_object.is_none() || e.stage == Stage::ResponseComplete,
            "{e:#?}"
        );
    }
    // Discovery is at level None.
    assert!(
        events.iter().all(|e| !e.request_uri.starts_with("/api?")
            && e.request_uri != "/api"
            && !e.request_uri.starts_with("/apis")),
        "{:#?}",
        events.iter().map(|e| &e.request_uri).collect::<Vec<_>>()
    );

    let admin = |e: &Event| {
        assert_eq!(e.user.username, "admin", "{e:#?}");
        assert!(e.user.groups.iter().any(|g| g == "system:masters"));
        assert_eq!(
            e.annotations
                .get("authorization.k8s.io/decision")
                .map(String::as_str),
            Some("allow")
        );
        assert!(e.source_ips.iter().any(|ip| ip == "127.0.0.1"), "{e:#?}");
        assert!(e.user_agent.starts_with("kubectl"), "{e:#?}");
    };
    let namespace = only(&events, "create", "namespaces", "audit-demo");
    admin(namespace);
    assert_eq!((namespace.level, code(namespace)), (Level::Request, 201));
    assert!(namespace.request_object.is_some() && namespace.response_object.is_none());

    let created = only(&events, "create", "configmaps", "settings");
    admin(created);
    let reference = created.object_ref.as_ref().expect("objectRef");
    assert_eq!(
        (
            reference.namespace.as_str(),
            reference.api_version.as_str(),
            reference.api_group.as_str()
        ),
        ("audit-demo", "v1", "")
    );
    assert_eq!(code(created), 201);
    let object = created
        .request_object
        .as_ref()
        .expect("Request level logs the request");
    assert_eq!(object.pointer("/data/a").and_then(Value::as_str), Some("1"));
    assert!(created.response_object.is_none());

    // `kubectl get`, the read `kubectl patch` makes first, and the one
    // `kubectl delete` waits with (404: gone).
    let gets = completed(&events, "get", "configmaps", "settings");
    assert!(gets.iter().any(|got| code(got) == 200), "{gets:#?}");
    for got in gets {
        assert_eq!(got.level, Level::Request);
        assert!(got.request_object.is_none() && got.response_object.is_none());
        if code(got) == 404 {
            let status = got.response_status.as_ref().expect("status");
            assert_eq!(
                status.get("reason").and_then(Value::as_str),
                Some("NotFound")
            );
        }
    }

    let patched = only(&events, "patch", "configmaps", "settings");
    assert_eq!(
        (patched.level, code(patched)),
        (Level::RequestResponse, 200)
    );
    assert_eq!(
        patched.request_object,
        Some(serde_json::json!({"data": {"b": "2"}}))
    );
    let response = patched
        .response_object
        .as_ref()
        .expect("RequestResponse logs the response");
    assert_eq!(
        response.pointer("/data/b").and_then(Value::as_str),
        Some("2")
    );
    assert!(
        response.pointer("/metadata/managedFields").is_none(),
        "omitManagedFields"
    );

    let secret = only(&events, "create", "secrets", "creds");
    assert_eq!((secret.level, code(secret)), (Level::Metadata, 201));
    assert!(secret.request_object.is_none() && secret.response_object.is_none());
    assert!(!completed(&events, "get", "secrets", "creds").is_empty());
    let log = serde_json::to_string(&events).expect("serialize");
    assert!(
        !log.contains(SECRET_VALUE) && !log.contains("aHVudGVyMi1zM2NyZXQ="),
        "secret data in the log"
    );

    let watch = only(&events, "watch", "configmaps", "");
    admin(watch);
    assert_eq!(code(watch), 200);
    assert!(watch.request_uri.contains("watch=true"), "{watch:#?}");

    // The list before the watch is admin's; alice's is refused, and so is
    // the admin's as alice.
    let lists = completed(&events, "list", "configmaps", "");
    let of = |user: &str, acting_as: Option<&str>| -> Vec<&Event> {
        lists
            .iter()
            .copied()
            .filter(|e| e.user.username == user)
            .filter(|e| e.impersonated_user.as_ref().map(|u| u.username.as_str()) == acting_as)
            .collect()
    };
    let (forbidden, allowed, as_alice) = (
        of("alice", None),
        of("admin", None),
        of("admin", Some("alice")),
    );
    assert_eq!(
        (forbidden.len(), allowed.len(), as_alice.len()),
        (1, 1, 1),
        "{lists:#?}"
    );
    assert_eq!(code(as_alice[0]), 403);
    assert_eq!(
        as_alice[0]
            .annotations
            .get("authorization.k8s.io/decision")
            .map(String::as_str),
        Some("forbid")
    );
    admin(allowed[0]);
    let forbidden = forbidden[0];
    assert_eq!(code(forbidden), 403);
    assert_eq!(
        forbidden
            .annotations
            .get("authorization.k8s.io/decision")
            .map(String::as_str),
        Some("forbid")
    );
    let reason = forbidden
        .annotations
        .get("authorization.k8s.io/reason")
        .expect("a reason");
    assert!(reason.contains("alice"), "{reason}");
    let status = forbidden.response_status.as_ref().expect("status");
    assert_eq!(
        status.get("reason").and_then(Value::as_str),
        Some("Forbidden")
    );
    assert!(forbidden.request_object.is_none(), "a list has no body");

    let deleted = only(&events, "delete", "configmaps", "settings");
    admin(deleted);
    assert_eq!(code(deleted), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_the_audit_id_and_levels_none_log_nothing() {
    let sink = MemorySink::new();
    let memory: Arc<dyn AuditSink> = Arc::new(sink.clone());
    let policy = Policy::parse(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: None\n  nonResourceURLs: [/healthz]\n- level: Metadata\n",
    )
    .expect("valid");
    let server = Cluster::start_configured(|config| {
        config.audit = Some(AuditConfig::new(policy, memory));
    })
    .await;
    let health = server.raw("GET", "/healthz", &[], b"").await;
    assert!(
        health.header("audit-id").is_some(),
        "every response has an id"
    );
    let listed = server
        .raw(
            "GET",
            "/api/v1/namespaces",
            &[("Audit-Id", "my-correlation-id")],
            b"",
        )
        .await;
    assert_eq!(listed.header("audit-id"), Some("my-correlation-id"));
    let events = eventually("the list's event", || {
        let events = sink.events();
        async move { (!events.is_empty()).then_some(events) }
    })
    .await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(
        (event.stage, event.verb.as_str(), event.audit_id.as_str()),
        (Stage::ResponseComplete, "list", "my-correlation-id")
    );
    // Plain HTTP does not authorize: no decision to report.
    assert!(event.annotations.is_empty(), "{event:#?}");
    assert_eq!(event.user.username, "system:anonymous");
}

#[test]
fn the_file_sink_rotates_by_size_and_keeps_max_backups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("logs").join("audit.log");
    let event: Event = serde_json::from_value(serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "5f6c9b0e-0000-4000-8000-000000000000", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces", "verb": "list", "user": {"username": "admin"},
        "requestReceivedTimestamp": "2026-12-06T15:52:01.000000Z",
        "stageTimestamp": "2026-12-06T15:52:01.000100Z"
    }))
    .expect("an event");
    let line = serde_json::to_vec(&event).expect("serialize").len() as u64 + 1;
    let sink = FileSink::open(
        &path,
        Rotation {
            max_bytes: 3 * line,
            max_backups: 2,
        },
    )
    .expect("open");
    for _ in 0..10 {
        sink.write(&event);
    }
    // 10 lines, 3 per file: 3 full files rotated (2 kept), 1 line current.
    let backups = sink.backups().expect("list backups");
    assert_eq!(backups.len(), 2, "{backups:?}");
    let current = std::fs::read_to_string(&path).expect("read");
    assert_eq!(current.lines().count(), 1);
    for file in backups.iter().chain([&path]) {
        let text = std::fs::read_to_string(file).expect("read");
        for line in text.lines() {
            let back: Event = serde_json::from_str(line).expect("each line is an event");
            assert_eq!(back, event);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.parent().expect("dir"))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
    // Reopening appends.
    drop(sink);
    let again = FileSink::open(&path, Rotation::default()).expect("reopen");
    again.write(&event);
    assert_eq!(
        std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .count(),
        2
    );
}
