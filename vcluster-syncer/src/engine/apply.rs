//! Carrying the syncer's decisions out. Every write has a precondition:
//! patches carry the resourceVersion they were computed from, deletes the
//! uid of the object they were decided for.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, Preconditions};
use kube::Resource;
use serde_json::{json, Value};
use vcluster_core::{HostKey, VirtualKey};

use super::reconcile::in_step;
use super::{Inner, Outcome};
use crate::error::{has_code, Side, SyncError};
use crate::memory::{Memory, Written};
use crate::syncer::{Action, HostOnly, Syncer, VirtualOnly};
use vcluster_core::FieldManager;

/// Which cluster a delete goes to, and what its precondition names.
pub(super) struct Target<'a> {
    pub(super) side: Side,
    pub(super) namespace: Option<&'a str>,
    pub(super) name: &'a str,
    /// The uid of the object the delete was decided for: a namesake
    /// created since is never deleted in its place.
    pub(super) uid: Option<String>,
}

impl<S: Syncer> Inner<S> {
    pub(super) async fn apply_virtual_only(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        virt: &S::Object,
        memory: Option<Memory>,
        decision: VirtualOnly<S::Object>,
    ) -> Result<Outcome, SyncError> {
        match decision {
            VirtualOnly::CreateHost(object) => {
                let api = self.host_api(host_key.namespace());
                match api
                    .create(&FieldManager::SYNCER.post_params(), &object)
                    .await
                {
                    Ok(created) => {
                        self.metrics.wrote();
                        self.remember_created(key, virt, &created).await;
                        Ok(Outcome::Done)
                    }
                    Err(err) if has_code(&err, 409) => {
                        self.name_taken(key, host_key, virt, memory).await
                    }
                    Err(err) => Err(self.api_error(key, "create", Side::Host, err)),
                }
            }
            VirtualOnly::DeleteVirtual => {
                self.delete_virtual(key, virt).await?;
                Ok(Outcome::Done)
            }
            VirtualOnly::Wait(delay, reason) => {
                tracing::debug!(%key, %reason, "waiting");
                Ok(Outcome::RequeueAfter(delay))
            }
            VirtualOnly::Blocked(blocked) => {
                self.report_blocked(key, virt, &blocked).await?;
                Ok(match blocked.retry_after {
                    Some(delay) => Outcome::RequeueAfter(delay),
                    None => Outcome::Done,
                })
            }
            VirtualOnly::Skip => Ok(Outcome::Done),
        }
    }

    /// Remembers the virtual object a host copy was made from as the state
    /// later changes are compared with: the pair is in step until either
    /// side changes.
    pub(super) async fn remember_created(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
        host: &S::Object,
    ) {
        let namespace_labels = self.syncer.namespace_labels(&self.ctx, virt).await;
        self.memory.insert(
            key.clone(),
            Memory {
                host_seen: true,
                labels: virt.meta().labels.clone().unwrap_or_default(),
                annotations: virt.meta().annotations.clone().unwrap_or_default(),
                in_step: Some(in_step(virt, host, namespace_labels.as_ref())),
                written: Written::default(),
            },
        );
    }

    pub(super) async fn apply_host_only(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        host: &S::Object,
        decision: HostOnly<S::Object>,
    ) -> Result<Outcome, SyncError> {
        match decision {
            HostOnly::DeleteHost {
                grace_period_seconds,
            } => {
                let target = Target {
                    side: Side::Host,
                    namespace: host_key.namespace(),
                    name: host_key.name(),
                    uid: host.meta().uid.clone(),
                };
                self.delete(key, target, grace_period_seconds).await?;
                self.memory.remove(key);
                Ok(Outcome::Done)
            }
            HostOnly::CreateVirtual(object) => {
                match self
                    .virtual_api(key.namespace())
                    .create(&FieldManager::SYNCER.post_params(), &object)
                    .await
                {
                    Ok(_) => self.metrics.wrote(),
                    Err(err) if has_code(&err, 409) => {
                        return Ok(Outcome::RequeueAfter(Duration::from_millis(500)))
                    }
                    Err(err) => return Err(self.api_error(key, "create", Side::Virtual, err)),
                }
                Ok(Outcome::Done)
            }
            HostOnly::Skip => Ok(Outcome::Done),
        }
    }

    /// Deletes the virtual object `virt` at once (grace period 0) and
    /// forgets the key.
    pub(super) async fn delete_virtual(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
    ) -> Result<(), SyncError> {
        let target = Target {
            side: Side::Virtual,
            namespace: key.namespace(),
            name: key.name(),
            uid: virt.meta().uid.clone(),
        };
        self.delete(key, target, Some(0)).await?;
        self.memory.remove(key);
        Ok(())
    }

