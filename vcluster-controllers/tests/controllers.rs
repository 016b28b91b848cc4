//! The controllers end to end against the real API server (in memory,
//! in process), with the test kit's scripted kubelet standing in for the syncer and the
//! host node.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use common::{finish, pods, set_ready, ControlPlane, DEADLINE, HOLD, MANUAL_READY, OUTCOME};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, PersistentVolumeClaim, Pod, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;
use vcluster_controllers::deployment::util::{REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION};
use vcluster_controllers::hash::POD_TEMPLATE_HASH_LABEL;
use vcluster_testkit::eventually_within;

fn deployment(
    name: &str,
    replicas: i32,
    image: &str,
    strategy: serde_json::Value,
) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]},
            },
        },
    })
}

fn rolling(surge: serde_json::Value, unavailable: serde_json::Value) -> serde_json::Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
}

/// Waits until the Deployment's rollout is complete as `kubectl rollout
/// status` judges it, and returns it.
async fn rolled_out(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually_within(
        DEADLINE,
        &format!("deployment {name} rolled out with {replicas} replicas"),
        || async {
            let d = api.get(name).await.ok()?;
            let status = d.status.clone()?;
            let done = d.metadata.generation <= status.observed_generation
                && status.updated_replicas == Some(replicas)
                && status.replicas == Some(replicas)
                && status.available_replicas == Some(replicas)
                && status.ready_replicas == Some(replicas);
            done.then_some(d)
        },
    )
    .await
}

fn condition<'a>(
    d: &'a Deployment,
    type_: &str,
) -> Option<&'a k8s_openapi::api::apps::v1::DeploymentCondition> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn images(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.spec.as_ref()?.containers.first()?.image.clone())
        .collect()
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    // What `kubectl set image` does, as a JSON patch (no strategic merge
    // patch needed).
    let patch = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]);
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(patch).expect("patch")),
    )
    .await
    .expect("set image");
}

async fn owned_replica_sets(api: &Api<ReplicaSet>, uid: &str) -> Vec<ReplicaSet> {
    let mut list: Vec<ReplicaSet> = api
        .list(&ListParams::default())
        .await
        .expect("list replica sets")
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        })
        .collect();
    list.sort_by_key(|rs| rs.metadata.name.clone());
    list
}

fn revision(rs: &ReplicaSet) -> Option<String> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)
        .cloned()
}

// ---------------------------------------------------------------- Deployments

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
                .all(|m| *m == vcluster_controllers::writes::FIELD_MANAGER),
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
    let observer = {
        let seen = seen.clone();
        let client = cluster.client.clone();
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), "default");
            let stream = watcher(api.clone(), watcher::Config::default().labels("app=web"))
                .default_backoff()
                .touched_objects();
            futures::pin_mut!(stream);
            while stream.next().await.is_some() {
                let current = pods(&client, "app=web").await;
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
        })
    };
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
    let observer = {
        let max_seen = max_seen.clone();
        let client = cluster.client.clone();
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), "default");
            let stream = watcher(api, watcher::Config::default().labels("app=web"))
                .default_backoff()
                .touched_objects();
            futures::pin_mut!(stream);
            while stream.next().await.is_some() {
                let n = pods(&client, "app=web")
                    .await
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .count();
                let mut m = max_seen.lock().unwrap_or_else(|p| p.into_inner());
                *m = (*m).max(n);
            }
        })
    };
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
    let observer = {
        let overlap = overlap.clone();
        let client = cluster.client.clone();
        tokio::spawn(async move {
            let api: Api<Pod> = Api::namespaced(client.clone(), "default");
            let stream = watcher(api, watcher::Config::default().labels("app=web"))
                .default_backoff()
                .touched_objects();
            futures::pin_mut!(stream);
            while stream.next().await.is_some() {
                let set: BTreeSet<String> = images(&pods(&client, "app=web").await)
                    .into_iter()
                    .collect();
                if set.len() > 1 {
                    *overlap.lock().unwrap_or_else(|p| p.into_inner()) = true;
                }
            }
        })
    };
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

// ---------------------------------------------------------------- StatefulSets

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

// ---------------------------------------------------------------- DaemonSets

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

// ---------------------------------------------------------------- Jobs

fn job(
    name: &str,
    completions: i32,
    parallelism: i32,
    labels: serde_json::Value,
) -> serde_json::Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "completions": completions, "parallelism": parallelism, "backoffLimit": 2,
            "template": {"metadata": {"labels": labels}, "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}},
        },
    })
}

fn job_condition(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .and_then(|c| c.reason.clone())
}

