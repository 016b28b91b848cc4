//! Writes that create or change objects: create, update (main resource or
//! status) and read-modify-write, with preconditions, retries on races,
//! service address allocation and the watch cache kept current.

use serde_json::{json, Value};

use super::delete::{check_finalizers, finalized};
use super::prepare::*;
use super::*;
use crate::resources::custom;
use crate::storage::registry_key;

impl Registry {
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
        let attributes = Attributes {
            resource,
            namespace: address.namespace.as_deref(),
            subresource: None,
            operation: Operation::Create,
            dry_run: options.dry_run,
            old: None,
            context: &options.context,
        };
        self.admit_mutating(&attributes, &mut object).await?;
        resource.strategy.prepare_for_create(&mut object);
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
        self.admit_validating(&attributes, &object).await?;
        let (mut allocation, reservation) =
            self.allocate_new(resource, &mut object, options).await?;
        if options.dry_run {
            allocation.rollback(&self.services);
            return Ok(object);
        }
        // A name that is taken is refused before any address is recorded
        // (a refused create leaves the store as it was, as far as a race
        // with another writer allows).
        if allocation.needs_claim() {
            match self.storage.get(&address.key()).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    allocation.rollback(&self.services);
                    reservation.release(&self.services).await;
                    return Err(
                        address.storage_error(StorageError::AlreadyExists { key: address.key() })
                    );
                }
                Err(err) => {
                    allocation.rollback(&self.services);
                    reservation.release(&self.services).await;
                    return Err(address.storage_error(err));
                }
            }
        }
        // The store decides who holds an address (replicas share it).
        if let Err(err) = allocation.claim(&self.services, &mut object).await {
            allocation.rollback(&self.services);
            reservation.release(&self.services).await;
            return Err(err);
        }
        let stored = self.storage_form(resource, &object).await;
        let bytes = match stored.and_then(|stored| encode_for(resource, &stored)) {
            Ok(bytes) => bytes,
            Err(err) => {
                allocation.abandon(&self.services).await;
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
                allocation.abandon(&self.services).await;
                reservation.release(&self.services).await;
                Err(address.storage_error(err))
            }
        }
    }

    /// A new object's service addresses: the provider's when it has some
    /// and this server accepts them, else the server's own. A dry run does
    /// not ask the provider (it must not leave anything behind).
    pub(super) async fn allocate_new(
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
        match self.services.allocate(resource, object, None).await {
            Ok(allocation) => Ok((allocation, reservation)),
            Err(err) if matches!(reservation, Reservation::Reserved { .. }) => {
                // The provider's addresses are outside what this server
                // accepts: give them back and allocate our own.
                reservation.restore_spec(object);
                reservation.release(&self.services).await;
                let allocation = self.services.allocate(resource, object, None).await?;
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
    pub(super) async fn record_own_addresses(&self, service: &Value, reason: &str) {
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
            let old = self.presented(&address.resource, decode(&current)?).await?;
            let mut new = merge_update(&address.resource, &old, body.clone(), target);
            if target == UpdateTarget::EphemeralContainers {
                check_ephemeral_containers(&address.resource, &old, &new)?;
            }
            address.resource.strategy.default(&mut new);
            let manager = options.field_manager.as_ref().map(|m| FieldManager {
                subresource: target.subresource().map(str::to_owned),
                ..m.clone()
            });
            patch::apply::record_update(&address.resource, Some(&old), &mut new, manager.as_ref())?;
            let attributes = Attributes {
                resource: &address.resource,
                namespace: address.namespace.as_deref(),
                subresource: (target == UpdateTarget::Status).then_some("status"),
                operation: Operation::Update,
                dry_run: options.dry_run,
                old: Some(&old),
                context: &options.context,
            };
            self.admit_mutating(&attributes, &mut new).await?;
            reject_invalid(&address.resource, &new)?;
            // Ephemeral containers have their own update rules (checked
            // above); nothing else of the pod changes on that path.
            if target != UpdateTarget::EphemeralContainers {
                check_immutable(&address.resource, &old, &new)?;
            }
            check_finalizers(&address.resource, &old, &new)?;
            options.admit(&address.resource, &new, Some(&old))?;
            self.admit_validating(&attributes, &new).await?;
            if is_crd(&address.resource) && target == UpdateTarget::Main {
                reject_causes(&address.resource, &new, custom::validate(&new, Some(&old)))?;
                let status = custom::status(&new, &old, &self.catalog());
                new["status"] = status;
            }
            let mut allocation = self
                .services
                .allocate(&address.resource, &mut new, Some(&old))
                .await?;
            if new == old
                && !self
                    .storage
                    .needs_rewrite(&address.key(), current.mod_revision)
            {
                // Nothing changed: no write, no new resourceVersion (unless
                // the stored value is encrypted with an old key).
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
            if let Err(err) = allocation.claim(&self.services, &mut new).await {
                allocation.rollback(&self.services);
                return Err(err);
            }
            let bytes = match self
                .storage_form(&address.resource, &new)
                .await
                .and_then(|stored| encode_for(&address.resource, &stored))
            {
                Ok(bytes) => bytes,
                Err(err) => {
                    allocation.abandon(&self.services).await;
                    return Err(err);
                }
            };
            match self
                .storage
                .update(&address.key(), bytes, current.mod_revision)
                .await
            {
                Ok(kv) => {
                    allocation.commit(&self.services, &new).await;
                    object::set_resource_version(&mut new, kv.mod_revision);
                    self.written(&address.resource, &new);
                    return Ok(new);
                }
                Err(StorageError::Conflict { .. }) if precondition.is_none() => {
                    allocation.abandon(&self.services).await;
                    continue;
                }
                Err(err) => {
                    allocation.abandon(&self.services).await;
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
            let old = self.presented(&address.resource, decode(&current)?).await?;
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
    pub(super) fn written(&self, resource: &ResourceInfo, object: &Value) {
        self.admission_changed(resource);
        if is_crd(resource) {
            self.catalog
                .update(|catalog| custom::install(catalog, object));
        }
    }

    /// A namespaced create needs its namespace, and one that is not being
    /// deleted (upstream's NamespaceLifecycle admission).
    pub(super) async fn require_namespace(
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
