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
        None if address.resource.is("", "replicationcontrollers") => {
            // A replication controller's selector is a plain label map.
            let mut scale = scale_of(object);
            let selector: Vec<String> = object::string_map(object.pointer("/spec/selector"))
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            scale["status"]["selector"] = json!(selector.join(","));
            scale
        }
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

/// Upstream's refusal of an eviction a disruption budget forbids.
const EVICTION_REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// Upstream's `MaxDisruptedPodSize`: evictions the disruption controller
/// has not confirmed yet, beyond which a budget refuses more.
const MAX_DISRUPTED_PODS: usize = 2000;

/// A 429 refusing an eviction, with the `DisruptionBudget` cause saying
/// why (`retry`: the Retry-After upstream sends, none for 0).
fn eviction_refused(why: String, retry: u32) -> ApiError {
    let mut err = ApiError::too_many_requests(EVICTION_REFUSED);
    err.retry_after_seconds = (retry > 0).then_some(retry);
    err.causes.push(crate::error::FieldCause {
        reason: "DisruptionBudget",
        field: String::new(),
        message: why,
    });
    err
}

/// A 429 for a budget the disruption controller has not caught up with.
fn budget_in_progress(name: &str) -> ApiError {
    eviction_refused(
        format!("The disruption budget {name} is still being processed by the server."),
        10,
    )
}

/// Whether a pod's `Ready` condition is true.
fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Whether a budget's selector selects `labels` (an unset selector
/// selects nothing, an empty one everything, as `LabelSelectorAsSelector`).
fn budget_selects(pdb: &Value, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let Some(selector) = pdb.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        return false;
    };
    serde_json::from_value::<LabelSelector>(selector.clone())
        .ok()
        .and_then(|s| Selector::from_label_selector(&s).ok())
        .is_some_and(|s| s.matches(labels))
}

