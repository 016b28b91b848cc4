//! Revision history of StatefulSets and DaemonSets: one `ControllerRevision`
//! per pod template they have run, as upstream's controllers keep it, so
//! `kubectl rollout history` lists the revisions and `kubectl rollout undo`
//! patches an old template back.
//!
//! A revision is named `<owner>-<template hash>`, carries the template as
//! the strategic merge patch that restores it
//! (`{"spec":{"template":{..., "$patch":"replace"}}}`), the owner's selector
//! labels plus `controller-revision-hash`, and a controller reference to
//! the owner (so garbage collection removes it with the owner). Its number
//! is one more than the highest of the owner's revisions; going back to an
//! old template renumbers that revision to the top instead of creating a
//! new one. Beyond the owner's `revisionHistoryLimit` (10 by default) the
//! oldest revisions not in use are deleted.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, Patch};
use serde_json::json;

use crate::error::{ignore_not_found, ApiContext, Result};
use crate::meta::is_controlled_by;
use vcluster_core::FieldManager;

const KIND: &str = "ControllerRevision";

/// The label with the revision a pod was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// Upstream's default `revisionHistoryLimit` for both kinds.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// The owner's side of its history.
pub struct History<'a> {
    /// The owner's namespace's revisions.
    pub api: Api<ControllerRevision>,
    /// The owner (controller reference).
    pub owner: OwnerReference,
    /// `namespace/name`, for errors.
    pub key: &'a str,
    /// The owner's selector labels (`matchLabels`), put on each revision so
    /// `kubectl rollout history` finds them by the owner's selector.
    pub selector_labels: BTreeMap<String, String>,
    /// How many revisions to keep.
    pub limit: i32,
}

impl History<'_> {
    /// Makes sure `template` is recorded as revision `name` (hash `hash`)
    /// and is the newest; deletes revisions beyond the limit except those
    /// in `in_use`. Returns the revision number.
    pub async fn record(
        &self,
        name: &str,
        hash: &str,
        template: &PodTemplateSpec,
        in_use: &[&str],
    ) -> Result<i64> {
        let mut owned: Vec<ControllerRevision> = self
            .api
            .list(&ListParams::default())
            .await
            .context("list", KIND, self.key)?
            .items
            .into_iter()
            .filter(|r| is_controlled_by(&r.metadata, &self.owner.uid))
            .collect();
        let highest = owned.iter().map(|r| r.revision).max().unwrap_or(0);
        let number = match owned
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
        {
            Some(existing) if existing.revision == highest => existing.revision,
            Some(_) => {
                // Back to an older template: it becomes the newest revision.
                let patch = json!({"revision": highest + 1});
                self.api
                    .patch(
                        name,
                        &FieldManager::CONTROLLERS.patch_params(),
                        &Patch::Merge(&patch),
                    )
                    .await
                    .context("renumber", KIND, self.key)?;
                highest + 1
            }
            None => {
                let created = self
                    .api
                    .create(
                        &FieldManager::CONTROLLERS.post_params(),
                        &self.revision(name, hash, template, highest + 1),
                    )
                    .await;
                match created {
                    Ok(_) => highest + 1,
                    // Made by a reconcile that raced this one.
                    Err(kube::Error::Api(status)) if status.code == 409 => highest + 1,
                    Err(err) => return Err(err).context("create", KIND, self.key),
                }
            }
        };
        if let Some(existing) = owned
            .iter_mut()
            .find(|r| r.metadata.name.as_deref() == Some(name))
        {
            existing.revision = number;
        }
        self.trim(owned, name, in_use).await?;
        Ok(number)
    }

    fn revision(
        &self,
        name: &str,
        hash: &str,
        template: &PodTemplateSpec,
        number: i64,
    ) -> ControllerRevision {
        let mut data = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
        if let Some(map) = data.as_object_mut() {
            map.insert("$patch".into(), json!("replace"));
        }
        let mut labels = self.selector_labels.clone();
        labels.insert(REVISION_LABEL.into(), hash.to_owned());
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels),
                owner_references: Some(vec![self.owner.clone()]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(json!({"spec": {"template": data}}))),
            revision: number,
        }
    }

    /// Deletes the oldest revisions beyond the limit, never `current` nor
    /// those in use.
    async fn trim(
        &self,
        mut owned: Vec<ControllerRevision>,
        current: &str,
        in_use: &[&str],
    ) -> Result<()> {
        let limit = usize::try_from(self.limit.max(0)).unwrap_or(0);
        owned.retain(|r| {
            let name = r.metadata.name.as_deref().unwrap_or_default();
            name != current && !in_use.contains(&name)
        });
        if owned.len() <= limit {
            return Ok(());
        }
        owned.sort_by_key(|r| r.revision);
        let excess = owned.len() - limit;
        for old in owned.into_iter().take(excess) {
            let name = old.metadata.name.unwrap_or_default();
            ignore_not_found(self.api.delete(&name, &DeleteParams::default()).await)
                .context("delete", KIND, self.key)?;
        }
        Ok(())
    }
}