#[tokio::test]
async fn a_job_runs_to_completion() {
    let cluster = ControlPlane::start().await;
    let api: Api<Job> = cluster.api();
    let created: Job = cluster
        .create(&api, job("pi", 3, 2, json!({"app": "pi"})))
        .await;
    let done = eventually_within(DEADLINE, "the job complete", || async {
        let j = api.get("pi").await.ok()?;
        job_condition(&j, "Complete").map(|_| j)
    })
    .await;
    let status = done.status.expect("status");
    assert_eq!(
        (status.succeeded, status.failed, status.active),
        (Some(3), Some(0), Some(0))
    );
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert!(job_condition(&api.get("pi").await.expect("get"), "SuccessCriteriaMet").is_some());
    let uid = created.metadata.uid.expect("uid");
    let finished = pods(
        &cluster.client,
        &format!("batch.kubernetes.io/controller-uid={uid}"),
    )
    .await;
    assert_eq!(finished.len(), 3);
    assert!(finished
        .iter()
        .all(|p| vcluster_controllers::pods::phase(p) == "Succeeded"));
    assert!(finished.iter().all(|p| p
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("batch.kubernetes.io/job-name"))
        .map(String::as_str)
        == Some("pi")));
}

#[tokio::test]
async fn a_job_whose_pods_fail_stops_at_its_backoff_limit() {
    let cluster = ControlPlane::start().await;
    let api: Api<Job> = cluster.api();
    cluster
        .create(
            &api,
            job("doomed", 1, 1, json!({"app": "doomed", OUTCOME: "Failed"})),
        )
        .await;
    let failed = eventually_within(DEADLINE, "the job failed", || async {
        let j = api.get("doomed").await.ok()?;
        job_condition(&j, "Failed").map(|reason| (j, reason))
    })
    .await;
    assert_eq!(failed.1, "BackoffLimitExceeded");
    // backoffLimit 2: the third failure ends it.
    assert_eq!(failed.0.status.and_then(|s| s.failed), Some(3));
    assert_eq!(pods(&cluster.client, "app=doomed").await.len(), 3);
}

