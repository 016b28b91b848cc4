//! Namespace lifecycle, as upstream's namespace registry and controller
//! do it: deleting a namespace only marks it (`deletionTimestamp`,
//! `status.phase: Terminating`); creates in it are refused from then on;
//! the garbage collector task ([`super::gc`]) empties it pass by pass,
//! honouring the finalizers of its contents, records its progress in the
//! namespace's status conditions, and removes the namespace once nothing
//! is left and its `kubernetes` finalizer is done.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use super::{
    decode, finalizers, is_deleting, DeleteOptions, DeletePlan, ObjectAddress, Propagation,
    Registry,
};
use crate::error::ApiError;
use crate::object;
use crate::resources::ResourceInfo;
use crate::storage::ListRequest;

/// The finalizer upstream's namespace controller owns in `spec.finalizers`.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// Objects listed per storage page while emptying a namespace.
const PAGE: usize = 256;

/// How far one pass of cleaning up a namespace or a CRD got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Nothing left to do: the object is gone, or not being deleted.
    Done,
    /// Waiting for objects that are being deleted (finalizers, graceful
    /// pods); look again later.
    Waiting,
    /// The pass ran out of budget: run another one soon.
    More,
}

/// Whether a namespace is being deleted.
pub fn is_terminating(namespace: &Value) -> bool {
    is_deleting(namespace) || object::path_str(namespace, "status.phase") == "Terminating"
}

fn spec_finalizers(namespace: &Value) -> Vec<String> {
    namespace
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What deleting a namespace does: the first delete marks it Terminating;
/// later ones answer with it until its finalizers are done, and remove it
/// then.
pub(super) fn plan_delete(old: &Value) -> DeletePlan {
    if is_deleting(old) {
        return if spec_finalizers(old).is_empty() && finalizers(old).is_empty() {
            DeletePlan::Now
        } else {
            DeletePlan::Pending
        };
    }
    let mut new = old.clone();
    object::metadata_mut(&mut new).insert("deletionTimestamp".into(), json!(object::now_rfc3339()));
    if !new.get("status").is_some_and(Value::is_object) {
        new["status"] = json!({});
    }
    new["status"]["phase"] = json!("Terminating");
    DeletePlan::Mark(new)
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": object::now_rfc3339(),
    })
}

/// The conditions upstream's namespace controller reports while it
/// deletes a namespace's contents.
fn conditions(
    remaining: &BTreeMap<String, usize>,
    finalizers: &BTreeMap<String, usize>,
    failures: &[String],
) -> Vec<Value> {
    let listed = |counts: &BTreeMap<String, usize>, sep: &str| {
        counts
            .iter()
            .map(|(what, n)| format!("{what}{sep}{n} resource instances"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        if failures.is_empty() {
            condition(
                "NamespaceDeletionContentFailure",
                false,
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            )
        } else {
            condition(
                "NamespaceDeletionContentFailure",
                true,
                "ContentDeletionFailed",
                &format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    failures.len(),
                    failures.join(", ")
                ),
            )
        },
        if remaining.is_empty() {
            condition(
                "NamespaceContentRemaining",
                false,
                "ContentRemoved",
                "All content successfully removed",
            )
        } else {
            condition(
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain",
                &format!(
                    "Some resources are remaining: {}",
                    listed(remaining, " has ")
                ),
            )
        },
        if finalizers.is_empty() {
            condition(
                "NamespaceFinalizersRemaining",
                false,
                "ContentHasNoFinalizers",
                "All content-preserving finalizers finished",
            )
        } else {
            condition(
                "NamespaceFinalizersRemaining",
                true,
                "SomeFinalizersRemain",
                &format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    listed(finalizers, " in ")
                ),
            )
        },
    ]
}

/// How the namespace controller's counts name core pods.
const PODS: &str = "pods.";

fn is_pods(resource: &ResourceInfo) -> bool {
    resource.group.is_empty() && resource.plural == "pods"
}

