//! kube-rs against the server over real TCP: CRUD and its errors,
//! pagination, selectors, cluster-scoped kinds, the status subresource
//! (`crud`); watches (every event, bookmarks, streaming lists) and the
//! runtime watcher's recovery from `410 Gone` (`watches`); slow watch
//! clients being cut off, and TLS (`transport`).

mod crud;
mod service_allocation;
mod transport;
mod watches;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vcluster_apiserver::storage::{MemoryStorage, Storage};
use vcluster_apiserver::watch_cache::WatchLimits;
use vcluster_testkit::cluster::Cluster;
use vcluster_testkit::cluster::Options;
use vcluster_testkit::eventually;
use vcluster_testkit::within;

pub(crate) fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    serde_json::from_value(vcluster_testkit::http::pod_json(name, labels)).expect("a valid pod")
}

pub(crate) fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_owned());
    cm.data = Some(data);
    cm
}

pub(crate) fn rv<K: ResourceExt>(object: &K) -> u64 {
    object
        .resource_version()
        .expect("a resourceVersion")
        .parse()
        .expect("a numeric resourceVersion")
}

/// The `Status` of a failed call: (code, reason).
pub(crate) fn api_error<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
) -> (u16, String, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.reason.clone(), status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub(crate) fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }))
    .expect("a valid deployment")
}
