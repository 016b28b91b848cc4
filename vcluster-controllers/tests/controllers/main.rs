//! The controllers end to end against the real API server (in memory,
//! in process), with the test kit's scripted kubelet standing in for the syncer and the
//! host node.

#[path = "../common/mod.rs"]
mod common;

mod deployments;
mod jobs;
mod leader;
mod lifecycle;
mod resource_quotas;
mod services;
mod stateful_and_daemon_sets;
mod workload_kinds;

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
