//! OpenAPI definitions of custom resources, built from their CRD's
//! `openAPIV3Schema`, so `kubectl explain <plural>` and schema-aware
//! clients see custom kinds as they see built-in ones.
//!
//! The definitions follow kube-apiserver's naming: the group reversed, then
//! the version and the kind (`stable.example.com/v1` `CronTab` becomes
//! `com.example.stable.v1.CronTab`), plus the `<Kind>List` that lists return.
//! A CRD schema never describes `apiVersion`, `kind` or the object's
//! metadata in full, so those three properties are set here, `metadata`
//! pointing at the shared `ObjectMeta` definition.

use serde_json::{json, Map, Value};

use crate::resources::custom::CustomResource;
use crate::resources::ResourceInfo;

use super::V3_REFS;

/// The name of the definition of a custom kind.
pub(super) fn definition_name(info: &ResourceInfo, kind: &str) -> String {
    let reversed: Vec<&str> = info.group.rsplit('.').collect();
    format!("{}.{}.{kind}", reversed.join("."), info.version)
}

/// The object and list definitions of one served version of a custom
/// resource. `object_meta` and `list_meta` are the definition names of
/// `ObjectMeta` and `ListMeta`, which the caller puts in the same document.
pub(super) fn definitions(
    info: &ResourceInfo,
    custom: &CustomResource,
    object_meta: &str,
    list_meta: &str,
) -> [(String, Value); 2] {
    let name = definition_name(info, &info.kind);
    let mut object = match &custom.schema_json {
        Value::Object(schema) => schema.clone(),
        _ => Map::new(),
    };
    object
        .entry("type")
        .or_insert_with(|| Value::String("object".into()));
    let properties = object
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    if let Value::Object(properties) = properties {
        properties.insert("apiVersion".into(), api_version_property());
        properties.insert("kind".into(), kind_property());
        properties.insert(
            "metadata".into(),
            json!({
                "allOf": [{"$ref": format!("{V3_REFS}{object_meta}")}],
                "description": "Standard object metadata: name, namespace, labels, annotations, owners and the fields the server sets.",
            }),
        );
    }
    object.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk(info, &info.kind),
    );

    let list_kind = info.list_kind();
    let list = json!({
        "description": format!("A list of {}.", info.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": api_version_property(),
            "items": {
                "description": format!("The {} objects of the list.", info.kind),
                "type": "array",
                "items": {"$ref": format!("{V3_REFS}{name}")},
            },
            "kind": kind_property(),
            "metadata": {
                "allOf": [{"$ref": format!("{V3_REFS}{list_meta}")}],
                "description": "List metadata: the resourceVersion of the list and the continue token of a paged list.",
            },
        },
        "x-kubernetes-group-version-kind": gvk(info, &list_kind),
    });
    [
        (name, Value::Object(object)),
        (definition_name(info, &list_kind), list),
    ]
}

/// Swagger 2.0 has no `nullable`, `anyOf`, `oneOf` or `not`; kube-apiserver
/// leaves them out of a CRD's v2 definitions, and so does this server.
/// Walks schemas only: field names under `properties` and data such as
/// `default` or `enum` are never touched.
pub(super) fn v2_compatible(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    for keyword in ["nullable", "anyOf", "oneOf", "not"] {
        map.remove(keyword);
    }
    for (keyword, value) in map.iter_mut() {
        match (keyword.as_str(), value) {
            ("properties" | "patternProperties", Value::Object(fields)) => {
                fields.values_mut().for_each(v2_compatible);
            }
            ("items" | "allOf", Value::Array(schemas)) => {
                schemas.iter_mut().for_each(v2_compatible);
            }
            ("items" | "additionalProperties", nested) => v2_compatible(nested),
            _ => {}
        }
    }
}

fn gvk(info: &ResourceInfo, kind: &str) -> Value {
    json!([{"group": info.group, "kind": kind, "version": info.version}])
}

fn api_version_property() -> Value {
    json!({
        "description": "The group and version of the schema this object is written in; the server converts it to the versions it serves.",
        "type": "string",
    })
}

