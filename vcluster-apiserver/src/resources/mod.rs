//! What the server serves: the catalog of resources, each with the facts
//! discovery publishes (kind, scope, verbs, short names, subresources) and
//! the hooks the generic handlers need (decoding into the typed object).
//!
//! The catalog changes at run time (CustomResourceDefinitions add and
//! remove resources), so the server keeps it in a [`SharedCatalog`]: every
//! request works on one immutable [`Catalog`] snapshot, and a change builds
//! a new snapshot and swaps it in (copy on write), so readers never wait on
//! writers for longer than an `Arc` clone.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::resources::custom::CustomResource;
use crate::storage::{registry_key, registry_prefix};

pub mod custom;
pub mod events;
pub mod kinds;
pub mod strategy;
pub mod table;

pub use kinds::{builtin_resources, BuiltinKind};
pub use strategy::{Strategy, Subresource};

/// The verbs every served resource supports in this server.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Checks and normalises a decoded object of one kind by a round trip
/// through its typed form: fields of the wrong type are rejected and
/// unknown fields dropped, as kube-apiserver does for built-in kinds.
pub type Normalizer = fn(Value) -> Result<Value, serde_json::Error>;

/// Adds a kind's OpenAPI schema to a generator and returns its reference.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The typed form of a built-in kind (its k8s-openapi struct): how its
/// objects are normalised and the OpenAPI schema published for it.
#[derive(Clone, Copy)]
pub struct Typed {
    /// The typed round trip.
    pub normalize: Normalizer,
    /// The OpenAPI schema.
    pub schema: SchemaFn,
}

impl Typed {
    /// The typed form `T`.
    pub const fn of<T>() -> Self
    where
        T: DeserializeOwned + Serialize + JsonSchema,
    {
        Self {
            normalize: round_trip::<T>,
            schema: schema_of::<T>,
        }
    }
}

impl std::fmt::Debug for Typed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Typed")
    }
}

/// Round-trips a JSON object through `T`: fields of the wrong type are
/// rejected and unknown fields dropped.
fn round_trip<T>(value: Value) -> Result<Value, serde_json::Error>
where
    T: DeserializeOwned + Serialize,
{
    let typed: T = serde_json::from_value(value)?;
    serde_json::to_value(typed)
}

/// `T`'s schema, registered in `generator`.
fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// How a served version of a built-in kind maps to the version its
/// objects are stored at, when one kind is served at two versions
/// (`autoscaling/v1` and `v2` horizontal pod autoscalers): both functions
/// rewrite an object in place, `apiVersion` included.
#[derive(Clone, Copy)]
pub struct Conversion {
    /// The stored version's form of an object written at this version.
    pub to_storage: fn(&mut Value),
    /// This version's form of a stored object.
    pub from_storage: fn(&mut Value),
}

impl std::fmt::Debug for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Conversion")
    }
}

/// One served resource (`pods`, `deployments.apps`, ...).
///
/// `Default` exists so code building a resource by hand (tests, embedders)
/// can name only the fields it cares about.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// API group; empty for the legacy core group.
    pub group: String,
    /// The one served version.
    pub version: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Singular name (`kubectl get pod`).
    pub singular: String,
    /// Object kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`po`, `svc`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `status` subresource: the main resource ignores status
    /// changes and `/status` ignores everything else.
    pub status_subresource: bool,
    /// Has a `scale` subresource.
    pub scale_subresource: bool,
    /// Other subresources it serves (`pods/log`, `namespaces/finalize`).
    pub subresources: &'static [Subresource],
    /// The typed form, for built-in kinds.
    pub typed: Option<Typed>,
    /// The kind's rules (defaults, validation, field selectors, table);
    /// [`strategy::GENERIC`] for custom resources.
    pub strategy: &'static dyn Strategy,
    /// What a CustomResourceDefinition says about this resource (schema,
    /// printer columns, scale paths); `None` for built-in kinds.
    pub custom: Option<Arc<CustomResource>>,
    /// The verbs it serves ([`STANDARD_VERBS`] but for the read-only and
    /// create-only kinds); discovery lists them and others answer 405.
    pub verbs: &'static [&'static str],
    /// For a built-in kind served at several versions, how this version
    /// converts to and from the stored one; `None` for the stored version
    /// (and every kind served at one version).
    pub conversion: Option<&'static Conversion>,
}

