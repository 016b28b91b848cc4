//! Subresources with their own shapes: `scale` (an `autoscaling/v1 Scale`
//! view of a workload's replicas) and `pods/binding` (how a scheduler
//! assigns a pod to a node, the one way `spec.nodeName` may change).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};
use vcluster_core::selector::Selector;

use super::{decode, encode, ObjectAddress, Registry, UpdateTarget, WriteOptions};
use crate::error::ApiError;
use crate::object;
use crate::resources::custom::schema::{json_path, set_path};
use crate::resources::custom::ScalePaths;
use crate::storage::StorageError;

/// The `Scale` view of a workload.
pub fn scale_of(workload: &Value) -> Value {
    let meta = object::metadata(workload).cloned().unwrap_or_default();
    let pick = |field: &str| meta.get(field).cloned().unwrap_or(Value::Null);
    let selector = workload
        .pointer("/spec/selector")
        .cloned()
        .and_then(|s| serde_json::from_value::<LabelSelector>(s).ok())
        .and_then(|s| Selector::from_label_selector(&s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"),
            "namespace": pick("namespace"),
            "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"),
            "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": {"replicas": workload.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": workload.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// The `Scale` view of a custom resource, through the paths its CRD's
/// `scale` subresource declares.
fn custom_scale_of(paths: &ScalePaths, object: &Value) -> Value {
    let mut scale = scale_of(object);
    let at = |path: &str| json_path(object, path).cloned();
    scale["spec"]["replicas"] = at(&paths.spec_replicas).unwrap_or(json!(0));
    scale["status"]["replicas"] = at(&paths.status_replicas).unwrap_or(json!(0));
    scale["status"]["selector"] = paths
        .label_selector
        .as_deref()
        .and_then(at)
        .filter(Value::is_string)
        .unwrap_or(json!(""));
    scale
}

fn scale_view(address: &ObjectAddress, object: &Value) -> Value {
    match address
        .resource
        .custom
        .as_ref()
        .and_then(|c| c.scale.as_ref())
    {
        Some(paths) => custom_scale_of(paths, object),
        None => scale_of(object),
    }
}

impl Registry {
    /// Reads the scale of a workload (or of a custom resource with a
    /// `scale` subresource).
    pub async fn get_scale(&self, address: &ObjectAddress) -> Result<Value, ApiError> {
        Ok(scale_view(address, &self.get(address).await?))
    }

    /// Sets a workload's replicas from a `Scale` body.
    pub async fn update_scale(
        &self,
        address: &ObjectAddress,
        scale: &Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .filter(|r| *r >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    &address.name,
                    vec![crate::error::FieldCause::invalid(
                        "spec.replicas",
                        &scale
                            .pointer("/spec/replicas")
                            .map(Value::to_string)
                            .unwrap_or_default(),
                        "must be greater than or equal to 0",
                    )],
                )
            })?;
        let mut workload = self.get(address).await?;
        let precondition = object::meta_str(scale, "resourceVersion");
        if !precondition.is_empty() {
            object::set_resource_version(
                &mut workload,
                super::parse_resource_version(precondition)?,
            );
        } else if let Some(meta) = workload.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        match address
            .resource
            .custom
            .as_ref()
            .and_then(|c| c.scale.as_ref())
        {
            Some(paths) => {
                set_path(&mut workload, &paths.spec_replicas, json!(replicas));
            }
            None => workload["spec"]["replicas"] = json!(replicas),
        }
        let updated = self
            .update(address, workload, UpdateTarget::Main, options)
            .await?;
        Ok(scale_view(address, &updated))
    }

    /// Assigns a pod to a node (`pods/binding`): sets `spec.nodeName` once
    /// and records the `PodScheduled` condition.
    pub async fn bind_pod(
        &self,
        address: &ObjectAddress,
        binding: &Value,
        options: &WriteOptions,
    ) -> Result<(), ApiError> {
        let node = object::path_str(binding, "target.name").to_owned();
        if node.is_empty() {
            return Err(ApiError::invalid(
                "Binding",
                &address.name,
                vec![crate::error::FieldCause::required("target.name")],
            ));
        }
        let key = address.key();
        for _ in 0..super::MAX_UPDATE_ATTEMPTS {
            let current = self
                .storage
                .get(&key)
                .await?
                .ok_or_else(|| address.not_found())?;
            let mut pod = decode(&current)?;
            let assigned = object::path_str(&pod, "spec.nodeName");
            if !assigned.is_empty() {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &address.name,
                    format!(
                        "pod {} is already assigned to node {assigned:?}",
                        address.name
                    ),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": object::now_rfc3339()});
            let conditions = pod["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conditions: Vec<Value> = conditions
                .into_iter()
                .filter(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"))
                .collect();
            conditions.push(condition);
            pod["status"]["conditions"] = Value::Array(conditions);
            if options.dry_run {
                return Ok(());
            }
            match self
                .storage
                .update(&key, encode(&pod)?, current.mod_revision)
                .await
            {
                Ok(_) => return Ok(()),
                Err(StorageError::Conflict { .. }) => continue,
                Err(err) => return Err(address.storage_error(err)),
            }
        }
        Err(ApiError::conflict(
            "",
            "pods",
            &address.name,
            "too many concurrent writers; try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reflects_replicas_and_selector() {
        let deployment = json!({
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2},
        });
        let scale = scale_of(&deployment);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
    }
}
