//! The [`Syncer`] trait: what one kind needs to say to be synced. The
//! [`SyncEngine`](crate::SyncEngine) owns the plumbing (watchers, queue,
//! retries, ownership checks, every write); a syncer is only the
//! translation and the field rules, and returns decisions
//! ([`VirtualOnly`], [`HostOnly`], [`Action`]) that the engine carries out.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use vcluster_core::{HostKey, MarkerScope, Translator, TranslatorExt, VirtualKey};

use crate::error::SyncError;
use crate::memory::Memory;

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
    /// Learnt from the host, shown to tenants (nodes, storage classes):
    /// by default every host object is watched and keeps its name.
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
    /// The object must not be synced: tell the tenant why on the virtual
    /// object (see [`Blocked`]).
    Blocked(Blocked),
    /// Nothing to do.
    Skip,
}

/// Why a virtual object is not synced, reported on the object itself: the
/// engine sets condition [`Blocked::condition`] to `False` with
/// [`Blocked::reason`] and [`Blocked::message`] in its status (once per
/// message, keeping the other conditions) and records a `Warning` event,
/// so `kubectl describe` tells the tenant what to fix.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocked {
    /// The condition type that says so (a pod's `PodScheduled`).
    pub condition: &'static str,
    /// The condition's and event's reason (`SyncBlocked`).
    pub reason: &'static str,
    /// What is wrong, for the tenant (cut to 1 KiB when written).
    pub message: String,
    /// Other status fields set with the condition (a pod's
    /// `phase: Pending`), as a JSON object.
    pub status: Value,
    /// When to look again (`None`: when the object changes).
    pub retry_after: Option<Duration>,
}

/// The label that marks virtual objects the syncer created from host
/// objects (nodes, storage classes): only those are updated or deleted
/// when the host changes, so a tenant's own objects of the same name are
/// never touched.
pub const FROM_HOST_LABEL: &str = "vcluster.loft.sh/synced-from-host";

/// Whether a virtual object was created by a from-host syncer.
pub(crate) fn is_from_host(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.get(FROM_HOST_LABEL).map(String::as_str) == Some("true"))
}

/// The decision of a kind imported from the host when the host object is
/// gone: the virtual copy goes too, unless the virtual object is a
/// tenant's own (without [`FROM_HOST_LABEL`]), which is never touched.
pub(crate) fn imported_copy_orphaned<K>(meta: &ObjectMeta) -> VirtualOnly<K> {
    if is_from_host(meta) {
        VirtualOnly::DeleteVirtual
    } else {
        VirtualOnly::Skip
    }
}

/// The usual decision of a kind synced to the host when only the virtual
/// object exists: its translation (by `translate`) is created on the host,
/// unless the virtual object is being deleted (a copy made now would only
/// be deleted again).
pub(crate) fn create_on_host<K: Resource>(
    kind: &'static str,
    ctx: &SyncContext,
    object: &K,
    translate: impl FnOnce(&dyn Translator, &K) -> vcluster_core::Result<K>,
) -> Result<VirtualOnly<K>, SyncError> {
    if object.meta().deletion_timestamp.is_some() {
        return Ok(VirtualOnly::Skip);
    }
    let host = translate(ctx.translator.as_ref(), object).map_err(|source| {
        let name = object.meta().name.as_deref().unwrap_or_default();
        SyncError::Translation {
            kind,
            key: VirtualKey::new(object.meta().namespace.as_deref(), name),
            source: Box::new(source),
        }
    })?;
    Ok(VirtualOnly::CreateHost(host))
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
    /// JSON merge patch of a subresource of the host object (a pod's
    /// `ephemeralcontainers`, which its main resource cannot change).
    PatchHostSubresource {
        /// The subresource name.
        subresource: &'static str,
        /// The merge patch.
        patch: Value,
    },
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
    /// objects carrying this virtual cluster's marker labels; every host
    /// object for kinds from the host (they carry no marker of ours).
    fn host_watch(&self, ctx: &SyncContext) -> HostWatch {
        if self.direction() == Direction::FromHost {
            return HostWatch::default();
        }
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

    /// The host key of a virtual key (default: the translator's name; the
    /// same name for kinds from the host).
    fn host_key(&self, ctx: &SyncContext, key: &VirtualKey) -> Result<HostKey, SyncError> {
        if self.direction() == Direction::FromHost {
            return Ok(HostKey::new(key.namespace(), key.name()));
        }
        ctx.translator
            .host_key(key)
            .map_err(|source| SyncError::Translation {
                kind: self.name(),
                key: key.clone(),
                source: Box::new(source),
            })
    }

    /// The virtual key a host object belongs to (default: its ownership
    /// markers; the same name for kinds from the host); `None` for host
    /// objects that are not ours.
    fn virtual_key(&self, ctx: &SyncContext, host: &Self::Object) -> Option<VirtualKey> {
        if self.direction() == Direction::FromHost {
            return VirtualKey::of(host);
        }
        ctx.translator.owner_of(host.meta())
    }

    /// Only the virtual object exists. Default: for kinds to the host, a
    /// copy with the same body and host metadata is created (unless the
    /// virtual object is being deleted); for kinds from the host, the host
    /// object is gone, so the copy the syncer made is deleted (a tenant's
    /// own object, without [`FROM_HOST_LABEL`], is left alone).
    async fn virtual_only(
        &self,
        ctx: &SyncContext,
        virtual_object: &Self::Object,
        _memory: Option<&Memory>,
    ) -> Result<VirtualOnly<Self::Object>, SyncError> {
        match self.direction() {
            Direction::FromHost => Ok(imported_copy_orphaned(virtual_object.meta())),
            Direction::ToHost => {
                let dt = self.dynamic_type();
                create_on_host(self.name(), ctx, virtual_object, |translator, object| {
                    translator.host_object_with(object, &dt, None)
                })
            }
        }
    }

    /// Both exist: the changes to the objects' bodies that bring them in
    /// step (none when in step). Labels and annotations of kinds that flow
    /// to the host are handled by the engine, the same for every kind.
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
