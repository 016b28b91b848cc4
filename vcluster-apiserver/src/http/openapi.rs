//! `/openapi/v3`: the operations this server serves, per group-version.
//!
//! kubectl reads these documents to learn that the server validates field
//! names itself (the `fieldValidation` query parameter on each write), and
//! then leaves validation to the server instead of downloading schemas.
//! The documents list paths and operations only: object schemas are not
//! published yet, so `kubectl explain` does not work (see docs/apiserver.md).

use serde_json::{json, Map, Value};

use crate::resources::{Catalog, ResourceInfo};

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
    let mut paths = Map::new();
    for (group, version) in catalog.group_versions() {
        let path = gv_path(&group, &version);
        let hash = fnv1a(&group_version(catalog, &group, &version).to_string());
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

/// A stable fingerprint of a document, so clients can cache it by URL.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn operation(info: &ResourceInfo, action: &str, verb_id: &str) -> Value {
    let group_id = if info.group.is_empty() {
        "core".to_owned()
    } else {
        info.group.split('.').next().unwrap_or_default().to_owned()
    };
    let mut params = vec![
        json!({"name": "dryRun", "in": "query", "schema": {"type": "string"}}),
        json!({"name": "fieldManager", "in": "query", "schema": {"type": "string"}}),
    ];
    if matches!(action, "post" | "put" | "patch") {
        params
            .push(json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}));
    }
    json!({
        "operationId": format!("{verb_id}{}{}{}", capitalize(&group_id), capitalize(&info.version), info.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
    })
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The document of one group-version, if served.
pub fn group_version(catalog: &Catalog, group: &str, version: &str) -> Value {
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
                "get": operation(info, "list", "list"),
                "post": operation(info, "post", "create"),
                "delete": operation(info, "deletecollection", "deleteCollection"),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(info, "get", "read"),
                "put": operation(info, "put", "replace"),
                "patch": operation(info, "patch", "patch"),
                "delete": operation(info, "delete", "delete"),
            }),
        );
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", super::discovery::KUBERNETES_VERSION.0, super::discovery::KUBERNETES_VERSION.1)},
        "paths": paths,
        "components": {"schemas": {}},
    })
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
}
