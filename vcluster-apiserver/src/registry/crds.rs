//! The registry side of CustomResourceDefinitions: serving established
//! CRDs from start-up on, and deleting one the way apiextensions-apiserver
//! does (the CRD is marked `Terminating` with the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer, its objects are
//! deleted, honouring their own finalizers, then the CRD goes and its
//! resource stops being served).

use serde_json::{json, Value};

use super::namespaces::Progress;
use super::{
    decode, finalizers, is_deleting, mark_deleting, set_finalizers, DeleteOptions, DeletePlan,
    ObjectAddress, Propagation, Registry,
};
use crate::error::ApiError;
use crate::object;
use crate::resources::custom::{self, CLEANUP_FINALIZER};
use crate::resources::Catalog;
use crate::storage::{registry_prefix, ListRequest};

/// Custom resources listed per storage page while emptying a CRD.
const PAGE: usize = 256;

/// What deleting a CRD does: the first delete marks it (deletion
/// timestamp, cleanup finalizer, `Terminating` condition); later ones
/// answer with it until its finalizers are done.
pub(super) fn plan_delete(old: &Value, catalog: &Catalog) -> DeletePlan {
    if is_deleting(old) {
        return if finalizers(old).is_empty() {
            DeletePlan::Now
        } else {
            DeletePlan::Pending
        };
    }
    let mut new = old.clone();
    mark_deleting(&mut new);
    let mut list = finalizers(&new);
    if !list.iter().any(|f| f == CLEANUP_FINALIZER) {
        list.push(CLEANUP_FINALIZER.to_owned());
    }
    set_finalizers(&mut new, list);
    new["status"] = custom::status(&new, old, catalog);
    DeletePlan::Mark(new)
}

impl Registry {
    /// Starts serving every established CRD in storage; run at start-up,
    /// before requests are served. Returns how many were installed.
    pub async fn load_crds(&self) -> Result<usize, ApiError> {
        let prefix = registry_prefix(custom::GROUP, custom::PLURAL, None);
        let page = self.storage.list(ListRequest::prefix(prefix)).await?;
        let mut installed = 0;
        for kv in &page.items {
            let definition = decode(kv)?;
            if custom::condition_true(&definition, "Established") {
                installed += 1;
            }
            self.catalog
                .update(|catalog| custom::install(catalog, &definition));
        }
        Ok(installed)
    }

    /// One bounded pass over a CRD being deleted: deletes its objects (at
    /// most `budget` delete calls) and, once none is left, removes the
    /// cleanup finalizer, which removes the CRD and stops serving it.
    pub async fn crd_cleanup_pass(&self, name: &str, budget: usize) -> Result<Progress, ApiError> {
        let catalog = self.catalog();
        let definitions = catalog
            .get(custom::GROUP, "v1", custom::PLURAL)
            .ok_or_else(|| ApiError::internal("CustomResourceDefinitions are not served"))?;
        let address = ObjectAddress {
            resource: definitions,
            namespace: None,
            name: name.to_owned(),
        };
        let definition = match self.get(&address).await {
            Ok(definition) => definition,
            Err(err) if err.reason == "NotFound" => return Ok(Progress::Done),
            Err(err) => return Err(err),
        };
        if !is_deleting(&definition)
            || !finalizers(&definition)
                .iter()
                .any(|f| f == CLEANUP_FINALIZER)
        {
            return Ok(Progress::Done);
        }
        let uid = object::meta_str(&definition, "uid").to_owned();
        let group = object::path_str(&definition, "spec.group").to_owned();
        let plural = object::path_str(&definition, "spec.names.plural").to_owned();
        let resource = catalog
            .by_resource(&group, &plural)
            .filter(|r| r.custom.as_ref().is_some_and(|c| c.crd_name == name));
        let prefix = registry_prefix(&group, &plural, None);
        let mut budget = budget;
        let mut remaining = 0usize;
        let mut exhausted = false;
        let mut start_after = None;
        loop {
            let page = self
                .storage
                .list(ListRequest {
                    prefix: prefix.clone(),
                    start_after: start_after.clone(),
                    limit: Some(PAGE),
                    revision: None,
                })
                .await?;
            for kv in &page.items {
                let current = decode(kv)?;
                if is_deleting(&current) {
                    remaining += 1;
                    continue;
                }
                if budget == 0 {
                    exhausted = true;
                    remaining += 1;
                    continue;
                }
                budget -= 1;
                let Some(resource) = &resource else {
                    // Never served (names not accepted): nothing can act on
                    // these objects, so they go as they are.
                    match self.storage.delete(&kv.key, Some(kv.mod_revision)).await {
                        Ok(_) => continue,
                        Err(_) => {
                            remaining += 1;
                            continue;
                        }
                    }
                };
                let namespace = object::namespace(&current);
                let item = ObjectAddress {
                    resource: resource.clone(),
                    namespace: resource.namespaced.then(|| namespace.to_owned()),
                    name: object::name(&current).to_owned(),
                };
                let options = DeleteOptions {
                    uid: Some(object::meta_str(&current, "uid").to_owned()),
                    propagation: Some(Propagation::Background),
                    ..DeleteOptions::default()
                };
                match self.delete(&item, &options).await {
                    Ok(after) if !is_deleting(&after) => {}
                    Err(err) if err.reason == "NotFound" => {}
                    Ok(_) => remaining += 1,
                    Err(err) if err.reason == "Conflict" => remaining += 1,
                    Err(err) => return Err(err),
                }
            }
            if page.remaining == 0 {
                break;
            }
            start_after = page.items.last().map(|kv| kv.key.clone());
        }
        if remaining > 0 {
            return Ok(if exhausted {
                Progress::More
            } else {
                Progress::Waiting
            });
        }
        self.modify(&address, Some(&uid), |definition| {
            let list = finalizers(definition);
            if !list.iter().any(|f| f == CLEANUP_FINALIZER) {
                return false;
            }
            set_finalizers(
                definition,
                list.into_iter()
                    .filter(|f| f != CLEANUP_FINALIZER)
                    .collect(),
            );
            if let Some(conditions) = definition
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
            {
                for condition in conditions.iter_mut() {
                    if condition.get("type").and_then(Value::as_str) == Some("Terminating") {
                        condition["reason"] = json!("InstanceDeletionCompleted");
                        condition["message"] = json!("removed all instances");
                    }
                }
            }
            true
        })
        .await?;
        Ok(Progress::Done)
    }
}
