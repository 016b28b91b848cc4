//! RBAC beyond the basics: escalation prevention (`escalate`, `bind`,
//! aggregation rules), impersonation, access reviews, the verbs,
//! subresources and resource names of upstream's request attributes, how
//! policy changes take effect, and which listeners enforce what.

use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use serde_json::json;
use vcluster_apiserver::auth::{AuthMode, StaticTokens};
use vcluster_apiserver::registry::WriteOptions;
use vcluster_apiserver::UserInfo;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::eventually;
use vcluster_testkit::http::pod_json;
use vcluster_testkit::within;

fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

const CAROL: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: role-manager, namespace: team}
rules:
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  # Not "*": that would include `escalate` and `bind`.
  verbs: ["create", "get", "list", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: carol-manages-roles, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-manager}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_cannot_grant_more_than_their_writer_holds() {
    let server = Cluster::start_secure().await;
    let manifest = server.write_file("carol.yaml", CAROL);
    server
        .kubectl_ok(&["apply", "-f", &manifest.display().to_string()])
        .await;
    let carol = server.cert_kubeconfig("carol", "carol", &[]);

    // Within what she holds: fine.
    server
        .kubectl_ok_as(
            &carol,
            &[
                "create",
                "role",
                "pod-getter",
                "--verb=get",
                "--resource=pods",
                "-n",
                "team",
            ],
        )
        .await;
    server
        .kubectl_ok_as(
            &carol,
            &[
                "create",
                "rolebinding",
                "dave-pods",
                "--role=pod-getter",
                "--user=dave",
                "-n",
                "team",
            ],
        )
        .await;

    // Beyond: refused, naming what is missing.
    let stderr = server
        .kubectl_err_as(
            &carol,
            &[
                "create",
                "role",
                "secret-reader",
                "--verb=get,list",
                "--resource=secrets",
                "-n",
                "team",
            ],
        )
        .await;
    assert!(
        stderr.contains(
            "roles.rbac.authorization.k8s.io \"secret-reader\" is forbidden: user \"carol\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\", \"list\"]}"),
        "{stderr}"
    );
    assert!(server
        .stored_names("rbac.authorization.k8s.io", "roles", Some("team"))
        .await
        .iter()
        .all(|n| n != "secret-reader"));
    // Patching a role she may update into more than she holds.
    let stderr = server
        .kubectl_err_as(
            &carol,
            &[
                "patch", "role", "pod-getter", "-n", "team", "--type=json", "-p",
                r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["get"]}}]"#,
            ],
        )
        .await;
    assert!(
        stderr.contains("is attempting to grant RBAC permissions not currently held"),
        "{stderr}"
    );
    // Binding a role whose rules she does not hold.
    let stderr = server
        .kubectl_err_as(
            &carol,
            &[
                "create",
                "rolebinding",
                "dave-admin",
                "--clusterrole=admin",
                "--user=dave",
                "-n",
                "team",
            ],
        )
        .await;
    assert!(
        stderr.contains(
            "rolebindings.rbac.authorization.k8s.io \"dave-admin\" is forbidden: user \"carol\""
        ),
        "{stderr}"
    );
    // A binding's role cannot change.
    let stderr = server
        .kubectl_err_as(
            &carol,
            &[
                "patch",
                "rolebinding",
                "dave-pods",
                "-n",
                "team",
                "--type=merge",
                "-p",
                r#"{"roleRef":{"name":"role-manager"}}"#,
            ],
        )
        .await;
    assert!(stderr.contains("cannot change roleRef"), "{stderr}");

    // `bind` on the admin ClusterRole lets her bind it; `escalate` on
    // roles lets her write any rules.
    server
        .kubectl_ok(&[
            "create",
            "role",
            "binder",
            "--verb=bind",
            "--resource=clusterroles.rbac.authorization.k8s.io",
            "--resource-name=admin",
            "-n",
            "team",
        ])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "rolebinding",
            "carol-binds",
            "--role=binder",
            "--user=carol",
            "-n",
            "team",
        ])
        .await;
    server
        .kubectl_ok_as(
            &carol,
            &[
                "create",
                "rolebinding",
                "dave-admin",
                "--clusterrole=admin",
                "--user=dave",
                "-n",
                "team",
            ],
        )
        .await;
    let stderr = server
        .kubectl_err_as(
            &carol,
            &[
                "create",
                "rolebinding",
                "dave-edit",
                "--clusterrole=edit",
                "--user=dave",
                "-n",
                "team",
            ],
        )
        .await;
    assert!(stderr.contains("is forbidden"), "{stderr}");
    server
        .kubectl_ok(&[
            "create",
            "role",
            "escalator",
            "--verb=escalate",
            "--resource=roles.rbac.authorization.k8s.io",
            "-n",
            "team",
        ])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "rolebinding",
            "carol-escalates",
            "--role=escalator",
            "--user=carol",
            "-n",
            "team",
        ])
        .await;
    server
        .kubectl_ok_as(
            &carol,
            &[
                "create",
                "role",
                "secret-reader",
                "--verb=get",
                "--resource=secrets",
                "-n",
                "team",
            ],
        )
        .await;

    // Aggregation rules need full authority.
    server
        .kubectl_ok(&[
            "create",
            "clusterrole",
            "clusterrole-writer",
            "--verb=create,get",
            "--resource=clusterroles.rbac.authorization.k8s.io",
        ])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "clusterrolebinding",
            "carol-writes-clusterroles",
            "--clusterrole=clusterrole-writer",
            "--user=carol",
        ])
        .await;
    let stderr = server
        .kubectl_err_as(
            &carol,
            &[
                "create",
                "clusterrole",
                "carol-aggregate",
                "--aggregation-rule=team=carol",
            ],
        )
        .await;
    assert!(
        stderr.contains("must have cluster-admin privileges to use the aggregationRule"),
        "{stderr}"
    );
    // The admin may.
    server
        .kubectl_ok(&[
            "create",
            "clusterrole",
            "admin-aggregate",
            "--aggregation-rule=team=carol",
        ])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_needs_the_impersonate_verb() {
    let server = Cluster::start_secure().await;
    server.kubectl_ok(&["create", "namespace", "team"]).await;
    server
        .kubectl_ok(&[
            "create",
            "rolebinding",
            "alice-view",
            "--clusterrole=view",
            "--user=alice",
            "-n",
            "team",
        ])
        .await;
    // The admin acts as alice.
    let yes = server
        .kubectl_ok(&["auth", "can-i", "list", "pods", "-n", "team", "--as=alice"])
        .await;
    assert_eq!(yes.trim(), "yes");
    let stderr = server
        .kubectl_err(&["get", "pods", "-n", "default", "--as=alice"])
        .await;
    assert!(
        stderr.contains("User \"alice\" cannot list resource \"pods\""),
        "{stderr}"
    );
    let whoami = server
        .kubectl_ok(&["auth", "whoami", "--as=carol", "--as-group=devs"])
        .await;
    assert!(
        whoami.contains("carol") && whoami.contains("[devs system:authenticated]"),
        "{whoami}"
    );
    // alice may not act as anyone. (kubectl cannot show a 403 on
    // discovery, which is what it meets first; a kube-rs client with the
    // same `as:` kubeconfig sees the Status.)
    let alice = server.cert_kubeconfig("alice", "alice", &[]);
    let stderr = server
        .kubectl_err_as(&alice, &["get", "pods", "-n", "team", "--as=bob"])
        .await;
    assert!(stderr.contains("Forbidden"), "{stderr}");
    let alice_as_bob = server.write_file(
        "alice-as-bob.kubeconfig",
        &std::fs::read_to_string(&alice)
            .expect("read")
            .replace("  user:\n", "  user:\n    as: bob\n"),
    );
    let pods: Api<Pod> = Api::namespaced(server.client_from(&alice_as_bob).await, "team");
    let (code, message) =
        api_error(within("an impersonated list", pods.list(&ListParams::default())).await);
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    // ...until she may impersonate bob (and only bob).
    server
        .kubectl_ok(&[
            "create",
            "clusterrole",
            "impersonate-bob",
            "--verb=impersonate",
            "--resource=users",
            "--resource-name=bob",
        ])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "clusterrolebinding",
            "alice-as-bob",
            "--clusterrole=impersonate-bob",
            "--user=alice",
        ])
        .await;
    let whoami = server
        .kubectl_ok_as(&alice, &["auth", "whoami", "--as=bob"])
        .await;
    assert!(whoami.contains("bob"), "{whoami}");
    // Not as a member of system:masters, though (kubectl words a 403 on
    // whoami as "...you do not have permission to call it").
    let stderr = server
        .kubectl_err_as(
            &alice,
            &["auth", "whoami", "--as=bob", "--as-group=system:masters"],
        )
        .await;
    assert!(stderr.contains("do not have permission"), "{stderr}");
    let as_master = server.write_file(
        "alice-as-master.kubeconfig",
        &std::fs::read_to_string(&alice).expect("read").replace(
            "  user:\n",
            "  user:\n    as: bob\n    as-groups: [system:masters]\n",
        ),
    );
    let pods: Api<Pod> = Api::namespaced(server.client_from(&as_master).await, "team");
    let (code, message) =
        api_error(within("an impersonated list", pods.list(&ListParams::default())).await);
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "groups \"system:masters\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_answer_for_other_users() {
    let server = Cluster::start_secure().await;
    server.kubectl_ok(&["create", "namespace", "team"]).await;
    server
        .kubectl_ok(&[
            "create",
            "role",
            "pod-reader",
            "--verb=get,list,watch",
            "--resource=pods",
            "-n",
            "team",
        ])
        .await;
    server
        .kubectl_ok(&[
            "create",
            "rolebinding",
            "alice-reads-pods",
            "--role=pod-reader",
            "--user=alice",
            "-n",
            "team",
        ])
        .await;
    let admin = server.client_from(&server.kubeconfig).await;
    let review = |namespace: &str| SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("alice".into()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.into()),
                verb: Some("list".into()),
                resource: Some("pods".into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let reviews: Api<SubjectAccessReview> = Api::all(admin.clone());
    let answer = within(
        "a SubjectAccessReview",
        reviews.create(&PostParams::default(), &review("team")),
    )
    .await
    .expect("review")
    .status
    .expect("status");
    assert!(answer.allowed);
    assert_eq!(
        answer.reason.as_deref(),
        Some("RBAC: allowed by RoleBinding \"alice-reads-pods/team\" of Role \"pod-reader\" to User \"alice\"")
    );
    let answer = within(
        "a SubjectAccessReview",
        reviews.create(&PostParams::default(), &review("default")),
    )
    .await
    .expect("review")
    .status
    .expect("status");
    assert!(!answer.allowed);
    // The namespaced form, for namespace admins.
    let local: Api<LocalSubjectAccessReview> = Api::namespaced(admin, "team");
    let mut local_review = LocalSubjectAccessReview {
        spec: review("team").spec,
        ..LocalSubjectAccessReview::default()
    };
    local_review.metadata.namespace = Some("team".into());
    let answer = within(
        "a LocalSubjectAccessReview",
        local.create(&PostParams::default(), &local_review),
    )
    .await
    .expect("review")
    .status
    .expect("status");
    assert!(answer.allowed);
    // alice may not ask about others.
    let alice = server.cert_kubeconfig("alice", "alice", &[]);
    let alice_reviews: Api<SubjectAccessReview> = Api::all(server.client_from(&alice).await);
    let (code, message) = api_error(
        within(
            "alice's review",
            alice_reviews.create(&PostParams::default(), &review("team")),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "subjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbs_subresources_and_names_are_authorized_like_upstream() {
    let server = Cluster::start_secure().await;
    let admin = server.server.client();
    let erin = server.server.client_as(UserInfo::new("erin", &[]));
    server.kubectl_ok(&["create", "namespace", "team"]).await;
    let manifest = server.write_file(
        "erin.yaml",
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: erin, namespace: team}
rules:
- {apiGroups: [""], resources: ["pods"], verbs: ["list"]}
- {apiGroups: [""], resources: ["pods/status"], verbs: ["patch"]}
- {apiGroups: [""], resources: ["configmaps"], resourceNames: ["settings"], verbs: ["get", "watch", "list"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: erin, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: erin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: erin}]
"#,
    );
    server
        .kubectl_ok(&["apply", "-f", &manifest.display().to_string()])
        .await;
    let admin_pods: Api<Pod> = Api::namespaced(admin.clone(), "team");
    let pod: Pod = serde_json::from_value(pod_json("web", &[])).expect("pod");
    admin_pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let admin_cms: Api<ConfigMap> = Api::namespaced(admin, "team");
    for name in ["settings", "other"] {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        admin_cms
            .create(&PostParams::default(), &cm)
            .await
            .expect("create configmap");
    }

    let pods: Api<Pod> = Api::namespaced(erin.clone(), "team");
    assert_eq!(
        pods.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let (code, message) = api_error(pods.get("web").await);
    assert_eq!(code, 403);
    assert_eq!(message, "pods \"web\" is forbidden: User \"erin\" cannot get resource \"pods\" in API group \"\" in the namespace \"team\"");
    let (_, message) = api_error(pods.watch(&WatchParams::default(), "0").await.map(|_| ()));
    assert!(
        message.contains("cannot watch resource \"pods\""),
        "{message}"
    );
    let (_, message) = api_error(
        pods.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await,
    );
    assert!(
        message.contains("cannot deletecollection resource \"pods\""),
        "{message}"
    );
    // The status subresource, not the main resource.
    let status = json!({"status": {"message": "patched by erin"}});
    pods.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("erin may patch pods/status");
    let (_, message) = api_error(
        pods.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await,
    );
    assert!(
        message.contains("cannot patch resource \"pods\" in API group"),
        "{message}"
    );
    let (_, message) = api_error(pods.get_status("web").await);
    assert!(
        message.contains("cannot get resource \"pods/status\""),
        "{message}"
    );

    // Resource names: one config map, and lists or watches pinned to it.
    let cms: Api<ConfigMap> = Api::namespaced(erin, "team");
    cms.get("settings").await.expect("erin may get settings");
    let (_, message) = api_error(cms.get("other").await);
    assert_eq!(message, "configmaps \"other\" is forbidden: User \"erin\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"team\"");
    let (_, message) = api_error(cms.list(&ListParams::default()).await);
    assert!(
        message.contains("cannot list resource \"configmaps\""),
        "{message}"
    );
    let pinned = cms
        .list(&ListParams::default().fields("metadata.name=settings"))
        .await
        .expect("a list pinned to settings");
    assert_eq!(pinned.items.len(), 1);
    let mut events = cms
        .watch(
            &WatchParams::default().fields("metadata.name=settings"),
            "0",
        )
        .await
        .expect("a watch pinned to settings")
        .boxed();
    let first = within("the first watch event", events.next()).await;
    assert!(
        matches!(first, Some(Ok(kube::api::WatchEvent::Added(_)))),
        "{first:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_written_around_the_api_takes_effect_too() {
    let server = Cluster::start_secure().await;
    let frank = server.server.client_as(UserInfo::new("frank", &[]));
    let pods: Api<Pod> = Api::namespaced(frank, "default");
    assert_eq!(api_error(pods.list(&ListParams::default()).await).0, 403);
    // Written straight into the registry: the policy cache learns of it
    // from the watch cache.
    let registry = server.server.registry();
    let bindings = registry
        .catalog()
        .get("rbac.authorization.k8s.io", "v1", "rolebindings")
        .expect("rolebindings served");
    registry
        .create(
            &bindings,
            Some("default"),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "frank-view", "namespace": "default"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "frank"}],
            }),
            &WriteOptions::default(),
        )
        .await
        .expect("create the binding");
    eventually("frank's new binding to apply", || {
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await.ok() }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_decide_which_requests_are_checked() {
    // Plain HTTP by default: served as before (no credentials needed).
    let open = Cluster::start().await;
    let response = open
        .raw("GET", "/api/v1/namespaces/default/pods", &[], b"")
        .await;
    assert_eq!(response.status, 200);
    // The bare in-process router too; in-process identities are checked.
    let anonymous: Api<Pod> = Api::namespaced(
        kube::Client::new(open.server.router(), "default"),
        "default",
    );
    anonymous
        .list(&ListParams::default())
        .await
        .expect("open in-process router");
    let nobody: Api<Pod> = Api::namespaced(
        open.server.client_as(UserInfo::new("nobody", &[])),
        "default",
    );
    assert_eq!(api_error(nobody.list(&ListParams::default()).await).0, 403);

    // `Always`: plain HTTP needs a bearer token.
    let strict = Cluster::start_with(Options {
        configure: Box::new(|config| {
            config.auth.mode = AuthMode::Always;
            config.auth.static_tokens = StaticTokens::from_csv(
                "root-token,root,uid-root,system:masters\nlow-token,low,uid-low\n",
            )
            .expect("tokens");
        }),
        ..Options::default()
    })
    .await;
    let response = strict
        .raw("GET", "/api/v1/namespaces/default/pods", &[], b"")
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["reason"], "Unauthorized");
    let response = strict.raw("GET", "/healthz", &[], b"").await;
    assert_eq!(response.status, 200);
    let response = strict
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods",
            &[("Authorization", "Bearer root-token")],
            b"",
        )
        .await;
    assert_eq!(response.status, 200);
    let response = strict
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods",
            &[("Authorization", "Bearer low-token")],
            b"",
        )
        .await;
    assert_eq!(response.status, 403);
    let status = response.json();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(status["details"]["kind"], "pods");
    assert_eq!(
        status["message"],
        "pods is forbidden: User \"low\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    // Discovery is granted to every authenticated user.
    let response = strict
        .raw(
            "GET",
            "/apis",
            &[("Authorization", "Bearer low-token")],
            b"",
        )
        .await;
    assert_eq!(response.status, 200);
    let response = strict
        .raw(
            "GET",
            "/openapi/v3",
            &[("Authorization", "Bearer low-token")],
            b"",
        )
        .await;
    assert_eq!(response.status, 200);

    // `Never`: a verifying TLS listener serves everyone.
    let never = Cluster::start_with(Options {
        secure: true,
        configure: Box::new(|config| config.auth.mode = AuthMode::Never),
        ..Options::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(never.client(), "default");
    pods.list(&ListParams::default())
        .await
        .expect("no enforcement");
}
