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

use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{ApiError, FieldCause};
use crate::object::{self, validate};
use crate::resources::custom;
use crate::resources::{events, Catalog, ResourceInfo, SharedCatalog};
use crate::storage::{registry_key, KeyValue, Revision, Storage, StorageError};
use crate::watch::WatchHub;

mod bootstrap;
mod compat;
pub mod crds;
pub mod gc;
mod list;
pub mod namespaces;
mod patch;
mod services;
mod subresources;

pub use gc::GarbageCollectorOptions;
pub use list::{ListOptions, ListPage};
pub use patch::apply::invalid_options as patch_options_invalid;
pub use patch::{apply_patch, fieldset, meta, FieldManager, PatchKind, PatchOptions, Patched};
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

/// Options shared by writes.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer as if written, store nothing.
    pub dry_run: bool,
    /// Who writes: recorded in `metadata.managedFields` (none: entries are
    /// only carried over).
    pub field_manager: Option<FieldManager>,
    /// A last check of the object about to be stored (after patches,
    /// defaults and validation), such as RBAC escalation prevention.
    pub admission: Option<Admission>,
}

/// The signature of an [`Admission`] check: the resource, the object about
/// to be stored and, for updates, the stored one.
pub type AdmissionCheck =
    dyn Fn(&ResourceInfo, &Value, Option<&Value>) -> Result<(), ApiError> + Send + Sync;

/// A check a write's final object must pass before it is stored (create,
/// update, and the patches and applies built on them); an error refuses
/// the write. Set by the HTTP layer from the request's authorization.
#[derive(Clone)]
pub struct Admission(Arc<AdmissionCheck>);

impl Admission {
    /// Wraps a check.
    pub fn new(
        check: impl Fn(&ResourceInfo, &Value, Option<&Value>) -> Result<(), ApiError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self(Arc::new(check))
    }

    /// Runs the check.
    pub fn check(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        (self.0)(resource, object, old)
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admission(..)")
    }
}

impl WriteOptions {
    fn admit(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        match &self.admission {
            Some(admission) => admission.check(resource, object, old),
            None => Ok(()),
        }
    }
}

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

/// Which part of an object an update writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateTarget {
    /// The main resource: everything but `status` (for kinds with a status
    /// subresource).
    Main,
    /// The `status` subresource: only `status`.
    Status,
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

    fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.resource.group, &self.resource.plural, &self.name)
    }

    fn storage_error(&self, err: StorageError) -> ApiError {
        ApiError::from_storage(err, &self.resource.group, &self.resource.plural, &self.name)
    }
}

