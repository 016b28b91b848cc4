//! StatefulSets (ordered pods, claims, updates from the top) and
//! DaemonSets (one pod per eligible node).

use super::*;

#[tokio::test]
async fn a_stateful_set_creates_ordered_pods_with_claims_and_scales_down_from_the_top() {
    let cluster = ControlPlane::start().await;
    let api: Api<StatefulSet> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "replicas": 3, "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db", MANUAL_READY: "manual"}}, "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
            },
        }))
        .await;
    let client = &cluster.client;
    // OrderedReady: each ordinal waits for the previous one to be Ready.
    for ordinal in 0..3 {
        let name = format!("db-{ordinal}");
        eventually_within(DEADLINE, &format!("{name} running"), || async {
            let current = pods(client, "app=db").await;
            let running = current.iter().any(|p| {
                p.metadata.name.as_deref() == Some(&name)
                    && vcluster_controllers::pods::phase(p) == "Running"
            });
            running.then_some(())
        })
        .await;
        let names: Vec<String> = pods(client, "app=db")
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        let expected: Vec<String> = (0..=ordinal).map(|o| format!("db-{o}")).collect();
        assert_eq!(
            names,
            expected,
            "db-{} must wait for db-{ordinal} to be ready",
            ordinal + 1
        );
        set_ready(client, "default", &name).await;
    }
    let pod = cluster.api::<Pod>().get("db-1").await.expect("db-1");
    let spec = pod.spec.clone().expect("spec");
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref()),
        (Some("db-1"), Some("db"))
    );
    let claim = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "data")
        .and_then(|v| v.persistent_volume_claim.clone());
    assert_eq!(claim.map(|c| c.claim_name), Some("data-db-1".to_owned()));
    let claims: Vec<String> = cluster
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .expect("claims")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(claims, ["data-db-0", "data-db-1", "data-db-2"]);
    let status = eventually_within(DEADLINE, "status with 3 ready", || async {
        let status = api.get("db").await.ok()?.status?;
        (status.ready_replicas == Some(3)).then_some(status)
    })
    .await;
    assert_eq!(status.current_revision, status.update_revision);

    // Scale down: db-2 goes first; claims stay (Retain).
    api.patch_scale(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale down");
    eventually_within(DEADLINE, "only db-0 left", || async {
        let names: Vec<String> = pods(client, "app=db")
            .await
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        (names == ["db-0"]).then_some(())
    })
    .await;
    let claims = cluster
        .api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .expect("claims")
        .items;
    assert_eq!(claims.len(), 3, "claims are retained by default");
}

#[tokio::test]
async fn a_stateful_set_rolls_updates_from_the_highest_ordinal() {
    let cluster = ControlPlane::start().await;
    let api: Api<StatefulSet> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 3, "serviceName": "web", "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}},
            },
        }))
        .await;
    eventually_within(DEADLINE, "3 ready", || async {
        (api.get("web").await.ok()?.status?.ready_replicas == Some(3)).then_some(())
    })
    .await;
    let patch = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}]);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(patch).expect("patch")),
    )
    .await
    .expect("update");
    let status = eventually_within(DEADLINE, "the update rolled out", || async {
        let set = api.get("web").await.ok()?;
        let status = set.status?;
        let current = pods(&cluster.client, "app=web").await;
        let done = status.observed_generation == set.metadata.generation
            && status.updated_replicas == Some(3)
            && status.ready_replicas == Some(3)
            && status.current_revision == status.update_revision
            && current.len() == 3
            && images(&current).iter().all(|i| i == "nginx:2");
        done.then_some(status)
    })
    .await;
    let second = status.update_revision.unwrap_or_default();
    assert!(second.starts_with("web-"));

    // Each template is a ControllerRevision owned by the set, numbered in
    // order, carrying the patch that restores it.
    let revisions: Api<ControllerRevision> = cluster.api();
    let history = revisions.list(&ListParams::default()).await.expect("list");
    let mut numbered: Vec<(i64, String)> = history
        .items
        .iter()
        .map(|r| (r.revision, r.metadata.name.clone().unwrap_or_default()))
        .collect();
    numbered.sort();
    assert_eq!(numbered.len(), 2, "{numbered:?}");
    assert_eq!(numbered[1], (2, second.clone()));
    let first = history
        .items
        .iter()
        .find(|r| r.revision == 1)
        .expect("revision 1");
    assert_eq!(
        first
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("web"),
        "the set's selector finds its history"
    );
    let data = first.data.as_ref().expect("data").0.clone();
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );

    // `kubectl rollout undo` patches the old template back: the old
    // revision becomes number 3, and no new one is made.
    api.patch("web", &PatchParams::default(), &Patch::Strategic(&data))
        .await
        .expect("undo");
    let first_name = first.metadata.name.clone().unwrap_or_default();
    eventually_within(DEADLINE, "the undo rolled out", || async {
        let status = api.get("web").await.ok()?.status?;
        let current = pods(&cluster.client, "app=web").await;
        (status.update_revision.as_deref() == Some(first_name.as_str())
            && status.current_revision == status.update_revision
            && images(&current).iter().all(|i| i == "nginx:1"))
        .then_some(())
    })
    .await;
    let renumbered = revisions.get(&first_name).await.expect("revision");
    assert_eq!(renumbered.revision, 3);
    assert_eq!(
        revisions
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn a_daemon_set_runs_one_pod_per_eligible_node() {
    let cluster = ControlPlane::start().await;
    cluster
        .add_node("linux-a", json!({"kubernetes.io/os": "linux"}))
        .await;
    cluster
        .add_node("linux-b", json!({"kubernetes.io/os": "linux"}))
        .await;
    cluster
        .add_node("windows", json!({"kubernetes.io/os": "windows"}))
        .await;
    let api: Api<DaemonSet> = cluster.api();
    cluster
        .create(
            &api,
            json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "agent", "namespace": "default"},
                "spec": {
                    "selector": {"matchLabels": {"app": "agent"}},
                    "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [{"name": "agent", "image": "agent:1"}],
                    }},
                },
            }),
        )
        .await;
    let nodes_of = |pods: Vec<Pod>| -> Vec<String> {
        let mut nodes: Vec<String> = pods
            .iter()
            .filter_map(vcluster_controllers::daemonset::target_node)
            .collect();
        nodes.sort();
        nodes
    };
    eventually_within(DEADLINE, "a pod on each linux node", || async {
        (nodes_of(pods(&cluster.client, "app=agent").await) == ["linux-a", "linux-b"]).then_some(())
    })
    .await;
    cluster
        .add_node("linux-c", json!({"kubernetes.io/os": "linux"}))
        .await;
    eventually_within(DEADLINE, "a pod on the new node", || async {
        (nodes_of(pods(&cluster.client, "app=agent").await) == ["linux-a", "linux-b", "linux-c"])
            .then_some(())
    })
    .await;
    let status = eventually_within(DEADLINE, "status of 3 ready", || async {
        let status = api.get("agent").await.ok()?.status?;
        (status.number_ready == 3 && status.desired_number_scheduled == 3).then_some(status)
    })
    .await;
    assert_eq!(
        (status.current_number_scheduled, status.number_misscheduled),
        (3, 0)
    );
    // Relabel a node: its pod goes.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client.clone());
    nodes
        .patch(
            "linux-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"kubernetes.io/os": "windows"}}})),
        )
        .await
        .expect("relabel");
    eventually_within(DEADLINE, "the pod leaves the relabelled node", || async {
        (nodes_of(pods(&cluster.client, "app=agent").await) == ["linux-a", "linux-c"]).then_some(())
    })
    .await;
}