#[tokio::test]
async fn a_finished_job_is_deleted_after_its_ttl_with_its_pods() {
    let cluster = ControlPlane::start().await;
    let api: Api<Job> = cluster.api();
    let mut spec = job("once", 1, 1, json!({"app": "once"}));
    spec["spec"]["ttlSecondsAfterFinished"] = json!(0);
    cluster.create(&api, spec).await;
    eventually_within(DEADLINE, "the job deleted", || async {
        api.get_opt("once").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually_within(DEADLINE, "its pods deleted", || async {
        pods(&cluster.client, "app=once")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

// ---------------------------------------------------------------- CronJobs

#[tokio::test]
async fn a_cron_job_starts_jobs_on_schedule_and_keeps_its_history() {
    let cluster = ControlPlane::start().await;
    let api: Api<CronJob> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default"},
            "spec": {
                "schedule": "* * * * *", "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {"template": {
                    "metadata": {"labels": {"app": "tick"}},
                    "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "t", "image": "busybox"}]},
                }}},
            },
        }))
        .await;
    let jobs: Api<Job> = cluster.api();
    let list_jobs = || async {
        let mut names: Vec<String> = jobs
            .list(&ListParams::default().labels("app=tick"))
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|j| j.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    // Move the controllers' clock past the next minute and nudge the
    // CronJob (its timer runs on the real clock).
    let nudge = |n: i32| {
        let api = api.clone();
        async move {
            api.patch(
                "tick",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"test/nudge": n.to_string()}}})),
            )
            .await
            .expect("nudge");
        }
    };
    cluster.advance_clock(61);
    nudge(1).await;
    let first = eventually_within(DEADLINE, "the first job", || async {
        list_jobs().await.into_iter().next()
    })
    .await;
    let job = jobs.get(&first).await.expect("job");
    let scheduled = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("batch.kubernetes.io/cronjob-scheduled-timestamp"))
        .cloned()
        .expect("scheduled timestamp");
    let scheduled: jiff::Timestamp = scheduled.parse().expect("RFC 3339");
    assert_eq!(first, format!("tick-{}", scheduled.as_second() / 60));
    assert_eq!(
        job.metadata
            .owner_references
            .as_ref()
            .map(|r| r[0].kind.as_str()),
        Some("CronJob")
    );
    let status = eventually_within(DEADLINE, "lastScheduleTime and a success", || async {
        let status = api.get("tick").await.ok()?.status?;
        (status.last_schedule_time.is_some()
            && status.last_successful_time.is_some()
            && status.active.as_ref().is_none_or(|a| a.is_empty()))
        .then_some(status)
    })
    .await;
    assert_eq!(status.last_schedule_time.map(|t| t.0), Some(scheduled));

    // The next minute: a second job; the history limit keeps only one.
    cluster.advance_clock(60);
    nudge(2).await;
    let second = eventually_within(
        DEADLINE,
        "the second job, the first one deleted",
        || async {
            let names = list_jobs().await;
            (names.len() == 1 && names[0] != first).then(|| names[0].clone())
        },
    )
    .await;
    eventually_within(DEADLINE, "the second job complete", || async {
        job_condition(&jobs.get(&second).await.ok()?, "Complete").map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_forbidding_cron_job_waits_for_the_running_job() {
    let cluster = ControlPlane::start().await;
    let api: Api<CronJob> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "slow", "namespace": "default"},
            "spec": {
                "schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                "jobTemplate": {"spec": {"template": {
                    // The fake kubelet keeps these running until told.
                    "metadata": {"labels": {"app": "slow", HOLD: "true"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox"}]},
                }}},
            },
        }))
        .await;
    // Record, in order, when jobs appear and when they complete.
    let history = Arc::new(Mutex::new(Vec::<String>::new()));
    let observer = {
        let history = history.clone();
        let jobs: Api<Job> = cluster.api();
        tokio::spawn(async move {
            let stream = watcher(jobs, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            let mut seen = BTreeSet::new();
            while let Some(Ok(job)) = stream.next().await {
                let name = job.metadata.name.clone().unwrap_or_default();
                let state = if job_condition(&job, "Complete").is_some() {
                    "complete"
                } else {
                    "added"
                };
                if seen.insert(format!("{name} {state}")) {
                    history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(format!("{name} {state}"));
                }
            }
        })
    };
    let nudge = |n: i32| {
        let api = api.clone();
        async move {
            api.patch(
                "slow",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"test/nudge": n.to_string()}}})),
            )
            .await
            .expect("nudge");
        }
    };
    let jobs: Api<Job> = cluster.api();
    cluster.advance_clock(61);
    nudge(1).await;
    let first = eventually_within(DEADLINE, "the first job running", || async {
        let job = jobs
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .next()?;
        (job.status.as_ref()?.active == Some(1)).then_some(job)
    })
    .await;
    let first_name = first.metadata.name.clone().expect("name");
    eventually_within(DEADLINE, "the job in the active list", || async {
        (api.get("slow").await.ok()?.status?.active?.len() == 1).then_some(())
    })
    .await;
    // The next start time comes while the first job still runs.
    cluster.advance_clock(60);
    nudge(2).await;
    nudge(3).await;
    // Let the first job finish: the skipped start time runs now.
    let held = pods(&cluster.client, "app=slow").await;
    for pod in &held {
        finish(&cluster.client, pod.metadata.name.as_deref().unwrap_or("")).await;
    }
    let second = eventually_within(DEADLINE, "a second job", || async {
        jobs.list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|j| j.metadata.name)
            .find(|n| *n != first_name)
    })
    .await;
    eventually_within(DEADLINE, "the observer to see the second job", || async {
        history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|h| h.starts_with(&second))
            .then_some(())
    })
    .await;
    observer.abort();
    let history = history.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let completed = history
        .iter()
        .position(|h| *h == format!("{first_name} complete"))
        .expect("the first job completed");
    let started = history
        .iter()
        .position(|h| *h == format!("{second} added"))
        .expect("the second job added");
    assert!(
        completed < started,
        "Forbid: the second job only after the first finished: {history:?}"
    );
}

#[tokio::test]
async fn a_replacing_cron_job_deletes_the_running_job() {
    let cluster = ControlPlane::start().await;
    let api: Api<CronJob> = cluster.api();
    cluster
        .create(&api, json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "fresh", "namespace": "default"},
            "spec": {
                "schedule": "* * * * *", "concurrencyPolicy": "Replace",
                "jobTemplate": {"spec": {"template": {
                    "metadata": {"labels": {"app": "fresh", HOLD: "true"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "t", "image": "busybox"}]},
                }}},
            },
        }))
        .await;
    let jobs: Api<Job> = cluster.api();
    let names = || async {
        jobs.list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|j| j.metadata.name)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    cluster.advance_clock(61);
    api.patch(
        "fresh",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"n": "1"}}})),
    )
    .await
    .expect("nudge");
    let first = eventually_within(DEADLINE, "the first job", || async {
        names().await.into_iter().next()
    })
    .await;
    cluster.advance_clock(60);
    api.patch(
        "fresh",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"n": "2"}}})),
    )
    .await
    .expect("nudge");
    let second = eventually_within(DEADLINE, "the first job replaced", || async {
        let current = names().await;
        (current.len() == 1 && current[0] != first).then(|| current[0].clone())
    })
    .await;
    let active = eventually_within(DEADLINE, "the new job active", || async {
        let active = api.get("fresh").await.ok()?.status?.active?;
        (active.len() == 1).then_some(active)
    })
    .await;
    assert_eq!(active[0].name.as_deref(), Some(second.as_str()));
}

