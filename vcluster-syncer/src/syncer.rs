//! The [`Syncer`] trait: what one kind needs to say to be synced. The
//! [`crate::engine::SyncEngine`] owns the plumbing (watchers, queue,
//! retries, ownership checks, writes); a syncer is only the translation
//! and the field rules.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use vcluster_core::{HostKey, MarkerScope, Translator, VirtualKey};

use crate::error::SyncError;

/// What a syncer sees of the virtual cluster it serves.
pub struct SyncContext {
    /// Names, labels, selectors and ownership on the host.
    pub translator: Arc<dyn Translator>,
    /// The virtual cluster's API.
    pub virtual_client: kube::Client,
    /// The host cluster's API.
    pub host_client: kube::Client,
    /// The host namespace everything is synced into.
    pub host_namespace: String,
    /// How long a watch runs before the server is asked to end it (and it
    /// is resumed from where it was); a watch silent for this long plus a
    /// few seconds is taken for a dead connection and replaced. See
    /// [`DEFAULT_WATCH_TIMEOUT`].
    pub watch_timeout: Duration,
}

/// Watches are renewed every minute: a host connection that died without
/// a FIN or RST (a NAT or firewall dropping the flow) is noticed within
/// about 65 s instead of kube-rs' default of 295 s, while a live watch
/// costs one cheap re-watch a minute.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(60);

impl SyncContext {
    /// The watcher configuration every watch of the syncer starts from
    /// ([`Self::watch_timeout`], clamped to what the API allows).
    pub fn watcher_config(&self) -> kube::runtime::watcher::Config {
        let seconds = self.watch_timeout.as_secs().clamp(1, 290);
        kube::runtime::watcher::Config::default().timeout(seconds as u32)
    }
}

/// Which way a kind flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Created by tenants, run on the host (pods, services, configmaps...).
    ToHost,
    /// Learnt from the host, shown to tenants (nodes, storage classes).
    FromHost,
}

/// Which host objects the engine watches for a kind.
#[derive(Clone, Debug, Default)]
pub struct HostWatch {
    /// Only this namespace (`None`: cluster-wide).
    pub namespace: Option<String>,
    /// Only objects with these labels (e.g. this virtual cluster's marker).
    pub label_selector: Option<String>,
}

/// What the engine remembers of a key between reconciles: enough to tell
/// which side changed a field that flows both ways. Lost on restart, after
/// which the virtual side wins every difference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// The host object existed at the last reconcile (so its absence now
    /// means someone deleted it).
    pub host_seen: bool,
    /// The virtual labels as of the last successful sync.
    pub labels: BTreeMap<String, String>,
    /// The virtual annotations as of the last successful sync.
    pub annotations: BTreeMap<String, String>,
    /// The pair as last found in step: the virtual and host
    /// resourceVersions and a fingerprint of the namespace labels. While
    /// nothing of that changed, a kind whose decisions depend only on the
    /// pair ([`Syncer::pair_decides`]) needs no reconcile; this is what
    /// makes the watch echo of the syncer's own create free.
    pub in_step: Option<InStep>,
    /// What the last reconcile wrote, until the stores show it.
    pub written: Written,
}

/// The versions the syncer's last writes replaced and produced, per side.
///
/// A watch store can lag the syncer's own write; a reconcile that still
/// sees the replaced version would compare stale data with fresh memory
/// and could take a tenant's new label for one the host removed. While a
/// store shows a replaced version, the key waits for the store instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The host object: (resourceVersion written over, resourceVersion the
    /// last write returned).
    pub host: Option<(String, String)>,
    /// The same for the virtual object.
    pub virtual_object: Option<(String, String)>,
}

impl Written {
    /// Whether either store still shows a version a write replaced.
    pub fn lags(&self, virtual_version: Option<&str>, host_version: Option<&str>) -> bool {
        let behind = |written: &Option<(String, String)>, now: Option<&str>| {
            written
                .as_ref()
                .is_some_and(|(replaced, made)| replaced != made && now == Some(replaced.as_str()))
        };
        behind(&self.host, host_version) || behind(&self.virtual_object, virtual_version)
    }

