//! The resource-quota controller, as upstream's
//! (pkg/controller/resourcequota): every ResourceQuota's `status.hard` is
//! its `spec.hard`, and `status.used` is recounted from the namespace's
//! objects.
//!
//! The API server's quota admission raises `status.used` as it admits
//! objects; this controller is what lowers it again when they go. So, as
//! upstream, it recounts only when usage can drop or the limits change: a
//! quota whose `spec.hard` changed (or whose status lacks a limit), a pod,
//! service, claim, config map or secret deleted, a pod finished or being
//! deleted, a service changing type; and every [`RECOUNT`] (the
//! `count/<resource>` of every other kind, deletes a watch gap missed).
//! Recounting on creates, or on the admission's own charges, would race
//! them: a charge lands before its object is stored, and a count listed in
//! between would take the charge back, letting the next create exceed the
//! quota.
//!
//! Usage is counted by the API server's own rules: the two files below are
//! the API server's, compiled here too, so both sides always agree.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ResourceQuota, ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher, Config};
use kube::runtime::PredicateConfig;
use kube::runtime::WatchStreamExt;
use kube::Resource;
use serde::de::DeserializeOwned;
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
    let (store, writer) = reflector::store();
    let quotas = watcher(Api::<ResourceQuota>::all(client.clone()), Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(needs_recount, PredicateConfig::default());
    let mut service_types = HashMap::new();
    let controller = Controller::for_stream(quotas, store.clone())
        .watches_stream(
            freeing(Api::<Pod>::all(client.clone()), |pod: &Pod, deleted| {
                deleted
                    || pod.metadata.deletion_timestamp.is_some()
                    || matches!(
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
            }),
            quotas_of(store.clone()),
        )
        .watches_stream(
            freeing(
                Api::<Service>::all(client.clone()),
                move |service: &Service, deleted| {
                    let uid = service.metadata.uid.clone().unwrap_or_default();
                    if deleted {
                        service_types.remove(&uid);
                        return true;
                    }
                    let kind = service.spec.as_ref().and_then(|s| s.type_.clone());
                    service_types
                        .insert(uid, kind.clone())
                        .is_some_and(|before| before != kind)
                },
            ),
            quotas_of(store.clone()),
        )
        .watches_stream(
            freeing(
                Api::<PersistentVolumeClaim>::all(client.clone()),
                |_, deleted| deleted,
            ),
            quotas_of(store.clone()),
        )
        .watches_stream(
            freeing(Api::<ConfigMap>::all(client.clone()), |_, deleted| deleted),
            quotas_of(store.clone()),
        )
        .watches_stream(
            freeing(Api::<Secret>::all(client), |_, deleted| deleted),
            quotas_of(store),
        );
    drive("resourcequota", controller, shared, reconcile, cancel).await;
}

/// What of a quota calls for a recount when it changes: its limits, and
/// which names its status holds (a new quota, a limit added). The
/// admission's charges change only amounts, and do not.
fn needs_recount(quota: &ResourceQuota) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let hard = quota.spec.as_ref().and_then(|s| s.hard.as_ref());
    hard.map(|h| h.iter().map(|(k, v)| (k, &v.0)).collect::<Vec<_>>())
        .hash(&mut hasher);
    let status = quota.status.as_ref();
    for names in [
        status.and_then(|s| s.hard.as_ref()),
        status.and_then(|s| s.used.as_ref()),
    ] {
        names
            .map(|n| n.keys().collect::<Vec<_>>())
            .hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// The objects of `api` whose change can lower usage, as `frees(object,
/// deleted)` decides; it sees every change after the first list, in order
/// (a delete frees what the object held).
fn freeing<K>(
    api: Api<K>,
    mut frees: impl FnMut(&K, bool) -> bool + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher(api, Config::default())
        .default_backoff()
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(watcher::Event::Delete(object)) => frees(&object, true).then_some(Ok(object)),
                Ok(watcher::Event::Apply(object)) => frees(&object, false).then_some(Ok(object)),
                // A (re)list: `frees` learns the objects; every quota is
                // recounted at start, and every RECOUNT after a gap.
                Ok(watcher::Event::InitApply(object)) => {
                    frees(&object, false);
                    None
                }
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            })
        })
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
