//! The built-in kinds: one file per kind holds everything about it (its
//! discovery facts, typed form, defaults, validation, immutable fields,
//! field selectors and table), and [`BUILTIN`] is the catalog of them.
//!
//! Adding a built-in kind is one new file here and one line in
//! [`BUILTIN`]; the registry, discovery, OpenAPI, field selectors and
//! `kubectl get` pick it up from there.

use serde_json::Value;

use super::strategy::{Strategy, Subresource};
use super::{Normalizer, ResourceInfo};

mod config_data;
mod fields;
mod pod_spec;
mod workload;

mod cluster_role;
mod cluster_role_binding;
mod config_map;
mod controller_revision;
mod cron_job;
mod custom_resource_definition;
mod daemon_set;
mod deployment;
mod endpoint_slice;
mod endpoints;
mod event;
mod event_v1;
mod ingress;
mod job;
mod lease;
mod namespace;
mod network_policy;
mod node;
mod persistent_volume;
mod persistent_volume_claim;
mod pod;
mod replica_set;
mod role;
mod role_binding;
mod secret;
mod service;
mod service_account;
mod stateful_set;
mod storage_class;

/// Every built-in kind this server stores and serves, in discovery order.
pub const BUILTIN: &[&BuiltinKind] = &[
    &namespace::KIND,
    &pod::KIND,
    &service::KIND,
    &endpoints::KIND,
    &config_map::KIND,
    &secret::KIND,
    &service_account::KIND,
    &persistent_volume_claim::KIND,
    &persistent_volume::KIND,
    &node::KIND,
    &event::KIND,
    &deployment::KIND,
    &replica_set::KIND,
    &stateful_set::KIND,
    &controller_revision::KIND,
    &daemon_set::KIND,
    &job::KIND,
    &cron_job::KIND,
    &lease::KIND,
    &endpoint_slice::KIND,
    &event_v1::KIND,
    &ingress::KIND,
    &network_policy::KIND,
    &custom_resource_definition::KIND,
    &role::KIND,
    &role_binding::KIND,
    &cluster_role::KIND,
    &cluster_role_binding::KIND,
    &storage_class::KIND,
];

/// The `all` category (`kubectl get all`).
const ALL: &[&str] = &["all"];

/// One built-in kind: the facts discovery publishes and its strategy.
#[derive(Debug)]
pub struct BuiltinKind {
    /// API group; empty for the legacy core group.
    pub group: &'static str,
    /// The served version.
    pub version: &'static str,
    /// Plural resource name used in URLs.
    pub plural: &'static str,
    /// Singular name (`kubectl get pod`).
    pub singular: &'static str,
    /// Object kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `svc`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Has a `status` subresource.
    pub status: bool,
    /// Has a `scale` subresource.
    pub scale: bool,
    /// Other subresources it serves (`log`, `binding`, ...).
    pub subresources: &'static [Subresource],
    /// The typed round trip that checks and normalises its objects.
    pub normalize: Normalizer,
    /// Its rules.
    pub strategy: &'static dyn Strategy,
}

impl BuiltinKind {
    /// The catalog entry of this kind.
    pub fn resource(&self) -> ResourceInfo {
        ResourceInfo {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            plural: self.plural.to_owned(),
            singular: self.singular.to_owned(),
            kind: self.kind.to_owned(),
            namespaced: self.namespaced,
            short_names: self.short_names.iter().map(|s| (*s).to_owned()).collect(),
            categories: self.categories.iter().map(|s| (*s).to_owned()).collect(),
            status_subresource: self.status,
            scale_subresource: self.scale,
            subresources: self.subresources,
            normalize: Some(self.normalize),
            strategy: self.strategy,
            custom: None,
        }
    }
}

/// Round-trips a JSON object through the typed form `T`: fields of the
/// wrong type are rejected and unknown fields dropped.
fn typed<T>(value: Value) -> Result<Value, serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(value)?;
    serde_json::to_value(typed)
}

/// The built-in resources, ready for a [`super::Catalog`].
pub fn builtin_resources() -> Vec<ResourceInfo> {
    BUILTIN.iter().map(|kind| kind.resource()).collect()
}

/// What a kind's defaulting and validation make of `object`, for tests.
#[cfg(test)]
fn defaulted(kind: &BuiltinKind, mut object: Value) -> Value {
    kind.strategy.default(&mut object);
    if let (Some(status), Some(map)) = (
        kind.strategy.initial_status(&object),
        object.as_object_mut(),
    ) {
        map.insert("status".into(), status);
    }
    object
}

/// The fields a kind's validation complains about, for tests.
#[cfg(test)]
fn invalid_fields(kind: &BuiltinKind, object: &Value) -> Vec<String> {
    let mut causes = Vec::new();
    kind.strategy.validate(object, &mut causes);
    causes.into_iter().map(|c| c.field).collect()
}