/// The registry of one API server.
pub struct Registry {
    storage: Arc<dyn Storage>,
    catalog: SharedCatalog,
    services: ServiceNetwork,
    hub: WatchHub,
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
        let mut object = decode(&kv)?;
        present(&address.resource, &mut object);
        Ok(object)
    }

    async fn read(&self, address: &ObjectAddress) -> Result<KeyValue, ApiError> {
        self.storage
            .get(&address.key())
            .await
            .map_err(|e| address.storage_error(e))?
            .ok_or_else(|| address.not_found())
    }

    /// Creates an object in `namespace` (ignored for cluster-scoped kinds).
    pub async fn create(
        &self,
        resource: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        body: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if let Some(custom) = &resource.custom {
            if custom.terminating {
                return Err(ApiError::method_not_allowed(
                    "create not allowed while custom resource definition is terminating",
                ));
            }
        }
        let mut object = check_body(resource, namespace, None, body)?;
        assign_name(resource, &mut object)?;
        let address = ObjectAddress {
            resource: resource.clone(),
            namespace: resource
                .namespaced
                .then(|| object::namespace(&object).to_owned()),
            name: object::name(&object).to_owned(),
        };
        let meta = object::metadata_mut(&mut object);
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(field);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
        if object.get("spec").is_some() || resource.custom.is_some() {
            object::metadata_mut(&mut object).insert("generation".into(), json!(1));
        } else {
            object::metadata_mut(&mut object).remove("generation");
        }
        resource.strategy.default(&mut object);
        set_initial_status(resource, &mut object);
        patch::apply::record_update(resource, None, &mut object, options.field_manager.as_ref())?;
        reject_invalid(resource, &object)?;
        options.admit(resource, &object, None)?;
        if is_crd(resource) {
            reject_causes(resource, &object, custom::validate(&object, None))?;
            let status = custom::status(&object, &Value::Null, &self.catalog());
            object["status"] = status;
        }
        if let Some(ns) = &address.namespace {
            self.require_namespace(resource, &object, ns).await?;
        }
        let (allocation, reservation) = self.allocate_new(resource, &mut object, options).await?;
        if options.dry_run {
            allocation.rollback(&self.services);
            return Ok(object);
        }
        let bytes = match encode_for(resource, &object) {
            Ok(bytes) => bytes,
            Err(err) => {
                allocation.rollback(&self.services);
                reservation.release(&self.services).await;
                return Err(err);
            }
        };
        match self.storage.create(&address.key(), bytes).await {
            Ok(kv) => {
                object::set_resource_version(&mut object, kv.mod_revision);
                self.written(resource, &object);
                if let Reservation::Failed(reason) = reservation {
                    self.record_own_addresses(&object, &reason).await;
                }
                Ok(object)
            }
            Err(err) => {
                allocation.rollback(&self.services);
                reservation.release(&self.services).await;
                Err(address.storage_error(err))
            }
        }
    }

    /// A new object's service addresses: the provider's when it has some
    /// and this server accepts them, else the server's own. A dry run does
    /// not ask the provider (it must not leave anything behind).
    async fn allocate_new(
        &self,
        resource: &ResourceInfo,
        object: &mut Value,
        options: &WriteOptions,
    ) -> Result<(Allocation, Reservation), ApiError> {
        let reservation = if options.dry_run {
            Reservation::None
        } else {
            self.services.reserve(resource, object).await
        };
        match self.services.allocate(resource, object, None) {
            Ok(allocation) => Ok((allocation, reservation)),
            Err(err) if matches!(reservation, Reservation::Reserved { .. }) => {
                // The provider's addresses are outside what this server
                // accepts: give them back and allocate our own.
                reservation.restore_spec(object);
                reservation.release(&self.services).await;
                let allocation = self.services.allocate(resource, object, None)?;
                Ok((
                    allocation,
                    Reservation::Failed(format!("its addresses were refused: {}", err.message)),
                ))
            }
            Err(err) => {
                reservation.release(&self.services).await;
                Err(err)
            }
        }
    }

    /// Records a Warning event on a service that got this server's own
    /// addresses because the provider failed: the syncer will re-create it
    /// with the host's once it can.
    async fn record_own_addresses(&self, service: &Value, reason: &str) {
        let Some(events) = self.catalog().by_resource("", "events") else {
            return;
        };
        let namespace = object::namespace(service).to_owned();
        let name = object::name(service).to_owned();
        let now = object::now_rfc3339();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Service", "namespace": namespace, "name": name,
                "uid": object::meta_str(service, "uid"),
                "resourceVersion": object::meta_str(service, "resourceVersion"),
            },
            "reason": "HostAddressesUnavailable",
            "message": format!(
                "the host did not reserve this service's addresses ({reason}); it got the virtual \
                 cluster's own and will be re-created with the host's once the syncer reaches the host"
            ),
            "type": "Warning",
            "source": {"component": "vcluster-apiserver"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        });
        let written =
            Box::pin(self.create(&events, Some(&namespace), event, &WriteOptions::default())).await;
        if let Err(err) = written {
            tracing::warn!(service = %name, error = %err, "could not record the address fallback event");
        }
    }

    /// Replaces an object (PUT), or only its status.
    pub async fn update(
        &self,
        address: &ObjectAddress,
        body: Value,
        target: UpdateTarget,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let body = check_body(
            &address.resource,
            address.namespace.as_deref(),
            Some(&address.name),
            body,
        )?;
        let precondition = match object::meta_str(&body, "resourceVersion") {
            "" => None,
            rv => Some(parse_resource_version(rv)?),
        };
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = self.read(address).await?;
            if let Some(expected) = precondition {
                if expected != current.mod_revision {
                    return Err(address.storage_error(StorageError::Conflict {
                        key: address.key(),
                        expected,
                        current: current.mod_revision,
                    }));
                }
            }
            let mut old = decode(&current)?;
            present(&address.resource, &mut old);
            let mut new = merge_update(&address.resource, &old, body.clone(), target);
            address.resource.strategy.default(&mut new);
            let manager = options.field_manager.as_ref().map(|m| FieldManager {
                subresource: (target == UpdateTarget::Status).then(|| "status".to_owned()),
                ..m.clone()
            });
            patch::apply::record_update(&address.resource, Some(&old), &mut new, manager.as_ref())?;
            reject_invalid(&address.resource, &new)?;
            check_immutable(&address.resource, &old, &new)?;
            check_finalizers(&address.resource, &old, &new)?;
            options.admit(&address.resource, &new, Some(&old))?;
            if is_crd(&address.resource) && target == UpdateTarget::Main {
                reject_causes(&address.resource, &new, custom::validate(&new, Some(&old)))?;
                let status = custom::status(&new, &old, &self.catalog());
                new["status"] = status;
            }
            let allocation = self
                .services
                .allocate(&address.resource, &mut new, Some(&old))?;
            if new == old {
                // Nothing changed: no write, no new resourceVersion.
                allocation.rollback(&self.services);
                return Ok(old);
            }
            if options.dry_run {
                allocation.rollback(&self.services);
                return Ok(new);
            }
            if finalized(&address.resource, &old, &new) {
                // The last finalizer of an object being deleted is gone:
                // the object goes now, as upstream's update does.
                allocation.rollback(&self.services);
                match self.remove(address, &current, &new).await {
                    Ok(gone) => return Ok(gone),
                    Err(err) if err.reason == "Conflict" && precondition.is_none() => continue,
                    Err(err) => return Err(err),
                }
            }
            let bytes = encode_for(&address.resource, &new)?;
            match self
                .storage
                .update(&address.key(), bytes, current.mod_revision)
                .await
            {
                Ok(kv) => {
                    allocation.commit(&self.services);
                    object::set_resource_version(&mut new, kv.mod_revision);
                    self.written(&address.resource, &new);
                    return Ok(new);
                }
                Err(StorageError::Conflict { .. }) if precondition.is_none() => {
                    allocation.rollback(&self.services);
                    continue;
                }
                Err(err) => {
                    allocation.rollback(&self.services);
                    return Err(address.storage_error(err));
                }
            }
        }
        Err(ApiError::conflict(
            &address.resource.group,
            &address.resource.plural,
            &address.name,
            "too many concurrent writers; try again",
        ))
    }

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
        let precondition = match options.resource_version.as_deref() {
            None | Some("") => None,
            Some(rv) => Some(parse_resource_version(rv)?),
        };
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = self.read(address).await?;
            let mut old = decode(&current)?;
            present(&address.resource, &mut old);
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
    async fn write_marked(
        &self,
        address: &ObjectAddress,
        current: &KeyValue,
        mut new: Value,
    ) -> Result<Value, ApiError> {
        let kv = self
            .storage
            .update(
                &address.key(),
                encode_for(&address.resource, &new)?,
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
    async fn remove(
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
        if let Err(err) = self
            .storage
            .delete(&address.key(), Some(current.mod_revision))
            .await
        {
            if is_crd(&address.resource) {
                if let Ok(stored) = decode(current) {
                    self.written(&address.resource, &stored);
                }
            }
            return Err(address.storage_error(err));
        }
        self.services.release(&address.resource, last);
        Ok(last.clone())
    }

    /// Read-modify-write of one object by the server itself (garbage
    /// collector, namespace and CRD cleanup): `change` edits the object and
    /// says whether it changed anything. No validation or defaulting; an
    /// object being deleted whose last finalizer `change` removed goes.
    /// `Ok(None)`: the object (with `uid`, when given) does not exist.
    pub async fn modify(
        &self,
        address: &ObjectAddress,
        uid: Option<&str>,
        mut change: impl FnMut(&mut Value) -> bool,
    ) -> Result<Option<Value>, ApiError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let Some(current) = self.storage.get(&address.key()).await? else {
                return Ok(None);
            };
            let mut old = decode(&current)?;
            present(&address.resource, &mut old);
            if uid.is_some_and(|uid| uid != object::meta_str(&old, "uid")) {
                return Ok(None);
            }
            let mut new = old.clone();
            if !change(&mut new) {
                return Ok(Some(old));
            }
            let outcome = if finalized(&address.resource, &old, &new) {
                self.remove(address, &current, &new).await
            } else {
                self.write_marked(address, &current, new).await
            };
            match outcome {
                Err(err) if err.reason == "Conflict" => continue,
                Err(err) if err.reason == "NotFound" => return Ok(None),
                other => return other.map(Some),
            }
        }
        Err(ApiError::conflict(
            &address.resource.group,
            &address.resource.plural,
            &address.name,
            "too many concurrent writers; try again",
        ))
    }

    /// Keeps derived state in step with a stored write: a CRD's resource
    /// is (re)installed in the catalog.
    fn written(&self, resource: &ResourceInfo, object: &Value) {
        if is_crd(resource) {
            self.catalog
                .update(|catalog| custom::install(catalog, object));
        }
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

    /// A namespaced create needs its namespace, and one that is not being
    /// deleted (upstream's NamespaceLifecycle admission).
    async fn require_namespace(
        &self,
        resource: &ResourceInfo,
        object: &Value,
        namespace: &str,
    ) -> Result<(), ApiError> {
        let key = registry_key("", "namespaces", None, namespace);
        let Some(kv) = self.storage.get(&key).await? else {
            return Err(ApiError::not_found("", "namespaces", namespace));
        };
        if namespaces::is_terminating(&decode(&kv)?) {
            let name = object::name(object);
            let what = if name.is_empty() {
                resource.qualified_name()
            } else {
                format!("{} {name:?}", resource.qualified_name())
            };
            return Err(ApiError::forbidden(format!(
                "{what} is forbidden: unable to create new content in namespace {namespace} because it is being terminated"
            ))
            .with_target(&resource.group, &resource.plural, name));
        }
        Ok(())
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

fn finalizers(object: &Value) -> Vec<String> {
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

fn set_finalizers(object: &mut Value, list: Vec<String>) {
    let meta = object::metadata_mut(object);
    if list.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(list));
    }
}

fn is_deleting(object: &Value) -> bool {
    !object::meta_str(object, "deletionTimestamp").is_empty()
}

fn grace_of(object: &Value) -> Option<i64> {
    object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
}

/// `now + seconds`, in the format of every other timestamp.
fn timestamp_in(seconds: i64) -> String {
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    format!("{}", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

/// The finalizers an object gets from a delete's propagation policy
/// (upstream's `deletionFinalizersForGarbageCollection`).
fn gc_finalizers(current: &[String], propagation: Option<Propagation>) -> Vec<String> {
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
fn mark_deleting(object: &mut Value) {
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
fn plan_delete(resource: &ResourceInfo, old: &Value, options: &DeleteOptions) -> DeletePlan {
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
    let finals = gc_finalizers(&finalizers(old), options.propagation);
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
fn finalized(resource: &ResourceInfo, old: &Value, new: &Value) -> bool {
    if !is_deleting(old) || !finalizers(new).is_empty() || grace_of(old).unwrap_or(0) != 0 {
        return false;
    }
    resource.strategy.ready_to_remove(new)
}

/// No finalizer may be added to an object being deleted (422, as
/// upstream's `ValidateNoNewFinalizers`).
fn check_finalizers(resource: &ResourceInfo, old: &Value, new: &Value) -> Result<(), ApiError> {
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

fn is_crd(resource: &ResourceInfo) -> bool {
    resource.is(custom::GROUP, custom::PLURAL)
}

/// Shows a stored object as `resource` serves it: all served versions of a
/// custom resource share one storage and an object is shown at the version
/// asked for; `events.k8s.io` events are stored as core events.
pub(crate) fn present(resource: &ResourceInfo, object: &mut Value) {
    if resource.custom.is_some() {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(resource.api_version()));
        }
    } else if events::is_events_k8s_io(resource) {
        events::from_core(object);
    }
}

/// Whether objects stored for `resource` must go through [`present`]
/// before a client sees them (the stored `apiVersion` is another one).
pub(crate) fn needs_presenting(resource: &ResourceInfo, stored: &Value) -> bool {
    (resource.custom.is_some() || events::is_events_k8s_io(resource))
        && stored.get("apiVersion").and_then(Value::as_str) != Some(resource.api_version().as_str())
}

/// Encodes an object for storage: custom resources at their storage
/// version, `events.k8s.io` events in the core form.
fn encode_for(resource: &ResourceInfo, object: &Value) -> Result<bytes::Bytes, ApiError> {
    match &resource.custom {
        Some(custom) if !custom.storage => {
            let mut stored = object.clone();
            stored["apiVersion"] = json!(format!("{}/{}", resource.group, custom.storage_version));
            encode(&stored)
        }
        None if events::is_events_k8s_io(resource) => {
            let mut stored = object.clone();
            events::to_core(&mut stored);
            encode(&stored)
        }
        _ => encode(object),
    }
}

/// Checks a request body against the URL: type, namespace and name.
fn check_body(
    resource: &ResourceInfo,
    namespace: Option<&str>,
    url_name: Option<&str>,
    mut body: Value,
) -> Result<Value, ApiError> {
    let Some(map) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    };
    let api_version = resource.api_version();
    for (field, expected) in [
        ("apiVersion", api_version.as_str()),
        ("kind", resource.kind.as_str()),
    ] {
        match map.get(field) {
            None | Some(Value::Null) => {
                map.insert(field.into(), json!(expected));
            }
            Some(Value::String(s)) if s == expected => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "the {field} of the object ({}) does not match the resource served at this URL ({})",
                    other.as_str().unwrap_or("?"),
                    expected
                )));
            }
        }
    }
    let body_ns = object::namespace(&body).to_owned();
    if resource.namespaced {
        let url_ns = namespace.unwrap_or("");
        if !body_ns.is_empty() && body_ns != url_ns {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({url_ns})"
            )));
        }
        object::metadata_mut(&mut body).insert("namespace".into(), json!(url_ns));
    } else {
        object::metadata_mut(&mut body).remove("namespace");
    }
    if let Some(url_name) = url_name {
        let body_name = object::name(&body);
        if body_name.is_empty() {
            object::metadata_mut(&mut body).insert("name".into(), json!(url_name));
        } else if body_name != url_name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
    }
    normalize(resource, body)
}

