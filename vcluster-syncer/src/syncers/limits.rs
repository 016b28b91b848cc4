//! Per-tenant resource limits on the host (optional): a ResourceQuota
//! and/or a LimitRange that the syncer keeps in the host namespace, so one
//! tenant cannot take more of the host than it was given, however many
//! pods it creates.
//!
//! - Enabled by [`HostLimits`] in the syncer's configuration: each object
//!   is created with the configured spec, put back when someone changes or
//!   deletes it, and deleted when the configuration no longer asks for it
//!   (also at start-up, after a restart with the option turned off).
//! - Names: `vcluster-<vc>-quota` and `vcluster-<vc>-limits` (shortened as
//!   every generated name). Marked with this virtual cluster's `managed-by`
//!   label and [`HOST_LIMITS_LABEL`]; an object of that name without both
//!   marks is someone else's and is never touched (an error is reported
//!   and retried with backoff).
//! - Nothing flows back: the tenant does not see these objects (the quota's
//!   effect, a refused host pod, comes back as the pod's events).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use vcluster_core::markers::MANAGED_BY_LABEL;
use vcluster_core::{safe_concat_name, VirtualKey};

use crate::engine::{EngineHandle, MetricsSnapshot, SyncMetrics};
use crate::error::{has_code, Side, SyncError};

use crate::syncer::SyncContext;
use vcluster_core::FieldManager;

const KIND: &str = "hostlimits";

/// The label (value `true`) that marks the limit objects the syncer keeps.
pub const HOST_LIMITS_LABEL: &str = "vcluster.loft.sh/host-limits";

/// Resource limits kept in the host namespace. Both off by default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostLimits {
    /// A ResourceQuota with this spec (e.g. `hard: {pods: "50",
    /// requests.cpu: "8"}`); `None`: no quota (one kept before is deleted).
    pub quota: Option<ResourceQuotaSpec>,
    /// A LimitRange with this spec (default and maximum requests and limits
    /// per container); `None`: none (one kept before is deleted).
    pub limit_range: Option<LimitRangeSpec>,
}

impl HostLimits {
    /// Whether either object is asked for.
    pub fn enabled(&self) -> bool {
        self.quota.is_some() || self.limit_range.is_some()
    }
}

/// Keeps the [`HostLimits`] objects in the host namespace.
#[derive(Clone)]
pub struct HostLimitsSyncer {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Arc<SyncContext>,
    limits: HostLimits,
    vcluster: String,
    metrics: SyncMetrics,
    cancel: CancellationToken,
}

/// The two kinds, seen alike.
trait LimitKind:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// The spec type.
    type Spec: Clone + PartialEq + std::fmt::Debug + Send + Sync;
    /// The name suffix (`quota`, `limits`).
    const SUFFIX: &'static str;
    fn spec(&self) -> Option<&Self::Spec>;
    fn build(meta: ObjectMeta, spec: Self::Spec) -> Self;
}

impl LimitKind for ResourceQuota {
    type Spec = ResourceQuotaSpec;
    const SUFFIX: &'static str = "quota";

    fn spec(&self) -> Option<&ResourceQuotaSpec> {
        self.spec.as_ref()
    }

    fn build(metadata: ObjectMeta, spec: ResourceQuotaSpec) -> Self {
        Self {
            metadata,
            spec: Some(spec),
            status: None,
        }
    }
}

impl LimitKind for LimitRange {
    type Spec = LimitRangeSpec;
    const SUFFIX: &'static str = "limits";

    fn spec(&self) -> Option<&LimitRangeSpec> {
        self.spec.as_ref()
    }

    fn build(metadata: ObjectMeta, spec: LimitRangeSpec) -> Self {
        Self {
            metadata,
            spec: Some(spec),
        }
    }
}

/// How often the objects are checked even without a watch event.
const RESYNC: Duration = Duration::from_secs(60);

