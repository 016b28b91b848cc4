//! The garbage collector: owner references with Background, Foreground
//! and Orphan propagation, namespaces of owners, and a restart.

use super::*;

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
