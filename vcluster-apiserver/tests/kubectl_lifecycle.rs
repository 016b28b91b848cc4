//! Object lifecycle end to end: finalizers and graceful pod deletion,
//! garbage collection by owner references (Background, Foreground,
//! Orphan, and after a restart), namespace deletion, and
//! CustomResourceDefinitions, driven by the real `kubectl` and by kube-rs
//! (including a `kube::runtime::Controller` with a finalizer).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use vcluster_testkit::eventually_gone;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::{json, Value};
use vcluster_apiserver::storage::{MemoryStorage, Storage};
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::eventually;
use vcluster_testkit::kubectl::Table;
use vcluster_testkit::within;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: When the job runs, in five-field cron syntax.
                pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
          status:
            type: object
            properties:
              replicas:
                type: integer
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const CRON_TAB: &str = r#"apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: my-cron
spec:
  cronSpec: "* * * * */5"
  image: my-cron-image
  unknownField: dropped
"#;

const BAD_CRON_TAB: &str = r#"apiVersion: stable.example.com/v1
kind: CronTab
metadata:
  name: bad-cron
spec:
  cronSpec: "every minute"
  replicas: 11
"#;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------------------------------------------------------------------------
// kubectl

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_serves_a_crd_and_its_custom_resources_then_deletes_them() {
    let t = Cluster::start().await;
    let crd = t.write_file("crd.yaml", CRD);
    let crd = crd.display().to_string();
    t.kubectl_ok(&["apply", "-f", &crd]).await;
    t.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/crontabs.stable.example.com",
        "--timeout=10s",
    ])
    .await;
    let table = Table::parse(&t.kubectl_ok(&["get", "crd"]).await);
    assert_eq!(table.header, ["NAME", "CREATED AT"]);
    table.row("crontabs.stable.example.com");
    // Applying the same file again is a no-op update.
    t.kubectl_ok(&["apply", "-f", &crd]).await;

    // kubectl explain finds the custom kind in /openapi/v3, described by
    // the CRD's schema, with the standard metadata.
    let explained = t.kubectl_ok(&["explain", "crontabs.spec.cronSpec"]).await;
    assert!(explained.contains("KIND:       CronTab"), "{explained}");
    assert!(
        explained.contains("FIELD: cronSpec <string>"),
        "{explained}"
    );
    assert!(
        explained.contains("When the job runs, in five-field cron syntax."),
        "{explained}"
    );
    let explained = t.kubectl_ok(&["explain", "ct"]).await;
    assert!(explained.contains("metadata\t<ObjectMeta>"), "{explained}");
    assert!(explained.contains("spec\t<Object>"), "{explained}");

    // Strict field validation refuses unknown fields; without it they are
    // pruned, and defaults are filled.
    let cron = t.write_file("cron.yaml", CRON_TAB).display().to_string();
    let err = t.kubectl_err(&["create", "-f", &cron]).await;
    assert!(
        err.contains("unknown field \\\"spec.unknownField\\\"")
            || err.contains("unknown field \"spec.unknownField\""),
        "{err}"
    );
    t.kubectl_ok(&["create", "-f", &cron, "--validate=false"])
        .await;
    let stored = t
        .stored("stable.example.com", "crontabs", Some("default"), "my-cron")
        .await
        .expect("stored");
    assert!(stored["spec"].get("unknownField").is_none(), "{stored}");
    assert_eq!(stored["spec"]["replicas"], 1, "defaulted");

    // Schema validation: pattern and maximum.
    let bad = t.write_file("bad.yaml", BAD_CRON_TAB).display().to_string();
    let err = t.kubectl_err(&["create", "-f", &bad]).await;
    assert!(err.contains("spec.cronSpec in body should match"), "{err}");
    assert!(
        err.contains("spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );

    // kubectl get by plural, singular, short name and category, with the
    // printer columns.
    for what in ["crontabs", "crontab", "ct"] {
        let table = Table::parse(&t.kubectl_ok(&["get", what]).await);
        assert_eq!(table.header, ["NAME", "SPEC", "REPLICAS", "AGE"], "{what}");
        let row = table.row("my-cron");
        assert_eq!(table.cell(row, "SPEC"), "* * * * */5");
        assert_eq!(table.cell(row, "REPLICAS"), "1");
    }
    let all = t.kubectl_ok(&["get", "all"]).await;
    assert!(all.contains("crontab.stable.example.com/my-cron"), "{all}");
    // Another served version reads the same object.
    let other = t
        .kubectl_ok(&[
            "get",
            "crontabs.v1beta1.stable.example.com",
            "my-cron",
            "-o",
            "json",
        ])
        .await;
    let other: Value = serde_json::from_str(&other).expect("json");
    assert_eq!(other["apiVersion"], "stable.example.com/v1beta1");
    assert_eq!(other["spec"]["cronSpec"], "* * * * */5");

    // The scale subresource.
    t.kubectl_ok(&["scale", "crontab", "my-cron", "--replicas=3"])
        .await;
    let replicas = t
        .kubectl_ok(&["get", "ct", "my-cron", "-o", "jsonpath={.spec.replicas}"])
        .await;
    assert_eq!(replicas.trim(), "3");

    // Deleting the CRD removes its objects and stops serving the resource.
    t.kubectl_ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--timeout=20s",
    ])
    .await;
    assert!(t
        .kubectl_err(&["get", "crd", "crontabs.stable.example.com"])
        .await
        .contains("NotFound"));
    // kubectl answers from its discovery cache or asks again; either way
    // the server no longer serves the resource.
    let err = t.kubectl_err(&["get", "crontabs"]).await;
    assert!(
        err.contains("the server doesn't have a resource type \"crontabs\"")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
    let gone = t
        .raw("GET", "/apis/stable.example.com/v1/crontabs", &[], b"")
        .await;
    assert_eq!(gone.status, 404);
    let left = t
        .storage
        .list(vcluster_apiserver::storage::ListRequest::prefix(
            "/registry/stable.example.com/",
        ))
        .await
        .expect("list");
    assert!(left.items.is_empty());
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

struct Chain {
    deployment: Deployment,
    replica_set: ReplicaSet,
    pods: Vec<Pod>,
}

fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}])
}

