//! JSON merge patches (RFC 7386) computed from two versions of a document:
//! what syncers send to change only the fields they own.

use serde_json::{Map, Value};

/// The merge patch that turns `from` into `to`, or `None` when they are
/// equal. Objects are diffed key by key (a removed key becomes `null`);
/// arrays and scalars are replaced whole, as merge patches do.
pub fn diff(from: &Value, to: &Value) -> Option<Value> {
    if from == to {
        return None;
    }
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut patch = Map::new();
            for key in from.keys().filter(|k| !to.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in to {
                match from.get(key) {
                    Some(old) => {
                        if let Some(change) = diff(old, value) {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ => Some(to.clone()),
    }
}

/// The merge patch that sets the fields at `fields` (top-level keys such as
/// `data` or `spec`) of `host` to their values in `desired`, leaving every
/// other field alone. A field absent from `desired` is removed.
pub fn fields_patch(host: &Value, desired: &Value, fields: &[&str]) -> Option<Value> {
    let mut patch = Map::new();
    for field in fields {
        let from = host.get(*field).cloned().unwrap_or(Value::Null);
        let to = desired.get(*field).cloned().unwrap_or(Value::Null);
        let change = match (&from, &to) {
            (Value::Null, Value::Null) => None,
            (_, Value::Null) => Some(Value::Null),
            (Value::Null, to) => Some(to.clone()),
            (from, to) => diff(from, to),
        };
        if let Some(change) = change {
            patch.insert((*field).to_owned(), change);
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// Applies a merge patch to a document (to check what a patch will do).
pub fn apply(document: &mut Value, patch: &Value) {
    match (document, patch) {
        (Value::Object(doc), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    doc.remove(key);
                } else {
                    let slot = doc.entry(key.clone()).or_insert(Value::Null);
                    if !slot.is_object() || !value.is_object() {
                        *slot = if value.is_object() {
                            Value::Object(Map::new())
                        } else {
                            value.clone()
                        };
                    }
                    if value.is_object() {
                        apply(slot, value);
                    }
                }
            }
        }
        (document, patch) => *document = patch.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn diff_removes_changes_and_adds() {
        let from = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]});
        let to = json!({"b": {"c": 2, "d": 4}, "e": [1], "f": "new"});
        assert_eq!(
            diff(&from, &to),
            Some(json!({"a": null, "b": {"d": 4}, "e": [1], "f": "new"}))
        );
        assert_eq!(diff(&from, &from), None);
    }

    #[test]
    fn fields_patch_touches_only_the_named_fields() {
        let host = json!({"data": {"a": "1", "b": "2"}, "metadata": {"x": 1}, "extra": true});
        let desired = json!({"data": {"a": "1", "c": "3"}});
        assert_eq!(
            fields_patch(&host, &desired, &["data", "binaryData"]),
            Some(json!({"data": {"b": null, "c": "3"}}))
        );
        assert_eq!(fields_patch(&host, &host, &["data"]), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,3}".prop_map(Value::from),
            Just(Value::Bool(true)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Applying the diff of two objects to the first gives the second
        /// (for documents without nulls, which merge patches cannot carry).
        #[test]
        fn applying_the_diff_reproduces_the_target(
            from in prop::collection::btree_map("[a-d]", json_value(), 0..4),
            to in prop::collection::btree_map("[a-d]", json_value(), 0..4),
        ) {
            let from = Value::Object(from.into_iter().collect());
            let to = Value::Object(to.into_iter().collect());
            let mut patched = from.clone();
            if let Some(patch) = diff(&from, &to) {
                apply(&mut patched, &patch);
            }
            prop_assert_eq!(patched, to);
        }
    }
}
