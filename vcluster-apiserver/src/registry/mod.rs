//! The object registry: the semantics of create, get, update and delete
//! for any served resource, independent of HTTP.
//!
//! It is what turns a key-value [`Storage`] into a Kubernetes API: it fills
//! `uid`, `creationTimestamp` and `generation`, applies defaults, validates,
//! honours `resourceVersion` preconditions, keeps `status` apart from the
//! rest, allocates service IPs, and maps storage errors to API errors.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::object::{self, defaults, validate};
use crate::resources::{Catalog, ResourceInfo};
use crate::storage::{registry_key, KeyValue, Revision, Storage, StorageError};
use crate::watch::WatchHub;

mod bootstrap;
mod list;
mod patch;
mod services;
mod subresources;

pub use list::{ListOptions, ListPage};
pub use patch::{apply_patch, PatchKind};
pub use services::ServiceNetwork;
pub use subresources::scale_of;

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
        registry_key(
            &self.resource.group,
            &self.resource.plural,
            self.namespace.as_deref(),
            &self.name,
        )
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
    catalog: Arc<Catalog>,
    services: ServiceNetwork,
    hub: WatchHub,
}

impl Registry {
    /// A registry over `storage`, serving `catalog`; `start` must run
    /// before it serves requests.
    pub fn new(
        storage: Arc<dyn Storage>,
        catalog: Arc<Catalog>,
        services: ServiceNetwork,
        hub: WatchHub,
    ) -> Self {
        Self {
            storage,
            catalog,
            services,
            hub,
        }
    }

    /// The served resources.
    pub fn catalog(&self) -> &Arc<Catalog> {
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
        decode(&kv)
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
        if object.get("spec").is_some() {
            object::metadata_mut(&mut object).insert("generation".into(), json!(1));
        } else {
            object::metadata_mut(&mut object).remove("generation");
        }
        defaults::apply_defaults(resource, &mut object);
        defaults::set_initial_status(resource, &mut object);
        reject_invalid(resource, &object)?;
        if let Some(ns) = &address.namespace {
            self.require_namespace(ns).await?;
        }
        let allocation = self.services.allocate(resource, &mut object, None)?;
        if options.dry_run {
            allocation.rollback(&self.services);
            return Ok(object);
        }
        let bytes = encode(&object)?;
        match self.storage.create(&address.key(), bytes).await {
            Ok(kv) => {
                object::set_resource_version(&mut object, kv.mod_revision);
                Ok(object)
            }
            Err(err) => {
                allocation.rollback(&self.services);
                Err(address.storage_error(err))
            }
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
            let old = decode(&current)?;
            let mut new = merge_update(&address.resource, &old, body.clone(), target);
            defaults::apply_defaults(&address.resource, &mut new);
            reject_invalid(&address.resource, &new)?;
            check_immutable(&address.resource, &old, &new)?;
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
            let bytes = encode(&new)?;
            match self
                .storage
                .update(&address.key(), bytes, current.mod_revision)
                .await
            {
                Ok(kv) => {
                    allocation.commit(&self.services);
                    object::set_resource_version(&mut new, kv.mod_revision);
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

    /// Deletes an object; returns it as it was.
    pub async fn delete(
        &self,
        address: &ObjectAddress,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        if address.resource.group.is_empty()
            && address.resource.plural == "namespaces"
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
            let old = decode(&current)?;
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
            if options.dry_run {
                return Ok(old);
            }
            if address.resource.group.is_empty() && address.resource.plural == "namespaces" {
                self.delete_namespace_contents(&address.name).await?;
            }
            match self
                .storage
                .delete(&address.key(), Some(current.mod_revision))
                .await
            {
                Ok(_) => {
                    self.services.release(&address.resource, &old);
                    return Ok(old);
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(err) => return Err(address.storage_error(err)),
            }
        }
        Err(ApiError::conflict(
            &address.resource.group,
            &address.resource.plural,
            &address.name,
            "too many concurrent writers; try again",
        ))
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

    /// Deletes everything stored in a namespace (every namespaced resource).
    async fn delete_namespace_contents(&self, namespace: &str) -> Result<(), ApiError> {
        for resource in self.catalog.iter().filter(|r| r.namespaced) {
            let prefix =
                crate::storage::registry_prefix(&resource.group, &resource.plural, Some(namespace));
            let page = self
                .storage
                .list(crate::storage::ListRequest::prefix(prefix))
                .await?;
            for kv in page.items {
                match self.storage.delete(&kv.key, None).await {
                    Ok(deleted) => {
                        if let Ok(object) = decode(&deleted.previous) {
                            self.services.release(resource, &object);
                        }
                    }
                    Err(StorageError::NotFound { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    async fn require_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let key = registry_key("", "namespaces", None, namespace);
        match self.storage.get(&key).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found("", "namespaces", namespace)),
        }
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

/// Rejects fields of the wrong type and drops unknown ones (typed kinds).
fn normalize(resource: &ResourceInfo, body: Value) -> Result<Value, ApiError> {
    let Some(normalize) = resource.normalize else {
        return Ok(body);
    };
    normalize(body).map_err(|err| {
        ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {}: {err}",
            resource.kind, resource.version, resource.kind
        ))
    })
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
    let causes = validate::validate(resource, object);
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

/// Rejects updates of fields Kubernetes treats as immutable.
fn check_immutable(resource: &ResourceInfo, old: &Value, new: &Value) -> Result<(), ApiError> {
    let forbidden = |field: &str, message: &str| {
        ApiError::invalid(
            &resource.kind,
            object::name(new),
            vec![crate::error::FieldCause {
                reason: "FieldValueForbidden",
                field: field.into(),
                message: format!("Forbidden: {message}"),
            }],
        )
    };
    match (resource.group.as_str(), resource.kind.as_str()) {
        ("", "Pod") => {
            let mut old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
            let mut new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
            for spec in [&mut old_spec, &mut new_spec] {
                for list in ["containers", "initContainers"] {
                    if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            item.remove("image");
                        }
                    }
                }
                if let Some(map) = spec.as_object_mut() {
                    map.remove("activeDeadlineSeconds");
                    map.remove("tolerations");
                    map.remove("terminationGracePeriodSeconds");
                }
            }
            if old_spec != new_spec {
                return Err(forbidden(
                    "spec",
                    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                ));
            }
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
            if old.pointer("/spec/selector") != new.pointer("/spec/selector") =>
        {
            return Err(ApiError::invalid(
                &resource.kind,
                object::name(new),
                vec![crate::error::FieldCause::immutable("spec.selector")],
            ));
        }
        _ => {}
    }
    Ok(())
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