impl HostLimitsSyncer {
    /// A limits syncer for the virtual cluster `vcluster` of `ctx`; it stops
    /// when `cancel` fires.
    pub fn new(
        ctx: Arc<SyncContext>,
        vcluster: impl Into<String>,
        limits: HostLimits,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctx,
                limits,
                vcluster: vcluster.into(),
                metrics: SyncMetrics::default(),
                cancel,
            }),
        }
    }

    /// The host name of the object with `suffix` (`quota`, `limits`).
    pub fn object_name(vcluster: &str, suffix: &str) -> String {
        safe_concat_name(&["vcluster", vcluster, suffix])
    }

    /// Keeps the objects until cancelled: reconciles at start, on every
    /// change of a marked object, and every minute; with nothing enabled it
    /// only removes what an earlier configuration left.
    pub async fn run(&self) {
        let inner = self.inner.clone();
        let mut backoff = Duration::from_millis(100);
        // Without limits: one clean-up, retried until it succeeds.
        if !inner.limits.enabled() {
            loop {
                let Some(result) = inner.cancel.run_until_cancelled(inner.reconcile()).await else {
                    return;
                };
                match result {
                    Ok(()) => break,
                    Err(err) => {
                        inner.metrics.error();
                        tracing::warn!(error = %err, "removing host limits failed; retrying");
                    }
                }
                tokio::select! {
                    _ = inner.cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            inner.cancel.cancelled().await;
            return;
        }
        let selector = inner.selector();
        let config = inner.ctx.watcher_config().labels(&selector);
        let namespace = inner.ctx.host_namespace.clone();
        let client = inner.ctx.host_client.clone();
        let quotas = watcher(
            Api::<ResourceQuota>::namespaced(client.clone(), &namespace),
            config.clone(),
        )
        .default_backoff()
        .map(|_| ());
        let ranges = watcher(Api::<LimitRange>::namespaced(client, &namespace), config)
            .default_backoff()
            .map(|_| ());
        let changes = futures::stream::select(quotas, ranges);
        futures::pin_mut!(changes);
        let mut ticker = tokio::time::interval(RESYNC);
        loop {
            let started = std::time::Instant::now();
            let Some(result) = inner.cancel.run_until_cancelled(inner.reconcile()).await else {
                return;
            };
            match result {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(err) => {
                    inner.metrics.error();
                    tracing::warn!(error = %err, retry_in = ?backoff, "keeping host limits failed");
                    // A change of a marked object is looked at at once;
                    // otherwise the failure is retried with backoff.
                    tokio::select! {
                        _ = inner.cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                        next = changes.next() => if next.is_none() { return },
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
            inner.metrics.reconciled(started.elapsed());
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                _ = ticker.tick() => {}
                next = changes.next() => if next.is_none() { return },
            }
        }
    }

    /// Counters right now.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(0, 0)
    }
}

#[async_trait]
impl EngineHandle for HostLimitsSyncer {
    fn name(&self) -> &'static str {
        KIND
    }

    async fn run(&self) {
        HostLimitsSyncer::run(self).await
    }

    fn metrics(&self) -> MetricsSnapshot {
        HostLimitsSyncer::metrics(self)
    }
}

impl Inner {
    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_owned(), self.vcluster.clone()),
            (HOST_LIMITS_LABEL.to_owned(), "true".to_owned()),
        ])
    }

    fn selector(&self) -> String {
        self.labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn is_ours(&self, meta: &ObjectMeta) -> bool {
        let labels = meta.labels.as_ref();
        self.labels()
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    }

    /// Both kinds, each on its own: a foreign object of one kind does not
    /// keep the other from being kept.
    async fn reconcile(&self) -> Result<(), SyncError> {
        let quota = self.keep::<ResourceQuota>(self.limits.quota.as_ref()).await;
        let range = self
            .keep::<LimitRange>(self.limits.limit_range.as_ref())
            .await;
        quota.and(range)
    }

    fn error(&self, name: &str, operation: &'static str, source: kube::Error) -> SyncError {
        SyncError::Api {
            kind: KIND,
            key: VirtualKey::cluster(name),
            operation,
            side: Side::Host,
            source: Box::new(source),
        }
    }

    /// Makes the host hold exactly `desired` (or none) of kind `K`.
    async fn keep<K: LimitKind>(&self, desired: Option<&K::Spec>) -> Result<(), SyncError> {
        let name = HostLimitsSyncer::object_name(&self.vcluster, K::SUFFIX);
        let api: Api<K> = Api::namespaced(self.ctx.host_client.clone(), &self.ctx.host_namespace);
        let Some(spec) = desired else {
            return self.remove_all(&api).await;
        };
        let existing = api
            .get_opt(&name)
            .await
            .map_err(|e| self.error(&name, "get", e))?;
        let meta = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(self.ctx.host_namespace.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        };
        match existing {
            None => match api
                .create(
                    &FieldManager::SYNCER.post_params(),
                    &K::build(meta, spec.clone()),
                )
                .await
            {
                Ok(_) => self.metrics.wrote(),
                // Created meanwhile: the next round looks at it.
                Err(err) if has_code(&err, 409) => {}
                Err(err) => return Err(self.error(&name, "create", err)),
            },
            Some(current) if !self.is_ours(current.meta()) => {
                return Err(SyncError::NotOwned {
                    kind: KIND,
                    key: VirtualKey::cluster(name.as_str()),
                    host: format!("{}/{name}", self.ctx.host_namespace),
                });
            }
            Some(current) if current.spec() == Some(spec) => {}
            Some(current) => {
                // Replace the whole spec, pinned to the version read.
                let mut meta = current.meta().clone();
                let mut labels = meta.labels.take().unwrap_or_default();
                labels.extend(self.labels());
                meta.labels = Some(labels);
                match api
                    .replace(
                        &name,
                        &FieldManager::SYNCER.post_params(),
                        &K::build(meta, spec.clone()),
                    )
                    .await
                {
                    Ok(_) => self.metrics.wrote(),
                    Err(err) if has_code(&err, 409) => {}
                    Err(err) => return Err(self.error(&name, "replace", err)),
                }
            }
        }
        Ok(())
    }

    /// Deletes every object of the kind that carries this virtual
    /// cluster's limit marks. A host that does not serve the kind has none.
    async fn remove_all<K: LimitKind>(&self, api: &Api<K>) -> Result<(), SyncError> {
        let list = match api
            .list(&ListParams::default().labels(&self.selector()))
            .await
        {
            Ok(list) => list,
            Err(err) if has_code(&err, 404) => return Ok(()),
            Err(err) => return Err(self.error(K::SUFFIX, "list", err)),
        };
        for object in list.items.iter().filter(|o| self.is_ours(o.meta())) {
            let name = object.meta().name.clone().unwrap_or_default();
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: object.meta().uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => self.metrics.wrote(),
                Err(err) if has_code(&err, 404) || has_code(&err, 409) => {}
                Err(err) => return Err(self.error(&name, "delete", err)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_generated_like_every_host_name() {
        assert_eq!(
            HostLimitsSyncer::object_name("my-vc", "quota"),
            "vcluster-my-vc-quota"
        );
        let long = "a".repeat(60);
        let name = HostLimitsSyncer::object_name(&long, "limits");
        assert!(name.len() <= 63, "{name}");
    }
}