// ---------------------------------------------------------------- Services

#[tokio::test]
async fn a_service_gets_endpoints_and_slices_of_its_ready_pods() {
    let cluster = ControlPlane::start().await;
    let deployments: Api<Deployment> = cluster.api();
    cluster
        .create(
            &deployments,
            deployment("web", 3, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&deployments, "web", 3).await;
    let services: Api<Service> = cluster.api();
    let svc: Service = cluster
        .create(&services, json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }))
        .await;
    let web_pods = pods(&cluster.client, "app=web").await;
    let mut ips: Vec<String> = web_pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect();
    ips.sort();
    assert_eq!(ips.len(), 3);
    let endpoints: Api<Endpoints> = cluster.api();
    let ep = eventually_within(DEADLINE, "endpoints with the pods' IPs", || async {
        let ep = endpoints.get("web").await.ok()?;
        let subset = ep.subsets.as_ref()?.first()?.clone();
        let mut found: Vec<String> = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| a.ip.clone())
            .collect();
        found.sort();
        (found == ips).then_some(ep)
    })
    .await;
    let subset = &ep.subsets.as_ref().expect("subsets")[0];
    let port = &subset.ports.as_ref().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), 8080),
        "the named target port resolved"
    );
    let address = &subset.addresses.as_ref().expect("addresses")[0];
    let target = address.target_ref.as_ref().expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert!(web_pods.iter().any(|p| p.metadata.uid == target.uid));
    assert_eq!(
        ep.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("front")
    );

    let slices: Api<EndpointSlice> = cluster.api();
    let slice = eventually_within(
        DEADLINE,
        "an endpoint slice with 3 ready endpoints",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .ok()?;
            let slice = list.items.into_iter().next()?;
            let ready = slice
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            (ready == 3).then_some(slice)
        },
    )
    .await;
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("endpointslice.kubernetes.io/managed-by"))
            .map(String::as_str),
        Some("endpointslice-controller.k8s.io")
    );
    let owner = &slice.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        (
            "Service",
            svc.metadata.uid.as_deref().unwrap_or(""),
            Some(true)
        )
    );

    // A pod that stops being ready moves to notReadyAddresses.
    let victim = web_pods[0].metadata.name.clone().expect("name");
    let unready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    cluster
        .api::<Pod>()
        .patch_status(&victim, &PatchParams::default(), &Patch::Merge(&unready))
        .await
        .expect("unready");
    eventually_within(DEADLINE, "the unready pod in notReadyAddresses", || async {
        let ep = endpoints.get("web").await.ok()?;
        let not_ready: Vec<String> = ep
            .subsets?
            .iter()
            .flat_map(|s| {
                s.not_ready_addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.target_ref.as_ref()?.name.clone())
            })
            .collect();
        (not_ready == [victim.clone()]).then_some(())
    })
    .await;
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    eventually_within(
        DEADLINE,
        "the endpoints deleted with the service",
        || async { endpoints.get_opt("web").await.ok()?.is_none().then_some(()) },
    )
    .await;
    eventually_within(DEADLINE, "the slices deleted with the service", || async {
        slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn pods_leaving_a_selector_leave_the_endpoints() {
    let cluster = ControlPlane::start().await;
    let services: Api<Service> = cluster.api();
    cluster
        .create(
            &services,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "api", "namespace": "default"},
                "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 9000}]},
            }),
        )
        .await;
    let pods_api: Api<Pod> = cluster.api();
    for name in ["api-a", "api-b"] {
        cluster
            .create(
                &pods_api,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": "default", "labels": {"app": "api"}},
                    "spec": {"containers": [{"name": "c", "image": "api"}]},
                }),
            )
            .await;
    }
    let endpoints: Api<Endpoints> = cluster.api();
    let names = || async {
        let ep = endpoints.get("api").await.ok();
        let mut names: Vec<String> = ep
            .and_then(|e| e.subsets)
            .unwrap_or_default()
            .iter()
            .flat_map(|s| {
                s.addresses
                    .iter()
                    .flatten()
                    .filter_map(|a| a.target_ref.as_ref()?.name.clone())
            })
            .collect();
        names.sort();
        names
    };
    eventually_within(DEADLINE, "both pods", || async {
        (names().await == ["api-a", "api-b"]).then_some(())
    })
    .await;
    pods_api
        .patch(
            "api-b",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
    eventually_within(DEADLINE, "only api-a", || async {
        (names().await == ["api-a"]).then_some(())
    })
    .await;
}

