//! What differs between kinds, as one trait: the shape of kube-apiserver's
//! per-resource strategies (`PrepareForCreate`, `Validate`,
//! `ValidateUpdate`, `CheckGracefulDelete`, `GetAttrs`, the table
//! convertor). The registry and the HTTP layer are generic and ask the
//! resource's [`Strategy`]; every built-in kind implements it in its own
//! file under `resources/kinds/`, custom resources use the defaults.
//!
//! Every method is a pure decision over JSON values: the registry does the
//! reads and writes.

use std::fmt;

use serde_json::Value;
use vcluster_core::validation;

use crate::error::FieldCause;
use crate::object;
use crate::resources::table::Printer;

/// The fields every kind can be selected by (`GetAttrs`' defaults).
pub const NAME_AND_NAMESPACE: &[&str] = &["metadata.name", "metadata.namespace"];

/// The rules of one kind. Every method has upstream's generic behaviour
/// as its default, so a kind overrides only what it does differently.
pub trait Strategy: Send + Sync + fmt::Debug {
    /// Why `name` cannot name an object of this kind (upstream's `nameFn`
    /// of `ValidateObjectMeta`): DNS-1123 subdomains unless overridden.
    fn name_errors(&self, name: &str) -> Vec<String> {
        validation::dns1123_subdomain_errors(name)
    }

    /// Fills the defaults of an object about to be stored, on create and
    /// on update, as upstream's decoding does.
    fn default(&self, _object: &mut Value) {}

    /// The status a new object starts with, replacing what the client sent
    /// (`PrepareForCreate`); `None` keeps the generic rule (status dropped
    /// for kinds with a `status` subresource, kept otherwise).
    fn initial_status(&self, _object: &Value) -> Option<Value> {
        None
    }

    /// Whether a client may create an object with its status set (nodes
    /// register themselves with theirs).
    fn keeps_status_on_create(&self) -> bool {
        false
    }

    /// Kind-specific validation of a whole object (`Validate`); object
    /// metadata is checked by the registry for every kind.
    fn validate(&self, _object: &Value, _causes: &mut Vec<FieldCause>) {}

    /// Update rules beyond `validate`: immutable fields (`ValidateUpdate`).
    fn validate_update(&self, _old: &Value, _new: &Value, _causes: &mut Vec<FieldCause>) {}

    /// Carries over what an update of the main resource may not change
    /// besides status and server-owned metadata (`PrepareForUpdate`).
    ///
    /// By default it fills the new object's defaults: upstream decodes (and
    /// so defaults) a body before `PrepareForUpdate`, and the generation
    /// must compare the defaulted spec with the stored one, not the body.
    /// A kind overriding this calls [`default_for_update`] first.
    fn prepare_for_update(&self, old: &Value, new: &mut Value) {
        default_for_update(self, old, new);
    }

    /// Whether a `/status` write takes the request's labels, annotations,
    /// finalizers and owner references: most built-in kinds' status
    /// strategies upstream reset only the spec. Custom resources and the
    /// kinds upstream calls `ResetObjectMetaForStatus` for keep the stored
    /// metadata.
    fn status_writes_metadata(&self) -> bool {
        true
    }

    /// What a `/status` write may not change beyond the spec, when it
    /// writes metadata (a deployment's labels, a pod's owner references).
    fn prepare_for_status_update(&self, _old: &Value, _new: &mut Value) {}

    /// The grace period a delete of `old` waits for, when this kind is
    /// deleted gracefully (`CheckGracefulDelete`; pods only upstream);
    /// `requested` is the client's `gracePeriodSeconds`.
    fn grace_period(&self, _old: &Value, _requested: Option<i64>) -> Option<i64> {
        None
    }

    /// Changes a create makes after the writer's managed fields are
    /// recorded, which the writer therefore does not own: upstream's
    /// mutating admission (a pod's service account, its default
    /// tolerations) and `PrepareForCreate` (a job's generated selector).
    /// [`Strategy::default`] is for defaults applied as the body is read.
    fn prepare_for_create(&self, _object: &mut Value) {}