    /// The engine's one delete: uid-preconditioned, an object already gone
    /// is no error, and a delete that happened counts as a write.
    pub(super) async fn delete(
        &self,
        key: &VirtualKey,
        target: Target<'_>,
        grace_period_seconds: Option<u32>,
    ) -> Result<(), SyncError> {
        let params = DeleteParams {
            grace_period_seconds,
            preconditions: Some(Preconditions {
                uid: target.uid,
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let api = match target.side {
            Side::Host => self.host_api(target.namespace),
            Side::Virtual => self.virtual_api(target.namespace),
        };
        match api.delete(target.name, &params).await {
            Ok(_) => {
                self.metrics.wrote();
                Ok(())
            }
            Err(err) if has_code(&err, 404) => Ok(()),
            Err(err) => Err(self.api_error(key, "delete", target.side, err)),
        }
    }

    /// Executes the syncer's actions in order. Patches carry the
    /// resourceVersion they were computed from, so stale data means 409.
    pub(super) async fn apply_actions(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        virt: &S::Object,
        host: &S::Object,
        actions: Vec<Action>,
        written: &mut Written,
    ) -> Result<(), SyncError> {
        let params = FieldManager::SYNCER.patch_params();
        let host_before = host.meta().resource_version.as_deref();
        let virtual_before = virt.meta().resource_version.as_deref();
        let version = |object: &S::Object| object.meta().resource_version.clone();
        let host_api = self.host_api(host_key.namespace());
        let virtual_api = self.virtual_api(key.namespace());
        for action in actions {
            // Deletes count themselves (only when something was deleted).
            let counted = matches!(action, Action::DeleteVirtual | Action::DeleteHost);
            let result = match action {
                Action::PatchHost(patch) => host_api
                    .patch(host_key.name(), &params, &Patch::Merge(pinned(patch, host)))
                    .await
                    .map(|o| Written::note(&mut written.host, host_before, version(&o).as_deref()))
                    .map_err(|e| self.api_error(key, "patch", Side::Host, e)),
                Action::JsonPatchHost(ops) => {
                    let ops = with_version_test(ops, host);
                    let patch: json_patch::Patch =
                        serde_json::from_value(ops).map_err(|e| SyncError::Invalid {
                            kind: self.syncer.name(),
                            key: key.clone(),
                            message: format!("the syncer built an invalid JSON patch: {e}"),
                        })?;
                    host_api
                        .patch(host_key.name(), &params, &Patch::<()>::Json(patch))
                        .await
                        .map(|o| {
                            Written::note(&mut written.host, host_before, version(&o).as_deref())
                        })
                        .map_err(|e| self.api_error(key, "patch", Side::Host, e))
                }
                Action::PatchHostStatus(patch) => host_api
                    .patch_status(host_key.name(), &params, &Patch::Merge(pinned(patch, host)))
                    .await
                    .map(|o| Written::note(&mut written.host, host_before, version(&o).as_deref()))
                    .map_err(|e| self.api_error(key, "patch status", Side::Host, e)),
                Action::PatchHostSubresource { subresource, patch } => host_api
                    .patch_subresource(
                        subresource,
                        host_key.name(),
                        &params,
                        &Patch::Merge(pinned(patch, host)),
                    )
                    .await
                    .map(|o| Written::note(&mut written.host, host_before, version(&o).as_deref()))
                    .map_err(|e| self.api_error(key, "patch subresource", Side::Host, e)),
                Action::PatchVirtual(patch) => virtual_api
                    .patch(key.name(), &params, &Patch::Merge(pinned(patch, virt)))
                    .await
                    .map(|o| {
                        Written::note(
                            &mut written.virtual_object,
                            virtual_before,
                            version(&o).as_deref(),
                        )
                    })
                    .map_err(|e| self.api_error(key, "patch", Side::Virtual, e)),
                Action::PatchVirtualStatus(patch) => virtual_api
                    .patch_status(key.name(), &params, &Patch::Merge(pinned(patch, virt)))
                    .await
                    .map(|o| {
                        Written::note(
                            &mut written.virtual_object,
                            virtual_before,
                            version(&o).as_deref(),
                        )
                    })
                    .map_err(|e| self.api_error(key, "patch status", Side::Virtual, e)),
                Action::CreateVirtualSubresource { subresource, body } => virtual_api
                    .create_subresource::<Value, Value>(
                        subresource,
                        key.name(),
                        &FieldManager::SYNCER.post_params(),
                        &body,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| self.api_error(key, "create subresource", Side::Virtual, e)),
                Action::RecreateVirtual(replacement) => {
                    self.recreate_virtual(key, virt, replacement).await
                }
                Action::DeleteVirtual => self.delete_virtual(key, virt).await,
                Action::DeleteHost => {
                    let target = Target {
                        side: Side::Host,
                        namespace: host_key.namespace(),
                        name: host_key.name(),
                        uid: host.meta().uid.clone(),
                    };
                    self.delete(key, target, None).await
                }
            };
            result?;
            if !counted {
                self.metrics.wrote();
            }
        }
        Ok(())
    }
}

/// Prefixes JSON patch operations with a test of the object's
/// resourceVersion, the JSON patch form of a precondition.
fn with_version_test<K: Resource>(ops: Value, base: &K) -> Value {
    let mut all = Vec::new();
    if let Some(rv) = base.meta().resource_version.as_ref() {
        all.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}));
    }
    if let Value::Array(ops) = ops {
        all.extend(ops);
    }
    Value::Array(all)
}

/// Adds the object's resourceVersion to a merge patch: the write then only
/// succeeds against the version the patch was computed from.
fn pinned<K: Resource>(mut patch: Value, base: &K) -> Value {
    if let (Some(map), Some(rv)) = (patch.as_object_mut(), base.meta().resource_version.as_ref()) {
        let metadata = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("resourceVersion".into(), json!(rv));
        }
    }
    patch
}
