//! The deletion lifecycle, as upstream's store runs it: graceful deletion
//! (for kinds whose strategy asks for it), finalizers that hold an object
//! until they are gone, and the garbage collector's propagation finalizers.

use std::sync::Arc;

use serde_json::{json, Value};

use super::prepare::*;
use super::*;
use crate::error::FieldCause;
use crate::resources::custom;

/// Options of a delete (query parameters and the `DeleteOptions` body).
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `preconditions.uid`: delete only this incarnation.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`: delete only this version.
    pub resource_version: Option<String>,
    /// `gracePeriodSeconds`: how long a pod may take to stop (pods only;
    /// default: the pod's `terminationGracePeriodSeconds`).
    pub grace_period_seconds: Option<i64>,
    /// `propagationPolicy` (or the older `orphanDependents`): what happens
    /// to the objects this one owns. `None`: the object's own finalizers
    /// decide, else Background.
    pub propagation: Option<Propagation>,
    /// Who asks and where admission's warnings go.
    pub context: RequestContext,
}

/// What a delete does to the dependents of the deleted object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes at once; the garbage collector deletes dependents
    /// afterwards.
    Background,
    /// The owner waits (`foregroundDeletion` finalizer) until dependents
    /// with `blockOwnerDeletion` are gone.
    Foreground,
    /// Dependents are kept and lose their owner reference (`orphan`
    /// finalizer) before the owner goes.
    Orphan,
}

impl Propagation {
    /// Parses `propagationPolicy`; unknown values are 422, as upstream.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(ApiError::invalid(
                "DeleteOptions",
                "",
                vec![FieldCause::not_supported(
                    "propagationPolicy",
                    other,
                    &["Foreground", "Background", "Orphan"],
                )],
            )),
        }
    }
}

impl Registry {
    /// Deletes an object. Returns it as it was when removed at once, or as
    /// it is now when only marked for deletion (finalizers pending, a
    /// graceful pod deletion, a namespace or CRD being emptied).
    pub async fn delete(
        &self,
        address: &ObjectAddress,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        if address.resource.is("", "namespaces")
            && SYSTEM_NAMESPACES.contains(&address.name.as_str())
        {
            return Err(ApiError::forbidden(format!(
                "namespaces {:?} is forbidden: this namespace may not be deleted",
                address.name
            )));
        }
        if address.resource.is("scheduling.k8s.io", "priorityclasses")
            && crate::resources::kinds::SYSTEM_PRIORITY_CLASSES
                .iter()
                .any(|(name, _, _)| *name == address.name)
        {
            return Err(ApiError::forbidden(format!(
                "priorityclasses.scheduling.k8s.io {:?} is forbidden: this is a system priority class and cannot be deleted",
                address.name
            ))
            .with_target("scheduling.k8s.io", "priorityclasses", &address.name));
        }
        let precondition = match options.resource_version.as_deref() {
            None | Some("") => None,
            Some(rv) => Some(parse_resource_version(rv)?),
        };
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = self.read(address).await?;
            let old = self.presented(&address.resource, decode(&current)?).await?;
            if let Some(uid) = options.uid.as_deref() {
                let actual = object::meta_str(&old, "uid");
                if uid != actual {
                    return Err(ApiError::conflict(
                        &address.resource.group,
                        &address.resource.plural,
                        &address.name,
                        format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                    ));
                }
            }
            if let Some(expected) = precondition {
                if expected != current.mod_revision {
                    return Err(ApiError::conflict(
                        &address.resource.group,
                        &address.resource.plural,
                        &address.name,
                        format!("Precondition failed: ResourceVersion in precondition: {expected}, ResourceVersion in object meta: {}", current.mod_revision),
                    ));
                }
            }
            let attributes = Attributes {
                resource: &address.resource,
                namespace: address.namespace.as_deref(),
                subresource: None,
                operation: Operation::Delete,
                dry_run: options.dry_run,
                old: Some(&old),
                context: &options.context,
            };
            self.admit_mutating(&attributes, &mut Value::Null).await?;
            self.admit_validating(&attributes, &Value::Null).await?;
            let plan = if address.resource.is("", "namespaces") {
                namespaces::plan_delete(&old)
            } else if is_crd(&address.resource) {
                crds::plan_delete(&old, &self.catalog())
            } else {
                plan_delete(&address.resource, &old, options)
            };
            let outcome = match plan {
                DeletePlan::Pending => return Ok(old),
                DeletePlan::Now if options.dry_run => return Ok(old),
                DeletePlan::Mark(new) if options.dry_run => return Ok(new),
                DeletePlan::Now => self.remove(address, &current, &old).await,
                DeletePlan::Mark(new) => self.write_marked(address, &current, new).await,
            };
            match outcome {
                Err(err) if err.reason == "Conflict" => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(
            &address.resource.group,
            &address.resource.plural,
            &address.name,
            "too many concurrent writers; try again",
        ))
    }

    /// Stores an object marked for deletion (compare-and-swap on the
    /// revision it was read at).
    pub(super) async fn write_marked(
        &self,
        address: &ObjectAddress,
        current: &KeyValue,
        mut new: Value,
    ) -> Result<Value, ApiError> {
        let kv = self
            .storage
            .update(
                &address.key(),
                encode_for(
                    &address.resource,
                    &self.storage_form(&address.resource, &new).await?,
                )?,
                current.mod_revision,
            )
            .await
            .map_err(|err| address.storage_error(err))?;
        object::set_resource_version(&mut new, kv.mod_revision);
        self.written(&address.resource, &new);
        Ok(new)
    }

    /// Removes an object from storage for good, if it is still at the
    /// revision it was read at; releases what it held (service IPs, a
    /// CRD's resource). Returns `last` as the deleted object.
    pub(super) async fn remove(
        &self,
        address: &ObjectAddress,
        current: &KeyValue,
        last: &Value,
    ) -> Result<Value, ApiError> {
        // A CRD's resource stops being served before the CRD is gone, so
        // nobody sees the CRD gone and its resource still served.
        if is_crd(&address.resource) {
            self.catalog
                .update(|catalog| custom::uninstall(catalog, &address.name));
        }
        let deleted = self
            .storage
            .delete(&address.key(), Some(current.mod_revision))
            .await;
        self.admission_changed(&address.resource);
        if let Err(err) = deleted {
            if is_crd(&address.resource) {
                if let Ok(stored) = decode(current) {
                    self.written(&address.resource, &stored);
                }
            }
            return Err(address.storage_error(err));
        }
        self.services.release(&address.resource, last).await;
        Ok(last.clone())
    }

    /// Deletes every object a list with `list` would return; returns them.
    pub async fn delete_collection(
        &self,
        resource: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        list: &ListOptions,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let page = self
            .list(
                resource,
                namespace,
                &ListOptions {
                    limit: None,
                    continue_token: None,
                    ..list.clone()
                },
            )
            .await?;
        let mut deleted = Vec::with_capacity(page.items.len());
        for item in page.items {
            let address = ObjectAddress {
                resource: resource.clone(),
                namespace: resource
                    .namespaced
                    .then(|| object::namespace(&item).to_owned()),
                name: object::name(&item).to_owned(),
            };
            match self.delete(&address, options).await {
                Ok(object) => deleted.push(object),
                // Deleted by someone else meanwhile: the goal is met.
                Err(err) if err.reason == "NotFound" => {}
                Err(err) => return Err(err),
            }
        }
        Ok(deleted)
    }
}

/// What a delete request does to an object.
#[derive(Debug)]
pub(crate) enum DeletePlan {
    /// Remove it from storage now.
    Now,
    /// Store this version (deletionTimestamp, finalizers) and keep it.
    Mark(Value),
    /// Already being deleted, nothing to change: answer with it as it is.
    Pending,
}

pub(super) fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
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

pub(super) fn set_finalizers(object: &mut Value, list: Vec<String>) {
    let meta = object::metadata_mut(object);
    if list.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(list));
    }
}

pub(super) fn is_deleting(object: &Value) -> bool {
    !object::meta_str(object, "deletionTimestamp").is_empty()
}

pub(super) fn grace_of(object: &Value) -> Option<i64> {
    object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
}

/// `now + seconds`, in the format of every other timestamp.
pub(super) fn timestamp_in(seconds: i64) -> String {
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    format!("{}", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

/// The finalizers an object gets from a delete's propagation policy
/// (upstream's `deletionFinalizersForGarbageCollection`).
pub(super) fn gc_finalizers(current: &[String], propagation: Option<Propagation>) -> Vec<String> {
    let first_gc = current
        .iter()
        .find(|f| *f == ORPHAN_FINALIZER || *f == FOREGROUND_FINALIZER)
        .map(String::as_str);
    let (orphan, foreground) = match propagation {
        Some(Propagation::Orphan) => (true, false),
        Some(Propagation::Foreground) => (false, true),
        Some(Propagation::Background) => (false, false),
        None => (
            first_gc == Some(ORPHAN_FINALIZER),
            first_gc == Some(FOREGROUND_FINALIZER),
        ),
    };
    let mut out: Vec<String> = current
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        out.push(ORPHAN_FINALIZER.to_owned());
    }
    if foreground {
        out.push(FOREGROUND_FINALIZER.to_owned());
    }
    out
}

/// Marks an object as being deleted now with no grace (upstream's
/// `markAsDeleting`).
pub(super) fn mark_deleting(object: &mut Value) {
    let first = !is_deleting(object);
    let meta = object::metadata_mut(object);
    if first {
        if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
            meta.insert("generation".into(), json!(generation + 1));
        }
        meta.insert("deletionTimestamp".into(), json!(object::now_rfc3339()));
    }
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// Decides what a delete does (upstream's `BeforeDelete` with the pod
/// strategy, and the store's finalizer handling).
pub(super) fn plan_delete(
    resource: &ResourceInfo,
    old: &Value,
    options: &DeleteOptions,
) -> DeletePlan {
    let mut new = old.clone();
    let deleting = is_deleting(old);
    // Graceful deletion, for the kinds whose strategy asks for it (pods).
    let mut graceful = None;
    if let Some(period) = resource
        .strategy
        .grace_period(old, options.grace_period_seconds)
    {
        let requested = options
            .grace_period_seconds
            .map(|g| if g < 0 { 1 } else { g });
        if deleting {
            match grace_of(old) {
                None | Some(0) => {}
                Some(current) => match requested {
                    // Only a shorter grace period may be asked for.
                    Some(shorter) if shorter < current => {
                        let meta = object::metadata_mut(&mut new);
                        meta.insert("deletionTimestamp".into(), json!(timestamp_in(shorter)));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(shorter));
                        graceful = Some(shorter);
                    }
                    _ => return DeletePlan::Pending,
                },
            }
        } else {
            let meta = object::metadata_mut(&mut new);
            meta.insert("deletionTimestamp".into(), json!(timestamp_in(period)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(period));
            if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
                meta.insert("generation".into(), json!(generation + 1));
            }
            graceful = Some(period);
        }
    }
    let current = finalizers(old);
    let has_gc_finalizer = current
        .iter()
        .any(|f| f == ORPHAN_FINALIZER || f == FOREGROUND_FINALIZER);
    let propagation =
        options.propagation.or(
            (resource.strategy.orphans_by_default() && !has_gc_finalizer)
                .then_some(Propagation::Orphan),
        );
    let finals = gc_finalizers(&current, propagation);
    let pending = !finals.is_empty();
    set_finalizers(&mut new, finals);
    match graceful {
        None if pending => {
            mark_deleting(&mut new);
            if new == *old {
                DeletePlan::Pending
            } else {
                DeletePlan::Mark(new)
            }
        }
        None => DeletePlan::Now,
        Some(period) if pending || period > 0 => DeletePlan::Mark(new),
        Some(_) => DeletePlan::Now,
    }
}

/// Whether an update removed the last finalizer of an object whose
/// deletion has no grace period left: it must go (upstream's
/// `shouldDeleteDuringUpdate`). Namespaces also need their
/// `spec.finalizers` empty.
pub(super) fn finalized(resource: &ResourceInfo, old: &Value, new: &Value) -> bool {
    if !is_deleting(old) || !finalizers(new).is_empty() || grace_of(old).unwrap_or(0) != 0 {
        return false;
    }
    resource.strategy.ready_to_remove(new)
}

/// No finalizer may be added to an object being deleted (422, as
/// upstream's `ValidateNoNewFinalizers`).
pub(super) fn check_finalizers(
    resource: &ResourceInfo,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if !is_deleting(old) {
        return Ok(());
    }
    let before = finalizers(old);
    let mut added: Vec<String> = finalizers(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    added.sort();
    added.dedup();
    let listed: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
    Err(ApiError::invalid(
        &resource.kind,
        object::name(new),
        vec![FieldCause {
            reason: "FieldValueForbidden",
            field: "metadata.finalizers".into(),
            message: format!(
                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                listed.join(", ")
            ),
        }],
    ))
}