/// Rejects fields of the wrong type and drops unknown ones (typed kinds;
/// for custom resources: what the schema does not specify, then its
/// defaults are filled).
fn normalize(resource: &ResourceInfo, mut body: Value) -> Result<Value, ApiError> {
    if let Some(custom) = &resource.custom {
        custom.prepare(&mut body);
        normalize_metadata(&mut body)?;
        return Ok(body);
    }
    let Some(normalize) = resource.typed.map(|t| t.normalize) else {
        return Ok(body);
    };
    normalize(body).map_err(|err| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {err}",
            resource.kind, resource.version, resource.kind
        ))
    })
}

/// Checks and prunes `metadata` of an untyped object through `ObjectMeta`.
fn normalize_metadata(object: &mut Value) -> Result<(), ApiError> {
    let Some(meta) = object.get_mut("metadata") else {
        return Ok(());
    };
    let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
        serde_json::from_value(meta.clone()).map_err(|err| {
            ApiError::bad_request(format!("the object's metadata cannot be decoded: {err}"))
        })?;
    *meta = serde_json::to_value(typed)
        .map_err(|err| ApiError::internal(format!("metadata cannot be encoded: {err}")))?;
    Ok(())
}

/// Fills `metadata.name` from `generateName` as kube-apiserver does.
fn assign_name(resource: &ResourceInfo, object: &mut Value) -> Result<(), ApiError> {
    if !object::name(object).is_empty() {
        return Ok(());
    }
    let prefix = object::meta_str(object, "generateName").to_owned();
    if prefix.is_empty() {
        return Err(ApiError::invalid(
            &resource.kind,
            "",
            vec![crate::error::FieldCause {
                reason: "FieldValueRequired",
                field: "metadata.name".into(),
                message: "Required value: name or generateName is required".into(),
            }],
        ));
    }
    // Same alphabet and length as upstream: no vowels (no words), no
    // look-alike characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    let max_prefix = 63 - suffix.len();
    let prefix = if prefix.len() > max_prefix {
        &prefix[..max_prefix]
    } else {
        prefix.as_str()
    };
    object::metadata_mut(object).insert("name".into(), json!(format!("{prefix}{suffix}")));
    Ok(())
}

