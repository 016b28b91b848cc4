//! The resource-quota controller, as upstream's
//! (pkg/controller/resourcequota): every ResourceQuota's `status.hard` is
//! its `spec.hard`, and `status.used` is recounted from the namespace's
//! objects, when the quota changes, when a pod, service, claim, config map
//! or secret of its namespace changes, and periodically (for the
//! `count/<resource>` of every other kind).
//!
//! The API server's quota admission raises `status.used` as it admits
//! objects; this controller is what lowers it again when they go (or when
//! pods finish: finished and terminated pods do not count).
//!
//! Usage is counted by the API server's own rules: the two files below are
//! the API server's, compiled here too, so both sides always agree.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ResourceQuota, ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::Resource;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiContext, Error, Result};
use crate::meta::key_of;
use crate::runtime::{drive, Shared};
use vcluster_core::FieldManager;

#[path = "../../vcluster-apiserver/src/registry/admission/quantity.rs"]
#[allow(dead_code)]
mod quantity;
#[path = "../../vcluster-apiserver/src/registry/admission/quota_usage.rs"]
#[allow(dead_code)]
mod quota_usage;

use quota_usage::ResourceList;

/// How often every quota is recounted even when nothing it watches
/// changed (objects of other kinds counted by `count/...`).
const RECOUNT: Duration = Duration::from_secs(30);

/// The kind, for errors.
const KIND: &str = "ResourceQuota";

/// Runs the resource-quota controller until `cancel` fires.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let client = shared.client.clone();
    let controller = Controller::new(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    let controller = controller
        .watches(
            Api::<Pod>::all(client.clone()),
            watcher::Config::default(),
            quotas_of(store.clone()),
        )
        .watches(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
            quotas_of(store.clone()),
        )
        .watches(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            watcher::Config::default(),
            quotas_of(store.clone()),
        )
        .watches(
            Api::<ConfigMap>::all(client.clone()),
            watcher::Config::default(),
            quotas_of(store.clone()),
        )
        .watches(
            Api::<Secret>::all(client),
            watcher::Config::default(),
            quotas_of(store),
        );
    drive("resourcequota", controller, shared, reconcile, cancel).await;
}

/// Maps an object to every quota of its namespace.
fn quotas_of<K: Resource>(
    store: Store<ResourceQuota>,
) -> impl Fn(K) -> Vec<ObjectRef<ResourceQuota>> + Send + Sync + 'static {
    move |object: K| {
        let namespace = object.meta().namespace.clone();
        store
            .state()
            .iter()
            .filter(|quota| quota.metadata.namespace == namespace)
            .map(|quota| ObjectRef::from_obj(quota.as_ref()))
            .collect()
    }
}

/// The served resource `group`/`plural`, as the client addresses it.
async fn api_resource(client: &kube::Client, group: &str, plural: &str) -> Option<ApiResource> {
    let found = kube::discovery::group(client, group).await.ok()?;
    found
        .recommended_resources()
        .into_iter()
        .map(|(resource, _)| resource)
        .find(|resource| resource.plural == plural)
}

/// Recounts one quota and writes its status when it changed.
async fn reconcile(quota: Arc<ResourceQuota>, shared: Arc<Shared>) -> Result<Action> {
    let key = key_of(quota.as_ref());
    let (Some(namespace), Some(name)) = (&quota.metadata.namespace, &quota.metadata.name) else {
        return Err(Error::InvalidSpec {
            kind: KIND,
            key,
            message: "no namespace or name".into(),
        });
    };
    let client = shared.client.clone();
    let quota_json = serde_json::to_value(quota.as_ref()).unwrap_or(Value::Null);
    let hard = quota_usage::resource_list(quota_json.pointer("/spec/hard"));
    let now = shared.now().as_second();

    // Which resources the hard limits count, and the names each counts.
    let mut by_resource: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for name in hard.keys() {
        if let Some(resource) = quota_usage::resources_for(name) {
            by_resource.entry(resource).or_default().push(name.clone());
        }
    }
    let mut used: ResourceList = hard
        .keys()
        .map(|name| (name.clone(), quantity::Quantity::ZERO))
        .collect();
    for ((group, plural), names) in &by_resource {
        let Some(resource) = api_resource(&client, group, plural).await else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let objects =
            api.list(&ListParams::default())
                .await
                .context("list", "objects of a quota", &key)?;
        for object in objects.items {
            let object = serde_json::to_value(&object).unwrap_or(Value::Null);
            if !quota_usage::matches_scopes(&quota_json, group, plural, &object) {
                continue;
            }
            let usage = quota_usage::usage(group, plural, &object, now);
            quota_usage::add_all(&mut used, &quota_usage::mask(&usage, names));
        }
    }

    let as_k8s = |list: &ResourceList| -> BTreeMap<String, K8sQuantity> {
        list.iter()
            .map(|(name, amount)| (name.clone(), K8sQuantity(amount.to_string())))
            .collect()
    };
    let spec_hard = quota
        .spec
        .as_ref()
        .and_then(|spec| spec.hard.clone())
        .unwrap_or_default();
    let status = ResourceQuotaStatus {
        hard: Some(spec_hard),
        used: Some(as_k8s(&used)),
    };
    let current = quota.status.clone().unwrap_or_default();
    if !same(&current, &status) {
        let mut updated = quota.as_ref().clone();
        updated.status = Some(status);
        Api::<ResourceQuota>::namespaced(client, namespace)
            .replace_status(name, &FieldManager::CONTROLLERS.post_params(), &updated)
            .await
            .context("update status of", KIND, &key)?;
    }
    Ok(Action::requeue(RECOUNT))
}

/// Whether two statuses hold the same amounts (`1000m` equals `1`).
fn same(a: &ResourceQuotaStatus, b: &ResourceQuotaStatus) -> bool {
    let read = |list: &Option<BTreeMap<String, K8sQuantity>>| -> BTreeMap<String, Option<quantity::Quantity>> {
        list.iter()
            .flatten()
            .map(|(name, q)| (name.clone(), quantity::Quantity::parse(&q.0)))
            .collect()
    };
    read(&a.hard) == read(&b.hard) && read(&a.used) == read(&b.used)
}