impl Default for ResourceInfo {
    fn default() -> Self {
        Self {
            group: String::new(),
            version: String::new(),
            plural: String::new(),
            singular: String::new(),
            kind: String::new(),
            namespaced: false,
            short_names: Vec::new(),
            categories: Vec::new(),
            status_subresource: false,
            scale_subresource: false,
            subresources: &[],
            typed: None,
            strategy: &strategy::GENERIC,
            custom: None,
            verbs: STANDARD_VERBS,
            conversion: None,
        }
    }
}

impl ResourceInfo {
    /// Whether it serves `verb` (`get`, `create`, ...).
    pub fn serves_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Whether it serves the subresource `name` beyond `status` and
    /// `scale` (`log`, `binding`, `finalize`, `token`).
    pub fn serves_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `PodList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `pods` or `deployments.apps`, as errors name the resource.
    pub fn qualified_name(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The group whose storage holds this resource's objects: its own,
    /// except for `events.k8s.io` events, which are core events
    /// ([`events`]).
    pub fn storage_group(&self) -> &str {
        if events::is_events_k8s_io(self) {
            ""
        } else {
            &self.group
        }
    }

    /// Where the objects of this resource (in `namespace`, or all) are
    /// stored.
    pub fn storage_prefix(&self, namespace: Option<&str>) -> String {
        registry_prefix(self.storage_group(), &self.plural, namespace)
    }

    /// The storage key of one object of this resource.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        registry_key(self.storage_group(), &self.plural, namespace, name)
    }

    /// Whether this is `group` / `plural` (any version).
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }

    /// The OpenAPI v3 schema (`openAPIV3Schema`) of a custom resource
    /// version, as its CRD declares it; `None` for built-in kinds, whose
    /// schemas come from k8s-openapi. This is what `/openapi/v3` publishes
    /// for a CRD.
    pub fn openapi_schema(&self) -> Option<&Value> {
        self.custom.as_ref().map(|c| &c.schema_json)
    }
}

/// The resources one server serves, indexed for request routing.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// (group, version, plural) -> resource.
    by_path: BTreeMap<(String, String, String), Arc<ResourceInfo>>,
}

impl Catalog {
    /// The catalog of every built-in resource this server implements.
    pub fn builtin() -> Self {
        let mut catalog = Self::default();
        for info in builtin_resources() {
            catalog.insert(info);
        }
        catalog
    }

    /// Adds or replaces a resource.
    pub fn insert(&mut self, info: ResourceInfo) {
        let key = (
            info.group.clone(),
            info.version.clone(),
            info.plural.clone(),
        );
        self.by_path.insert(key, Arc::new(info));
    }

    /// The resource served at `/apis/<group>/<version>/<plural>`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.by_path
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// Every resource, ordered by group, version and name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ResourceInfo>> {
        self.by_path.values()
    }

    /// The group-versions served, core first, then groups alphabetically.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (group, version, _) in self.by_path.keys() {
            if !out.iter().any(|(g, v)| g == group && v == version) {
                out.push((group.clone(), version.clone()));
            }
        }
        out
    }

    /// Whether the group/version is served at all.
    pub fn serves(&self, group: &str, version: &str) -> bool {
        self.by_path
            .keys()
            .any(|(g, v, _)| g == group && v == version)
    }

    /// Removes every version of `group` / `plural`; returns how many.
    pub fn remove_resource(&mut self, group: &str, plural: &str) -> usize {
        let before = self.by_path.len();
        self.by_path
            .retain(|(g, _, p), _| !(g == group && p == plural));
        before - self.by_path.len()
    }

    /// One served version of `group` / `plural`, whichever: the storage
    /// layout does not depend on the version, so any of them addresses the
    /// stored objects (the garbage collector and namespace deletion use it).
    pub fn by_resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let mut found = self
            .by_path
            .values()
            .filter(|r| r.group == group && r.plural == plural);
        let first = found.next()?.clone();
        // Prefer the storage version (of a custom resource, or of a
        // built-in kind served at several versions).
        Some(
            std::iter::once(first.clone())
                .chain(found.cloned())
                .find(|r| match &r.custom {
                    Some(custom) => custom.storage,
                    None => r.conversion.is_none(),
                })
                .unwrap_or(first),
        )
    }

    /// The resource of a kind within a group (`apps`, `ReplicaSet`), of
    /// any served version: how owner references (`apiVersion` + `kind`)
    /// are resolved.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let plural = self
            .by_path
            .values()
            .find(|r| r.group == group && r.kind == kind)?
            .plural
            .clone();
        self.by_resource(group, &plural)
    }

    /// The OpenAPI v3 schema of a custom resource kind at one version
    /// (see [`ResourceInfo::openapi_schema`]); `None` for built-in kinds.
    pub fn custom_schema(&self, group: &str, version: &str, kind: &str) -> Option<Value> {
        self.by_path
            .values()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .and_then(|r| r.openapi_schema().cloned())
    }
}

/// The catalog a running server serves, changed at run time when
/// CustomResourceDefinitions come and go.
///
/// Readers take a [`SharedCatalog::snapshot`] (an `Arc` clone under a read
/// lock held for nanoseconds) and keep using it for the whole request, so
/// a request never sees half of a change; writers copy the catalog, change
/// the copy and swap it in.
#[derive(Debug)]
pub struct SharedCatalog {
    current: RwLock<Arc<Catalog>>,
}

impl SharedCatalog {
    /// A shared catalog starting with `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Self {
            current: RwLock::new(Arc::new(catalog)),
        }
    }

    /// The catalog as it is now.
    pub fn snapshot(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Applies `change` to a copy of the catalog and publishes the copy.
    pub fn update<T>(&self, change: impl FnOnce(&mut Catalog) -> T) -> T {
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = Catalog::clone(&guard);
        let out = change(&mut next);
        *guard = Arc::new(next);
        out
    }
}

