//! Deployments and ReplicaSets: rollouts, scaling, surge and
//! unavailability bounds, rollback, history, pausing, min-ready-seconds.

use super::*;

/// Calls `look` with the pods labelled `selector` (in `default`) after
/// every change to any of them, until the returned task is aborted: how a
/// scenario sees each intermediate state of a rollout.
fn on_every_pod_change(
    client: &kube::Client,
    selector: &'static str,
    mut look: impl FnMut(Vec<Pod>) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let api: Api<Pod> = Api::namespaced(client.clone(), "default");
        let stream = watcher(api, watcher::Config::default().labels(selector))
            .default_backoff()
            .touched_objects();
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {
            look(pods(&client, selector).await);
        }
    })
}

#[tokio::test]
async fn a_deployment_runs_its_replicas_and_reports_a_complete_rollout() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let created: Deployment = cluster
        .create(
            &api,
            deployment("web", 3, "nginx:1", rolling(json!("25%"), json!("25%"))),
        )
        .await;
    let d = rolled_out(&api, "web", 3).await;
    let available = condition(&d, "Available").expect("Available");
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("True", Some("MinimumReplicasAvailable"))
    );
    let progressing = condition(&d, "Progressing").expect("Progressing");
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("True", Some("NewReplicaSetAvailable"))
    );
    assert_eq!(
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .map(String::as_str),
        Some("1")
    );

    let uid = created.metadata.uid.clone().expect("uid");
    let rss = owned_replica_sets(&cluster.api(), &uid).await;
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL))
        .cloned()
        .expect("hash label");
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(revision(rs).as_deref(), Some("1"));
    // The controllers' writes carry their field manager.
    let managers: Vec<&str> = rs
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|e| e.manager.as_deref())
        .collect();
    assert!(
        !managers.is_empty()
            && managers
                .iter()
                .all(|m| *m == vcluster_core::FieldManager::CONTROLLERS.name()),
        "{managers:?}"
    );
    let selector = &rs.spec.as_ref().expect("spec").selector;
    assert_eq!(
        selector
            .match_labels
            .as_ref()
            .and_then(|m| m.get(POD_TEMPLATE_HASH_LABEL)),
        Some(&hash)
    );
    let owner = &rs.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("Deployment", Some(true), Some(true))
    );

    let web = pods(&cluster.client, "app=web").await;
    assert_eq!(web.len(), 3);
    for pod in &web {
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            (
                "ReplicaSet",
                rs.metadata.name.as_deref().unwrap_or(""),
                Some(true)
            )
        );
        assert_eq!(
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_TEMPLATE_HASH_LABEL)),
            Some(&hash)
        );
        assert!(pod
            .metadata
            .name
            .as_deref()
            .unwrap_or("")
            .starts_with(&format!("web-{hash}-")));
    }
    // What `kubectl describe` shows: core/v1 events from the controllers.
    let events: Api<k8s_openapi::api::core::v1::Event> = cluster.api();
    let scaled = eventually_within(DEADLINE, "a ScalingReplicaSet event", || async {
        let list = events
            .list(
                &ListParams::default()
                    .fields("involvedObject.name=web,involvedObject.kind=Deployment"),
            )
            .await
            .ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
    })
    .await;
    assert_eq!(
        scaled.message.as_deref(),
        Some(format!("Scaled up replica set web-{hash} from 0 to 3").as_str())
    );
    assert_eq!(
        scaled.source.and_then(|s| s.component).as_deref(),
        Some("deployment-controller")
    );
    let rs_status = cluster
        .api::<ReplicaSet>()
        .get(rs.metadata.name.as_deref().unwrap_or(""))
        .await
        .expect("rs")
        .status
        .expect("status");
    assert_eq!(
        (
            rs_status.replicas,
            rs_status.ready_replicas,
            rs_status.available_replicas
        ),
        (3, Some(3), Some(3))
    );
}

