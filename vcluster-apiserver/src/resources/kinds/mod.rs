//! The built-in kinds: one file per kind holds everything about it (its
//! discovery facts, typed form, defaults, validation, immutable fields,
//! field selectors and table), and [`BUILTIN`] is the catalog of them.
//!
//! Adding a built-in kind is one new file here and its name in the
//! `catalog!` list below; the registry, discovery, OpenAPI, field selectors and
//! `kubectl get` pick it up from there.

use super::strategy::{Strategy, Subresource};
use super::{Conversion, ResourceInfo, Typed};

mod config_data;
mod fields;
mod pod_spec;
mod volume;
mod webhook;
mod workload;

/// Declares the kind modules and [`BUILTIN`], their catalog, from one
/// list: a kind is one file and one name here.
macro_rules! catalog {
    ($($kind:ident),* $(,)?) => {
        $(mod $kind;)*

        /// Every built-in kind this server stores and serves, in
        /// discovery order.
        pub const BUILTIN: &[&BuiltinKind] = &[$(&$kind::KIND),*];
    };
}

catalog![
    namespace,
    binding,
    component_status,
    pod,
    pod_template,
    replication_controller,
    service,
    endpoints,
    config_map,
    secret,
    service_account,
    persistent_volume_claim,
    persistent_volume,
    node,
    limit_range,
    resource_quota,
    event,
    deployment,
    replica_set,
    stateful_set,
    controller_revision,
    daemon_set,
    horizontal_pod_autoscaler,
    job,
    cron_job,
    lease,
    endpoint_slice,
    event_v1,
    ingress,
    ingress_class,
    ip_address,
    service_cidr,
    network_policy,
    pod_disruption_budget,
    custom_resource_definition,
    mutating_webhook_configuration,
    validating_webhook_configuration,
    validating_admission_policy,
    validating_admission_policy_binding,
    runtime_class,
    role,
    role_binding,
    cluster_role,
    cluster_role_binding,
    certificate_signing_request,
    priority_class,
    storage_class,
    volume_attachment,
    csi_node,
    csi_driver,
    csi_storage_capacity,
    volume_attributes_class,
    flow_schema,
    priority_level_configuration,
    device_class,
    resource_claim,
    resource_claim_template,
    resource_slice,
    api_service,
];

pub use priority_class::SYSTEM_CLASSES as SYSTEM_PRIORITY_CLASSES;

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
    /// Its k8s-openapi type: normalisation and OpenAPI schema.
    pub typed: Typed,
    /// Its rules.
    pub strategy: &'static dyn Strategy,
    /// The verbs it serves.
    pub verbs: &'static [&'static str],
    /// How this version converts to the stored one, for a kind served at
    /// several versions (see [`OTHER_VERSIONS`]); `None` for the stored
    /// version.
    pub conversion: Option<&'static Conversion>,
}

impl BuiltinKind {
    /// A namespaced kind of `group` (`""` for core), served at version
    /// `v1` as `plural`, with no subresources until added.
    pub const fn namespaced(
        group: &'static str,
        plural: &'static str,
        kind: &'static str,
        typed: Typed,
        strategy: &'static dyn Strategy,
    ) -> Self {
        Self {
            group,
            version: "v1",
            plural,
            kind,
            namespaced: true,
            short_names: &[],
            categories: &[],
            status: false,
            scale: false,
            subresources: &[],
            typed,
            strategy,
            verbs: super::STANDARD_VERBS,
            conversion: None,
        }
    }

    /// A cluster-scoped kind, otherwise as [`BuiltinKind::namespaced`].
    pub const fn cluster_scoped(
        group: &'static str,
        plural: &'static str,
        kind: &'static str,
        typed: Typed,
        strategy: &'static dyn Strategy,
    ) -> Self {
        let mut this = Self::namespaced(group, plural, kind, typed, strategy);
        this.namespaced = false;
        this
    }

    /// With short names (`po`, `svc`).
    pub const fn short_names(mut self, names: &'static [&'static str]) -> Self {
        self.short_names = names;
        self
    }

    /// In the `all` category (`kubectl get all`).
    pub const fn in_all(mut self) -> Self {
        self.categories = ALL;
        self
    }

    /// In `categories`.
    pub const fn categories(mut self, categories: &'static [&'static str]) -> Self {
        self.categories = categories;
        self
    }

    /// With a `status` subresource.
    pub const fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    /// With `status` and `scale` subresources.
    pub const fn with_scale(mut self) -> Self {
        self.status = true;
        self.scale = true;
        self
    }

    /// Serving only `verbs` (read-only or create-only kinds).
    pub const fn verbs(mut self, verbs: &'static [&'static str]) -> Self {
        self.verbs = verbs;
        self
    }

    /// With other subresources (`log`, `binding`, ...).
    pub const fn subresources(mut self, subresources: &'static [Subresource]) -> Self {
        self.subresources = subresources;
        self
    }

    /// Served at `version`, another than the stored one, converted by
    /// `conversion`.
    pub const fn converted(
        mut self,
        version: &'static str,
        conversion: &'static Conversion,
    ) -> Self {
        self.version = version;
        self.conversion = Some(conversion);
        self
    }

    /// Served (and stored) at `version` rather than `v1`.
    pub const fn at_version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// The catalog entry of this kind.
    pub fn resource(&self) -> ResourceInfo {
        ResourceInfo {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            plural: self.plural.to_owned(),
            // Every built-in kind's singular name is its lower-cased kind.
            singular: self.kind.to_lowercase(),
            kind: self.kind.to_owned(),
            namespaced: self.namespaced,
            short_names: self.short_names.iter().map(|s| (*s).to_owned()).collect(),
            categories: self.categories.iter().map(|s| (*s).to_owned()).collect(),
            status_subresource: self.status,
            scale_subresource: self.scale,
            subresources: self.subresources,
            typed: Some(self.typed),
            strategy: self.strategy,
            custom: None,
            verbs: self.verbs,
            conversion: self.conversion,
        }
    }
}

/// The further served versions of kinds in [`BUILTIN`], each converted to
/// and from the version its objects are stored at (what upstream's
/// conversion through the internal version does).
pub const OTHER_VERSIONS: &[&BuiltinKind] = &[&horizontal_pod_autoscaler::KIND_V1];

/// The built-in resources, ready for a [`super::Catalog`].
pub fn builtin_resources() -> Vec<ResourceInfo> {
    BUILTIN
        .iter()
        .chain(OTHER_VERSIONS)
        .map(|kind| kind.resource())
        .collect()
}

/// What a create makes of `object` before validation (defaults, initial
/// status, what the create prepares), for tests.
#[cfg(test)]
fn defaulted(kind: &BuiltinKind, mut object: serde_json::Value) -> serde_json::Value {
    kind.strategy.default(&mut object);
    kind.strategy.prepare_for_create(&mut object);
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
fn invalid_fields(kind: &BuiltinKind, object: &serde_json::Value) -> Vec<String> {
    let mut causes = Vec::new();
    kind.strategy.validate(object, &mut causes);
    causes.into_iter().map(|c| c.field).collect()
}
