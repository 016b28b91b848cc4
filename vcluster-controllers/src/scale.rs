//! The `scale` subresource of whatever a reference names (a pod's
//! controller, an autoscaler's target): how the disruption controller
//! learns how many pods a workload wants and the autoscaler reads and sets
//! it, for any kind that serves `scale`, built-in or custom, as upstream's
//! scale client does.

use k8s_openapi::api::autoscaling::v1::Scale;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::pinned_kind;

use crate::error::{ignore_not_found, ApiContext, Error, Result};

/// The objects of `kind` at `api_version` (`apps/v1`) in `namespace`, found
/// through discovery.
pub(crate) async fn api_of(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
) -> Result<Api<DynamicObject>> {
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = pinned_kind(client, &gvk).await.context(
        "discover",
        "APIResource",
        &format!("{api_version} {kind}"),
    )?;
    Ok(Api::namespaced_with(client.clone(), namespace, &resource))
}

/// The scale of `name`, or `None` when it does not exist.
pub(crate) async fn get(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<Option<Scale>> {
    let api = api_of(client, namespace, api_version, kind).await?;
    ignore_not_found(api.get_scale(name).await).context(
        "get scale of",
        "workload",
        &format!("{namespace}/{name}"),
    )
}

/// Sets the replicas of `name` through its scale subresource.
pub(crate) async fn set_replicas(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
    name: &str,
    replicas: i32,
) -> Result<Scale> {
    let api = api_of(client, namespace, api_version, kind).await?;
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api.patch_scale(
        name,
        &vcluster_core::FieldManager::CONTROLLERS.patch_params(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .context("scale", "workload", &format!("{namespace}/{name}"))
}

/// The error of a reference that names nothing with a scale.
pub(crate) fn no_scale(kind: &'static str, key: &str, message: String) -> Error {
    Error::InvalidSpec {
        kind,
        key: key.to_owned(),
        message,
    }
}
