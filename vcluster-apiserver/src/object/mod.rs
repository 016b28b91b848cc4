//! Objects as the server handles them: `serde_json::Value`s with a
//! Kubernetes `metadata` block. One representation for every kind keeps the
//! handlers generic; typed k8s-openapi structs are used only to normalise.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub mod validate;

/// `metadata`, if the object has one that is a JSON object.
pub fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata").and_then(Value::as_object)
}

/// `metadata`, created empty if missing (or replaced if not an object).
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let root = match object.as_object_mut() {
        Some(root) => root,
        None => unreachable!("just made an object"),
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta.as_object_mut() {
        Some(meta) => meta,
        None => unreachable!("just made an object"),
    }
}

/// A string field of `metadata` (`""` when absent).
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    metadata(object)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`.
pub fn name(object: &Value) -> &str {
    meta_str(object, "name")
}

/// `metadata.namespace`.
pub fn namespace(object: &Value) -> &str {
    meta_str(object, "namespace")
}

/// `metadata.labels` as a map; non-string values are ignored.
pub fn labels(object: &Value) -> BTreeMap<String, String> {
    string_map(metadata(object).and_then(|m| m.get("labels")))
}

/// A JSON object of strings as a map; anything else reads as empty.
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Follows a dotted path (`spec.nodeName`) through nested objects.
pub fn path<'a>(object: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(object, |value, segment| value.get(segment))
}

/// A string at a dotted path (`""` when absent).
pub fn path_str<'a>(object: &'a Value, dotted: &str) -> &'a str {
    path(object, dotted).and_then(Value::as_str).unwrap_or("")
}

/// Sets `metadata.resourceVersion`: the store never keeps it in the value,
/// every read stamps it from the key's revision.
pub fn set_resource_version(object: &mut Value, revision: u64) {
    metadata_mut(object).insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
}

/// Parses stored bytes and stamps the revision they were stored at.
pub fn decode_stored(bytes: &[u8], revision: u64) -> Result<Value, serde_json::Error> {
    let mut object: Value = serde_json::from_slice(bytes)?;
    set_resource_version(&mut object, revision);
    Ok(object)
}

/// Serialises an object for storage, without its resourceVersion.
pub fn encode_for_storage(object: &Value) -> Result<bytes::Bytes, serde_json::Error> {
    let mut object = object.clone();
    metadata_mut(&mut object).remove("resourceVersion");
    serde_json::to_vec(&object).map(bytes::Bytes::from)
}

/// The object minus `metadata` and `status`: what `generation` tracks.
pub fn spec_view(object: &Value) -> Map<String, Value> {
    let mut map = object.as_object().cloned().unwrap_or_default();
    map.remove("metadata");
    map.remove("status");
    map
}

/// Now, as kube-apiserver writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    let now = jiff::Timestamp::now();
    format!("{}", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_helpers_tolerate_odd_shapes() {
        let mut odd = json!({"metadata": "nope"});
        assert_eq!(name(&odd), "");
        metadata_mut(&mut odd).insert("name".into(), "x".into());
        assert_eq!(name(&odd), "x");
        let mut scalar = json!(3);
        set_resource_version(&mut scalar, 7);
        assert_eq!(scalar["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn storage_encoding_drops_the_resource_version() {
        let object = json!({"metadata": {"name": "a", "resourceVersion": "5"}, "spec": {}});
        let bytes = encode_for_storage(&object).expect("encode");
        let back = decode_stored(&bytes, 9).expect("decode");
        assert_eq!(back["metadata"]["resourceVersion"], "9");
        assert_eq!(path_str(&back, "metadata.name"), "a");
    }

    #[test]
    fn spec_view_ignores_metadata_and_status() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"y": 1}});
        let b = json!({"metadata": {}, "spec": {"x": 1}, "status": {"y": 2}});
        assert_eq!(spec_view(&a), spec_view(&b));
    }
}