fn reject_invalid(resource: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    let mut causes = validate::metadata_causes(object, |name| resource.strategy.name_errors(name));
    resource.strategy.validate(object, &mut causes);
    if let Some(custom) = &resource.custom {
        causes.extend(custom.validate(object));
    }
    reject_causes(resource, object, causes)
}

fn reject_causes(
    resource: &ResourceInfo,
    object: &Value,
    causes: Vec<FieldCause>,
) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &resource.kind,
            object::name(object),
            causes,
        ))
    }
}

/// Builds the object an update stores from the old one and the body.
fn merge_update(resource: &ResourceInfo, old: &Value, body: Value, target: UpdateTarget) -> Value {
    let mut new = match target {
        UpdateTarget::Status => {
            let mut new = old.clone();
            match body.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            new
        }
        UpdateTarget::Main => {
            let mut new = body;
            if resource.status_subresource {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            // Server-owned metadata comes from the stored object.
            let old_meta = object::metadata(old).cloned().unwrap_or_default();
            let meta = object::metadata_mut(&mut new);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match old_meta.get(field) {
                    Some(value) => meta.insert(field.into(), value.clone()),
                    None => meta.remove(field),
                };
            }
            resource.strategy.prepare_for_update(old, &mut new);
            if object::spec_view(&new) != object::spec_view(old) {
                let generation = old_meta
                    .get("generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                object::metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
            }
            new
        }
    };
    // The stored value never carries a resourceVersion; compare without it.
    object::metadata_mut(&mut new).insert(
        "resourceVersion".into(),
        old.pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null),
    );
    new
}

