//! `events.k8s.io/v1` events are core `v1` events seen through a newer
//! schema, as in kube-apiserver: one storage holds both, so an event a
//! controller records through `events.k8s.io` (kube-rs' `Recorder`,
//! client-go's new recorder) shows in `kubectl get events` and `kubectl
//! describe`, and the other way round.
//!
//! Objects are stored in the core form; these functions convert between
//! the two, renaming the fields the newer API renamed and keeping the rest.

use serde_json::{Map, Value};

use super::ResourceInfo;

/// The group of the newer events API.
pub const GROUP: &str = "events.k8s.io";

/// `(events.k8s.io/v1 name, core/v1 name)` of every renamed field; the
/// others (`metadata`, `eventTime`, `series`, `reportingInstance`,
/// `action`, `reason`, `related`, `type`) have one name in both.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The field selectors of `events.k8s.io` events, named as that API names
/// the fields (kube-apiserver's field label conversion for the group).
pub const FIELD_SELECTORS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// Whether `resource` is `events.k8s.io` events, stored as core events.
pub fn is_events_k8s_io(resource: &ResourceInfo) -> bool {
    resource.group == GROUP && resource.plural == "events"
}

/// An `events.k8s.io/v1` event in its stored (core `v1`) form.
pub fn to_core(object: &mut Value) {
    if let Value::Object(map) = object {
        rename(map, RENAMED.iter().map(|(newer, core)| (*newer, *core)));
        map.insert("apiVersion".into(), Value::String("v1".into()));
    }
}

/// A stored (core `v1`) event as `events.k8s.io/v1` shows it; objects
/// already in that form are left alone.
pub fn from_core(object: &mut Value) {
    if let Value::Object(map) = object {
        if map.get("apiVersion").and_then(Value::as_str) != Some("v1") {
            return;
        }
        rename(map, RENAMED.iter().map(|(newer, core)| (*core, *newer)));
        map.insert("apiVersion".into(), Value::String(format!("{GROUP}/v1")));
        default_unset(map);
    }
}

/// The fields of an `events.k8s.io/v1` event Go writes even when unset: a
/// struct and two times.
pub fn default_unset(map: &mut Map<String, Value>) {
    for (field, empty) in [
        ("deprecatedSource", Value::Object(Map::new())),
        ("deprecatedFirstTimestamp", Value::Null),
        ("deprecatedLastTimestamp", Value::Null),
    ] {
        map.entry(field).or_insert(empty);
    }
}

fn rename<'a>(map: &mut Map<String, Value>, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    for (from, to) in pairs {
        match map.remove(from) {
            Some(value) => {
                map.insert(to.to_owned(), value);
            }
            // A field of the target's name that the source form does not
            // have cannot be meant.
            None => {
                map.remove(to);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn newer() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2026-11-25T10:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2026-11-25T10:05:00.000000Z"},
            "reportingController": "example.com/operator", "reportingInstance": "operator-0",
            "action": "Reconcile", "reason": "Synced", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
            "related": {"kind": "Node", "name": "n1"},
            "note": "synced the pod",
            "deprecatedSource": {"component": "operator"},
            "deprecatedFirstTimestamp": "2026-11-25T10:00:00Z",
            "deprecatedLastTimestamp": "2026-11-25T10:05:00Z",
            "deprecatedCount": 3,
        })
    }

    #[test]
    fn the_core_form_uses_the_core_names_and_converts_back_unchanged() {
        let mut event = newer();
        to_core(&mut event);
        assert_eq!(event["apiVersion"], "v1");
        assert_eq!(event["involvedObject"]["name"], "web");
        assert_eq!(event["message"], "synced the pod");
        assert_eq!(event["reportingComponent"], "example.com/operator");
        assert_eq!(event["source"]["component"], "operator");
        assert_eq!(event["count"], 3);
        assert_eq!(event["firstTimestamp"], "2026-11-25T10:00:00Z");
        assert_eq!(event["series"]["count"], 3);
        assert!(event.get("regarding").is_none() && event.get("note").is_none());
        from_core(&mut event);
        assert_eq!(event, newer());
        // Already converted: left alone.
        from_core(&mut event);
        assert_eq!(event, newer());
    }

    #[test]
    fn a_core_event_reads_in_the_newer_form() {
        let mut event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web.2", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web"},
            "message": "Pulled", "reason": "Pulled", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2026-11-25T10:00:00Z", "count": 1,
        });
        from_core(&mut event);
        assert_eq!(event["apiVersion"], "events.k8s.io/v1");
        assert_eq!(event["regarding"]["name"], "web");
        assert_eq!(event["note"], "Pulled");
        assert_eq!(event["deprecatedSource"]["host"], "n1");
        assert_eq!(event["deprecatedCount"], 1);
        assert!(event.get("message").is_none() && event.get("involvedObject").is_none());
    }
}
