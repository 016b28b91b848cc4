//! Deleting: a namespace waits for its contents, bound pods go
//! gracefully, finalizers hold an object (also for a controller's own).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_namespace_waits_for_contents_and_refuses_new_ones() {
    let t = Cluster::start().await;
    t.kubectl_ok(&["create", "namespace", "team"]).await;
    t.kubectl_ok(&[
        "create",
        "configmap",
        "plain",
        "-n",
        "team",
        "--from-literal=a=b",
    ])
    .await;
    t.kubectl_ok(&["run", "web", "--image=nginx", "-n", "team"])
        .await;
    let held = t.write_file(
        "held.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: team\n  finalizers: [example.com/hold]\n",
    );
    t.kubectl_ok(&["create", "-f", &held.display().to_string()])
        .await;

    // `kubectl delete namespace` waits until the namespace is gone.
    let deleting = t
        .kubectl_command(&["delete", "namespace", "team", "--timeout=25s"], "30s")
        .spawn()
        .expect("start kubectl delete");

    eventually("the namespace to be Terminating", || async {
        let ns = t.stored("", "namespaces", None, "team").await.ok()?;
        (ns["status"]["phase"] == "Terminating" && ns["metadata"]["deletionTimestamp"].is_string())
            .then_some(())
    })
    .await;
    let table = Table::parse(&t.kubectl_ok(&["get", "namespace", "team"]).await);
    assert_eq!(table.cell(table.row("team"), "STATUS"), "Terminating");

    // New content is refused with upstream's 403.
    let err = t
        .kubectl_err(&["create", "configmap", "late", "-n", "team"])
        .await;
    assert!(
        err.contains("configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"),
        "{err}"
    );
    let raw = t
        .raw(
            "POST",
            "/api/v1/namespaces/team/configmaps",
            &[("Content-Type", "application/json")],
            br#"{"metadata":{"generateName":"late-"}}"#,
        )
        .await;
    assert_eq!(raw.status, 403);
    assert_eq!(raw.json()["reason"], "Forbidden");

    // What has no finalizer goes; the held configmap waits, marked.
    eventually("the unheld contents to go", || async {
        let cms = t.stored_names("", "configmaps", Some("team")).await;
        let pods = t.stored_names("", "pods", Some("team")).await;
        (cms == ["held"] && pods.is_empty()).then_some(())
    })
    .await;
    let held_cm = t
        .stored("", "configmaps", Some("team"), "held")
        .await
        .expect("held");
    assert!(held_cm["metadata"]["deletionTimestamp"].is_string());
    let ns = eventually("the namespace conditions", || async {
        let ns = t.stored("", "namespaces", None, "team").await.ok()?;
        let conditions = ns["status"]["conditions"].as_array()?.clone();
        conditions
            .iter()
            .any(|c| c["type"] == "NamespaceFinalizersRemaining" && c["status"] == "True")
            .then_some(ns)
    })
    .await;
    let remaining = ns["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "NamespaceContentRemaining"))
        .cloned()
        .expect("content remaining condition");
    assert_eq!(
        remaining["message"],
        "Some resources are remaining: configmaps. has 1 resource instances"
    );

    // Releasing the finalizer lets everything finish; kubectl returns.
    t.kubectl_ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        "team",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    let output = within(
        "kubectl delete namespace to return",
        deleting.wait_with_output(),
    )
    .await
    .expect("kubectl delete");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("namespace \"team\" deleted"));
    let err = t.kubectl_err(&["get", "namespace", "team"]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

/// Upstream's OrderedNamespaceDeletion: a namespace's pods go first, and
/// nothing else is deleted while one remains, so a terminating pod keeps
/// its config maps and secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_deletes_its_pods_before_the_rest() {
    let t = Cluster::start().await;
    t.kubectl_ok(&["create", "namespace", "ordered"]).await;
    t.kubectl_ok(&["create", "configmap", "settings", "-n", "ordered"])
        .await;
    let held = t.write_file(
        "held-pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: held\n  namespace: ordered\n  finalizers: [example.com/hold]\nspec:\n  containers: [{name: app, image: nginx}]\n",
    );
    t.kubectl_ok(&["create", "-f", &held.display().to_string()])
        .await;
    t.kubectl_ok(&["delete", "namespace", "ordered", "--wait=false"])
        .await;

    let ns = eventually("the namespace reports its remaining pod", || async {
        let ns = t.stored("", "namespaces", None, "ordered").await.ok()?;
        let conditions = ns["status"]["conditions"].as_array()?.clone();
        conditions
            .iter()
            .any(|c| {
                c["type"] == "NamespaceContentRemaining"
                    && c["message"]
                        == "Some resources are remaining: pods. has 1 resource instances"
            })
            .then_some(ns)
    })
    .await;
    assert!(ns["status"]["conditions"].as_array().is_some_and(|c| c
        .iter()
        .any(|c| c["type"] == "NamespaceDeletionContentFailure")));
    let pod = t
        .stored("", "pods", Some("ordered"), "held")
        .await
        .expect("the held pod");
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    let settings = t
        .stored("", "configmaps", Some("ordered"), "settings")
        .await
        .expect("the config map stays while a pod remains");
    assert!(settings["metadata"]["deletionTimestamp"].is_null());

    // The pod released: the rest goes, then the namespace.
    t.kubectl_ok(&[
        "patch",
        "pod",
        "held",
        "-n",
        "ordered",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    eventually("the namespace gone", || async {
        t.stored("", "namespaces", None, "ordered")
            .await
            .is_err()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_pod_is_graceful_for_bound_pods_only() {
    let t = Cluster::start().await;
    t.kubectl_ok(&["run", "loose", "--image=nginx"]).await;
    t.kubectl_ok(&["run", "bound", "--image=nginx"]).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"}, "target": {"kind": "Node", "name": "node-1"}});
    let answer = t
        .raw(
            "POST",
            "/api/v1/namespaces/default/pods/bound/binding",
            &[("Content-Type", "application/json")],
            binding.to_string().as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 201);

    // An unbound pod goes at once.
    t.kubectl_ok(&["delete", "pod", "loose", "--wait=false"])
        .await;
    assert!(t
        .stored("", "pods", Some("default"), "loose")
        .await
        .is_err());

    // A bound pod is only marked, with its grace period, for its node to stop it.
    t.kubectl_ok(&["delete", "pod", "bound", "--wait=false"])
        .await;
    let pod = t
        .stored("", "pods", Some("default"), "bound")
        .await
        .expect("still there");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    let table = Table::parse(&t.kubectl_ok(&["get", "pods"]).await);
    assert_eq!(table.cell(table.row("bound"), "STATUS"), "Terminating");
    // Deleting again changes nothing; a shorter grace period shortens it.
    t.kubectl_ok(&["delete", "pod", "bound", "--wait=false"])
        .await;
    t.kubectl_ok(&["delete", "pod", "bound", "--wait=false", "--grace-period=5"])
        .await;
    let pod = t
        .stored("", "pods", Some("default"), "bound")
        .await
        .expect("still there");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 5);

    // `kubectl delete --wait` returns once whoever runs the pod deletes it
    // with grace 0 (the kubelet's final delete).
    let waiting = t
        .kubectl_command(&["delete", "pod", "bound", "--timeout=20s"], "30s")
        .spawn()
        .expect("kubectl delete --wait");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pods: Api<Pod> = Api::namespaced(t.client(), "default");
    pods.delete("bound", &DeleteParams::default().grace_period(0))
        .await
        .expect("final delete");
    let output = within("kubectl delete --wait", waiting.wait_with_output())
        .await
        .expect("kubectl");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(t
        .stored("", "pods", Some("default"), "bound")
        .await
        .is_err());
}

// ---------------------------------------------------------------------------
// Finalizers with kube-rs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_an_object_until_removed_and_cannot_be_added_late() {
    let t = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("held".into());
    cm.metadata.finalizers = Some(vec!["example.com/a".into(), "example.com/b".into()]);
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");

    let deleted = cms
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = deleted.left().expect("the object comes back, not a status");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(0));

    // No new finalizer once deletion started.
    let add =
        json!({"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/c"]}});
    let err = cms
        .patch("held", &PatchParams::default(), &Patch::Merge(&add))
        .await
        .expect_err("422");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert!(
                status
                    .message
                    .contains("no new finalizers can be added if the object is being deleted"),
                "{}",
                status.message
            );
        }
        other => panic!("{other}"),
    }

    // Removing one keeps it; removing the last removes it.
    let one = json!({"metadata": {"finalizers": ["example.com/b"]}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&one))
        .await
        .expect("remove one");
    assert!(cms.get_opt("held").await.expect("get").is_some());
    let none = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&none))
        .await
        .expect("remove the last");
    assert!(cms.get_opt("held").await.expect("get").is_none());
}

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed: {0}")]
struct ReconcileError(String);

