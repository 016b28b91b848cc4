//! The object registry: the semantics of create, get, update and delete
//! for any served resource, independent of HTTP.
//!
//! It is what turns a key-value [`Storage`] into a Kubernetes API: it fills
//! `uid`, `creationTimestamp` and `generation`, applies defaults, validates,
//! honours `resourceVersion` preconditions, keeps `status` apart from the
//! rest, allocates service IPs, and maps storage errors to API errors.
//!
//! Deletion follows upstream's lifecycle: an object with finalizers (or a
//! pod bound to a node, deleted with a grace period) is only marked with
//! `deletionTimestamp`, and goes when its last finalizer is removed (or
//! whoever runs the pod deletes it with grace 0); `propagationPolicy`
//! Foreground / Orphan add the garbage collector's finalizers, which the
//! collector ([`gc`]) acts on; namespaces and CRDs are emptied by it before
//! they go ([`namespaces`], [`crds`]).
//!
//! One file per step of a write: [`admission`] (the embedder's checks and
//! the admission plugins),
//! `prepare` (decoding, defaults, validation and the update merge, all
//! pure), `store` (create, update and modify against storage) and
//! `delete` (the deletion lifecycle); this file holds the registry itself
//! and reads.

use std::sync::Arc;

use serde_json::Value;

use crate::error::ApiError;
use crate::object;
use crate::resources::{Catalog, ResourceInfo, SharedCatalog};
use crate::storage::{KeyValue, Revision, Storage, StorageError};
use crate::watch_cache::WatchHub;

pub mod admission;
mod bootstrap;
mod compat;
pub mod conversion;
mod crds;
mod delete;
pub mod gc;
mod list;
pub mod namespaces;
mod patch;
mod prepare;
mod services;
mod store;
mod subresources;

pub use admission::{
    Admission, AdmissionCheck, AdmissionPlugin, Attributes, Operation, RequestContext, Warnings,
    WriteOptions,
};
pub(crate) use delete::DeletePlan;
use delete::{finalizers, is_deleting, mark_deleting, set_finalizers};
pub use delete::{DeleteOptions, Propagation};
pub use gc::GarbageCollectorOptions;
pub use list::{ListOptions, ListPage};
pub use patch::apply::invalid_options as patch_options_invalid;
pub use patch::{apply_patch, fieldset, meta, FieldManager, PatchKind, PatchOptions, Patched};
pub(crate) use prepare::{needs_presenting, present};
pub use services::{Allocation, Reservation, ServiceNetwork};
pub use subresources::scale_of;

/// The finalizer of a foreground deletion: the owner waits for its
/// blocking dependents.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// The finalizer of an orphaning deletion: dependents lose their owner
/// reference before the owner goes.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// How many times an update without a client precondition is retried when
/// it races another writer.
const MAX_UPDATE_ATTEMPTS: usize = 16;

/// The namespaces every cluster has; they cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Which part of an object an update writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateTarget {
    /// The main resource: everything but `status` (for kinds with a status
    /// subresource).
    Main,
    /// The `status` subresource: only `status`.
    Status,
    /// A pod's `ephemeralcontainers` subresource: only
    /// `spec.ephemeralContainers`, which may only grow.
    EphemeralContainers,
}

impl UpdateTarget {
    /// The subresource managed fields record, if not the main resource.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Self::Main => None,
            Self::Status => Some("status"),
            Self::EphemeralContainers => Some("ephemeralcontainers"),
        }
    }
}

/// Where an object lives: its resource, namespace and name.
#[derive(Clone, Debug)]
pub struct ObjectAddress {
    /// The resource.
    pub resource: Arc<ResourceInfo>,
    /// The namespace, for namespaced resources.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
}

impl ObjectAddress {
    /// The storage key.
    pub fn key(&self) -> String {
        self.resource
            .storage_key(self.namespace.as_deref(), &self.name)
    }

