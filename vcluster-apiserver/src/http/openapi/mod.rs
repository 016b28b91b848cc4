//! `/openapi/v3` and `/openapi/v2`: the served operations and the schemas
//! of every served built-in kind.
//!
//! kubectl reads these documents to learn that the server validates field
//! names itself (the `fieldValidation` query parameter on each write), to
//! explain fields (`kubectl explain pod.spec.containers`), and to compute
//! client-side apply patches (the `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key` extensions). Schemas come from
//! k8s-openapi's `schemars` implementations, which carry upstream's
//! definition names and descriptions; the patch and list-type extensions
//! come from the generated patch metadata ([`crate::registry::meta`]), and
//! each kind's definition gets `x-kubernetes-group-version-kind`.
//!
//! Custom resources get definitions from their CRD's schema
//! ([`custom`]).
//!
//! Documents are built once per catalog (CRDs change it) and served with an
//! `ETag`, and as immutable when fetched by the `hash` the root document
//! lists, since kubectl fetches them often.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta};
use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

mod custom;
pub mod gnostic;

use crate::registry::meta::{compound_keys, PatchMeta, Shape};
use crate::resources::{Catalog, ResourceInfo};

/// Where v3 documents put definitions.
const V3_REFS: &str = "#/components/schemas/";
/// Where the v2 document puts definitions.
const V2_REFS: &str = "#/definitions/";

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A rendered document: its bytes and their fingerprint (the `hash` of v3
/// URLs and the `ETag`).
#[derive(Debug)]
pub struct Document {
    /// The JSON body.
    pub body: bytes::Bytes,
    /// Hex fingerprint of the body.
    pub hash: String,
}

impl Document {
    fn new(value: &Value) -> Document {
        let body = serde_json::to_vec(value).unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        Document {
            body: bytes::Bytes::from(body),
            hash: format!("{:016X}", hasher.finish()),
        }
    }
}

/// Every document of one catalog.
#[derive(Debug)]
pub struct Documents {
    fingerprint: u64,
    /// `/openapi/v3`.
    pub root: Arc<Document>,
    /// `/openapi/v3/<api/v1|apis/group/version>`.
    pub group_versions: BTreeMap<String, Arc<Document>>,
    /// `/openapi/v2`.
    pub v2: Arc<Document>,
    /// `/openapi/v2` in gnostic's protobuf form (see [`gnostic`]).
    pub v2_protobuf: bytes::Bytes,
}

/// The documents of `catalog`, built on first use and again whenever the
/// catalog changes.
pub fn documents(catalog: &Catalog) -> Arc<Documents> {
    static CACHE: OnceLock<Mutex<Option<Arc<Documents>>>> = OnceLock::new();
    let fingerprint = catalog_fingerprint(catalog);
    let cache = CACHE.get_or_init(|| Mutex::new(None));
    let mut slot = match cache.lock() {
        Ok(slot) => slot,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(docs) = slot.as_ref().filter(|d| d.fingerprint == fingerprint) {
        return docs.clone();
    }
    let docs = Arc::new(build(catalog, fingerprint));
    *slot = Some(docs.clone());
    docs
}

fn catalog_fingerprint(catalog: &Catalog) -> u64 {
    let mut hasher = DefaultHasher::new();
    for info in catalog.iter() {
        (
            &info.group,
            &info.version,
            &info.plural,
            &info.kind,
            info.namespaced,
        )
            .hash(&mut hasher);
        // A CRD can change its schema under the same names.
        if let Some(custom) = &info.custom {
            custom.schema_json.to_string().hash(&mut hasher);
        }
    }
    hasher.finish()
}

fn build(catalog: &Catalog, fingerprint: u64) -> Documents {
    let mut group_versions = BTreeMap::new();
    let mut root_paths = Map::new();
    let mut all_definitions = Map::new();
    let mut v2_paths = Map::new();
    for (group, version) in catalog.group_versions() {
        let path = gv_path(&group, &version);
        let (definitions, custom_names) = definitions(catalog, &group, &version);
        let doc = Document::new(&group_version_document(
            catalog,
            &group,
            &version,
            &definitions,
        ));
        root_paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
        );
        group_versions.insert(path, Arc::new(doc));
        for (name, schema) in definitions {
            let mut schema = to_v2(schema);
            if custom_names.contains(&name) {
                custom::v2_compatible(&mut schema);
            }
            all_definitions.insert(name, schema);
        }
        for (path, item) in paths(catalog, &group, &version, true) {
            v2_paths.insert(path, item);
        }
    }
    let v2 = json!({
        "swagger": "2.0",
        "info": info(),
        "paths": v2_paths,
        "definitions": all_definitions,
    });
    Documents {
        fingerprint,
        root: Arc::new(Document::new(&json!({"paths": root_paths}))),
        group_versions,
        v2_protobuf: bytes::Bytes::from(gnostic::encode(&v2)),
        v2: Arc::new(Document::new(&v2)),
    }
}

fn info() -> Value {
    json!({
        "title": "Kubernetes",
        "version": format!("v{}.{}.0", super::discovery::KUBERNETES_VERSION.0, super::discovery::KUBERNETES_VERSION.1),
    })
}

/// `api/v1` or `apis/<group>/<version>`: the key of a group-version in the
/// root document.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The root document: where each group-version's document is.
pub fn root(catalog: &Catalog) -> Value {
    serde_json::from_slice(&documents(catalog).root.body).unwrap_or(Value::Null)
}

/// The document of one group-version, if served.
pub fn group_version(catalog: &Catalog, group: &str, version: &str) -> Value {
    let (definitions, _) = definitions(catalog, group, version);
    group_version_document(catalog, group, version, &definitions)
}

fn group_version_document(
    catalog: &Catalog,
    group: &str,
    version: &str,
    definitions: &Map<String, Value>,
) -> Value {
    let mut schemas = definitions.clone();
    schemas.insert(
        PATCH_DEFINITION.to_owned(),
        json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}),
    );
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths(catalog, group, version, false),
        "components": {"schemas": schemas},
    })
}