/// What the cleanup saw: (name, whether deletionTimestamp was set).
type Cleaned = Arc<Mutex<Vec<(String, bool)>>>;

/// The controller's context: the API and the cleanup record.
type Context = Arc<(Api<ConfigMap>, Cleaned)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_with_a_finalizer_cleans_up_before_the_object_goes() {
    let t = Cluster::start().await;
    let client = t.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    const FINALIZER: &str = "example.com/cleanup";
    let cleaned: Cleaned = Arc::default();
    let context = Arc::new((cms.clone(), cleaned.clone()));
    let controller = Controller::new(
        cms.clone(),
        watcher::Config::default().labels("app=managed"),
    )
    .run(
        |cm: Arc<ConfigMap>, ctx: Context| async move {
            let (api, cleaned) = (&ctx.0, ctx.1.clone());
            finalizer(api, FINALIZER, cm, |event| async move {
                match event {
                    FinalizerEvent::Apply(_) => Ok::<_, ReconcileError>(Action::await_change()),
                    FinalizerEvent::Cleanup(cm) => {
                        cleaned
                            .lock()
                            .map_err(|e| ReconcileError(e.to_string()))?
                            .push((cm.name_any(), cm.metadata.deletion_timestamp.is_some()));
                        Ok(Action::await_change())
                    }
                }
            })
            .await
            .map_err(|e| ReconcileError(e.to_string()))
        },
        |_, _, _| Action::requeue(Duration::from_millis(200)),
        context,
    )
    .for_each(|result| async move {
        if let Err(err) = result {
            eprintln!("controller: {err:?}");
        }
    });
    let running = tokio::spawn(controller);

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("managed".into());
    cm.metadata.labels = Some([("app".to_owned(), "managed".to_owned())].into());
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    eventually("the controller to add its finalizer", || async {
        let cm = cms.get("managed").await.ok()?;
        cm.finalizers().iter().any(|f| f == FINALIZER).then_some(())
    })
    .await;

    let deleted = cms
        .delete("managed", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("marked, not gone");
    assert!(deleted.metadata.deletion_timestamp.is_some());
    eventually_gone("the object to go after the cleanup", &cms, "managed").await;
    let seen = cleaned.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [("managed".to_owned(), true)],
        "cleanup ran while deletionTimestamp was set"
    );
    running.abort();
}

// ---------------------------------------------------------------------------
// Garbage collection