    pub(super) fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.resource.group, &self.resource.plural, &self.name)
    }

    pub(super) fn storage_error(&self, err: StorageError) -> ApiError {
        ApiError::from_storage(err, &self.resource.group, &self.resource.plural, &self.name)
    }
}

/// The registry of one API server.
pub struct Registry {
    storage: Arc<dyn Storage>,
    catalog: SharedCatalog,
    services: ServiceNetwork,
    hub: WatchHub,
    /// The admission chain every create, update and delete passes.
    plugins: Vec<Arc<dyn AdmissionPlugin>>,
    /// Bumped on every write of an admission-registration object, so the
    /// webhook plugin reads its configurations again only when they changed.
    admission_generation: std::sync::atomic::AtomicU64,
    /// Where webhooks' services are (admission and CRD conversion).
    webhook_services: Arc<dyn admission::webhook::ServiceResolver>,
}

impl Registry {
    /// A registry over `storage`, serving `catalog` (and, once
    /// [`Registry::load_crds`] ran, every established CRD); `bootstrap`
    /// must run before it serves requests.
    pub fn new(
        storage: Arc<dyn Storage>,
        catalog: Catalog,
        services: ServiceNetwork,
        hub: WatchHub,
    ) -> Self {
        Self {
            storage,
            catalog: SharedCatalog::new(catalog),
            services,
            hub,
            plugins: admission::default_plugins(Arc::new(admission::webhook::EndpointsResolver)),
            admission_generation: std::sync::atomic::AtomicU64::new(0),
            webhook_services: Arc::new(admission::webhook::EndpointsResolver),
        }
    }

    /// Resolves the services admission and conversion webhooks name with
    /// `services` instead of the default [`admission::webhook::EndpointsResolver`].
    pub fn with_webhook_services(
        mut self,
        services: Arc<dyn admission::webhook::ServiceResolver>,
    ) -> Self {
        self.plugins = admission::default_plugins(services.clone());
        self.webhook_services = services;
        self
    }

    /// How many times admission-registration objects were written: the
    /// webhook plugin's cache key.
    pub fn admission_generation(&self) -> u64 {
        self.admission_generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Notes a write of `resource`: one of the admission-registration kinds
    /// makes the admission plugins read their configuration again.
    pub(crate) fn admission_changed(&self, resource: &ResourceInfo) {
        if resource.group == "admissionregistration.k8s.io" {
            self.admission_generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// The served resources as they are now: a snapshot that stays the
    /// same for as long as the caller holds it, even if a CRD changes the
    /// catalog meanwhile.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.snapshot()
    }

    /// The live catalog, for code that changes what is served.
    pub fn shared_catalog(&self) -> &SharedCatalog {
        &self.catalog
    }

    /// The store.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The watch cache.
    pub fn hub(&self) -> &WatchHub {
        &self.hub
    }

    /// Reads one object.
    pub async fn get(&self, address: &ObjectAddress) -> Result<Value, ApiError> {
        let kv = self.read(address).await?;
        self.presented(&address.resource, decode(&kv)?).await
    }

    pub(super) async fn read(&self, address: &ObjectAddress) -> Result<KeyValue, ApiError> {
        self.storage
            .get(&address.key())
            .await
            .map_err(|e| address.storage_error(e))?
            .ok_or_else(|| address.not_found())
    }
}

/// Parses a client-supplied resourceVersion.
pub fn parse_resource_version(text: &str) -> Result<Revision, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!("invalid resourceVersion {text:?}: not a number"))
    })
}

/// An object as stored, stamped with its revision.
fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    object::decode_stored(&kv.value, kv.mod_revision).map_err(|err| {
        ApiError::internal(format!(
            "stored object at {} cannot be decoded: {err}",
            kv.key
        ))
    })
}

/// An object as storage keeps it.
fn encode(object: &Value) -> Result<bytes::Bytes, ApiError> {
    object::encode_for_storage(object)
        .map_err(|err| ApiError::internal(format!("object cannot be encoded: {err}")))
}