/// Rejects updates the kind's strategy refuses (immutable fields).
fn check_immutable(resource: &ResourceInfo, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    resource.strategy.validate_update(old, new, &mut causes);
    reject_causes(resource, new, causes)
}

/// Sets the status a new object starts with. Clients cannot create an
/// object that claims to be running already; whoever owns the status (the
/// kubelet, a controller, the syncer) reports it through `/status`.
fn set_initial_status(resource: &ResourceInfo, object: &mut Value) {
    let strategy = resource.strategy;
    let status = match strategy.initial_status(object) {
        Some(status) => status,
        None if resource.status_subresource && !strategy.keeps_status_on_create() => json!({}),
        None => return,
    };
    if let Some(map) = object.as_object_mut() {
        if status.as_object().is_some_and(|s| s.is_empty()) {
            map.remove("status");
        } else {
            map.insert("status".into(), status);
        }
    }
}

/// Parses a client-supplied resourceVersion.
pub fn parse_resource_version(text: &str) -> Result<Revision, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!("invalid resourceVersion {text:?}: not a number"))
    })
}

fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    object::decode_stored(&kv.value, kv.mod_revision).map_err(|err| {
        ApiError::internal(format!(
            "stored object at {} cannot be decoded: {err}",
            kv.key
        ))
    })
}

fn encode(object: &Value) -> Result<bytes::Bytes, ApiError> {
    object::encode_for_storage(object)
        .map_err(|err| ApiError::internal(format!("object cannot be encoded: {err}")))
}