    /// Writes who asks for a new object into it, for the kinds whose spec
    /// records its requester (a CertificateSigningRequest's `username`,
    /// `groups`, ...): taken from the authenticated request, never from
    /// the body.
    fn stamp_requester(&self, _object: &mut Value, _requester: &crate::auth::UserInfo) {}

    /// Top-level fields a write of the main resource never owns, because
    /// the kind resets them (upstream's `GetResetFields`, beyond the
    /// `status` every kind with a status subresource resets).
    fn reset_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether `DELETE` answers with the object it removed (upstream's
    /// `ReturnDeletedObject`: pods, services, volumes and a few more)
    /// rather than a `Status` naming it. An object that stays, waiting for
    /// finalizers, is always answered with.
    fn returns_deleted_object(&self) -> bool {
        false
    }

    /// Whether a delete that names no propagation policy orphans the
    /// object's dependents (upstream's `DefaultGarbageCollectionPolicy`
    /// returning `OrphanDependents`: core/v1 replication controllers, for
    /// backwards compatibility) rather than deleting them in the
    /// background.
    fn orphans_by_default(&self) -> bool {
        false
    }

    /// Whether an object whose finalizers are all gone may be removed from
    /// storage (namespaces also wait for their `spec.finalizers`).
    fn ready_to_remove(&self, _object: &Value) -> bool {
        true
    }

    /// The fields a list or watch may select on (`fieldSelector`).
    fn selectable_fields(&self) -> &'static [&'static str] {
        NAME_AND_NAMESPACE
    }

    /// A field's value as field selectors compare it: a string, `""` when
    /// unset.
    fn field_value(&self, object: &Value, field: &str) -> String {
        generic_field_value(object, field)
    }

    /// How `kubectl get` shows the kind; `None` for kube's default table
    /// (NAME, AGE).
    fn printer(&self) -> Option<Printer> {
        None
    }
}

/// Fills `new`'s defaults during an update, as a stored object: it
/// carries the stored `resourceVersion` (the registry stamps it on every
/// update anyway), so defaults that apply to new objects only do not apply.
pub fn default_for_update<S: Strategy + ?Sized>(strategy: &S, old: &Value, new: &mut Value) {
    if object::meta_str(new, "resourceVersion").is_empty() {
        if let Some(rv) = old.pointer("/metadata/resourceVersion") {
            object::metadata_mut(new).insert("resourceVersion".into(), rv.clone());
        }
    }
    strategy.default(new);
}

/// Whether `object` is being created: the registry strips
/// `resourceVersion` from a new object before defaulting it, and an update
/// carries the stored one.
pub fn is_new(object: &Value) -> bool {
    object::meta_str(object, "resourceVersion").is_empty()
}

/// A field as field selectors read it: strings, numbers and booleans in
/// their text form, anything else as `""`.
pub fn generic_field_value(object: &Value, field: &str) -> String {
    match object::path(object, field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// A boolean field as upstream's field selectors read it: unset is
/// `false`, not empty.
pub fn bool_field_value(object: &Value, field: &str) -> String {
    object::path(object, field)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

/// The strategy of kinds with nothing of their own: custom resources
/// (their schema is checked by `crate::resources::custom`) and hand-built resources.
#[derive(Debug)]
pub struct Generic;

impl Strategy for Generic {
    /// Upstream's custom resource status strategy copies only `status`.
    fn status_writes_metadata(&self) -> bool {
        false
    }
}

/// [`Generic`], as the default of a resource's strategy.
pub static GENERIC: Generic = Generic;

/// A subresource beyond `status` and `scale` that a kind serves, as
/// discovery lists it (`pods/log`, `namespaces/finalize`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// The path segment (`log`).
    pub name: &'static str,
    /// The kind of its body (`Pod`, `TokenRequest`).
    pub kind: &'static str,
    /// The verbs discovery lists.
    pub verbs: &'static [&'static str],
}