#[tokio::test]
async fn scaling_a_deployment_adds_and_removes_pods() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    cluster
        .create(
            &api,
            deployment("web", 2, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 2).await;
    // What `kubectl scale` does: a merge patch of the scale subresource.
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("scale up");
    rolled_out(&api, "web", 5).await;
    assert_eq!(pods(&cluster.client, "app=web").await.len(), 5);
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale down");
    rolled_out(&api, "web", 1).await;
    eventually_within(DEADLINE, "one pod left", || async {
        (pods(&cluster.client, "app=web").await.len() == 1).then_some(())
    })
    .await;
    // Still one ReplicaSet: scaling is not a rollout.
    let uid = api
        .get("web")
        .await
        .expect("get")
        .metadata
        .uid
        .expect("uid");
    assert_eq!(owned_replica_sets(&cluster.api(), &uid).await.len(), 1);
}

#[tokio::test]
async fn a_rolling_update_stays_within_surge_and_unavailability() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let created: Deployment = cluster
        .create(
            &api,
            deployment("web", 4, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 4).await;

    // Watch the pods while rolling: never more than 4 + 1, never fewer
    // than 4 - 0 ready.
    let seen = Arc::new(Mutex::new((0usize, usize::MAX)));
    let observer = on_every_pod_change(&cluster.client, "app=web", {
        let seen = seen.clone();
        move |current| {
            let alive: Vec<&Pod> = current
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let ready = alive
                .iter()
                .filter(|p| vcluster_controllers::pods::is_ready(p))
                .count();
            let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
            s.0 = s.0.max(alive.len());
            s.1 = s.1.min(ready);
        }
    });
    set_image(&api, "web", "nginx:2").await;
    eventually_within(DEADLINE, "all pods on nginx:2", || async {
        let current = pods(&cluster.client, "app=web").await;
        (current.len() == 4 && images(&current).iter().all(|i| i == "nginx:2")).then_some(())
    })
    .await;
    let d = rolled_out(&api, "web", 4).await;
    observer.abort();
    let (max_pods, min_ready) = *seen.lock().unwrap_or_else(|p| p.into_inner());
    assert!(
        max_pods <= 5,
        "at most replicas + maxSurge pods, saw {max_pods}"
    );
    assert!(
        min_ready >= 4,
        "never below replicas - maxUnavailable ready, saw {min_ready}"
    );
    assert_eq!(
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .map(String::as_str),
        Some("2")
    );
    let uid = created.metadata.uid.expect("uid");
    let rss = owned_replica_sets(&cluster.api(), &uid).await;
    assert_eq!(rss.len(), 2, "the old ReplicaSet is kept for history");
    let mut by_revision: Vec<(String, i32)> = rss
        .iter()
        .map(|rs| {
            (
                revision(rs).unwrap_or_default(),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1),
            )
        })
        .collect();
    by_revision.sort();
    assert_eq!(by_revision, [("1".to_owned(), 0), ("2".to_owned(), 4)]);
}

#[tokio::test]
async fn percentages_round_like_upstream_during_a_rollout() {
    // 10 replicas, 25% surge = 3 (up), 25% unavailable = 2 (down).
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    cluster
        .create(
            &api,
            deployment("web", 10, "nginx:1", rolling(json!("25%"), json!("25%"))),
        )
        .await;
    rolled_out(&api, "web", 10).await;
    let max_seen = Arc::new(Mutex::new(0usize));
    let observer = on_every_pod_change(&cluster.client, "app=web", {
        let max_seen = max_seen.clone();
        move |current| {
            let n = current
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .count();
            let mut m = max_seen.lock().unwrap_or_else(|p| p.into_inner());
            *m = (*m).max(n);
        }
    });
    set_image(&api, "web", "nginx:2").await;
    eventually_within(DEADLINE, "all pods on nginx:2", || async {
        let current = pods(&cluster.client, "app=web").await;
        (current.len() == 10 && images(&current).iter().all(|i| i == "nginx:2")).then_some(())
    })
    .await;
    rolled_out(&api, "web", 10).await;
    observer.abort();
    let max = *max_seen.lock().unwrap_or_else(|p| p.into_inner());
    assert!(max <= 13, "at most 10 + 3 pods, saw {max}");
}