/// The fields of `object` that its kind does not know, as dotted paths
/// (`spec.replica`): what `fieldValidation=Strict` rejects and `Warn`
/// warns about. Kinds without a typed form know every field.
pub fn unknown_fields(resource: &ResourceInfo, object: &Value) -> Vec<String> {
    if let Some(custom) = &resource.custom {
        return custom.unknown_fields(object);
    }
    let Some(normalize) = resource.typed.map(|t| t.normalize) else {
        return Vec::new();
    };
    let Ok(known) = normalize(object.clone()) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    collect_unknown(object, &known, "", &mut unknown);
    unknown
}

fn collect_unknown(given: &Value, known: &Value, at: &str, out: &mut Vec<String>) {
    match (given, known) {
        (Value::Object(given), Value::Object(known)) => {
            for (key, value) in given {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match known.get(key) {
                    Some(known_value) => collect_unknown(value, known_value, &path, out),
                    // Nulls and empty values are dropped by the round trip
                    // without being unknown.
                    None if is_empty(value) => {}
                    None => out.push(path),
                }
            }
        }
        (Value::Array(given), Value::Array(known)) if given.len() == known.len() => {
            for (i, (g, k)) in given.iter().zip(known).enumerate() {
                collect_unknown(g, k, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_found_with_their_paths() {
        let catalog = Catalog::builtin();
        let pods = catalog.get("", "v1", "pods").expect("pods");
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": null, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}], "replica": 2},
        });
        assert_eq!(
            unknown_fields(&pods, &pod),
            [
                "metadata.bogus",
                "spec.containers[0].imagePolicy",
                "spec.replica"
            ]
        );
    }

    #[test]
    fn builtin_catalog_routes_core_and_named_groups() {
        let catalog = Catalog::builtin();
        let pods = catalog.get("", "v1", "pods").expect("pods served");
        assert_eq!((pods.kind.as_str(), pods.namespaced), ("Pod", true));
        assert_eq!(pods.api_version(), "v1");
        let deploy = catalog
            .get("apps", "v1", "deployments")
            .expect("deployments served");
        assert_eq!(deploy.qualified_name(), "deployments.apps");
        assert!(deploy.scale_subresource);
        assert!(!catalog.get("", "v1", "nodes").expect("nodes").namespaced);
        assert!(catalog.get("apps", "v1", "pods").is_none());
        let gvs = catalog.group_versions();
        assert_eq!(gvs.first(), Some(&(String::new(), "v1".to_owned())));
        assert!(gvs.contains(&("events.k8s.io".to_owned(), "v1".to_owned())));
    }

    #[test]
    fn every_builtin_normalizer_accepts_its_own_minimal_object() {
        for info in builtin_resources() {
            let normalize = info.typed.expect("built-in kinds are typed").normalize;
            let mut object = serde_json::json!({
                "apiVersion": info.api_version(),
                "kind": info.kind,
                "metadata": {"name": "x"},
                // The only required top-level fields among built-in kinds.
                "involvedObject": {},
                "eventTime": "2024-01-01T00:00:00.000000Z",
            });
            if info.kind == "CustomResourceDefinition" {
                object["spec"] = serde_json::json!({
                    "group": "example.com", "scope": "Namespaced", "versions": [],
                    "names": {"plural": "xs", "kind": "X"},
                });
            }
            let out = normalize(object)
                .unwrap_or_else(|e| panic!("{} rejects a minimal object: {e}", info.plural));
            assert_eq!(out["kind"], info.kind.as_str());
        }
    }
}
