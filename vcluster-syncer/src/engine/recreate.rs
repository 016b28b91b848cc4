//! Re-creating a virtual object whose immutable fields must change (a
//! service's cluster IP), without losing the object or its field managers
//! when the replacement is refused.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::Patch;
use kube::Resource;
use serde_json::{json, Value};
use vcluster_core::VirtualKey;

use super::Inner;
use crate::error::{Side, SyncError};
use crate::syncer::Syncer;
use vcluster_core::FieldManager;

impl<S: Syncer> Inner<S> {
    pub(super) async fn recreate_virtual(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
        replacement: Value,
    ) -> Result<(), SyncError> {
        let typed: S::Object =
            serde_json::from_value(replacement).map_err(|e| SyncError::Invalid {
                kind: self.syncer.name(),
                key: key.clone(),
                message: format!("replacement object does not decode: {e}"),
            })?;
        let api = self.virtual_api(key.namespace());
        // The caches hold no managedFields (see `slim`): read the tenant's
        // field ownership live, so it survives the re-create and their
        // next server-side apply does not conflict with the syncer.
        let managed_fields = match api.get_opt(key.name()).await {
            Ok(Some(live)) if live.meta().uid == virt.meta().uid => {
                live.meta().managed_fields.clone()
            }
            _ => None,
        };
        self.delete_virtual(key, virt).await?;
        match api
            .create(&FieldManager::SYNCER.post_params(), &typed)
            .await
        {
            Ok(created) => {
                self.restore_field_managers(key, &created, managed_fields)
                    .await;
                Ok(())
            }
            Err(err) => Err(self.restore_virtual(key, virt, managed_fields, err).await),
        }
    }

    /// Gives a re-created virtual object the field managers of the one it
    /// replaced: an update that changes only `managedFields` stores them as
    /// sent. A failure is only logged; the object itself is in place.
    async fn restore_field_managers(
        &self,
        key: &VirtualKey,
        created: &S::Object,
        managed_fields: Option<Vec<ManagedFieldsEntry>>,
    ) {
        let Some(managed_fields) = managed_fields else {
            return;
        };
        let restore = json!({"metadata": {
            "managedFields": managed_fields,
            "resourceVersion": created.meta().resource_version,
        }});
        if let Err(err) = self
            .virtual_api(key.namespace())
            .patch(
                key.name(),
                &FieldManager::SYNCER.patch_params(),
                &Patch::Merge(&restore),
            )
            .await
        {
            tracing::warn!(%key, error = %err, "re-created, but its field managers could not be restored");
        }
    }

    /// Puts the original back after its replacement was refused, and says
    /// why the re-create failed.
    async fn restore_virtual(
        &self,
        key: &VirtualKey,
        virt: &S::Object,
        managed_fields: Option<Vec<ManagedFieldsEntry>>,
        err: kube::Error,
    ) -> SyncError {
        let api = self.virtual_api(key.namespace());
        // The replacement was refused after the original was deleted (an
        // address taken meanwhile, say): put the original back rather than
        // lose the tenant's object; the next reconcile tries again.
        let mut original = virt.clone();
        let meta = original.meta_mut();
        meta.uid = None;
        meta.resource_version = None;
        meta.creation_timestamp = None;
        meta.managed_fields = None;
        meta.generation = None;
        match api
            .create(&FieldManager::SYNCER.post_params(), &original)
            .await
        {
            Ok(restored) => {
                self.restore_field_managers(key, &restored, managed_fields)
                    .await
            }
            Err(restore) => {
                tracing::error!(%key, error = %restore, "could not restore the virtual object after a failed re-create");
            }
        }
        self.api_error(key, "create (recreate)", Side::Virtual, err)
    }
}