/// Deployment → ReplicaSet → two Pods, linked by owner references only
/// (no controllers run here). `hold` puts a finalizer on the first pod.
async fn chain(client: &kube::Client, namespace: &str, hold: bool) -> Chain {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }))
    .expect("deployment");
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let replica_set: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "ownerReferences": owner_ref("apps/v1", "Deployment", "web", &deployment.uid().expect("uid"))},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }))
    .expect("replicaset");
    let replica_set = replica_sets
        .create(&PostParams::default(), &replica_set)
        .await
        .expect("create replicaset");
    let mut created = Vec::new();
    for i in 0..2 {
        let mut pod = json!({
            "metadata": {"name": format!("web-1-{i}"), "labels": {"app": "web"}, "ownerReferences": owner_ref("apps/v1", "ReplicaSet", "web-1", &replica_set.uid().expect("uid"))},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        });
        if hold && i == 0 {
            pod["metadata"]["finalizers"] = json!(["example.com/hold"]);
        }
        let pod: Pod = serde_json::from_value(pod).expect("pod");
        created.push(
            pods.create(&PostParams::default(), &pod)
                .await
                .expect("create pod"),
        );
    }
    Chain {
        deployment,
        replica_set,
        pods: created,
    }
}

async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&Default::default())
        .await
        .map(|l| l.items.iter().map(ResourceExt::name_any).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_collects_the_whole_chain() {
    let t = Cluster::start().await;
    let client = t.client();
    chain(&client, "default", false).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Default propagation: Background. The owner goes at once.
    deployments
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deployments.get_opt("web").await.expect("get").is_none());
    eventually("the replicaset and pods to be collected", || async {
        (names(&replica_sets).await.is_empty() && names(&pods).await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let t = Cluster::start().await;
    let client = t.client();
    let made = chain(&client, "default", true).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let answer = deployments
        .delete("web", &DeleteParams::foreground())
        .await
        .expect("delete")
        .left()
        .expect("the owner stays while dependents go");
    assert!(answer
        .finalizers()
        .iter()
        .any(|f| f == "foregroundDeletion"));
    assert!(answer.metadata.deletion_timestamp.is_some());

    // The unheld pod goes; the held one is marked; the replicaset and the
    // deployment wait for it.
    eventually(
        "the unheld pod to go and the held one to be marked",
        || async {
            let left = names(&pods).await;
            let held = pods.get("web-1-0").await.ok()?;
            (left == ["web-1-0"] && held.metadata.deletion_timestamp.is_some()).then_some(())
        },
    )
    .await;
    let rs = replica_sets.get("web-1").await.expect("replicaset waits");
    assert!(rs.finalizers().iter().any(|f| f == "foregroundDeletion"));
    assert!(deployments.get("web").await.is_ok(), "the deployment waits");
    assert_eq!(rs.uid(), made.replica_set.uid());

    // Releasing the pod lets the whole chain finish.
    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("web-1-0", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("release");
    eventually("the chain to be gone", || async {
        let gone = deployments.get_opt("web").await.ok()?.is_none()
            && names(&replica_sets).await.is_empty()
            && names(&pods).await.is_empty();
        gone.then_some(())
    })
    .await;
    assert_eq!(made.deployment.name_any(), "web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let t = Cluster::start().await;
    let client = t.client();
    let made = chain(&client, "default", false).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    deployments
        .delete("web", &DeleteParams::orphan())
        .await
        .expect("delete");
    eventually_gone("the deployment to go", &deployments, "web").await;
    let rs = replica_sets
        .get("web-1")
        .await
        .expect("orphaned replicaset");
    assert!(
        rs.owner_references().is_empty(),
        "{:?}",
        rs.owner_references()
    );
    assert_eq!(rs.uid(), made.replica_set.uid());
    // Its own dependents are untouched.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&pods).await, ["web-1-0", "web-1-1"]);
    let pod = pods.get("web-1-0").await.expect("pod");
    assert_eq!(
        pod.owner_references()[0].uid,
        made.replica_set.uid().expect("uid")
    );
    assert_eq!(made.pods.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_references_resolve_in_the_dependents_namespace_only() {
    let t = Cluster::start().await;
    let client = t.client();
    t.kubectl_ok(&["create", "namespace", "other"]).await;
    let made = chain(&client, "default", false).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "other");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rs_uid = made.replica_set.uid().expect("uid");
    // A pod in another namespace naming the replicaset: upstream resolves
    // the owner in the pod's own namespace, finds nothing, and collects it.
    let stray: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "ownerReferences": owner_ref("apps/v1", "ReplicaSet", "web-1", &rs_uid)},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &stray)
        .await
        .expect("create");
    eventually_gone(
        "the cross-namespace dependent to be collected",
        &pods,
        "stray",
    )
    .await;
    // A dependent with one live and one gone owner only loses the gone one.
    let two: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "two-owners", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": rs_uid},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "00000000-0000-0000-0000-000000000000"},
        ]},
    }))
    .expect("cm");
    cms.create(&PostParams::default(), &two)
        .await
        .expect("create");
    eventually("the dangling reference to be dropped", || async {
        let cm = cms.get("two-owners").await.ok()?;
        (cm.owner_references().len() == 1 && cm.owner_references()[0].uid == rs_uid).then_some(())
    })
    .await;
    // An owner of a kind this server does not serve is never taken as gone.
    let unknown: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "unknown-owner", "ownerReferences": [
            {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "11111111-1111-1111-1111-111111111111"},
        ]},
    }))
    .expect("cm");
    cms.create(&PostParams::default(), &unknown)
        .await
        .expect("create");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cms.get_opt("unknown-owner").await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_collector_rebuilds_its_index_after_a_restart() {
    let storage = MemoryStorage::new();
    let first = Cluster::start_with(Options {
        storage: storage.clone(),
        ..Options::default()
    })
    .await;
    chain(&first.client(), "default", false).await;
    // Stop the first server (and its collector), then delete the owner
    // behind its back: nothing collects the dependents.
    first.server.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let deployments = first
        .server
        .registry()
        .catalog()
        .get("apps", "v1", "deployments")
        .expect("deployments");
    first
        .server
        .registry()
        .delete(
            &vcluster_apiserver::registry::ObjectAddress {
                resource: deployments,
                namespace: Some("default".into()),
                name: "web".into(),
            },
            &Default::default(),
        )
        .await
        .expect("delete while no collector runs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        first
            .stored_names("apps", "replicasets", Some("default"))
            .await,
        ["web-1"]
    );

    // A new server over the same store rebuilds the index from a full list
    // and collects the orphans of the owner deleted while it was down.
    let second = Cluster::start_with(Options {
        storage,
        ..Options::default()
    })
    .await;
    eventually("the orphans to be collected after the restart", || async {
        let rs = second
            .stored_names("apps", "replicasets", Some("default"))
            .await;
        let pods = second.stored_names("", "pods", Some("default")).await;
        (rs.is_empty() && pods.is_empty()).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------
// CRDs over the API

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_crd_refuses_new_objects_and_waits_for_finalizers() {
    let t = Cluster::start().await;
    let crd = t.write_file("crd.yaml", CRD).display().to_string();
    t.kubectl_ok(&["create", "-f", &crd]).await;
    let held = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
        "spec": {"cronSpec": "* * * * *"},
    });
    let created = t
        .raw(
            "POST",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
            &[("Content-Type", "application/json")],
            held.to_string().as_bytes(),
        )
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    // Status goes through /status only; replicas through /scale.
    let status = t
        .raw(
            "PATCH",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/held/status",
            &[("Content-Type", "application/merge-patch+json")],
            br#"{"status":{"replicas":2}}"#,
        )
        .await;
    assert_eq!(
        status.status,
        200,
        "{}",
        String::from_utf8_lossy(&status.body)
    );
    let scale = t
        .raw(
            "GET",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/held/scale",
            &[],
            b"",
        )
        .await
        .json();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 1);
    assert_eq!(scale["status"]["replicas"], 2);

    t.kubectl_ok(&[
        "delete",
        "crd",
        "crontabs.stable.example.com",
        "--wait=false",
    ])
    .await;
    let definition = t
        .stored(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "crontabs.stable.example.com",
        )
        .await
        .expect("still there");
    let conditions = definition["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .clone();
    assert!(conditions
        .iter()
        .any(|c| c["type"] == "Terminating" && c["status"] == "True"));
    let refused = t
        .raw(
            "POST",
            "/apis/stable.example.com/v1/namespaces/default/crontabs",
            &[("Content-Type", "application/json")],
            br#"{"metadata":{"name":"late"},"spec":{"cronSpec":"* * * * *"}}"#,
        )
        .await;
    assert_eq!(refused.status, 405);
    assert!(refused.json()["message"]
        .as_str()
        .unwrap_or("")
        .contains("not allowed while custom resource definition is terminating"));
    eventually("the held object to be marked", || async {
        let cr = t
            .stored("stable.example.com", "crontabs", Some("default"), "held")
            .await
            .ok()?;
        cr["metadata"]["deletionTimestamp"]
            .is_string()
            .then_some(())
    })
    .await;
    let release = t
        .raw(
            "PATCH",
            "/apis/stable.example.com/v1/namespaces/default/crontabs/held",
            &[("Content-Type", "application/merge-patch+json")],
            br#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(
        release.status,
        200,
        "{}",
        String::from_utf8_lossy(&release.body)
    );
    eventually("the CRD to go", || async {
        t.stored(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "crontabs.stable.example.com",
        )
        .await
        .is_err()
        .then_some(())
    })
    .await;
    let gone = t
        .raw("GET", "/apis/stable.example.com/v1/crontabs", &[], b"")
        .await;
    assert_eq!(gone.status, 404);
    let discovery = t.raw("GET", "/apis", &[], b"").await.json();
    assert!(!discovery.to_string().contains("stable.example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_are_discovered_watched_and_served_again_after_a_restart() {
    let storage = MemoryStorage::new();
    let t = Cluster::start_with(Options {
        storage: storage.clone(),
        ..Options::default()
    })
    .await;
    let crd = t.write_file("crd.yaml", CRD).display().to_string();
    t.kubectl_ok(&["create", "-f", &crd]).await;
    // Legacy and aggregated discovery both list it at once.
    let group = t
        .raw("GET", "/apis/stable.example.com", &[], b"")
        .await
        .json();
    assert_eq!(group["preferredVersion"]["version"], "v1");
    let resources = t
        .raw("GET", "/apis/stable.example.com/v1", &[], b"")
        .await
        .json();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["crontabs", "crontabs/status", "crontabs/scale"]);
    let aggregated = t
        .raw(
            "GET",
            "/apis",
            &[(
                "Accept",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )],
            b"",
        )
        .await
        .json();
    let entry = aggregated["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|g| g["metadata"]["name"] == "stable.example.com")
        })
        .cloned()
        .expect("aggregated group");
    assert_eq!(entry["versions"][0]["version"], "v1");
    assert_eq!(
        entry["versions"][0]["resources"][0]["shortNames"],
        json!(["ct"])
    );

    // Watch custom resources through kube-rs's dynamic API.
    let resource = kube::discovery::ApiResource {
        group: "stable.example.com".into(),
        version: "v1".into(),
        api_version: "stable.example.com/v1".into(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
    };
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(t.client(), "default", &resource);
    let mut events = kube::runtime::watcher(api.clone(), watcher::Config::default()).boxed();
    let object: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "watched"}, "spec": {"cronSpec": "* * * * *"},
    }))
    .expect("object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create");
    within("the watch to see the custom resource", async {
        loop {
            match events.next().await {
                Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)))
                    if o.name_any() == "watched" =>
                {
                    assert_eq!(o.data["spec"]["replicas"], 1);
                    break;
                }
                Some(_) => {}
                None => panic!("watch ended"),
            }
        }
    })
    .await;
    drop(events);
    drop(t);

    // A new server over the same store serves the CRD from the start.
    let again = Cluster::start_with(Options {
        storage,
        ..Options::default()
    })
    .await;
    let listed = again.kubectl_ok(&["get", "crontabs", "-o", "name"]).await;
    assert_eq!(listed.trim(), "crontab.stable.example.com/watched");
}
