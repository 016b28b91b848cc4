//! One key at a time: the workers take keys from the queue, look at both
//! stores and ask the syncer what to do.

use std::sync::Arc;

use kube::Resource;
use tracing::Instrument;
use vcluster_core::{GroupVersionKind, HostKey, VirtualKey};

use super::{Inner, Outcome, STORE_LAG_RETRY};
use crate::error::{Side, SyncError};
use crate::labels_annotations;
use crate::memory::{InStep, Memory, Written};
use crate::syncer::{Action, Direction, Syncer, VirtualOnly};

impl<S: Syncer> Inner<S> {
    pub(super) async fn work(self: Arc<Self>) {
        while let Some(item) = self.queue.next().await {
            let key = item.key;
            self.metrics.reconciled(item.waited);
            let span = tracing::debug_span!("reconcile", key = %key);
            // Shutdown does not wait for a reconcile: one stuck on a cluster
            // that stopped answering would hold the engine forever. Dropping
            // it half-way is safe: writes carry preconditions, and the next
            // start reconciles every key.
            let limit = self.config.reconcile_timeout;
            let reconcile = tokio::time::timeout(limit, self.reconcile(&key).instrument(span));
            let result = tokio::select! {
                result = reconcile => result.unwrap_or_else(|_| Err(SyncError::TimedOut {
                    kind: self.syncer.name(),
                    key: key.clone(),
                    after: limit,
                })),
                _ = self.cancel.cancelled() => {
                    self.queue.done(&key);
                    break;
                }
            };
            match result {
                Ok(Outcome::Done) => self.queue.forget(&key),
                Ok(Outcome::RequeueAfter(delay)) => {
                    self.queue.forget(&key);
                    self.queue.add_after(key.clone(), delay);
                }
                Err(err) if err.is_conflict() => {
                    self.metrics.conflict();
                    tracing::debug!(%key, error = %err, "lost a race; retrying");
                    self.queue
                        .add_after(key.clone(), self.config.conflict_delay);
                }
                Err(err) => {
                    self.metrics.error();
                    let delay = self.queue.add_rate_limited(key.clone());
                    tracing::warn!(%key, error = %err, retry_in = ?delay, "sync failed");
                }
            }
            self.queue.done(&key);
        }
    }

    pub(super) async fn reconcile(&self, key: &VirtualKey) -> Result<Outcome, SyncError> {
        let virtual_object = self.virtual_store.get(&self.virtual_ref(key));
        let host_key = self.syncer.host_key(&self.ctx, key)?;
        let host_object = self.host_store.get(&self.host_ref(&host_key));
        if let Some(host) = &host_object {
            if self.syncer.direction() == Direction::ToHost
                && !self.ctx.translator.is_owned_by(host.meta(), key)
            {
                // Someone else's object under the translated name is only
                // a conflict when this object is to be synced: endpoints
                // of a service with a selector, say, are the host's
                // controller's (labelled like the service, so they are
                // in the host store) and the syncer skips them.
                if let Some(virt) = &virtual_object {
                    let memory = self.memory.get(key).map(|m| m.clone());
                    if matches!(
                        self.syncer
                            .virtual_only(&self.ctx, virt, memory.as_ref())
                            .await?,
                        VirtualOnly::Skip
                    ) {
                        return Ok(Outcome::Done);
                    }
                }
                return Err(SyncError::NotOwned {
                    kind: self.syncer.name(),
                    key: key.clone(),
                    host: host_key.to_string(),
                });
            }
        }
        let memory = self.memory.get(key).map(|m| m.clone());
        match (virtual_object, host_object) {
            (Some(virt), None) => {
                if memory.as_ref().is_some_and(|m| m.host_seen) {
                    if let Some(live) = self.live_host_copy(key, &host_key).await? {
                        // The store lags: our create not watched yet, or a
                        // host watch stuck on a dead connection until its
                        // timeout. The live copy is the pair; waiting for
                        // the store would hold the tenant's change as long.
                        return self
                            .reconcile_pair(key, &host_key, &virt, &live, memory)
                            .await;
                    }
                }
                let decision = self
                    .syncer
                    .virtual_only(&self.ctx, &virt, memory.as_ref())
                    .await?;
                self.apply_virtual_only(key, &host_key, &virt, memory, decision)
                    .await
            }
            (Some(virt), Some(host)) => {
                self.reconcile_pair(key, &host_key, &virt, &host, memory)
                    .await
            }
            (None, Some(host)) => {
                let decision = self
                    .syncer
                    .host_only(&self.ctx, &host, memory.as_ref())
                    .await?;
                self.apply_host_only(key, &host_key, &host, decision).await
            }
            (None, None) => {
                self.memory.remove(key);
                Ok(Outcome::Done)
            }
        }
    }