impl Registry {
    /// Evicts a pod (`POST pods/<name>/eviction`, a policy/v1 `Eviction`),
    /// as upstream's `EvictionREST`: the pod is deleted with the
    /// eviction's `deleteOptions` unless the one disruption budget that
    /// selects it allows no disruption now (429); a budget that allows one
    /// has it spent and the pod recorded in `status.disruptedPods`, so the
    /// next eviction does not count on it. Pods that are not running
    /// (pending, finished or already going) ignore budgets; a pod that is
    /// not ready passes when its budget is healthy anyway or says
    /// `AlwaysAllow`. More than one budget is a 500, as upstream.
    pub async fn evict_pod(
        &self,
        address: &ObjectAddress,
        eviction: &Value,
        mut options: super::DeleteOptions,
    ) -> Result<(), ApiError> {
        if object::name(eviction) != address.name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        if eviction
            .pointer("/deleteOptions/ignoreStoreReadErrorWithClusterBreakingPotential")
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Err(ApiError::invalid(
                "Eviction.policy",
                &address.name,
                vec![crate::error::FieldCause {
                    reason: "FieldValueInvalid",
                    field: "deleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential".into(),
                    message: "Invalid value: true: can not be set for pod eviction, try after removing the option".into(),
                }],
            ));
        }
        let pod = self.get(address).await?;
        let phase = object::path_str(&pod, "status.phase");
        let going = pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null());
        let rv_unset = options.resource_version.is_none();
        if matches!(phase, "Succeeded" | "Failed" | "Pending") || going {
            // Budgets count running pods only.
            let enforce = !(matches!(phase, "Succeeded" | "Failed") || going);
            if enforce && rv_unset {
                options.resource_version =
                    Some(object::meta_str(&pod, "resourceVersion").to_owned());
            }
            return self.delete_evicted(address, options).await;
        }
        let catalog = self.catalog();
        let Some(budgets) = catalog.get("policy", "v1", "poddisruptionbudgets") else {
            return self.delete_evicted(address, options).await;
        };
        let labels = object::labels(&pod);
        let matching: Vec<Value> = self
            .list(
                &budgets,
                address.namespace.as_deref(),
                &super::ListOptions::default(),
            )
            .await?
            .items
            .into_iter()
            .filter(|pdb| budget_selects(pdb, &labels))
            .collect();
        let pdb = match matching.as_slice() {
            [] => return self.delete_evicted(address, options).await,
            [one] => one.clone(),
            _ => {
                return Err(ApiError::new(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "",
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ))
            }
        };
        let pdb_name = object::name(&pdb).to_owned();
        let counter = |pdb: &Value, field: &str| {
            pdb.pointer(&format!("/status/{field}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        if !pod_ready(&pod)
            && (object::path_str(&pdb, "spec.unhealthyPodEvictionPolicy") == "AlwaysAllow"
                || (counter(&pdb, "currentHealthy") >= counter(&pdb, "desiredHealthy")
                    && counter(&pdb, "desiredHealthy") > 0))
        {
            // An unhealthy pod of a healthy budget goes without spending
            // it, if it is still the pod the decision was about.
            let mut guarded = options.clone();
            guarded.resource_version = Some(object::meta_str(&pod, "resourceVersion").to_owned());
            return match self.delete_evicted(address, guarded).await {
                Err(err) if err.code == http::StatusCode::CONFLICT && rv_unset => {
                    Err(budget_in_progress(&pdb_name))
                }
                other => other,
            };
        }
        let budget_address = ObjectAddress {
            resource: budgets,
            namespace: address.namespace.clone(),
            name: pdb_name.clone(),
        };
        self.spend_budget(&budget_address, pdb, &address.name, options.dry_run)
            .await?;
        self.delete_evicted(address, options).await
    }

    /// `checkAndDecrement`: refuses when the budget allows no disruption
    /// (or its controller is behind), else spends one and records the pod
    /// (not on a dry run), retrying on conflicts with a fresh read.
    async fn spend_budget(
        &self,
        address: &ObjectAddress,
        mut pdb: Value,
        pod: &str,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        for attempt in 0..super::MAX_UPDATE_ATTEMPTS {
            if attempt > 0 {
                pdb = self.get(address).await?;
            }
            let int = |path: &str| pdb.pointer(path).and_then(Value::as_i64).unwrap_or(0);
            let allowed = int("/status/disruptionsAllowed");
            if int("/status/observedGeneration") < int("/metadata/generation") {
                return Err(budget_in_progress(&address.name));
            }
            if allowed < 0 {
                return Err(budget_forbidden(
                    &address.name,
                    "pdb disruptions allowed is negative",
                ));
            }
            let disrupted = pdb
                .pointer("/status/disruptedPods")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            if disrupted > MAX_DISRUPTED_PODS {
                return Err(budget_forbidden(
                    &address.name,
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                ));
            }
            if allowed == 0 {
                return Err(eviction_refused(
                    format!(
                        "The disruption budget {} needs {} healthy pods and has {} currently",
                        address.name,
                        int("/status/desiredHealthy"),
                        int("/status/currentHealthy")
                    ),
                    0,
                ));
            }
            if dry_run {
                return Ok(());
            }
            let mut updated = pdb.clone();
            updated["status"]["disruptionsAllowed"] = json!(allowed - 1);
            if allowed - 1 == 0 {
                set_disruption_allowed(&mut updated);
            }
            let now = object::now_rfc3339();
            match updated["status"]
                .get_mut("disruptedPods")
                .and_then(Value::as_object_mut)
            {
                Some(map) => {
                    map.insert(pod.to_owned(), json!(now));
                }
                None => updated["status"]["disruptedPods"] = json!({ pod: now }),
            }
            match self
                .update(
                    address,
                    updated,
                    UpdateTarget::Status,
                    &WriteOptions::default(),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) if err.code == http::StatusCode::CONFLICT => continue,
                Err(err) => return Err(err),
            }
        }
        Err(ApiError::timeout(format!(
            "couldn't update PodDisruptionBudget {:?} due to conflicts",
            address.name
        )))
    }

    /// Deletes an evicted pod, first marking it with the
    /// `DisruptionTarget` condition (not on a dry run), as upstream's
    /// `addConditionAndDeletePod`.
    async fn delete_evicted(
        &self,
        address: &ObjectAddress,
        mut options: super::DeleteOptions,
    ) -> Result<(), ApiError> {
        if !options.dry_run {
            let current = self.get(address).await?;
            let conflict = |why: String| ApiError::conflict("", "Pod", &address.name, why);
            if let Some(uid) = options.uid.as_deref().filter(|u| !u.is_empty()) {
                let actual = object::meta_str(&current, "uid");
                if uid != actual {
                    return Err(conflict(format!("the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated")));
                }
            }
            if let Some(rv) = options
                .resource_version
                .as_deref()
                .filter(|r| !r.is_empty())
            {
                let actual = object::meta_str(&current, "resourceVersion");
                if rv != actual {
                    return Err(conflict(format!("the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified")));
                }
            }
            let marked = self
                .modify(address, None, |pod| {
                    set_pod_condition(
                        pod,
                        json!({
                            "type": "DisruptionTarget",
                            "status": "True",
                            "reason": "EvictionByEvictionAPI",
                            "message": "Eviction API: evicting",
                        }),
                    )
                })
                .await?
                .ok_or_else(|| address.not_found())?;
            if options.resource_version.is_some() {
                options.resource_version =
                    Some(object::meta_str(&marked, "resourceVersion").to_owned());
            }
        }
        self.delete(address, &options).await.map(|_| ())
    }
}