/// Conditions compared without their timestamps.
fn same_conditions(old: Option<&Value>, new: &[Value]) -> bool {
    let strip = |c: &Value| {
        let mut c = c.clone();
        if let Some(map) = c.as_object_mut() {
            map.remove("lastTransitionTime");
        }
        c
    };
    let old: Vec<Value> = old
        .and_then(Value::as_array)
        .map(|items| items.iter().map(strip).collect())
        .unwrap_or_default();
    old == new.iter().map(strip).collect::<Vec<_>>()
}

impl Registry {
    /// One bounded pass over a namespace being deleted: deletes what is in
    /// it (at most `budget` delete calls, Background propagation, as
    /// upstream's namespace controller), and when nothing is left removes
    /// the `kubernetes` finalizer and the namespace itself.
    pub async fn namespace_cleanup_pass(
        &self,
        name: &str,
        budget: usize,
    ) -> Result<Progress, ApiError> {
        let catalog = self.catalog();
        let namespaces = catalog
            .get("", "v1", "namespaces")
            .ok_or_else(|| ApiError::internal("the namespaces resource is not served"))?;
        let address = ObjectAddress {
            resource: namespaces,
            namespace: None,
            name: name.to_owned(),
        };
        let namespace = match self.get(&address).await {
            Ok(namespace) => namespace,
            Err(err) if err.reason == "NotFound" => return Ok(Progress::Done),
            Err(err) => return Err(err),
        };
        if !is_deleting(&namespace) {
            return Ok(Progress::Done);
        }
        let uid = object::meta_str(&namespace, "uid").to_owned();
        let mut budget = budget;
        let mut exhausted = false;
        let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
        let mut held: BTreeMap<String, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        let mut seen = HashSet::new();
        // Pods first, and nothing else while any remains (upstream's
        // OrderedNamespaceDeletion): a terminating pod still has its
        // config maps, secrets and service account.
        let mut namespaced: Vec<_> = catalog.iter().filter(|r| r.namespaced).collect();
        namespaced.sort_by_key(|r| !is_pods(r));
        for info in namespaced {
            if !is_pods(info) && remaining.keys().any(|what| what == PODS) {
                break;
            }
            // Each storage once: several versions of a custom resource,
            // and both events APIs, share one.
            let prefix = info.storage_prefix(Some(name));
            if !seen.insert(prefix.clone()) {
                continue;
            }
            let Some(resource) = catalog.by_resource(&info.group, &info.plural) else {
                continue;
            };
            let label = format!("{}.{}", resource.plural, resource.group);
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
                    let mut current = decode(kv)?;
                    if !is_deleting(&current) {
                        if budget == 0 {
                            exhausted = true;
                        } else {
                            budget -= 1;
                            let item = ObjectAddress {
                                resource: resource.clone(),
                                namespace: Some(name.to_owned()),
                                name: object::name(&current).to_owned(),
                            };
                            let options = DeleteOptions {
                                uid: Some(object::meta_str(&current, "uid").to_owned()),
                                propagation: Some(Propagation::Background),
                                ..DeleteOptions::default()
                            };
                            match self.delete(&item, &options).await {
                                // Removed at once: the answer is its last
                                // state, not marked.
                                Ok(after) if !is_deleting(&after) => continue,
                                Ok(after) => current = after,
                                Err(err) if err.reason == "NotFound" => continue,
                                Err(err) if err.reason == "Conflict" => {}
                                Err(err) => failures
                                    .push(format!("{label} {:?}: {}", item.name, err.message)),
                            }
                        }
                    }
                    *remaining.entry(label.clone()).or_default() += 1;
                    for finalizer in finalizers(&current) {
                        *held.entry(finalizer).or_default() += 1;
                    }
                }
                if page.remaining == 0 {
                    break;
                }
                start_after = page.items.last().map(|kv| kv.key.clone());
            }
        }
        if remaining.is_empty() && failures.is_empty() {
            return self.finish_namespace(&address, &uid).await;
        }
        let wanted = conditions(&remaining, &held, &failures);
        if !same_conditions(namespace.pointer("/status/conditions"), &wanted) {
            self.modify(&address, Some(&uid), |ns| {
                if !ns.get("status").is_some_and(Value::is_object) {
                    ns["status"] = json!({});
                }
                ns["status"]["conditions"] = json!(wanted.clone());
                true
            })
            .await?;
        }
        Ok(if exhausted {
            Progress::More
        } else {
            Progress::Waiting
        })
    }

    /// The namespace is empty: its `kubernetes` finalizer is done, and it
    /// goes unless someone else's finalizers remain.
    async fn finish_namespace(
        &self,
        address: &ObjectAddress,
        uid: &str,
    ) -> Result<Progress, ApiError> {
        let wanted = conditions(&BTreeMap::new(), &BTreeMap::new(), &[]);
        let after = self
            .modify(address, Some(uid), |ns| {
                let mut changed = false;
                let list = spec_finalizers(ns);
                if list.iter().any(|f| f == KUBERNETES_FINALIZER) {
                    let kept: Vec<String> = list
                        .into_iter()
                        .filter(|f| f != KUBERNETES_FINALIZER)
                        .collect();
                    ns["spec"]["finalizers"] = json!(kept);
                    changed = true;
                }
                if !same_conditions(ns.pointer("/status/conditions"), &wanted) {
                    if !ns.get("status").is_some_and(Value::is_object) {
                        ns["status"] = json!({});
                    }
                    ns["status"]["conditions"] = json!(wanted.clone());
                    changed = true;
                }
                changed
            })
            .await?;
        let Some(namespace) = after else {
            return Ok(Progress::Done);
        };
        if !is_deleting(&namespace) || object::meta_str(&namespace, "uid") != uid {
            return Ok(Progress::Done);
        }
        if !spec_finalizers(&namespace).is_empty() || !finalizers(&namespace).is_empty() {
            // Someone else's finalizer: they finish it (an update removing
            // the last one removes the namespace).
            return Ok(Progress::Waiting);
        }
        let options = DeleteOptions {
            uid: Some(uid.to_owned()),
            ..DeleteOptions::default()
        };
        match self.delete(address, &options).await {
            Ok(_) => Ok(Progress::Done),
            Err(err) if err.reason == "NotFound" => Ok(Progress::Done),
            Err(err) => Err(err),
        }
    }

    /// `PUT /api/v1/namespaces/<name>/finalize`: sets `spec.finalizers`
    /// (the only way they change), removing the namespace when it is being
    /// deleted and no finalizer is left.
    pub async fn finalize_namespace(
        &self,
        address: &ObjectAddress,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let wanted = body
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or_else(|| json!([]));
        if !wanted.is_array()
            || wanted
                .as_array()
                .is_some_and(|l| l.iter().any(|f| !f.is_string()))
        {
            return Err(ApiError::bad_request(
                "spec.finalizers must be a list of strings",
            ));
        }
        let outcome = self
            .modify(address, None, |ns| {
                if ns.pointer("/spec/finalizers") == Some(&wanted) {
                    return false;
                }
                if !ns.get("spec").is_some_and(Value::is_object) {
                    ns["spec"] = json!({});
                }
                ns["spec"]["finalizers"] = wanted.clone();
                true
            })
            .await?;
        outcome.ok_or_else(|| address.not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_delete_marks_later_ones_wait_for_the_finalizers() {
        let active = json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let DeletePlan::Mark(marked) = plan_delete(&active) else {
            panic!("marked");
        };
        assert_eq!(marked["status"]["phase"], "Terminating");
        assert!(is_terminating(&marked));
        assert!(matches!(plan_delete(&marked), DeletePlan::Pending));
        let mut finalized = marked.clone();
        finalized["spec"]["finalizers"] = json!([]);
        assert!(matches!(plan_delete(&finalized), DeletePlan::Now));
    }

    #[test]
    fn conditions_name_what_remains() {
        let remaining = BTreeMap::from([("pods.".to_owned(), 2)]);
        let held = BTreeMap::from([("example.com/keep".to_owned(), 1)]);
        let list = conditions(&remaining, &held, &[]);
        assert_eq!(
            list[3]["message"],
            "Some resources are remaining: pods. has 2 resource instances"
        );
        assert_eq!(list[4]["message"], "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances");
        assert!(same_conditions(
            Some(&json!(list.clone())),
            &conditions(&remaining, &held, &[])
        ));
        assert!(!same_conditions(
            Some(&json!(list)),
            &conditions(&BTreeMap::new(), &held, &[])
        ));
    }
}