#[tokio::test]
async fn recreate_removes_old_pods_before_starting_new_ones() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    cluster
        .create(
            &api,
            deployment("web", 3, "nginx:1", json!({"type": "Recreate"})),
        )
        .await;
    rolled_out(&api, "web", 3).await;
    let overlap = Arc::new(Mutex::new(false));
    let observer = on_every_pod_change(&cluster.client, "app=web", {
        let overlap = overlap.clone();
        move |current| {
            let set: BTreeSet<String> = images(&current).into_iter().collect();
            if set.len() > 1 {
                *overlap.lock().unwrap_or_else(|p| p.into_inner()) = true;
            }
        }
    });
    set_image(&api, "web", "nginx:2").await;
    eventually_within(DEADLINE, "3 pods on nginx:2", || async {
        let current = pods(&cluster.client, "app=web").await;
        (current.len() == 3 && images(&current).iter().all(|i| i == "nginx:2")).then_some(())
    })
    .await;
    rolled_out(&api, "web", 3).await;
    observer.abort();
    assert!(
        !*overlap.lock().unwrap_or_else(|p| p.into_inner()),
        "old and new pods never ran together"
    );
}

#[tokio::test]
async fn rolling_back_reuses_the_old_replica_set_and_keeps_its_history() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let created: Deployment = cluster
        .create(
            &api,
            deployment("web", 2, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 2).await;
    set_image(&api, "web", "nginx:2").await;
    eventually_within(DEADLINE, "revision 2", || async {
        let d = api.get("web").await.ok()?;
        (d.metadata.annotations?.get(REVISION_ANNOTATION)? == "2").then_some(())
    })
    .await;
    rolled_out(&api, "web", 2).await;
    let uid = created.metadata.uid.expect("uid");
    // What `kubectl rollout undo` does: copy revision 1's template back
    // (without the hash label) with a JSON patch.
    let rss = owned_replica_sets(&cluster.api(), &uid).await;
    let first = rss
        .iter()
        .find(|rs| revision(rs).as_deref() == Some("1"))
        .expect("revision 1");
    let mut template = first
        .spec
        .clone()
        .and_then(|s| s.template)
        .expect("template");
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH_LABEL);
    }
    let annotations = api
        .get("web")
        .await
        .expect("get")
        .metadata
        .annotations
        .unwrap_or_default();
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(patch).expect("patch")),
    )
    .await
    .expect("undo");
    eventually_within(DEADLINE, "pods back on nginx:1", || async {
        let current = pods(&cluster.client, "app=web").await;
        (current.len() == 2 && images(&current).iter().all(|i| i == "nginx:1")).then_some(())
    })
    .await;
    rolled_out(&api, "web", 2).await;
    let rss = owned_replica_sets(&cluster.api(), &uid).await;
    assert_eq!(rss.len(), 2, "no new ReplicaSet for an old template");
    let reused = rss
        .iter()
        .find(|rs| rs.metadata.uid == first.metadata.uid)
        .expect("the first ReplicaSet");
    assert_eq!(revision(reused).as_deref(), Some("3"));
    assert_eq!(
        reused
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_HISTORY_ANNOTATION))
            .map(String::as_str),
        Some("1")
    );
    let d = api.get("web").await.expect("get");
    assert_eq!(
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .map(String::as_str),
        Some("3")
    );
}