// ---------------------------------------------------------------- Namespaces

#[tokio::test]
async fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let cluster = ControlPlane::start().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team-a"}})).expect("ns"),
        )
        .await
        .expect("create namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "team-a");
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "team-a");
    eventually_within(DEADLINE, "the default service account", || async {
        accounts.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    let ca = eventually_within(DEADLINE, "kube-root-ca.crt", || async {
        config_maps.get_opt("kube-root-ca.crt").await.ok()?
    })
    .await;
    assert!(ca
        .data
        .as_ref()
        .and_then(|d| d.get("ca.crt"))
        .is_some_and(|pem| pem.contains("BEGIN CERTIFICATE")));
    // Also in the namespaces that existed before.
    let default_accounts: Api<ServiceAccount> = cluster.api();
    eventually_within(DEADLINE, "default/default", || async {
        default_accounts.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    // Deleted or tampered with: restored.
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .expect("delete");
    config_maps
        .patch(
            "kube-root-ca.crt",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"ca.crt": "forged"}})),
        )
        .await
        .expect("tamper");
    eventually_within(DEADLINE, "the account back", || async {
        accounts.get_opt("default").await.ok()?.map(|_| ())
    })
    .await;
    eventually_within(DEADLINE, "the CA restored", || async {
        let cm = config_maps.get("kube-root-ca.crt").await.ok()?;
        cm.data?
            .get("ca.crt")?
            .contains("BEGIN CERTIFICATE")
            .then_some(())
    })
    .await;
}

// ---------------------------------------------------------------- Deletion

#[tokio::test]
async fn deleting_a_deployment_deletes_its_replica_sets_and_pods() {
    let cluster = ControlPlane::start().await;
    let api: Api<Deployment> = cluster.api();
    let created: Deployment = cluster
        .create(
            &api,
            deployment("web", 3, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 3).await;
    api.delete("web", &DeleteParams::background())
        .await
        .expect("delete");
    let uid = created.metadata.uid.expect("uid");
    eventually_within(DEADLINE, "no replica sets", || async {
        owned_replica_sets(&cluster.api(), &uid)
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    eventually_within(DEADLINE, "no pods", || async {
        pods(&cluster.client, "app=web")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_orphan_collector_works_without_the_api_servers_garbage_collector() {
    let cluster = ControlPlane::start_with(|server, _| server.garbage_collector = None).await;
    let api: Api<Deployment> = cluster.api();
    cluster
        .create(
            &api,
            deployment("web", 2, "nginx:1", rolling(json!(1), json!(0))),
        )
        .await;
    rolled_out(&api, "web", 2).await;
    // Config maps owned by the deployment: one only by it (collected),
    // one also by an owner of a kind the collector cannot check (only the
    // dangling reference goes).
    let config_maps: Api<ConfigMap> = cluster.api();
    let d = api.get("web").await.expect("get");
    let by_deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d.metadata.uid});
    let by_other = json!({"apiVersion": "example.com/v1", "kind": "Thing", "name": "thing", "uid": "0000-thing"});
    cluster.create(&config_maps, json!({"metadata": {"name": "doomed", "namespace": "default", "ownerReferences": [by_deployment]}})).await;
    cluster.create(&config_maps, json!({"metadata": {"name": "shared", "namespace": "default", "ownerReferences": [by_deployment, by_other]}})).await;
    api.delete("web", &DeleteParams::default())
        .await
        .expect("delete");
    eventually_within(DEADLINE, "the pods collected", || async {
        pods(&cluster.client, "app=web")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let rss = cluster
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert!(rss.is_empty(), "replica sets collected: {rss:?}");
    eventually_within(
        DEADLINE,
        "the config map owned by the deployment alone collected",
        || async {
            config_maps
                .get_opt("doomed")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    let shared = eventually_within(DEADLINE, "the dangling reference removed", || async {
        let cm = config_maps.get_opt("shared").await.ok()??;
        (cm.metadata.owner_references.as_ref()?.len() == 1).then_some(cm)
    })
    .await;
    assert_eq!(
        shared.metadata.owner_references.unwrap_or_default()[0].kind,
        "Thing"
    );
}