fn kind_property() -> Value {
    json!({
        "description": "The kind of object this is (CamelCase), inferred by the server from the endpoint when a client leaves it out.",
        "type": "string",
    })
}

#[cfg(test)]
mod tests {
    use super::super::{documents, group_version};
    use crate::resources::custom;
    use crate::resources::Catalog;
    use serde_json::{json, Value};

    fn crontab(replicas_description: &str) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "metadata": {"type": "object"},
                        "spec": {"type": "object", "properties": {
                            "replicas": {"type": "integer", "description": replicas_description},
                            "not": {"type": "string", "nullable": true, "default": {"nullable": 1}},
                            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true},
                        }},
                    }}}}],
            },
        })
    }

    fn catalog_with(crd_object: &Value) -> Catalog {
        let mut catalog = Catalog::builtin();
        let mut crd_object = crd_object.clone();
        crd_object["status"] = custom::status(&crd_object, &Value::Null, &catalog);
        custom::install(&mut catalog, &crd_object);
        catalog
    }

    #[test]
    fn a_custom_kind_is_described_by_its_crd_schema() {
        let catalog = catalog_with(&crontab("how many"));
        let doc = group_version(&catalog, "stable.example.com", "v1");
        let schemas = &doc["components"]["schemas"];
        let cron = &schemas["com.example.stable.v1.CronTab"];
        assert_eq!(
            cron["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
        );
        assert_eq!(
            cron["properties"]["spec"]["properties"]["replicas"]["description"],
            "how many"
        );
        assert_eq!(cron["properties"]["kind"]["type"], "string");
        // The CRD's own `metadata: {type: object}` gives way to ObjectMeta,
        // which the same document defines.
        let meta_ref = cron["properties"]["metadata"]["allOf"][0]["$ref"]
            .as_str()
            .expect("a reference");
        let meta_name = meta_ref.strip_prefix("#/components/schemas/").expect("v3");
        assert!(schemas[meta_name]["properties"]["labels"].is_object());
        let list = &schemas["com.example.stable.v1.CronTabList"];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/com.example.stable.v1.CronTab"
        );
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "CronTabList"
        );
        // v3 keeps what the CRD said.
        let spec = &cron["properties"]["spec"]["properties"];
        assert_eq!(spec["not"]["nullable"], true);
        assert!(spec["either"]["anyOf"].is_array());
        // Custom kinds take no strategic merge patches.
        let patch = &doc["paths"]
            ["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
            ["requestBody"]["content"];
        assert!(patch["application/merge-patch+json"].is_object());
        assert!(patch["application/strategic-merge-patch+json"].is_null());
    }

    #[test]
    fn v2_drops_what_swagger_lacks_but_not_fields_or_data() {
        let catalog = catalog_with(&crontab("how many"));
        let v2: Value = serde_json::from_slice(&documents(&catalog).v2.body).expect("json");
        let cron = &v2["definitions"]["com.example.stable.v1.CronTab"];
        assert_eq!(
            cron["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        let spec = &cron["properties"]["spec"]["properties"];
        // A field called `not` survives; its `nullable` keyword does not,
        // and neither is data under `default` touched.
        assert_eq!(spec["not"]["type"], "string");
        assert!(spec["not"].get("nullable").is_none());
        assert_eq!(spec["not"]["default"], json!({"nullable": 1}));
        assert!(spec["either"].get("anyOf").is_none());
        assert_eq!(spec["either"]["x-kubernetes-int-or-string"], true);
    }

    #[test]
    fn a_changed_schema_rebuilds_the_documents() {
        let before = documents(&catalog_with(&crontab("how many")));
        let after = documents(&catalog_with(&crontab("how many copies")));
        assert_ne!(before.root.hash, after.root.hash);
        let doc: Value =
            serde_json::from_slice(&after.group_versions["apis/stable.example.com/v1"].body)
                .expect("json");
        assert_eq!(
            doc["components"]["schemas"]["com.example.stable.v1.CronTab"]["properties"]["spec"]
                ["properties"]["replicas"]["description"],
            "how many copies"
        );
    }
}