/// A 403 about a budget (`NewForbidden` on `poddisruptionbudget.policy`).
fn budget_forbidden(name: &str, why: &str) -> ApiError {
    ApiError::forbidden(format!(
        "poddisruptionbudget.policy {name:?} is forbidden: {why}"
    ))
    .with_target("policy", "poddisruptionbudget", name)
}

/// Sets a budget's `DisruptionAllowed` condition from its
/// `disruptionsAllowed` (upstream's `UpdateDisruptionAllowedCondition`).
pub(crate) fn set_disruption_allowed(pdb: &mut Value) {
    let allowed = pdb
        .pointer("/status/disruptionsAllowed")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = pdb
        .pointer("/status/observedGeneration")
        .cloned()
        .unwrap_or(json!(0));
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let conditions = pdb["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    let existing = conditions
        .iter_mut()
        .find(|c| c["type"] == "DisruptionAllowed");
    match existing {
        Some(c) => {
            if c["status"] != status {
                c["lastTransitionTime"] = json!(object::now_rfc3339());
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["observedGeneration"] = observed;
            if c.get("message").is_none() {
                c["message"] = json!("");
            }
        }
        None => conditions.push(json!({
            "type": "DisruptionAllowed",
            "status": status,
            "reason": reason,
            "message": "",
            "observedGeneration": observed,
            "lastTransitionTime": object::now_rfc3339(),
        })),
    }
}

/// Sets (or replaces) one condition of a pod's status; whether it changed.
fn set_pod_condition(pod: &mut Value, mut condition: Value) -> bool {
    let Some(status) = pod
        .as_object_mut()
        .map(|p| p.entry("status").or_insert_with(|| json!({})))
    else {
        return false;
    };
    if !status.is_object() {
        *status = json!({});
    }
    let conditions = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(conditions)) = conditions else {
        return false;
    };
    let now = object::now_rfc3339();
    match conditions
        .iter_mut()
        .find(|c| c["type"] == condition["type"])
    {
        Some(existing) => {
            let same = existing["status"] == condition["status"]
                && existing["reason"] == condition["reason"]
                && existing["message"] == condition["message"];
            if same {
                return false;
            }
            if existing["status"] != condition["status"] {
                condition["lastTransitionTime"] = json!(now);
            } else {
                condition["lastTransitionTime"] = existing["lastTransitionTime"].clone();
            }
            *existing = condition;
        }
        None => {
            condition["lastTransitionTime"] = json!(now);
            conditions.push(condition);
        }
    }
    true
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
