//! Objects in the order kube-apiserver writes them. Typed objects follow
//! their Go structs (see `protobuf::GoOrdered`); custom resources are
//! sorted, as Go writes unstructured objects; anything else: `kind`, `apiVersion`,
//! `metadata` first and `status` last (Go marshals `TypeMeta` and
//! `ObjectMeta` first, the status field last), a watch event's `type`
//! before its `object`, and the same for every item of a list. Objects are
//! kept as sorted maps, so without this `apiVersion` and `data` would
//! come before `kind`. Clients do not depend on the order, but people
//! reading `curl` output and differential tests against kube-apiserver do.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::protobuf::GoOrdered;

/// Keys of an object that come first, in this order.
const FIRST: &[&str] = &["kind", "apiVersion", "metadata"];
/// A watch event's keys, in this order.
const EVENT: &[&str] = &["type", "object"];
/// Keys that come last, in this order.
const LAST: &[&str] = &["items", "status"];

/// A JSON value serialized in upstream's key order (see the module docs);
/// nested values other than list items and a watch event's object keep
/// their sorted order.
pub struct UpstreamOrder<'a>(pub &'a Value);

impl Serialize for UpstreamOrder<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Value::Object(map) = self.0 else {
            return self.0.serialize(serializer);
        };
        // A typed object: every struct in Go order.
        if let Some(message) = crate::protobuf::message_of(self.0) {
            return GoOrdered {
                value: self.0,
                message,
            }
            .serialize(serializer);
        }
        // A custom resource (or list of them): kube-apiserver writes
        // unstructured objects, whose keys Go sorts, as our maps are.
        if is_custom(map) {
            return self.0.serialize(serializer);
        }
        let mut out = serializer.serialize_map(Some(map.len()))?;
        // A watch event is exactly `type` and `object` (objects may have a
        // `type` field of their own: Secrets, Events).
        let is_event = map.len() == 2 && EVENT.iter().all(|k| map.contains_key(*k));
        let first = if is_event { EVENT } else { FIRST };
        let middle = map
            .iter()
            .filter(|(k, _)| !first.contains(&k.as_str()) && !LAST.contains(&k.as_str()));
        let ordered = first
            .iter()
            .filter_map(|k| map.get_key_value(*k))
            .chain(middle)
            .chain(LAST.iter().filter_map(|k| map.get_key_value(*k)));
        for (key, value) in ordered {
            match (key.as_str(), value) {
                // A list's items and a watch event's object are objects
                // in their own right.
                ("items", Value::Array(items)) => {
                    let items: Vec<UpstreamOrder<'_>> = items.iter().map(UpstreamOrder).collect();
                    out.serialize_entry(key, &items)?;
                }
                ("object", object) if is_event => {
                    out.serialize_entry(key, &UpstreamOrder(object))?
                }
                // A table's columns and rows, as their Go structs.
                ("columnDefinitions" | "rows", Value::Array(items)) => {
                    let keys = crate::protobuf::meta_keys(if key == "rows" {
                        "TableRow"
                    } else {
                        "TableColumnDefinition"
                    });
                    let items: Vec<ByKeys<'_>> =
                        items.iter().map(|value| ByKeys { value, keys }).collect();
                    out.serialize_entry(key, &items)?;
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.end()
    }
}

/// An object with `keys` first, in that order; a row's embedded `object`
/// is ordered as a top-level object.
struct ByKeys<'a> {
    value: &'a Value,
    keys: &'static [&'static str],
}

impl Serialize for ByKeys<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Value::Object(map) = self.value else {
            return self.value.serialize(serializer);
        };
        let known = self.keys.iter().filter_map(|k| map.get_key_value(*k));
        let rest = map.iter().filter(|(k, _)| !self.keys.contains(&k.as_str()));
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, value) in known.chain(rest) {
            if key == "object" {
                out.serialize_entry(key, &UpstreamOrder(value))?;
            } else {
                out.serialize_entry(key, value)?;
            }
        }
        out.end()
    }
}

/// An object of a kind outside the built-in API (its group is neither the
/// core group nor `meta.k8s.io`, and the schema does not know it).
fn is_custom(map: &Map<String, Value>) -> bool {
    let (Some(Value::String(api_version)), Some(Value::String(_))) =
        (map.get("apiVersion"), map.get("kind"))
    else {
        return false;
    };
    match api_version.split_once('/') {
        Some((group, _)) => group != "meta.k8s.io",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &Value) -> String {
        serde_json::to_string(&UpstreamOrder(value)).expect("serialize")
    }

    #[test]
    fn objects_lists_and_events_read_as_kube_apiserver_writes_them() {
        let config_map = json!({"apiVersion": "v1", "data": {"b": "2", "a": "1"}, "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(
            text(&config_map),
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"a":"1","b":"2"}}"#
        );
        let pod =
            json!({"status": {}, "spec": {}, "metadata": {}, "kind": "Pod", "apiVersion": "v1"});
        assert_eq!(
            text(&pod),
            // What Go writes for an empty Pod: fields without omitempty
            // are there, as null.
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{},"spec":{"containers":null},"status":{}}"#
        );
        let list = json!({"apiVersion": "v1", "items": [config_map], "kind": "ConfigMapList", "metadata": {}});
        assert!(text(&list).starts_with(r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[{"kind":"ConfigMap","apiVersion":"v1""#));
        let event = json!({"object": pod, "type": "ADDED"});
        assert!(
            text(&event).starts_with(r#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1""#)
        );
        assert_eq!(text(&json!([1, 2])), "[1,2]");
        // A Secret's own `type` stays among its fields.
        let secret =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {}, "type": "Opaque"});
        assert_eq!(
            text(&secret),
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{},"type":"Opaque"}"#
        );
    }
}