    /// Records a write that replaced `before` and returned `after`.
    pub(crate) fn note(
        slot: &mut Option<(String, String)>,
        before: Option<&str>,
        after: Option<&str>,
    ) {
        let (Some(before), Some(after)) = (before, after) else {
            return;
        };
        match slot {
            // Several writes in one reconcile: the first replaced version
            // is the stale one, the last returned the newest.
            Some((_, made)) => *made = after.to_owned(),
            None => *slot = Some((before.to_owned(), after.to_owned())),
        }
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.virtual_object.is_none()
    }
}

/// See [`Memory::in_step`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InStep {
    /// The virtual object's resourceVersion.
    pub virtual_version: String,
    /// The host object's resourceVersion.
    pub host_version: String,
    /// A fingerprint of the virtual namespace's labels (pods carry them).
    pub namespace_labels: u64,
}

/// The decision when only the virtual object exists.
#[derive(Debug)]
pub enum VirtualOnly<K> {
    /// Create this object on the host.
    CreateHost(K),
    /// Delete the virtual object: its host copy is gone for good (a pod
    /// deleted on the host), or it was imported and the source is gone.
    DeleteVirtual,
    /// Look again later (waiting for a dependency), and why.
    Wait(Duration, String),
    /// Nothing to do.
    Skip,
}

/// The decision when only a host object (managed by us) exists.
#[derive(Debug)]
pub enum HostOnly<K> {
    /// Delete the orphan, with this grace period.
    DeleteHost {
        /// Grace period in seconds, if the kind has one.
        grace_period_seconds: Option<u32>,
    },
    /// Create this object in the virtual cluster (kinds synced from host).
    CreateVirtual(K),
    /// Nothing to do.
    Skip,
}

/// One change the engine makes when both objects exist.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// JSON merge patch of the host object.
    PatchHost(Value),
    /// JSON patch (RFC 6902 operations) of the host object, for changes a
    /// merge patch cannot express precisely (one element of a list).
    JsonPatchHost(Value),
    /// JSON merge patch of the host object's status.
    PatchHostStatus(Value),
    /// JSON merge patch of the virtual object.
    PatchVirtual(Value),
    /// JSON merge patch of the virtual object's status.
    PatchVirtualStatus(Value),
    /// POST to a subresource of the virtual object (e.g. a pod `binding`).
    CreateVirtualSubresource {
        /// The subresource name.
        subresource: &'static str,
        /// Its body.
        body: Value,
    },
    /// Delete the virtual object and create this one instead (for fields
    /// that are immutable on the virtual side, like a service's clusterIP).
    RecreateVirtual(Value),
    /// Delete the host object (e.g. a pod whose spec changed in a way the
    /// host cannot take), to be created again at the next reconcile.
    DeleteHost,
    /// Delete the virtual object (with a UID precondition) although the
    /// host object exists: for kinds synced from the host whose copy is no
    /// longer wanted (a node that no tenant pod runs on any more).
    DeleteVirtual,
}