#[tokio::test]
async fn old_replica_sets_beyond_the_history_limit_are_deleted() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let mut spec = deployment("web", 1, "nginx:1", rolling(json!(1), json!(0)));
    spec["spec"]["revisionHistoryLimit"] = json!(1);
    let created: Deployment = cluster.create(&api, spec).await;
    rolled_out(&api, "web", 1).await;
    let uid = created.metadata.uid.expect("uid");
    for image in ["nginx:2", "nginx:3"] {
        set_image(&api, "web", image).await;
        eventually_within(DEADLINE, &format!("pods on {image}"), || async {
            let current = pods(&cluster.client, "app=web").await;
            (current.len() == 1 && images(&current).iter().all(|i| i == image)).then_some(())
        })
        .await;
        rolled_out(&api, "web", 1).await;
    }
    let rss = eventually_within(DEADLINE, "one old ReplicaSet kept", || async {
        let rss = owned_replica_sets(&cluster.api(), &uid).await;
        (rss.len() == 2).then_some(rss)
    })
    .await;
    let mut revisions: Vec<String> = rss.iter().filter_map(revision).collect();
    revisions.sort();
    assert_eq!(revisions, ["2", "3"]);
}

#[tokio::test]
async fn a_paused_deployment_scales_but_does_not_roll_out() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let created: Deployment = cluster
        .create(
            &api,
            deployment("web", 2, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 2).await;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await
    .expect("pause");
    eventually_within(DEADLINE, "the paused condition", || async {
        let d = api.get("web").await.ok()?;
        (condition(&d, "Progressing")?.reason.as_deref() == Some("DeploymentPaused")).then_some(())
    })
    .await;
    set_image(&api, "web", "nginx:2").await;
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("scale");
    eventually_within(DEADLINE, "3 pods while paused", || async {
        let d = api.get("web").await.ok()?;
        let observed = d.status.as_ref()?.observed_generation;
        (pods(&cluster.client, "app=web").await.len() == 3 && observed == d.metadata.generation)
            .then_some(())
    })
    .await;
    assert!(
        images(&pods(&cluster.client, "app=web").await)
            .iter()
            .all(|i| i == "nginx:1"),
        "no rollout while paused"
    );
    let uid = created.metadata.uid.expect("uid");
    assert_eq!(owned_replica_sets(&cluster.api(), &uid).await.len(), 1);
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .expect("resume");
    eventually_within(DEADLINE, "the rollout after resuming", || async {
        let current = pods(&cluster.client, "app=web").await;
        (current.len() == 3 && images(&current).iter().all(|i| i == "nginx:2")).then_some(())
    })
    .await;
    rolled_out(&api, "web", 3).await;
}

#[tokio::test]
async fn a_replica_set_replaces_deleted_pods_and_waits_for_min_ready_seconds() {
    let cluster = ControlPlane::start().await;
    let api: Api<ReplicaSet> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "cache", "namespace": "default"},
            "spec": {
                "replicas": 2, "minReadySeconds": 1,
                "selector": {"matchLabels": {"app": "cache"}},
                "template": {"metadata": {"labels": {"app": "cache"}}, "spec": {"containers": [{"name": "c", "image": "redis"}]}},
            },
        }))
        .await;
    let ready_not_available = eventually_within(DEADLINE, "ready pods", || async {
        let status = api.get("cache").await.ok()?.status?;
        (status.ready_replicas == Some(2)).then_some(status.available_replicas)
    })
    .await;
    assert!(
        ready_not_available.unwrap_or(0) < 2,
        "not available before minReadySeconds"
    );
    eventually_within(DEADLINE, "available after minReadySeconds", || async {
        (api.get("cache").await.ok()?.status?.available_replicas == Some(2)).then_some(())
    })
    .await;
    let victim = pods(&cluster.client, "app=cache").await.remove(0);
    let victim_name = victim.metadata.name.clone().expect("name");
    cluster
        .api::<Pod>()
        .delete(&victim_name, &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually_within(DEADLINE, "a replacement pod", || async {
        let current = pods(&cluster.client, "app=cache").await;
        (current.len() == 2
            && current
                .iter()
                .all(|p| p.metadata.name.as_deref() != Some(&victim_name)))
        .then_some(())
    })
    .await;
}