/// The definitions the served kinds of a group-version need, with
/// upstream's extensions, and the names of those made from CRD schemas.
fn definitions(catalog: &Catalog, group: &str, version: &str) -> (Map<String, Value>, Vec<String>) {
    let settings = SchemaSettings::openapi3().with(|s| {
        s.meta_schema = None;
    });
    let mut generator = SchemaGenerator::new(settings);
    let mut kinds: Vec<(String, &ResourceInfo)> = Vec::new();
    let mut customs = Vec::new();
    for info in catalog
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        if let Some(custom) = &info.custom {
            customs.push((info, custom));
            continue;
        }
        let Some(schema) = info.typed.map(|t| t.schema) else {
            continue;
        };
        let reference = schema(&mut generator);
        if let Some(name) = reference
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(V3_REFS))
        {
            kinds.push((name.to_owned(), info));
        }
    }
    // Custom kinds refer to the shared metadata definitions.
    let metadata_names = (!customs.is_empty()).then(|| {
        (
            definition_of(schema_of::<ObjectMeta>(&mut generator)),
            definition_of(schema_of::<ListMeta>(&mut generator)),
        )
    });
    let mut definitions = generator.take_definitions(true);
    // k8s-openapi's types hold `metadata` by value, so the generated
    // schemas require it; Go's `metadata,omitempty` never is (`kubectl
    // explain` shows `-required-` from this list).
    for schema in definitions.values_mut() {
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|field| field != "metadata");
            if required.is_empty() {
                if let Some(map) = schema.as_object_mut() {
                    map.remove("required");
                }
            }
        }
    }
    let meta = PatchMeta::global();
    for (name, schema) in definitions.iter_mut() {
        if let Some(ty) = meta.by_name(&proto_name(name)) {
            let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (field, info) in &ty.fields {
                let Some(Value::Object(property)) = properties.get_mut(field) else {
                    continue;
                };
                if let Some(strategy) = info.strategy.tag() {
                    property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
                }
                if let Some(key) = &info.merge_key {
                    property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                }
                if info.shape == Shape::List && info.strategy.merge {
                    match &info.merge_key {
                        Some(key) => {
                            let keys: Vec<&str> = match compound_keys(&ty.name, field) {
                                Some(keys) => keys.iter().map(|(k, _)| *k).collect(),
                                None => vec![key.as_str()],
                            };
                            property.insert("x-kubernetes-list-type".into(), json!("map"));
                            property.insert("x-kubernetes-list-map-keys".into(), json!(keys));
                        }
                        None => {
                            property.insert("x-kubernetes-list-type".into(), json!("set"));
                        }
                    }
                }
            }
        }
    }
    for (name, info) in kinds {
        if let Some(Value::Object(schema)) = definitions.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": info.group, "kind": info.kind, "version": info.version}]),
            );
        }
    }
    let mut custom_names = Vec::new();
    if let Some((object_meta, list_meta)) = metadata_names {
        for (info, custom) in customs {
            for (name, schema) in custom::definitions(info, custom, &object_meta, &list_meta) {
                custom_names.push(name.clone());
                definitions.insert(name, schema);
            }
        }
    }
    (definitions, custom_names)
}

/// The definition name a generated `$ref` points at.
fn definition_of(reference: Schema) -> String {
    reference
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(V3_REFS))
        .unwrap_or_default()
        .to_owned()
}

/// `io.k8s.api.core.v1.Pod` -> `k8s.io.api.core.v1.Pod` (the metadata's names).
fn proto_name(openapi: &str) -> String {
    match openapi.strip_prefix("io.k8s.") {
        Some(rest) => format!(
            "k8s.io.{}",
            rest.replace("apiextensions-apiserver", "apiextensions_apiserver")
                .replace("kube-aggregator", "kube_aggregator")
        ),
        None => openapi.to_owned(),
    }
}