    /// Both objects exist: the syncer's changes to their bodies plus the
    /// label and annotation rules of kinds that flow to the host, written
    /// with preconditions and remembered.
    pub(super) async fn reconcile_pair(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        virt: &S::Object,
        host: &S::Object,
        memory: Option<Memory>,
    ) -> Result<Outcome, SyncError> {
        if memory.as_ref().is_some_and(|m| {
            m.written.lags(
                virt.meta().resource_version.as_deref(),
                host.meta().resource_version.as_deref(),
            )
        }) {
            // A store still shows what our last write replaced: its
            // watch event is on the way and queues the key again.
            return Ok(Outcome::RequeueAfter(STORE_LAG_RETRY));
        }
        let namespace_labels = self.syncer.namespace_labels(&self.ctx, virt).await;
        let in_step = in_step(virt, host, namespace_labels.as_ref());
        if self.syncer.pair_decides()
            && memory.as_ref().and_then(|m| m.in_step.as_ref()) == Some(&in_step)
        {
            // Nothing changed since the pair was last in step (the
            // watch echo of our own write, a resync): no work.
            return Ok(Outcome::Done);
        }
        let mut actions = self
            .syncer
            .both(&self.ctx, virt, host, memory.as_ref())
            .await?;
        let before = memory.clone();
        let mut remembered = memory.unwrap_or_default();
        if self.syncer.direction() == Direction::ToHost {
            let overrides = self.syncer.host_label_overrides(&self.ctx, virt)?;
            let plan = labels_annotations::plan(
                self.ctx.translator.as_ref(),
                &GroupVersionKind::of::<S::Object>(&self.dt()),
                virt.meta(),
                host.meta(),
                Some(&remembered).filter(|m| m.host_seen),
                namespace_labels.as_ref(),
                overrides.as_ref(),
            )
            .map_err(|source| SyncError::Translation {
                kind: self.syncer.name(),
                key: key.clone(),
                source: Box::new(source),
            })?;
            if let Some(patch) = plan.virtual_patch {
                actions.insert(0, Action::PatchVirtual(patch));
            }
            if let Some(patch) = plan.host_patch {
                actions.insert(0, Action::PatchHost(patch));
            }
            remembered = plan.remembered;
        }
        let actions = coalesce(actions);
        // In step only if there was nothing to do; after writes, the
        // next reconcile (on their watch events) finds out.
        remembered.in_step = actions.is_empty().then_some(in_step);
        let mut written = Written::default();
        let applied = self
            .apply_actions(key, host_key, virt, host, actions, &mut written)
            .await;
        if let Err(err) = applied {
            // Some writes may have landed before one failed: keep
            // the old memory, but wait for the stores to show them.
            if !written.is_empty() {
                let mut kept = before.unwrap_or_default();
                kept.in_step = None;
                kept.written = written;
                self.memory.insert(key.clone(), kept);
            }
            return Err(err);
        }
        remembered.written = written;
        remembered.host_seen = true;
        self.memory.insert(key.clone(), remembered);
        Ok(Outcome::Done)
    }

    /// A create found the host name taken. The name may belong to an object
    /// that is not this key's copy: one without our markers, which the
    /// label-filtered host watch never shows, or another virtual cluster's
    /// copy. The store cannot tell, so the ownership check runs on the live
    /// object; a foreign object is left alone and reported as an error,
    /// which counts it and retries with backoff. Our own copy (a create
    /// whose answer was lost, the host watch not there yet) is taken as
    /// the existing host copy and reconciled as a pair at once: waiting for
    /// the store would try the same create again and again for as long as
    /// the host watch lags.
    pub(super) async fn name_taken(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
        virt: &S::Object,
        memory: Option<Memory>,
    ) -> Result<Outcome, SyncError> {
        match self
            .host_api(host_key.namespace())
            .get_opt(host_key.name())
            .await
        {
            Ok(Some(host)) if !self.ctx.translator.is_owned_by(host.meta(), key) => {
                Err(SyncError::NotOwned {
                    kind: self.syncer.name(),
                    key: key.clone(),
                    host: host_key.to_string(),
                })
            }
            Ok(Some(host)) => {
                tracing::debug!(%key, "the host copy exists already; reconciling with it");
                self.reconcile_pair(key, host_key, virt, &host, memory)
                    .await
            }
            // Gone again: the next reconcile creates it.
            Ok(None) => Ok(Outcome::RequeueAfter(STORE_LAG_RETRY)),
            Err(err) => Err(self.api_error(key, "get", Side::Host, err)),
        }
    }

    /// The live host copy that the engine knew of and the host store no
    /// longer shows, when it still exists: a missing copy must not be taken
    /// for a deleted one on the store's word alone (a pod's syncer would
    /// delete the virtual pod as evicted). Another's object under the name
    /// is not a copy.
    async fn live_host_copy(
        &self,
        key: &VirtualKey,
        host_key: &HostKey,
    ) -> Result<Option<S::Object>, SyncError> {
        match self
            .host_api(host_key.namespace())
            .get_opt(host_key.name())
            .await
        {
            Ok(Some(host))
                if self.syncer.direction() == Direction::FromHost
                    || self.ctx.translator.is_owned_by(host.meta(), key) =>
            {
                Ok(Some(host))
            }
            Ok(_) => Ok(None),
            Err(err) => Err(self.api_error(key, "get", Side::Host, err)),
        }
    }
}

/// The in-step marker of a pair (see [`Memory::in_step`]).
pub(super) fn in_step<K: Resource>(
    virt: &K,
    host: &K,
    namespace_labels: Option<&std::collections::BTreeMap<String, String>>,
) -> InStep {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    namespace_labels.hash(&mut hasher);
    InStep {
        virtual_version: virt.meta().resource_version.clone().unwrap_or_default(),
        host_version: host.meta().resource_version.clone().unwrap_or_default(),
        namespace_labels: hasher.finish(),
    }
}

/// Folds all patches of the same target into one, so a reconcile writes
/// each object at most once per kind of patch.
fn coalesce(actions: Vec<Action>) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::with_capacity(actions.len());
    for action in actions {
        let merged = out
            .iter_mut()
            .find_map(|existing| match (existing, &action) {
                (Action::PatchHost(a), Action::PatchHost(b))
                | (Action::PatchHostStatus(a), Action::PatchHostStatus(b))
                | (Action::PatchVirtual(a), Action::PatchVirtual(b))
                | (Action::PatchVirtualStatus(a), Action::PatchVirtualStatus(b)) => {
                    labels_annotations::merge_patches(a, b.clone());
                    Some(())
                }
                _ => None,
            });
        if merged.is_none() {
            out.push(action);
        }
    }
    out
}