/// The per-kind rules of a sync. Implement the three decisions; the
/// key mappings have defaults for kinds that flow to the host.
#[async_trait]
pub trait Syncer: Send + Sync + 'static {
    /// The synced object type (typed k8s-openapi kind or `DynamicObject`).
    type Object: Resource<DynamicType = Self::DynamicType, Scope: crate::scope::ApiScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static;
    /// `()` for typed kinds, `ApiResource` for dynamic ones.
    type DynamicType: Clone + Debug + Eq + Hash + Default + Send + Sync + 'static;

    /// A short name for logs and metrics (`pods`, `configmaps`).
    fn name(&self) -> &'static str;

    /// The kind's dynamic type.
    fn dynamic_type(&self) -> Self::DynamicType {
        Self::DynamicType::default()
    }

    /// Which way the kind flows.
    fn direction(&self) -> Direction {
        Direction::ToHost
    }

    /// Whether objects of the kind are namespaced.
    fn namespaced(&self) -> bool {
        true
    }

    /// Which host objects to watch: by default the host namespace, only
    /// objects carrying this virtual cluster's marker labels.
    fn host_watch(&self, ctx: &SyncContext) -> HostWatch {
        let scope = if self.namespaced() {
            MarkerScope::AllNamespaces
        } else {
            MarkerScope::Cluster
        };
        let selector = ctx.translator.marker_labels(scope).ok().map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        });
        HostWatch {
            namespace: self.namespaced().then(|| ctx.host_namespace.clone()),
            label_selector: selector,
        }
    }

    /// The host key of a virtual key (default: the translator's name).
    fn host_key(&self, ctx: &SyncContext, key: &VirtualKey) -> Result<HostKey, SyncError> {
        ctx.translator
            .host_key(key)
            .map_err(|source| SyncError::Translation {
                kind: self.name(),
                key: key.clone(),
                source: Box::new(source),
            })
    }

    /// The virtual key a host object belongs to (default: its ownership
    /// markers); `None` for host objects that are not ours.
    fn virtual_key(&self, ctx: &SyncContext, host: &Self::Object) -> Option<VirtualKey> {
        ctx.translator.owner_of(host.meta())
    }

    /// Only the virtual object exists.
    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        virtual_object: &Self::Object,
        memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Self::Object>, SyncError>;

    /// Both exist: the changes to the objects' bodies that bring them in
    /// step (none when in step). Labels and annotations of kinds that flow
    /// to the host are handled by the engine ([`crate::metadata`]).
    async fn both(
        &self,
        ctx: &SyncContext,
        virtual_object: &Self::Object,
        host_object: &Self::Object,
        memory: Option<&Memory>,
    ) -> Result<Vec<Action>, SyncError>;

    /// Whether [`Syncer::both`] decides from the two objects alone (and
    /// the namespace labels), so a pair found in step stays in step until
    /// one of them changes. The engine then skips such reconciles. Kinds
    /// that look at other objects (services at the virtual API server,
    /// endpoints at their service, nodes at pods) must keep the default.
    fn pair_decides(&self) -> bool {
        false
    }

    /// The virtual namespace's labels to carry on the host copy (pods do,
    /// so namespace selectors keep working on the host). Default: none.
    async fn namespace_labels(
        &self,
        _ctx: &SyncContext,
        _virtual_object: &Self::Object,
    ) -> Option<BTreeMap<String, String>> {
        None
    }

    /// Labels whose host value is not the plain translation of the virtual
    /// one, by virtual key: the host copy gets the given value and the key
    /// never flows back (an EndpointSlice's `kubernetes.io/service-name`
    /// must name the host service). Default: none.
    fn host_label_overrides(
        &self,
        _ctx: &SyncContext,
        _virtual_object: &Self::Object,
    ) -> Result<Option<BTreeMap<String, String>>, SyncError> {
        Ok(None)
    }

    /// Only the host object exists (default: it is an orphan; delete it).
    async fn host_only(
        &self,
        _ctx: &SyncContext,
        _host_object: &Self::Object,
        _memory: Option<&Memory>,
    ) -> Result<HostOnly<Self::Object>, SyncError> {
        Ok(HostOnly::DeleteHost {
            grace_period_seconds: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_lags_while_it_shows_a_replaced_version() {
        let mut written = Written::default();
        assert!(!written.lags(Some("1"), Some("1")));
        Written::note(&mut written.host, Some("22"), Some("24"));
        Written::note(&mut written.host, Some("24"), Some("25"));
        assert_eq!(written.host, Some(("22".into(), "25".into())));
        assert!(
            written.lags(Some("7"), Some("22")),
            "the host store is behind"
        );
        assert!(!written.lags(Some("7"), Some("25")));
        // Someone wrote after us: newer than ours, not stale.
        assert!(!written.lags(Some("7"), Some("30")));
        // A write that changed nothing (same version back) never waits.
        let mut no_op = Written::default();
        Written::note(&mut no_op.virtual_object, Some("9"), Some("9"));
        assert!(!no_op.lags(Some("9"), None));
        Written::note(&mut no_op.virtual_object, None, Some("10"));
        assert_eq!(no_op.virtual_object, Some(("9".into(), "9".into())));
    }
}