/// Swagger 2.0 form of a v3 schema: `#/definitions/` references, and
/// `allOf: [{$ref}]` wrappers back to a `$ref` with siblings, as upstream's
/// v2 document writes them.
fn to_v2(schema: Value) -> Value {
    match schema {
        Value::Object(mut map) => {
            if let Some(Value::Array(all_of)) = map.get("allOf") {
                if let [Value::Object(only)] = all_of.as_slice() {
                    if only.len() == 1 {
                        if let Some(reference) = only.get("$ref").cloned() {
                            map.remove("allOf");
                            map.insert("$ref".into(), reference);
                        }
                    }
                }
            }
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v) {
                            ("$ref", Value::String(r)) => {
                                Value::String(match r.strip_prefix(V3_REFS) {
                                    Some(name) => format!("{V2_REFS}{name}"),
                                    None => r,
                                })
                            }
                            (_, v) => to_v2(v),
                        };
                        (k, v)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(to_v2).collect()),
        other => other,
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether a built-in schema (and so patch metadata) exists for a kind.
fn has_schema(info: &ResourceInfo) -> bool {
    info.typed.is_some()
}

/// The definition patch request bodies refer to, as upstream names it.
const PATCH_DEFINITION: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

fn operation(info: &ResourceInfo, action: &str, verb_id: &str, v2: bool) -> Value {
    let group_id = if info.group.is_empty() {
        "core".to_owned()
    } else {
        info.group.split('.').next().unwrap_or_default().to_owned()
    };
    let mut names = vec!["dryRun", "fieldManager"];
    if matches!(action, "post" | "put" | "patch") {
        names.push("fieldValidation");
    }
    if action == "patch" {
        names.push("force");
    }
    let params: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let kind = if name == "force" { "boolean" } else { "string" };
            if v2 {
                json!({"name": name, "in": "query", "type": kind, "uniqueItems": true})
            } else {
                json!({"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": true}})
            }
        })
        .collect();
    let mut op = json!({
        "operationId": format!("{verb_id}{}{}{}", capitalize(&group_id), capitalize(&info.version), info.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
    });
    if action == "patch" && !v2 {
        // kubectl computes client-side apply patches from these schemas
        // only when the path declares strategic merge patches.
        let mut types = vec![
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
        ];
        if has_schema(info) {
            types.push("application/strategic-merge-patch+json");
        }
        let schema = json!({"schema": {"$ref": format!("{V3_REFS}{PATCH_DEFINITION}")}});
        let content: Map<String, Value> = types
            .into_iter()
            .map(|t| (t.to_owned(), schema.clone()))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

/// The paths and operations of a group-version.
fn paths(catalog: &Catalog, group: &str, version: &str, v2: bool) -> Map<String, Value> {
    let mut paths = Map::new();
    for info in catalog
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let base = format!("/{}", gv_path(group, version));
        let collection = if info.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", info.plural)
        } else {
            format!("{base}/{}", info.plural)
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(info, "list", "list", v2),
                "post": operation(info, "post", "create", v2),
                "delete": operation(info, "deletecollection", "deleteCollection", v2),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(info, "get", "read", v2),
                "put": operation(info, "put", "replace", v2),
                "patch": operation(info, "patch", "patch", v2),
                "delete": operation(info, "delete", "delete", v2),
            }),
        );
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_advertises_field_validation() {
        let catalog = Catalog::builtin();
        let root = root(&catalog);
        let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("apps listed");
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="));
        let doc = group_version(&catalog, "", "v1");
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
        let params = patch["parameters"].as_array().expect("parameters");
        assert!(params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        assert!(doc["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
    }

    #[test]
    fn schemas_carry_kinds_and_patch_extensions() {
        let catalog = Catalog::builtin();
        let doc = group_version(&catalog, "", "v1");
        let schemas = &doc["components"]["schemas"];
        let pod = &schemas["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        assert_eq!(
            pod["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        let volumes = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        assert!(schemas["io.k8s.api.core.v1.Container"]["description"].is_string());
        let apps = group_version(&catalog, "apps", "v1");
        let strategy = &apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]
            ["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    }

    #[test]
    fn v2_has_definitions_with_v2_references() {
        let catalog = Catalog::builtin();
        let docs = documents(&catalog);
        let v2: Value = serde_json::from_slice(&docs.v2.body).expect("json");
        assert_eq!(v2["swagger"], "2.0");
        let pod = &v2["definitions"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod["properties"]["spec"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodSpec"
        );
        assert!(v2["definitions"]["io.k8s.api.apps.v1.Deployment"]
            ["x-kubernetes-group-version-kind"]
            .is_array());
        assert!(!String::from_utf8_lossy(&docs.v2.body).contains("#/components/"));
        // Cached: the same catalog gives the same documents.
        assert!(Arc::ptr_eq(&docs, &documents(&catalog)));
        assert_eq!(
            proto_name("io.k8s.api.core.v1.Pod"),
            "k8s.io.api.core.v1.Pod"
        );
    }
}
